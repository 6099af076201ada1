package token

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/dpop"
	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/identity"
	"github.com/tillit-sts/tillit/internal/jws"
	"github.com/tillit-sts/tillit/internal/oauth"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/requestid"
	"github.com/tillit-sts/tillit/internal/store"
)

// UserinfoPath is where the userinfo endpoint is mounted (profile §1.2).
const UserinfoPath = "/connect/userinfo"

// JTIStore spends single-use values (store.Store).
type JTIStore interface {
	ConsumeJTIs(ctx context.Context, now time.Time, jtis []store.JTI) error
}

// UserinfoConfig wires the userinfo endpoint.
type UserinfoConfig struct {
	Issuer string
	// PublicKeys returns the published signing keys (keys.Manager.JWKS),
	// which verify the access tokens presented. Required.
	PublicKeys func() jose.JSONWebKeySet
	// Proofs checks the DPoP proofs of DPoP-bound tokens; its Nonces are
	// not used (userinfo asks for none, as an API need not).
	Proofs *dpop.Verifier
	// JTIs spends the jti of each DPoP proof. Required.
	JTIs     JTIStore
	Registry func() *registry.Snapshot
	// Names opens the names an identity provider gave, which the access
	// token carries sealed; nil gives none of them.
	Names *NameSealer
	// Persons gives the names of profile for a token without the
	// provider's names: the test population, given only in a test
	// environment; nil gives none.
	Persons PersonStore
	Now     func() time.Time
	Log     *slog.Logger
}

// Userinfo is the userinfo endpoint (OpenID Connect Core §5.3, profile
// §5.5): the person an access token of this service speaks for, by the
// scopes it carries. It is a resource server of the service's own: the
// token is checked as an API checks it (RFC 6750, RFC 9449 §7), but for
// any audience, since what it needs is openid.
type Userinfo struct {
	cfg    UserinfoConfig
	url    string
	proofs dpop.Verifier
	algs   string
}

// NewUserinfo returns the endpoint.
func NewUserinfo(cfg UserinfoConfig) *Userinfo {
	if cfg.PublicKeys == nil || cfg.Proofs == nil || cfg.JTIs == nil || cfg.Registry == nil {
		panic("token: NewUserinfo without PublicKeys, Proofs, JTIs or Registry")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	proofs := *cfg.Proofs
	proofs.Nonces = nil
	algs := proofs.Algorithms
	if algs == nil {
		algs = jws.Algorithms
	}
	return &Userinfo{cfg: cfg, url: strings.TrimSuffix(cfg.Issuer, "/") + UserinfoPath, proofs: proofs,
		algs: strings.Join(jws.AlgorithmNames(algs), " ")}
}

// URL is the endpoint's absolute URL.
func (e *Userinfo) URL() string { return e.url }

// Mount registers the endpoint: GET and POST (OpenID Connect Core §5.3.1).
func (e *Userinfo) Mount(mux *http.ServeMux) { mux.Handle(UserinfoPath, e) }

// userinfoError is a refusal as a resource server gives it (RFC 6750 §3,
// RFC 9449 §7.1): a status, a WWW-Authenticate challenge in the scheme the
// token calls for, and the error as a JSON body as well.
type userinfoError struct {
	status int
	code   string
	desc   string
	// scheme is "Bearer" or "DPoP"; empty challenges with both, for a
	// request whose scheme is not known.
	scheme string
	// scope is the scope to name in an insufficient_scope challenge.
	scope string
}

func (e *userinfoError) Error() string { return "token: userinfo: " + e.code + ": " + e.desc }

func refuseToken(scheme, desc string) *userinfoError {
	return &userinfoError{status: http.StatusUnauthorized, code: oauth.CodeInvalidToken, desc: desc, scheme: scheme}
}

// The pid_pseudonym, names and HPR details userinfo says; the rest are
// identity.Claims.
type userinfoResponse struct {
	identity.Claims
	// IssuedAt is HelseID's userinfo_issued_at (profile §5.5).
	IssuedAt   int64       `json:"userinfo_issued_at"`
	HPRDetails *hprDetails `json:"helseid://claims/hpr/hpr_details,omitempty"`
}

// hprDetails is helseid://claims/hpr/hpr_details (profile §5.5).
type hprDetails struct {
	Approvals []hprApproval `json:"approvals"`
}

type hprApproval struct {
	Profession        string    `json:"profession"`
	Authorization     hprCode   `json:"authorization"`
	RequisitionRights []hprCode `json:"requisition_rights"`
	Specialities      []hprCode `json:"specialities"`
}

type hprCode struct {
	Value       string `json:"value"`
	Description string `json:"description"`
}

func (e *Userinfo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp, err := e.handle(r)
	if err != nil {
		e.refuse(w, r, err)
		return
	}
	if err := oauth.WriteJSON(w, http.StatusOK, resp); err != nil {
		e.cfg.Log.Warn("userinfo response not written", "request_id", requestid.From(r.Context()), "err", err)
	}
}

func (e *Userinfo) handle(r *http.Request) (*userinfoResponse, error) {
	now := e.cfg.Now()
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return nil, &userinfoError{status: http.StatusMethodNotAllowed, code: oauth.CodeInvalidRequest, desc: "the userinfo endpoint accepts GET and POST"}
	}
	// The token goes in the Authorization header only: in a URL it ends
	// up in logs (RFC 6750 §2.3), and a DPoP proof cannot cover a form.
	authz := r.Header.Values("Authorization")
	switch {
	case r.URL.Query().Has("access_token") || len(authz) == 0 && formHasToken(r):
		return nil, &userinfoError{status: http.StatusBadRequest, code: oauth.CodeInvalidRequest, desc: "send the access token in the Authorization header"}
	case len(authz) == 0:
		// RFC 6750 §3.1: no error code for a request without credentials.
		return nil, &userinfoError{status: http.StatusUnauthorized}
	case len(authz) > 1:
		return nil, &userinfoError{status: http.StatusBadRequest, code: oauth.CodeInvalidRequest, desc: "one Authorization header"}
	}
	scheme, raw, _ := strings.Cut(authz[0], " ")
	switch {
	case strings.EqualFold(scheme, "DPoP"):
		scheme = "DPoP"
	case strings.EqualFold(scheme, "Bearer"):
		scheme = "Bearer"
	default:
		return nil, &userinfoError{status: http.StatusUnauthorized, code: oauth.CodeInvalidRequest, desc: "the Authorization scheme must be DPoP or Bearer"}
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, refuseToken(scheme, "the access token is missing")
	}
	tok, err := verifyAccessToken(raw, e.cfg.PublicKeys(), e.cfg.Issuer, now)
	if err != nil {
		var te *tokenError
		if errors.As(err, &te) {
			return nil, refuseToken(scheme, "the access token "+te.Reason)
		}
		return nil, err
	}
	c := &tok.Claims
	// RFC 9449 §7.1: a bound token is presented with DPoP and a proof of
	// its key, for this request and this token; a Bearer token with
	// Bearer.
	if c.Cnf != nil {
		if scheme != "DPoP" {
			return nil, refuseToken("DPoP", "the access token is DPoP-bound: send it with the DPoP scheme and a DPoP proof")
		}
		proofs := r.Header.Values("DPoP")
		if len(proofs) != 1 {
			return nil, &userinfoError{status: http.StatusUnauthorized, code: oauth.CodeInvalidDPoPProof, desc: "send one DPoP proof", scheme: "DPoP"}
		}
		p, err := e.proofs.Verify(proofs[0], dpop.Request{Method: r.Method, URL: e.url, AccessToken: raw, JKT: c.Cnf.JKT, Now: now})
		if err != nil {
			var de *dpop.Error
			if errors.As(err, &de) {
				return nil, &userinfoError{status: http.StatusUnauthorized, code: oauth.CodeInvalidDPoPProof, desc: de.Reason, scheme: "DPoP"}
			}
			return nil, err
		}
		if err := e.cfg.JTIs.ConsumeJTIs(r.Context(), now, []store.JTI{{Key: proofKey(p), Expires: p.Expires}}); err != nil {
			if errors.Is(err, store.ErrReplay) {
				return nil, &userinfoError{status: http.StatusUnauthorized, code: oauth.CodeInvalidDPoPProof, desc: "DPoP proof jti was already used", scheme: "DPoP"}
			}
			return nil, err
		}
	} else if scheme != "Bearer" {
		return nil, refuseToken("DPoP", "the access token is not DPoP-bound: send it with the Bearer scheme")
	}
	if !slices.Contains(c.Scope, helseid.ScopeOpenID) || c.Subject == "" {
		return nil, &userinfoError{status: http.StatusForbidden, code: oauth.CodeInsufficientScope,
			desc: "the access token was not issued with the openid scope", scheme: scheme, scope: helseid.ScopeOpenID}
	}
	return e.answer(r.Context(), c, now)
}

// answer is what the token's scopes grant about its person. The access
// token carries the person's claims by the same scopes (identity.ClaimsFor
// made them at login), so they are read from it; the login's own claims
// (auth_time, idp, amr, sid) are not the person's and are left out. The
// names the identity provider gave travel sealed in the token
// (NameSealer). A token without them gets the person register's names in
// a test environment, found by pid: only a token that carries the pid
// finds them (a client that wants the names of a login without the pid
// scope has them in its ID token). The HPR details are the approvals of
// the token's HPR number.
func (e *Userinfo) answer(ctx context.Context, c *AccessClaims, now time.Time) (*userinfoResponse, error) {
	id := &c.Identity
	out := &userinfoResponse{Claims: identity.Claims{
		Subject:        id.Subject,
		PID:            id.PID,
		PIDPseudonym:   id.PIDPseudonym,
		SecurityLevel:  id.SecurityLevel,
		AssuranceLevel: id.AssuranceLevel,
		Network:        id.Network,
		HPRNumber:      id.HPRNumber,
	}, IssuedAt: now.Unix()}
	if slices.Contains(c.Scope, helseid.ScopeProfile) {
		switch {
		case id.Names != "" && e.cfg.Names != nil:
			names, err := e.cfg.Names.open(id.Names, id.Subject)
			if err != nil {
				return nil, fmt.Errorf("token: userinfo: %w", err)
			}
			out.Profile = names.Profile()
		case id.Names == "" && e.cfg.Persons != nil && id.PID != "":
			names, err := registerNames(ctx, e.cfg.Persons, id.PID)
			if err != nil {
				return nil, fmt.Errorf("token: userinfo: %w", err)
			}
			out.Profile = names.Profile()
		}
	}
	if id.HPRNumber != "" {
		if h, ok := e.cfg.Registry().HealthPersonnel(id.HPRNumber); ok && h.Status == store.StatusActive {
			out.HPRDetails = detailsOf(h)
		}
	}
	return out, nil
}

func detailsOf(h *store.HealthPersonnel) *hprDetails {
	d := &hprDetails{Approvals: make([]hprApproval, 0, len(h.Approvals))}
	codes := func(cs []store.HPRCode) []hprCode {
		out := make([]hprCode, 0, len(cs))
		for _, c := range cs {
			out = append(out, hprCode(c))
		}
		return out
	}
	for _, a := range h.Approvals {
		d.Approvals = append(d.Approvals, hprApproval{
			Profession:        a.Profession,
			Authorization:     hprCode(a.Authorization),
			RequisitionRights: codes(a.RequisitionRights),
			Specialities:      codes(a.Specialities),
		})
	}
	return d
}

// formHasToken reports an access_token in a form body (RFC 6750 §2.2),
// reading at most a small bound of it.
func formHasToken(r *http.Request) bool {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		return false
	}
	r.Body = http.MaxBytesReader(nil, r.Body, DefaultMaxBody)
	if err := r.ParseForm(); err != nil {
		return false
	}
	return r.PostForm.Has("access_token")
}

// refuse writes a refusal: a userinfoError with its challenge, anything
// else as a bare 500 with its cause logged.
func (e *Userinfo) refuse(w http.ResponseWriter, r *http.Request, err error) {
	var ue *userinfoError
	if !errors.As(err, &ue) {
		e.cfg.Log.Error("userinfo failed", "request_id", requestid.From(r.Context()), "err", err)
		oauth.WriteError(w, err)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if ue.status == http.StatusUnauthorized || ue.status == http.StatusForbidden {
		if ue.scheme == "" || ue.scheme == "Bearer" {
			h.Add("WWW-Authenticate", challenge("Bearer", ue, ""))
		}
		if ue.scheme == "" || ue.scheme == "DPoP" {
			h.Add("WWW-Authenticate", challenge("DPoP", ue, e.algs))
		}
	}
	e.cfg.Log.Info("userinfo refused", "request_id", requestid.From(r.Context()), "error", ue.code, "description", ue.desc)
	if ue.code == "" {
		w.WriteHeader(ue.status)
		return
	}
	_ = writeJSONError(w, ue.status, ue.code, ue.desc)
}

func writeJSONError(w http.ResponseWriter, status int, code, desc string) error {
	return oauth.WriteJSON(w, status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, desc})
}

// challenge is a WWW-Authenticate value (RFC 6750 §3, RFC 9449 §7.1).
func challenge(scheme string, e *userinfoError, algs string) string {
	var b strings.Builder
	b.WriteString(scheme)
	sep := " "
	param := func(name, value string) {
		b.WriteString(sep + name + `="` + quotable(value) + `"`)
		sep = ", "
	}
	if e.code != "" && (e.scheme == "" || e.scheme == scheme) {
		param("error", e.code)
		if e.desc != "" {
			param("error_description", e.desc)
		}
		if e.scope != "" {
			param("scope", e.scope)
		}
	}
	if algs != "" {
		param("algs", algs)
	}
	return b.String()
}

// quotable keeps a value inside a quoted-string and within what RFC 6750
// §3 allows in error_description: printable ASCII without " and \.
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		if r > unicode.MaxASCII || r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}
