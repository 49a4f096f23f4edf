-- 009: a NIC's transmit limit (libxl's vif rate), in kbit/s; 0 is none.
-- It belongs to the NIC, so it moves with the VM and survives a restart
-- elsewhere.

ALTER TABLE vm_nics ADD COLUMN rate_kbps INTEGER NOT NULL DEFAULT 0
	CHECK (rate_kbps >= 0);
