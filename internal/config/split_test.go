package config

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestDecodeSplit decodes documents in pieces (every list item its own
// chunk) and as a whole, and wants the same Config or the same errors.
// Documents whose cuts could fall inside a quoted scalar, a flow
// collection or an anchor's reach must be refused by the piecewise decode,
// so that the whole decode speaks for them.
func TestDecodeSplit(t *testing.T) {
	example, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const settings = "issuer: https://sts.example.org\nlisten: 127.0.0.1:9000\n"
	tests := []struct {
		name      string
		doc       string
		wantSplit bool
	}{
		{"the example configuration", string(example), true},
		{"lists in column 0", settings + "organisations:\n- number: \"310900028\"\n  name: A\n- number: \"310900036\"\n  name: B\n" +
			"tokens:\n  access_token_lifetime: 5m\n", true},
		{"comments between and inside items", settings + "organisations:\n  # first\n  - number: \"310900028\"\n# a comment in column 0\n    name: A\n\n  - number: \"310900036\"\n    name: B # trailing\n", true},
		{"flow items", settings + "organisations:\n  - {number: \"310900028\", name: A}\n  - {number: \"310900036\", name: B}\n", true},
		{"a block scalar with item-like lines", settings + "apis:\n  - audience: a:b\n    name: |\n      - audience: evil\n      listen: evil\n  - audience: c:d\n    name: x\n", true},
		{"CRLF line ends", strings.ReplaceAll(settings+"organisations:\n  - number: \"310900028\"\n    name: A\n  - number: \"310900036\"\n    name: B\n", "\n", "\r\n"), true},
		{"settings after the registry", "organisations:\n  - number: \"310900028\"\n    name: A\n" + settings + "log:\n  level: debug\n", true},
		{"a quoted name spanning an item line", settings + "organisations:\n  - number: \"310900028\"\n    name: \"A\n  - number: 310900036\"\n  - number: \"310900044\"\n    name: C\n", false},
		{"a quoted value spanning a top-level key", settings + "organisations:\n  - number: \"310900028\"\n    name: \"A\nlisten: 127.0.0.1:1\"\n", false},
		{"a flow list spanning lines in column 0", settings + "organisations: [\n{number: \"310900028\", name: A}\n]\n", false},
		{"an anchor used in another item", settings + "organisations:\n  - &o\n    number: \"310900028\"\n    name: A\n  - *o\n", false},
		{"an anchor used in another section", "issuer: &i https://sts.example.org\nlisten: 127.0.0.1:9000\napis:\n  - audience: a:b\n    name: *i\n", false},
		{"a repeated top-level key", settings + "listen: 127.0.0.1:9001\n", false},
		{"a document marker", "---\n" + settings, false},
		{"a second document", settings + "---\nlisten: 127.0.0.1:9001\n", false},
		{"an unknown top-level key", settings + "clients_typo:\n  - id: a\n", false},
		{"a tab in column 0", settings + "\tlog: {}\n", false},
		{"a type error in an item", settings + "organisations:\n  - number: [1]\n    name: A\n", false},
		{"comments only", "# nothing\n\n", false},
	}
	defer func(m, c int) { splitMin, chunkBytes = m, c }(splitMin, chunkBytes)
	chunkBytes = 1 // every item its own chunk
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			split := Default()
			gotSplit := decodeSplit(split, []byte(tt.doc), false) == nil
			if gotSplit != tt.wantSplit {
				t.Fatalf("decoded in pieces: %v, want %v", gotSplit, tt.wantSplit)
			}

			splitMin = 0
			c1, err1 := Parse("", []byte(tt.doc))
			splitMin = 1 << 62
			c2, err2 := Parse("", []byte(tt.doc))
			if msg(err1) != msg(err2) {
				t.Fatalf("errors differ:\nin pieces: %v\nwhole:     %v", err1, err2)
			}
			if got, want := dump(t, c1), dump(t, c2); got != want {
				t.Errorf("in pieces:\n%s\nwhole:\n%s", got, want)
			}
			if tt.wantSplit {
				if got, want := dump(t, split), dump(t, decodedWhole(t, tt.doc)); got != want {
					t.Errorf("decodeSplit:\n%s\nwhole:\n%s", got, want)
				}
			}
		})
	}
}

// TestDecodeSplitSettingsOnly: the settings of a document, without its
// registry, as a restart with an unchanged file reads it.
func TestDecodeSplitSettingsOnly(t *testing.T) {
	doc, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer func(m int) { splitMin = m }(splitMin)
	for _, min := range []int{0, 1 << 62} { // in pieces, and whole
		splitMin = min
		c := Default()
		if errs, err := c.decode(doc, true); err != nil || len(errs) > 0 {
			t.Fatalf("splitMin %d: %v %v", min, err, errs)
		}
		full := decodedWhole(t, string(doc))
		if len(full.Clients) == 0 || len(c.Clients)+len(c.APIs)+len(c.Organizations)+len(c.ClientSystems)+len(c.Delegations) != 0 {
			t.Errorf("splitMin %d: registry sections decoded: %d clients", min, len(c.Clients))
		}
		full.dropRegistry()
		if got, want := dump(t, c), dump(t, full); got != want {
			t.Errorf("splitMin %d: settings\n%s\nwant\n%s", min, got, want)
		}
	}
}

// TestChunks: a long list is cut at its items, and only there.
func TestChunks(t *testing.T) {
	defer func(c int) { chunkBytes = c }(chunkBytes)
	chunkBytes = 40
	var b strings.Builder
	b.WriteString("clients:\n")
	for range 20 {
		b.WriteString("  - id: client\n    name: |\n      - id: not an item\n")
	}
	s := section{key: "clients", text: []byte(b.String())}
	chunks := s.chunks()
	if len(chunks) < 5 {
		t.Fatalf("%d chunks of a %d-byte list, want it cut", len(chunks), len(s.text))
	}
	var items int
	for _, c := range chunks {
		if !strings.HasPrefix(string(c), "clients:\n  - id: client\n") {
			t.Errorf("chunk does not start with the key and an item: %q", c)
		}
		items += strings.Count(string(c), "  - id: client\n")
	}
	if items != 20 {
		t.Errorf("%d items in the chunks, want 20", items)
	}
}

func decodedWhole(t *testing.T, doc string) *Config {
	t.Helper()
	c := Default()
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		t.Fatal(err)
	}
	return c
}

func dump(t *testing.T, c *Config) string {
	t.Helper()
	if c == nil {
		return "<nil>"
	}
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func msg(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestSourceDigest: the digest moves with what decides the registry and
// with nothing else.
func TestSourceDigest(t *testing.T) {
	const registry = "clients:\n  - id: a\n    name: A\n"
	digest := func(file, yml, build string) string {
		t.Helper()
		src := &Source{name: file, data: []byte(yml)}
		settings, err := parse(file, src.data, Overrides{}, true)
		if err != nil {
			t.Fatal(err)
		}
		return src.Digest(build, settings)
	}
	base := digest("/etc/tillit/tillit.yaml", "issuer: https://sts.example.org\nlisten: 127.0.0.1:1\n"+registry, "b1")
	tests := []struct {
		name, file, yml, build string
		wantSame               bool
	}{
		{"other settings", "/etc/tillit/tillit.yaml", "issuer: https://sts.example.org\nlisten: 127.0.0.1:2\ninstance: b\n" + registry, "b1", true},
		{"settings after the registry", "/etc/tillit/tillit.yaml", registry + "issuer: https://sts.example.org\n", "b1", true},
		{"a changed client", "/etc/tillit/tillit.yaml", "issuer: https://sts.example.org\n" + strings.Replace(registry, "A", "B", 1), "b1", false},
		{"another environment", "/etc/tillit/tillit.yaml", "issuer: https://sts.example.org\nenvironment: test\n" + registry, "b1", false},
		{"another folder", "/srv/tillit.yaml", "issuer: https://sts.example.org\n" + registry, "b1", false},
		{"another build", "/etc/tillit/tillit.yaml", "issuer: https://sts.example.org\n" + registry, "b2", false},
		{"a file that is not cut counts whole", "/etc/tillit/tillit.yaml", "{issuer: https://sts.example.org}\n", "b1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := digest(tt.file, tt.yml, tt.build); (got == base) != tt.wantSame {
				t.Errorf("same digest: %v, want %v", got == base, tt.wantSame)
			}
		})
	}
	// A file that is not cut: every byte counts.
	whole := "{issuer: https://sts.example.org, listen: \"127.0.0.1:1\"}\n"
	if digest("/t.yaml", whole, "b1") == digest("/t.yaml", strings.Replace(whole, ":1", ":2", 1), "b1") {
		t.Error("two different files that are not cut have one digest")
	}
}
