package store

import "fmt"

// RecordOp says what a RecordWrite does.
type RecordOp int

const (
	// OpCreate creates a record, as CreateRecord does.
	OpCreate RecordOp = iota + 1
	// OpUpdate replaces a record at the Version it carries, as UpdateRecord
	// does.
	OpUpdate
	// OpDelete deletes a record by Kind and Key, as DeleteRecord does.
	OpDelete
)

func (op RecordOp) String() string {
	switch op {
	case OpCreate:
		return "create"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	}
	return fmt.Sprintf("RecordOp(%d)", int(op))
}

// RecordWrite is one write of a WriteRecords batch.
type RecordWrite struct {
	Op RecordOp
	// Record is what to write; OpDelete reads only its Kind and Key.
	Record Record
}

// MaxWriteBatch bounds a WriteRecords batch, so that one batch does not
// hold the registry's write lock, and keep other writers waiting, for long.
const MaxWriteBatch = 1000

// BatchError is why WriteRecords wrote nothing: write Index failed with
// Err (ErrAlreadyExists, ErrNotFound, ErrConflict or another error), which
// it wraps.
type BatchError struct {
	Index int
	Err   error
}

func (e *BatchError) Error() string { return fmt.Sprintf("write %d of the batch: %v", e.Index, e.Err) }
func (e *BatchError) Unwrap() error { return e.Err }

// RecordChange is a registry record as it was last written, or its
// deletion, from RecordChanges.
type RecordChange struct {
	// Record is the record as stored; when Deleted only Kind and Key are
	// set.
	Record  Record
	Deleted bool
	// At is the RegistryVersion the write made.
	At int64
}
