package config

import (
	"os"
	"strings"
	"testing"

	"github.com/tillit-sts/tillit/internal/registry"
)

const exampleMarker = "<!-- example: internal/config/testdata/example.yaml -->\n```yaml\n"

// TestDocumentedExample keeps docs/configuration.md honest: its complete
// example is testdata/example.yaml, which must load and validate.
func TestDocumentedExample(t *testing.T) {
	clearEnv(t)
	md, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(md), exampleMarker)
	if !ok {
		t.Fatalf("docs/configuration.md has no %q", exampleMarker)
	}
	block, _, ok = strings.Cut(block, "```\n")
	if !ok {
		t.Fatal("the example block in docs/configuration.md is not closed")
	}
	file, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if block != string(file) {
		t.Fatal("the example in docs/configuration.md differs from testdata/example.yaml: copy one to the other")
	}

	c, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatalf("example does not load:\n%v", err)
	}
	r, err := c.Registry()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.APIs) != 3 || len(r.Organizations) != 4 || len(r.ClientSystems) != 2 || len(r.Clients) != 4 || len(r.Delegations) != 1 {
		t.Fatalf("example registry = %d APIs, %d organisations, %d client systems, %d clients, %d delegations",
			len(r.APIs), len(r.Organizations), len(r.ClientSystems), len(r.Clients), len(r.Delegations))
	}
	for _, a := range r.APIs {
		if a.AllowBearer {
			t.Errorf("api %s allows Bearer; the demo APIs require DPoP", a.Audience)
		}
	}
	sfm := r.Clients[1]
	if got := sfm.Claims["e-helse:sfm.api/client/claims/sfm-id"]; got == "" {
		t.Errorf("SFM client claims = %v, want sfm-id", sfm.Claims)
	}
	for _, cl := range r.Clients {
		if _, err := registry.ParseJWKS(cl.JWKS); err != nil {
			t.Errorf("client %s: %v", cl.ID, err)
		}
	}
}
