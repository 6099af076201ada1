-- Login state: short-lived records of the front channel, each keyed by the
-- hash of a bearer secret (store.SecretID) and swept when expired. Times
-- are unix microseconds; 0 means not yet (consumed_at, redeemed_at).

-- Pushed authorization requests (RFC 9126), by request_uri hash.
CREATE TABLE pushed_request (
	id          TEXT    PRIMARY KEY,
	client_id   TEXT    NOT NULL,
	jkt         TEXT    NOT NULL,
	params      BLOB    NOT NULL,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	consumed_at INTEGER NOT NULL
) STRICT;
CREATE INDEX pushed_request_expires ON pushed_request (expires_at);

-- Authorization codes, by code hash. doc holds the rest of the code
-- (store.CodeDocument); redemption what its first redemption issued.
CREATE TABLE authorization_code (
	id          TEXT    PRIMARY KEY,
	client_id   TEXT    NOT NULL,
	doc         TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	redeemed_at INTEGER NOT NULL,
	redemption  TEXT    NOT NULL
) STRICT;
CREATE INDEX authorization_code_expires ON authorization_code (expires_at);

-- Browser sessions, by cookie hash. login is the store.Login as JSON,
-- clients a JSON array of client IDs.
CREATE TABLE login_session (
	id         TEXT    PRIMARY KEY,
	login      TEXT    NOT NULL,
	clients    TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX login_session_expires ON login_session (expires_at);

-- Logins under way at upstream identity providers, by state hash.
CREATE TABLE upstream_login (
	id            TEXT    PRIMARY KEY,
	idp           TEXT    NOT NULL,
	nonce         TEXT    NOT NULL,
	code_verifier TEXT    NOT NULL,
	return_to     BLOB    NOT NULL,
	created_at    INTEGER NOT NULL,
	expires_at    INTEGER NOT NULL,
	consumed_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX upstream_login_expires ON upstream_login (expires_at);
