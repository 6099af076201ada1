package config

import (
	"crypto"
	"fmt"
)

const cryptoSHA256 = crypto.SHA256

func fmtSprint(format string, v any) string { return fmt.Sprintf(format, v) }
