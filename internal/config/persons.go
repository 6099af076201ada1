package config

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/tillit-sts/tillit/helseid"
	"github.com/tillit-sts/tillit/internal/store"
)

// maxPopulationFile bounds persons_file and hpr_file: room for about a
// million persons.
const maxPopulationFile = 64 << 20

// A person or HPR entry from a file, with the line it starts on.
type filePerson struct {
	Person
	line int
}

type fileHPR struct {
	HPR
	line int
}

// personsHeader is the first line of a persons file.
var personsHeader = []string{"pid", "given_name", "middle_name", "family_name"}

// readPopulationFiles reads persons_file and hpr_file. Their problems are
// kept for check, which reports them with the rest.
func (c *Config) readPopulationFiles() {
	if c.PersonsFile != "" {
		c.PersonsFile = c.src.abs(c.PersonsFile)
		data, err := readFile(c.PersonsFile, maxPopulationFile)
		if err != nil {
			c.fileErrs = append(c.fileErrs, c.src.errorAt(path{"persons_file"}, err, "%v", err))
		} else {
			c.filePersons, c.fileErrs = parsePersons(c.PersonsFile, data, c.fileErrs)
		}
	}
	if c.HPRFile != "" {
		c.HPRFile = c.src.abs(c.HPRFile)
		data, err := readFile(c.HPRFile, maxPopulationFile)
		if err != nil {
			c.fileErrs = append(c.fileErrs, c.src.errorAt(path{"hpr_file"}, err, "%v", err))
		} else {
			c.fileHPR, c.fileErrs = parseHPRFile(c.HPRFile, data, c.fileErrs)
		}
	}
}

// parsePersons reads a persons CSV file: the header line, then one person
// per line.
func parsePersons(name string, data []byte, errs Errors) ([]filePerson, Errors) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff"))))
	r.FieldsPerRecord = len(personsHeader)
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, append(errs, &Error{File: name, Line: 1, Msg: fmt.Sprintf("CSV: %v", csvMsg(err))})
	}
	if !slices.Equal(header, personsHeader) {
		return nil, append(errs, &Error{File: name, Line: 1, Msg: "the first line must be the header " + strings.Join(personsHeader, ",")})
	}
	var out []filePerson
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, errs
		}
		if err != nil {
			line, _ := r.FieldPos(0)
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.StartLine
			}
			return out, append(errs, &Error{File: name, Line: line, Msg: fmt.Sprintf("CSV: %v", csvMsg(err))})
		}
		line, _ := r.FieldPos(0)
		out = append(out, filePerson{Person{PID: rec[0], GivenName: rec[1], MiddleName: rec[2], FamilyName: rec[3]}, line})
	}
}

// csvMsg is a CSV error without the position, which Error gives.
func csvMsg(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parseHPRFile reads an HPR file: a YAML list of entries as under hpr.
func parseHPRFile(name string, data []byte, errs Errors) ([]fileHPR, Errors) {
	var list []HPR
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&list); err != nil && !errors.Is(err, io.EOF) {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.ReplaceAll(msg, "\n ", "")
		return nil, append(errs, &Error{File: name, Msg: "YAML: " + msg, Err: err})
	}
	var doc yaml.Node
	_ = yaml.Unmarshal(data, &doc) // it decoded above
	var items []*yaml.Node
	if len(doc.Content) == 1 && doc.Content[0].Kind == yaml.SequenceNode {
		items = doc.Content[0].Content
	}
	out := make([]fileHPR, len(list))
	for i, h := range list {
		out[i].HPR = h
		if i < len(items) {
			out[i].line = items[i].Line
		}
	}
	return out, errs
}

// where names an entry of the registry for messages about duplicates:
// "persons[3] (line 40)" or "persons.csv:12".
type where struct {
	path path
	file string // the entry is in this file, not the configuration
	line int
}

func (w where) String() string {
	switch {
	case w.file != "":
		return fmt.Sprintf("%s:%d", w.file, w.line)
	case w.line > 0:
		return fmt.Sprintf("%s (line %d)", w.path, w.line)
	}
	return w.path.String()
}

// entry is the where of entry i of the configuration's list at key.
func (k *checker) entry(key string, i int) where {
	p := path{key, i}
	return where{path: p, line: k.src.line(p)}
}

// report adds a problem with the field at p in the entry at w.
func (w where) report(k *checker, p path, format string, args ...any) {
	if w.file == "" {
		k.add(w.path.with(p...), format, args...)
		return
	}
	k.errs = append(k.errs, &Error{File: w.file, Line: w.line, Path: p.String(), Msg: fmt.Sprintf(format, args...)})
}

// checkPID checks a pid and that a synthetic one is in a test environment.
func (c *Config) checkPID(k *checker, w where, pid string) {
	p, err := helseid.ParsePID(pid)
	switch {
	case pid == "":
		w.report(k, path{"pid"}, "is required")
	case errors.Is(err, helseid.ErrPIDFormat):
		w.report(k, path{"pid"}, "%q is not a national identity number: 11 digits", pid)
	case errors.Is(err, helseid.ErrPIDDate):
		w.report(k, path{"pid"}, "%q is not a national identity number: it must start with a date of birth, DDMMYY (a D-number adds 40 to the day)", pid)
	case errors.Is(err, helseid.ErrPIDCheck):
		w.report(k, path{"pid"}, "%q is not a national identity number: its check digits are wrong", pid)
	case p.Synthetic && !c.Test():
		w.report(k, path{"pid"}, "%q is a synthetic test number (its month has 40 or 80 added), allowed only with environment: test", pid)
	}
}

// checkText checks a name or description that people read: one line, at
// most max characters.
func checkText(k *checker, w where, field path, s string, required bool, max int) {
	switch {
	case s == "" && required:
		w.report(k, field, "is required")
	case strings.ContainsFunc(s, unicode.IsControl) || utf8.RuneCountInString(s) > max || !utf8.ValidString(s):
		w.report(k, field, "must be at most %d characters of UTF-8 without line breaks, tabs or other control characters", max)
	}
}

func (c *Config) checkPersons(k *checker) {
	seen := map[string]where{}
	check := func(w where, p Person) {
		c.checkPID(k, w, p.PID)
		if first, ok := seen[p.PID]; ok && p.PID != "" {
			w.report(k, path{"pid"}, "person %q is already declared at %s", p.PID, first)
		} else {
			seen[p.PID] = w
		}
		checkText(k, w, path{"given_name"}, p.GivenName, true, 100)
		checkText(k, w, path{"middle_name"}, p.MiddleName, false, 100)
		checkText(k, w, path{"family_name"}, p.FamilyName, true, 100)
	}
	for i, p := range c.Persons {
		check(k.entry("persons", i), p)
	}
	for _, p := range c.filePersons {
		check(where{file: c.PersonsFile, line: p.line}, p.Person)
	}
}

var (
	// hprNumberRE: HPR numbers are up to nine digits.
	hprNumberRE  = regexp.MustCompile(`^[1-9][0-9]{0,8}$`)
	professionRE = regexp.MustCompile(`^[A-Z]{2}$`)
)

// Bounds on an HPR entry's lists: far above any real entry.
const (
	maxApprovals = 20
	maxHPRCodes  = 50
)

func (c *Config) checkHPR(k *checker) {
	numbers, pids := map[string]where{}, map[string]where{}
	check := func(w where, h HPR) {
		switch {
		case h.Number == "":
			w.report(k, path{"number"}, "is required")
		case !hprNumberRE.MatchString(h.Number):
			w.report(k, path{"number"}, "%q is not an HPR number (up to nine digits, the first not 0)", h.Number)
		default:
			if first, ok := numbers[h.Number]; ok {
				w.report(k, path{"number"}, "HPR number %q is already declared at %s", h.Number, first)
			} else {
				numbers[h.Number] = w
			}
		}
		c.checkPID(k, w, h.PID)
		if first, ok := pids[h.PID]; ok && h.PID != "" {
			w.report(k, path{"pid"}, "pid %q already has an HPR entry at %s", h.PID, first)
		} else {
			pids[h.PID] = w
		}
		switch {
		case len(h.Approvals) == 0:
			w.report(k, path{"approvals"}, "at least one approval is required")
		case len(h.Approvals) > maxApprovals:
			w.report(k, path{"approvals"}, "at most %d approvals", maxApprovals)
		}
		for j, a := range h.Approvals {
			aw := path{"approvals", j}
			if !professionRE.MatchString(a.Profession) {
				w.report(k, aw.with("profession"), "%q is not a profession code: two capital letters, such as LE (lege) or SP (sykepleier)", a.Profession)
			}
			if a.Authorization != nil {
				checkCode(k, w, aw.with("authorization"), *a.Authorization)
			}
			for _, list := range []struct {
				name  string
				codes []HPRCode
			}{{"requisition_rights", a.RequisitionRights}, {"specialities", a.Specialities}} {
				if len(list.codes) > maxHPRCodes {
					w.report(k, aw.with(list.name), "at most %d entries", maxHPRCodes)
				}
				for n, code := range list.codes {
					checkCode(k, w, aw.with(list.name, n), code)
				}
			}
		}
	}
	for i, h := range c.HPR {
		check(k.entry("hpr", i), h)
	}
	for i, h := range c.fileHPR {
		w := where{file: c.HPRFile, line: h.line}
		if h.line == 0 {
			w = where{path: path{"hpr_file", i}}
		}
		check(w, h.HPR)
	}
}

func checkCode(k *checker, w where, field path, code HPRCode) {
	checkText(k, w, field.with("value"), code.Value, true, 50)
	checkText(k, w, field.with("description"), code.Description, false, 200)
}

// defaultAuthorization is an approval's authorization when the file names
// none.
var defaultAuthorization = store.HPRCode{Value: "1", Description: "Autorisasjon"}

// population returns the persons and HPR entries of the file and of the
// files it names, as store records.
func (c *Config) population() ([]store.Person, []store.HealthPersonnel) {
	persons := make([]store.Person, 0, len(c.Persons)+len(c.filePersons))
	add := func(p Person) {
		persons = append(persons, store.Person{PID: p.PID, GivenName: p.GivenName, MiddleName: p.MiddleName, FamilyName: p.FamilyName})
	}
	for _, p := range c.Persons {
		add(p)
	}
	for _, p := range c.filePersons {
		add(p.Person)
	}
	var hpr []store.HealthPersonnel
	addHPR := func(h HPR) {
		e := store.HealthPersonnel{Number: h.Number, PID: h.PID, Status: store.StatusActive}
		if h.Enabled != nil && !*h.Enabled {
			e.Status = store.StatusDisabled
		}
		for _, a := range h.Approvals {
			ap := store.HPRApproval{Profession: a.Profession, Authorization: defaultAuthorization}
			if a.Authorization != nil {
				ap.Authorization = store.HPRCode(*a.Authorization)
			}
			for _, r := range a.RequisitionRights {
				ap.RequisitionRights = append(ap.RequisitionRights, store.HPRCode(r))
			}
			for _, s := range a.Specialities {
				ap.Specialities = append(ap.Specialities, store.HPRCode(s))
			}
			e.Approvals = append(e.Approvals, ap)
		}
		hpr = append(hpr, e)
	}
	for _, h := range c.HPR {
		addHPR(h)
	}
	for _, h := range c.fileHPR {
		addHPR(h.HPR)
	}
	return persons, hpr
}
