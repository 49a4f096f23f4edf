-- 006: VMs (issue 8).  The image store: kernels, initramfs and disk images
-- that VM specs name, kept in state-dir/images/<sha256> and fetched by
-- agents over HTTP (checked by SHA-256).  A VM row is its desired state;
-- the columns below are what its host last reported.

CREATE TABLE images (
	name          TEXT PRIMARY KEY,
	kind          TEXT NOT NULL CHECK (kind IN ('kernel', 'initramfs', 'disk')),
	sha256        TEXT NOT NULL CHECK (length(sha256) = 64),
	size          INTEGER NOT NULL,
	created_at    INTEGER NOT NULL
) WITHOUT ROWID;

ALTER TABLE vms ADD COLUMN domid INTEGER;                           -- as the agent reported
ALTER TABLE vms ADD COLUMN reason TEXT NOT NULL DEFAULT '';         -- why it stopped or failed
ALTER TABLE vms ADD COLUMN anti_affinity TEXT NOT NULL DEFAULT '';  -- group name, '' = none
CREATE INDEX vms_by_host ON vms(host_id);
