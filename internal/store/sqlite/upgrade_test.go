package sqlite

import (
	"testing"

	"github.com/tillit-sts/tillit/internal/store"
)

// TestUpgradeToRegistryChanges opens a database that an older build made
// (the first schema) with records in it: the upgrade keeps them, they
// count as held by every snapshot, and writes after it are changes.
func TestUpgradeToRegistryChanges(t *testing.T) {
	path := tempDB(t)
	db := rawDB(t, path)
	for _, q := range []string{
		"CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT",
		migrations[0].sql,
		"INSERT INTO schema_migrations VALUES (1, '" + migrations[0].name + "', 0)",
		`INSERT INTO registry (kind, key, doc, managed_by, version, created_at, updated_at)
			VALUES ('organisation', '994598759', '{"Name":"Old","Number":"994598759","Parent":""}', 'file', 1, 0, 0)`,
		"UPDATE registry_version SET version = 5",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s := openTest(t, path, Options{})
	checkMigrations(t, path)
	ctx := t.Context()
	cs, v, err := s.RecordChanges(ctx, -1)
	if err != nil || v != 5 || len(cs) != 1 || cs[0].Record.Key != "994598759" {
		t.Fatalf("RecordChanges(-1) after the upgrade = %+v, %d, %v", cs, v, err)
	}
	if cs, _, err := s.RecordChanges(ctx, 5); err != nil || len(cs) != 0 {
		t.Fatalf("RecordChanges(5) after the upgrade = %+v, %v; want nothing", cs, err)
	}
	o, err := store.Get(ctx, s, store.OrganizationKind, "994598759")
	if err != nil {
		t.Fatal(err)
	}
	o.Name = "New"
	if _, err := store.Update(ctx, s, store.OrganizationKind, o); err != nil {
		t.Fatal(err)
	}
	if cs, _, err := s.RecordChanges(ctx, 5); err != nil || len(cs) != 1 || cs[0].At != 6 {
		t.Errorf("RecordChanges(5) after an update = %+v, %v; want the update at 6", cs, err)
	}
}
