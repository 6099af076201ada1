-- Times are timestamptz: microseconds, the precision the store promises
-- (storetest.Precision). Keys that are listed in order are COLLATE "C", so
-- that ORDER BY is byte order (Go's string order) whatever the database's
-- locale.

-- Registry records of every kind. doc is the record as JSON without its
-- store.Meta, so a new record field needs no migration; the Meta fields are
-- columns because the store itself reads and writes them. doc is text, not
-- jsonb: jsonb refuses the escape \u0000 that a Go string may produce and
-- would reorder the object's keys, and nothing queries inside a document.
CREATE TABLE registry (
	kind       text COLLATE "C" NOT NULL,
	key        text COLLATE "C" NOT NULL,
	doc        text        NOT NULL,
	managed_by text        NOT NULL,
	version    bigint      NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	PRIMARY KEY (kind, key)
);

-- One row, bumped in the same transaction as every registry write, so that
-- servers know when to reload their snapshot of the registry. A sequence
-- would not do: nextval is not rolled back and is visible before the
-- record it counts is committed.
CREATE TABLE registry_version (
	id      integer PRIMARY KEY CHECK (id = 1),
	version bigint  NOT NULL
);
INSERT INTO registry_version (id, version) VALUES (1, 0);

-- Spent single-use values (assertion and DPoP proof jtis). The key is the
-- SHA-256 of the caller's key: 32 bytes whatever the caller's key is, so
-- that the unique index stays small and no key is too long for it or
-- holds a byte that text refuses. The unique index is the replay check:
-- INSERT ... ON CONFLICT decides between concurrent callers, on any number
-- of instances.
CREATE TABLE jti (
	key_hash bytea       PRIMARY KEY,
	expires  timestamptz NOT NULL
);
CREATE INDEX jti_expires ON jti (expires);

-- tillit_jti_spent aborts the statement that consumes jtis when one of its
-- keys is spent, so that the keys it has already inserted are rolled back
-- with it: all-or-nothing in one statement, one round trip. The position of
-- the spent key in the caller's list is in DETAIL. SQLSTATE TL001 is
-- Tillit's own; the backend maps it to store.ErrReplay.
CREATE FUNCTION tillit_jti_spent(pos bigint) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	RAISE EXCEPTION 'jti already used' USING ERRCODE = 'TL001', DETAIL = pos::text;
END
$$;

-- Signing keys and other service secrets. The unique (purpose, generation)
-- is how instances racing to rotate agree on one key.
CREATE TABLE service_key (
	id          text        PRIMARY KEY,
	purpose     text        NOT NULL,
	generation  bigint      NOT NULL,
	algorithm   text        NOT NULL,
	public      bytea       NOT NULL,
	sealed      bytea       NOT NULL,
	created_at  timestamptz NOT NULL,
	active_from timestamptz NOT NULL,
	UNIQUE (purpose, generation)
);

-- Refresh tokens by the hash of their value. A family is the chain of tokens
-- one login produced by rotation; reuse of a rotated token revokes it all.
-- used_at is NULL until the token is rotated.
CREATE TABLE refresh_token (
	id         text        PRIMARY KEY,
	family_id  text        NOT NULL,
	client_id  text        NOT NULL,
	jkt        text        NOT NULL,
	grant_doc  bytea       NOT NULL,
	issued_at  timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	status     text        NOT NULL,
	used_at    timestamptz
);
CREATE INDEX refresh_token_family ON refresh_token (family_id);
CREATE INDEX refresh_token_expires ON refresh_token (expires_at);
