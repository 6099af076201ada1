package resource

import (
	"testing"

	"github.com/tillit-sts/tillit/internal/deptest"
)

// TestNoServerDependencies keeps resource light for other modules: an API should not link a database driver or the server because it validates tokens.
// Internal libraries that do not pull in the server are allowed.
func TestNoServerDependencies(t *testing.T) { deptest.Check(t) }
