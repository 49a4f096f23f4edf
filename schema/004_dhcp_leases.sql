-- 004: addresses hvd leases in full DHCP mode (dhcp-mode full).
-- One row per client MAC.  A row past expires_at no longer holds its
-- address, but stays so the same MAC gets the same address back while
-- nobody else took it.  An address a client declined (found in use) is
-- withheld under the pseudo-MAC 'declined:<ip>' until expires_at.
-- Adopted hosts get hosts.underlay_ip; their row here mirrors it.

CREATE TABLE dhcp_leases (
	mac           TEXT PRIMARY KEY,             -- aa:bb:cc:dd:ee:ff
	ip            TEXT NOT NULL UNIQUE,         -- dotted quad
	state         TEXT NOT NULL
	              CHECK (state IN ('offered', 'bound', 'released', 'declined')),
	expires_at    INTEGER NOT NULL,             -- unix seconds
	hostname      TEXT NOT NULL DEFAULT '',     -- option 12, sanitised
	client_id     TEXT NOT NULL DEFAULT '',     -- option 61, hex
	updated_at    INTEGER NOT NULL
) WITHOUT ROWID;
