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
//		Nonces:   resource.NewNonces(), // optional: require DPoP nonces
//	})
//	...
//	mux.Handle("GET /whoami", v.Middleware(http.HandlerFunc(whoami)))
//
//	func whoami(w http.ResponseWriter, r *http.Request) {
//		c, _ := resource.ClaimsFromContext(r.Context())
//		fmt.Fprintln(w, c.ClientID, c.Organization.Parent)
//	}
//
// An API that calls another on its caller's behalf exchanges the token it
// received: AccessTokenFromContext gives it, and the client package's
// ExchangeTokenSource takes it. Instances behind one load balancer share a
// nonce key (SharedNonces) and a ReplayCache.
//
// The package imports no Tillit server code and no database driver: it is
// meant to be used by other modules.
package resource
