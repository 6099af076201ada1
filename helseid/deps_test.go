package helseid

import (
	"testing"

	"github.com/tillit-sts/tillit/internal/deptest"
)

// TestNoServerDependencies keeps helseid light for other modules: it is wire vocabulary for clients and APIs, who should not link a database driver or the server.
// Internal libraries that do not pull in the server are allowed.
func TestNoServerDependencies(t *testing.T) { deptest.Check(t) }
