package resource_test

import (
	"encoding/json"
	"log"
	"net/http"

	"github.com/tillit-sts/tillit/resource"
)

// An API protects its routes with the middleware; handlers read the
// caller's claims from the request's context.
func ExampleValidator_Middleware() {
	v, err := resource.New(resource.Config{
		Issuer:   "https://helseid-sts.test.nhn.no",
		Audience: "nhn:deft",
		Scopes:   []string{"nhn:deft/api"},
		// Behind a reverse proxy, proofs name the URL clients call.
		PublicURL: "https://deft.example.no",
		OnError: func(r *http.Request, err error) {
			log.Printf("refused %s %s: %v", r.Method, r.URL.Path, err) // never the token
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /whoami", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := resource.ClaimsFromContext(r.Context())
		json.NewEncoder(w).Encode(map[string]string{
			"client":       c.ClientID,
			"organisation": c.Organization.Parent,
			"child":        c.Organization.Child,
		})
	})))
	// A route that needs a further scope.
	mux.Handle("POST /files", v.Middleware(v.RequireScopes("nhn:deft/write")(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) }))))
	log.Fatal(http.ListenAndServe("127.0.0.1:8081", mux))
}
