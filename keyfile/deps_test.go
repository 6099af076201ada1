package keyfile

import (
	"testing"

	"github.com/tillit-sts/tillit/internal/deptest"
)

// TestNoServerDependencies keeps keyfile light for other modules: clients read their keys with it, and should not link a database driver or the server for that.
// Internal libraries that do not pull in the server are allowed.
func TestNoServerDependencies(t *testing.T) { deptest.Check(t) }
