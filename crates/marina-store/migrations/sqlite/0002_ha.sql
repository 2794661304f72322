-- High availability: the failover mode of a cluster, a node's reason for its
-- status, and the GTID limit an old primary must be within to rejoin.
ALTER TABLE clusters ADD COLUMN failover_mode TEXT NOT NULL DEFAULT 'automatic';
ALTER TABLE nodes ADD COLUMN status_reason TEXT;
ALTER TABLE nodes ADD COLUMN rejoin_gtid TEXT;
CREATE INDEX operations_cluster_type ON operations(cluster_id, op_type, created_at);
-- Set while a switchover holds writes: the writer endpoint leads nowhere.
ALTER TABLE clusters ADD COLUMN writer_paused INTEGER NOT NULL DEFAULT 0;
