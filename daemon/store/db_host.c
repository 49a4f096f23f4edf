/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Hosts in the inventory, as far as the agent link needs them: lookup by
 * agent key, registration, state changes with their events, and the
 * session start that consumes a boot token.
 *
 * Invariants: a state change and its event commit together; a boot token
 * is marked used in the same transaction that records the session, so a
 * token can never serve two sessions even across a crash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

void
db_host_row(sqlite3_stmt *st, struct host_row *h)
{
	const void *tok;

	memset(h, 0, sizeof(*h));
	h->id = sqlite3_column_int64(st, 0);
	db_text(h->name, sizeof(h->name), st, 1);
	db_text(h->fingerprint, sizeof(h->fingerprint), st, 2);
	db_text(h->state, sizeof(h->state), st, 3);
	db_text(h->agent_pubkey, sizeof(h->agent_pubkey), st, 4);
	tok = sqlite3_column_blob(st, 5);
	if (tok && sqlite3_column_bytes(st, 5) == AUTH_HASH_LEN) {
		memcpy(h->token_hash, tok, AUTH_HASH_LEN);
		h->has_token = true;
	}
	h->token_used = sqlite3_column_int(st, 6) != 0;
	db_text(h->underlay_ip, sizeof(h->underlay_ip), st, 7);
	h->last_seen_at = sqlite3_column_int64(st, 8);
	db_text(h->boot_id, sizeof(h->boot_id), st, 9);
	db_text(h->boot_mac, sizeof(h->boot_mac), st, 10);
	db_text(h->uuid, sizeof(h->uuid), st, 11);
	db_text(h->serial, sizeof(h->serial), st, 12);
	db_text(h->product, sizeof(h->product), st, 13);
	db_text(h->boot_ip, sizeof(h->boot_ip), st, 14);
	h->boot_at = sqlite3_column_int64(st, 15);
	h->ovl_served_at = sqlite3_column_int64(st, 16);
	h->draining = sqlite3_column_int(st, 17) != 0;
}

static void
db_host_fill(sqlite3_stmt *st, void *row)
{
	db_host_row(st, row);
}

int
db_host_one(struct db *db, sqlite3_stmt *st, struct host_row *out)
{
	return db_one(db, st, db_host_fill, out, "host get");
}

int
db_host_by_pubkey(struct db *db, const char *pubhex, struct host_row *out)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_HOST_BY_KEY,
	    "SELECT " HOST_COLS " FROM hosts WHERE agent_pubkey = ? AND "
	    "state != 'retired'");

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, pubhex, -1, SQLITE_STATIC);
	return db_host_one(db, st, out);
}

int
db_host_get(struct db *db, const char *name, struct host_row *out)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_HOST_BY_NAME,
	    "SELECT " HOST_COLS " FROM hosts WHERE name = ?");

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return db_host_one(db, st, out);
}

int
db_host_by_mac(struct db *db, const char *mac, struct host_row *out)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_HOST_BY_MAC,
	    "SELECT " HOST_COLS " FROM hosts WHERE boot_mac = ? AND "
	    "state != 'retired'");

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
	return db_host_one(db, st, out);
}

int
db_host_list(struct db *db, struct host_row **out, size_t *n)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_HOST_LIST,
	    "SELECT " HOST_COLS " FROM hosts ORDER BY name, id");

	if (st == NULL)
		return -EIO;
	return db_collect(db, st, sizeof(**out), db_host_fill, "host list",
	    (void **)out, n);
}

int
db_host_register(struct db *db, const char *name, const char *pubhex,
    const uint8_t *token_hash, const char *actor, int64_t now,
    struct host_row *out)
{
	char fingerprint[80];
	sqlite3_stmt *st;
	int r;

	/* Until hardware discovery, a manually enrolled host's fingerprint
	 * is derived from its name; discovery replaces it. */
	snprintf(fingerprint, sizeof(fingerprint), "manual:%s", name);
	if ((r = db_tx_begin(db)) < 0)
		return r;
	if ((st = db_stmt(db, DB_S_HOST_INSERT,
	    "INSERT INTO hosts (name, fingerprint, state, boot_mac, agent_pubkey, "
	    "boot_token_hash, created_at, updated_at) "
	    "VALUES (?, ?, 'adopted', '', ?, ?, ?, ?)")) == NULL) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, fingerprint, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, pubhex, -1, SQLITE_STATIC);
	if (token_hash)
		sqlite3_bind_blob(st, 4, token_hash, AUTH_HASH_LEN, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_int64(st, 5, now);
	sqlite3_bind_int64(st, 6, now);
	r = db_err(db, sqlite3_step(st), "host insert");
	sqlite3_reset(st);
	if (r < 0 || (r = db_event_add(db, "host.adopted", name, actor,
	    "enrolled with an agent key", now)) < 0)
		goto out;
	r = db_host_get(db, name, out);
out:
	return db_tx_end(db, r);
}

int
db_host_set_state(struct db *db, int64_t id, const char *name,
    const char *state, const char *cause, const char *actor, int64_t now)
{
	sqlite3_stmt *st;
	char kind[32];
	int r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	if ((st = db_stmt(db, DB_S_HOST_STATE, "UPDATE hosts SET state = ?, "
	    "updated_at = ? WHERE id = ?")) == NULL) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, id);
	r = db_err(db, sqlite3_step(st), "host state");
	sqlite3_reset(st);
	snprintf(kind, sizeof(kind), "host.%s", state);
	if (r == 0)
		r = db_event_add(db, kind, name, actor, cause, now);
out:
	return db_tx_end(db, r);
}

/* The mark and its event commit together; setting it twice is no change
 * (0, no event), a change is 1. */
int
db_host_set_draining(struct db *db, const struct host_row *h, bool draining,
    const char *actor, int64_t now)
{
	int changes = 0, r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	r = db_run(db, DB_S_HOST_DRAIN, "UPDATE hosts SET draining = ?, "
	    "updated_at = ? WHERE id = ? AND draining <> ?", &changes, "iiii",
	    (int64_t)draining, now, h->id, (int64_t)draining);
	if (r == 0 && changes > 0)
		r = db_event_add(db, draining ? "host.draining" : "host.undrained",
		    h->name, actor, NULL, now);
	r = db_tx_end(db, r);
	return r < 0 ? r : changes > 0;
}

int
db_host_session_start(struct db *db, const struct host_row *h,
    const char *boot_id, bool consume_token, const char *facts_json,
    const char *peer, int64_t now)
{
	sqlite3_stmt *st;
	char detail[160];
	int r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	if (consume_token) {
		/* Only an unused token may be consumed: the WHERE makes the
		 * check and the update one atomic step. */
		if ((st = db_stmt(db, DB_S_HOST_TOKEN_USED, "UPDATE hosts SET "
		    "boot_token_used_at = ? WHERE id = ? AND "
		    "boot_token_used_at IS NULL")) == NULL) {
			r = -EIO;
			goto out;
		}
		sqlite3_bind_int64(st, 1, now);
		sqlite3_bind_int64(st, 2, h->id);
		r = db_err(db, sqlite3_step(st), "host token");
		sqlite3_reset(st);
		if (r < 0)
			goto out;
		if (sqlite3_changes(db->sql) != 1) {
			r = -EALREADY;
			goto out;
		}
	}
	if ((st = db_stmt(db, DB_S_HOST_SESSION, "UPDATE hosts SET state = 'up', "
	    "boot_id = ?, facts = coalesce(?, facts), last_seen_at = ?, "
	    "updated_at = ? WHERE id = ?")) == NULL) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, boot_id, -1, SQLITE_STATIC);
	if (facts_json)
		sqlite3_bind_text(st, 2, facts_json, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int64(st, 5, h->id);
	r = db_err(db, sqlite3_step(st), "host session");
	sqlite3_reset(st);
	snprintf(detail, sizeof(detail), "agent session from %s, boot %.40s%s",
	    peer, boot_id, consume_token ? ", boot token consumed" : "");
	if (r == 0)
		r = db_event_add(db, "host.up", h->name, "agent", detail, now);
out:
	return db_tx_end(db, r);
}

/* An event on its own, outside any other change (e.g. a refused agent). */
int
db_event_record(struct db *db, const char *kind, const char *subject,
    const char *actor, const char *detail, int64_t now)
{
	int r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	return db_tx_end(db, db_event_add(db, kind, subject, actor, detail,
	    now));
}
