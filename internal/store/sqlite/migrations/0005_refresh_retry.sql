-- The retry grace of a rotated refresh token (store.RefreshRetryGrace):
-- successor is the token its rotation created, retried says that it has
-- been rotated a second time, which it may be once.
ALTER TABLE refresh_token ADD COLUMN successor TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_token ADD COLUMN retried INTEGER NOT NULL DEFAULT 0;
