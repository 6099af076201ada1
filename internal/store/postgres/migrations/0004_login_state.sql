-- Login state: short-lived records of the front channel, each keyed by the
-- hash of a bearer secret (store.SecretID) and swept when expired. NULL
-- consumed_at or redeemed_at means not yet.

-- Pushed authorization requests (RFC 9126), by request_uri hash.
CREATE TABLE pushed_request (
	id          text        PRIMARY KEY,
	client_id   text        NOT NULL,
	jkt         text        NOT NULL,
	params      bytea       NOT NULL,
	created_at  timestamptz NOT NULL,
	expires_at  timestamptz NOT NULL,
	consumed_at timestamptz
);
CREATE INDEX pushed_request_expires ON pushed_request (expires_at);

-- Authorization codes, by code hash. doc holds the rest of the code
-- (store.CodeDocument); redemption what its first redemption issued.
CREATE TABLE authorization_code (
	id          text        PRIMARY KEY,
	client_id   text        NOT NULL,
	doc         text        NOT NULL,
	created_at  timestamptz NOT NULL,
	expires_at  timestamptz NOT NULL,
	redeemed_at timestamptz,
	redemption  text        NOT NULL DEFAULT ''
);
CREATE INDEX authorization_code_expires ON authorization_code (expires_at);

-- Browser sessions, by cookie hash. login is the store.Login as JSON.
CREATE TABLE login_session (
	id         text        PRIMARY KEY,
	login      text        NOT NULL,
	clients    text[]      NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE INDEX login_session_expires ON login_session (expires_at);

-- Logins under way at upstream identity providers, by state hash.
CREATE TABLE upstream_login (
	id            text        PRIMARY KEY,
	idp           text        NOT NULL,
	nonce         text        NOT NULL,
	code_verifier text        NOT NULL,
	return_to     bytea       NOT NULL,
	created_at    timestamptz NOT NULL,
	expires_at    timestamptz NOT NULL,
	consumed_at   timestamptz
);
CREATE INDEX upstream_login_expires ON upstream_login (expires_at);
