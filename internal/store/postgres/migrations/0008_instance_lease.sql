-- Which server serves an instance name, so that a second server configured
-- with the same name refuses to start instead of forking the instance's
-- audit chain. A row is a lease until expires; its holder renews it while
-- it serves and deletes it when it stops.
CREATE TABLE instance_lease (
	instance text COLLATE "C" PRIMARY KEY,
	holder   text        NOT NULL,
	since    timestamptz NOT NULL,
	expires  timestamptz NOT NULL
);
