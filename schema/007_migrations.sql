-- 007: VM migrations (issue 15).  One row per attempt, written before the
-- first request goes out, so an hvd restart mid-migration can still decide
-- which copy runs (from the target's vm.list) and tell both agents.  The
-- id is the migration's public id (32 hex); its key is never stored.
-- A row is open while ended_at is NULL: its outcome may be decided
-- ('source' or 'target') while an agent has yet to hear vm.migrate_end.

CREATE TABLE migrations (
	id             TEXT PRIMARY KEY CHECK (length(id) = 32),
	vm_uuid        TEXT NOT NULL,
	vm_name        TEXT NOT NULL,
	source_host_id INTEGER REFERENCES hosts(id) ON DELETE SET NULL,
	target_host_id INTEGER REFERENCES hosts(id) ON DELETE SET NULL,
	phase          TEXT NOT NULL DEFAULT 'preparing'
	               CHECK (phase IN ('preparing', 'copying', 'switching',
	                                'done', 'failed')),
	timeout_s      INTEGER NOT NULL,
	started_at     INTEGER NOT NULL,
	ended_at       INTEGER,
	outcome        TEXT CHECK (outcome IN ('source', 'target')),
	reason         TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX migrations_open ON migrations(ended_at);
