package stalltest

import (
	"testing"

	"github.com/tillit-sts/tillit/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
