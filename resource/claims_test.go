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
		{"every string claim in its field", `{"iss":"1","jti":"2","client_id":"3","client_amr":"4",
			"helseid://claims/client/client_name":"5","helseid://claims/client/client_tenancy":"6",
			"helseid://claims/client/claims/orgnr_parent":"7","helseid://claims/client/claims/orgnr_child":"8",
			"helseid://claims/client/claims/orgnr_supplier":"9","helseid://claims/client/original_client_id":"10",
			"nhn:sfm:journal-id":"11","sub":"12","helseid://claims/identity/pid":"13",
			"helseid://claims/identity/security_level":"14","helseid://claims/identity/assurance_level":"15",
			"helseid://claims/identity/network":"16","helseid://claims/hpr/hpr_number":"17",
			"name":"18","given_name":"19","middle_name":"20","family_name":"21","idp":"22",
			"exp":1,"nbf":2,"iat":3,"auth_time":4}`, nil,
			func(c *Claims, has present) error {
				p := c.Person
				if p == nil {
					return errors.New("no person")
				}
				got := []string{c.Issuer, c.JTI, c.ClientID, c.ClientAMR, c.ClientName, c.Tenancy,
					c.Organization.Parent, c.Organization.Child, c.Organization.Supplier, c.OriginalClientID,
					c.SFMJournalID, p.Pseudonym, p.PID, p.SecurityLevel, p.AssuranceLevel, p.Network,
					p.HPRNumber, p.Name, p.GivenName, p.MiddleName, p.FamilyName, p.IdentityProvider}
				for i, g := range got {
					if want := fmt.Sprint(i + 1); g != want {
						return fmt.Errorf("string claim %d holds %q", i+1, g)
					}
				}
				times := []time.Time{c.Expiry, c.NotBefore, c.IssuedAt, p.AuthTime}
				for i, tm := range times {
					if tm.Unix() != int64(i+1) {
						return fmt.Errorf("time claim %d is %v", i+1, tm.Unix())
					}
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
