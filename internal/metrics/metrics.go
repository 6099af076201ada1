// Package metrics is what the token service counts and times, in
// Prometheus form: requests and latency per endpoint and grant, errors by
// OAuth code, refusals that get no audit record of their own, tokens issued
// per client and audience, replay refusals, key rotations and store
// latency. Each Server has its own registry, so that
// tests and several servers in one process do not share counters.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors. A nil *Metrics records nothing, so code
// under test may leave it out.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	issued   *prometheus.CounterVec
	replays  *prometheus.CounterVec
	rotation prometheus.Counter
	store    *prometheus.HistogramVec
	limited  *prometheus.CounterVec
	// aggregated counts the refusals summed up in the audit log's
	// aggregate record rather than recorded one by one.
	aggregated *prometheus.CounterVec
}

// New registers the collectors, with the Go runtime and process ones.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tillit_requests_total",
		Help: "Requests by endpoint, grant type and outcome: ok or the OAuth error code.",
	}, []string{"endpoint", "grant_type", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tillit_request_duration_seconds",
		Help: "Time to answer a request, by endpoint and grant type.",
		// From well under a millisecond (a refusal) to a slow RSA signature
		// under load.
		Buckets: []float64{.0005, .001, .002, .004, .008, .016, .032, .064, .128, .256, .512, 1, 2},
	}, []string{"endpoint", "grant_type"})
	m.issued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tillit_tokens_issued_total",
		Help: "Access tokens issued, by client and audience.",
	}, []string{"client_id", "audience"})
	m.replays = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tillit_replay_refusals_total",
		Help: "Requests refused because a single-use value was used before: a client assertion or a DPoP proof.",
	}, []string{"kind"})
	m.rotation = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tillit_signing_key_rotations_total",
		Help: "Signing keys created by this instance (first key, scheduled and manual rotations).",
	})
	m.store = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tillit_store_operation_duration_seconds",
		Help:    "Time of store operations on the hot path, by operation.",
		Buckets: []float64{.0001, .00025, .0005, .001, .002, .004, .008, .016, .032, .064, .128, .256},
	}, []string{"operation"})
	m.limited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tillit_rate_limited_total",
		Help: "Requests refused with 429 by the rate limiter, by what was limited: client or address.",
	}, []string{"by"})
	m.aggregated = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tillit_refusals_aggregated_total",
		Help: "Refusals with no audit record of their own (before the client assertion verified, 429s, the use_dpop_nonce round trip), summed up in the per-minute aggregate record, by endpoint and OAuth error code.",
	}, []string{"endpoint", "code"})
	m.reg.MustRegister(m.requests, m.latency, m.issued, m.replays, m.rotation, m.store, m.limited, m.aggregated,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Request records one answered request: code is "ok" or an OAuth error code.
func (m *Metrics) Request(endpoint, grantType, code string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(endpoint, grantType, code).Inc()
	m.latency.WithLabelValues(endpoint, grantType).Observe(d.Seconds())
}

// Issued counts a token.
func (m *Metrics) Issued(clientID, audience string) {
	if m == nil {
		return
	}
	m.issued.WithLabelValues(clientID, audience).Inc()
}

// Replay counts a refused replay; kind is "assertion" or "proof".
func (m *Metrics) Replay(kind string) {
	if m == nil {
		return
	}
	m.replays.WithLabelValues(kind).Inc()
}

// Rotation counts a signing key this instance created.
func (m *Metrics) Rotation() {
	if m == nil {
		return
	}
	m.rotation.Inc()
}

// Store times a store operation.
func (m *Metrics) Store(operation string, d time.Duration) {
	if m == nil {
		return
	}
	m.store.WithLabelValues(operation).Observe(d.Seconds())
}

// Limited counts a request refused by the rate limiter.
func (m *Metrics) Limited(by string) {
	if m == nil {
		return
	}
	m.limited.WithLabelValues(by).Inc()
}

// Aggregated counts a refusal that has no audit record of its own; code is
// its OAuth error code, one of a fixed set.
func (m *Metrics) Aggregated(endpoint, code string) {
	if m == nil {
		return
	}
	m.aggregated.WithLabelValues(endpoint, code).Inc()
}
