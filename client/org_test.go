package client

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tillit-sts/tillit/helseid"
)

// TestOrganizationDetails renders the organisation context of token
// requests into client assertions and compares them with the golden files
// that pin what NHN's libraries send (TestClientAssertionDetailsGolden), so
// that Config.Tenancy and TokenRequest.Organization write exactly what the
// helseid builders write. Multi-tenant rendering is tested here without the
// server, which does not issue multi-tenant tokens yet.
func TestOrganizationDetails(t *testing.T) {
	key := testKey(t, jose.ES256)
	const (
		parent  = "994598759"
		child   = "313231593"
		journal = "a99abfb4-2bea-4e0a-bb03-38e37febbd2c"
	)
	tests := []struct {
		name       string
		cfg        Config
		req        TokenRequest
		wantGolden string // "" means no assertion_details
		wantErr    string
	}{
		{name: "single-tenant without child sends nothing", cfg: Config{}, req: TokenRequest{}},
		{name: "single-tenant child", req: TokenRequest{Organization: Organization{Child: child}}, wantGolden: "single-tenant-child"},
		{name: "single-tenant child by default", cfg: Config{Organization: Organization{Child: child}}, wantGolden: "single-tenant-child"},
		{name: "single-tenant child and journal id", req: TokenRequest{Organization: Organization{Child: child}, SFMJournalID: journal},
			wantGolden: "single-tenant-child-and-journal-id"},
		{name: "journal id alone", req: TokenRequest{SFMJournalID: journal}, wantGolden: "sfm-journal-id"},
		{name: "multi-tenant parent", cfg: Config{Tenancy: MultiTenant}, req: TokenRequest{Organization: Organization{Parent: parent}},
			wantGolden: "multi-tenant-parent"},
		{name: "multi-tenant parent and child", cfg: Config{Tenancy: MultiTenant}, req: TokenRequest{Organization: Organization{Parent: parent, Child: child}},
			wantGolden: "multi-tenant-parent-child"},
		{name: "multi-tenant default organisation", cfg: Config{Tenancy: MultiTenant, Organization: Organization{Parent: parent}},
			wantGolden: "multi-tenant-parent"},
		{name: "the request's organisation wins over the default", cfg: Config{Tenancy: MultiTenant, Organization: Organization{Parent: "313231593"}},
			req: TokenRequest{Organization: Organization{Parent: parent}}, wantGolden: "multi-tenant-parent"},
		{name: "multi-tenant parent and journal id", cfg: Config{Tenancy: MultiTenant},
			req: TokenRequest{Organization: Organization{Parent: parent}, SFMJournalID: journal}, wantGolden: "multi-tenant-parent-and-journal-id"},
		{name: "multi-tenant organisation given as a detail", cfg: Config{Tenancy: MultiTenant},
			req: TokenRequest{AssertionDetails: []helseid.Detail{mustDetail(helseid.NewMultiTenantOrganization(parent, ""))}}, wantGolden: "multi-tenant-parent"},

		{name: "multi-tenant without organisation", cfg: Config{Tenancy: MultiTenant},
			wantErr: "client: a multi-tenant client must name the organisation it acts for"},
		{name: "multi-tenant child without parent", cfg: Config{Tenancy: MultiTenant}, req: TokenRequest{Organization: Organization{Child: child}},
			wantErr: "client: a multi-tenant client must name the parent of the child organisation"},
		{name: "single-tenant parent", req: TokenRequest{Organization: Organization{Parent: parent}},
			wantErr: "client: a single-tenant client's parent organisation is fixed by its registration; name only a child"},
		{name: "bad check digit", req: TokenRequest{Organization: Organization{Child: "313231594"}},
			wantErr: `client: child organisation "313231594" is not a valid organisation number`},
		{name: "bad parent", cfg: Config{Tenancy: MultiTenant}, req: TokenRequest{Organization: Organization{Parent: "99459875"}},
			wantErr: `client: parent organisation "99459875" is not a valid organisation number`},
		{name: "two organisations", req: TokenRequest{Organization: Organization{Child: child},
			AssertionDetails: []helseid.Detail{mustDetail(helseid.NewChildOrganization(child))}},
			wantErr: "client: the request names two organisations"},
		{name: "supplier in a request", cfg: Config{Tenancy: MultiTenant}, req: TokenRequest{Organization: Organization{Parent: parent, Supplier: child}},
			wantErr: "client: the supplier organisation is for tokens to say; a request names only parent and child"},
		{name: "journal id not a UUID", req: TokenRequest{SFMJournalID: "j-1"},
			wantErr: `client: helseid: SFM journal id "j-1" is not a UUID`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Key = key
			c := newTestClient(t, cfg)
			p, err := c.prepare(tt.req)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a, err := c.ClientAssertion(p.details...)
			if err != nil {
				t.Fatal(err)
			}
			_, claims := verifyAssertion(t, a, key)
			raw, ok := claims[helseid.ClaimAssertionDetails]
			if tt.wantGolden == "" {
				if ok {
					t.Fatalf("assertion_details %s, want none", raw)
				}
				return
			}
			var got bytes.Buffer
			if err := json.Indent(&got, raw, "", "  "); err != nil {
				t.Fatal(err)
			}
			got.WriteByte('\n')
			want, err := os.ReadFile(filepath.Join("testdata", "assertion_details", tt.wantGolden+".golden.json"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("got\n%s\nwant\n%s", got.Bytes(), want)
			}
		})
	}
}

func mustDetail(d helseid.Detail, err error) helseid.Detail {
	if err != nil {
		panic(err)
	}
	return d
}

func TestNewChecksOrganization(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "unknown tenancy", cfg: Config{Tenancy: "none"}, wantErr: `client: unknown tenancy "none"`},
		{name: "single-tenant parent", cfg: Config{Organization: Organization{Parent: "994598759"}},
			wantErr: "client: a single-tenant client's parent organisation is fixed by its registration; name only a child"},
		{name: "supplier by default", cfg: Config{Tenancy: MultiTenant, Organization: Organization{Parent: "994598759", Supplier: "313231593"}},
			wantErr: "client: the supplier organisation is for tokens to say; a request names only parent and child"},
		{name: "bad default scope", cfg: Config{Scopes: []string{"a b"}}, wantErr: `client: scope "a b" is empty or has white space`},
		{name: "negative margin", cfg: Config{ExpiryMargin: -1}, wantErr: "client: expiry margin -1ns is negative"},
		{name: "alg given and different", cfg: Config{Algorithm: jose.ES384}, wantErr: "client: Algorithm ES384 differs from the key's alg ES256"},
		{name: "generated and given DPoP key", cfg: Config{GenerateDPoPKey: true, DPoPKey: testKey(t, jose.ES256)},
			wantErr: "client: GenerateDPoPKey and DPoPKey exclude each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Issuer, cfg.ClientID, cfg.Key = testIssuer, testClientID, testKey(t, jose.ES256)
			if _, err := New(cfg); err == nil || err.Error() != tt.wantErr {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigAlgorithmAndGeneratedDPoPKey(t *testing.T) {
	noAlg := *testKey(t, jose.ES256)
	noAlg.Algorithm = ""
	c := newTestClient(t, Config{Key: &noAlg, Algorithm: jose.ES256, GenerateDPoPKey: true})
	if c.alg != jose.ES256 {
		t.Fatalf("alg %s", c.alg)
	}
	if c.DPoPThumbprint() == noAlg.KeyID {
		t.Fatal("the generated DPoP key is the client key")
	}
	d := newTestClient(t, Config{Key: &noAlg, Algorithm: jose.ES256, GenerateDPoPKey: true})
	if d.DPoPThumbprint() == c.DPoPThumbprint() {
		t.Fatal("two clients share a generated DPoP key")
	}
}
