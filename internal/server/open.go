package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/sqlite"
)

func openStore(ctx context.Context, storage string) (store.Store, error) {
	switch {
	case strings.HasPrefix(storage, "postgres://"), strings.HasPrefix(storage, "postgresql://"):
		return nil, fmt.Errorf("server: PostgreSQL storage is not in this build yet")
	case strings.HasPrefix(storage, "sqlite:"):
		storage = strings.TrimPrefix(strings.TrimPrefix(storage, "sqlite:"), "//")
	}
	return sqlite.Open(ctx, storage, sqlite.Options{})
}
