-- The X-Request-Id a client sent, kept apart from request_id (the
-- server's own ID for the request) so that a client cannot make a record
-- name another request. Empty in records written before.
ALTER TABLE audit_log ADD COLUMN client_request_id TEXT NOT NULL DEFAULT '';
