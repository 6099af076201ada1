package postgres

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tillit-sts/tillit/internal/pgtest"
	"github.com/tillit-sts/tillit/internal/store"
)

// registryChanges is the number of the migration that added registry
// changes.
const registryChanges = 7

// TestUpgradeToRegistryChanges opens a database that an older build made
// (the schema before registry changes) with records in it: the upgrade
// keeps them, they count as held by every snapshot, and writes after it
// are changes.
func TestUpgradeToRegistryChanges(t *testing.T) {
	url := pgtest.URL(t)
	conn := connect(t, url)
	ctx := t.Context()
	queries := []string{`CREATE TABLE schema_migrations (
		version    bigint      PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`}
	if name := migrations[registryChanges-1].name; !strings.Contains(name, "registry_changes") {
		t.Fatalf("migration %d is %s", registryChanges, name)
	}
	// Every migration before the one that added registry changes.
	for _, m := range migrations[:registryChanges-1] {
		queries = append(queries, m.sql, fmt.Sprintf("INSERT INTO schema_migrations (version, name) VALUES (%d, '%s')", m.version, m.name))
	}
	queries = append(queries,
		`INSERT INTO registry (kind, key, doc, managed_by, version, created_at, updated_at)
			VALUES ('organisation', '994598759', '{"Name":"Old","Number":"994598759","Parent":""}', 'file', 1, now(), now())`,
		"UPDATE registry_version SET version = 5")
	for _, q := range queries {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}

	s := openTest(t, url, Options{})
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
