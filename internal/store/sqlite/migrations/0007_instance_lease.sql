-- Which server serves an instance name, so that a second server configured
-- with the same name refuses to start instead of forking the instance's
-- audit chain. A row is a lease until expires (unix microseconds); its
-- holder renews it while it serves and deletes it when it stops.
CREATE TABLE instance_lease (
	instance TEXT    PRIMARY KEY,
	holder   TEXT    NOT NULL,
	since    INTEGER NOT NULL,
	expires  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
