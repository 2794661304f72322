-- The bootstrap tenant is the operator's: only its admin tokens create tenants.
ALTER TABLE tenants ADD COLUMN operator INTEGER NOT NULL DEFAULT 0;
UPDATE tenants SET operator = 1 WHERE seq = (SELECT MIN(seq) FROM tenants);
