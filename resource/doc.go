// Package resource protects an API with HelseID access tokens: it validates
// DPoP-bound JWT access tokens and their DPoP proofs as NHN requires of APIs
// (profile §10.3 and §3.5, RFC 9068, RFC 9449), and offers net/http
// middleware that answers failures per RFC 6750 and RFC 9449 and hands the
// token's claims to the handler, typed.
//
// A Validator is made once per API (audience) and route kind and shared; it
// is safe for concurrent use. It reads the issuer's discovery document and
// signing keys itself, never from a URL a token names:
//
//	v, err := resource.New(resource.Config{
//		Issuer:   "https://helseid-sts.test.nhn.no",
//		Audience: "nhn:deft",
//		Scopes:   []string{"nhn:deft/api"},
//	})
//	...
//	mux.Handle("GET /whoami", v.Middleware(http.HandlerFunc(whoami)))
//
//	func whoami(w http.ResponseWriter, r *http.Request) {
//		c, _ := resource.ClaimsFromContext(r.Context())
//		fmt.Fprintln(w, c.ClientID, c.Organization.Parent)
//	}
//
// The package imports no Tillit server code and no database driver: it is
// meant to be used by other modules.
package resource
