package resource

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseClaims(t *testing.T) {
	act := func(depth int) string {
		return strings.Repeat(`{"client_id":"c","act":`, depth-1) + `{"client_id":"c"}` + strings.Repeat("}", depth-1)
	}
	tests := []struct {
		name    string
		payload string
		wantErr error
		check   func(c *Claims, has present) error
	}{
		{"types and names", `{"iss":"https://sts","aud":"nhn:deft","exp":1800000000.5,"nbf":1,"scope":"a b","cnf":{"jkt":"t"},"client_id":"c",
			"e-helse:sfm.api/client/claims/sfm-id":"s","x/client/claims/n":5,"x/client/claims/null":null,
			"helseid://claims/client/claims/orgnr_parent":"1","ISS":"other"}`, nil,
			func(c *Claims, has present) error {
				if c.Issuer != "https://sts" || fmt.Sprint(c.Audience) != "[nhn:deft]" || fmt.Sprint(c.Scopes) != "[a b]" ||
					c.JKT != "t" || !c.Expiry.Equal(time.Unix(1800000000, 5e8)) || !has.exp || !has.nbf ||
					c.Organization.Parent != "1" || c.Person != nil {
					return fmt.Errorf("claims %+v", c)
				}
				want := map[string]string{"e-helse:sfm.api/client/claims/sfm-id": "s", "x/client/claims/n": "5", "x/client/claims/null": ""}
				if fmt.Sprint(c.APIClaims) != fmt.Sprint(want) {
					return fmt.Errorf("API claims %v", c.APIClaims)
				}
				return nil
			}},
		{"null is missing", `{"exp":null,"nbf":null,"aud":null,"cnf":null,"act":null,"sub":null}`, nil,
			func(c *Claims, has present) error {
				if has.exp || has.nbf || c.Audience != nil || c.Act != nil || c.Person != nil {
					return fmt.Errorf("claims %+v, %+v", c, has)
				}
				return nil
			}},
		{"act chain at the limit", `{"act":` + act(maxActDepth) + `}`, nil,
			func(c *Claims, _ present) error {
				if n := len(c.Chain()); n != maxActDepth {
					return fmt.Errorf("chain of %d", n)
				}
				return nil
			}},
		{"act chain too deep", `{"act":` + act(maxActDepth+1) + `}`, errActDepth, nil},
		{"iss twice", `{"iss":"https://sts","iss":"https://evil"}`, errClaims, nil},
		{"aud twice", `{"aud":"nhn:deft","aud":"other"}`, errClaims, nil},
		{"cnf.jkt twice", `{"cnf":{"jkt":"a","jkt":"b"}}`, errClaims, nil},
		{"API claim twice", `{"x/client/claims/y":"a","x/client/claims/y":"b"}`, errClaims, nil},
		{"act client_id twice", `{"act":{"client_id":"a","client_id":"b"}}`, errClaims, nil},
		{"aud a number", `{"aud":1}`, errAudience, nil},
		{"scope with a number", `{"scope":["a",1]}`, errScope, nil},
		{"exp a string", `{"exp":"1800000000"}`, errClaims, nil},
		{"exp beyond float64", `{"exp":1e400}`, errTime, nil},
		{"exp negative", `{"exp":-1}`, errTime, nil},
		{"auth_time negative", `{"sub":"s","auth_time":-1}`, errTime, nil},
		{"cnf a string", `{"cnf":"t"}`, errClaims, nil},
		{"amr a string", `{"amr":"pwd"}`, errClaims, nil},
		{"client_id a number", `{"client_id":7}`, errClaims, nil},
		{"data after the object", `{"iss":"a"}{"iss":"b"}`, errClaims, nil},
		{"not an object", `["iss"]`, errClaims, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, has, err := parseClaims([]byte(tt.payload))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.check(c, has); err != nil {
				t.Fatal(err)
			}
		})
	}
}
