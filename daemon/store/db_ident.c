/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Host identity in the inventory: discovery, the boot that opens and the
 * overlay fetch that closes it, adoption, replacement, retirement, the
 * deletion of a retired record, and the operator's per-host configuration.
 *
 * Invariants: every state change writes its event in the same transaction;
 * an overlay with credentials is claimed at most once per boot (the UPDATE
 * that claims it checks ovl_served_at IS NULL); a fingerprint that was
 * replaced or retired is never discovered again, even once its record is
 * deleted (retired_fingerprints is not keyed to hosts).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

static int
db_host_by_fp(struct db *db, const char *fp, struct host_row *out)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_HOST_BY_FP,
	    "SELECT " HOST_COLS " FROM hosts WHERE fingerprint = ?");

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, fp, -1, SQLITE_STATIC);
	return db_host_one(db, st, out);
}

int
db_host_by_id(struct db *db, int64_t id, struct host_row *out)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_HOST_BY_ID,
	    "SELECT " HOST_COLS " FROM hosts WHERE id = ?");

	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	return db_host_one(db, st, out);
}

/* A name, a fingerprint or a boot MAC (aa:bb:cc:dd:ee:ff). */
int
db_host_find(struct db *db, const char *key, struct host_row *out)
{
	int r;

	if ((r = db_host_get(db, key, out)) != -ENOENT)
		return r;
	if ((r = db_host_by_fp(db, key, out)) != -ENOENT)
		return r;
	if (strlen(key) == 17)
		return db_host_by_mac(db, key, out);
	return -ENOENT;
}

int
db_fingerprint_retired(struct db *db, const char *fp, char *name,
    size_t namelen)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_FP_RETIRED,
	    "SELECT host_name FROM retired_fingerprints WHERE fingerprint = ?");
	int rc, r;

	if (st == NULL)
		return -EIO;
	sqlite3_bind_text(st, 1, fp, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (name)
			db_text(name, namelen, st, 0);
		r = 1;
	} else {
		r = rc == SQLITE_DONE ? 0 : db_err(db, rc, "retired get");
	}
	sqlite3_reset(st);
	return r;
}

static bool
state_in_service(const char *s)
{
	return strcmp(s, "adopted") == 0 || strcmp(s, "booting") == 0 ||
	    strcmp(s, "up") == 0 || strcmp(s, "down") == 0 ||
	    strcmp(s, "draining") == 0;
}

int
db_host_seen(struct db *db, const struct host_seen *s, int64_t now,
    struct host_row *out)
{
	char detail[200];
	int r;

	if ((r = db_fingerprint_retired(db, s->fingerprint, NULL, 0)) != 0)
		return r < 0 ? r : -EPERM;
	if ((r = db_tx_begin(db)) < 0)
		return r;
	r = db_host_by_fp(db, s->fingerprint, out);
	if (r == -ENOENT) {
		r = db_run(db, DB_S_HOST_SEEN_INSERT, "INSERT INTO hosts "
		    "(fingerprint, state, boot_mac, smbios_uuid, serial, product, "
		    "boot_ip, boot_at, created_at, updated_at) VALUES "
		    "(?, 'discovered', ?, ?, nullif(?, ''), nullif(?, ''), ?, ?, "
		    "?, ?)", NULL, "ttttttiii", s->fingerprint, s->mac, s->uuid,
		    s->serial, s->product, s->ip, now, now, now);
		snprintf(detail, sizeof(detail), "mac %s, uuid %s, from %s",
		    s->mac, s->uuid[0] ? s->uuid : "none", s->ip);
		if (r < 0 || (r = db_event_add(db, "host.discovered",
		    s->fingerprint, "boot", detail, now)) < 0)
			goto out;
	} else if (r == 0) {
		/* Booting again refreshes the same record; a stage-2 request
		 * of a host in service opens a new boot.  An overlay request
		 * of a host in service changes nothing here: its boot's
		 * address is the one the overlay must go to. */
		bool open = s->stage2 && state_in_service(out->state);

		if ((open || strcmp(out->state, "discovered") == 0) &&
		    (r = db_run(db, DB_S_HOST_SEEN_UPDATE, "UPDATE hosts SET "
		    "serial = coalesce(nullif(?, ''), serial), "
		    "product = coalesce(nullif(?, ''), product), boot_ip = ?, "
		    "boot_at = ?, updated_at = ? WHERE id = ?", NULL, "tttiii",
		    s->serial, s->product, s->ip, now, now, out->id)) < 0)
			goto out;
		if (open) {
			r = db_run(db, DB_S_HOST_BOOT_OPEN, "UPDATE hosts SET "
			    "state = 'booting', ovl_served_at = NULL WHERE id = ?",
			    NULL, "i", out->id);
			snprintf(detail, sizeof(detail), "stage 2 requested from "
			    "%s", s->ip);
			if (r < 0 || (r = db_event_add(db, "host.booting",
			    out->name, "boot", detail, now)) < 0)
				goto out;
		}
	} else {
		goto out;
	}
	r = db_host_by_fp(db, s->fingerprint, out);
out:
	return db_tx_end(db, r);
}

int
db_host_ovl_claim(struct db *db, const struct host_row *h, const char *ip,
    const char *pubhex, const uint8_t token_hash[AUTH_HASH_LEN], int64_t now)
{
	char detail[120];
	int changes = 0, r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	r = db_run(db, DB_S_HOST_OVL_CLAIM, "UPDATE hosts SET "
	    "agent_pubkey = ?, boot_token_hash = ?, boot_token_used_at = NULL, "
	    "ovl_served_at = ?, state = 'booting', updated_at = ? "
	    "WHERE id = ? AND ovl_served_at IS NULL AND boot_at IS NOT NULL",
	    &changes, "thiii", pubhex, token_hash, now, now, h->id);
	if (r < 0)
		goto out;
	if (changes != 1) {
		r = -EALREADY;
		goto out;
	}
	snprintf(detail, sizeof(detail), "overlay with fresh credentials served "
	    "to %s", ip);
	r = db_event_add(db, "host.overlay", h->name, "boot", detail, now);
out:
	return db_tx_end(db, r);
}

static int
db_members_set(struct db *db, int64_t host_id, const uint32_t *vnis,
    size_t nvnis)
{
	int changes, r;

	if ((r = db_run(db, DB_S_MEMBER_CLEAR, "DELETE FROM network_members "
	    "WHERE host_id = ?", NULL, "i", host_id)) < 0)
		return r;
	for (size_t i = 0; i < nvnis; i++) {
		if ((r = db_run(db, DB_S_MEMBER_ADD, "INSERT INTO network_members "
		    "(network_id, host_id) SELECT id, ? FROM networks WHERE "
		    "vni = ?", &changes, "ii", host_id, (int64_t)vnis[i])) < 0)
			return r;
		if (changes != 1)
			return -ENXIO;	/* no such VNI */
	}
	return 0;
}

static int
db_mounts_json(const struct api_host_spec *hs, char **out)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < hs->nmounts; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}",
		    "source", hs->mounts[i].source, "path", hs->mounts[i].path,
		    "fstype", hs->mounts[i].fstype, "options",
		    hs->mounts[i].options));
	*out = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	return *out ? 0 : -ENOMEM;
}

int
db_host_adopt(struct db *db, const struct host_row *h,
    const struct api_host_spec *hs, const char *underlay_ip,
    const char *actor, int64_t now, struct host_row *out)
{
	char detail[200], *mounts = NULL;
	int changes = 0, r;

	if (strcmp(h->state, "discovered") != 0)
		return -EBUSY;
	if ((r = db_mounts_json(hs, &mounts)) < 0)
		return r;
	if ((r = db_tx_begin(db)) < 0)
		goto out;
	/* The underlay address must be unique: one held by another host
	 * stays with it, and this host gets its own at its first session. */
	r = db_run(db, DB_S_HOST_ADOPT, "UPDATE hosts SET name = ?, "
	    "state = 'adopted', labels = ?, ssh_keys = ?, mounts = ?, "
	    "underlay_ip = CASE WHEN ? IS NULL OR EXISTS (SELECT 1 FROM hosts "
	    "h2 WHERE h2.underlay_ip = ? AND h2.id != hosts.id) THEN underlay_ip "
	    "ELSE ? END, updated_at = ? WHERE id = ? AND state = 'discovered'",
	    &changes, "tttttttii", hs->name, hs->labels, hs->ssh_keys, mounts,
	    underlay_ip, underlay_ip, underlay_ip, now, h->id);
	if (r < 0)
		goto out_tx;
	if (changes != 1) {
		r = -EBUSY;
		goto out_tx;
	}
	if ((r = db_members_set(db, h->id, hs->vnis, hs->nvnis)) < 0)
		goto out_tx;
	snprintf(detail, sizeof(detail), "fingerprint %.16s..., mac %s, by %s",
	    h->fingerprint, h->boot_mac, actor);
	if ((r = db_event_add(db, "host.adopted", hs->name, actor, detail,
	    now)) < 0)
		goto out_tx;
	r = db_host_by_id(db, h->id, out);
out_tx:
	r = db_tx_end(db, r);
out:
	free(mounts);
	return r;
}

static int
db_fp_retire(struct db *db, const struct host_row *h, const char *cause,
    int64_t now)
{
	return db_run(db, DB_S_FP_RETIRE, "INSERT OR REPLACE INTO "
	    "retired_fingerprints (fingerprint, host_name, boot_mac, "
	    "smbios_uuid, retired_at, cause) VALUES (?, ?, ?, ?, ?, ?)", NULL,
	    "ttttit", h->fingerprint, h->name, h->boot_mac, h->uuid, now, cause);
}

/*
 * Removes host id's row if it is still in state and nothing depends on it:
 * no VM names it as its host, no unfinished migration has it at either
 * end.  Both callers share the one statement (its slot is DB_S_HOST_DELETE).
 * What else names the host follows the schema's foreign keys: its explicit
 * network memberships go (CASCADE), finished migrations keep their record
 * with the host unset (SET NULL).  *changes: 1 if the row went.
 */
static int
db_host_row_delete(struct db *db, int64_t id, const char *state, int *changes)
{
	return db_run(db, DB_S_HOST_DELETE, "DELETE FROM hosts WHERE id = ?1 "
	    "AND state = ?2 AND NOT EXISTS (SELECT 1 FROM vms WHERE "
	    "host_id = ?1) AND NOT EXISTS (SELECT 1 FROM migrations WHERE "
	    "ended_at IS NULL AND ?1 IN (source_host_id, target_host_id))",
	    changes, "it", id, state);
}

int
db_host_replace(struct db *db, const struct host_row *h,
    const struct host_row *hw, const char *actor, int64_t now,
    struct host_row *out)
{
	char cause[160];
	int changes = 0, r;

	if (strcmp(hw->state, "discovered") != 0 || hw->id == h->id)
		return -EBUSY;
	if ((r = db_tx_begin(db)) < 0)
		return r;
	snprintf(cause, sizeof(cause), "replaced by %.16s... (mac %s) by %s",
	    hw->fingerprint, hw->boot_mac, actor);
	/* The new hardware's discovered record is folded into the identity:
	 * its facts move over, the record itself goes. */
	if ((r = db_fp_retire(db, h, cause, now)) < 0 ||
	    (r = db_host_row_delete(db, hw->id, "discovered", &changes)) < 0)
		goto out;
	if (changes != 1) {
		r = -EBUSY;
		goto out;
	}
	r = db_run(db, DB_S_HOST_REBIND, "UPDATE hosts SET fingerprint = ?, "
	    "boot_mac = ?, smbios_uuid = ?, serial = nullif(?, ''), "
	    "product = nullif(?, ''), boot_ip = nullif(?, ''), "
	    "boot_at = nullif(?, 0), ovl_served_at = NULL, agent_pubkey = NULL, "
	    "boot_token_hash = NULL, boot_token_used_at = NULL, boot_id = NULL, "
	    "state = 'adopted', updated_at = ? WHERE id = ?", NULL, "ttttttiii",
	    hw->fingerprint, hw->boot_mac, hw->uuid, hw->serial, hw->product,
	    hw->boot_ip, hw->boot_at, now, h->id);
	if (r < 0)
		goto out;
	/* Both MACs forget their leases: the new one then gets the
	 * identity's underlay address, the old one nothing of it. */
	if ((r = db_run(db, DB_S_LEASE_FORGET, "DELETE FROM dhcp_leases WHERE "
	    "mac IN (?, ?)", NULL, "tt", h->boot_mac, hw->boot_mac)) < 0 ||
	    (r = db_event_add(db, "host.replaced", h->name, actor, cause,
	    now)) < 0)
		goto out;
	r = db_host_by_id(db, h->id, out);
out:
	return db_tx_end(db, r);
}

int
db_host_retire(struct db *db, const struct host_row *h, const char *actor,
    int64_t now)
{
	char cause[96];
	int r;

	if (strcmp(h->state, "retired") == 0)
		return -EALREADY;
	if ((r = db_tx_begin(db)) < 0)
		return r;
	snprintf(cause, sizeof(cause), "retired by %s", actor);
	if ((r = db_fp_retire(db, h, cause, now)) == 0 &&
	    (r = db_run(db, DB_S_HOST_RETIRE, "UPDATE hosts SET "
	    "state = 'retired', agent_pubkey = NULL, boot_token_hash = NULL, "
	    "ovl_served_at = NULL, updated_at = ? WHERE id = ?", NULL, "ii",
	    now, h->id)) == 0)
		r = db_event_add(db, "host.retired", h->name[0] ? h->name :
		    h->fingerprint, actor, cause, now);
	return db_tx_end(db, r);
}

int
db_host_delete(struct db *db, const struct host_row *h, const char *actor,
    int64_t now)
{
	const char *subject = h->name[0] ? h->name : h->fingerprint;
	char cause[96], detail[200];
	int changes = 0, r;

	if (strcmp(h->state, "retired") != 0)
		return -EBUSY;
	if ((r = db_tx_begin(db)) < 0)
		return r;
	/* The fingerprint outlives the record: the machine stays refused at
	 * boot.  Retirement wrote it; a record retired before that table
	 * existed gets it now. */
	snprintf(cause, sizeof(cause), "deleted by %s", actor);
	if ((r = db_fingerprint_retired(db, h->fingerprint, NULL, 0)) == 0)
		r = db_fp_retire(db, h, cause, now);
	if (r < 0 || (r = db_host_row_delete(db, h->id, "retired",
	    &changes)) < 0)
		goto out;
	if (changes != 1) {
		r = -EBUSY;
		goto out;
	}
	snprintf(detail, sizeof(detail), "fingerprint %.16s..., mac %s, "
	    "underlay %s, by %s; the fingerprint stays retired", h->fingerprint,
	    h->boot_mac[0] ? h->boot_mac : "none",
	    h->underlay_ip[0] ? h->underlay_ip : "none", actor);
	r = db_event_add(db, "host.deleted", subject, actor, detail, now);
out:
	return db_tx_end(db, r);
}

int
db_host_edit(struct db *db, const struct host_row *h,
    const struct api_host_spec *hs, const char *actor, int64_t now)
{
	char detail[128], *mounts = NULL;
	int r;

	if ((r = db_tx_begin(db)) < 0)
		return r;
	if ((hs->present & API_HS_LABELS) && (r = db_run(db,
	    DB_S_HOST_EDIT_LABELS, "UPDATE hosts SET labels = ?, updated_at = ? "
	    "WHERE id = ?", NULL, "tii", hs->labels, now, h->id)) < 0)
		goto out;
	if ((hs->present & API_HS_SSH_KEYS) && (r = db_run(db,
	    DB_S_HOST_EDIT_KEYS, "UPDATE hosts SET ssh_keys = ?, updated_at = ? "
	    "WHERE id = ?", NULL, "tii", hs->ssh_keys, now, h->id)) < 0)
		goto out;
	if (hs->present & API_HS_MOUNTS) {
		if ((r = db_mounts_json(hs, &mounts)) < 0 || (r = db_run(db,
		    DB_S_HOST_EDIT_MOUNTS, "UPDATE hosts SET mounts = ?, "
		    "updated_at = ? WHERE id = ?", NULL, "tii", mounts, now,
		    h->id)) < 0)
			goto out;
	}
	if ((hs->present & API_HS_NETWORKS) &&
	    (r = db_members_set(db, h->id, hs->vnis, hs->nvnis)) < 0)
		goto out;
	snprintf(detail, sizeof(detail), "changed%s%s%s%s",
	    hs->present & API_HS_NETWORKS ? " networks" : "",
	    hs->present & API_HS_LABELS ? " labels" : "",
	    hs->present & API_HS_SSH_KEYS ? " ssh_keys" : "",
	    hs->present & API_HS_MOUNTS ? " mounts" : "");
	r = db_event_add(db, "host.edited", h->name, actor, detail, now);
out:
	free(mounts);
	return db_tx_end(db, r);
}

int
db_host_config(struct db *db, int64_t id, struct host_config *c)
{
	sqlite3_stmt *st = db_stmt(db, DB_S_HOST_CONFIG,
	    "SELECT labels, mounts, ssh_keys, facts, macs FROM hosts "
	    "WHERE id = ?");
	char **dst[] = { &c->labels, &c->mounts, &c->ssh_keys, &c->facts,
	    &c->macs };
	int rc, r = 0;

	memset(c, 0, sizeof(*c));
	if (st == NULL)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? -ENOENT : db_err(db, rc, "host config");
	}
	for (int i = 0; i < 5; i++) {
		const unsigned char *t = sqlite3_column_text(st, i);

		if ((*dst[i] = strdup(t ? (const char *)t : "")) == NULL)
			r = -ENOMEM;
	}
	sqlite3_reset(st);
	if (r == 0 && (st = db_stmt(db, DB_S_HOST_VNIS, "SELECT n.vni FROM "
	    "network_members m JOIN networks n ON n.id = m.network_id WHERE "
	    "m.host_id = ? ORDER BY n.vni")) == NULL)
		r = -EIO;
	if (r == 0) {
		sqlite3_bind_int64(st, 1, id);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW &&
		    c->nvnis < API_HOST_NETS_MAX)
			c->vnis[c->nvnis++] = (uint32_t)sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	if (r < 0)
		host_config_free(c);
	return r;
}

void
host_config_free(struct host_config *c)
{
	free(c->labels);
	free(c->mounts);
	free(c->ssh_keys);
	free(c->facts);
	free(c->macs);
	memset(c, 0, sizeof(*c));
}

int
db_host_set_underlay(struct db *db, int64_t id, const char *ip)
{
	return db_run(db, DB_S_HOST_UNDERLAY, "UPDATE hosts SET underlay_ip = ? "
	    "WHERE id = ? AND underlay_ip IS NULL AND NOT EXISTS (SELECT 1 "
	    "FROM hosts h2 WHERE h2.underlay_ip = ?)", NULL, "tit", ip, id, ip);
}

int
db_host_set_facts(struct db *db, int64_t id, const char *facts,
    const char *macs, int64_t now)
{
	return db_run(db, DB_S_HOST_FACTS, "UPDATE hosts SET facts = ?, "
	    "macs = coalesce(?, macs), updated_at = ? WHERE id = ?", NULL,
	    "ttii", facts, macs, now, id);
}
