// Command epj is a small EPJ-like web app (an electronic patient record): a
// doctor logs in through the STS (the authorization code flow with PAR,
// PKCE and DPoP, from the client package), sees who the ID token says they
// are, and sends a prescription to examples/sfm with the person token. SFM
// exchanges that token for a Reseptformidleren token, and the page shows
// what Reseptformidleren saw: the doctor, this EPJ and SFM. The pages are
// plain HTML forms: they work without JavaScript.
//
//	go run ./cmd/tillit serve --dev
//	go run ./examples/reseptformidleren --issuer http://127.0.0.1:8080
//	go run ./examples/sfm --issuer http://127.0.0.1:8080 --key data/demo-sfm-api.jwk
//	go run ./examples/epj --issuer http://127.0.0.1:8080 --key data/demo-epj.jwk
//
// and open http://127.0.0.1:8084.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tillit-sts/tillit/client"
	"github.com/tillit-sts/tillit/keyfile"
)

// What the EPJ asks for at login: the person, their HPR number and
// security level, SFM's scope, and a refresh token for further tokens.
var loginScopes = []string{
	"openid", "profile", "offline_access",
	"helseid://scopes/identity/pid", "helseid://scopes/identity/security_level", "helseid://scopes/hpr/hpr_number",
	"e-helse:sfm.api/sfm.api",
}

// sfmAudience is the resource the person token is for: SFM takes tokens
// for it only, and exchanges them for Reseptformidleren.
const sfmAudience = "e-helse:sfm.api"

const (
	cookieName = "epj_session"
	// maxSessions bounds the in-memory sessions; the oldest go first.
	maxSessions = 1000
	// sessionLifetime is how long a session lives, logged in or not.
	sessionLifetime = 8 * time.Hour
	// maxDrug bounds the drug name, in characters.
	maxDrug = 100
	// maxAnswer bounds SFM's answer.
	maxAnswer = 1 << 20
)

func main() {
	issuer := flag.String("issuer", "http://127.0.0.1:8080", "issuer URL of the STS (HelseID's, or Tillit's)")
	listen := flag.String("listen", "127.0.0.1:8084", "address to listen on")
	publicURL := flag.String("public-url", "", "the URL browsers open, when it is not http://<listen>")
	clientID := flag.String("client-id", "demo-epj", "the EPJ's login client")
	keyPath := flag.String("key", "data/demo-epj.jwk", "that client's private key (a JWK with alg, or PEM)")
	sfmURL := flag.String("sfm", "http://127.0.0.1:8082", "base URL of examples/sfm")
	idp := flag.String("idp", "testidp-oidc", "identity provider to log in with (acr_values idp:<name>); empty shows the STS's choice")
	flag.Parse()

	key, err := keyfile.ReadFile(*keyPath)
	if err != nil {
		log.Fatal(err)
	}
	// GenerateDPoPKey: the person's tokens are bound to a key that lives
	// only in this process.
	c, err := client.New(client.Config{Issuer: *issuer, ClientID: *clientID, Key: key, GenerateDPoPKey: true})
	if err != nil {
		log.Fatal(err)
	}
	base := *publicURL
	if base == "" {
		base = "http://" + *listen
	}
	a := newApp(c, *issuer, base, *sfmURL, *idp, nil)
	log.Printf("EPJ example on %s, logins at %s, SFM at %s", base, *issuer, *sfmURL)
	srv := &http.Server{Addr: *listen, Handler: a, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// app is the EPJ: its login client, where it and SFM are, and its
// sessions.
type app struct {
	client *client.Client
	// stsOrigin is the issuer's origin, for the CSP.
	stsOrigin string
	base      string // the EPJ's own URL, without a trailing slash
	sfm       string
	idp       string
	// sfmBase carries the calls to SFM under Login.Transport; nil means
	// http.DefaultTransport.
	sfmBase http.RoundTripper
	// csrfKey makes the forms' CSRF tokens: HMAC of the session id.
	csrfKey []byte
	now     func() time.Time

	mu       sync.Mutex
	sessions map[string]*session
	mux      *http.ServeMux
}

// session is one browser's: a login under way, or a login made.
type session struct {
	id      string
	created time.Time
	pending *client.PendingLogin
	login   *client.Login
}

func newApp(c *client.Client, issuer, base, sfm, idp string, sfmBase http.RoundTripper) *app {
	a := &app{client: c, stsOrigin: originOf(issuer), base: strings.TrimSuffix(base, "/"), sfm: strings.TrimSuffix(sfm, "/"), idp: idp, sfmBase: sfmBase,
		csrfKey: randomBytes(), now: time.Now, sessions: map[string]*session{}}
	a.mux = http.NewServeMux()
	a.mux.HandleFunc("GET /{$}", a.home)
	a.mux.HandleFunc("POST /login", a.startLogin)
	a.mux.HandleFunc("GET /callback", a.callback)
	a.mux.HandleFunc("POST /prescriptions", a.prescribe)
	a.mux.HandleFunc("POST /logout", a.logout)
	return a
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' "+a.stsOrigin)
	w.Header().Set("X-Frame-Options", "DENY")
	a.mux.ServeHTTP(w, r)
}

// originOf is for the CSP: forms post to the EPJ only, but login and
// logout redirect the form post to the STS, which form-action must allow.
func originOf(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func randomBytes() []byte {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return b
}

// session returns the browser's session, nil when it has none.
func (a *app) session(r *http.Request) *session {
	ck, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sessions[ck.Value]
	if s != nil && a.now().Sub(s.created) > sessionLifetime {
		delete(a.sessions, s.id)
		return nil
	}
	return s
}

// newSession makes a session and sets its cookie, dropping the oldest
// when there are maxSessions.
func (a *app) newSession(w http.ResponseWriter) *session {
	s := &session{id: base64.RawURLEncoding.EncodeToString(randomBytes()), created: a.now()}
	a.mu.Lock()
	if len(a.sessions) >= maxSessions {
		var oldest *session
		for _, o := range a.sessions {
			if oldest == nil || o.created.Before(oldest.created) {
				oldest = o
			}
		}
		delete(a.sessions, oldest.id)
	}
	a.sessions[s.id] = s
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: strings.HasPrefix(a.base, "https:")})
	return s
}

func (a *app) endSession(w http.ResponseWriter, s *session) {
	a.mu.Lock()
	delete(a.sessions, s.id)
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// csrf is the forms' token for session s.
func (a *app) csrf(s *session) string {
	m := hmac.New(sha256.New, a.csrfKey)
	m.Write([]byte(s.id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (a *app) checkCSRF(s *session, r *http.Request) bool {
	return hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(a.csrf(s)))
}

// loggedIn returns the browser's session with a login, or shows the page
// for a browser without one.
func (a *app) loggedIn(w http.ResponseWriter, r *http.Request) *session {
	s := a.session(r)
	if s == nil || s.login == nil {
		a.render(w, http.StatusUnauthorized, &view{Error: "You are not logged in."})
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if !a.checkCSRF(s, r) {
		a.render(w, http.StatusForbidden, &view{Error: "The form is stale: open the page again."})
		return nil
	}
	return s
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	s := a.session(r)
	if s == nil || s.login == nil {
		a.render(w, http.StatusOK, &view{})
		return
	}
	a.render(w, http.StatusOK, a.doctorView(s))
}

// startLogin pushes the authorization request and sends the browser to
// the STS, keeping the PKCE verifier, state and nonce in the session.
func (a *app) startLogin(w http.ResponseWriter, r *http.Request) {
	req := client.AuthRequest{RedirectURI: a.base + "/callback", Scopes: loginScopes, Resources: []string{sfmAudience}}
	if a.idp != "" {
		req.ACRValues = []string{"idp:" + a.idp}
	}
	p, err := a.client.PushAuthorization(r.Context(), req)
	if err != nil {
		log.Printf("login: %v", err)
		a.render(w, http.StatusBadGateway, &view{Error: "The login could not be started."})
		return
	}
	s := a.newSession(w)
	s.pending = p
	http.Redirect(w, r, p.AuthURL, http.StatusSeeOther)
}

// callback completes the login. The logged-in session gets a new id, so
// that a session id planted before the login is worth nothing after it.
func (a *app) callback(w http.ResponseWriter, r *http.Request) {
	s := a.session(r)
	if s == nil || s.pending == nil {
		a.render(w, http.StatusBadRequest, &view{Error: "No login was started in this browser."})
		return
	}
	p := s.pending
	a.endSession(w, s)
	l, err := p.Exchange(r.Context(), r.URL.Query())
	if err != nil {
		log.Printf("login: %v", err)
		a.render(w, http.StatusForbidden, &view{Error: "The login failed."})
		return
	}
	n := a.newSession(w)
	n.login = l
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// prescribe sends the prescription through SFM with the person token and
// shows what Reseptformidleren saw.
func (a *app) prescribe(w http.ResponseWriter, r *http.Request) {
	s := a.loggedIn(w, r)
	if s == nil {
		return
	}
	v := a.doctorView(s)
	drug := strings.TrimSpace(r.PostFormValue("drug"))
	if drug == "" || utf8.RuneCountInString(drug) > maxDrug {
		v.Error = fmt.Sprintf("Name a drug, at most %d characters.", maxDrug)
		a.render(w, http.StatusBadRequest, v)
		return
	}
	v.Drug = drug
	answer, err := a.callSFM(r.Context(), s.login, drug)
	if err != nil {
		log.Printf("SFM: %v", err)
		v.Error = "SFM did not take the prescription: " + err.Error()
		a.render(w, http.StatusBadGateway, v)
		return
	}
	v.Answer = answer
	a.render(w, http.StatusOK, v)
}

// sfmAnswer is the part of SFM's answer the page shows.
type sfmAnswer struct {
	SFMSaw struct {
		ClientID string `json:"client_id"`
	} `json:"sfm_saw"`
	ReseptformidlerenSaw struct {
		ClientID         string `json:"client_id"`
		OriginalClientID string `json:"original_client_id"`
		ClientName       string `json:"client_name"`
		Actors           []struct {
			ClientID string `json:"client_id"`
		} `json:"actors"`
		Person *struct {
			Pseudonym string `json:"sub"`
			HPRNumber string `json:"hpr_number"`
		} `json:"person"`
	} `json:"reseptformidleren_saw"`
	// Raw is the whole answer, indented.
	Raw string
}

func (a *app) callSFM(ctx context.Context, l *client.Login, drug string) (*sfmAnswer, error) {
	hc := &http.Client{Transport: l.Transport("", a.sfmBase), Timeout: 30 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.sfm+"/prescriptions?"+url.Values{"drug": {drug}}.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := client.ResponseError(resp); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(body, &e)
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, e.Error)
	}
	var ans sfmAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("the answer is not SFM's: %w", err)
	}
	ans.Raw = string(body)
	return &ans, nil
}

// logout ends the EPJ's session and sends the browser to the STS to end
// the login there, back to the EPJ's front page when the STS knows it.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	s := a.loggedIn(w, r)
	if s == nil {
		return
	}
	a.endSession(w, s)
	end, err := s.login.EndSessionURL(r.Context(), a.base+"/", "")
	if err != nil {
		log.Printf("logout: %v", err)
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, end, http.StatusSeeOther)
}

// view is what the page shows.
type view struct {
	Doctor *doctor
	CSRF   string
	Drug   string
	Answer *sfmAnswer
	Error  string
}

type doctor struct {
	Name, HPRNumber, SecurityLevel, Subject string
}

func (a *app) doctorView(s *session) *view {
	raw := s.login.Claims.Raw
	str := func(k string) string { v, _ := raw[k].(string); return v }
	return &view{CSRF: a.csrf(s), Doctor: &doctor{
		Name:          str("name"),
		HPRNumber:     str("helseid://claims/hpr/hpr_number"),
		SecurityLevel: str("helseid://claims/identity/security_level"),
		Subject:       s.login.Claims.Subject,
	}}
}

func (a *app) render(w http.ResponseWriter, status int, v *view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := page.Execute(w, v); err != nil {
		log.Printf("page: %v", err)
	}
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo EPJ</title>
<style>body{font-family:sans-serif;max-width:40rem;margin:1rem auto;padding:0 1rem}pre{white-space:pre-wrap;word-break:break-all}</style>
</head>
<body>
<h1>Demo EPJ</h1>
{{with .Error}}<p id="error" role="alert">{{.}}</p>{{end}}
{{with .Doctor}}
<dl id="doctor">
<dt>Doctor</dt><dd id="name">{{.Name}}</dd>
<dt>HPR number</dt><dd id="hpr">{{.HPRNumber}}</dd>
<dt>Security level</dt><dd id="level">{{.SecurityLevel}}</dd>
</dl>
<h2>Prescription</h2>
<form method="post" action="/prescriptions">
<input type="hidden" name="csrf" value="{{$.CSRF}}">
<label for="drug">Drug</label>
<input id="drug" name="drug" required maxlength="100" value="{{$.Drug}}">
<button type="submit">Send prescription</button>
</form>
{{with $.Answer}}
<section id="answer">
<h2>Reseptformidleren saw</h2>
<dl>
<dt>Prescription of</dt><dd id="answer-drug">{{$.Drug}}</dd>
{{with .ReseptformidlerenSaw.Person}}<dt>Person (HPR number)</dt><dd id="answer-hpr">{{.HPRNumber}}</dd>{{end}}
<dt>EPJ (original client)</dt><dd id="answer-epj">{{.ReseptformidlerenSaw.OriginalClientID}}</dd>
<dt>SFM (actor)</dt><dd id="answer-sfm">{{range .ReseptformidlerenSaw.Actors}}{{.ClientID}} {{end}}</dd>
</dl>
<pre>{{.Raw}}</pre>
</section>
{{end}}
<form method="post" action="/logout">
<input type="hidden" name="csrf" value="{{$.CSRF}}">
<button type="submit">Log out</button>
</form>
{{else}}
<form method="post" action="/login"><button type="submit">Log in</button></form>
{{end}}
</body>
</html>
`))
