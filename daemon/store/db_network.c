/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Networks (VXLAN segments) in the inventory.
 *
 * A key names a network either by name or, when it is all digits, by VNI;
 * names must start with a letter, so the two never collide.
 *
 * Invariant: every change and its audit event share one transaction.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"
#include "numparse.h"

#define NET_COLS "id, name, vni, description, all_hosts, created_at, updated_at"

static void
db_network_row(sqlite3_stmt *st, struct network *n)
{
	n->id = sqlite3_column_int64(st, 0);
	db_text(n->name, sizeof(n->name), st, 1);
	n->vni = (uint32_t)sqlite3_column_int64(st, 2);
	db_text(n->description, sizeof(n->description), st, 3);
	n->all_hosts = sqlite3_column_int(st, 4) != 0;
	n->created_at = sqlite3_column_int64(st, 5);
	n->updated_at = sqlite3_column_int64(st, 6);
}

int
db_network_get(struct db *db, const char *key, struct network *out)
{
	sqlite3_stmt *st;
	uint32_t vni;
	int rc, r;

	if (parse_u32(key, API_VNI_MIN, API_VNI_MAX, &vni) == 0) {
		st = db_stmt(db, DB_S_NET_GET_VNI,
		    "SELECT " NET_COLS " FROM networks WHERE vni = ?");
		if (st == NULL)
			return -EIO;
		sqlite3_bind_int64(st, 1, vni);
	} else {
		st = db_stmt(db, DB_S_NET_GET_NAME,
		    "SELECT " NET_COLS " FROM networks WHERE name = ?");
		if (st == NULL)
			return -EIO;
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		db_network_row(st, out);
		r = 0;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : db_err(db, rc, "network get");
	}
	sqlite3_reset(st);
	return r;
}

static void
db_network_fill(sqlite3_stmt *st, void *row)
{
	db_network_row(st, row);
}

int
db_network_list(struct db *db, struct network **out, size_t *n)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_NET_LIST,
	    "SELECT " NET_COLS " FROM networks ORDER BY vni");

	if (st == NULL)
		return -EIO;
	return db_collect(db, st, sizeof(**out), db_network_fill,
	    "network list", (void **)out, n);
}

int
db_network_create(struct db *db, struct network *n, const char *actor,
    int64_t now)
{
	sqlite3_stmt *st;
	char detail[64];
	int r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	if ((st = db_stmt(db, DB_S_NET_INSERT,
	    "INSERT INTO networks (name, vni, description, all_hosts, "
	    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)")) == NULL) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, n->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, n->vni);
	sqlite3_bind_text(st, 3, n->description, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, n->all_hosts);
	sqlite3_bind_int64(st, 5, now);
	sqlite3_bind_int64(st, 6, now);
	r = db_err(db, sqlite3_step(st), "network insert");
	sqlite3_reset(st);
	if (r < 0)
		goto out;
	n->id = sqlite3_last_insert_rowid(db->sql);
	n->created_at = n->updated_at = now;
	snprintf(detail, sizeof(detail), "vni %u", n->vni);
	r = db_event_add(db, "network.create", n->name, actor, detail, now);
out:
	return db_tx_end(db, r);
}

int
db_network_update(struct db *db, const char *key,
    const struct api_network *patch, struct network *out, const char *actor,
    int64_t now)
{
	struct network cur;
	sqlite3_stmt *st;
	int r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	if ((r = db_network_get(db, key, &cur)) < 0)
		goto out;
	if (patch->present & API_NET_NAME)
		snprintf(cur.name, sizeof(cur.name), "%s", patch->name);
	if (patch->present & API_NET_DESCRIPTION)
		snprintf(cur.description, sizeof(cur.description), "%s",
		    patch->description);
	if (patch->present & API_NET_ALL_HOSTS)
		cur.all_hosts = patch->all_hosts;
	cur.updated_at = now;
	if ((st = db_stmt(db, DB_S_NET_UPDATE,
	    "UPDATE networks SET name = ?, description = ?, all_hosts = ?, "
	    "updated_at = ? WHERE id = ?")) == NULL) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, cur.name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, cur.description, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, cur.all_hosts);
	sqlite3_bind_int64(st, 4, now);
	sqlite3_bind_int64(st, 5, cur.id);
	r = db_err(db, sqlite3_step(st), "network update");
	sqlite3_reset(st);
	if (r == 0)
		r = db_event_add(db, "network.update", cur.name, actor, "", now);
out:
	/* The caller sees the row only once it is committed. */
	if ((r = db_tx_end(db, r)) == 0)
		*out = cur;
	return r;
}

int
db_network_delete(struct db *db, const char *key, const char *actor,
    int64_t now)
{
	struct network cur;
	sqlite3_stmt *st;
	char detail[64];
	int r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	if ((r = db_network_get(db, key, &cur)) < 0)
		goto out;
	if ((st = db_stmt(db, DB_S_NET_DELETE,
	    "DELETE FROM networks WHERE id = ?")) == NULL) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, cur.id);
	/* A VM NIC still on the network makes this -EBUSY (foreign key). */
	r = db_err(db, sqlite3_step(st), "network delete");
	sqlite3_reset(st);
	if (r < 0)
		goto out;
	snprintf(detail, sizeof(detail), "vni %u", cur.vni);
	r = db_event_add(db, "network.delete", cur.name, actor, detail, now);
out:
	return db_tx_end(db, r);
}
