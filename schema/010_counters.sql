-- 010: counters that must not go back when hvd restarts.  'operation'
-- hands out VM operation ids in blocks (daemon/fleet/vm.c), so an id that
-- hvctl follows across a restart never names a newer operation.

CREATE TABLE counters (
	name TEXT PRIMARY KEY,
	value INTEGER NOT NULL CHECK (value >= 0)
);
INSERT INTO counters (name, value) VALUES ('operation', 0);
