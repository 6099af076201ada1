package sqlite

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tillit-sts/tillit/internal/store"
)

// registryChanges is the number of the migration that added registry
// changes.
const registryChanges = 6

// TestUpgradeToRegistryChanges opens a database that an older build made
// (the schema before registry changes) with records in it: the upgrade keeps them, they
// count as held by every snapshot, and writes after it are changes.
func TestUpgradeToRegistryChanges(t *testing.T) {
	path := tempDB(t)
	db := rawDB(t, path)
	if name := migrations[registryChanges-1].name; !strings.Contains(name, "registry_changes") {
		t.Fatalf("migration %d is %s", registryChanges, name)
	}
	// Every migration before the one that added registry changes.
	queries := []string{"CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT"}
	for _, m := range migrations[:registryChanges-1] {
		queries = append(queries, m.sql, fmt.Sprintf("INSERT INTO schema_migrations VALUES (%d, '%s', 0)", m.version, m.name))
	}
	for _, q := range append(queries,
		`INSERT INTO registry (kind, key, doc, managed_by, version, created_at, updated_at)
			VALUES ('organisation', '994598759', '{"Name":"Old","Number":"994598759","Parent":""}', 'file', 1, 0, 0)`,
		"UPDATE registry_version SET version = 5",
	) {
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
