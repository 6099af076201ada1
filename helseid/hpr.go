package helseid

// ValidHPRNumber reports whether s can be a Health Personnel Register (HPR)
// number: one to nine digits. HPR numbers have no public check digit, so
// whether one is registered is the register's answer, not this function's.
func ValidHPRNumber(s string) bool {
	if len(s) == 0 || len(s) > 9 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
