package client

import (
	"testing"

	"github.com/tillit-sts/tillit/internal/deptest"
)

// TestNoServerDependencies keeps client light for other modules: a client should not link a database driver or the server because it gets tokens.
// Internal libraries that do not pull in the server are allowed.
func TestNoServerDependencies(t *testing.T) { deptest.Check(t) }
