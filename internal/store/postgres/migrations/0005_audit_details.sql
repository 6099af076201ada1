-- What a record of its own kind says beyond the other columns, as JSON: the
-- refusals aggregate's counts. Empty for a decision about one request.
ALTER TABLE audit_log ADD COLUMN details text NOT NULL DEFAULT '';
