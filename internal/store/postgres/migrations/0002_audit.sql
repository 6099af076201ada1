-- The audit log: one chain per server instance (see internal/audit). Rows
-- are only ever appended; audit_head holds each chain's last record and is
-- updated in the same transaction as every append, so that a log cut short
-- at the end is noticed. The instance is COLLATE "C" so that records and
-- heads list in byte order, as the SQLite backend lists them.
CREATE TABLE audit_log (
	instance       text COLLATE "C" NOT NULL,
	seq            bigint      NOT NULL,
	time           timestamptz NOT NULL,
	request_id     text        NOT NULL,
	endpoint       text        NOT NULL,
	grant_type     text        NOT NULL,
	client_id      text        NOT NULL,
	orgnr_parent   text        NOT NULL,
	orgnr_child    text        NOT NULL,
	orgnr_supplier text        NOT NULL,
	subject        text        NOT NULL,
	audience       text        NOT NULL,
	scopes         text[]      NOT NULL,
	token_id       text        NOT NULL,
	outcome        text        NOT NULL,
	error          text        NOT NULL,
	prev           bytea       NOT NULL,
	mac            bytea       NOT NULL,
	PRIMARY KEY (instance, seq)
);
CREATE INDEX audit_log_time ON audit_log (time);

CREATE TABLE audit_head (
	instance text COLLATE "C" PRIMARY KEY,
	seq      bigint NOT NULL,
	mac      bytea  NOT NULL
);

-- tillit_refuse aborts the statement that commits a decision, so that
-- everything it wrote is rolled back with it: one statement, all or
-- nothing. code is Tillit's own SQLSTATE: TL001 a spent jti (its position
-- in DETAIL, as tillit_jti_spent), TL002 an audit chain head that is not
-- the one the caller sealed the record on, TL003 a refresh token that
-- changed after it was checked. It returns text only so that it can stand
-- in a CASE; it never returns.
CREATE FUNCTION tillit_refuse(code text, detail text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	RAISE EXCEPTION 'tillit: decision refused' USING ERRCODE = code, DETAIL = detail;
END
$$;
