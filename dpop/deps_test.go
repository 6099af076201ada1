package dpop

import (
	"testing"

	"github.com/tillit-sts/tillit/internal/deptest"
)

// TestNoServerDependencies keeps dpop light for other modules: clients and APIs use it, and neither should link a database driver or the server.
// Internal libraries that do not pull in the server are allowed.
func TestNoServerDependencies(t *testing.T) { deptest.Check(t) }
