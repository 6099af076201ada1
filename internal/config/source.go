package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Source is a configuration file as serve reads it: its settings now, its
// registry only if the store does not hold it already. Reading and
// checking the registry of a large file (a hundred thousand clients) takes
// seconds; a restart with the file unchanged does not need it.
type Source struct {
	name      string
	data      []byte
	overrides Overrides
	// full is the whole configuration, when Settings parsed it.
	full *Config
}

// ReadSource reads the file at path for Settings and Registry.
func ReadSource(path string, o Overrides) (*Source, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return &Source{name: path, data: data, overrides: o}, nil
}

// Settings parses and checks the server settings. A small file is parsed
// whole, registry included, so that every mistake in it is found before
// anything is opened or written; a large one only in its settings, the
// registry left for Registry.
func (s *Source) Settings() (*Config, error) {
	if len(s.data) < splitMin {
		c, err := ParseWith(s.name, s.data, s.overrides)
		if err != nil {
			return nil, err
		}
		s.full = c
		return c.WithoutRegistry(), nil
	}
	c, err := parse(s.name, s.data, s.overrides, true)
	if err != nil {
		return nil, err
	}
	// The tree would keep the whole file's bytes.
	c.src.tree = nil
	return c, nil
}

// Registry parses and checks the whole file, for its registry. It is
// called once: it lets go of the file's bytes, which at a hundred
// thousand clients are tens of megabytes.
func (s *Source) Registry() (*Config, error) {
	full, data := s.full, s.data
	s.full, s.data = nil, nil
	if full != nil {
		return full, nil
	}
	return ParseWith(s.name, data, s.overrides)
}

// Drop lets go of the file's bytes when its registry will not be read.
func (s *Source) Drop() { s.full, s.data = nil, nil }

// Digest is what decides the records the file declares, as a hex SHA-256:
// the file's registry sections, what their checks depend on (the
// environment, dev mode, the folder relative paths are taken from) and
// build, which names the program that reads them (a new version may read
// the same file into other records). Server settings are left out, so
// that instances whose files differ only in them (listen, instance)
// share the digest. A file that cannot be cut into sections counts
// whole. settings are the file's, as Settings returned them. The files
// the registry names and the environment variables it needs are not in
// it: RegistryInputs lists them.
func (s *Source) Digest(build string, settings *Config) string {
	h := sha256.New()
	fmt.Fprintf(h, "tillit registry digest 2\n%q\n%q\n%t\n%q\n", build, settings.Environment, settings.Dev, dirOf(s.name))
	sections, ok := splitTop(s.data)
	if !ok {
		fmt.Fprintf(h, "whole %d\n", len(s.data))
		h.Write(s.data)
		return hex.EncodeToString(h.Sum(nil))
	}
	for _, sec := range sections {
		if registrySections[sec.key] {
			fmt.Fprintf(h, "%q %d\n", sec.key, len(sec.text))
			h.Write(sec.text)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Inputs are what a registry depends on besides the configuration file.
type Inputs struct {
	// Files are read into the registry (jwks_file, persons_file,
	// hpr_file): a change to one changes the records.
	Files []string
	// Env are environment variables the registry needs set.
	Env []string
	// Present are files the registry needs to exist, not empty, without
	// their content being part of it (secrets).
	Present []string
}

// RegistryInputs lists what the registry of c was read from or checked
// against besides the file itself, each path absolute (Parse has already
// taken relative ones from the file's folder).
func (c *Config) RegistryInputs() Inputs {
	var in Inputs
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	for _, cl := range c.Clients {
		if cl.JWKSFile != "" {
			in.Files = append(in.Files, abs(cl.JWKSFile))
		}
	}
	for _, f := range []string{c.PersonsFile, c.HPRFile} {
		if f != "" {
			in.Files = append(in.Files, abs(f))
		}
	}
	for _, p := range c.IdentityProviders {
		if p.ClientSecretEnv != "" {
			in.Env = append(in.Env, p.ClientSecretEnv)
		}
		if p.ClientSecretFile != "" {
			in.Present = append(in.Present, abs(p.ClientSecretFile))
		}
	}
	slices.Sort(in.Files)
	in.Files = slices.Compact(in.Files)
	return in
}
