package token

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/clientauth"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/requestid"
	"github.com/tillit-sts/tillit/internal/store"
)

// Gate is the front of the token pipeline for an endpoint outside this
// package that authenticates clients as the token endpoint does: the
// pushed authorization request endpoint (RFC 9126 §2.1). It runs the same
// steps (rate limits, transport and form, private_key_jwt with the
// endpoint's URL also accepted as aud, the DPoP proof with the nonce round
// trip), spends the assertion and proof jtis only when the endpoint has
// said yes, and records every decision in the audit log.
type Gate struct {
	base
	proofs *dpop.Verifier
}

// NewGate returns a gate for the endpoint at path (relative to the issuer),
// named name in errors, audit records, metrics and logs.
func NewGate(cfg Shared, proofs *dpop.Verifier, name, path string) *Gate {
	return &Gate{base: newBase(cfg, name, path), proofs: proofs}
}

// Admitted is a request that passed the gate: its form, its authenticated
// client and its verified DPoP proof (nil without one).
type Admitted struct {
	*Request
	Client   *registry.Client
	Snapshot *registry.Snapshot
	Proof    *dpop.Proof
	Now      time.Time
}

// Outcome is what the endpoint decided, for the audit record of an
// accepted request.
type Outcome struct {
	GrantType string
	Subject   string
	Scopes    []string
	// Audience is the API or APIs the request is for, as one string.
	Audience string
}

// Handler decides an admitted request. It must spend nothing that a
// failed commit would leave spent: it runs before the jtis are spent, and
// what it writes stays unreachable if the commit then fails. It returns
// the status and body of the answer, or an error to refuse.
type Handler func(ctx context.Context, a *Admitted, o *Outcome) (status int, body any, err error)

// Serve runs the gate and h for one request, and answers it.
func (g *Gate) Serve(w http.ResponseWriter, r *http.Request, h Handler) {
	start := time.Now() // the real clock: metrics time requests
	d := &decision{}
	status, body, err := g.handle(w, r, d, h)
	if err != nil {
		g.refuse(w, r, d, err, "", start)
		return
	}
	if g.proofs.Nonces != nil {
		w.Header().Set("DPoP-Nonce", g.proofs.Nonces.Issue(g.cfg.Now()))
	}
	if err := oauth.WriteJSON(w, status, body); err != nil {
		g.cfg.Log.Warn(g.name+" response not written", "request_id", requestid.From(r.Context()), "err", err)
	}
	g.cfg.Metrics.Request(g.name, "", "ok", time.Since(start))
}

func (g *Gate) handle(w http.ResponseWriter, r *http.Request, d *decision, h Handler) (int, any, error) {
	now := g.cfg.Now()
	if err := g.limitAddress(r, now); err != nil {
		return 0, nil, err
	}
	req, err := parseRequest(w, r, g.cfg.MaxBody, g.name)
	if err != nil {
		return 0, nil, err
	}
	snap := g.cfg.Registry()
	client, assertion, err := g.authenticate(req, snap, now)
	if err != nil {
		return 0, nil, err
	}
	d.clientID = client.ID
	if err := g.limitClient(client.ID, now); err != nil {
		return 0, nil, err
	}
	var proof *dpop.Proof
	if req.DPoP != "" {
		if proof, err = g.proofs.Verify(req.DPoP, dpop.Request{Method: http.MethodPost, URL: g.url, Now: now}); err != nil {
			return 0, nil, proofError(g.proofs, err, now)
		}
	}
	var o Outcome
	status, body, err := h(r.Context(), &Admitted{Request: req, Client: client, Snapshot: snap, Proof: proof, Now: now}, &o)
	d.grantType, d.subject, d.scopes, d.audience = o.GrantType, o.Subject, o.Scopes, o.Audience
	if err != nil {
		return 0, nil, err
	}
	if err := g.spend(r, d, client, assertion, proof); err != nil {
		return 0, nil, err
	}
	return status, body, nil
}

// spend commits the accepted request: its assertion's and proof's jtis
// and its audit record, together.
func (g *Gate) spend(r *http.Request, d *decision, client *registry.Client, a *clientauth.Assertion, proof *dpop.Proof) error {
	jtis := []store.JTI{{Key: assertionKey(client.ID, a.JTI), Expires: g.assertions.ReplayUntil(a)}}
	if proof != nil {
		jtis = append(jtis, store.JTI{Key: proofKey(proof), Expires: proof.Expires})
	}
	dec := store.Decision{JTIs: jtis, Audit: g.newRecord(r, d, audit.OutcomeIssued, "")}
	if _, err := d.commit(r.Context(), g.cfg.Decisions, g.cfg.Now(), dec); err != nil {
		if errors.Is(err, store.ErrReplay) {
			return g.replayError(err)
		}
		return err
	}
	return nil
}
