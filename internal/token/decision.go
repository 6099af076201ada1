package token

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/clientauth"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/ratelimit"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/requestid"
	"github.com/tillit-sts/tillit/internal/store"
)

// DecisionStore commits what the endpoint decides (store.Store).
type DecisionStore interface {
	CommitDecision(ctx context.Context, now time.Time, d store.Decision) (store.AuditRecord, error)
	ExpectDecision() store.Pending
}

// decision collects, as the pipeline gets to know them, the facts the audit
// record of a request holds (decisions.md, Audit).
type decision struct {
	grantType string
	clientID  string
	parent    string
	child     string
	supplier  string
	subject   string
	audience  string
	scopes    []string
	tokenID   string
	// pending is the decision announced to the store once the request's
	// form is read; nil before.
	pending store.Pending
}

// commit commits dec, through the announced decision if there is one.
func (d *decision) commit(s DecisionStore, ctx context.Context, now time.Time, dec store.Decision) (store.AuditRecord, error) {
	if d.pending != nil {
		return d.pending.Commit(ctx, now, dec)
	}
	return s.CommitDecision(ctx, now, dec)
}

// close releases the announced decision, if no commit has settled it (the
// refusal could not be recorded).
func (d *decision) close() {
	if d.pending != nil {
		d.pending.Close()
	}
}

// fromIssue takes what the grant decided.
func (d *decision) fromIssue(is *issue) {
	d.audience = is.API.Audience
	d.scopes = is.Scopes
	d.parent, d.child, d.supplier = is.Claims.OrgNrParent, is.Claims.OrgNrChild, is.Claims.OrgNrSupplier
	// The audit log keeps the pseudonym (sub), never the pid.
	d.subject = is.Claims.Subject
}

// fromToken takes what an introspected token says: whom an API asked
// about.
func (d *decision) fromToken(c *AccessClaims) {
	d.audience, d.scopes, d.tokenID = c.Audience, c.Scope, c.JTI
	d.parent, d.child, d.supplier = c.OrgNrParent, c.OrgNrChild, c.OrgNrSupplier
	d.subject = c.Subject
}

// The endpoints whose decisions are audited, as records name them.
const (
	endpointToken         = "token"
	endpointIntrospection = "introspection"
	endpointRevocation    = "revocation"
)

// newRecord is the audit record of a decision at endpoint.
func newRecord(cfg Config, r *http.Request, endpoint string, d *decision, outcome, code string) store.AuditRecord {
	return store.AuditRecord{
		Instance:    cfg.Instance,
		Time:        cfg.Now(),
		RequestID:   requestid.From(r.Context()),
		Endpoint:    endpoint,
		GrantType:   d.grantType,
		ClientID:    d.clientID,
		OrgParent:   d.parent,
		OrgChild:    d.child,
		OrgSupplier: d.supplier,
		Subject:     d.subject,
		Audience:    d.audience,
		Scopes:      d.scopes,
		TokenID:     d.tokenID,
		Outcome:     outcome,
		Error:       code,
	}
}

// recordRefusal makes the refusal of a request to endpoint durable before
// it is answered, and returns err. If that fails the client gets a bare
// server_error instead: decisions.md wants every decision on record before
// the response.
func recordRefusal(cfg Config, r *http.Request, endpoint string, d *decision, err error) error {
	code := oauth.CodeServerError
	if oe := oauth.As(err); oe != nil {
		code = oe.Code
	}
	rec := newRecord(cfg, r, endpoint, d, audit.OutcomeRefused, code)
	if _, cerr := d.commit(cfg.Decisions, context.WithoutCancel(r.Context()), cfg.Now(), store.Decision{Audit: rec}); cerr != nil {
		// Not wrapping err: its OAuth error must not reach the client.
		return fmt.Errorf("%w (the request was refused with %s): %w", errAuditFailed, code, cerr)
	}
	return err
}

// commitAnswer spends the assertion of a request to endpoint (introspection,
// revocation) and records the answer, outcome, in one commit, durable
// before the answer is sent, as the token endpoint does with a token
// (decisions.md). A replayed assertion refuses the request. revokeFamily,
// when not empty, is revoked in the same commit: the record and the
// revocation it reports are written together or not at all.
func commitAnswer(cfg Config, r *http.Request, endpoint string, d *decision, client *registry.Client, a *clientauth.Assertion, outcome, revokeFamily string) error {
	dec := store.Decision{
		JTIs:         []store.JTI{{Key: assertionKey(client.ID, a.JTI), Expires: cfg.Assertions.ReplayUntil(a)}},
		RevokeFamily: revokeFamily,
		Audit:        newRecord(cfg, r, endpoint, d, outcome, ""),
	}
	if _, err := cfg.Decisions.CommitDecision(r.Context(), cfg.Now(), dec); err != nil {
		return replayError(cfg, err)
	}
	return nil
}

var errAuditFailed = errors.New("token: the refusal could not be written to the audit log")

// grantLabel keeps the grant_type the client sent out of metric labels
// unless it is one the endpoint knows: a label per made-up value would grow
// without bound.
func (e *Endpoint) grantLabel(g string) string {
	if _, ok := e.grants[g]; ok {
		return g
	}
	return "other"
}

// limitAddress and limitClient apply the rate limits: per source address
// before anything is verified, per client once it is authenticated. The
// token, introspection and revocation endpoints share both budgets, so
// that an address or a client cannot get round its limit, or make the
// service verify signatures without one, by calling another endpoint.
func limitAddress(cfg Config, r *http.Request, now time.Time) error {
	if cfg.AddressLimit == nil {
		return nil // off (the default): no need to work out the address
	}
	if ok, wait := cfg.AddressLimit.Allow(sourceAddress(cfg, r), now); !ok {
		cfg.Metrics.Limited("address")
		return limited("address", wait)
	}
	return nil
}

func limitClient(cfg Config, clientID string, now time.Time) error {
	if ok, wait := cfg.ClientLimit.Allow(clientID, now); !ok {
		cfg.Metrics.Limited("client")
		return limited("client", wait)
	}
	return nil
}

// limited answers a rate-limited request (RFC 6585 §4). OAuth has no code
// for it; temporarily_unavailable says to come back, Retry-After when.
func limited(what string, wait time.Duration) *oauth.Error {
	oe := oauth.New(oauth.CodeTemporarilyUnavailable, "too many requests from this "+what+": try again later")
	oe.Status = http.StatusTooManyRequests
	oe.RetryAfter = ratelimit.RetryAfter(wait)
	return oe
}

// sourceAddress is the address a request came from: the connection's peer,
// or, behind a proxy that is trusted to set it, the first X-Forwarded-For
// entry.
func sourceAddress(cfg Config, r *http.Request) string {
	if cfg.TrustForwardedFor {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			if ip := net.ParseIP(strings.TrimSpace(first)); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
