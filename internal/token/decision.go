package token

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/clientauth"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/requestid"
	"github.com/tillit-sts/tillit/internal/store"
)

// DecisionStore commits what the endpoints decide (store.Store).
type DecisionStore interface {
	CommitDecision(ctx context.Context, now time.Time, d store.Decision) (store.AuditRecord, error)
	ExpectDecision() store.Pending
}

// The endpoints whose decisions are audited, as records name them.
const (
	endpointToken         = "token"
	endpointIntrospection = "introspection"
	endpointRevocation    = "revocation"
)

// decision collects, as an endpoint gets to know them, the facts the audit
// record of a request holds: every token issued, answer given and request
// refused once the client is authenticated is on record before the
// response (refuse.go says which refusals are not).
type decision struct {
	// authenticated is set once the client assertion has verified
	// against a registered key of the client.
	authenticated bool
	grantType     string
	clientID      string
	parent        string
	child         string
	supplier      string
	subject       string
	audience      string
	scopes        []string
	tokenID       string
	// pending is the decision announced to the store (the token endpoint,
	// once the form is read); nil when none is.
	pending store.Pending
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

// commit commits dec, through the announced decision if there is one.
func (d *decision) commit(ctx context.Context, s DecisionStore, now time.Time, dec store.Decision) (store.AuditRecord, error) {
	if d.pending != nil {
		return d.pending.Commit(ctx, now, dec)
	}
	return s.CommitDecision(ctx, now, dec)
}

// close releases the announced decision if no commit has settled it (the
// refusal could not be recorded, or a panic).
func (d *decision) close() {
	if d.pending != nil {
		d.pending.Close()
	}
}

// newRecord is the audit record of a decision at the endpoint.
func (b *base) newRecord(r *http.Request, d *decision, outcome, code string) store.AuditRecord {
	return store.AuditRecord{
		Instance:  b.cfg.Instance,
		Time:      b.cfg.Now(),
		RequestID: requestid.From(r.Context()),
		// The client's own X-Request-Id, apart: it proves nothing.
		ClientRequestID: requestid.ClientFrom(r.Context()),
		Endpoint:        b.name,
		GrantType:       d.grantType,
		ClientID:        d.clientID,
		OrgParent:       d.parent,
		OrgChild:        d.child,
		OrgSupplier:     d.supplier,
		Subject:         d.subject,
		Audience:        d.audience,
		Scopes:          d.scopes,
		TokenID:         d.tokenID,
		Outcome:         outcome,
		Error:           code,
	}
}

// recordRefusal makes the refusal of a request durable before it is
// answered, and returns err. If that fails the client gets a bare
// server_error instead: every decision must be on record before the
// response.
func (b *base) recordRefusal(r *http.Request, d *decision, err error) error {
	code := oauth.CodeServerError
	if oe := oauth.As(err); oe != nil {
		code = oe.Code
	}
	rec := b.newRecord(r, d, audit.OutcomeRefused, code)
	ctx, cancel := refusalContext(r.Context())
	defer cancel()
	if _, cerr := d.commit(ctx, b.cfg.Decisions, b.cfg.Now(), store.Decision{Audit: rec}); cerr != nil {
		// Not wrapping err: its OAuth error must not reach the client.
		failed := fmt.Errorf("%w (the request was refused with %s): %w", errAuditFailed, code, cerr)
		if errors.Is(cerr, store.ErrAuditChainBroken) {
			// Nothing can be decided until an operator reseals the
			// chain: say so, rather than a bare server_error.
			return oauth.New(oauth.CodeTemporarilyUnavailable, "the audit log cannot be written: try again later").Wrap(failed)
		}
		if outOfTime(ctx, cerr) {
			// Out of time: 503 as for any store that does not answer,
			// never a wait beyond the deadline.
			return stalled(failed)
		}
		return failed
	}
	return err
}

// refusalContext is the context a refusal is recorded in: not canceled
// when the client goes away, so that the refusal of a request whose
// client gave up is still on record, but ending at the request's
// deadline, so that a store that does not answer cannot hold the answer.
func refusalContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx := context.WithoutCancel(parent)
	if d, ok := parent.Deadline(); ok {
		return context.WithDeadline(ctx, d)
	}
	return context.WithCancel(ctx)
}

var errAuditFailed = errors.New("token: the refusal could not be written to the audit log")

// commitAnswer spends the assertion of a request to introspection or
// revocation and records the answer, outcome, in one commit, durable
// before the answer is sent, as the token endpoint does with a token. A
// replayed assertion refuses the request. revokeFamily, when not empty, is
// revoked in the same commit: the record and the revocation it reports are
// written together or not at all.
func (b *base) commitAnswer(r *http.Request, d *decision, client *registry.Client, a *clientauth.Assertion, outcome, revokeFamily string) error {
	dec := store.Decision{
		JTIs:         []store.JTI{{Key: assertionKey(client.ID, a.JTI), Expires: b.assertions.ReplayUntil(a)}},
		RevokeFamily: revokeFamily,
		Audit:        b.newRecord(r, d, outcome, ""),
	}
	if _, err := d.commit(r.Context(), b.cfg.Decisions, b.cfg.Now(), dec); err != nil {
		b.outcomeUnknown(r, d, err, revokeFamily)
		return b.replayError(err)
	}
	return nil
}

// outcomeUnknown logs a commit that was sent and not answered in time
// (err is store.ErrOutcomeUnknown): it was written whole or not at all,
// and which is not known until the store answers again, when the audit
// log tells (the request ID). Only identifiers are logged, never a token.
// family is the refresh-token family the commit rotated or revoked.
func (b *base) outcomeUnknown(r *http.Request, d *decision, err error, family string) {
	if !errors.Is(err, store.ErrOutcomeUnknown) {
		return
	}
	b.cfg.Log.Warn(b.name+" commit outcome unknown", "request_id", requestid.From(r.Context()),
		"endpoint", b.name, "client_id", d.clientID, "grant_type", d.grantType, "jti", d.tokenID,
		"refresh_family", family)
}
