package doccheck

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"regexp"
	"strings"
	"unicode"
)

// Problem is one broken link.
type Problem struct {
	File string // slash-separated, relative to the root
	Line int
	Link string
	Msg  string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Link, p.Msg)
}

// Links checks the relative links of the Markdown files in fsys named by
// files (slash-separated paths). A link must lead to a file or folder in
// fsys, and an #anchor, on the same page or in another .md file, must be
// the anchor GitHub gives one of that file's headings. Links with a scheme
// (https:, mailto:) and links inside code are not checked.
func Links(fsys fs.FS, files []string) ([]Problem, error) {
	anchors := map[string]map[string]bool{} // by file, read once
	anchorsOf := func(name string) (map[string]bool, error) {
		if a, ok := anchors[name]; ok {
			return a, nil
		}
		md, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		a := Anchors(md)
		anchors[name] = a
		return a, nil
	}
	var problems []Problem
	for _, file := range files {
		md, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, err
		}
		for _, l := range links(md) {
			bad := func(format string, args ...any) {
				problems = append(problems, Problem{File: file, Line: l.line, Link: l.target, Msg: fmt.Sprintf(format, args...)})
			}
			if schemeRE.MatchString(l.target) || strings.HasPrefix(l.target, "//") {
				continue
			}
			target, anchor, _ := strings.Cut(l.target, "#")
			if target, err = url.PathUnescape(target); err != nil {
				bad("not a valid URL path")
				continue
			}
			name := file
			if target != "" {
				if strings.HasPrefix(target, "/") {
					bad("absolute path: use a path relative to %s", file)
					continue
				}
				name = path.Join(path.Dir(file), target)
				if name == ".." || strings.HasPrefix(name, "../") {
					bad("leads outside the repository")
					continue
				}
				if _, err := fs.Stat(fsys, name); err != nil {
					bad("no such file")
					continue
				}
			}
			if anchor == "" || !strings.HasSuffix(name, ".md") {
				continue
			}
			a, err := anchorsOf(name)
			if err != nil {
				bad("%v", err)
				continue
			}
			if !a[anchor] {
				bad("no heading in %s has the anchor #%s", name, anchor)
			}
		}
	}
	return problems, nil
}

// schemeRE matches a URL scheme such as https: or mailto:.
var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)

type link struct {
	line   int
	target string
}

var (
	// inlineRE finds the target of [text](target "title") and of images.
	inlineRE = regexp.MustCompile(`\]\(\s*(<[^>]*>|[^)\s]*)`)
	// refDefRE is a link reference definition: [label]: target.
	refDefRE = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)`)
)

// links lists the link targets of a Markdown document, outside fenced code
// blocks and code spans.
func links(md []byte) []link {
	var out []link
	eachLine(md, func(n int, line string, code bool) {
		if code {
			return
		}
		if m := refDefRE.FindStringSubmatch(line); m != nil {
			out = append(out, link{n, strings.Trim(m[1], "<>")})
			return
		}
		for _, m := range inlineRE.FindAllStringSubmatch(stripCodeSpans(line), -1) {
			out = append(out, link{n, strings.Trim(m[1], "<>")})
		}
	})
	return out
}

// eachLine calls f with each line, numbered from 1, and whether it is
// inside a fenced code block (or is a fence).
func eachLine(md []byte, f func(n int, line string, code bool)) {
	sc := bufio.NewScanner(bytes.NewReader(md))
	sc.Buffer(nil, 1<<20)
	fence := ""
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		if fence == "" {
			if len(line)-len(trimmed) <= 3 && (strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~")) {
				fence = trimmed[:3]
				f(n, line, true)
				continue
			}
		} else {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			f(n, line, true)
			continue
		}
		f(n, line, false)
	}
}

// stripCodeSpans blanks out `code spans`, whose brackets are not links.
func stripCodeSpans(line string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(line, '`')
		if i < 0 {
			b.WriteString(line)
			return b.String()
		}
		b.WriteString(line[:i])
		run := len(line[i:]) - len(strings.TrimLeft(line[i:], "`"))
		ticks := line[i : i+run]
		rest := line[i+run:]
		end := strings.Index(rest, ticks)
		if end < 0 {
			b.WriteString(line[i:])
			return b.String()
		}
		b.WriteString(strings.Repeat(" ", run+end+run))
		line = rest[end+run:]
	}
}

var (
	atxRE      = regexp.MustCompile(`^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)
	mdLinkRE   = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	htmlTagRE  = regexp.MustCompile(`<[^>]+>`)
	emphasisRE = regexp.MustCompile(`\*+`)
)

// Anchors are the anchors GitHub gives the ATX headings (# Title) of a
// Markdown document, outside code blocks.
func Anchors(md []byte) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	eachLine(md, func(_ int, line string, code bool) {
		if code {
			return
		}
		m := atxRE.FindStringSubmatch(line)
		if m == nil {
			return
		}
		a := Anchor(m[2])
		// GitHub numbers repeats: a, a-1, a-2.
		if k := seen[a]; k > 0 {
			seen[a]++
			a = fmt.Sprintf("%s-%d", a, k)
		} else {
			seen[a] = 1
		}
		out[a] = true
	})
	return out
}

// Anchor is the anchor GitHub gives a heading: the text it shows (links
// become their text, tags and emphasis marks go), lower-cased, with each
// space made '-' and every character that is not a letter, a digit, '-'
// or '_' removed.
func Anchor(heading string) string {
	text := mdLinkRE.ReplaceAllString(heading, "$1")
	text = htmlTagRE.ReplaceAllString(text, "")
	text = emphasisRE.ReplaceAllString(text, "")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(text)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
