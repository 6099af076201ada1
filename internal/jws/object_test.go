package jws

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestReadObject(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string // members as name=kind:text, or "" for an error
	}{
		{`{}`, ``},
		{` {"a":1} `, `a=3:1`},
		{`{"a":"x","b":true,"c":null,"d":[1,{"e":2}],"f":{"g":"h"}}`, `a=4:x b=2:true c=1:null d=5:[1,{"e":2}] f=6:{"g":"h"}`},
		{`{"a\u0062":"\"\\\/\b\f\n\r\t\u00e6\ud83d\ude00"}`, "ab=4:\"\\/\b\f\n\r\t\u00e6\U0001F600"},
		{`{"n":-0.5e+10,"m":0,"o":1E3}`, `n=3:-0.5e+10 m=3:0 o=3:1E3`},
		{`{"a":1,"a":2}`, `a=3:1 a=3:2`}, // callers decide about duplicates
		{"{\"æ\":\"ø\"}", "æ=4:ø"},
	} {
		var got []string
		err := ReadObject([]byte(tt.in), func(name []byte, v Value) error {
			text := string(v.Raw())
			if s, ok := v.Text(); ok {
				text = s
			}
			got = append(got, string(name)+"="+string(rune('0'+v.Kind()))+":"+text)
			return nil
		})
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("%s: got %q, want %q", tt.in, g, tt.want)
		}
	}
}

func TestReadObjectRefuses(t *testing.T) {
	deep := strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1)
	for _, in := range []string{
		``, ` `, `[]`, `"x"`, `1`, `null`,
		`{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `{a:1}`, `{'a':1}`,
		`{"a":1}x`, `{"a":1}{}`, `{"a":1}}`,
		`{"a":01}`, `{"a":1.}`, `{"a":.1}`, `{"a":1e}`, `{"a":-}`, `{"a":+1}`, `{"a":NaN}`, `{"a":0x1}`,
		`{"a":tru}`, `{"a":nul}`, `{"a":True}`,
		`{"a":"x}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12g4"}`, "{\"a\":\"\x01\"}", "{\"a\":\"\xff\"}",
		`{"a":"\ud83d"}`, `{"a":"\ude00"}`, `{"a":"\ud83d\u0041"}`, `{"a":"\ud83dx"}`,
		`{"a":[1,]}`, `{"a":[1 2]}`, `{"a":[}`, `{"a":{"b"}}`,
		deep,
	} {
		err := ReadObject([]byte(in), func([]byte, Value) error { return nil })
		if !errors.Is(err, ErrJSON) {
			t.Errorf("%q: got %v, want ErrJSON", in, err)
		}
	}
	// At the limit is fine.
	ok := strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth)
	if err := ReadObject([]byte(ok), nil); err != nil {
		t.Errorf("depth %d: %v", MaxDepth, err)
	}
}

func TestReadObjectStopsAtCallerError(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := ReadObject([]byte(`{"a":1,"b":2}`), func([]byte, Value) error { n++; return stop })
	if err != stop || n != 1 {
		t.Fatalf("err %v after %d members", err, n)
	}
}

func TestValueAccessors(t *testing.T) {
	var vals []Value
	ReadObject([]byte(`{"s":"x","n":1.5,"big":1e400,"a":["p",2],"o":{"k":"v"}}`), func(_ []byte, v Value) error {
		vals = append(vals, v)
		return nil
	})
	if _, ok := vals[0].Float(); ok {
		t.Error("a string read as a number")
	}
	if _, ok := vals[1].Text(); ok {
		t.Error("a number read as a string")
	}
	if f, ok := vals[1].Float(); !ok || f != 1.5 {
		t.Errorf("float %v %v", f, ok)
	}
	if _, ok := vals[2].Float(); ok {
		t.Error("1e400 read as a float64")
	}
	var elems []string
	if err := vals[3].Elements(func(v Value) error { elems = append(elems, string(v.Raw())); return nil }); err != nil || strings.Join(elems, ",") != `"p",2` {
		t.Errorf("elements %v %v", elems, err)
	}
	if err := vals[0].Elements(func(Value) error { return nil }); !errors.Is(err, ErrJSON) {
		t.Errorf("elements of a string: %v", err)
	}
	var k string
	if err := vals[4].Members(func(name []byte, v Value) error { k = string(name); return nil }); err != nil || k != "k" {
		t.Errorf("members %q %v", k, err)
	}
	if err := vals[3].Members(func([]byte, Value) error { return nil }); !errors.Is(err, ErrJSON) {
		t.Errorf("members of an array: %v", err)
	}
}

// FuzzReadObject checks ReadObject against encoding/json: what it accepts,
// encoding/json reads as an object with the same strings and numbers; and
// it accepts every object encoding/json accepts except where it is
// stricter on purpose (invalid UTF-8, unpaired surrogates, deep nesting).
func FuzzReadObject(f *testing.F) {
	for _, s := range []string{
		`{"alg":"ES256","typ":"dpop+jwt","jwk":{"kty":"EC","crv":"P-256","x":"a","y":"b"}}`,
		`{"aud":["a","b"],"exp":1.8e9,"act":{"sub":"x"},"n":null,"t":true}`,
		`{"a\u00e6":"\ud83d\ude00\n"}`, `{}`, `{"a":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var std map[string]any
		valid := json.Valid(data)
		// Unmarshal also fails on numbers out of float64's range, which
		// are well-formed JSON: values are compared only when it worked.
		decoded := json.Unmarshal(data, &std) == nil
		if decoded && std != nil && utf8.Valid(data) && !bytes.Contains(bytes.ToLower(data), []byte(`\ud`)) &&
			bytes.Count(data, []byte("{"))+bytes.Count(data, []byte("[")) <= MaxDepth {
			if err := ReadObject(data, nil); err != nil {
				t.Fatalf("refused an object encoding/json reads: %v", err)
			}
		}
		err := ReadObject(data, func(name []byte, v Value) error {
			// encoding/json keeps the last of repeated names; compare
			// only names that appear once.
			if !decoded || bytes.Count(data, name) > 1 {
				return nil
			}
			sv, ok := std[string(name)]
			if !ok {
				t.Fatalf("member %q not seen by encoding/json", name)
			}
			switch v.Kind() {
			case KindString:
				s, _ := v.Text()
				if sv != s {
					t.Fatalf("member %q: %q, encoding/json %q", name, s, sv)
				}
			case KindNumber:
				n, _ := v.Float()
				if sv != n {
					t.Fatalf("member %q: %v, encoding/json %v", name, n, sv)
				}
			case KindNull:
				if sv != nil {
					t.Fatalf("member %q: null, encoding/json %v", name, sv)
				}
			}
			return nil
		})
		if err == nil && !valid {
			t.Fatal("accepted what encoding/json refuses")
		}
	})
}

func TestNames(t *testing.T) {
	names := NewNames("a", "b")
	type member struct {
		i    int
		name string
	}
	tests := []struct {
		in      string
		want    []member
		wantErr error
	}{
		{`{"b":1,"x":2,"a":3,"x":4}`, []member{{1, "b"}, {-1, "x"}, {0, "a"}, {-1, "x"}}, nil},
		{`{"a":1,"b":2,"a":3}`, nil, ErrDuplicate},
		{`{"\u0061":1,"a":2}`, nil, ErrDuplicate}, // the same name, escaped
		{`{"a":1,}`, nil, ErrJSON},
	}
	for _, tt := range tests {
		var got []member
		err := names.Read([]byte(tt.in), func(i int, name []byte, _ Value) error {
			got = append(got, member{i, string(name)})
			return nil
		})
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s: err = %v, want %v", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: got %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestStringMembers(t *testing.T) {
	var s string
	var p *string
	ReadObject([]byte(`{"s":"x","n":null,"k":1}`), func(name []byte, v Value) error {
		switch string(name) {
		case "s":
			if err := StringMember(name, v, &s); err != nil || s != "x" {
				t.Errorf("string: %q %v", s, err)
			}
			if err := StringPointerMember(name, v, &p); err != nil || p == nil || *p != "x" {
				t.Errorf("pointer: %v %v", p, err)
			}
		case "n":
			p = nil
			if err := StringPointerMember(name, v, &p); err != nil || p != nil {
				t.Errorf("null: %v %v", p, err)
			}
		case "k":
			if StringMember(name, v, &s) == nil || StringPointerMember(name, v, &p) == nil {
				t.Error("a number read as a string")
			}
		}
		return nil
	})
}
