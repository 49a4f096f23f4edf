/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * API tokens: public id, hashed secret, role.
 *
 * Must never see or store a token's secret: callers pass the hash.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

static void
db_token_row(sqlite3_stmt *st, struct token_row *t)
{
	const void *h;
	char role[8];

	db_text(t->id, sizeof(t->id), st, 0);
	memset(t->hash, 0, sizeof(t->hash));
	h = sqlite3_column_blob(st, 1);
	if (h && sqlite3_column_bytes(st, 1) == AUTH_HASH_LEN)
		memcpy(t->hash, h, AUTH_HASH_LEN);
	db_text(role, sizeof(role), st, 2);
	if (api_role_parse(role, &t->role) < 0)
		t->role = API_ROLE_NONE;
	db_text(t->name, sizeof(t->name), st, 3);
	t->created_at = sqlite3_column_int64(st, 4);
	t->last_used_at = sqlite3_column_int64(st, 5);
}

int
db_token_insert(struct db *db, const struct token_row *t, const char *actor,
    int64_t now)
{
	sqlite3_stmt *st;
	int r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	if ((st = db_stmt(db, DB_S_TOKEN_INSERT,
	    "INSERT INTO api_tokens (id, secret_hash, role, name, created_at) "
	    "VALUES (?, ?, ?, ?, ?)")) == NULL) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, t->hash, AUTH_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, api_role_name(t->role), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, now);
	r = db_err(db, sqlite3_step(st), "token insert");
	sqlite3_reset(st);
	if (r == 0)
		r = db_event_add(db, "token.create", t->id, actor,
		    api_role_name(t->role), now);
out:
	return db_tx_end(db, r);
}

int
db_token_get(struct db *db, const char *id, struct token_row *out)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_TOKEN_GET,
	    "SELECT id, secret_hash, role, name, created_at, "
	    "coalesce(last_used_at, 0) FROM api_tokens WHERE id = ?");
	int rc, r;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		db_token_row(st, out);
		r = 0;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : db_err(db, rc, "token get");
	}
	sqlite3_reset(st);
	return r;
}

int
db_token_touch(struct db *db, const char *id, int64_t now)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_TOKEN_TOUCH,
	    "UPDATE api_tokens SET last_used_at = ? WHERE id = ?");
	int r;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	r = db_err(db, sqlite3_step(st), "token touch");
	sqlite3_reset(st);
	return r;
}

static void
db_token_fill(sqlite3_stmt *st, void *row)
{
	db_token_row(st, row);
}

int
db_token_list(struct db *db, struct token_row **out, size_t *n)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_TOKEN_LIST,
	    "SELECT id, secret_hash, role, name, created_at, "
	    "coalesce(last_used_at, 0) FROM api_tokens ORDER BY created_at, id");

	if (st == NULL)
		return -EIO;
	return db_collect(db, st, sizeof(**out), db_token_fill, "token list",
	    (void **)out, n);
}

int
db_token_delete(struct db *db, const char *id, const char *actor, int64_t now)
{
	sqlite3_stmt *st;
	int r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	if ((st = db_stmt(db, DB_S_TOKEN_DELETE,
	    "DELETE FROM api_tokens WHERE id = ?")) == NULL) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	r = db_err(db, sqlite3_step(st), "token delete");
	sqlite3_reset(st);
	if (r < 0)
		goto out;
	if (sqlite3_changes(db->sql) == 0) {
		r = -ENOENT;
		goto out;
	}
	r = db_event_add(db, "token.revoke", id, actor, "", now);
out:
	return db_tx_end(db, r);
}
