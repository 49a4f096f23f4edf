-- 001: the inventory as DESIGN.md describes it: hosts, VXLAN networks and
-- their members, VMs and their NICs, and the audit log.
-- Forward-only: never edit a migration that has landed; add a new file.

CREATE TABLE hosts (
	id            INTEGER PRIMARY KEY,
	name          TEXT UNIQUE,                  -- NULL until adopted
	fingerprint   TEXT NOT NULL UNIQUE,         -- hash(SMBIOS UUID, boot MAC)
	state         TEXT NOT NULL DEFAULT 'discovered'
	              CHECK (state IN ('discovered', 'adopted', 'booting', 'up',
	                               'draining', 'down', 'retired')),
	boot_mac      TEXT NOT NULL,
	smbios_uuid   TEXT,
	serial        TEXT,
	product       TEXT,
	underlay_ip   TEXT UNIQUE,
	labels        TEXT NOT NULL DEFAULT '{}',   -- JSON object
	facts         TEXT NOT NULL DEFAULT '{}',   -- JSON, as the agent reports them
	created_at    INTEGER NOT NULL,             -- unix seconds
	updated_at    INTEGER NOT NULL
);

CREATE TABLE networks (
	id            INTEGER PRIMARY KEY,
	name          TEXT NOT NULL UNIQUE,
	vni           INTEGER NOT NULL UNIQUE CHECK (vni BETWEEN 1 AND 16777215),
	description   TEXT NOT NULL DEFAULT '',
	all_hosts     INTEGER NOT NULL DEFAULT 1 CHECK (all_hosts IN (0, 1)),
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
);

-- Explicit members of a network whose all_hosts is 0.
CREATE TABLE network_members (
	network_id    INTEGER NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
	host_id       INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
	PRIMARY KEY (network_id, host_id)
) WITHOUT ROWID;

CREATE TABLE vms (
	id            INTEGER PRIMARY KEY,
	name          TEXT NOT NULL UNIQUE,
	uuid          TEXT NOT NULL UNIQUE,
	host_id       INTEGER REFERENCES hosts(id) ON DELETE SET NULL,
	desired_state TEXT NOT NULL DEFAULT 'running'
	              CHECK (desired_state IN ('running', 'stopped', 'destroyed')),
	state         TEXT NOT NULL DEFAULT 'pending'
	              CHECK (state IN ('pending', 'creating', 'running', 'stopped',
	                               'migrating', 'lost', 'failed')),
	type          TEXT NOT NULL DEFAULT 'pv' CHECK (type IN ('pv', 'pvh')),
	vcpus         INTEGER NOT NULL CHECK (vcpus BETWEEN 1 AND 512),
	memory_mib    INTEGER NOT NULL CHECK (memory_mib >= 16),
	spec          TEXT NOT NULL,                -- JSON, the accepted VM spec
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
);

CREATE TABLE vm_nics (
	vm_id         INTEGER NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
	idx           INTEGER NOT NULL,
	network_id    INTEGER NOT NULL REFERENCES networks(id) ON DELETE RESTRICT,
	mac           TEXT NOT NULL UNIQUE,
	PRIMARY KEY (vm_id, idx)
) WITHOUT ROWID;

-- Audit and lifecycle events: append-only.
CREATE TABLE events (
	id            INTEGER PRIMARY KEY,
	time          INTEGER NOT NULL,             -- unix seconds
	kind          TEXT NOT NULL,                -- e.g. network.create
	subject       TEXT NOT NULL,                -- the object's name
	actor         TEXT NOT NULL,                -- who caused it
	detail        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_by_subject ON events(subject, time);
