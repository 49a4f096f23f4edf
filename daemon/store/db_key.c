/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvd's key pairs in the inventory: public halves in the clear, secrets
 * only as sealed boxes (keys.c seals and opens them).
 */
#include <errno.h>
#include <string.h>

#include "db_internal.h"

int
db_key_get(struct db *db, const char *name, uint8_t pub[32], uint8_t *sealed,
    size_t *sealed_len)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_KEY_GET,
	    "SELECT public, sealed_secret FROM keys WHERE name = ?");
	int rc, r;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		int plen = sqlite3_column_bytes(st, 0);
		int slen = sqlite3_column_bytes(st, 1);

		if (plen != 32 || slen < 0 || (size_t)slen > *sealed_len) {
			r = -EINVAL;
		} else {
			memcpy(pub, sqlite3_column_blob(st, 0), 32);
			memcpy(sealed, sqlite3_column_blob(st, 1), (size_t)slen);
			*sealed_len = (size_t)slen;
			r = 0;
		}
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : db_err(db, rc, "key get");
	}
	sqlite3_reset(st);
	return r;
}

int
db_key_put(struct db *db, const char *name, const uint8_t pub[32],
    const uint8_t *sealed, size_t sealed_len, int64_t now)
{
	sqlite3_stmt *st;
	int r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	if ((st = db_stmt(db, DB_S_KEY_PUT, "INSERT INTO keys (name, public, "
	    "sealed_secret, created_at) VALUES (?, ?, ?, ?)")) == NULL) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, pub, 32, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, sealed, (int)sealed_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, now);
	r = db_err(db, sqlite3_step(st), "key put");
	sqlite3_reset(st);
	if (r == 0)
		r = db_event_add(db, "key.create", name, "hvd", "", now);
out:
	return db_tx_end(db, r);
}
