package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tillit-sts/tillit/helseid"
)

// RFC 4231 test case 6: a 131-byte key of 0xaa.
var (
	rfc4231Key  = bytes.Repeat([]byte{0xaa}, 131)
	rfc4231Data = "Test Using Larger Than Block-Size Key - Hash Key First"
	rfc4231B64  = "YOQxWR7gtn8Niiaqy/W3f44LxiE3KMUUBUYEDw7jf1Q="
)

func TestPseudonymIsBase64HMACSHA256(t *testing.T) {
	got, err := Pseudonym(rfc4231Key, rfc4231Data)
	if err != nil {
		t.Fatal(err)
	}
	if got != rfc4231B64 {
		t.Fatalf("Pseudonym = %q, want %q", got, rfc4231B64)
	}
	if len(got) != 44 {
		t.Fatalf("len = %d, want 44", len(got))
	}
}

func TestPseudonymRefusesShortKey(t *testing.T) {
	_, err := Pseudonym(make([]byte, 31), "17056600574")
	if err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("err = %v, want a short-key error", err)
	}
}

var testKey = bytes.Repeat([]byte{7}, 32)

func person() Person {
	return Person{
		PID:           "17056600574",
		SecurityLevel: 4,
		AMR:           []string{AMRPassword},
		AuthTime:      time.Unix(1716473563, 0),
		IDP:           "testidp-oidc",
		HPRNumber:     "431001110",
		Names:         Names{Given: "KVART", Family: "GREVLING"},
	}
}

func claimsJSON(t *testing.T, p Person, scopes []string, target Target) map[string]any {
	t.Helper()
	c, err := ClaimsFor(p, scopes, target, testKey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestClaimsByScope(t *testing.T) {
	sub, _ := Pseudonym(testKey, "17056600574")
	login := []string{"sub", "auth_time", "idp", "amr"}
	tests := []struct {
		name   string
		scopes []string
		target Target
		want   map[string]any // claims beyond the target's login claims
	}{
		{"openid only", []string{"openid"}, IDToken, map[string]any{}},
		{"pid", []string{"openid", helseid.ScopePID}, IDToken, map[string]any{helseid.ClaimPID: "17056600574"}},
		{"pid pseudonym equals sub", []string{"openid", helseid.ScopePIDPseudonym}, IDToken, map[string]any{helseid.ClaimPIDPseudonym: sub}},
		{"security level", []string{"openid", helseid.ScopeSecurityLevel}, IDToken, map[string]any{helseid.ClaimSecurityLevel: "4"}},
		{"assurance level", []string{"openid", helseid.ScopeAssuranceLevel}, IDToken, map[string]any{helseid.ClaimAssuranceLevel: "high"}},
		{"network", []string{"openid", helseid.ScopeNetwork}, IDToken, map[string]any{helseid.ClaimNetwork: "internett"}},
		{"hpr number", []string{"openid", helseid.ScopeHPRNumber}, IDToken, map[string]any{helseid.ClaimHPRNumber: "431001110"}},
		{"legacy hpr scope", []string{"openid", helseid.ScopeHPRLegacy}, IDToken, map[string]any{helseid.ClaimHPRNumber: "431001110"}},
		{"identity/all is every identity claim but not hpr", []string{"openid", helseid.ScopeIdentityAll}, IDToken, map[string]any{
			helseid.ClaimPID: "17056600574", helseid.ClaimPIDPseudonym: sub, helseid.ClaimSecurityLevel: "4",
			helseid.ClaimAssuranceLevel: "high", helseid.ClaimNetwork: "internett",
		}},
		{"profile in the ID token", []string{"openid", "profile"}, IDToken, map[string]any{
			"name": "KVART GREVLING", "given_name": "KVART", "middle_name": "", "family_name": "GREVLING",
		}},
		{"no names in the access token", []string{"openid", "profile", helseid.ScopePID}, AccessToken, map[string]any{helseid.ClaimPID: "17056600574"}},
		{"API scopes and offline_access grant nothing", []string{"openid", "offline_access", "e-helse:sfm.api/sfm.api"}, AccessToken, map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := claimsJSON(t, person(), tt.scopes, tt.target)
			for _, k := range login {
				if _, ok := got[k]; !ok {
					t.Errorf("claim %q missing", k)
				}
				delete(got, k)
			}
			if len(got) != len(tt.want) {
				t.Errorf("claims = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

func TestLoginClaims(t *testing.T) {
	got := claimsJSON(t, person(), []string{"openid"}, AccessToken)
	sub, _ := Pseudonym(testKey, "17056600574")
	if got["sub"] != sub || got["auth_time"] != float64(1716473563) || got["idp"] != "testidp-oidc" {
		t.Fatalf("claims = %v", got)
	}
	if amr, _ := got["amr"].([]any); len(amr) != 1 || amr[0] != "pwd" {
		t.Fatalf("amr = %v, want [pwd]", got["amr"])
	}
}

// Userinfo describes the person, not the login: sub and the granted person
// claims, no auth_time, idp or amr.
func TestUserinfoClaims(t *testing.T) {
	got := claimsJSON(t, person(), []string{"openid", "profile", helseid.ScopeSecurityLevel}, Userinfo)
	for _, k := range []string{"auth_time", "idp", "amr"} {
		if _, ok := got[k]; ok {
			t.Errorf("userinfo has %s", k)
		}
	}
	for _, k := range []string{"sub", "name", "given_name", "middle_name", "family_name", helseid.ClaimSecurityLevel} {
		if _, ok := got[k]; !ok {
			t.Errorf("userinfo lacks %s", k)
		}
	}
}

func TestClaimsLeaveOutWhatIsUnknown(t *testing.T) {
	p := person()
	p.HPRNumber = ""
	p.Names = Names{}
	got := claimsJSON(t, p, []string{"openid", "profile", helseid.ScopeHPRNumber}, IDToken)
	for _, k := range []string{helseid.ClaimHPRNumber, "name", "given_name", "middle_name", "family_name"} {
		if _, ok := got[k]; ok {
			t.Errorf("claim %s issued for an unknown value", k)
		}
	}
}

func TestProfileName(t *testing.T) {
	p := person()
	p.Names = Names{Given: "Kari", Middle: "Nordmann", Family: "Hansen"}
	got := claimsJSON(t, p, []string{"openid", "profile"}, IDToken)
	if got["name"] != "Kari Nordmann Hansen" || got["middle_name"] != "Nordmann" {
		t.Fatalf("claims = %v", got)
	}
}

func TestAssuranceFollowsSecurityLevel(t *testing.T) {
	p := person()
	p.SecurityLevel = 3
	got := claimsJSON(t, p, []string{helseid.ScopeIdentityAll}, AccessToken)
	if got[helseid.ClaimSecurityLevel] != "3" || got[helseid.ClaimAssuranceLevel] != "substantial" {
		t.Fatalf("claims = %v", got)
	}
}

func TestClaimsRefuseInvalidPerson(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Person)
		key     []byte
		wantErr string
	}{
		{"bad check digit", func(p *Person) { p.PID = "17056600575" }, testKey, "pid is not a valid identity number"},
		{"empty pid", func(p *Person) { p.PID = "" }, testKey, "pid is not a valid identity number"},
		{"security level 5", func(p *Person) { p.SecurityLevel = 5 }, testKey, "security level 5"},
		{"security level 0", func(p *Person) { p.SecurityLevel = 0 }, testKey, "security level 0"},
		{"hpr number with letters", func(p *Person) { p.HPRNumber = "12a" }, testKey, "HPR number"},
		{"short key", func(*Person) {}, make([]byte, 16), "at least 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := person()
			tt.mutate(&p)
			_, err := ClaimsFor(p, []string{"openid"}, IDToken, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if tt.wantErr != "at least 32" && !errors.Is(err, ErrInvalidPerson) {
				t.Fatalf("err = %v, want ErrInvalidPerson", err)
			}
		})
	}
}
