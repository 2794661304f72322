-- Scheduled backups: the policy, the last slot taken, and what took a backup.
ALTER TABLE clusters ADD COLUMN backup_policy TEXT;
ALTER TABLE clusters ADD COLUMN backup_slot TEXT;
ALTER TABLE backups ADD COLUMN trigger TEXT NOT NULL DEFAULT 'manual';
