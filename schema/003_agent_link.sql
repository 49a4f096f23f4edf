-- 003: the agent link.  A host is identified by its agent's static public
-- key (the per-boot key its overlay carried); its single-use boot token is
-- kept only as a hash.  hvd's own keys live in `keys`, secrets sealed with
-- the master key file in state-dir.

ALTER TABLE hosts ADD COLUMN agent_pubkey TEXT;           -- 64 hex digits
ALTER TABLE hosts ADD COLUMN boot_token_hash BLOB;        -- BLAKE2b-256
ALTER TABLE hosts ADD COLUMN boot_token_used_at INTEGER;  -- NULL: unused
ALTER TABLE hosts ADD COLUMN boot_id TEXT;                -- as the agent said
ALTER TABLE hosts ADD COLUMN last_seen_at INTEGER;
CREATE UNIQUE INDEX hosts_by_agent_pubkey ON hosts(agent_pubkey);

CREATE TABLE keys (
	name          TEXT PRIMARY KEY,             -- e.g. 'agent-link'
	public        BLOB NOT NULL,
	sealed_secret BLOB NOT NULL,                -- secretbox(master key)
	created_at    INTEGER NOT NULL
) WITHOUT ROWID;
