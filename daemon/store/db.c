/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The SQLite inventory: opening, pragmas, migrations, transactions and the
 * prepared-statement cache shared by db_*.c.
 *
 * Invariants: WAL with synchronous=FULL, so a change committed before the
 * API replies survives a crash or power loss; foreign keys on; migrations
 * are applied in order, each in its own transaction with the user_version
 * bump, so a crash mid-upgrade leaves the previous version intact.
 *
 * Must never: be touched (sqlite3 *) by a file outside db*.c; log row data
 * that may hold secrets.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "db_internal.h"
#include "schema.h"

sqlite3_stmt *
db_stmt(struct db *db, enum db_slot slot, const char *sql)
{
	sqlite3_stmt *st = db->stmts[slot];
	int rc;

	if (st != NULL) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return st;
	}
	rc = sqlite3_prepare_v3(db->sql, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    &st, NULL);
	if (rc != SQLITE_OK) {
		log_warnx("db: prepare failed: %s: %s", sqlite3_errmsg(db->sql),
		    sql);
		errno = EIO;
		return NULL;
	}
	db->stmts[slot] = st;
	return st;
}

int
db_err(struct db *db, int rc, const char *what)
{
	const char *msg = sqlite3_errmsg(db->sql);
	const char *col;

	switch (rc) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		/* "UNIQUE constraint failed: networks.vni" -> "networks.vni" */
		col = strstr(msg, "failed: ");
		snprintf(db->conflict, sizeof(db->conflict), "%s",
		    col ? col + 8 : "");
		return -EEXIST;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return -EBUSY;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		log_warnx("db: %s: database is locked", what);
		return -EAGAIN;
	case SQLITE_FULL:
		log_warnx("db: %s: disk full", what);
		return -ENOSPC;
	default:
		log_warnx("db: %s: %s (%d)", what, msg, rc);
		return -EIO;
	}
}

const char *
db_conflict(struct db *db)
{
	return db->conflict;
}

uint64_t
db_generation(struct db *db)
{
	return db->generation;
}

static int
db_exec(struct db *db, const char *sql, const char *what)
{
	char *msg = NULL;
	int rc;

	rc = sqlite3_exec(db->sql, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		log_warnx("db: %s: %s", what, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

/*
 * Runs the statement in slot once with the arguments described by types:
 * 't' a string (NULL binds NULL), 'i' an int64_t, 'h' a hash of
 * AUTH_HASH_LEN bytes (NULL binds NULL).  Returns 0 or -errno; *changes
 * (may be NULL) gets the number of rows changed.
 */
int
db_run(struct db *db, enum db_slot slot, const char *sql, int *changes,
    const char *types, ...)
{
	sqlite3_stmt *st = db_stmt(db, slot, sql);
	va_list ap;
	int r;

	if (st == NULL)
		return -EIO;
	va_start(ap, types);
	for (int i = 0; types[i]; i++) {
		const char *s;
		const uint8_t *h;

		switch (types[i]) {
		case 't':
			if ((s = va_arg(ap, const char *)) != NULL)
				sqlite3_bind_text(st, i + 1, s, -1, SQLITE_TRANSIENT);
			else
				sqlite3_bind_null(st, i + 1);
			break;
		case 'i':
			sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
			break;
		case 'h':
			if ((h = va_arg(ap, const uint8_t *)) != NULL)
				sqlite3_bind_blob(st, i + 1, h, AUTH_HASH_LEN,
				    SQLITE_TRANSIENT);
			else
				sqlite3_bind_null(st, i + 1);
			break;
		}
	}
	va_end(ap);
	r = db_err(db, sqlite3_step(st), sql);
	if (changes)
		*changes = sqlite3_changes(db->sql);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

/*
 * One state change is one transaction: db_tx_begin(), the statements and
 * the audit event, then return db_tx_end(db, r) on every path.
 */
int
db_tx_begin(struct db *db)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_BEGIN, "BEGIN IMMEDIATE");

	if (st == NULL)
		return -EIO;
	return db_err(db, sqlite3_step(st), "begin");
}

int
db_tx_end(struct db *db, int r)
{
	sqlite3_stmt *st;

	if (r >= 0) {
		if ((st = db_stmt(db, DB_S_COMMIT, "COMMIT")) == NULL) {
			r = -EIO;
		} else {
			int c = db_err(db, sqlite3_step(st), "commit");

			if (c < 0)
				r = c;
		}
	}
	/* A failed COMMIT (SQLITE_BUSY) leaves the transaction open. */
	if (r < 0)
		db_rollback(db);
	return r;
}

/*
 * SQLite calls this as each transaction commits, explicit or not: the one
 * place a change of the inventory is noticed.  It runs inside
 * sqlite3_step(), so the subscriber may only take note (schedule work on
 * the loop), never touch the database.
 */
static int
db_commit_hook(void *arg)
{
	struct db *db = arg;

	db->generation++;
	for (size_t i = 0; i < DB_COMMIT_SUBSCRIBERS; i++)
		if (db->on_commit[i].fn)
			db->on_commit[i].fn(db->on_commit[i].arg);
	return 0;
}

int
db_on_commit(struct db *db, void (*fn)(void *arg), void *arg)
{
	for (size_t i = 0; i < DB_COMMIT_SUBSCRIBERS; i++)
		if (db->on_commit[i].fn == NULL) {
			db->on_commit[i].fn = fn;
			db->on_commit[i].arg = arg;
			return 0;
		}
	return -ENOSPC;
}

void
db_off_commit(struct db *db, void (*fn)(void *arg), void *arg)
{
	for (size_t i = 0; i < DB_COMMIT_SUBSCRIBERS; i++)
		if (db->on_commit[i].fn == fn && db->on_commit[i].arg == arg)
			db->on_commit[i].fn = NULL;
}

void
db_rollback(struct db *db)
{
	sqlite3_stmt *st;

	if (sqlite3_get_autocommit(db->sql))
		return;
	if ((st = db_stmt(db, DB_S_ROLLBACK, "ROLLBACK")) != NULL)
		(void)db_err(db, sqlite3_step(st), "rollback");
}

void
db_text(char *dst, size_t dstlen, sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	snprintf(dst, dstlen, "%s", s ? (const char *)s : "");
}

int
db_one(struct db *db, sqlite3_stmt *st, void (*fill)(sqlite3_stmt *st,
    void *row), void *row, const char *what)
{
	int rc = sqlite3_step(st), r;

	if (rc == SQLITE_ROW) {
		fill(st, row);
		r = 0;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : db_err(db, rc, what);
	}
	sqlite3_reset(st);
	return r;
}

int
db_collect(struct db *db, sqlite3_stmt *st, size_t rowsize,
    void (*fill)(sqlite3_stmt *st, void *row), const char *what, void **out,
    size_t *n)
{
	char *rows = NULL, *tmp;
	size_t cap = 0, cnt = 0;
	int rc, r;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 32;
			if ((tmp = reallocarray(rows, cap, rowsize)) == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			rows = tmp;
		}
		fill(st, rows + cnt++ * rowsize);
	}
	r = rc == SQLITE_NOMEM ? -ENOMEM : db_err(db, rc, what);
	sqlite3_reset(st);
	if (r < 0) {
		free(rows);
		return r;
	}
	*out = rows;
	*n = cnt;
	return 0;
}

int
db_user_version(struct db *db)
{
	sqlite3_stmt *st = NULL;
	int v = -EIO;

	if (sqlite3_prepare_v2(db->sql, "PRAGMA user_version", -1, &st, NULL) ==
	    SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int
db_migrate(struct db *db, int target)
{
	char sql[64];
	int cur, r;

	if ((cur = db_user_version(db)) < 0)
		return cur;
	if (cur > schema_migration_count) {
		log_warnx("db: %s: schema version %d is newer than this hvd "
		    "knows (%d); refusing to touch it", db->path, cur,
		    schema_migration_count);
		return -EPROTO;
	}
	for (int v = cur + 1; v <= target; v++) {
		const struct schema_migration *m = &schema_migrations[v - 1];

		if ((r = db_exec(db, "BEGIN IMMEDIATE", "migrate")) < 0)
			return r;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
		if ((r = db_exec(db, m->sql, m->file)) < 0 ||
		    (r = db_exec(db, sql, m->file)) < 0 ||
		    (r = db_exec(db, "COMMIT", m->file)) < 0) {
			(void)db_exec(db, "ROLLBACK", m->file);
			return r;
		}
		log_info("db: %s: applied migration %s", db->path, m->file);
	}
	return 0;
}

int
db_open_version(const char *path, int version, struct db **out)
{
	static const char pragmas[] =
	    "PRAGMA journal_mode = WAL;"
	    "PRAGMA synchronous = FULL;"
	    "PRAGMA foreign_keys = ON;"
	    "PRAGMA busy_timeout = 0;"
	    "PRAGMA trusted_schema = OFF;";
	struct db *db;
	int rc, r;

	*out = NULL;
	if (version < 0 || version > schema_migration_count)
		return -EINVAL;
	if ((db = calloc(1, sizeof(*db))) == NULL)
		return -ENOMEM;
	snprintf(db->path, sizeof(db->path), "%s", path);
	rc = sqlite3_open_v2(path, &db->sql, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
	    NULL);
	if (rc != SQLITE_OK) {
		log_warnx("db: %s: %s", path, db->sql ? sqlite3_errmsg(db->sql) :
		    sqlite3_errstr(rc));
		r = -EIO;
		goto fail;
	}
	sqlite3_extended_result_codes(db->sql, 1);
	if ((r = db_exec(db, pragmas, "pragmas")) < 0 ||
	    (r = db_migrate(db, version)) < 0)
		goto fail;
	sqlite3_commit_hook(db->sql, db_commit_hook, db);
	*out = db;
	return 0;
fail:
	db_close(db);
	return r;
}

int
db_open(const char *path, struct db **out)
{
	return db_open_version(path, schema_migration_count, out);
}

void
db_close(struct db *db)
{
	if (db == NULL)
		return;
	for (size_t i = 0; i < sizeof(db->stmts) / sizeof(*db->stmts); i++)
		sqlite3_finalize(db->stmts[i]);
	sqlite3_close(db->sql);
	free(db);
}

/* Text of the schema, sorted, for comparing an upgraded and a fresh db. */
int
db_schema_dump(struct db *db, char **out)
{
	sqlite3_stmt *st = NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	*out = NULL;
	if ((f = open_memstream(&buf, &len)) == NULL)
		return -errno;
	fprintf(f, "user_version %d\n", db_user_version(db));
	rc = sqlite3_prepare_v2(db->sql, "SELECT type, name, tbl_name, "
	    "coalesce(sql, '') FROM sqlite_schema ORDER BY type, name", -1, &st,
	    NULL);
	if (rc == SQLITE_OK)
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			fprintf(f, "%s %s %s\n%s\n", sqlite3_column_text(st, 0),
			    sqlite3_column_text(st, 1), sqlite3_column_text(st, 2),
			    sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
	fclose(f);
	if (rc != SQLITE_DONE) {
		free(buf);
		return db_err(db, rc, "schema dump");
	}
	*out = buf;
	return 0;
}

/* An online backup of the whole database into a new file at path. */
int
db_backup_to(struct db *db, const char *path)
{
	sqlite3_backup *b;
	sqlite3 *dst;
	int rc;

	if ((rc = sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL)) != SQLITE_OK) {
		log_warnx("db: backup to %s: %s", path, sqlite3_errstr(rc));
		sqlite3_close(dst);
		return -EIO;
	}
	if ((b = sqlite3_backup_init(dst, "main", db->sql, "main")) == NULL) {
		log_warnx("db: backup: %s", sqlite3_errmsg(dst));
		sqlite3_close(dst);
		return -EIO;
	}
	rc = sqlite3_backup_step(b, -1);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		log_warnx("db: backup: %s", sqlite3_errstr(rc));
		sqlite3_close(dst);
		return -EIO;
	}
	rc = sqlite3_close(dst);
	chmod(path, 0600);
	return rc == SQLITE_OK ? 0 : -EIO;
}

int
db_ping(struct db *db)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_PING, "SELECT 1");
	int r;

	if (st == NULL)
		return -EIO;
	r = sqlite3_step(st) == SQLITE_ROW ? 0 : -EIO;
	/* Reset at once: a statement left on a row holds a read snapshot,
	 * which hides other writers' commits and blocks checkpoints. */
	sqlite3_reset(st);
	return r;
}

int
db_count(struct db *db, const char *table, int64_t *out)
{
	static const struct {
		const char *table;
		enum db_slot slot;
		const char *sql;
	} counts[] = {
		{ "hosts", DB_S_COUNT_HOSTS, "SELECT count(*) FROM hosts" },
		{ "networks", DB_S_COUNT_NETWORKS, "SELECT count(*) FROM networks" },
		{ "vms", DB_S_COUNT_VMS, "SELECT count(*) FROM vms" },
	};
	sqlite3_stmt *st;

	for (size_t i = 0; i < sizeof(counts) / sizeof(*counts); i++) {
		if (strcmp(counts[i].table, table) != 0)
			continue;
		if ((st = db_stmt(db, counts[i].slot, counts[i].sql)) == NULL)
			return -EIO;
		if (sqlite3_step(st) != SQLITE_ROW) {
			sqlite3_reset(st);
			return db_err(db, sqlite3_errcode(db->sql), "count");
		}
		*out = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		return 0;
	}
	return -EINVAL;
}
