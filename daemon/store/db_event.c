/*
 * The audit log: append-only rows written inside the transaction of the
 * change they describe, so a change and its event commit or vanish together.
 *
 * Must never store a secret in detail.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

int
db_event_add(struct db *db, const char *kind, const char *subject,
    const char *actor, const char *detail, int64_t now)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_EVENT_ADD,
	    "INSERT INTO events (time, kind, subject, actor, detail) "
	    "VALUES (?, ?, ?, ?, ?)");
	int r;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, detail ? detail : "", -1, SQLITE_STATIC);
	r = db_err(db, sqlite3_step(st), "event add");
	sqlite3_reset(st);
	return r;
}

static void
db_event_fill(sqlite3_stmt *st, void *row)
{
	struct event_row *e = row;

	e->id = sqlite3_column_int64(st, 0);
	e->time = sqlite3_column_int64(st, 1);
	db_text(e->kind, sizeof(e->kind), st, 2);
	db_text(e->subject, sizeof(e->subject), st, 3);
	db_text(e->actor, sizeof(e->actor), st, 4);
	db_text(e->detail, sizeof(e->detail), st, 5);
}

/* Newest first, at most limit rows, optionally for one subject. */
int
db_event_list(struct db *db, const char *subject, unsigned limit,
    struct event_row **out, size_t *n)
{
	sqlite3_stmt *st;

	if (subject)
		st = db_stmt(db, DB_S_EVENT_LIST_SUBJECT,
		    "SELECT id, time, kind, subject, actor, detail FROM events "
		    "WHERE subject = ? ORDER BY id DESC LIMIT ?");
	else
		st = db_stmt(db, DB_S_EVENT_LIST,
		    "SELECT id, time, kind, subject, actor, detail FROM events "
		    "ORDER BY id DESC LIMIT ?");
	if (st == NULL)
		return -EIO;
	if (subject) {
		sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, (int)limit);
	} else {
		sqlite3_bind_int(st, 1, (int)limit);
	}
	return db_collect(db, st, sizeof(**out), db_event_fill, "event list",
	    (void **)out, n);
}
