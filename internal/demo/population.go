package demo

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"time"

	"github.com/tillit-sts/tillit/helseid"
)

// File names of the dev population inside the data folder.
const (
	PersonsFile = "persons.csv"
	HPRFile     = "hpr.yaml"
)

// PopulationSize is how many synthetic persons --dev registers.
const PopulationSize = 300

// Person is one of the synthetic dev population.
type Person struct {
	PID                               string
	GivenName, MiddleName, FamilyName string
}

// Common Norwegian names, by the gender the pid's individual number
// gives (odd third digit: male).
var (
	femaleNames = []string{"Anne", "Inger", "Kari", "Marit", "Ingrid", "Liv", "Eva", "Berit", "Astrid", "Bjørg",
		"Hilde", "Anna", "Solveig", "Marianne", "Randi", "Ida", "Nina", "Maria", "Elisabeth", "Kristin",
		"Tone", "Silje", "Ragnhild", "Hanne", "Gunn", "Nora", "Emma", "Sara", "Ingeborg", "Åse"}
	maleNames = []string{"Jan", "Per", "Bjørn", "Ole", "Lars", "Kjell", "Knut", "Arne", "Svein", "Hans",
		"Geir", "Thomas", "Odd", "Terje", "Morten", "Erik", "Martin", "Andreas", "Tor", "John",
		"Rune", "Trond", "Jon", "Anders", "Einar", "Nils", "Magnus", "Jonas", "Håkon", "Øyvind"}
	familyNames = []string{"Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Kristiansen",
		"Jensen", "Karlsen", "Johnsen", "Pettersen", "Eriksen", "Berg", "Haugen", "Hagen", "Johannessen",
		"Andreassen", "Jacobsen", "Dahl", "Jørgensen", "Halvorsen", "Henriksen", "Lund", "Sørensen",
		"Jakobsen", "Moen", "Gundersen", "Iversen", "Strand", "Solberg", "Svendsen", "Eide", "Knutsen",
		"Martinsen", "Paulsen", "Bakken", "Kristoffersen", "Mathisen", "Lie", "Amundsen", "Nguyen",
		"Rasmussen", "Ali", "Lunde", "Solheim", "Berge", "Moe", "Nygård", "Bakke", "Kristensen", "Fredriksen",
		"Holm", "Lien", "Hauge", "Christensen", "Andresen", "Nielsen", "Knudsen", "Evensen", "Sæther",
		"Aas", "Myhre", "Hanssen", "Ahmed", "Haugland", "Thomassen", "Sivertsen", "Simonsen", "Danielsen",
		"Berntsen", "Sandvik", "Rønning", "Arnesen", "Antonsen", "Næss", "Vik", "Haug", "Ellingsen", "Thorsen",
		"Edvardsen", "Birkeland", "Isaksen", "Gulbrandsen", "Ruud", "Aasen", "Strøm", "Myklebust", "Tangen",
		"Ødegård", "Eliassen", "Helland", "Bøe", "Jenssen", "Aune", "Mikkelsen", "Tveit", "Brekke", "Abrahamsen", "Madsen"}
)

// Population returns the dev population: PopulationSize persons with
// synthetic pids (Skatteetaten's Tenor form, month + 80) born 1940-1999,
// the same on every call, so that a pid in a guide or test stays valid.
func Population() []Person {
	out := make([]Person, 0, PopulationSize)
	born := time.Date(1940, 1, 3, 0, 0, 0, 0, time.UTC)
	for i := 0; len(out) < PopulationSize; i++ {
		// Dates 71 days apart span the 60 years; individual numbers
		// 000-499 belong to births 1900-1999.
		d := born.AddDate(0, 0, 71*i)
		date := fmt.Sprintf("%02d%02d%02d", d.Day(), int(d.Month())+80, d.Year()%100)
		for n := (i * 37) % 500; ; n = (n + 1) % 500 {
			pid, ok := helseid.CompletePID(fmt.Sprintf("%s%03d", date, n))
			if !ok {
				continue
			}
			p := Person{PID: pid, FamilyName: familyNames[(i*7)%len(familyNames)]}
			if n%2 == 1 {
				p.GivenName = maleNames[(i*11)%len(maleNames)]
			} else {
				p.GivenName = femaleNames[(i*11)%len(femaleNames)]
			}
			if i%4 == 3 {
				p.MiddleName = familyNames[(i*13+5)%len(familyNames)]
			}
			out = append(out, p)
			break
		}
	}
	return out
}

// HealthPersonnel of the dev population: who of Population is a doctor
// or a nurse.
type HealthPersonnel struct {
	Number     string
	Person     int // index in Population
	Profession string
	Speciality string // empty: none
}

// DevHealthPersonnel are a few doctors (LE) and nurses (SP) of the dev
// population.
var DevHealthPersonnel = []HealthPersonnel{
	{Number: "9100013", Person: 0, Profession: "LE", Speciality: "Allmennmedisin"},
	{Number: "9100021", Person: 1, Profession: "LE", Speciality: "Indremedisin"},
	{Number: "9100048", Person: 2, Profession: "LE"},
	{Number: "9100056", Person: 3, Profession: "SP"},
	{Number: "9100064", Person: 4, Profession: "SP"},
	{Number: "9100072", Person: 5, Profession: "SP"},
}

// personsCSV is the population as a persons_file.
func personsCSV(people []Person) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"pid", "given_name", "middle_name", "family_name"})
	for _, p := range people {
		w.Write([]string{p.PID, p.GivenName, p.MiddleName, p.FamilyName})
	}
	w.Flush()
	return buf.Bytes()
}

// hprYAML is DevHealthPersonnel as an hpr_file.
func hprYAML(people []Person) []byte {
	var buf bytes.Buffer
	buf.WriteString("# Health personnel of the dev population (persons.csv), written by 'tillit serve --dev'.\n")
	for _, h := range DevHealthPersonnel {
		p := people[h.Person]
		fmt.Fprintf(&buf, "# %s %s\n- number: %q\n  pid: %q\n  approvals:\n    - profession: %s\n", p.GivenName, p.FamilyName, h.Number, p.PID, h.Profession)
		if h.Speciality != "" {
			fmt.Fprintf(&buf, "      specialities: [{value: %q, description: %s}]\n", "1", h.Speciality)
		}
	}
	return buf.Bytes()
}
