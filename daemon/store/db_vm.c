/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * VMs and the image store in the inventory.  A VM row is committed, with
 * its NICs and host, before hvd answers the create: the desired state is
 * never lost, whatever happens to the agent afterwards.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

#define VM_COLS "v.id, v.name, v.uuid, coalesce(v.host_id, 0), " \
    "coalesce(h.name, ''), v.desired_state, v.state, v.type, v.vcpus, " \
    "v.memory_mib, v.spec, coalesce(v.domid, -1), v.reason, " \
    "v.anti_affinity, v.created_at, v.updated_at"
#define VM_FROM " FROM vms v LEFT JOIN hosts h ON h.id = v.host_id "

static void
db_vm_fill(sqlite3_stmt *st, void *row)
{
	struct vm_row *v = row;

	memset(v, 0, sizeof(*v));
	v->id = sqlite3_column_int64(st, 0);
	db_text(v->name, sizeof(v->name), st, 1);
	db_text(v->uuid, sizeof(v->uuid), st, 2);
	v->host_id = sqlite3_column_int64(st, 3);
	db_text(v->host, sizeof(v->host), st, 4);
	db_text(v->desired, sizeof(v->desired), st, 5);
	db_text(v->state, sizeof(v->state), st, 6);
	db_text(v->type, sizeof(v->type), st, 7);
	v->vcpus = (unsigned)sqlite3_column_int64(st, 8);
	v->memory_mib = (uint64_t)sqlite3_column_int64(st, 9);
	db_text(v->spec, sizeof(v->spec), st, 10);
	v->domid = sqlite3_column_int64(st, 11);
	db_text(v->reason, sizeof(v->reason), st, 12);
	db_text(v->anti_affinity, sizeof(v->anti_affinity), st, 13);
	v->created_at = sqlite3_column_int64(st, 14);
	v->updated_at = sqlite3_column_int64(st, 15);
}

int
db_vm_list(struct db *db, int64_t host_id, struct vm_row **out, size_t *n)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_VM_LIST, "SELECT " VM_COLS VM_FROM
	    "WHERE ?1 = 0 OR v.host_id = ?1 ORDER BY v.name");

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, host_id);
	return db_collect(db, st, sizeof(**out), db_vm_fill, "vm list",
	    (void **)out, n);
}

/* By name or uuid. */
int
db_vm_get(struct db *db, const char *key, struct vm_row *out)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_VM_GET, "SELECT " VM_COLS VM_FROM
	    "WHERE v.name = ?1 OR v.uuid = ?1");

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	return db_one(db, st, db_vm_fill, out, "vm get");
}

int
db_vm_create(struct db *db, const struct vm_row *v, const struct vm_nic_row *nics,
    size_t nnics, const char *actor, int64_t now, int64_t *id)
{
	char detail[160];
	int changes, r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	if ((r = db_run(db, DB_S_VM_INSERT, "INSERT INTO vms (name, uuid, "
	    "host_id, desired_state, state, type, vcpus, memory_mib, spec, "
	    "anti_affinity, created_at, updated_at) VALUES (?, ?, ?, "
	    "'running', 'pending', ?, ?, ?, ?, ?, ?, ?)", NULL, "ttitiittii",
	    v->name, v->uuid, v->host_id, v->type, (int64_t)v->vcpus,
	    (int64_t)v->memory_mib, v->spec, v->anti_affinity, now, now)) < 0)
		goto out;
	*id = sqlite3_last_insert_rowid(db->sql);
	for (size_t i = 0; i < nnics; i++) {
		if ((r = db_run(db, DB_S_VM_NIC_INSERT, "INSERT INTO vm_nics "
		    "(vm_id, idx, network_id, mac, rate_kbps) SELECT ?, ?, id, "
		    "?, ? FROM networks WHERE vni = ?", &changes, "iitii", *id,
		    (int64_t)i, nics[i].mac, (int64_t)nics[i].rate_kbps,
		    (int64_t)nics[i].vni)) < 0)
			goto out;
		if (changes != 1) {
			r = -ENXIO;
			goto out;
		}
	}
	snprintf(detail, sizeof(detail), "placed on %s: %u vCPUs, %llu MiB",
	    v->host, v->vcpus, (unsigned long long)v->memory_mib);
	r = db_event_add(db, "vm.created", v->name, actor, detail, now);
out:
	return db_tx_end(db, r);
}

static void
db_nic_fill(sqlite3_stmt *st, void *row)
{
	struct vm_nic_row *n = row;

	memset(n, 0, sizeof(*n));
	n->vni = (uint32_t)sqlite3_column_int64(st, 0);
	db_text(n->mac, sizeof(n->mac), st, 1);
	db_text(n->host_ip, sizeof(n->host_ip), st, 2);
	n->host_id = sqlite3_column_int64(st, 3);
	n->vm_id = sqlite3_column_int64(st, 4);
	n->rate_kbps = (uint32_t)sqlite3_column_int64(st, 5);
}

/* vm_id > 0: that VM's NICs.  vm_id == 0: every NIC of a VM that runs (or
 * is being created) on a host with an underlay address, for the FDB. */
int
db_vm_nics(struct db *db, int64_t vm_id, struct vm_nic_row **out, size_t *n)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_VM_NICS, "SELECT n.vni, x.mac, "
	    "coalesce(h.underlay_ip, ''), coalesce(v.host_id, 0), v.id, "
	    "x.rate_kbps FROM "
	    "vm_nics x JOIN vms v ON v.id = x.vm_id JOIN networks n ON "
	    "n.id = x.network_id LEFT JOIN hosts h ON h.id = v.host_id WHERE "
	    "(?1 > 0 AND v.id = ?1) OR (?1 = 0 AND v.state IN ('creating', "
	    "'running') AND coalesce(h.underlay_ip, '') != '') "
	    "ORDER BY v.id, x.idx");

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, vm_id);
	return db_collect(db, st, sizeof(**out), db_nic_fill, "vm nics",
	    (void **)out, n);
}

int
db_vm_set_state(struct db *db, const struct vm_row *v, const char *state,
    int64_t domid, const char *reason, const char *actor, int64_t now)
{
	char kind[32], detail[300];
	int r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	snprintf(kind, sizeof(kind), "vm.%s", state);
	snprintf(detail, sizeof(detail), "on %s%s%s", v->host[0] ? v->host : "-",
	    reason && reason[0] ? ": " : "", reason ? reason : "");
	if ((r = db_run(db, DB_S_VM_STATE, "UPDATE vms SET state = ?, "
	    "domid = nullif(?, -1), reason = ?, updated_at = ? WHERE id = ?",
	    NULL, "titii", state, domid, reason ? reason : "", now,
	    v->id)) == 0)
		r = db_event_add(db, kind, v->name, actor, detail, now);
	return db_tx_end(db, r);
}

int
db_vm_set_desired(struct db *db, const struct vm_row *v, const char *desired,
    const char *actor, int64_t now)
{
	char kind[32];
	int r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	snprintf(kind, sizeof(kind), "vm.want-%s", desired);
	if ((r = db_run(db, DB_S_VM_DESIRED, "UPDATE vms SET desired_state = ?, "
	    "updated_at = ? WHERE id = ?", NULL, "tii", desired, now,
	    v->id)) == 0)
		r = db_event_add(db, kind, v->name, actor, "", now);
	return db_tx_end(db, r);
}

int
db_vm_delete(struct db *db, const struct vm_row *v, const char *actor,
    int64_t now)
{
	int r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	if ((r = db_run(db, DB_S_VM_DELETE, "DELETE FROM vms WHERE id = ?", NULL,
	    "i", v->id)) == 0)
		r = db_event_add(db, "vm.destroyed", v->name, actor, v->host, now);
	return db_tx_end(db, r);
}

static void
db_image_fill(sqlite3_stmt *st, void *row)
{
	struct image_row *im = row;

	memset(im, 0, sizeof(*im));
	db_text(im->name, sizeof(im->name), st, 0);
	db_text(im->kind, sizeof(im->kind), st, 1);
	db_text(im->sha256, sizeof(im->sha256), st, 2);
	im->size = (uint64_t)sqlite3_column_int64(st, 3);
	im->created_at = sqlite3_column_int64(st, 4);
}

int
db_image_list(struct db *db, struct image_row **out, size_t *n)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_IMAGE_LIST, "SELECT name, kind, "
	    "sha256, size, created_at FROM images ORDER BY name");

	if (st == NULL)
		return -EIO;
	return db_collect(db, st, sizeof(**out), db_image_fill, "image list",
	    (void **)out, n);
}

int
db_image_get(struct db *db, const char *name, struct image_row *out)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_IMAGE_GET, "SELECT name, kind, "
	    "sha256, size, created_at FROM images WHERE name = ?");

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return db_one(db, st, db_image_fill, out, "image get");
}

int
db_image_add(struct db *db, const struct image_row *im, const char *actor,
    int64_t now)
{
	char detail[120];
	int r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	snprintf(detail, sizeof(detail), "%s, %llu bytes, sha256 %.16s...",
	    im->kind, (unsigned long long)im->size, im->sha256);
	if ((r = db_run(db, DB_S_IMAGE_ADD, "INSERT INTO images (name, kind, "
	    "sha256, size, created_at) VALUES (?, ?, ?, ?, ?)", NULL, "tttii",
	    im->name, im->kind, im->sha256, (int64_t)im->size, now)) == 0)
		r = db_event_add(db, "image.added", im->name, actor, detail, now);
	return db_tx_end(db, r);
}

/* -EBUSY if a VM's spec names it; *last true if no other image has the
 * same content (the caller may then remove the file). */
int
db_image_delete(struct db *db, const struct image_row *im, const char *actor,
    int64_t now, bool *last)
{
	sqlite3_stmt *st;
	int r, rc;

	*last = false;
	if ((st = db_stmt(db, DB_S_IMAGE_USED, "SELECT count(*) FROM vms WHERE "
	    "json_extract(spec, '$.kernel') = ?1 OR json_extract(spec, "
	    "'$.initramfs') = ?1 OR json_extract(spec, '$.disk') = ?1")) == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, im->name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	r = rc == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0 ? -EBUSY :
	    rc == SQLITE_ROW ? 0 : db_err(db, rc, "image used");
	sqlite3_reset(st);
	if (r < 0)
		return r;
	if ((r = db_tx_begin(db)) < 0)
		return r;
	if ((r = db_run(db, DB_S_IMAGE_DELETE, "DELETE FROM images WHERE "
	    "name = ?", NULL, "t", im->name)) < 0 ||
	    (r = db_event_add(db, "image.removed", im->name, actor, "", now)) < 0)
		goto out;
	if ((st = db_stmt(db, DB_S_IMAGE_SHARED, "SELECT count(*) FROM images "
	    "WHERE sha256 = ?")) == NULL) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, im->sha256, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		*last = sqlite3_column_int64(st, 0) == 0;
	sqlite3_reset(st);
out:
	return db_tx_end(db, r);
}
