/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The audit log: rows written inside the transaction of the change they
 * describe, so a change and its event commit or vanish together; and its
 * retention, which deletes the oldest rows a policy no longer keeps, a
 * bounded batch at a time.
 *
 * Invariants: a stored subject and detail are escape_text()'s output
 * (plain printable ASCII), whatever a peer put into them; one prune call
 * reads and deletes at most its batch of rows.  Must never store a secret
 * in detail, or delete the newest event (ids would go back).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"
#include "escape.h"

/* src itself when it is plain already, else a malloc'd escaped copy in
 * *owned; NULL when out of memory. */
static const char *
db_event_plain(const char *src, char **owned)
{
	size_t n;

	*owned = NULL;
	if (!escape_needed(src))
		return src;
	n = ESCAPE_MAX(strlen(src)) + 1;
	if ((*owned = malloc(n)) == NULL)
		return NULL;
	escape_text(*owned, n, src);
	return *owned;
}

int
db_event_add(struct db *db, const char *kind, const char *subject,
    const char *actor, const char *detail, int64_t now)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_EVENT_ADD,
	    "INSERT INTO events (time, kind, subject, actor, detail) "
	    "VALUES (?, ?, ?, ?, ?)");
	char *subj_owned = NULL, *detail_owned = NULL;
	const char *subj, *det;
	int r;

	if (st == NULL)
		return -EIO;
	if ((subj = db_event_plain(subject, &subj_owned)) == NULL ||
	    (det = db_event_plain(detail ? detail : "", &detail_owned)) ==
	    NULL) {
		r = -ENOMEM;
		goto out;
	}
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, subj, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, det, -1, SQLITE_STATIC);
	r = db_err(db, sqlite3_step(st), "event add");
	/* Reset before the escaped copies go: the statement points at them. */
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
out:
	free(subj_owned);
	free(detail_owned);
	return r;
}

/*
 * The rows due are looked for among the batch oldest ids only (the rowid
 * b-tree's first pages), never by scanning the table for old times, so a
 * call costs the same whether or not anything is due.  The row limit
 * counts back from the newest id: ids are dense (INTEGER PRIMARY KEY takes
 * max + 1, and only this deletes), so at most max_rows rows stay.  A row
 * whose time is out of order (the clock stepped back) holds the age limit
 * back behind it until it is due itself; the row limit never waits.
 */
#define DB_EVENT_DUE "FROM (SELECT id, time FROM events ORDER BY id LIMIT ?1) " \
	"WHERE id < (SELECT max(id) FROM events) AND (time < ?2 OR " \
	"id <= (SELECT max(id) FROM events) - ?3)"

int
db_event_prune(struct db *db, int64_t now, int64_t max_age_s,
    uint64_t max_rows, unsigned batch)
{
	sqlite3_stmt *due = db_stmt(db, DB_S_EVENT_PRUNE_DUE,
	    "SELECT count(*) " DB_EVENT_DUE);
	int64_t n;
	int r, changes = 0;

	if (due == NULL)
		return -EIO;
	if (batch == 0 || max_rows > INT64_MAX)
		return -EINVAL;
	sqlite3_bind_int64(due, 1, batch);
	sqlite3_bind_int64(due, 2, now - max_age_s);
	sqlite3_bind_int64(due, 3, (int64_t)max_rows);
	if ((r = sqlite3_step(due)) != SQLITE_ROW) {
		sqlite3_reset(due);
		return db_err(db, r, "event prune");
	}
	n = sqlite3_column_int64(due, 0);
	sqlite3_reset(due);
	/* Nothing due: no write transaction, so the commit hook stays quiet. */
	if (n == 0)
		return 0;
	if ((r = db_run(db, DB_S_EVENT_PRUNE, "DELETE FROM events WHERE id IN "
	    "(SELECT id " DB_EVENT_DUE ")", &changes, "iii", (int64_t)batch,
	    now - max_age_s, (int64_t)max_rows)) < 0)
		return r;
	return changes;
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
/* Events newer than after_id, oldest first (the dashboard's feed). */
int
db_event_since(struct db *db, int64_t after_id, unsigned limit,
    struct event_row **out, size_t *n)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_EVENT_SINCE,
	    "SELECT id, time, kind, subject, actor, detail FROM events "
	    "WHERE id > ? ORDER BY id LIMIT ?");

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, after_id);
	sqlite3_bind_int(st, 2, (int)limit);
	return db_collect(db, st, sizeof(**out), db_event_fill, "events since",
	    (void **)out, n);
}

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
