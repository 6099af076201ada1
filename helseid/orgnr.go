package helseid

// ValidOrgNumber reports whether s is a Norwegian organisation number: nine
// digits whose last is the modulus-11 check digit over the first eight with
// weights 3 2 7 6 5 4 3 2 (Enhetsregisteret). A remainder that would need
// check digit 10 is never assigned, so such numbers are invalid.
func ValidOrgNumber(s string) bool {
	if len(s) != 9 {
		return false
	}
	weights := [8]int{3, 2, 7, 6, 5, 4, 3, 2}
	sum := 0
	for i := 0; i < 9; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		if i < 8 {
			sum += int(c-'0') * weights[i]
		}
	}
	check := 11 - sum%11
	switch check {
	case 11:
		check = 0
	case 10:
		return false
	}
	return int(s[8]-'0') == check
}
