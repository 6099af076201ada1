package doccheck

import (
	"io/fs"
	"os"
	"path"
	"strings"
	"testing"
	"testing/fstest"
)

// TestRepositoryLinks checks every Markdown file of the repository (outside
// testdata): the README, docs/ and the rest.
func TestRepositoryLinks(t *testing.T) {
	root := os.DirFS("../..")
	if _, err := fs.Stat(root, "go.mod"); err != nil {
		t.Fatalf("the module root is not at ../..: %v", err)
	}
	var files []string
	err := fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
			return fs.SkipDir
		}
		if !d.IsDir() && path.Ext(p) == ".md" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"README.md", "docs/design.md"} {
		if !contains(files, want) {
			t.Fatalf("%s not found among %v", want, files)
		}
	}
	problems, err := Links(root, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		var b strings.Builder
		for _, p := range problems {
			b.WriteString("\n\t" + p.String())
		}
		t.Fatalf("%d broken links:%s", len(problems), b.String())
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The checker on small documents: each row is one page in docs/ beside
// the fixed files below, and the problems it must report, in order.
func TestLinks(t *testing.T) {
	fixed := fstest.MapFS{
		"README.md":           {Data: []byte("# Tillit\n\n## Running it (`--dev`)\n")},
		"main.go":             {Data: []byte("package main\n")},
		"internal/token/x.go": {Data: []byte("package token\n")},
		"docs/other.md":       {Data: []byte("# Other page\n\n## Token exchange (`internal/token/exchange.go`)\n\n## Repeat\n\n## Repeat\n\n```\n## In code\n```\n")},
		"docs/unicode.md":     {Data: []byte("## Reseptformidleren — nøkler og «tillit»\n## *Emphasis* and [a link](x.md)\n## Trailing hashes ##\n")},
		"docs/with space.md":  {Data: []byte("# x\n")},
		"docs/dir/.keep":      {Data: nil},
	}
	tests := []struct {
		name string
		page string
		want []string // Problem.String() of each problem
	}{
		{name: "good links", page: "# Page\n\n## A heading\n\n" +
			"[up](../README.md) [anchor there](../README.md#running-it---dev) [here](#a-heading) [page](#page)\n" +
			"[code](../main.go) [folder](../internal/token/) [folder too](dir) [with title](other.md \"Other\")\n" +
			"[exchange](other.md#token-exchange-internaltokenexchangego) [repeat](other.md#repeat) [second](other.md#repeat-1)\n" +
			"[unicode](unicode.md#reseptformidleren--nøkler-og-tillit) [emphasis](unicode.md#emphasis-and-a-link) [hashes](unicode.md#trailing-hashes)\n" +
			"[escaped](with%20space.md) [angle](<with space.md>) ![image](../main.go)\n" +
			"[web](https://example.org/x) [mail](mailto:a@example.org) [scheme-relative](//example.org)\n" +
			"[ref]\n\n[ref]: other.md#other-page\n"},
		{name: "missing file", page: "see [design](design.md) and [x](../internal/nothere.go)\n",
			want: []string{"docs/page.md:1: design.md: no such file", "docs/page.md:1: ../internal/nothere.go: no such file"}},
		{name: "outside the repository", page: "\n[rules](../../elsewhere/notes.md)\n",
			want: []string{"docs/page.md:2: ../../elsewhere/notes.md: leads outside the repository"}},
		{name: "absolute path", page: "[x](/docs/other.md)\n",
			want: []string{"docs/page.md:1: /docs/other.md: absolute path: use a path relative to docs/page.md"}},
		{name: "same-page anchor", page: "# Page\n\n[x](#nope)\n",
			want: []string{"docs/page.md:3: #nope: no heading in docs/page.md has the anchor #nope"}},
		{name: "anchor in another page", page: "[x](other.md#token-exchange)\n",
			want: []string{"docs/page.md:1: other.md#token-exchange: no heading in docs/other.md has the anchor #token-exchange"}},
		{name: "anchor with spaces collapsed", page: "[x](../README.md#running-it-dev)\n",
			want: []string{"docs/page.md:1: ../README.md#running-it-dev: no heading in README.md has the anchor #running-it-dev"}},
		{name: "anchor upper case", page: "[x](other.md#Other-page)\n",
			want: []string{"docs/page.md:1: other.md#Other-page: no heading in docs/other.md has the anchor #Other-page"}},
		{name: "third repeat does not exist", page: "[x](other.md#repeat-2)\n",
			want: []string{"docs/page.md:1: other.md#repeat-2: no heading in docs/other.md has the anchor #repeat-2"}},
		{name: "heading in code is no anchor", page: "[x](other.md#in-code)\n",
			want: []string{"docs/page.md:1: other.md#in-code: no heading in docs/other.md has the anchor #in-code"}},
		{name: "reference definition", page: "[x]\n\n[x]: gone.md\n",
			want: []string{"docs/page.md:3: gone.md: no such file"}},
		{name: "links in code are not checked", page: "`[a](gone.md)` and ``m[k](x)``\n\n```\n[b](gone.md)\n```\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{"docs/page.md": {Data: []byte(tt.page)}}
			for k, v := range fixed {
				fsys[k] = v
			}
			problems, err := Links(fsys, []string{"docs/page.md"})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range problems {
				got = append(got, p.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestAnchor(t *testing.T) {
	tests := []struct {
		heading, want string
	}{
		{"Design choices", "design-choices"},
		{"Reading JOSE (`jws`)", "reading-jose-jws"},
		{"`rate_limit`: token, introspection and revocation endpoints", "rate_limit-token-introspection-and-revocation-endpoints"},
		{"Several instances (`internal/clustertest`)", "several-instances-internalclustertest"},
		{"Operations (`internal/metrics`, `internal/ratelimit`)", "operations-internalmetrics-internalratelimit"},
		{"A — B", "a--b"},
		{"Ærlig talt: 100 % ok?", "ærlig-talt-100--ok"},
		{"[Linked](https://example.org) *bold* <code>x</code>", "linked-bold-x"},
		{"snake_case and kebab-case", "snake_case-and-kebab-case"},
	}
	for _, tt := range tests {
		if got := Anchor(tt.heading); got != tt.want {
			t.Errorf("Anchor(%q) = %q, want %q", tt.heading, got, tt.want)
		}
	}
}
