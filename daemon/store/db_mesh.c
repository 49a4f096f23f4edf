/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The inventory's view of the VXLAN mesh: every network with every member
 * host that has an underlay address, in one query.  mesh.c turns it into
 * each member's desired state.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

static void
db_mesh_fill(sqlite3_stmt *st, void *row)
{
	struct mesh_member *m = row;

	m->vni = (uint32_t)sqlite3_column_int64(st, 0);
	m->host_id = sqlite3_column_int64(st, 1);
	db_text(m->ip, sizeof(m->ip), st, 2);
	db_text(m->state, sizeof(m->state), st, 3);
	db_text(m->name, sizeof(m->name), st, 4);
}

int
db_mesh_members(struct db *db, struct mesh_member **out, size_t *n)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_MESH_MEMBERS,
	    "SELECT n.vni, h.id, h.underlay_ip, h.state, coalesce(h.name, '') "
	    "FROM networks n JOIN hosts h ON (n.all_hosts = 1 OR EXISTS "
	    "(SELECT 1 FROM network_members m WHERE m.network_id = n.id AND "
	    "m.host_id = h.id)) WHERE h.state NOT IN ('discovered', 'retired') "
	    "AND coalesce(h.underlay_ip, '') != '' ORDER BY n.vni, h.id");

	if (st == NULL)
		return -EIO;
	return db_collect(db, st, sizeof(**out), db_mesh_fill, "mesh members",
	    (void **)out, n);
}

int
db_network_vnis(struct db *db, uint32_t **out, size_t *n)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_NET_VNIS,
	    "SELECT vni FROM networks ORDER BY vni");
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (st == NULL)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			uint32_t *nv = reallocarray(*out, cap ? cap * 2 : 16,
			    sizeof(**out));

			if (nv == NULL) {
				sqlite3_reset(st);
				free(*out);
				*out = NULL;
				*n = 0;
				return -ENOMEM;
			}
			*out = nv;
			cap = cap ? cap * 2 : 16;
		}
		(*out)[(*n)++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : db_err(db, rc, "network vnis");
}

/* Replaces the explicit members of network net_id with the named hosts.
 * -ENOENT when a name is no host (nothing changes then). */
int
db_network_set_members(struct db *db, int64_t net_id, char names[][API_NAME_MAX + 1],
    size_t n, const char *actor, int64_t now)
{
	char detail[64];
	int changes, r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	if ((r = db_run(db, DB_S_NET_MEMBERS_CLEAR, "DELETE FROM network_members "
	    "WHERE network_id = ?", NULL, "i", net_id)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if ((r = db_run(db, DB_S_NET_MEMBERS_ADD, "INSERT INTO "
		    "network_members (network_id, host_id) SELECT ?, id FROM hosts "
		    "WHERE name = ?", &changes, "it", net_id, names[i])) < 0)
			goto out;
		if (changes != 1) {
			r = -ENOENT;
			goto out;
		}
	}
	snprintf(detail, sizeof(detail), "%zu explicit members", n);
	if ((r = db_run(db, DB_S_NET_ALL_OFF, "UPDATE networks SET all_hosts = 0, "
	    "updated_at = ? WHERE id = ?", NULL, "ii", now, net_id)) == 0)
		r = db_event_add(db, "network.members", detail, actor, detail,
		    now);
out:
	return db_tx_end(db, r);
}
