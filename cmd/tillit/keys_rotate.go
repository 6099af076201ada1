package main

import (
	"context"
	"errors"
	"io"
)

// runKeysRotate is a placeholder until "tillit keys rotate" is written; this
// file will be replaced by the real command.
func runKeysRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
