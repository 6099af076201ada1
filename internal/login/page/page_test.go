package page

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestMessagesHaveEveryLanguage(t *testing.T) {
	for k, m := range messages {
		for _, l := range Langs {
			if strings.TrimSpace(m[l]) == "" {
				t.Errorf("message %q has no %s text", k, l)
			}
		}
		if len(m) != len(Langs) {
			t.Errorf("message %q has %d languages, want %d", k, len(m), len(Langs))
		}
	}
}

func form() Form {
	return Form{Action: "/login/testidp", CSRF: "tok", Hidden: []Field{{"tx", "t-1"}}}
}

// pages has one of each page with every optional part filled in, so that
// every text key of every template is looked up.
func pages() map[string]Page {
	return map[string]Page{
		"idp":      &ChooseIDP{Form: form(), ClientName: "Journal", Providers: []Provider{{"testidp-oidc", "TestIDP"}}},
		"idp-none": &ChooseIDP{Form: form()},
		"testidp": &TestIDP{Form: form(), PID: "1", SecurityLevel: "4", Errors: []FieldError{
			{FieldPID, MsgPIDFormat}, {FieldSecurityLevel, MsgLevelInvalid}, {FieldHPRNumber, MsgHPRFormat},
			{FieldPID, MsgPIDRequired}, {FieldPID, MsgPIDDate}, {FieldPID, MsgPIDChecksum},
		}},
		"logout":        &Logout{Form: form(), ClientName: "Journal"},
		"error-expired": &Error{Kind: ErrorExpired, Reference: "r-1", ReturnURL: "https://client.example/"},
		"error-form":    &Error{Kind: ErrorForm},
		"error-request": &Error{Kind: ErrorRequest, Detail: "redirect_uri is not registered"},
		"error-idp":     &Error{Kind: ErrorIDP},
		"error-server":  &Error{Kind: ErrorServer, Reference: "r-2"},
		"error-busy":    &Error{Kind: ErrorBusy},
		"loggedout":     &LoggedOut{},
	}
}

func TestRenderEveryPageInEveryLanguage(t *testing.T) {
	for name, p := range pages() {
		for _, l := range Langs {
			t.Run(name+"/"+string(l), func(t *testing.T) {
				rec := httptest.NewRecorder()
				if err := Render(rec, http.StatusOK, l, p); err != nil {
					t.Fatal(err)
				}
				body := rec.Body.String()
				if !strings.Contains(body, `<html lang="`+string(l)+`">`) {
					t.Errorf("no lang attribute %q", l)
				}
				if !strings.Contains(body, `<meta name="viewport" content="width=device-width, initial-scale=1">`) {
					t.Error("no viewport meta")
				}
				if !strings.Contains(body, "<h1>") {
					t.Error("no h1")
				}
				if rec.Header().Get("Content-Language") != string(l) {
					t.Errorf("Content-Language %q", rec.Header().Get("Content-Language"))
				}
				// Every form carries the CSRF token.
				if strings.Contains(body, "<form") && !strings.Contains(body, `name="csrf_token" value="tok"`) {
					t.Error("form without the CSRF token")
				}
				// No external resources and no script.
				for _, bad := range []string{"<script", "http://", "style=", "<img"} {
					if strings.Contains(strings.ReplaceAll(body, `href="https://client.example/"`, ""), bad) {
						t.Errorf("page contains %q", bad)
					}
				}
			})
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	if err := Render(rec, http.StatusOK, Norwegian, pages()["testidp"], "https://client.example:8443", "javascript:alert(1)", "https://a.example; script-src *", "https://b.example/path"); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self' https://client.example:8443; frame-ancestors 'none'; base-uri 'none'",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
		"Content-Type":            "text/html; charset=utf-8",
	}
	for k, v := range want {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestOrigin(t *testing.T) {
	tests := []struct {
		name, in, want, wantErr string
	}{
		{"https with path", "https://Client.Example/cb?x=1", "https://client.example", ""},
		{"loopback with port", "http://127.0.0.1:51234/callback", "http://127.0.0.1:51234", ""},
		{"IPv6 loopback", "http://[::1]:8080/cb", "http://[::1]:8080", ""},
		{"custom scheme", "no.example.app:/cb", "", "not an absolute http(s) URI"},
		{"relative", "/cb", "", "not an absolute http(s) URI"},
		{"javascript", "javascript:alert(1)", "", "not an absolute http(s) URI"},
		{"policy injection", "https://a.example;script-src/", "", "characters an origin cannot have"},
		{"escaped space in the host", "https://a.example%20b/", "", "invalid URL escape"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Origin(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Origin = %q, %v, want %q", got, err, tt.want)
			}
		})
	}
}

// Field errors point at their field: the input names the error in
// aria-describedby and is aria-invalid, and the summary links to it.
func TestFieldErrorsAreAssociated(t *testing.T) {
	rec := httptest.NewRecorder()
	p := &TestIDP{Form: form(), PID: "123", SecurityLevel: "4", Errors: []FieldError{{FieldPID, MsgPIDFormat}}}
	if err := Render(rec, http.StatusBadRequest, English, p); err != nil {
		t.Fatal(err)
	}
	body := rec.Body.String()
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d", rec.Code)
	}
	for _, want := range []string{
		`<p id="pid-error" class="error">The national identity number must be 11 digits.</p>`,
		`aria-describedby="pid-hint pid-error" aria-invalid="true" value="123"`,
		`<a href="#pid">The national identity number must be 11 digits.</a>`,
		`aria-describedby="hpr_number-hint" value=""`,
		`<input id="level4" name="security_level" type="radio" value="4" checked>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(body, "hpr_number-error") {
		t.Error("an error shown for a field without one")
	}
}

// Every control has a label: each input's id has a <label for>.
func TestEveryInputHasALabel(t *testing.T) {
	rec := httptest.NewRecorder()
	if err := Render(rec, http.StatusOK, Norwegian, &TestIDP{Form: form(), SecurityLevel: "4"}); err != nil {
		t.Fatal(err)
	}
	body := rec.Body.String()
	ids := regexp.MustCompile(`<input id="([^"]+)"`).FindAllStringSubmatch(body, -1)
	if len(ids) != 4 {
		t.Fatalf("found %d visible inputs, want 4", len(ids))
	}
	for _, m := range ids {
		if !strings.Contains(body, `<label for="`+m[1]+`">`) {
			t.Errorf("input %q has no label", m[1])
		}
	}
}

func TestValuesAreEscaped(t *testing.T) {
	rec := httptest.NewRecorder()
	p := &Error{Kind: ErrorRequest, Detail: `<script>x</script>`, ReturnURL: "javascript:alert(1)"}
	if err := Render(rec, http.StatusBadRequest, Norwegian, p); err != nil {
		t.Fatal(err)
	}
	body := rec.Body.String()
	if strings.Contains(body, "<script>") || strings.Contains(body, "javascript:") {
		t.Fatalf("unescaped value in %s", body)
	}
}

func TestRenderRefusesUnknownErrorKind(t *testing.T) {
	tests := []struct {
		name    string
		kind    ErrorKind
		wantErr string
	}{
		{"empty", "", "page: error page without a kind"},
		{"unknown", "boom", `page: no nb text for "error.boom"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			err := Render(rec, http.StatusOK, Norwegian, &Error{Kind: tt.kind})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			// Nothing written: the caller can still answer.
			if rec.Body.Len() != 0 || len(rec.Header()) != 0 {
				t.Fatal("a failed render wrote to the response")
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name      string
		uiLocales string
		accept    string
		want      Lang
	}{
		{"default", "", "", Norwegian},
		{"HelseID's nb-no", "nb-no", "en", Norwegian},
		{"en-us", "en-us", "nb", English},
		{"first supported ui_locales tag wins", "de-DE en-GB nb", "", English},
		{"unsupported ui_locales fall to Accept-Language", "de sv", "en-GB,en;q=0.9", English},
		{"nynorsk gives bokmål", "nn", "", Norwegian},
		{"no gives bokmål", "", "no", Norwegian},
		{"Accept-Language quality", "", "nb;q=0.4, en;q=0.8", English},
		{"quality 0 refuses", "", "en;q=0, de", Norwegian},
		{"malformed quality ignored", "", "en;q=x, nb;q=0.1", Norwegian},
		{"underscore tag", "en_US", "", English},
		{"oversized ui_locales ignored", strings.Repeat("x ", 600) + "en", "", Norwegian},
		{"oversized header ignored", "", strings.Repeat("de,", 400) + "en", Norwegian},
		{"only the first 20 tags are read", strings.Repeat("de ", 20) + "en", "", Norwegian},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.accept != "" {
				r.Header.Set("Accept-Language", tt.accept)
			}
			if got := Negotiate(tt.uiLocales, r); got != tt.want {
				t.Fatalf("Negotiate(%q, %q) = %q, want %q", tt.uiLocales, tt.accept, got, tt.want)
			}
		})
	}
}

func TestServeStyle(t *testing.T) {
	mux := http.NewServeMux()
	Mount(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", StylePath, nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/css; charset=utf-8" || !strings.Contains(rec.Body.String(), ":focus-visible") {
		t.Fatalf("status %d type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if len(style) > 8<<10 {
		t.Fatalf("stylesheet is %d bytes; keep it small", len(style))
	}
}
