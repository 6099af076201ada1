package jws

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A JOSE header, a JWK and a token's claims are each one JSON object whose
// members the hot paths read by name. encoding/json reads them through
// reflection in two passes (validate, then decode) and was the largest
// cost after the signatures themselves in profiles of the API-side
// validator (about 16 µs of an 85 µs request with a PS256 proof). ReadObject
// reads such an object in one pass and hands each member to the caller,
// who switches on the name.
//
// It is stricter than encoding/json where strictness is free: member
// names match exactly (encoding/json also matches "ALG" to alg), strings
// must be valid UTF-8 and may not hold an unpaired UTF-16 surrogate escape
// (encoding/json replaces both with U+FFFD), and nesting stops at MaxDepth.
// Duplicate names are passed to the caller as they come: the callers in
// Tillit refuse a repeated name they read (RFC 7515 §4 allows refusing
// them, and that is safer than taking the last).

// MaxDepth is how deeply objects and arrays may nest in what ReadObject
// accepts. Tillit's deepest is an access token's act chain, 8 levels.
const MaxDepth = 32

// ErrJSON is matched by every syntax error of ReadObject and Value.Elements.
var ErrJSON = errors.New("jws: not a well-formed JSON object")

// ErrDuplicate is for callers that find a member name twice.
var ErrDuplicate = errors.New("jws: a member name appears twice")

// Kind is the type of a JSON value.
type Kind uint8

// The kinds of JSON values.
const (
	KindNull Kind = iota + 1
	KindBool
	KindNumber
	KindString
	KindArray
	KindObject
)

// Value is one JSON value inside the data given to ReadObject, already
// checked to be well-formed. It refers to that data; it does not copy it.
// The zero Value stands for no value at all (a member that was not
// there): its Kind is 0, none of the kinds below.
type Value struct {
	raw     []byte
	kind    Kind
	escaped bool // a string with at least one escape sequence
}

// Kind is the value's type.
func (v Value) Kind() Kind { return v.kind }

// Raw is the value's JSON text as it came.
func (v Value) Raw() []byte { return v.raw }

// Text is the value of a string, unescaped; ok is false for other kinds.
func (v Value) Text() (s string, ok bool) {
	if v.kind != KindString {
		return "", false
	}
	body := v.raw[1 : len(v.raw)-1]
	if !v.escaped {
		return string(body), true
	}
	return string(unescape(body)), true
}

// Float is the value of a number; ok is false for other kinds and for
// numbers out of float64's range.
func (v Value) Float() (f float64, ok bool) {
	if v.kind != KindNumber {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v.raw), 64)
	return f, err == nil
}

// Members calls fn for each member of an object value; see ReadObject.
func (v Value) Members(fn func(name []byte, v Value) error) error {
	if v.kind != KindObject {
		return fmt.Errorf("%w: not an object", ErrJSON)
	}
	return ReadObject(v.raw, fn)
}

// Elements calls fn for each element of an array value, in order, and
// stops at the first error fn returns.
func (v Value) Elements(fn func(v Value) error) error {
	if v.kind != KindArray {
		return fmt.Errorf("%w: not an array", ErrJSON)
	}
	s := scanner{data: v.raw}
	return s.array(fn)
}

// ReadObject checks that data is exactly one JSON object (white space
// around it allowed) and calls fn with each of its members in order: the
// name unescaped (valid only during the call) and the value. It stops at
// the first error fn returns and returns it. Nested objects and arrays are
// checked too, and can be read with the Value's Members and Elements.
func ReadObject(data []byte, fn func(name []byte, v Value) error) error {
	s := scanner{data: data}
	s.space()
	if s.peek() != '{' {
		return fmt.Errorf("%w: not an object", ErrJSON)
	}
	if err := s.object(fn); err != nil {
		return err
	}
	s.space()
	if s.pos != len(s.data) {
		return s.fail("data after the object")
	}
	return nil
}

type scanner struct {
	data  []byte
	pos   int
	depth int
}

func (s *scanner) fail(what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrJSON, what, s.pos)
}

// peek returns the next byte, or 0 at the end (never valid JSON there).
func (s *scanner) peek() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

func (s *scanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// object reads an object starting at '{'; fn may be nil to only check it.
func (s *scanner) object(fn func(name []byte, v Value) error) error {
	return s.list('}', func() error {
		if s.peek() != '"' {
			return s.fail("expected a member name")
		}
		start := s.pos
		escaped, err := s.str()
		if err != nil {
			return err
		}
		name := s.data[start+1 : s.pos-1]
		if escaped {
			name = unescape(name)
		}
		s.space()
		if s.peek() != ':' {
			return s.fail("expected ':'")
		}
		s.pos++
		s.space()
		v, err := s.value()
		if err != nil || fn == nil {
			return err
		}
		return fn(name, v)
	})
}

// array reads an array starting at '['; fn may be nil to only check it.
func (s *scanner) array(fn func(v Value) error) error {
	return s.list(']', func() error {
		v, err := s.value()
		if err != nil || fn == nil {
			return err
		}
		return fn(v)
	})
}

// list reads the comma-separated items of an object or array from its
// opening bracket to end, one nesting level deeper; item reads one.
func (s *scanner) list(end byte, item func() error) error {
	if s.depth++; s.depth > MaxDepth {
		return s.fail("nesting too deep")
	}
	s.pos++ // the opening bracket
	s.space()
	if s.peek() == end {
		s.pos++
		s.depth--
		return nil
	}
	for {
		if err := item(); err != nil {
			return err
		}
		s.space()
		switch s.peek() {
		case ',':
			s.pos++
			s.space()
		case end:
			s.pos++
			s.depth--
			return nil
		default:
			return s.fail("expected ',' or '" + string(end) + "'")
		}
	}
}

func (s *scanner) value() (Value, error) {
	start := s.pos
	var (
		kind    Kind
		escaped bool
		err     error
	)
	switch c := s.peek(); {
	case c == '"':
		kind = KindString
		escaped, err = s.str()
	case c == '{':
		kind = KindObject
		err = s.object(nil)
	case c == '[':
		kind = KindArray
		err = s.array(nil)
	case c == 't':
		kind = KindBool
		err = s.literal("true")
	case c == 'f':
		kind = KindBool
		err = s.literal("false")
	case c == 'n':
		kind = KindNull
		err = s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		kind = KindNumber
		err = s.number()
	default:
		return Value{}, s.fail("expected a value")
	}
	if err != nil {
		return Value{}, err
	}
	return Value{raw: s.data[start:s.pos], kind: kind, escaped: escaped}, nil
}

func (s *scanner) literal(word string) error {
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		return s.fail("expected " + word)
	}
	s.pos += len(word)
	return nil
}

// number reads RFC 8259 §6's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	if s.peek() == '-' {
		s.pos++
	}
	switch c := s.peek(); {
	case c == '0':
		s.pos++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return s.fail("expected a digit")
	}
	if s.peek() == '.' {
		s.pos++
		if !s.digits() {
			return s.fail("expected a digit after '.'")
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.pos++
		if c := s.peek(); c == '+' || c == '-' {
			s.pos++
		}
		if !s.digits() {
			return s.fail("expected a digit in the exponent")
		}
	}
	return nil
}

func (s *scanner) digits() bool {
	start := s.pos
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		s.pos++
	}
	return s.pos > start
}

// str reads a string starting at '"' up to and including its closing
// quote, and reports whether it holds escape sequences.
func (s *scanner) str() (escaped bool, err error) {
	s.pos++ // '"'
	start := s.pos
	ascii := true
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			if !ascii && !utf8.Valid(s.data[start:s.pos]) {
				return false, s.fail("string is not valid UTF-8")
			}
			s.pos++
			return escaped, nil
		case c == '\\':
			escaped = true
			if err := s.escape(); err != nil {
				return false, err
			}
		case c < 0x20:
			return false, s.fail("control character in a string")
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			s.pos++
		}
	}
	return false, s.fail("unterminated string")
}

// escape checks one escape sequence at '\\' and moves past it. A \u escape
// of a UTF-16 high surrogate must be followed by one of a low surrogate.
func (s *scanner) escape() error {
	if s.pos+1 >= len(s.data) {
		return s.fail("unterminated escape")
	}
	switch s.data[s.pos+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.pos += 2
		return nil
	case 'u':
	default:
		return s.fail("invalid escape")
	}
	r, ok := hex4(s.data[s.pos+2:])
	if !ok {
		return s.fail("invalid \\u escape")
	}
	s.pos += 6
	switch {
	case r >= 0xDC00 && r <= 0xDFFF:
		return s.fail("unpaired surrogate")
	case r >= 0xD800 && r <= 0xDBFF:
		rest := s.data[s.pos:]
		if len(rest) < 6 || rest[0] != '\\' || rest[1] != 'u' {
			return s.fail("unpaired surrogate")
		}
		if lo, ok := hex4(rest[2:]); !ok || lo < 0xDC00 || lo > 0xDFFF {
			return s.fail("unpaired surrogate")
		}
		s.pos += 6
	}
	return nil
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// unescape decodes the body of a string that str has checked.
func unescape(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		c := b[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch b[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, _ := hex4(b[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				lo, _ := hex4(b[i+2:])
				r = utf16.DecodeRune(r, lo)
				i += 6
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // '"', '\\', '/'
			out = append(out, b[i+1])
		}
		i += 2
	}
	return out
}

// Names is the set of member names a reader takes from an object, each at
// most once: a repeat is refused with ErrDuplicate before the reader sees
// it (RFC 7515 §4 allows refusing or taking the last; taking either copy
// could let a header or claim mean one thing to Tillit and another to the
// tools that made or log it). Make one per kind of object, once.
type Names struct {
	names []string
	index map[string]int
}

// NewNames returns the set of names, at most 64; a member's index in
// Read is its position here.
func NewNames(names ...string) *Names {
	if len(names) > 64 {
		panic("jws: more than 64 names")
	}
	n := &Names{names: names, index: make(map[string]int, len(names))}
	for i, name := range names {
		n.index[name] = i
	}
	return n
}

// Read reads data as ReadObject does and calls fn for each member with its
// index in the set, or -1 for a name outside it (those may repeat).
func (n *Names) Read(data []byte, fn func(i int, name []byte, v Value) error) error {
	var seen uint64
	return ReadObject(data, func(name []byte, v Value) error {
		i, ok := n.index[string(name)]
		if !ok {
			return fn(-1, name, v)
		}
		if seen&(1<<i) != 0 {
			return fmt.Errorf("%w: %s", ErrDuplicate, name)
		}
		seen |= 1 << i
		return fn(i, name, v)
	})
}

// StringMember sets *dst to a string member's value; null leaves it empty,
// as if the member were missing, and any other kind is an error naming it.
func StringMember(name []byte, v Value, dst *string) error {
	switch v.Kind() {
	case KindString:
		*dst, _ = v.Text()
		return nil
	case KindNull:
		return nil
	}
	return fmt.Errorf("%s is not a string", name)
}

// StringPointerMember is StringMember for a member whose absence the
// caller tells from the empty string: *dst stays nil for null.
func StringPointerMember(name []byte, v Value, dst **string) error {
	if v.Kind() == KindNull {
		return nil
	}
	var s string
	if err := StringMember(name, v, &s); err != nil {
		return err
	}
	*dst = &s
	return nil
}
