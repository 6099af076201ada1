package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tillit-sts/tillit/internal/store"
)

// TestEnvironmentSetting: test under dev mode, production otherwise, and a
// production configuration that enables something only a test environment
// allows refuses to load, naming each thing.
func TestEnvironmentSetting(t *testing.T) {
	clearEnv(t)
	testOnly := []string{
		`identity_providers[0].type: testidp logs anyone in as anyone: it is allowed only with environment: test`,
		`persons[0].pid: "06828399789" is a synthetic test number (its month has 40 or 80 added), allowed only with environment: test`,
		`hpr[0].pid: "06828399789" is a synthetic test number`,
	}
	tests := []struct {
		name     string
		env      string // replaces "environment: test"
		dev      bool
		want     Environment
		wantErrs []string
	}{
		{name: "test", env: "environment: test", want: EnvironmentTest},
		{name: "dev mode defaults to test", env: "", dev: true, want: EnvironmentTest},
		{name: "otherwise production", env: "", wantErrs: testOnly},
		{name: "production", env: "environment: production", wantErrs: testOnly},
		{name: "dev mode may say production", env: "environment: production", dev: true, wantErrs: testOnly},
		{name: "unknown", env: "environment: staging", wantErrs: append(testOnly[:3:3], `environment: "staging" is not test or production`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(base, "environment: test", tt.env, 1)
			name := writeConfig(t, doc, "")
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseWith(name, data, Overrides{Dev: tt.dev})
			if tt.wantErrs == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if c.Environment != tt.want || !c.Test() {
					t.Errorf("Environment = %q, Test() = %v; want %q", c.Environment, c.Test(), tt.want)
				}
				return
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != len(tt.wantErrs) {
				t.Fatalf("error:\n%v\nwant %d problems", err, len(tt.wantErrs))
			}
			for i, want := range tt.wantErrs {
				if !strings.Contains(errs[i].Error(), want) {
					t.Errorf("problem %d = %q, want it to contain %q", i, errs[i], want)
				}
			}
		})
	}
}

func TestTestOnBuiltConfig(t *testing.T) {
	if (&Config{}).Test() || !(&Config{Dev: true}).Test() || (&Config{Dev: true, Environment: EnvironmentProduction}).Test() {
		t.Error("an empty Environment is not the default: test in dev mode, production otherwise")
	}
}

// writePopulation writes base with persons_file and hpr_file and the two
// files beside it, and loads it.
func writePopulation(t *testing.T, personsCSV, hprYAML string) (*Config, error) {
	t.Helper()
	name := writeConfig(t, base+"persons_file: persons.csv\nhpr_file: hpr.yaml\n", "")
	dir := filepath.Dir(name)
	if err := os.WriteFile(filepath.Join(dir, "persons.csv"), []byte(personsCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hpr.yaml"), []byte(hprYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(name)
}

const (
	personsCSV = "pid,given_name,middle_name,family_name\n" +
		"04818099091,Kari,,Nordmann\n" + // 2
		"\"13856699042\",\"Per, junior\",Olav,Hansen\n" // 3
	hprYAML = `- number: "9144889"
  pid: "04818099091"
  approvals:
    - profession: SP
- number: "9144897"
  pid: "13856699042"
  enabled: false
  approvals:
    - profession: LE
      authorization: {value: "2", description: Lisens}
`
)

func TestPopulationFiles(t *testing.T) {
	clearEnv(t)
	c, err := writePopulation(t, personsCSV, hprYAML)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	r, err := c.Registry()
	if err != nil {
		t.Fatal(err)
	}
	wantPersons := []store.Person{
		{PID: "06828399789", GivenName: "Kvart", FamilyName: "Grevling"},
		{PID: "17056600574", GivenName: "Ola", MiddleName: "Åge", FamilyName: "Nordmann"},
		{PID: "04818099091", GivenName: "Kari", FamilyName: "Nordmann"},
		{PID: "13856699042", GivenName: "Per, junior", MiddleName: "Olav", FamilyName: "Hansen"},
	}
	if !reflect.DeepEqual(r.Persons, wantPersons) {
		t.Errorf("persons = %+v\nwant %+v", r.Persons, wantPersons)
	}
	autorisasjon := store.HPRCode{Value: "1", Description: "Autorisasjon"}
	wantHPR := []store.HealthPersonnel{
		{Number: "565505933", PID: "06828399789", Status: store.StatusActive, Approvals: []store.HPRApproval{{
			Profession: "LE", Authorization: autorisasjon,
			RequisitionRights: []store.HPRCode{{Value: "1", Description: "Full rekvisisjonsrett"}},
			Specialities:      []store.HPRCode{{Value: "1", Description: "Allmennmedisin"}},
		}}},
		{Number: "9144889", PID: "04818099091", Status: store.StatusActive, Approvals: []store.HPRApproval{{Profession: "SP", Authorization: autorisasjon}}},
		{Number: "9144897", PID: "13856699042", Status: store.StatusDisabled, Approvals: []store.HPRApproval{{
			Profession: "LE", Authorization: store.HPRCode{Value: "2", Description: "Lisens"}}}},
	}
	if !reflect.DeepEqual(r.HealthPersonnel, wantHPR) {
		t.Errorf("hpr = %+v\nwant %+v", r.HealthPersonnel, wantHPR)
	}
}

// TestPopulationFileErrors: a problem in a file names the file and line.
func TestPopulationFileErrors(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name       string
		persons    string
		hpr        string
		wantSuffix string // after the folder
	}{
		{name: "header missing", persons: "04818099091,Kari,,Nordmann\n", wantSuffix: "persons.csv:1: the first line must be the header pid,given_name,middle_name,family_name"},
		{name: "a row of three fields", persons: "pid,given_name,middle_name,family_name\n04818099091,Kari,Nordmann\n", wantSuffix: "persons.csv:2: CSV: wrong number of fields"},
		{name: "pid check digit", persons: strings.Replace(personsCSV, "13856699042", "13856699043", 1), wantSuffix: `persons.csv:3: pid: "13856699043" is not a national identity number: its check digits are wrong`},
		{name: "person in the file and inline", persons: personsCSV + "06828399789,Kvart,,Grevling\n", wantSuffix: `persons.csv:4: pid: person "06828399789" is already declared at persons[0]`},
		{name: "family name missing", persons: personsCSV + "01018099019,Nils,,\n", wantSuffix: "persons.csv:4: family_name: is required"},
		{name: "hpr profession", hpr: strings.Replace(hprYAML, "profession: SP", "profession: sp", 1), wantSuffix: `hpr.yaml:1: approvals[0].profession: "sp" is not a profession code`},
		{name: "hpr number twice", hpr: strings.Replace(hprYAML, "9144897", "9144889", 1), wantSuffix: `hpr.yaml:5: number: HPR number "9144889" is already declared at `},
		{name: "hpr pid also inline", hpr: strings.Replace(hprYAML, "04818099091", "06828399789", 1), wantSuffix: `hpr.yaml:1: pid: pid "06828399789" already has an HPR entry at hpr[0]`},
		{name: "hpr unknown key", hpr: strings.Replace(hprYAML, "enabled: false", "enable: false", 1), wantSuffix: `hpr.yaml: YAML: unmarshal errors:`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			persons, hpr := personsCSV, hprYAML
			if tt.persons != "" {
				persons = tt.persons
			}
			if tt.hpr != "" {
				hpr = tt.hpr
			}
			_, err := writePopulation(t, persons, hpr)
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 {
				t.Fatalf("error:\n%v\nwant one problem", err)
			}
			if got := errs[0].Error(); !strings.Contains(got, string(filepath.Separator)+tt.wantSuffix) {
				t.Errorf("problem = %q, want it to contain %q", got, tt.wantSuffix)
			}
		})
	}
}

func TestPopulationFileMissing(t *testing.T) {
	clearEnv(t)
	name := writeConfig(t, base+"persons_file: nowhere.csv\n", "")
	_, err := Load(name)
	if err == nil || !strings.Contains(err.Error(), "persons_file: open ") {
		t.Fatalf("error = %v, want persons_file: open ...", err)
	}
}
