package helseid

import "errors"

// PID describes a valid Norwegian national identity number (the
// helseid://claims/identity/pid claim): a fødselsnummer or a D-number,
// real or synthetic.
type PID struct {
	// DNumber: the day has 40 added (a D-number, given to people without
	// a fødselsnummer).
	DNumber bool
	// Synthetic: a test number, never given to a real person. The month
	// has 80 added (Skatteetaten's Tenor test population) or 40 (NAV's
	// synthetic test numbers).
	Synthetic bool
}

// Errors of ParsePID.
var (
	ErrPIDFormat = errors.New("helseid: pid is not 11 digits")
	ErrPIDDate   = errors.New("helseid: pid does not start with a date (DDMMYY, D-numbers add 40 to the day)")
	ErrPIDCheck  = errors.New("helseid: pid check digits are wrong")
)

// The weights of the two modulus-11 check digits over the digits before
// each.
var (
	pidWeights1 = [9]int{3, 7, 6, 1, 8, 9, 4, 5, 2}
	pidWeights2 = [10]int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2}
)

// ParsePID checks s: 11 digits, a date of birth (DDMMYY) with the offsets
// of D-numbers and synthetic numbers, an individual number, and two
// modulus-11 check digits. It does not decide whether a synthetic number
// is acceptable; that depends on the environment.
func ParsePID(s string) (PID, error) {
	if len(s) != 11 {
		return PID{}, ErrPIDFormat
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return PID{}, ErrPIDFormat
		}
	}
	var p PID
	day := int(s[0]-'0')*10 + int(s[1]-'0')
	month := int(s[2]-'0')*10 + int(s[3]-'0')
	if day > 40 {
		p.DNumber, day = true, day-40
	}
	switch {
	case month > 80:
		p.Synthetic, month = true, month-80
	case month > 40:
		p.Synthetic, month = true, month-40
	}
	// The year's century is in the individual number; February 29 is
	// allowed whatever the year, which costs nothing to a check that
	// cannot know the century for every range anyway.
	if month < 1 || month > 12 || day < 1 || day > daysIn[month-1] {
		return PID{}, ErrPIDDate
	}
	k1, ok1 := pidCheck(s, pidWeights1[:])
	k2, ok2 := pidCheck(s, pidWeights2[:])
	if !ok1 || !ok2 || int(s[9]-'0') != k1 || int(s[10]-'0') != k2 {
		return PID{}, ErrPIDCheck
	}
	return p, nil
}

var daysIn = [12]int{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// pidCheck computes the check digit with weights over the first
// len(weights) digits of s. A remainder that would need the digit 10 is
// never assigned: ok is false.
func pidCheck(s string, weights []int) (digit int, ok bool) {
	sum := 0
	for i, w := range weights {
		sum += int(s[i]-'0') * w
	}
	switch c := 11 - sum%11; c {
	case 11:
		return 0, true
	case 10:
		return 0, false
	default:
		return c, true
	}
}

// CompletePID appends the two check digits to the first nine digits of a
// pid (date and individual number), for making test numbers. It returns
// false when nine is not nine digits or no check digit exists for it
// (the individual number must then be another).
func CompletePID(nine string) (string, bool) {
	if len(nine) != 9 {
		return "", false
	}
	for i := range len(nine) {
		if nine[i] < '0' || nine[i] > '9' {
			return "", false
		}
	}
	k1, ok := pidCheck(nine, pidWeights1[:])
	if !ok {
		return "", false
	}
	ten := nine + string(rune('0'+k1))
	k2, ok := pidCheck(ten, pidWeights2[:])
	if !ok {
		return "", false
	}
	return ten + string(rune('0'+k2)), true
}
