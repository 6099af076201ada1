package page

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed style.css
var style []byte

// StylePath is where the stylesheet is served (Mount). The pages link it
// from there, and the policy allows styles from the page's own origin only.
const StylePath = "/login/style.css"

// Page is one of the pages this package renders: *ChooseIDP, *TestIDP,
// *Logout, *LoggedOut or *Error.
type Page interface {
	name() string
}

// Form is what every form of the pages posts besides its own fields.
type Form struct {
	// Action is where the form posts: a path on this server.
	Action string
	// CSRF is the form's token (csrf.Key.Token); it is posted as
	// csrf.FieldName.
	CSRF string
	// Hidden are further fields the receiving handler needs, such as the
	// login transaction's id.
	Hidden []Field
}

// Field is a hidden form field.
type Field struct {
	Name, Value string
}

// Provider is an identity provider on the choice page.
type Provider struct {
	// Name is the provider's registry name, posted as the field "idp".
	Name string
	// DisplayName is the button text.
	DisplayName string
}

// ChooseIDP lists the enabled identity providers, each a button that posts
// its Name as the field "idp".
type ChooseIDP struct {
	Form       Form
	ClientName string
	Providers  []Provider
}

// TestIDP is the TestIDP login form: pid, security level (3 or 4) and an
// optional HPR number. The values are shown as the user sent them.
type TestIDP struct {
	Form          Form
	PID           string
	SecurityLevel string
	HPRNumber     string
	Errors        []FieldError
}

// Names of the TestIDP form's fields, which are also the ids of its
// controls.
const (
	FieldPID           = "pid"
	FieldSecurityLevel = "security_level"
	FieldHPRNumber     = "hpr_number"
)

// FieldError is a problem with one field of a form.
type FieldError struct {
	// Field is the field's name, one of the Field… constants.
	Field string
	// Message is the key of the text that explains it, such as
	// MsgPIDChecksum.
	Message Message
}

// Message is the key of a text of the pages.
type Message string

// Texts for field errors.
const (
	MsgPIDRequired  Message = "error.pid.required"
	MsgPIDFormat    Message = "error.pid.format"
	MsgPIDDate      Message = "error.pid.date"
	MsgPIDChecksum  Message = "error.pid.checksum"
	MsgLevelInvalid Message = "error.level.invalid"
	MsgHPRFormat    Message = "error.hpr.format"
)

// Logout asks the user to confirm logging out. The form posts to Action.
type Logout struct {
	Form       Form
	ClientName string
}

// LoggedOut says the person is logged out, when there is nowhere to send
// them back to (no registered post-logout redirect URI was given).
type LoggedOut struct{}

// ErrorKind says what went wrong, and so what the error page tells the user
// to do.
type ErrorKind string

// The errors a login page can report.
const (
	// ErrorExpired: the login transaction is gone (expired, spent or never
	// there). Start again at the service.
	ErrorExpired ErrorKind = "expired"
	// ErrorForm: a form's CSRF token was missing or wrong.
	ErrorForm ErrorKind = "form"
	// ErrorRequest: the client sent a request that cannot be answered at
	// its redirect URI (unknown client, unregistered redirect URI). Detail
	// says what was wrong.
	ErrorRequest ErrorKind = "request"
	// ErrorIDP: the identity provider did not complete the login.
	ErrorIDP ErrorKind = "idp"
	// ErrorServer: an internal failure; Reference says where to look.
	ErrorServer ErrorKind = "server"
	// ErrorBusy: too many login attempts from the user's address.
	ErrorBusy ErrorKind = "busy"
)

// Error is the error page: what went wrong and what to do.
type Error struct {
	Kind ErrorKind
	// Detail is a technical description for the client's developers, such
	// as an error_description. It is shown as written, in English; it must
	// never hold internal error text.
	Detail string
	// Reference is the request id, for support.
	Reference string
	// ReturnURL, when set, is a link back to the service.
	ReturnURL string
}

func (*ChooseIDP) name() string { return "idp" }
func (*TestIDP) name() string   { return "testidp" }
func (*Logout) name() string    { return "logout" }
func (*Error) name() string     { return "error" }
func (*LoggedOut) name() string { return "loggedout" }

// view is what the templates see.
type view struct {
	Lang      Lang
	Title     string
	StylePath string
	P         Page
	// Errors by field, for the TestIDP form.
	FieldErrors map[string]Message
}

var pageNames = []string{"idp", "testidp", "logout", "loggedout", "error"}

// templates holds every page in every language: the texts are looked up
// when a template runs, through a function bound to its language.
var templates = func() map[Lang]map[string]*template.Template {
	out := map[Lang]map[string]*template.Template{}
	for _, l := range Langs {
		out[l] = map[string]*template.Template{}
		for _, n := range pageNames {
			t := template.New("layout.html").Funcs(template.FuncMap{"t": translator(l)})
			out[l][n] = template.Must(t.ParseFS(templateFS, "templates/layout.html", "templates/"+n+".html"))
		}
	}
	return out
}()

func translator(l Lang) func(key any) (string, error) {
	return func(key any) (string, error) {
		k := fmt.Sprint(key)
		if m, ok := messages[k]; ok {
			if s, ok := m[l]; ok {
				return s, nil
			}
		}
		return "", fmt.Errorf("page: no %s text for %q", l, k)
	}
}

// Render writes p in lang with status and the security headers
// (SetHeaders, formTargets as there). The page is rendered in full before
// anything is written, so a failure leaves the response untouched for the
// caller's error handling.
func Render(w http.ResponseWriter, status int, lang Lang, p Page, formTargets ...string) error {
	set, ok := templates[lang]
	if !ok {
		set = templates[Norwegian]
		lang = Norwegian
	}
	v := view{Lang: lang, Title: p.name() + ".title", StylePath: StylePath, P: p}
	if e, ok := p.(*Error); ok && e.Kind == "" {
		return fmt.Errorf("page: error page without a kind")
	}
	if f, ok := p.(*TestIDP); ok && len(f.Errors) > 0 {
		v.FieldErrors = map[string]Message{}
		for _, e := range f.Errors {
			if _, dup := v.FieldErrors[e.Field]; !dup {
				v.FieldErrors[e.Field] = e.Message
			}
		}
	}
	var buf bytes.Buffer
	if err := set[p.name()].Execute(&buf, v); err != nil {
		return fmt.Errorf("page: render %s: %w", p.name(), err)
	}
	SetHeaders(w, formTargets...)
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", string(lang))
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// Mount serves the stylesheet at StylePath.
func Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET "+StylePath, ServeStyle)
}

// ServeStyle serves the stylesheet. It may be cached for a day: it changes
// only with a release.
func ServeStyle(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/css; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(style)))
	_, _ = w.Write(style)
}
