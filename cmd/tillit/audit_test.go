package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/config"
	"github.com/tillit-sts/tillit/internal/demo"
	"github.com/tillit-sts/tillit/internal/keys"
	"github.com/tillit-sts/tillit/internal/pgtest"
	"github.com/tillit-sts/tillit/internal/store"
	"github.com/tillit-sts/tillit/internal/store/postgres"
	"github.com/tillit-sts/tillit/internal/store/sqlite"
)

// auditStore opens the SQLite store of a dev data folder as the server
// does, able to append audit records.
func auditStore(t *testing.T, dir, db string) *sqlite.Store {
	t.Helper()
	kek, err := keys.ReadKEKFile(filepath.Join(dir, demo.KEKFile))
	if err != nil {
		t.Fatal(err)
	}
	key, err := audit.DeriveKey(kek)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), db, sqlite.Options{AuditKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// auditDir makes a dev data folder whose store holds n audit records of
// instance sts-1, written as the server writes them.
func auditDir(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := demo.Prepare(dir, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	st := auditStore(t, dir, filepath.Join(dir, "tillit.db"))
	defer st.Close()
	for i := 0; i < n; i++ {
		rec := store.AuditRecord{Instance: "sts-1", Time: time.Now(), RequestID: "r", ClientRequestID: "proxy-" + strconv.Itoa(i),
			Endpoint: "token", GrantType: "client_credentials", ClientID: []string{"demo-deft", "demo-sfm"}[i%2], Audience: "nhn:deft",
			Scopes: []string{"nhn:deft/api"}, TokenID: "T", Outcome: audit.OutcomeIssued}
		if i == n-1 {
			rec.Outcome, rec.Error, rec.TokenID = audit.OutcomeRefused, "invalid_scope", ""
		}
		if _, err := st.CommitDecision(context.Background(), time.Now(), store.Decision{Audit: rec}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func tamper(t *testing.T, dir, query string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "tillit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query); err != nil {
		t.Fatal(err)
	}
}

// forgeInstance adds a record under an instance that never wrote one,
// with a MAC made up without the key.
const forgeInstance = `INSERT INTO audit_log (instance, seq, time, request_id, endpoint, grant_type, client_id,
	orgnr_parent, orgnr_child, orgnr_supplier, subject, audience, scopes, token_id, outcome, error, prev, mac)
	SELECT 'ghost', 1, time, request_id, endpoint, grant_type, 'forged-client', orgnr_parent, orgnr_child,
	orgnr_supplier, subject, audience, scopes, token_id, outcome, error, X'', X'0102030405'
	FROM audit_log WHERE seq = 1`

// forgeInstancePostgres is forgeInstance in PostgreSQL's words.
var forgeInstancePostgres = strings.NewReplacer("X''", "''::bytea", "X'0102030405'", "'\\x0102030405'::bytea").Replace(forgeInstance)

func TestAuditVerify(t *testing.T) {
	tests := []struct {
		name     string
		tamper   string
		wantCode int
		want     string
	}{
		{"intact", "", 0, "sts-1: 5 records, intact"},
		{"a record changed", "UPDATE audit_log SET client_id = 'someone-else' WHERE seq = 2", 1, "#2: was changed"},
		{"a record removed", "DELETE FROM audit_log WHERE seq = 3", 1, "records 3 to 3 are missing"},
		{"truncated at the end", "DELETE FROM audit_log WHERE seq = 5", 1, "records at the end were removed"},
		{"the outcome of a refusal rewritten", "UPDATE audit_log SET outcome = 'issued', error = '' WHERE seq = 5", 1, "#5: was changed"},
		{"every head removed", "DELETE FROM audit_head", 1, "sts-1 #5: the chain has no head"},
		{"a record under a made-up instance", forgeInstance, 1, "ghost #1: was changed"},
		{"the records of an instance removed, its head kept", "DELETE FROM audit_log", 1, "records at the end were removed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := auditDir(t, 5)
			if tt.tamper != "" {
				tamper(t, dir, tt.tamper)
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"audit", "verify", "--dev", "--data-dir", dir}, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stdout.String(), tt.want) {
				t.Fatalf("exit %d, want %d; output:\n%s%s", code, tt.wantCode, stdout.String(), stderr.String())
			}
		})
	}
}

// Two forks of the same chain, the same instance and key, made by copying
// the database and appending to each copy; then the newest record and the
// head of one fork are put into the other. Every MAC and sequence number
// is valid; only the link to the record before is not.
func TestAuditVerifySplicedForks(t *testing.T) {
	dir := auditDir(t, 3)
	db := filepath.Join(dir, "tillit.db")
	fork := filepath.Join(t.TempDir(), "fork.db")
	tamper(t, dir, "VACUUM INTO '"+fork+"'")
	for i, path := range []string{db, fork} {
		st := auditStore(t, dir, path)
		for j := range 2 {
			rec := store.AuditRecord{Instance: "sts-1", Time: time.Now(), RequestID: "r", Endpoint: "token",
				GrantType: "client_credentials", ClientID: fmt.Sprintf("fork-%d", i), TokenID: strconv.Itoa(j),
				Outcome: audit.OutcomeIssued}
			if _, err := st.CommitDecision(context.Background(), time.Now(), store.Decision{Audit: rec}); err != nil {
				t.Fatal(err)
			}
		}
		st.Close()
	}
	tamper(t, dir, "ATTACH '"+fork+"' AS fork; "+
		"DELETE FROM audit_log WHERE seq = 5; "+
		"INSERT INTO audit_log SELECT * FROM fork.audit_log WHERE seq = 5; "+
		"UPDATE audit_head SET seq = 5, mac = (SELECT mac FROM fork.audit_head)")
	code, stdout, stderr := runCLI(t, "audit", "verify", "--dev", "--data-dir", dir)
	if code != 1 || !strings.Contains(stdout, "sts-1 #5: does not follow the record before it") || strings.Count(stdout, "\n  ") != 1 ||
		!strings.Contains(stdout, ", 1 problem:") {
		t.Fatalf("exit %d, want 1 and one problem at #5; output:\n%s%s", code, stdout, stderr)
	}
}

// A client_id and a request id that are not UTF-8, as a client can send
// them, then other bytes in their place in the database.
func TestAuditVerifyInvalidUTF8(t *testing.T) {
	tests := []struct {
		name   string
		tamper string
	}{
		{"client_id", "UPDATE audit_log SET client_id = CAST(X'632DFE' AS TEXT) WHERE seq = 2"},
		{"request_id", "UPDATE audit_log SET request_id = CAST(X'722DC0' AS TEXT) WHERE seq = 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := auditDir(t, 1)
			st := auditStore(t, dir, filepath.Join(dir, "tillit.db"))
			rec := store.AuditRecord{Instance: "sts-1", Time: time.Now(), RequestID: "r-\xff", Endpoint: "token",
				GrantType: "client_credentials", ClientID: "c-\xff", Outcome: audit.OutcomeRefused, Error: "invalid_client"}
			if _, err := st.CommitDecision(context.Background(), time.Now(), store.Decision{Audit: rec}); err != nil {
				t.Fatal(err)
			}
			st.Close()
			if code, stdout, stderr := runCLI(t, "audit", "verify", "--dev", "--data-dir", dir); code != 0 {
				t.Fatalf("as written: exit %d\n%s%s", code, stdout, stderr)
			}
			tamper(t, dir, tt.tamper)
			code, stdout, stderr := runCLI(t, "audit", "verify", "--dev", "--data-dir", dir)
			if code != 1 || !strings.Contains(stdout, "sts-1 #2: was changed") {
				t.Fatalf("exit %d, want 1 and #2 changed; output:\n%s%s", code, stdout, stderr)
			}
		})
	}
}

// A chain whose head was removed fails verify until it is resealed; then
// verify passes and reports the break, and no record was removed.
func TestAuditReseal(t *testing.T) {
	dir := auditDir(t, 5)
	tamper(t, dir, "DELETE FROM audit_head")
	if code, stdout, _ := runCLI(t, "audit", "verify", "--dev", "--data-dir", dir); code != 1 {
		t.Fatalf("verify of a chain without a head: exit %d\n%s", code, stdout)
	}
	if code, _, stderr := runCLI(t, "audit", "reseal", "--dev", "--data-dir", dir); code != 2 {
		t.Fatalf("reseal without --instance: exit %d, want 2\n%s", code, stderr)
	}
	if code, _, stderr := runCLI(t, "audit", "reseal", "--dev", "--data-dir", dir, "--instance", "nobody"); code != 1 || !strings.Contains(stderr, "no records") {
		t.Fatalf("reseal of an unknown instance: exit %d, want 1\n%s", code, stderr)
	}
	code, stdout, stderr := runCLI(t, "audit", "reseal", "--dev", "--data-dir", dir, "--instance", "sts-1", "--reason", "head lost in a restore")
	if code != 0 || !strings.Contains(stdout, "sts-1: resealed at #6 after #5") {
		t.Fatalf("reseal: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, "audit", "verify", "--dev", "--data-dir", dir)
	if code != 0 || !strings.Contains(stdout, "sts-1: 6 records, intact, 1 resealed break") ||
		!strings.Contains(stdout, "#6: resealed after #5: head lost in a restore") {
		t.Fatalf("verify after the reseal: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = runCLI(t, "audit", "reseal", "--dev", "--data-dir", dir, "--instance", "sts-1")
	if code != 0 || !strings.Contains(stdout, "intact: nothing to reseal") {
		t.Fatalf("reseal of an intact chain: exit %d\n%s", code, stdout)
	}
}

// A whole-database rollback is caught against a head logged elsewhere.
func TestAuditVerifyAgainstLoggedHead(t *testing.T) {
	dir := auditDir(t, 5)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"audit", "verify", "--dev", "--data-dir", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	head := strings.TrimSpace(stdout.String()[strings.Index(stdout.String(), "head ")+5:])
	// Roll back the last two records and the head together.
	tamper(t, dir, "DELETE FROM audit_log WHERE seq > 3")
	tamper(t, dir, "UPDATE audit_head SET seq = 3, mac = (SELECT mac FROM audit_log WHERE seq = 3)")
	stdout.Reset()
	if code := run(context.Background(), []string{"audit", "verify", "--dev", "--data-dir", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("a consistent rollback looks intact to the store alone, exit %d:\n%s", code, stdout.String())
	}
	stdout.Reset()
	code := run(context.Background(), []string{"audit", "verify", "--dev", "--data-dir", dir, "--head", head}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stdout.String(), "not in the log") {
		t.Fatalf("exit %d:\n%s%s", code, stdout.String(), stderr.String())
	}
}

func TestAuditQueryAndTail(t *testing.T) {
	dir := auditDir(t, 5)
	lines := func(args ...string) []map[string]any {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append(args, "--dev", "--data-dir", dir), &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
		}
		var out []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("not a JSON line: %q", l)
			}
			out = append(out, m)
		}
		return out
	}
	if got := lines("audit", "query", "--client", "demo-sfm"); len(got) != 2 || got[0]["client_id"] != "demo-sfm" || got[0]["client_request_id"] != "proxy-1" {
		t.Fatalf("query --client: %v", got)
	}
	if got := lines("audit", "query", "--outcome", "refused"); len(got) != 1 || got[0]["error"] != "invalid_scope" || got[0]["seq"] != float64(5) {
		t.Fatalf("query --outcome: %v", got)
	}
	if got := lines("audit", "tail", "-n", "2"); len(got) != 2 || got[1]["seq"] != float64(5) {
		t.Fatalf("tail: %v", got)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"audit", "query", "--dev", "--data-dir", dir, "--outcome", "maybe"}, &stdout, &stderr); code != 1 {
		t.Fatalf("bad --outcome: exit %d", code)
	}
}

// TestAuditVerifyPostgres runs the audit commands on PostgreSQL: records
// written as a server writes them, then changed, removed or cut short
// with SQL.
func TestAuditVerifyPostgres(t *testing.T) {
	tests := []struct {
		name     string
		tamper   string
		wantCode int
		want     string
	}{
		{"intact", "", 0, "sts-1: 3 records, intact"},
		{"a record changed", "UPDATE audit_log SET client_id = 'someone-else' WHERE seq = 2", 1, "#2: was changed"},
		{"a record removed", "DELETE FROM audit_log WHERE seq = 2", 1, "records 2 to 2 are missing"},
		{"truncated at the end", "DELETE FROM audit_log WHERE seq = 3", 1, "records at the end were removed"},
		{"every head removed", "DELETE FROM audit_head", 1, "sts-1 #3: the chain has no head"},
		{"a record under a made-up instance", forgeInstancePostgres, 1, "ghost #1: was changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := pgtest.URL(t)
			kek := make([]byte, 32)
			rand.Read(kek)
			t.Setenv(config.EnvKeyEncryptionKey, base64.StdEncoding.EncodeToString(kek))
			key, err := audit.DeriveKey(kek)
			if err != nil {
				t.Fatal(err)
			}
			st, err := postgres.Open(context.Background(), url, postgres.Options{AuditKey: key})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				rec := store.AuditRecord{Instance: "sts-1", Time: time.Now(), RequestID: "r", Endpoint: "token",
					GrantType: "client_credentials", ClientID: "c", Audience: "nhn:deft", TokenID: strconv.Itoa(i),
					Outcome: audit.OutcomeIssued}
				if _, err := st.CommitDecision(context.Background(), time.Now(), store.Decision{Audit: rec}); err != nil {
					t.Fatal(err)
				}
			}
			st.Close()
			if tt.tamper != "" {
				db, err := pgx.Connect(context.Background(), url)
				if err != nil {
					t.Fatal(err)
				}
				_, err = db.Exec(context.Background(), tt.tamper)
				db.Close(context.Background())
				if err != nil {
					t.Fatal(err)
				}
			}
			code, stdout, stderr := runCLI(t, "audit", "verify", "--config", writeConfig(t, url))
			if code != tt.wantCode || !strings.Contains(stdout, tt.want) {
				t.Fatalf("exit %d, want %d; output:\n%s%s", code, tt.wantCode, stdout, stderr)
			}
		})
	}
}
