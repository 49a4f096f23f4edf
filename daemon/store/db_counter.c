/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Counters that survive hvd (schema/010): a caller reserves a block of
 * values at a time, so a restart never hands out a value again.
 */
#include <errno.h>
#include <stdint.h>

#include <sqlite3.h>

#include "db_internal.h"
#include "store.h"

int
db_counter_reserve(struct db *db, const char *name, uint64_t n,
    uint64_t *first)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_COUNTER_RESERVE, "UPDATE counters "
	    "SET value = value + ?2 WHERE name = ?1 RETURNING value");
	int rc, r;

	if (st == NULL)
		return -EIO;
	if (n == 0 || n > INT64_MAX / 2)
		return -EINVAL;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)n);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*first = (uint64_t)sqlite3_column_int64(st, 0) - n + 1;
		r = 0;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : db_err(db, rc, "counter");
	}
	/* RETURNING runs the update to its end only when stepped to DONE. */
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	if (r == 0 && rc != SQLITE_DONE)
		r = db_err(db, rc, "counter");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}
