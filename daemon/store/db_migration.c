/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * VM migrations in the inventory (schema/007): one row per attempt, and
 * the one transaction that moves a VM to its new host.
 *
 * Invariants: the row is written before hvd sends the first request; the
 * VM's host changes only in db_migration_move(), together with its event
 * and the row's phase, so the inventory and the migration never disagree.
 * Must never: store or log the migration's key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

#define MIG_COLS "m.id, m.vm_uuid, m.vm_name, coalesce(m.source_host_id, 0), " \
    "coalesce(m.target_host_id, 0), coalesce(hs.name, ''), " \
    "coalesce(ht.name, ''), m.phase, m.timeout_s, m.started_at, " \
    "coalesce(m.ended_at, 0), coalesce(m.outcome, ''), m.reason"
#define MIG_FROM " FROM migrations m LEFT JOIN hosts hs ON hs.id = " \
    "m.source_host_id LEFT JOIN hosts ht ON ht.id = m.target_host_id "

static void
db_migration_fill(sqlite3_stmt *st, void *row)
{
	struct migration_row *m = row;

	memset(m, 0, sizeof(*m));
	db_text(m->id, sizeof(m->id), st, 0);
	db_text(m->vm_uuid, sizeof(m->vm_uuid), st, 1);
	db_text(m->vm_name, sizeof(m->vm_name), st, 2);
	m->source_id = sqlite3_column_int64(st, 3);
	m->target_id = sqlite3_column_int64(st, 4);
	db_text(m->source, sizeof(m->source), st, 5);
	db_text(m->target, sizeof(m->target), st, 6);
	db_text(m->phase, sizeof(m->phase), st, 7);
	m->timeout_s = (unsigned)sqlite3_column_int64(st, 8);
	m->started_at = sqlite3_column_int64(st, 9);
	m->ended_at = sqlite3_column_int64(st, 10);
	db_text(m->outcome, sizeof(m->outcome), st, 11);
	db_text(m->reason, sizeof(m->reason), st, 12);
}

int
db_migration_insert(struct db *db, const struct migration_row *m,
    const char *actor, int64_t now)
{
	char detail[200];
	int r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	if ((r = db_run(db, DB_S_MIG_INSERT, "INSERT INTO migrations (id, "
	    "vm_uuid, vm_name, source_host_id, target_host_id, phase, "
	    "timeout_s, started_at) VALUES (?, ?, ?, ?, ?, 'preparing', ?, ?)",
	    NULL, "tttiiii", m->id, m->vm_uuid, m->vm_name, m->source_id,
	    m->target_id, (int64_t)m->timeout_s, now)) < 0)
		goto out;
	snprintf(detail, sizeof(detail), "from %s to %s", m->source, m->target);
	r = db_event_add(db, "vm.migrate", m->vm_name, actor, detail, now);
out:
	return db_tx_end(db, r);
}

/* Every migration whose row is still open (ended_at NULL), oldest first. */
int
db_migration_open_list(struct db *db, struct migration_row **out, size_t *n)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_MIG_OPEN, "SELECT " MIG_COLS
	    MIG_FROM "WHERE m.ended_at IS NULL ORDER BY m.started_at, m.id");

	if (st == NULL)
		return -EIO;
	return db_collect(db, st, sizeof(**out), db_migration_fill,
	    "migration list", (void **)out, n);
}

int
db_migration_get(struct db *db, const char *id, struct migration_row *out)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_MIG_GET, "SELECT " MIG_COLS
	    MIG_FROM "WHERE m.id = ?");

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	return db_one(db, st, db_migration_fill, out, "migration get");
}

/* Progress: the phase only, no event (copying is reported once a second). */
int
db_migration_set_phase(struct db *db, const char *id, const char *phase)
{
	return db_run(db, DB_S_MIG_PHASE, "UPDATE migrations SET phase = ? "
	    "WHERE id = ? AND phase NOT IN ('done', 'failed')", NULL, "tt",
	    phase, id);
}

/*
 * The target runs the VM: its host becomes the target, in one transaction
 * with the event and the migration's phase.  The commit re-pushes the
 * mesh (fleet/mesh.c), so the FDB follows the VM's MACs.
 */
int
db_migration_move(struct db *db, const struct migration_row *m,
    const char *actor, int64_t now)
{
	char detail[200];
	int r, changes = 0;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	if ((r = db_run(db, DB_S_MIG_MOVE_VM, "UPDATE vms SET host_id = ?, "
	    "updated_at = ? WHERE uuid = ?", &changes, "iit", m->target_id, now,
	    m->vm_uuid)) < 0)
		goto out;
	if (changes != 1) {
		r = -ENOENT;
		goto out;
	}
	if ((r = db_run(db, DB_S_MIG_MOVED, "UPDATE migrations SET phase = "
	    "'done', outcome = 'target' WHERE id = ?", NULL, "t", m->id)) < 0)
		goto out;
	snprintf(detail, sizeof(detail), "now on %s (from %s)", m->target,
	    m->source);
	r = db_event_add(db, "vm.migrated", m->vm_name, actor, detail, now);
out:
	return db_tx_end(db, r);
}

/* The outcome is decided ('source': the VM stays; reason says why). */
int
db_migration_decide(struct db *db, const struct migration_row *m,
    const char *outcome, const char *reason, const char *actor, int64_t now)
{
	char detail[300];
	int r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	if ((r = db_run(db, DB_S_MIG_DECIDE, "UPDATE migrations SET outcome = ?, "
	    "reason = ?, phase = CASE WHEN ? = 'target' THEN 'done' ELSE "
	    "'failed' END WHERE id = ?", NULL, "tttt", outcome, reason ? reason :
	    "", outcome, m->id)) < 0)
		goto out;
	if (strcmp(outcome, "source") == 0) {
		snprintf(detail, sizeof(detail), "stays on %s: %s", m->source,
		    reason && reason[0] ? reason : "migration failed");
		r = db_event_add(db, "vm.migrate-failed", m->vm_name, actor, detail,
		    now);
	}
out:
	return db_tx_end(db, r);
}

/* Both agents know the outcome: the row closes. */
int
db_migration_close(struct db *db, const char *id, int64_t now)
{
	return db_run(db, DB_S_MIG_CLOSE, "UPDATE migrations SET ended_at = ? "
	    "WHERE id = ? AND ended_at IS NULL", NULL, "it", now, id);
}
