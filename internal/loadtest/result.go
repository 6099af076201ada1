package loadtest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Result is what one run measured in its window.
type Result struct {
	Endpoint string
	// Connect is Config.Connect: the host:port the clients connected to
	// instead of the endpoint's, or empty.
	Connect     string
	ClientID    string
	Bearer      bool
	FreshNonce  bool
	Concurrency int
	// Rate is Config.Rate: the tokens per second the clients were paced
	// at, or 0 when they went as fast as the server answered.
	Rate float64
	// Duration is the window in which tokens are counted; Warmup is what
	// came before it. CPU use is read at both ends of the window (a
	// fraction of a millisecond late when the machine is busy) and divided
	// by the time between the two readings.
	Duration time.Duration
	Warmup   time.Duration

	// Tokens is the number of tokens whose answer arrived in the window.
	Tokens int64
	// Requests counts the HTTP requests of those tokens and of the
	// failures, nonce retries included.
	Requests int64
	// NonceRoundTrips counts the use_dpop_nonce answers that were followed
	// by a retry.
	NonceRoundTrips int64
	// Errors are the failed tokens by error code and HTTP status, most
	// frequent first.
	Errors []ErrorCount
	// Latency is per token, from building its first request to reading
	// the last answer, so a nonce round trip is inside it.
	Latency Latency

	// Connections is the number of connections the clients opened during
	// the whole run: Concurrency when the server keeps every connection
	// alive.
	Connections int64

	// GOMAXPROCS is the generator's.
	GOMAXPROCS int
	// Generator is this process's CPU use in the window (getrusage);
	// Server that of ServerPID (/proc/PID/stat). Either is nil when it
	// could not be measured.
	Generator *CPUUse
	ServerPID int
	Server    *CPUUse
	// Machine is the whole machine's CPU in the window (/proc/stat); nil
	// when it could not be read.
	Machine *MachineUse
	// Warnings say what makes the figures doubtful.
	Warnings []string
}

// ErrorCount is one kind of failure. Error is the OAuth error code the
// server sent, or one of the Label constants when there was none.
type ErrorCount struct {
	Error  string `json:"error"`
	Status int    `json:"status,omitempty"`
	Count  int64  `json:"count"`
	// Example is the error_description of the first such answer, or the
	// transport error.
	Example string `json:"example,omitempty"`
}

// Latency is the distribution of per-token latency (nearest rank).
type Latency struct {
	P50, P90, P99, Max, Mean time.Duration
}

// CPUUse is CPU time used in the window.
type CPUUse struct {
	Time time.Duration
	// PerToken is Time divided by the tokens issued; zero without tokens.
	PerToken time.Duration
	// Cores is Time divided by the window: 1.5 means one and a half cores
	// were busy throughout.
	Cores float64
	// BusiestThread is the CPU of the process's busiest thread divided by
	// the window, for the server only (zero when unknown). Near 1 it says
	// that one thread limits the server, whatever the machine has left.
	BusiestThread float64
}

// MachineUse is the machine's CPU in the window, over all cores.
type MachineUse struct {
	Cores int
	// BusyPercent is the share of CPU time that was neither idle, iowait
	// nor steal.
	BusyPercent float64
	// StealPercent is the share the hypervisor gave to other guests.
	StealPercent float64
	// IOWaitPercent is the share that was idle while a task waited for
	// the disk.
	IOWaitPercent float64
	// BusyCores is the busy CPU time divided by the window.
	BusyCores float64
	// OtherCores is BusyCores less the generator's and the server's: what
	// other processes took. It is only known with a server PID, and it is
	// what tells that a figure was taken on a machine that was not quiet.
	OtherCores *float64
}

// TokensPerSecond is the issue rate in the window.
func (r *Result) TokensPerSecond() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Tokens) / r.Duration.Seconds()
}

// ErrorTotal is the number of failed tokens.
func (r *Result) ErrorTotal() int64 {
	var n int64
	for _, e := range r.Errors {
		n += e.Count
	}
	return n
}

// Mode names what the clients did: "dpop", "dpop-fresh-nonce" or "bearer".
func (r *Result) Mode() string {
	switch {
	case r.Bearer:
		return "bearer"
	case r.FreshNonce:
		return "dpop-fresh-nonce"
	}
	return "dpop"
}

func (rn *runner) result(workers []*worker, before, after snapshot) *Result {
	window := after.at.Sub(before.at) // for CPU; tokens use the nominal window
	res := &Result{
		Endpoint:    rn.endpoint,
		Connect:     rn.cfg.Connect,
		ClientID:    rn.cfg.ClientID,
		Bearer:      rn.cfg.Bearer,
		FreshNonce:  rn.cfg.FreshNonce,
		Concurrency: rn.cfg.Concurrency,
		Rate:        rn.cfg.Rate,
		Duration:    rn.winEnd.Sub(rn.winStart),
		Warmup:      rn.cfg.Warmup,
		Connections: rn.dials.Load(),
		GOMAXPROCS:  runtime.GOMAXPROCS(0),
		ServerPID:   rn.cfg.ServerPID,
	}
	var latencies []time.Duration
	byKey := map[errorKey]*ErrorCount{}
	for _, w := range workers {
		res.Tokens += w.tokens
		res.Requests += w.requests
		res.NonceRoundTrips += w.trips
		latencies = append(latencies, w.latencies...)
		for k, e := range w.errors {
			if sum := byKey[k]; sum != nil {
				sum.Count += e.Count
			} else {
				c := *e
				byKey[k] = &c
			}
		}
	}
	for _, e := range byKey {
		res.Errors = append(res.Errors, *e)
	}
	slices.SortFunc(res.Errors, func(a, b ErrorCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Error, b.Error), cmp.Compare(a.Status, b.Status))
	})
	res.Latency = latencyOf(latencies)

	use := func(d time.Duration) *CPUUse {
		u := &CPUUse{Time: d}
		if res.Tokens > 0 {
			u.PerToken = d / time.Duration(res.Tokens)
		}
		if window > 0 {
			u.Cores = d.Seconds() / window.Seconds()
		}
		return u
	}
	if err := cmp.Or(before.selfErr, after.selfErr); err != nil {
		res.Warnings = append(res.Warnings, "generator CPU not measured: "+err.Error())
	} else {
		res.Generator = use(after.self - before.self)
	}
	if rn.cfg.ServerPID != 0 {
		if err := cmp.Or(before.serverErr, after.serverErr); err != nil {
			res.Warnings = append(res.Warnings, "server CPU not measured: "+err.Error())
		} else {
			res.Server = use(after.server - before.server)
			if before.threadsErr == nil && after.threadsErr == nil && window > 0 {
				res.Server.BusiestThread = busiestThread(before.threads, after.threads).Seconds() / window.Seconds()
			}
		}
	}
	if err := cmp.Or(before.machineErr, after.machineErr); err != nil {
		res.Warnings = append(res.Warnings, "machine CPU not measured: "+err.Error())
	} else if total := after.machine.total - before.machine.total; total > 0 {
		idle := after.machine.idle - before.machine.idle
		steal := after.machine.steal - before.machine.steal
		iowait := after.machine.iowait - before.machine.iowait
		busy := time.Duration(total-idle-steal) * tick
		res.Machine = &MachineUse{
			Cores:         after.machine.cores,
			BusyPercent:   100 * float64(total-idle-steal) / float64(total),
			StealPercent:  100 * float64(steal) / float64(total),
			IOWaitPercent: 100 * float64(iowait) / float64(total),
			BusyCores:     busy.Seconds() / window.Seconds(),
		}
		if res.Generator != nil && res.Server != nil {
			// Ticks are 10 ms, so a quiet machine can come out a hair
			// below zero.
			other := max(0, (busy-res.Generator.Time-res.Server.Time).Seconds()/window.Seconds())
			res.Machine.OtherCores = &other
		}
	}

	if n := res.ErrorTotal(); n > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d of %d tokens failed", n, n+res.Tokens))
	}
	if res.Connections > int64(res.Concurrency) {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d connections for %d clients: the server closed keep-alive connections", res.Connections, res.Concurrency))
	}
	return res
}

// latencyOf sorts d and reads its percentiles by nearest rank.
func latencyOf(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(d)))) - 1
		return d[max(i, 0)]
	}
	return Latency{
		P50:  rank(0.50),
		P90:  rank(0.90),
		P99:  rank(0.99),
		Max:  d[len(d)-1],
		Mean: sum / time.Duration(len(d)),
	}
}

// WriteText writes the result for people, one figure per line.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	mode := "DPoP, keeping the server's last nonce"
	switch {
	case r.Bearer:
		mode = "Bearer (no DPoP)"
	case r.FreshNonce:
		mode = "DPoP, a fresh nonce round trip for every token"
	}
	via := ""
	if r.Connect != "" {
		via = " via " + r.Connect
	}
	fmt.Fprintf(&b, "endpoint     %s%s (client %s)\n", r.Endpoint, via, r.ClientID)
	if r.Rate > 0 {
		mode += fmt.Sprintf(", paced at %.0f tokens/s", r.Rate)
	}
	fmt.Fprintf(&b, "mode         %s; concurrency %d; %s measured after %s warm-up\n", mode, r.Concurrency, seconds(r.Duration), seconds(r.Warmup))
	fmt.Fprintf(&b, "tokens       %d = %.1f tokens/s\n", r.Tokens, r.TokensPerSecond())
	fmt.Fprintf(&b, "latency      p50 %s  p90 %s  p99 %s  max %s  (mean %s)\n",
		ms(r.Latency.P50), ms(r.Latency.P90), ms(r.Latency.P99), ms(r.Latency.Max), ms(r.Latency.Mean))
	fmt.Fprintf(&b, "requests     %d, nonce round trips %d\n", r.Requests, r.NonceRoundTrips)
	fmt.Fprintf(&b, "connections  %d opened\n", r.Connections)
	if len(r.Errors) == 0 {
		b.WriteString("errors       none\n")
	} else {
		fmt.Fprintf(&b, "errors       %d\n", r.ErrorTotal())
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "  %-28s %-9s %8d", e.Error, httpStatus(e.Status), e.Count)
			if e.Example != "" {
				fmt.Fprintf(&b, "  %s", e.Example)
			}
			b.WriteByte('\n')
		}
	}
	if g := r.Generator; g != nil {
		fmt.Fprintf(&b, "generator    CPU %s/token, %.2f cores (GOMAXPROCS %d)\n", ms(g.PerToken), g.Cores, r.GOMAXPROCS)
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(&b, "server       CPU %s/token, %.2f cores, busiest thread %.2f (pid %d)\n", ms(s.PerToken), s.Cores, s.BusiestThread, r.ServerPID)
	}
	if m := r.Machine; m != nil {
		fmt.Fprintf(&b, "machine      %.1f%% busy of %d cores (%.2f cores), iowait %.1f%%, steal %.1f%%", m.BusyPercent, m.Cores, m.BusyCores, m.IOWaitPercent, m.StealPercent)
		if m.OtherCores != nil {
			fmt.Fprintf(&b, "; other processes %.2f cores", *m.OtherCores)
		}
		b.WriteByte('\n')
	}
	for _, s := range r.Warnings {
		fmt.Fprintf(&b, "warning      %s\n", s)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func ms(d time.Duration) string      { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }
func seconds(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

func httpStatus(s int) string {
	if s == 0 {
		return "-"
	}
	return fmt.Sprintf("HTTP %d", s)
}

// jsonResult is the JSON form: flat, with units in the names, so that a
// script can pick a figure with one jq path.
type jsonResult struct {
	Endpoint          string       `json:"endpoint"`
	Connect           string       `json:"connect,omitempty"`
	ClientID          string       `json:"client_id"`
	Mode              string       `json:"mode"`
	Concurrency       int          `json:"concurrency"`
	RatePerS          float64      `json:"target_tokens_per_s,omitempty"`
	DurationS         float64      `json:"duration_s"`
	WarmupS           float64      `json:"warmup_s"`
	Tokens            int64        `json:"tokens"`
	TokensPerS        float64      `json:"tokens_per_s"`
	Requests          int64        `json:"requests"`
	NonceRoundTrips   int64        `json:"nonce_round_trips"`
	ErrorsTotal       int64        `json:"errors_total"`
	Errors            []ErrorCount `json:"errors"`
	LatencyMS         jsonLatency  `json:"latency_ms"`
	Connections       int64        `json:"connections"`
	GOMAXPROCS        int          `json:"gomaxprocs"`
	GeneratorCPUS     *float64     `json:"generator_cpu_s,omitempty"`
	GeneratorMSPerTok *float64     `json:"generator_cpu_ms_per_token,omitempty"`
	GeneratorCores    *float64     `json:"generator_cores,omitempty"`
	ServerPID         int          `json:"server_pid,omitempty"`
	ServerCPUS        *float64     `json:"server_cpu_s,omitempty"`
	ServerMSPerTok    *float64     `json:"server_cpu_ms_per_token,omitempty"`
	ServerCores       *float64     `json:"server_cores,omitempty"`
	ServerThread      *float64     `json:"server_busiest_thread_cores,omitempty"`
	MachineCores      int          `json:"machine_cores,omitempty"`
	MachineBusy       *float64     `json:"machine_busy_percent,omitempty"`
	MachineSteal      *float64     `json:"machine_steal_percent,omitempty"`
	MachineIOWait     *float64     `json:"machine_iowait_percent,omitempty"`
	MachineBusyCores  *float64     `json:"machine_busy_cores,omitempty"`
	OtherCores        *float64     `json:"other_processes_cores,omitempty"`
	Warnings          []string     `json:"warnings"`
}

type jsonLatency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// MarshalJSON writes the flat JSON form; durations are in seconds or
// milliseconds as the field names say.
func (r *Result) MarshalJSON() ([]byte, error) {
	msf := func(d time.Duration) float64 { return float64(d) / 1e6 }
	ptr := func(f float64) *float64 { return &f }
	j := jsonResult{
		Endpoint:        r.Endpoint,
		Connect:         r.Connect,
		ClientID:        r.ClientID,
		Mode:            r.Mode(),
		Concurrency:     r.Concurrency,
		RatePerS:        r.Rate,
		DurationS:       r.Duration.Seconds(),
		WarmupS:         r.Warmup.Seconds(),
		Tokens:          r.Tokens,
		TokensPerS:      r.TokensPerSecond(),
		Requests:        r.Requests,
		NonceRoundTrips: r.NonceRoundTrips,
		ErrorsTotal:     r.ErrorTotal(),
		Errors:          r.Errors,
		Connections:     r.Connections,
		GOMAXPROCS:      r.GOMAXPROCS,
		ServerPID:       r.ServerPID,
		Warnings:        r.Warnings,
		LatencyMS: jsonLatency{
			P50: msf(r.Latency.P50), P90: msf(r.Latency.P90), P99: msf(r.Latency.P99),
			Max: msf(r.Latency.Max), Mean: msf(r.Latency.Mean),
		},
	}
	if j.Errors == nil {
		j.Errors = []ErrorCount{}
	}
	if j.Warnings == nil {
		j.Warnings = []string{}
	}
	if g := r.Generator; g != nil {
		j.GeneratorCPUS, j.GeneratorMSPerTok, j.GeneratorCores = ptr(g.Time.Seconds()), ptr(msf(g.PerToken)), ptr(g.Cores)
	}
	if s := r.Server; s != nil {
		j.ServerCPUS, j.ServerMSPerTok, j.ServerCores = ptr(s.Time.Seconds()), ptr(msf(s.PerToken)), ptr(s.Cores)
		j.ServerThread = ptr(s.BusiestThread)
	}
	if m := r.Machine; m != nil {
		j.MachineCores, j.MachineBusy, j.MachineSteal = m.Cores, ptr(m.BusyPercent), ptr(m.StealPercent)
		j.MachineBusyCores, j.OtherCores, j.MachineIOWait = ptr(m.BusyCores), m.OtherCores, ptr(m.IOWaitPercent)
	}
	return json.Marshal(j)
}
