package store

// AppliedConfig is the configuration file a server last applied to the
// registry. A server whose file, build and inputs have the same digests,
// finding no file-managed record written since Version, knows the store
// holds what the file declares, and starts without reading the file's
// registry again.
type AppliedConfig struct {
	// Name is the record's key, AppliedConfigName.
	Name string
	// Digest is the SHA-256 (hex) of the file's bytes, the command-line
	// overrides and the build of Tillit that applied it.
	Digest string
	// Files are the other files the registry was read from, with the
	// SHA-256 (hex) of each.
	Files []FileDigest `json:",omitempty"`
	// Env are the environment variables the registry needs set, and
	// Present the files it needs to exist (secrets, which are not
	// digested so that no hash of a secret is stored).
	Env     []string `json:",omitempty"`
	Present []string `json:",omitempty"`
	// Version is the RegistryVersion once the file was applied. Only
	// applying a file writes file-managed records, so one written later
	// means that another file (or part of one) was applied since.
	Version int64
	Meta
}

// FileDigest is a file's path and the SHA-256 (hex) of its contents.
type FileDigest struct {
	Path   string
	Digest string
}

// AppliedConfigName is the key of the one AppliedConfig record.
const AppliedConfigName = "file"

// AppliedConfigKind: the applied configuration, one record. It is not
// declared by any file and the snapshot does not hold it.
var AppliedConfigKind = &Kind[AppliedConfig]{Name: "applied configuration",
	Key:  func(r *AppliedConfig) string { return r.Name },
	Meta: func(r *AppliedConfig) *Meta { return &r.Meta },
}
