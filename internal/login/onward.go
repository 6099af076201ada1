package login

import (
	"html/template"
	"net/http"

	"github.com/tillit-sts/tillit/internal/login/page"
)

// onwardPage turns the redirect that answers an upstream login (the code,
// or an error, for the client) into a small page that sends the browser
// on. The browser reached the callback by a redirect after posting a form
// at the upstream provider, and browsers apply that form page's CSP
// form-action to every redirect that follows the post: the upstream can
// list our callback but not the client's redirect URI, so a redirect
// chain would stop there. A page ends the chain; its meta refresh (and,
// for a browser that does not follow one, its link) is a new navigation.
// No JavaScript is needed.
type onwardPage struct {
	http.ResponseWriter
	lang      page.Lang
	swallowed bool
}

var onwardTemplate = template.Must(template.New("onward").Parse(`<!doctype html>
<html lang="{{.Lang}}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="0;url={{.URL}}">
<title>{{.Title}}</title></head>
<body><main><h1>{{.Title}}</h1><p><a href="{{.URL}}">{{.Link}}</a></p></main></body></html>
`))

func (o *onwardPage) WriteHeader(status int) {
	loc := o.Header().Get("Location")
	if status != http.StatusSeeOther || loc == "" {
		o.ResponseWriter.WriteHeader(status)
		return
	}
	o.swallowed = true // http.Redirect's own body is not written
	h := o.Header()
	h.Del("Location")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	data := struct{ Lang, Title, Link, URL string }{"nb", "Tilbake til tjenesten", "Fortsett", loc}
	if o.lang == page.English {
		data.Lang, data.Title, data.Link = "en", "Back to the service", "Continue"
	}
	o.ResponseWriter.WriteHeader(http.StatusOK)
	_ = onwardTemplate.Execute(o.ResponseWriter, data)
}

func (o *onwardPage) Write(b []byte) (int, error) {
	if o.swallowed {
		return len(b), nil
	}
	return o.ResponseWriter.Write(b)
}
