-- Host agents serve their API (issue 23): the port the control plane calls
-- each agent on, and when the agent last answered a heartbeat (NULL: never).
ALTER TABLE hosts ADD COLUMN agent_port INTEGER;
ALTER TABLE hosts ADD COLUMN seen_at TEXT;
