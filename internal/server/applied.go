package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"sync"

	"github.com/tillit-sts/tillit/internal/config"
	"github.com/tillit-sts/tillit/internal/registry"
	"github.com/tillit-sts/tillit/internal/store"
)

// applySource applies the registry of the configuration file src, unless
// the store holds it already: the file, the files it names and the build
// are the ones last applied, and no file-managed record has been written
// since. Then the file's registry is not read at all, which at a hundred
// thousand clients is the difference between seconds and a fraction of
// one.
func (s *Server) applySource(ctx context.Context, settings *config.Config, src *config.Source) (*registry.Watcher, error) {
	digest := src.Digest(build(), settings)
	if rec, ok := s.stillApplied(ctx, digest); ok {
		src.Drop()
		w, err := registry.NewWatcher(ctx, s.store, settings.RegistryPoll, nil)
		if err != nil {
			return nil, err
		}
		w.Log = s.log
		s.log.Info("registry file unchanged since it was applied: not read again",
			"applied_version", rec.Version, "version", w.Current().Version())
		return w, nil
	}
	full, err := src.Registry()
	if err != nil {
		return nil, err
	}
	want, err := full.Registry()
	if err != nil {
		return nil, err
	}
	// From here only the records are used: the parsed file (its text,
	// keys and structures) is garbage while they are written.
	inputs := full.RegistryInputs()
	w, err := s.sync(ctx, want, settings.RegistryPoll)
	if err != nil {
		return nil, err
	}
	if err := s.recordApplied(ctx, digest, inputs); err != nil {
		// Only the next start pays: it applies the file again.
		s.log.Warn("could not record the applied configuration", "err", err)
	}
	return w, nil
}

// stillApplied reports whether the store holds the registry of the file
// with this digest, and the record that says so.
func (s *Server) stillApplied(ctx context.Context, digest string) (store.AppliedConfig, bool) {
	rec, err := store.Get(ctx, s.store, store.AppliedConfigKind, store.AppliedConfigName)
	if err != nil || digest == "" || rec.Digest != digest {
		return rec, false
	}
	for _, f := range rec.Files {
		if d, err := fileDigest(f.Path); err != nil || d != f.Digest {
			return rec, false
		}
	}
	for _, name := range rec.Env {
		if os.Getenv(name) == "" {
			return rec, false
		}
	}
	for _, p := range rec.Present {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			return rec, false
		}
	}
	changes, _, err := s.store.RecordChanges(ctx, rec.Version)
	if err != nil {
		return rec, false
	}
	for _, c := range changes {
		// Deletions are not looked at: nothing deletes a file-managed
		// record (the file disables them, and the CLI refuses).
		if !c.Deleted && c.Record.Kind != store.AppliedConfigKind.Name && c.Record.Meta.ManagedBy == store.ManagedByFile {
			return rec, false
		}
	}
	return rec, true
}

// recordApplied records that the file with this digest and inputs has
// been applied, as of the current RegistryVersion.
func (s *Server) recordApplied(ctx context.Context, digest string, in config.Inputs) error {
	version, err := s.store.RegistryVersion(ctx)
	if err != nil {
		return err
	}
	rec := store.AppliedConfig{Name: store.AppliedConfigName, Digest: digest, Env: in.Env, Present: in.Present, Version: version}
	for _, f := range in.Files {
		d, err := fileDigest(f)
		if err != nil {
			return err
		}
		rec.Files = append(rec.Files, store.FileDigest{Path: f, Digest: d})
	}
	old, err := store.Get(ctx, s.store, store.AppliedConfigKind, store.AppliedConfigName)
	switch {
	case errors.Is(err, store.ErrNotFound):
		_, err = store.Create(ctx, s.store, store.AppliedConfigKind, rec)
	case err == nil:
		rec.Meta = old.Meta
		_, err = store.Update(ctx, s.store, store.AppliedConfigKind, rec)
	}
	return err
}

func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// build names the program that is running by the SHA-256 of its
// executable: a rebuilt Tillit may read the same file into other records,
// and neither a version string nor the VCS revision is set in every build.
// Empty when the executable cannot be read, and then a file is always
// applied.
var build = sync.OnceValue(func() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	d, err := fileDigest(exe)
	if err != nil {
		return ""
	}
	return d
})
