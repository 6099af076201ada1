package helseid

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestNewDetails(t *testing.T) {
	tests := []struct {
		name    string
		build   func() (Detail, error)
		want    string
		wantErr string
	}{
		{
			name:  "single-tenant child",
			build: func() (Detail, error) { return NewChildOrganization("313231593") },
			want:  `{"type":"helseid_authorization","practitioner_role":{"organization":{"identifier":{"system":"urn:oid:2.16.578.1.12.4.1.4.101","type":"ENH","value":"313231593"}}}}`,
		},
		{
			name:  "multi-tenant parent and child",
			build: func() (Detail, error) { return NewMultiTenantOrganization("994598759", "313231593") },
			want:  `{"type":"helseid_authorization","practitioner_role":{"organization":{"identifier":{"system":"urn:oid:1.0.6523","type":"ENH","value":"NO:ORGNR:994598759:313231593"}}}}`,
		},
		{
			name:  "multi-tenant parent only keeps the trailing colon",
			build: func() (Detail, error) { return NewMultiTenantOrganization("994598759", "") },
			want:  `{"type":"helseid_authorization","practitioner_role":{"organization":{"identifier":{"system":"urn:oid:1.0.6523","type":"ENH","value":"NO:ORGNR:994598759:"}}}}`,
		},
		{
			name:  "SFM journal id",
			build: func() (Detail, error) { return NewSFMJournalID("a99abfb4-2bea-4e0a-bb03-38e37febbd2c") },
			want:  `{"type":"nhn:sfm:journal-id","value":{"journal_id":"a99abfb4-2bea-4e0a-bb03-38e37febbd2c"}}`,
		},
		{
			name:    "child with wrong check digit",
			build:   func() (Detail, error) { return NewChildOrganization("994598758") },
			wantErr: `helseid: child organisation "994598758" is not a valid organisation number`,
		},
		{
			name:    "empty child",
			build:   func() (Detail, error) { return NewChildOrganization("") },
			wantErr: `helseid: child organisation "" is not a valid organisation number`,
		},
		{
			name:    "multi-tenant without parent",
			build:   func() (Detail, error) { return NewMultiTenantOrganization("", "313231593") },
			wantErr: `helseid: parent organisation "" is not a valid organisation number`,
		},
		{
			name:    "multi-tenant with bad child",
			build:   func() (Detail, error) { return NewMultiTenantOrganization("994598759", "31323159") },
			wantErr: `helseid: child organisation "31323159" is not a valid organisation number`,
		},
		{
			name:    "journal id not a UUID",
			build:   func() (Detail, error) { return NewSFMJournalID("a99abfb42bea4e0abb0338e37febbd2c") },
			wantErr: `helseid: SFM journal id "a99abfb42bea4e0abb0338e37febbd2c" is not a UUID`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.build()
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := MarshalDetails([]Detail{d})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestMarshalDetails(t *testing.T) {
	org, _ := NewMultiTenantOrganization("994598759", "")
	journal, _ := NewSFMJournalID("a99abfb4-2bea-4e0a-bb03-38e37febbd2c")
	tests := []struct {
		name    string
		in      []Detail
		want    string
		wantErr string
	}{
		{
			name: "one entry is a bare object",
			in:   []Detail{journal},
			want: `{"type":"nhn:sfm:journal-id","value":{"journal_id":"a99abfb4-2bea-4e0a-bb03-38e37febbd2c"}}`,
		},
		{
			name: "two entries are an array",
			in:   []Detail{org, journal},
			want: `[{"type":"helseid_authorization","practitioner_role":{"organization":{"identifier":{"system":"urn:oid:1.0.6523","type":"ENH","value":"NO:ORGNR:994598759:"}}}},{"type":"nhn:sfm:journal-id","value":{"journal_id":"a99abfb4-2bea-4e0a-bb03-38e37febbd2c"}}]`,
		},
		{
			name: "raw entry is written as it is",
			in:   []Detail{&RawDetail{Type: DetailTypeTillitsrammeverk, JSON: json.RawMessage(`{"type":"nhn:tillitsrammeverk:parameters","practitioner":{}}`)}},
			want: `{"type":"nhn:tillitsrammeverk:parameters","practitioner":{}}`,
		},
		{name: "no entries", in: nil, wantErr: "helseid: no assertion details"},
		{name: "nil entry", in: []Detail{nil}, wantErr: "helseid: nil assertion detail"},
		{name: "nil among several", in: []Detail{org, nil}, wantErr: "helseid: nil assertion detail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MarshalDetails(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestParseDetails(t *testing.T) {
	const (
		multi     = `{"type":"helseid_authorization","practitioner_role":{"organization":{"identifier":{"system":"urn:oid:1.0.6523","type":"ENH","value":"NO:ORGNR:994598759:313231593"}}}}`
		journal   = `{"type":"nhn:sfm:journal-id","value":{"journal_id":"a99abfb4-2bea-4e0a-bb03-38e37febbd2c"}}`
		tillit    = `{"type":"nhn:tillitsrammeverk:parameters","practitioner":{"authorization":{"code":"LE"}}}`
		wrongType = `{"type":"helseid_authorization","practitioner_role":"x"}`
	)
	// wantErr is a prefix: what follows it is encoding/json's own text.
	tests := []struct {
		name      string
		in        string
		wantTypes []string
		wantErr   string
	}{
		{name: "bare object", in: multi, wantTypes: []string{DetailTypeAuthorization}},
		{name: "array", in: "[" + multi + ", " + journal + "," + tillit + "]", wantTypes: []string{DetailTypeAuthorization, DetailTypeSFMJournalID, DetailTypeTillitsrammeverk}},
		{name: "surrounding space", in: "  " + journal + "\n", wantTypes: []string{DetailTypeSFMJournalID}},
		{name: "empty array", in: `[]`, wantErr: "helseid: assertion details is an empty array"},
		{name: "string", in: `"NO:ORGNR:994598759"`, wantErr: "helseid: assertion details is neither an object nor an array"},
		{name: "empty", in: ``, wantErr: "helseid: assertion details is neither an object nor an array"},
		{name: "entry without type", in: `[{"value":1}]`, wantErr: "helseid: assertion details entry 0: entry has no type"},
		{name: "entry with numeric type", in: `{"type":7}`, wantErr: "helseid: assertion details entry 0: entry: json: "},
		{name: "entry not an object", in: `[` + journal + `,"x"]`, wantErr: "helseid: assertion details entry 1: entry is not a JSON object"},
		{name: "known type of the wrong shape", in: wrongType, wantErr: "helseid: assertion details entry 0: helseid_authorization: json: "},
		{name: "broken array", in: `[{"type":"x"}`, wantErr: "helseid: assertion details: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDetails(json.RawMessage(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, d := range got {
				types = append(types, d.DetailType())
			}
			if strings.Join(types, " ") != strings.Join(tt.wantTypes, " ") {
				t.Fatalf("types %v, want %v", types, tt.wantTypes)
			}
		})
	}
}

func TestParseDetailsRoundTrip(t *testing.T) {
	child, _ := NewChildOrganization("313231593")
	journal, _ := NewSFMJournalID("A99ABFB4-2BEA-4E0A-BB03-38E37FEBBD2C")
	raw, _ := NewRawDetail(json.RawMessage(`{"type":"nhn:tillitsrammeverk:parameters","patients":[{"id":1}]}`))
	in := []Detail{child, journal, raw}
	b, err := MarshalDetails(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ParseDetails(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := MarshalDetails(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(b2) {
		t.Fatalf("round trip changed the claim:\n%s\n%s", b, b2)
	}
	if got := out[1].(*JournalIDDetail).JournalID; got != journal.JournalID {
		t.Fatalf("journal id %q", got)
	}
}

func TestOrgNumbers(t *testing.T) {
	id := func(system, typ, value string) *AuthorizationDetail {
		return &AuthorizationDetail{PractitionerRole: PractitionerRole{Organization: OrganizationRef{
			Identifier: Identifier{System: system, Type: typ, Value: value}}}}
	}
	tests := []struct {
		name       string
		in         *AuthorizationDetail
		wantParent string
		wantChild  string
		wantErr    string
	}{
		{name: "single-tenant child", in: id(SystemEnhetsregisteret, "ENH", "313231593"), wantChild: "313231593"},
		{name: "parent and child", in: id(SystemISO6523, "ENH", "NO:ORGNR:994598759:313231593"), wantParent: "994598759", wantChild: "313231593"},
		{name: "parent with trailing colon (.NET)", in: id(SystemISO6523, "ENH", "NO:ORGNR:994598759:"), wantParent: "994598759"},
		{name: "parent without trailing colon (KS)", in: id(SystemISO6523, "ENH", "NO:ORGNR:994598759"), wantParent: "994598759"},
		{name: "numbers are returned as written", in: id(SystemISO6523, "ENH", "NO:ORGNR:12:ab"), wantParent: "12", wantChild: "ab"},
		{name: "wrong identifier type", in: id(SystemISO6523, "ORG", "NO:ORGNR:994598759:"), wantErr: `helseid: organisation identifier type "ORG" is not "ENH"`},
		{name: "unknown system", in: id("urn:oid:2.16.578.1.12.4.1.2.101", "ENH", "313231593"), wantErr: `helseid: unknown organisation identifier system "urn:oid:2.16.578.1.12.4.1.2.101"`},
		{name: "single-tenant without value", in: id(SystemEnhetsregisteret, "ENH", ""), wantErr: "helseid: organisation identifier has no value"},
		{name: "ISO 6523 without prefix", in: id(SystemISO6523, "ENH", "994598759"), wantErr: `helseid: organisation identifier value does not start with "NO:ORGNR:"`},
		{name: "ISO 6523 without parent", in: id(SystemISO6523, "ENH", "NO:ORGNR::313231593"), wantErr: "helseid: organisation identifier names no parent"},
		{name: "ISO 6523 with three numbers", in: id(SystemISO6523, "ENH", "NO:ORGNR:994598759:313231593:1"), wantErr: "helseid: organisation identifier has more than parent and child"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent, child, err := tt.in.OrgNumbers()
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if parent != tt.wantParent || child != tt.wantChild {
				t.Fatalf("got %q %q, want %q %q", parent, child, tt.wantParent, tt.wantChild)
			}
		})
	}
}

func TestIsUUID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"lower case", "a99abfb4-2bea-4e0a-bb03-38e37febbd2c", true},
		{"upper case", "A99ABFB4-2BEA-4E0A-BB03-38E37FEBBD2C", true},
		{"no dashes", "a99abfb42bea4e0abb0338e37febbd2c", false},
		{"braces", "{a99abfb4-2bea-4e0a-bb03-38e37febbd2c}", false},
		{"dash misplaced", "a99abfb42-bea-4e0a-bb03-38e37febbd2c", false},
		{"not hex", "g99abfb4-2bea-4e0a-bb03-38e37febbd2c", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsUUID(tt.in); got != tt.want {
				t.Fatalf("IsUUID(%q) = %v", tt.in, got)
			}
		})
	}
}

// FuzzParseDetails feeds untrusted claim values to the parser the token
// endpoint uses: it must never panic, and what it accepts must marshal again
// and parse to the same types.
func FuzzParseDetails(f *testing.F) {
	f.Add(`{"type":"helseid_authorization","practitioner_role":{"organization":{"identifier":{"system":"urn:oid:1.0.6523","type":"ENH","value":"NO:ORGNR:994598759:"}}}}`)
	f.Add(`[{"type":"nhn:sfm:journal-id","value":{"journal_id":"a99abfb4-2bea-4e0a-bb03-38e37febbd2c"}},{"type":"x"}]`)
	f.Add(`[]`)
	f.Add(`{"type":null}`)
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseDetails(json.RawMessage(in))
		if err != nil {
			return
		}
		for _, d := range got {
			if a, ok := d.(*AuthorizationDetail); ok {
				_, _, _ = a.OrgNumbers()
			}
		}
		b, err := MarshalDetails(got)
		if err != nil {
			t.Fatalf("accepted %q but cannot marshal it: %v", in, err)
		}
		again, err := ParseDetails(b)
		if err != nil {
			t.Fatalf("accepted %q but not its re-marshalled form %s: %v", in, b, err)
		}
		if len(again) != len(got) {
			t.Fatalf("%d entries became %d", len(got), len(again))
		}
		for i := range got {
			if got[i].DetailType() != again[i].DetailType() {
				t.Fatalf("entry %d changed type %q to %q", i, got[i].DetailType(), again[i].DetailType())
			}
		}
	})
}
