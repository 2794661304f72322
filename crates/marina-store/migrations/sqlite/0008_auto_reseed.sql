-- Whether a replica that diverged is rebuilt from the primary on its own.
ALTER TABLE clusters ADD COLUMN auto_reseed INTEGER NOT NULL DEFAULT 0;
