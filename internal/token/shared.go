package token

import (
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/clientauth"
	"github.com/tillit-sts/tillit/internal/metrics"
	"github.com/tillit-sts/tillit/internal/ratelimit"
	"github.com/tillit-sts/tillit/internal/registry"
)

// DefaultMaxBody bounds a request body. A token request with an assertion
// carrying assertion_details is 1–3 KiB.
const DefaultMaxBody = 8 << 10

// Shared is the configuration the token, introspection and revocation
// endpoints have in common. The three are meant to get the same one: they
// share the rate limiters, so that an address or a client cannot get round
// its limit by calling another endpoint, and write to one audit chain.
type Shared struct {
	Issuer string
	// Registry returns the current registry snapshot.
	Registry func() *registry.Snapshot
	// Assertions checks client assertions. Its Audiences should hold the
	// issuer, the issuer with "/" and the token endpoint URL; each
	// endpoint also accepts its own URL.
	Assertions *clientauth.Verifier
	// Decisions commits every decision: the single-use values a request
	// spends, with its audit record, and the audit record of every
	// refusal that gets one of its own.
	Decisions DecisionStore
	// Refusals counts the refusals that get no audit record of their
	// own, for the aggregate record the server writes at most once a
	// minute; nil counts them in Metrics only.
	Refusals *audit.Refusals
	// Instance names this server's chain in the audit log.
	Instance string
	// Metrics counts requests; nil counts nothing.
	Metrics *metrics.Metrics
	// AddressLimit and ClientLimit rate-limit requests per source address
	// (before anything is verified) and per authenticated client; nil
	// means no limit.
	AddressLimit, ClientLimit *ratelimit.Limiter
	// MaxBody bounds a request body; zero means DefaultMaxBody.
	MaxBody int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives refusals and failures; nil discards them.
	Log *slog.Logger
}

// base is what each endpoint runs on: the shared configuration with its
// defaults filled in, the endpoint's name (in errors, audit records,
// metrics and logs), its absolute URL, and the assertion verifier that
// accepts that URL as aud.
type base struct {
	cfg        Shared
	name       string
	url        string
	assertions *clientauth.Verifier
}

func newBase(cfg Shared, name, path string) base {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	url := strings.TrimSuffix(cfg.Issuer, "/") + path
	return base{cfg: cfg, name: name, url: url, assertions: withAudience(cfg.Assertions, url)}
}

// URL is the endpoint's absolute URL.
func (b *base) URL() string { return b.url }

// withAudience is v, or a copy of v that also accepts url as aud.
func withAudience(v *clientauth.Verifier, url string) *clientauth.Verifier {
	if slices.Contains(v.Audiences, url) {
		return v
	}
	c := *v
	c.Audiences = append(slices.Clip(v.Audiences), url)
	return &c
}
