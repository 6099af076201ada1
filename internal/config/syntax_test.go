package config

import (
	"strings"
	"testing"
)

// TestSyntaxErrorLine: a YAML mistake is reported on its own line, not on
// the line where yaml.v3 says the enclosing block began, with a hint for
// the common ones. Each row breaks the valid base configuration in one
// place; wantErr is the whole message after the file name.
func TestSyntaxErrorLine(t *testing.T) {
	clearEnv(t)
	const indentHint = `check this line's indentation against the lines above: the items of one list start with "-" in one column, ` +
		`and the keys of one mapping (an item's keys too, from the first after its "-") start in one column`
	tests := []struct {
		name     string
		old, new string
		wantErr  string
	}{
		{name: "tab in the indentation", old: "    tenancy: multi-tenant", new: "\ttenancy: multi-tenant",
			wantErr: ":62: YAML: found a tab character that violates indentation; this line is indented with a tab: YAML indents with spaces only"},
		{name: "key without a space after its colon", old: "    refresh_token_lifetime: 8h", new: "    refresh_token_lifetime:8h",
			wantErr: ":66: YAML: could not find expected ':'; a key needs a space after its colon (refresh_token_lifetime: 8h)"},
		{name: "list item one space too deep", old: "  - id: multi", new: "   - id: multi",
			wantErr: ":60: YAML: did not find expected '-' indicator; " + indentHint},
		{name: "item key one space too deep", old: "    system: sys\n    tenancy: multi", new: "    system: sys\n     tenancy: multi",
			wantErr: ":62: YAML: mapping values are not allowed in this context; " + indentHint},
		{name: "value holding a colon and a space", old: "    given_name: Kvart", new: "    given_name: Kvart: Grevling",
			wantErr: `:84: YAML: mapping values are not allowed in this context; a value that holds ": " needs quotes`},
		// A flow list over two lines before the mistake: a prefix cut
		// inside it fails too, but with another problem.
		{name: "mistake after a flow list over two lines", old: "    scopes: [nhn:deft/api]\n    status: active",
			new:     "    scopes: [nhn:deft/api,\n      nhn:deft/other]\n    status: active\n\tbad: tab",
			wantErr: ":28: YAML: found a tab character that violates indentation; this line is indented with a tab: YAML indents with spaces only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(base, tt.old) {
				t.Fatalf("base has no %q", tt.old)
			}
			name := writeConfig(t, strings.Replace(base, tt.old, tt.new, 1), "")
			_, err := Load(name)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if got, want := err.Error(), name+tt.wantErr; got != want {
				t.Errorf("error\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestKeyWithoutSpaceWhereMappingBelongs: "key:value" where a section
// belongs is a string, not a syntax error; the message says why.
func TestKeyWithoutSpaceWhereMappingBelongs(t *testing.T) {
	clearEnv(t)
	name := writeConfig(t, strings.Replace(base, "  access_token_lifetime: 1h", "  access_token_lifetime:1h", 1), "")
	_, err := Load(name)
	want := name + `:9: tokens: want a mapping, got "access_token_lifetime:1h"; a key needs a space after its colon (access_token_lifetime: 1h)`
	if err == nil || err.Error() != want {
		t.Errorf("error\n%v\nwant\n%s", err, want)
	}
}

// TestSyntaxHint: the hints, and lines that get none.
func TestSyntaxHint(t *testing.T) {
	tests := []struct {
		name, line, problem, want string
	}{
		{name: "tab after spaces", line: "  \tname: x\n", problem: "found character that cannot start any token", want: "this line is indented with a tab: YAML indents with spaces only"},
		{name: "list item without space", line: "  - id:single", problem: "could not find expected ':'", want: "a key needs a space after its colon (id: single)"},
		{name: "a URL is no key", line: "https://sts.example.org", problem: "could not find expected ':'", want: ""},
		{name: "unknown problem", line: "  name: x", problem: "found unexpected end of stream", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := syntaxHint(tt.line, tt.problem); got != tt.want {
				t.Errorf("syntaxHint(%q, %q) = %q, want %q", tt.line, tt.problem, got, tt.want)
			}
		})
	}
}
