-- 005: host identity (issue 4).  A host is found by its fingerprint, a hash
-- of its SMBIOS UUID and boot MAC (README, "Host identity").  Each boot has
-- at most one overlay with credentials: the stage-2 request opens the boot
-- (boot_ip, boot_at), the overlay fetch closes it (ovl_served_at).
-- The operator's per-host configuration lives beside the identity, so that
-- `host replace` moves it to new hardware untouched.

ALTER TABLE hosts ADD COLUMN macs TEXT NOT NULL DEFAULT '[]';      -- JSON, from facts
ALTER TABLE hosts ADD COLUMN mounts TEXT NOT NULL DEFAULT '[]';    -- JSON [{source,path,fstype,options}]
ALTER TABLE hosts ADD COLUMN ssh_keys TEXT NOT NULL DEFAULT '';    -- authorized_keys
ALTER TABLE hosts ADD COLUMN boot_ip TEXT;                          -- who asked for stage 2 (or the overlay)
ALTER TABLE hosts ADD COLUMN boot_at INTEGER;                       -- when
ALTER TABLE hosts ADD COLUMN ovl_served_at INTEGER;                 -- NULL: this boot's overlay not served yet
CREATE INDEX hosts_by_boot_mac ON hosts(boot_mac);

-- Fingerprints of hardware that was replaced or retired: such a machine
-- booting again is refused instead of being discovered afresh.
CREATE TABLE retired_fingerprints (
	fingerprint   TEXT PRIMARY KEY,
	host_name     TEXT NOT NULL DEFAULT '',   -- the identity it last held
	boot_mac      TEXT NOT NULL DEFAULT '',
	smbios_uuid   TEXT NOT NULL DEFAULT '',
	retired_at    INTEGER NOT NULL,
	cause         TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
