-- The user set the primary read-only (manual failover mode only): the monitor
-- leaves it so instead of making it writable again.
ALTER TABLE clusters ADD COLUMN primary_read_only INTEGER NOT NULL DEFAULT 0;
