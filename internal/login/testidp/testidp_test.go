package testidp

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/internal/identity"
	"github.com/tillit-sts/tillit/internal/login/csrf"
	"github.com/tillit-sts/tillit/internal/login/page"
)

// fakeLogin is a Login over an in-memory set of transactions, found by the
// "tx" query or form field. Authenticated redirects to the client with the
// pid in the query, which a real login never does but a test can read.
type fakeLogin struct {
	mu      sync.Mutex
	txs     map[string]*Transaction
	got     []identity.Person
	failTx  error
	failEnd error
}

func (f *fakeLogin) Transaction(r *http.Request) (*Transaction, error) {
	if f.failTx != nil {
		return nil, f.failTx
	}
	id := r.URL.Query().Get("tx")
	if r.Method == http.MethodPost {
		id = r.PostForm.Get("tx")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	tx, ok := f.txs[id]
	if !ok {
		return nil, ErrNoTransaction
	}
	return tx, nil
}

func (f *fakeLogin) Authenticated(w http.ResponseWriter, r *http.Request, tx *Transaction, p identity.Person) error {
	if f.failEnd != nil {
		return f.failEnd
	}
	f.mu.Lock()
	f.got = append(f.got, p)
	f.mu.Unlock()
	http.Redirect(w, r, tx.RedirectOrigins[0]+"/callback?pid="+p.PID, http.StatusSeeOther)
	return nil
}

func (f *fakeLogin) persons() []identity.Person {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]identity.Person(nil), f.got...)
}

var testTime = time.Date(2026, 3, 1, 12, 0, 0, 500, time.UTC)

func newHandler(t *testing.T) (*Handler, *fakeLogin) {
	t.Helper()
	k, err := csrf.New(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeLogin{txs: map[string]*Transaction{
		"tx-1": {ID: "tx-1", Hidden: []page.Field{{Name: "tx", Value: "tx-1"}}, RedirectOrigins: []string{"https://client.example"}},
		"tx-2": {ID: "tx-2", Hidden: []page.Field{{Name: "tx", Value: "tx-2"}}, RedirectOrigins: []string{"https://client.example"}, UILocales: "en-us"},
	}}
	return &Handler{CSRF: k, Login: f, Now: func() time.Time { return testTime }}, f
}

func post(h http.Handler, v url.Values) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", DefaultPath, strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func validPost(h *Handler) url.Values {
	return url.Values{
		"tx":                    {"tx-1"},
		csrf.FieldName:          {h.CSRF.Token("tx-1", csrfForm)},
		page.FieldPID:           {"17056600574"},
		page.FieldSecurityLevel: {"4"},
		page.FieldHPRNumber:     {"431001110"},
	}
}

func TestFormRenders(t *testing.T) {
	h, _ := newHandler(t)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", DefaultPath+"?tx=tx-1", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	body := rec.Body.String()
	tok := h.CSRF.Token("tx-1", csrfForm)
	for _, want := range []string{`lang="nb"`, `name="csrf_token" value="` + tok + `"`, `name="tx" value="tx-1"`, `action="/login/testidp"`, `value="4" checked`} {
		if !strings.Contains(body, want) {
			t.Errorf("form lacks %s", want)
		}
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://client.example;") {
		t.Errorf("CSP %q does not let the post redirect to the client", csp)
	}
}

func TestLogin(t *testing.T) {
	h, f := newHandler(t)
	rec := post(h, validPost(h))
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "https://client.example/callback?pid=17056600574" {
		t.Fatalf("status %d location %q body %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	got := f.persons()
	if len(got) != 1 {
		t.Fatalf("%d logins", len(got))
	}
	p := got[0]
	if p.PID != "17056600574" || p.SecurityLevel != 4 || p.HPRNumber != "431001110" || p.IDP != DefaultName ||
		len(p.AMR) != 1 || p.AMR[0] != "pwd" || !p.AuthTime.Equal(testTime.Truncate(time.Second)) {
		t.Fatalf("person %+v", p)
	}
}

// Forge-one-fault: start from a valid post and break one thing per row.
func TestPostRefused(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(h *Handler, v url.Values)
		wantCode int
		wantText string
	}{
		{"missing CSRF token", func(_ *Handler, v url.Values) { v.Del(csrf.FieldName) }, http.StatusForbidden, "Skjemaet kunne ikke godtas"},
		{"empty CSRF token", func(_ *Handler, v url.Values) { v.Set(csrf.FieldName, "") }, http.StatusForbidden, "Skjemaet kunne ikke godtas"},
		{"CSRF token of another transaction", func(h *Handler, v url.Values) { v.Set(csrf.FieldName, h.CSRF.Token("tx-2", csrfForm)) }, http.StatusForbidden, "Skjemaet kunne ikke godtas"},
		{"CSRF token of another form", func(h *Handler, v url.Values) { v.Set(csrf.FieldName, h.CSRF.Token("tx-1", "logout")) }, http.StatusForbidden, "Skjemaet kunne ikke godtas"},
		{"CSRF token from another key", func(_ *Handler, v url.Values) {
			k, _ := csrf.New(bytes.Repeat([]byte{4}, 32))
			v.Set(csrf.FieldName, k.Token("tx-1", csrfForm))
		}, http.StatusForbidden, "Skjemaet kunne ikke godtas"},
		{"repeated field", func(_ *Handler, v url.Values) { v.Add(page.FieldPID, "06828399789") }, http.StatusBadRequest, "Skjemaet kunne ikke godtas"},
		{"unknown transaction", func(_ *Handler, v url.Values) { v.Set("tx", "tx-9") }, http.StatusBadRequest, "Innloggingen er utløpt"},
		{"pid check digit", func(_ *Handler, v url.Values) { v.Set(page.FieldPID, "17056600575") }, http.StatusBadRequest, "kontrollsifrene stemmer ikke"},
		{"pid too short", func(_ *Handler, v url.Values) { v.Set(page.FieldPID, "1705660057") }, http.StatusBadRequest, "må være 11 siffer"},
		{"pid without a date", func(_ *Handler, v url.Values) { v.Set(page.FieldPID, "32056600574") }, http.StatusBadRequest, "må begynne med en gyldig dato"},
		{"pid empty", func(_ *Handler, v url.Values) { v.Set(page.FieldPID, "") }, http.StatusBadRequest, "Skriv inn fødselsnummeret"},
		{"security level 2", func(_ *Handler, v url.Values) { v.Set(page.FieldSecurityLevel, "2") }, http.StatusBadRequest, "Velg sikkerhetsnivå 3 eller 4"},
		{"security level missing", func(_ *Handler, v url.Values) { v.Del(page.FieldSecurityLevel) }, http.StatusBadRequest, "Velg sikkerhetsnivå 3 eller 4"},
		{"HPR number with letters", func(_ *Handler, v url.Values) { v.Set(page.FieldHPRNumber, "43100A") }, http.StatusBadRequest, "HPR-nummeret må være 1 til 9 siffer"},
		{"oversized body", func(_ *Handler, v url.Values) { v.Set("pad", strings.Repeat("x", maxBody)) }, http.StatusBadRequest, "Skjemaet kunne ikke godtas"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, f := newHandler(t)
			v := validPost(h)
			tt.mutate(h, v)
			rec := post(h, v)
			if rec.Code != tt.wantCode {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantCode)
			}
			if !strings.Contains(rec.Body.String(), tt.wantText) {
				t.Fatalf("body lacks %q:\n%s", tt.wantText, rec.Body)
			}
			if n := len(f.persons()); n != 0 {
				t.Fatalf("%d logins from a refused post", n)
			}
			if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("X-Frame-Options") != "DENY" {
				t.Fatal("error page without security headers")
			}
		})
	}
}

// A refused post shows the form again with what was typed, in the
// transaction's language.
func TestErrorsInEnglish(t *testing.T) {
	h, _ := newHandler(t)
	v := validPost(h)
	v.Set("tx", "tx-2")
	v.Set(csrf.FieldName, h.CSRF.Token("tx-2", csrfForm))
	v.Set(page.FieldPID, "17056600575")
	rec := post(h, v)
	body := rec.Body.String()
	for _, want := range []string{`lang="en"`, "its check digits do not match", `value="17056600575"`, `aria-invalid="true"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

func TestAutomation(t *testing.T) {
	tests := []struct {
		name     string
		params   url.Values
		wantCode int
		wantPID  string
		wantText string
	}{
		{"valid", url.Values{ParamPID: {"06828399789"}, ParamSecurityLevel: {"3"}}, http.StatusSeeOther, "06828399789", ""},
		{"with HPR number", url.Values{ParamPID: {"17056600574"}, ParamSecurityLevel: {"4"}, ParamHPRNumber: {"431001110"}}, http.StatusSeeOther, "17056600574", ""},
		{"bad pid shows the form", url.Values{ParamPID: {"17056600575"}, ParamSecurityLevel: {"4"}}, http.StatusBadRequest, "", "kontrollsifrene stemmer ikke"},
		{"missing level shows the form", url.Values{ParamPID: {"17056600574"}}, http.StatusBadRequest, "", "Velg sikkerhetsnivå 3 eller 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, f := newHandler(t)
			f.txs["tx-1"].Automation = AutomationFrom(tt.params)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", DefaultPath+"?tx=tx-1", nil))
			if rec.Code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantCode, rec.Body)
			}
			got := f.persons()
			if tt.wantPID == "" {
				if len(got) != 0 || !strings.Contains(rec.Body.String(), tt.wantText) {
					t.Fatalf("logins %v, body %s", got, rec.Body)
				}
				return
			}
			if len(got) != 1 || got[0].PID != tt.wantPID {
				t.Fatalf("logins %+v", got)
			}
		})
	}
}

func TestAutomationFrom(t *testing.T) {
	if a := AutomationFrom(url.Values{ParamSecurityLevel: {"4"}}); a != nil {
		t.Fatalf("automation without test_pid: %+v", a)
	}
	a := AutomationFrom(url.Values{ParamPID: {"1"}, ParamSecurityLevel: {"4"}, ParamHPRNumber: {"2"}})
	if a == nil || *a != (Automation{PID: "1", SecurityLevel: "4", HPRNumber: "2"}) {
		t.Fatalf("automation %+v", a)
	}
}

func TestFailures(t *testing.T) {
	secret := errors.New("db password is hunter2")
	tests := []struct {
		name     string
		setup    func(*fakeLogin)
		req      func(*Handler) *http.Request
		wantCode int
		wantText string
	}{
		{"no transaction on GET", func(*fakeLogin) {}, func(*Handler) *http.Request { return httptest.NewRequest("GET", DefaultPath+"?tx=nope", nil) }, http.StatusBadRequest, "Innloggingen er utløpt"},
		{"transaction lookup fails", func(f *fakeLogin) { f.failTx = secret }, func(*Handler) *http.Request { return httptest.NewRequest("GET", DefaultPath+"?tx=tx-1", nil) }, http.StatusInternalServerError, "Det oppstod en feil hos oss"},
		{"completing the login fails", func(f *fakeLogin) { f.failEnd = secret }, func(h *Handler) *http.Request {
			r := httptest.NewRequest("POST", DefaultPath, strings.NewReader(validPost(h).Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, http.StatusInternalServerError, "Det oppstod en feil hos oss"},
		{"English from Accept-Language", func(*fakeLogin) {}, func(*Handler) *http.Request {
			r := httptest.NewRequest("GET", DefaultPath+"?tx=nope", nil)
			r.Header.Set("Accept-Language", "en-GB,en;q=0.9")
			return r
		}, http.StatusBadRequest, "The login has expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, f := newHandler(t)
			tt.setup(f)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, tt.req(h))
			b, _ := io.ReadAll(rec.Body)
			if rec.Code != tt.wantCode || !strings.Contains(string(b), tt.wantText) {
				t.Fatalf("status %d, want %d; body lacks %q:\n%s", rec.Code, tt.wantCode, tt.wantText, b)
			}
			if strings.Contains(string(b), "hunter2") {
				t.Fatal("internal error text on the page")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		in        Input
		wantErrs  []page.FieldError
		wantPID   string
		wantLevel int
		wantHPR   string
	}{
		{"valid", Input{"17056600574", "4", ""}, nil, "17056600574", 4, ""},
		{"spaces are ignored", Input{" 170566 00574 ", "3", "431 001 110"}, nil, "17056600574", 3, "431001110"},
		{"synthetic pid", Input{"06828399789", "4", ""}, nil, "06828399789", 4, ""},
		{"everything wrong", Input{"abc", "5", "1234567890"}, []page.FieldError{
			{Field: page.FieldPID, Message: page.MsgPIDFormat},
			{Field: page.FieldSecurityLevel, Message: page.MsgLevelInvalid},
			{Field: page.FieldHPRNumber, Message: page.MsgHPRFormat},
		}, "", 0, ""},
		{"oversized pid", Input{strings.Repeat("1", 100), "4", ""}, []page.FieldError{{Field: page.FieldPID, Message: page.MsgPIDFormat}}, "", 0, ""},
		{"non-ASCII digits", Input{"１７０５６６００５７４", "4", ""}, []page.FieldError{{Field: page.FieldPID, Message: page.MsgPIDFormat}}, "", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, errs := tt.in.Validate()
			if len(errs) != len(tt.wantErrs) {
				t.Fatalf("errors %v, want %v", errs, tt.wantErrs)
			}
			for i := range errs {
				if errs[i] != tt.wantErrs[i] {
					t.Fatalf("errors %v, want %v", errs, tt.wantErrs)
				}
			}
			if p.PID != tt.wantPID || p.SecurityLevel != tt.wantLevel || p.HPRNumber != tt.wantHPR {
				t.Fatalf("person %+v", p)
			}
		})
	}
}

var tokenRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// The token the form carries is the one the post is checked against.
func TestFormTokenRoundTrip(t *testing.T) {
	h, f := newHandler(t)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", DefaultPath+"?tx=tx-1", nil))
	m := tokenRE.FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatal("no token in the form")
	}
	v := validPost(h)
	v.Set(csrf.FieldName, m[1])
	if rec := post(h, v); rec.Code != http.StatusSeeOther || len(f.persons()) != 1 {
		t.Fatalf("status %d", rec.Code)
	}
}
