-- 008: host drain (issue 15).  A draining host takes no new VMs from the
-- scheduler while its VMs migrate away.  The mark is the operator's and
-- lives here, not in memory, so it holds across the host's reboot and
-- hvd's restart until hvctl host undrain clears it.

ALTER TABLE hosts ADD COLUMN draining INTEGER NOT NULL DEFAULT 0
	CHECK (draining IN (0, 1));
