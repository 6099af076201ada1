package login

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/tillit-sts/tillit/internal/authorize"
	"github.com/tillit-sts/tillit/internal/identity"
	"github.com/tillit-sts/tillit/internal/login/page"
	"github.com/tillit-sts/tillit/internal/login/testidp"
	"github.com/tillit-sts/tillit/internal/store"
)

// testIDPLogin is the Login as the TestIDP's testidp.Login: the TestIDP
// form finds its transaction in the tx parameter (the query on the way
// in, the hidden field on the post).
type testIDPLogin Login

// txOf opens the transaction a request to the TestIDP carries. It must
// have been handed to a TestIDP (toProvider sets its IdP), so that a
// transaction of the choice page cannot skip the choice.
func (t *testIDPLogin) txOf(r *http.Request) (*transaction, *authorize.Request, string, error) {
	l := (*Login)(t)
	sealed := r.URL.Query().Get(fieldTx)
	if r.Method == http.MethodPost {
		sealed = r.PostForm.Get(fieldTx)
	}
	tx, req, err := l.openTx(sealed)
	if err != nil {
		return nil, nil, "", fmt.Errorf("%w: %w", testidp.ErrNoTransaction, err)
	}
	if tx.IdP != l.testIDP.Name {
		return nil, nil, "", fmt.Errorf("%w: the transaction is not the TestIDP's", testidp.ErrNoTransaction)
	}
	return tx, req, sealed, nil
}

// Transaction implements testidp.Login.
func (t *testIDPLogin) Transaction(r *http.Request) (*testidp.Transaction, error) {
	tx, req, sealed, err := t.txOf(r)
	if err != nil {
		(*Login)(t).refuse(r, "expired", http.StatusBadRequest)
		return nil, err
	}
	out := &testidp.Transaction{
		ID:        tx.ID,
		UILocales: req.UILocales,
		Hidden:    []page.Field{{Name: fieldTx, Value: sealed}},
	}
	if o := redirectOrigin(req.RedirectURI); o != "" {
		out.RedirectOrigins = []string{o}
	}
	// The test_* parameters come from the client's authenticated pushed
	// request (or its plain request, test environments only), never from
	// the browser.
	if req.Test.PID != "" {
		out.Automation = &testidp.Automation{PID: req.Test.PID, SecurityLevel: req.Test.SecurityLevel, HPRNumber: req.Test.HPRNumber}
		if out.Automation.SecurityLevel == "" {
			out.Automation.SecurityLevel = "4"
		}
	}
	return out, nil
}

// Authenticated implements testidp.Login: the person is completed from
// the registers, gets a new session, and the client its code.
func (t *testIDPLogin) Authenticated(w http.ResponseWriter, r *http.Request, _ *testidp.Transaction, p identity.Person) error {
	_, req, _, err := t.txOf(r)
	if err != nil {
		return err
	}
	return (*Login)(t).finish(w, r, req, p)
}

// finish ends a login at an identity provider: the person is completed
// from the registers, gets a new session, and the client its code.
func (l *Login) finish(w http.ResponseWriter, r *http.Request, req *authorize.Request, p identity.Person) error {
	if req.SecurityLevel == "4" && p.SecurityLevel < 4 {
		l.cfg.Authorize.Fail(w, r, req, authorize.CodeAccessDenied,
			fmt.Sprintf("the person logged in at security level %d, and the client asked for level 4", p.SecurityLevel))
		return nil
	}
	who, err := l.person(p)
	if err != nil {
		return err
	}
	sid, err := l.startSession(w, r, who, req.ClientID)
	if err != nil {
		return fmt.Errorf("login: start session: %w", err)
	}
	l.cfg.Authorize.Complete(r.Context(), w, r, req, authorize.Authentication{Person: who, SessionID: sid})
	return nil
}

// person completes who an identity provider logged in: their HPR number,
// when the provider gave none, from the HPR entry for their pid (in the
// registry snapshot), and their sub. The names the provider gave go with
// the login; the person register is not read here (in test environments
// the token endpoint reads it for a login without names, so a name
// corrected there shows at once).
func (l *Login) person(p identity.Person) (store.Login, error) {
	sub, err := l.cfg.Subject(p.PID)
	if err != nil {
		return store.Login{}, err
	}
	who := store.Login{
		Subject:       sub,
		PID:           p.PID,
		SecurityLevel: strconv.Itoa(p.SecurityLevel),
		HPRNumber:     p.HPRNumber,
		AMR:           p.AMR,
		AuthTime:      p.AuthTime,
		IdP:           p.IDP,
		Names:         store.Names(p.Names),
	}
	if who.HPRNumber == "" {
		if h, ok := l.cfg.Registry().HealthPersonnelByPID(p.PID); ok {
			who.HPRNumber = h.Number
		}
	}
	return who, nil
}

// limited takes a login attempt from the source address's budget before
// h, or answers 429.
func (l *Login) limited(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.allow(w, r, page.Negotiate("", r)) {
			h.ServeHTTP(w, r)
		}
	})
}

// counted counts the TestIDP's forged forms (403) in the refusals
// aggregate; Transaction counts the expired and invalid transactions. A
// form sent back with errors in it is a person typing, not a refusal.
func (l *Login) counted(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.status == http.StatusForbidden {
			l.refuse(r, "invalid_csrf", sw.status)
		}
	})
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(status int) {
	s.status = status
	s.ResponseWriter.WriteHeader(status)
}
