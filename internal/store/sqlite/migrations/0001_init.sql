-- Times are INTEGER: unix microseconds for what the store hands back
-- (store.Precision), unix nanoseconds for jti expiry, which is only compared.
-- Tables are STRICT so that a value of the wrong type is an error, not a
-- silent conversion.

-- Registry records of every kind. doc is the record as JSON without its
-- store.Meta, so a new record field needs no migration; the Meta fields are
-- columns because the store itself reads and writes them.
CREATE TABLE registry (
	kind       TEXT    NOT NULL,
	key        TEXT    NOT NULL,
	doc        TEXT    NOT NULL,
	managed_by TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (kind, key)
) STRICT, WITHOUT ROWID;

-- One row, bumped in the same transaction as every registry write, so that
-- servers know when to reload their snapshot of the registry.
CREATE TABLE registry_version (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL
) STRICT;
INSERT INTO registry_version (id, version) VALUES (1, 0);

-- Spent single-use values (assertion and DPoP proof jtis), as an
-- append-only log. The writer keeps the unexpired keys in memory and checks
-- them there; the table is what makes them durable and shared. Appending in
-- seq order touches the last page or two per commit, where a unique index on
-- the random keys dirtied a page per key. AUTOINCREMENT keeps seq rising even
-- after the newest rows are deleted, so "rows after the last seq I read"
-- tells a Store what another process added.
CREATE TABLE jti_log (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	key     TEXT    NOT NULL,
	expires INTEGER NOT NULL
) STRICT;
CREATE INDEX jti_log_expires ON jti_log (expires);

-- Signing keys and other service secrets. The unique (purpose, generation)
-- is how instances racing to rotate agree on one key.
CREATE TABLE service_key (
	id          TEXT    PRIMARY KEY,
	purpose     TEXT    NOT NULL,
	generation  INTEGER NOT NULL,
	algorithm   TEXT    NOT NULL,
	public      BLOB    NOT NULL,
	sealed      BLOB    NOT NULL,
	created_at  INTEGER NOT NULL,
	active_from INTEGER NOT NULL,
	UNIQUE (purpose, generation)
) STRICT;

-- Refresh tokens by the hash of their value. A family is the chain of tokens
-- one login produced by rotation; reuse of a rotated token revokes it all.
CREATE TABLE refresh_token (
	id         TEXT    PRIMARY KEY,
	family_id  TEXT    NOT NULL,
	client_id  TEXT    NOT NULL,
	jkt        TEXT    NOT NULL,
	grant_doc  BLOB    NOT NULL,
	issued_at  INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	status     TEXT    NOT NULL,
	used_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX refresh_token_family ON refresh_token (family_id);
CREATE INDEX refresh_token_expires ON refresh_token (expires_at);

-- The audit log: one chain per server instance (see internal/audit). Rows
-- are only ever appended; audit_head holds each chain's last record, written
-- in the same transaction as every append, so that a log cut short at the
-- end is noticed.
CREATE TABLE audit_log (
	instance       TEXT    NOT NULL,
	seq            INTEGER NOT NULL,
	time           INTEGER NOT NULL,
	request_id     TEXT    NOT NULL,
	endpoint       TEXT    NOT NULL,
	grant_type     TEXT    NOT NULL,
	client_id      TEXT    NOT NULL,
	orgnr_parent   TEXT    NOT NULL,
	orgnr_child    TEXT    NOT NULL,
	orgnr_supplier TEXT    NOT NULL,
	subject        TEXT    NOT NULL,
	audience       TEXT    NOT NULL,
	scopes         TEXT    NOT NULL,
	token_id       TEXT    NOT NULL,
	outcome        TEXT    NOT NULL,
	error          TEXT    NOT NULL,
	prev           BLOB    NOT NULL,
	mac            BLOB    NOT NULL,
	PRIMARY KEY (instance, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX audit_log_time ON audit_log (time);

CREATE TABLE audit_head (
	instance TEXT    PRIMARY KEY,
	seq      INTEGER NOT NULL,
	mac      BLOB    NOT NULL
) STRICT;
