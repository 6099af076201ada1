package testidp

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/identity"
	"github.com/tillit-sts/tillit/internal/login/csrf"
	"github.com/tillit-sts/tillit/internal/login/page"
)

// DefaultName is the TestIDP's name in idp claims and acr_values
// (idp:testidp-oidc), HelseID's name for it.
const DefaultName = "testidp-oidc"

// DefaultPath is where Mount serves the form.
const DefaultPath = "/login/testidp"

// csrfForm names this form in its CSRF tokens.
const csrfForm = "testidp"

// maxBody bounds the form post: three short fields, a token and a few
// hidden fields.
const maxBody = 8 << 10

// Parameters with which a client skips the form (at PAR or authorize).
const (
	ParamPID           = "test_pid"
	ParamSecurityLevel = "test_security_level"
	ParamHPRNumber     = "test_hpr_number"
)

// Transaction is the login a request to the TestIDP belongs to.
type Transaction struct {
	// ID binds the form's CSRF token; it must be a value another site
	// cannot learn, such as the login transaction's id.
	ID string
	// UILocales is the client's ui_locales, if any.
	UILocales string
	// Hidden are fields the form posts back so that Login.Transaction finds
	// the transaction again, such as its id (or nothing, when a cookie
	// carries it).
	Hidden []page.Field
	// RedirectOrigins are the origins the browser may be sent to after the
	// form is posted: the client's redirect URI origin (page.Origin).
	RedirectOrigins []string
	// Automation holds the client's test_* parameters; when set the person
	// is logged in without the form.
	Automation *Automation
}

// Automation are the test_* parameters a client sent.
type Automation struct {
	PID, SecurityLevel, HPRNumber string
}

// AutomationFrom reads the test_* parameters; nil when test_pid is absent.
// They are validated when used, exactly as the form's fields are.
func AutomationFrom(v url.Values) *Automation {
	if !v.Has(ParamPID) {
		return nil
	}
	return &Automation{PID: v.Get(ParamPID), SecurityLevel: v.Get(ParamSecurityLevel), HPRNumber: v.Get(ParamHPRNumber)}
}

// ErrNoTransaction is what Login.Transaction returns when the request
// belongs to no live login; the user is told to start again.
var ErrNoTransaction = errors.New("testidp: no login transaction")

// Login is the rest of the login, implemented by the authorization
// endpoint.
type Login interface {
	// Transaction finds the login transaction of a request to the TestIDP.
	// ErrNoTransaction (or an error wrapping it) means there is none; any
	// other error is an internal failure.
	Transaction(r *http.Request) (*Transaction, error)
	// Authenticated is called once with the person the tester logged in
	// as; it answers the browser, usually with a redirect to the client.
	// The person's names are unset: the person register knows them.
	Authenticated(w http.ResponseWriter, r *http.Request, tx *Transaction, p identity.Person) error
}

// Handler serves the TestIDP form (GET) and takes its post (POST).
type Handler struct {
	// Name is the provider name in the idp claim; DefaultName when empty.
	Name string
	// Path is where the handler is mounted, the form's action;
	// DefaultPath when empty.
	Path  string
	CSRF  *csrf.Key
	Login Login
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	Log *slog.Logger
}

// Mount serves the handler at its Path.
func (h *Handler) Mount(mux *http.ServeMux) {
	mux.Handle("GET "+h.path(), h)
	mux.Handle("POST "+h.path(), h)
}

func (h *Handler) path() string {
	if h.Path == "" {
		return DefaultPath
	}
	return h.Path
}

// ServeHTTP renders the form, or logs the person in.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		// Bound the body before anything reads it (Transaction may
		// read the form).
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			h.fail(w, r, page.Negotiate("", r), http.StatusBadRequest, page.ErrorForm, nil)
			return
		}
	}
	tx, err := h.Login.Transaction(r)
	if err != nil {
		lang := page.Negotiate("", r)
		if errors.Is(err, ErrNoTransaction) {
			h.fail(w, r, lang, http.StatusBadRequest, page.ErrorExpired, nil)
			return
		}
		h.fail(w, r, lang, http.StatusInternalServerError, page.ErrorServer, err)
		return
	}
	lang := page.Negotiate(tx.UILocales, r)
	switch r.Method {
	case http.MethodGet:
		if a := tx.Automation; a != nil {
			h.submit(w, r, tx, lang, Input{PID: a.PID, SecurityLevel: a.SecurityLevel, HPRNumber: a.HPRNumber})
			return
		}
		h.form(w, r, tx, lang, http.StatusOK, Input{SecurityLevel: "4"}, nil)
	case http.MethodPost:
		if err := postedOnce(r.PostForm); err != nil {
			h.fail(w, r, lang, http.StatusBadRequest, page.ErrorForm, nil)
			return
		}
		if err := h.CSRF.Check(tx.ID, csrfForm, r.PostForm.Get(csrf.FieldName)); err != nil {
			h.fail(w, r, lang, http.StatusForbidden, page.ErrorForm, nil)
			return
		}
		in := Input{
			PID:           r.PostForm.Get(page.FieldPID),
			SecurityLevel: r.PostForm.Get(page.FieldSecurityLevel),
			HPRNumber:     r.PostForm.Get(page.FieldHPRNumber),
		}
		h.submit(w, r, tx, lang, in)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// postedOnce refuses a form that repeats a field: which of two values a
// handler reads is a guess an attacker could exploit.
func postedOnce(v url.Values) error {
	for k, vs := range v {
		if len(vs) > 1 {
			return errors.New("testidp: field " + strconv.Quote(k) + " repeated")
		}
	}
	return nil
}

func (h *Handler) submit(w http.ResponseWriter, r *http.Request, tx *Transaction, lang page.Lang, in Input) {
	p, errs := in.Validate()
	if len(errs) > 0 {
		h.form(w, r, tx, lang, http.StatusBadRequest, in, errs)
		return
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	p.AuthTime = now().Truncate(time.Second)
	p.IDP = h.Name
	if p.IDP == "" {
		p.IDP = DefaultName
	}
	if err := h.Login.Authenticated(w, r, tx, p); err != nil {
		h.fail(w, r, lang, http.StatusInternalServerError, page.ErrorServer, err)
	}
}

func (h *Handler) form(w http.ResponseWriter, r *http.Request, tx *Transaction, lang page.Lang, status int, in Input, errs []page.FieldError) {
	p := &page.TestIDP{
		Form: page.Form{
			Action: h.path(),
			CSRF:   h.CSRF.Token(tx.ID, csrfForm),
			Hidden: tx.Hidden,
		},
		PID:           in.PID,
		SecurityLevel: in.SecurityLevel,
		HPRNumber:     in.HPRNumber,
		Errors:        errs,
	}
	if err := page.Render(w, status, lang, p, tx.RedirectOrigins...); err != nil {
		h.fail(w, r, lang, http.StatusInternalServerError, page.ErrorServer, err)
	}
}

// fail renders the error page; cause, when set, is logged and never shown.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, lang page.Lang, status int, kind page.ErrorKind, cause error) {
	if cause != nil && h.Log != nil {
		h.Log.ErrorContext(r.Context(), "testidp", "err", cause)
	}
	if err := page.Render(w, status, lang, &page.Error{Kind: kind}); err != nil {
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
	}
}

// Input is what the tester typed (or the client sent as test_*), as text.
type Input struct {
	PID, SecurityLevel, HPRNumber string
}

// maxField bounds each field before it is looked at.
const maxField = 64

// Validate checks the input and returns the person it names, or the
// problems with it, one per field at most. Spaces in the numbers are
// ignored ("170566 00574" is how people write them). The pid must start
// with a date and have valid mod-11 check digits (helseid.ParsePID);
// synthetic test numbers pass, as they should in a test identity provider.
func (in Input) Validate() (identity.Person, []page.FieldError) {
	var errs []page.FieldError
	pid := digitsOnly(in.PID)
	if pid == "" {
		errs = append(errs, page.FieldError{Field: page.FieldPID, Message: page.MsgPIDRequired})
	} else if _, err := helseid.ParsePID(pid); err != nil {
		msg := page.MsgPIDChecksum
		switch {
		case errors.Is(err, helseid.ErrPIDFormat):
			msg = page.MsgPIDFormat
		case errors.Is(err, helseid.ErrPIDDate):
			msg = page.MsgPIDDate
		}
		errs = append(errs, page.FieldError{Field: page.FieldPID, Message: msg})
	}
	level := 0
	switch strings.TrimSpace(in.SecurityLevel) {
	case "3":
		level = 3
	case "4":
		level = 4
	default:
		errs = append(errs, page.FieldError{Field: page.FieldSecurityLevel, Message: page.MsgLevelInvalid})
	}
	hpr := digitsOnly(in.HPRNumber)
	if hpr != "" && !helseid.ValidHPRNumber(hpr) {
		errs = append(errs, page.FieldError{Field: page.FieldHPRNumber, Message: page.MsgHPRFormat})
	}
	if len(errs) > 0 {
		return identity.Person{}, errs
	}
	return identity.Person{
		PID:           pid,
		SecurityLevel: level,
		HPRNumber:     hpr,
		AMR:           []string{identity.AMRPassword},
	}, nil
}

// digitsOnly drops spaces around and inside a number; an oversized value
// is kept whole so that it fails the format check.
func digitsOnly(s string) string {
	if len(s) > maxField {
		return s
	}
	return strings.Join(strings.Fields(s), "")
}
