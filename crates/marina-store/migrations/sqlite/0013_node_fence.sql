-- A node cut off at the data path (an old primary during and after a
-- failover, until it follows the new primary): the endpoint plan resets
-- every TCP packet to its port and drops every packet from it.
ALTER TABLE nodes ADD COLUMN fenced INTEGER NOT NULL DEFAULT 0;
