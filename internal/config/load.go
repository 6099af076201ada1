package config

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/tillit-sts/tillit/internal/parallel"
)

// Size bounds for what the configuration reads: generous for a registry of
// thousands of clients, small enough that a wrong path (a log file, a
// device) fails quickly instead of filling memory.
const (
	maxConfigSize  = 32 << 20
	maxKeyFileSize = 1 << 20
)

// Load reads, parses and validates the configuration file at path. Relative
// paths in it are taken from the file's folder.
func Load(path string) (*Config, error) {
	data, err := readFile(path, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse reads a configuration from data, applies defaults and TILLIT_*
// environment variables, reads the files it names (jwks_file,
// encryption_key_file) and validates it. name is used in messages and its
// folder for relative paths; with an empty name they are relative to the
// working directory. Unknown keys are errors. On failure the error is
// Errors, listing every problem found.
func Parse(name string, data []byte) (*Config, error) {
	return ParseWith(name, data, Overrides{})
}

// Overrides are settings given on the command line. They win over the file
// and the environment, and are applied before defaults are derived and the
// result validated, so that --dev relaxes the issuer rule and a dev issuer
// follows --listen.
type Overrides struct {
	// Dev turns dev mode on; false leaves the file's dev setting.
	Dev bool
	// Listen replaces listen when not empty.
	Listen string
}

// ParseWith is Parse with command-line overrides.
func ParseWith(name string, data []byte, o Overrides) (*Config, error) {
	return parse(name, data, o, false)
}

// parse is ParseWith, or with settingsOnly the settings without the
// registry sections.
func parse(name string, data []byte, o Overrides, settingsOnly bool) (*Config, error) {
	c := Default()
	c.src.file = name
	c.src.dir = dirOf(name)

	// The YAML tree that error messages take lines and paths from is
	// parsed only when there is an error to report: parsing is most of
	// the cost of reading a large registry, and the decoder parses once
	// already.
	c.src.tree = &tree{data: data}

	errs, err := c.decode(data, settingsOnly)
	if err != nil {
		return nil, err
	}
	c.applyOverrides(o)

	var more Errors
	c.prepare(&more)
	if !c.src.unreliable {
		c.parseKeys()
		more = append(more, c.check()...)
	}
	for _, e := range more {
		if !errs.covers(e) {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, errs.err()
	}
	return c, nil
}

// dirOf is the folder relative paths in the file named name are taken
// from: the working directory for a configuration without a file.
func dirOf(name string) string {
	if name == "" {
		return ""
	}
	return filepath.Dir(name)
}

// applyOverrides applies the command-line settings.
func (c *Config) applyOverrides(o Overrides) {
	if o.Dev {
		c.Dev = true
	}
	if o.Listen != "" {
		c.Listen = o.Listen
		c.src.listenOverridden = true
	}
}

// decode decodes data into c, a large file in pieces (split.go), the
// registry sections left out when settingsOnly is set. It returns the
// decoding problems to report with the rest, or the error to report alone.
func (c *Config) decode(data []byte, settingsOnly bool) (Errors, error) {
	if len(data) >= splitMin {
		if decodeSplit(c, data, settingsOnly) == nil {
			return nil, nil
		}
		// Start again from the defaults: the whole decode finds the
		// problem and reports it at its line.
		src := c.src
		*c = *Default()
		c.src = src
	}
	var errs Errors
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	switch err := dec.Decode(c); {
	case err == nil, errors.Is(err, io.EOF): // io.EOF: an empty file, all defaults
	default:
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, Errors{c.src.syntaxError(err, data)}.err()
		}
		for _, msg := range te.Errors {
			errs = append(errs, c.src.decodeError(msg))
			// yaml.v3 leaves a whole mapping undecoded when one of its
			// keys is repeated: what validation would see is not the file.
			c.src.unreliable = c.src.unreliable || duplicateKeyRE.MatchString(msg)
		}
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		errs = append(errs, &Error{File: c.src.file, Line: next.Line, Msg: "a second YAML document; the configuration is one document"})
	}
	if settingsOnly {
		c.dropRegistry()
	}
	return errs, nil
}

// prepare does what Parse does after decoding and before validation: the
// environment, derived defaults, relative paths and the files named.
func (c *Config) prepare(errs *Errors) {
	if v := os.Getenv(EnvStorage); v != "" {
		c.Storage = v
		c.src.storageFromEnv = true
	}
	if c.DataDir != "" {
		c.DataDir = c.src.abs(c.DataDir)
	}
	if c.Storage == "" && c.DataDir != "" {
		c.Storage = filepath.Join(c.DataDir, "tillit.db")
	} else if backend, target, err := splitStorage(c.Storage); err == nil && backend == BackendSQLite && !filepath.IsAbs(target) {
		if strings.HasPrefix(c.Storage, "sqlite:") {
			c.Storage = "sqlite:" + c.src.abs(target)
		} else {
			c.Storage = c.src.abs(target)
		}
	}
	if c.Dev && c.Issuer == "" {
		c.Issuer = devIssuer(c.Listen)
	}
	if c.Environment == "" {
		c.Environment = EnvironmentProduction
		if c.Dev {
			c.Environment = EnvironmentTest
		}
	}
	if c.Instance == "" {
		c.Instance = defaultInstance()
	}
	if c.RateLimit.AddressBurst == 0 {
		c.RateLimit.AddressBurst = int(2 * c.RateLimit.PerAddress)
	}
	if c.RateLimit.ClientBurst == 0 {
		c.RateLimit.ClientBurst = int(2 * c.RateLimit.PerClient)
	}

	if v := os.Getenv(EnvKeyEncryptionKey); v != "" {
		key, err := decodeKey(v)
		if err != nil {
			*errs = append(*errs, &Error{Path: EnvKeyEncryptionKey, Msg: err.Error(), Err: err})
		}
		c.Keys.EncryptionKey = key
	} else if c.Keys.EncryptionKeyFile != "" {
		at := path{"keys", "encryption_key_file"}
		c.Keys.EncryptionKeyFile = c.src.abs(c.Keys.EncryptionKeyFile)
		data, err := readFile(c.Keys.EncryptionKeyFile, 4<<10)
		if err == nil {
			c.Keys.EncryptionKey, err = decodeKey(string(data))
		}
		if err != nil {
			*errs = append(*errs, c.src.errorAt(at, err, "%v", err))
		}
	}

	c.readPopulationFiles()

	if c.TLS.CertFile != "" {
		c.TLS.CertFile = c.src.abs(c.TLS.CertFile)
	}
	if c.TLS.KeyFile != "" {
		c.TLS.KeyFile = c.src.abs(c.TLS.KeyFile)
	}

	for i := range c.Clients {
		cl := &c.Clients[i]
		if cl.JWKSFile == "" {
			continue
		}
		// Read now so that a later change to the file cannot make the
		// validated Config and its Registry differ; check reports errors.
		cl.JWKSFile = c.src.abs(cl.JWKSFile)
		cl.fileKeys, cl.fileErr = readFile(cl.JWKSFile, maxKeyFileSize)
	}
}

// parseKeys parses every client's keys ahead of validation, on every
// core: with a hundred thousand clients it is most of the cost of reading
// the file. Validation and Registry then find them parsed.
func (c *Config) parseKeys() {
	_ = parallel.For(len(c.Clients), 2, func(i int) error {
		c.clientKeys(i)
		return nil
	})
}

// keyFile returns the contents of JWKSFile, read by Parse or now for a
// Config that was built in code.
func (cl *Client) keyFile(src source) ([]byte, error) {
	if cl.fileKeys != nil || cl.fileErr != nil {
		return cl.fileKeys, cl.fileErr
	}
	return readFile(src.abs(cl.JWKSFile), maxKeyFileSize)
}

// KeyEncryptionKey returns the 32-byte key-encryption key, or
// ErrNoKeyEncryptionKey. Outside dev mode serve must refuse to start
// without one, so that private keys are never stored in clear; commands
// that never touch private keys do not need it, which is why Validate does
// not insist.
func (c *Config) KeyEncryptionKey() ([]byte, error) {
	if len(c.Keys.EncryptionKey) == 0 {
		return nil, ErrNoKeyEncryptionKey
	}
	return c.Keys.EncryptionKey, nil
}

// ErrNoKeyEncryptionKey reports that neither TILLIT_KEY_ENCRYPTION_KEY nor
// keys.encryption_key_file is set.
var ErrNoKeyEncryptionKey = errors.New("config: no key-encryption key: set " + EnvKeyEncryptionKey + " or keys.encryption_key_file")

// decodeKey reads a key-encryption key: base64 (standard or URL alphabet,
// padded or not) of exactly 32 bytes, surrounding white space ignored.
func decodeKey(s string) (Secret, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) != 32 {
				return nil, fmt.Errorf("key-encryption key is %d bytes, want 32 (e.g. openssl rand -base64 32)", len(key))
			}
			return key, nil
		}
	}
	return nil, errors.New("key-encryption key is not base64 (e.g. openssl rand -base64 32)")
}

func readFile(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return data, nil
}

// tree is the parsed document of a file, made when first asked for.
type tree struct {
	once sync.Once
	data []byte
	node *yaml.Node
}

// root returns the document node, or nil when there is none (a Config made
// in code, or one whose tree was dropped).
func (t *tree) root() *yaml.Node {
	if t == nil {
		return nil
	}
	t.once.Do(func() {
		var doc yaml.Node
		if yaml.Unmarshal(t.data, &doc) == nil {
			t.node = &doc
		}
		t.data = nil
	})
	return t.node
}

// source is where a Config came from.
type source struct {
	file string // as given to Parse
	dir  string // folder relative paths are taken from
	tree *tree  // the document, to find the line of a key
	// unreliable is set when decoding skipped more than the values it
	// reported, so the Config must not be validated.
	unreliable bool
	// storageFromEnv says that Storage came from TILLIT_STORAGE, so its
	// problems are not on any line of the file.
	storageFromEnv bool
	// listenOverridden says that Listen came from the command line.
	listenOverridden bool
}

// covers reports whether e only repeats, in other words, a decoding error
// in es: a value that did not decode is left at its default or empty, and
// checking it, or the object holding it, would report it again.
func (es Errors) covers(e *Error) bool {
	for _, d := range es {
		if !d.lost {
			continue
		}
		if e.Line != 0 && d.Line == e.Line {
			return true
		}
		if d.Path != "" && e.Path != "" && (nests(d.Path, e.Path) || nests(e.Path, d.Path)) {
			return true
		}
	}
	return false
}

// nests reports whether path inner is outer or lies inside it.
func nests(outer, inner string) bool {
	if !strings.HasPrefix(inner, outer) {
		return false
	}
	rest := inner[len(outer):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}

func (s source) abs(p string) string {
	if p == "" || filepath.IsAbs(p) || s.dir == "" {
		return p
	}
	return filepath.Join(s.dir, p)
}

// path names a key: strings for mapping keys, ints for list indexes.
type path []any

var plainKey = regexp.MustCompile(`^[a-z0-9_]+$`)

func (p path) String() string {
	var b strings.Builder
	for _, el := range p {
		switch el := el.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", el)
		case string:
			if plainKey.MatchString(el) {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(el)
			} else {
				fmt.Fprintf(&b, "[%q]", el)
			}
		}
	}
	return b.String()
}

// line finds the line of p in the document, or of the nearest enclosing
// key that exists when p itself does not (a missing required key is
// reported on the mapping that lacks it).
func (s source) line(p path) int {
	n := s.tree.root()
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return 0
		}
		n = n.Content[0]
	}
	line := 0
	if n.Kind == yaml.MappingNode {
		line = n.Line
	}
	for _, el := range p {
		n = deref(n)
		var next *yaml.Node
		switch el := el.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == el {
						line = n.Content[i].Line
						next = n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && el < len(n.Content) {
				next = n.Content[el]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// errorAt makes an Error about p, with its line.
func (s source) errorAt(p path, cause error, format string, args ...any) *Error {
	return &Error{File: s.file, Line: s.line(p), Path: p.String(), Msg: fmt.Sprintf(format, args...), Err: cause}
}

var (
	yamlLineRE     = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	unknownKeyRE   = regexp.MustCompile(`^line (\d+): field (.+) not found in type (\S+)$`)
	cannotRE       = regexp.MustCompile("^line (\\d+): cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
	duplicateKeyRE = regexp.MustCompile(`^line (\d+): mapping key "(.*)" already defined at line (\d+)$`)
	lineRE         = regexp.MustCompile(`^line (\d+): (.*)$`)
)

// decodeError turns one of yaml.v3's decoding messages into an Error that
// names the key by its path and says what was expected in the words of the
// file rather than of Go types.
func (s source) decodeError(msg string) *Error {
	if m := unknownKeyRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		e := &Error{File: s.file, Line: line, Msg: fmt.Sprintf("unknown key %q", m[2])}
		if p, ok := s.find(line, m[2], 0); ok {
			e.Path = p[:len(p)-1].String()
		}
		if hint := suggest(m[2], keysOf(m[3])); hint != "" {
			e.Msg += fmt.Sprintf(" (did you mean %q?)", hint)
		}
		return e
	}
	if m := cannotRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		e := &Error{File: s.file, Line: line, lost: true}
		got := map[string]string{"!!map": "a mapping", "!!seq": "a list"}[m[2]]
		kind := map[string]yaml.Kind{"!!map": yaml.MappingNode, "!!seq": yaml.SequenceNode}[m[2]]
		if kind == 0 {
			kind = yaml.ScalarNode
		}
		if p, ok := s.find(line, strings.TrimSuffix(m[3], "..."), kind); ok {
			e.Path = p.String()
			if got == "" {
				got = fmt.Sprintf("%q", s.valueAt(p))
			}
		}
		if got == "" {
			got = fmt.Sprintf("%q", m[3])
		}
		e.Msg = fmt.Sprintf("want %s, got %s", describe(m[4]), got)
		if kind == yaml.ScalarNode && strings.HasPrefix(describe(m[4]), "a mapping") {
			// "tokens:\n  access_token_lifetime:5m" is a string where
			// a mapping belongs.
			if v, err := strconv.Unquote(got); err == nil {
				if hint := noSpaceHint(v); hint != "" {
					e.Msg += "; " + hint
				}
			}
		}
		return e
	}
	if m := duplicateKeyRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: s.file, Line: line, Msg: fmt.Sprintf("key %q is given twice (first at line %s)", m[2], m[3])}
	}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		e := &Error{File: s.file, Line: line, Msg: m[2], lost: true}
		for _, kind := range []yaml.Kind{yaml.MappingNode, yaml.SequenceNode, yaml.ScalarNode} {
			if p, ok := s.find(line, "", kind); ok {
				e.Path = p.String()
				break
			}
		}
		return e
	}
	return &Error{File: s.file, Msg: msg}
}

// find looks for a node on line and returns its path: with kind 0 a
// mapping key equal to text, otherwise a value node of that kind (a scalar
// starting with text). yaml.v3 reports only lines, and shortens long
// values.
func (s source) find(line int, text string, kind yaml.Kind) (path, bool) {
	isKey := kind == 0
	var found path
	var walk func(n *yaml.Node, p path) bool
	walk = func(n *yaml.Node, p path) bool {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if walk(c, p) {
					return true
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				kp := append(append(path{}, p...), k.Value)
				if isKey && k.Line == line && k.Value == text {
					found = kp
					return true
				}
				if walk(v, kp) {
					return true
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				if walk(c, append(append(path{}, p...), i)) {
					return true
				}
			}
		}
		if !isKey && n.Line == line && n.Kind == kind &&
			(kind != yaml.ScalarNode || strings.HasPrefix(n.Value, text)) {
			found = p
			return true
		}
		return false
	}
	root := s.tree.root()
	if root == nil {
		return nil, false
	}
	walk(root, path{})
	return found, found != nil
}

func (s source) valueAt(p path) string {
	n := s.tree.root()
	if n == nil {
		return ""
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, el := range p {
		n = deref(n)
		var next *yaml.Node
		switch el := el.(type) {
		case string:
			for i := 0; i+1 < len(n.Content) && n.Kind == yaml.MappingNode; i += 2 {
				if n.Content[i].Value == el {
					next = n.Content[i+1]
					break
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && el < len(n.Content) {
				next = n.Content[el]
			}
		}
		if next == nil {
			return ""
		}
		n = next
	}
	return n.Value
}

// describe says in the file's words what a Go type wants.
func describe(goType string) string {
	switch {
	case goType == "time.Duration":
		return `a duration such as "90s" or "1h"`
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "config."):
		return "a mapping"
	default:
		return "a single value"
	}
}

// configTypes are the types yaml.v3 names in "field not found" messages.
var configTypes = map[string]reflect.Type{}

// init finds them from Config down, through its struct fields and lists
// of structs, so that a new section needs no entry here.
func init() {
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		if t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t.PkgPath() != reflect.TypeFor[Config]().PkgPath() || configTypes[t.String()] != nil {
			return
		}
		configTypes[t.String()] = t
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && f.Tag.Get("yaml") != "-" {
				add(f.Type)
			}
		}
	}
	add(reflect.TypeFor[Config]())
}

// keysOf lists the YAML keys of a config type.
func keysOf(typeName string) []string {
	t, ok := configTypes[typeName]
	if !ok {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return keys
}

// Suggest returns the option closest to a misspelt one, or "" when none
// is within two edits: for "did you mean" in messages.
func Suggest(bad string, options []string) string { return suggest(bad, options) }

// suggest returns the key closest to a misspelt one, if it is close.
func suggest(bad string, keys []string) string {
	best, bestDist := "", 3 // more than two edits away is no longer a typo
	for _, k := range keys {
		if d := editDistance(bad, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// JWKS is a client's public key set written inline. It holds JSON text: a
// YAML mapping is converted, and a YAML string is taken as JSON as it is.
type JWKS []byte

// UnmarshalYAML converts a mapping to JSON. Every scalar becomes a JSON
// string, because every JWK member is one and YAML would otherwise turn
// kid: 1 into a number that no JWK parser accepts.
func (j *JWKS) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*j = JWKS(strings.TrimSpace(n.Value))
		return nil
	case yaml.MappingNode:
		out, err := json.Marshal(nodeJSON(n))
		if err != nil {
			return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: jwks: %v", n.Line, err)}}
		}
		*j = out
		return nil
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: jwks: want a JWKS mapping or JSON text, got a list", n.Line)}}
}

func nodeJSON(n *yaml.Node) any {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = nodeJSON(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, c := range n.Content {
			s[i] = nodeJSON(c)
		}
		return s
	}
	if n.ShortTag() == "!!null" {
		return nil
	}
	return n.Value
}

// defaultInstance is the host name, so that a restarted server continues
// its own audit chain.
func defaultInstance() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "tillit"
}
