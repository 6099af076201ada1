-- Registry changes by version, so that a server updates its snapshot of the
-- registry from what changed since the version it has, not by reading every
-- record again. rev is the registry_version the record's last write made;
-- records written before this migration have 0, which every snapshot
-- already holds.
ALTER TABLE registry ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
CREATE INDEX registry_rev ON registry (rev);

-- A deleted record leaves its key and the version of its deletion, so that
-- a snapshot learns of it. Creating the record again removes it.
CREATE TABLE registry_deleted (
	kind TEXT    NOT NULL,
	key  TEXT    NOT NULL,
	rev  INTEGER NOT NULL,
	PRIMARY KEY (kind, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX registry_deleted_rev ON registry_deleted (rev);
