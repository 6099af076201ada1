package config

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tillit-sts/tillit/internal/parallel"
)

// A large registry file is decoded in pieces: each top-level section on
// its own and a long list (clients) in chunks of items, on every core.
// yaml.v3 builds a node tree of the whole document before it decodes any
// of it, which at a hundred thousand clients is most of a start's time and
// half a gigabyte; a chunk's tree is small and gone once it is decoded.
//
// Cutting YAML by lines is sound only where the cuts are where the parser
// would put them. A line that starts in column 0 with `key:` ends the
// previous top-level entry unless it sits inside a quoted scalar or a flow
// collection ([...], {...}); the indentation rules close block and plain
// scalars before it. In either of those cases the piece before the cut
// ends with an unclosed quote or bracket, which fails to decode. The same
// holds for list items cut at `- ` in their list's column. So: cut, decode
// every piece, and if any piece fails (or the document has a shape the
// cutting does not handle: directives, document markers, anchors used
// across pieces, a duplicate key) decode the whole file as one, which then
// reports the error at its line.

// splitMin is the size from which a file is decoded in pieces. Below it
// the whole file decodes in milliseconds. A variable for the tests.
var splitMin = 1 << 20

// chunkBytes is about how much YAML one chunk of a list holds; a list is
// cut only from twice that. A variable for the tests.
var chunkBytes = 256 << 10

// section is one top-level entry of the document: its key and its text,
// from its key line up to the next top-level key line.
type section struct {
	key  string
	text []byte
}

// registrySections are the top-level keys that declare registry records.
// Everything else is a server setting.
var registrySections = map[string]bool{
	"apis": true, "organisations": true, "client_systems": true, "clients": true,
	"delegations": true, "identity_providers": true,
	"persons": true, "persons_file": true, "hpr": true, "hpr_file": true,
}

// splitTop cuts data into its top-level sections. ok is false when data is
// not a plain block mapping with one line per key in column 0, or names a
// key twice.
func splitTop(data []byte) (sections []section, ok bool) {
	if bytes.HasPrefix(data, []byte("\ufeff")) {
		return nil, false
	}
	seen := map[string]bool{}
	start, key := -1, ""
	for pos := 0; pos < len(data); {
		end := bytes.IndexByte(data[pos:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += pos + 1
		}
		line := data[pos:end]
		switch c := line[0]; {
		case c == ' ', c == '\n', c == '\r', c == '#':
			// inside the current entry, blank, or a comment
		case start >= 0 && isItem(line):
			// an item of a list in column 0 ("clients:\n- id: a")
		default:
			k, isKey := topKey(line)
			if !isKey || seen[k] {
				return nil, false
			}
			seen[k] = true
			if start >= 0 {
				sections = append(sections, section{key, data[start:pos]})
			}
			start, key = pos, k
		}
		pos = end
	}
	if start < 0 {
		// Comments and blank lines only.
		return nil, false
	}
	return append(sections, section{key, data[start:]}), true
}

// topKey returns the key of a line `key:` or `key: value`, with a plain
// snake_case key as every configuration key is.
func topKey(line []byte) (string, bool) {
	i := 0
	for i < len(line) && (line[i] == '_' || line[i] >= 'a' && line[i] <= 'z' || i > 0 && line[i] >= '0' && line[i] <= '9') {
		i++
	}
	if i == 0 || i >= len(line) || line[i] != ':' {
		return "", false
	}
	if rest := line[i+1:]; len(rest) > 0 && rest[0] != ' ' && rest[0] != '\n' && rest[0] != '\r' {
		return "", false
	}
	return string(line[:i]), true
}

// chunks cuts a section whose value is a block list into pieces of about
// chunkBytes, each the key line followed by whole items. It returns the
// section alone when it is small or not a block list on the following
// lines.
func (s section) chunks() [][]byte {
	whole := [][]byte{s.text}
	if len(s.text) < 2*chunkBytes {
		return whole
	}
	nl := bytes.IndexByte(s.text, '\n')
	if nl < 0 || len(bytes.TrimSpace(s.text[len(s.key)+1:nl])) != 0 {
		return whole // a value on the key line: not a block list
	}
	head, body := s.text[:nl+1], s.text[nl+1:]
	indent := -1
	var out [][]byte
	from := 0 // start of the current chunk in body
	for pos := 0; pos < len(body); {
		end := bytes.IndexByte(body[pos:], '\n')
		if end < 0 {
			end = len(body)
		} else {
			end += pos + 1
		}
		line := body[pos:end]
		n := len(line) - len(bytes.TrimLeft(line, " "))
		rest := line[n:]
		switch {
		case len(bytes.TrimSpace(rest)) == 0 || rest[0] == '#':
			// blank or comment
		case indent < 0:
			if !isItem(rest) {
				return whole
			}
			indent = n
		case n < indent:
			return whole // not the list's shape: let the decoder say why
		case n == indent:
			if !isItem(rest) {
				return whole
			}
			if pos-from >= chunkBytes {
				out = append(out, joinLines(head, body[from:pos]))
				from = pos
			}
		}
		pos = end
	}
	if len(out) == 0 {
		return whole
	}
	return append(out, joinLines(head, body[from:]))
}

func isItem(rest []byte) bool {
	return rest[0] == '-' && (len(rest) == 1 || rest[1] == ' ' || rest[1] == '\n' || rest[1] == '\r')
}

func joinLines(head, body []byte) []byte {
	out := make([]byte, 0, len(head)+len(body))
	return append(append(out, head...), body...)
}

// errNoSplit makes decodeSplit's caller decode the whole document.
var errNoSplit = errors.New("config: the document cannot be decoded in pieces")

// decodeSplit decodes data into c section by section, the lists among the
// registry sections in chunks on every core, leaving out the registry
// sections when settingsOnly is set. Any error means nothing can be said
// of the pieces: the caller must decode the whole document into a fresh
// Config.
func decodeSplit(c *Config, data []byte, settingsOnly bool) error {
	sections, ok := splitTop(data)
	if !ok {
		return errNoSplit
	}
	type job struct {
		field int // index of the Config field
		text  []byte
		out   *Config
	}
	var jobs []*job
	for _, s := range sections {
		field, known := fieldIndex[s.key]
		switch {
		case !known:
			return errNoSplit // an unknown key: the whole decode names it
		case !registrySections[s.key]:
			// Settings decode into c, over its defaults, one by one.
			if err := decodeStrict(s.text, c); err != nil {
				return err
			}
		case !settingsOnly:
			for _, text := range s.chunks() {
				jobs = append(jobs, &job{field: field, text: text})
			}
		}
	}
	err := parallel.For(len(jobs), 2, func(i int) error {
		jobs[i].out = new(Config)
		return decodeStrict(jobs[i].text, jobs[i].out)
	})
	if err != nil {
		return err
	}
	dst := reflect.ValueOf(c).Elem()
	for _, j := range jobs {
		f, part := dst.Field(j.field), reflect.ValueOf(j.out).Elem().Field(j.field)
		if f.Kind() == reflect.Slice {
			f.Set(reflect.AppendSlice(f, part))
		} else {
			f.Set(part)
		}
	}
	return nil
}

// decodeStrict decodes one YAML document into v, unknown keys refused.
func decodeStrict(text []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// fieldIndex maps a top-level key to the index of its Config field.
var fieldIndex = func() map[string]int {
	m := map[string]int{}
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}()
