/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The VXLAN mesh as the inventory wants it (DESIGN section 2, step 6): for
 * each member of each network, the remote VTEPs of its flood list.  hvd is
 * a member of every network (the anchor), and only hosts that are up are
 * flooded to: a down host leaves the others' lists.
 *
 * The result is the mesh.json document lib/mesh.h defines: the overlay
 * carries it, and the agent link pushes it as `mesh.apply`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sodium.h>

#include "fleet.h"
#include "mesh.h"

#define MESH_DOC_HASH	32

/* A document's identity: BLAKE2b of its canonical text. */
static int
mesh_doc_hash(const json_t *doc, uint8_t out[MESH_DOC_HASH])
{
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);

	if (text == NULL)
		return -ENOMEM;
	crypto_generichash(out, MESH_DOC_HASH, (const unsigned char *)text,
	    strlen(text), NULL, 0);
	free(text);
	return 0;
}

/*
 * A VXLAN device has one underlay family, so a member meets only the VTEPs
 * of its own: an IPv6 host floods to the other IPv6 members, never to an
 * IPv4 address it cannot reach (addresses here are text, and only IPv6
 * text holds a colon).
 */
static bool
mesh_same_family(const char *a, const char *b)
{
	return (strchr(a, ':') != NULL) == (strchr(b, ':') != NULL);
}

/* The FDB follows the VMs: each NIC of a VM running on another member
 * that is up (its VTEP is in the flood list) gets a unicast entry. */
static void
mesh_doc_macs(struct hvd *hvd, int64_t host_id, const char *local,
    json_t *nets)
{
	struct vm_nic_row *nics = NULL;
	size_t n = 0, i, j;
	json_t *net, *v;

	if (db_vm_nics(hvd->db, 0, &nics, &n) < 0)
		return;
	json_array_foreach(nets, i, net) {
		json_t *vteps = json_object_get(net, "vteps");
		json_t *macs = json_object_get(net, "macs");
		json_int_t vni = json_integer_value(json_object_get(net, "vni"));

		for (size_t k = 0; k < n; k++) {
			bool up = false;

			if ((json_int_t)nics[k].vni != vni ||
			    nics[k].host_id == host_id ||
			    strcmp(nics[k].host_ip, local) == 0)
				continue;
			json_array_foreach(vteps, j, v)
				if (strcmp(json_string_value(v), nics[k].host_ip) == 0)
					up = true;
			if (up)
				json_array_append_new(macs, json_pack("{s:s, s:s}",
				    "mac", nics[k].mac, "vtep", nics[k].host_ip));
		}
	}
	free(nics);
}

/* Builds the document for host_id (0: the anchor) at local. */
static json_t *
mesh_doc(struct hvd *hvd, int64_t host_id, const char *local,
    const struct mesh_member *m, size_t n)
{
	char abuf[ADDR_STRLEN];
	const char *anchor = addr_anchor(hvd, abuf, sizeof(abuf));
	json_t *nets = json_array();
	uint32_t *vnis = NULL;
	size_t nvnis = 0;

	if (host_id == 0 && db_network_vnis(hvd->db, &vnis, &nvnis) < 0) {
		json_decref(nets);
		return NULL;
	}
	for (size_t i = 0; i < n;) {
		uint32_t vni = m[i].vni;
		bool member = host_id == 0;
		size_t j;
		json_t *vteps = json_array();

		for (j = i; j < n && m[j].vni == vni; j++) {
			if (m[j].host_id == host_id) {
				member = true;
				continue;
			}
			if (strcmp(m[j].state, "up") == 0 &&
			    strcmp(m[j].ip, local) != 0 &&
			    mesh_same_family(m[j].ip, local))
				json_array_append_new(vteps, json_string(m[j].ip));
		}
		if (member && host_id != 0 && anchor && strcmp(anchor, local) != 0 &&
		    mesh_same_family(anchor, local))
			json_array_append_new(vteps, json_string(anchor));
		if (member)
			json_array_append_new(nets, json_pack("{s:I, s:o, s:[]}",
			    "vni", (json_int_t)vni, "vteps", vteps, "macs"));
		else
			json_decref(vteps);
		i = j;
	}
	/* The anchor has every network, members or not. */
	for (size_t k = 0; k < nvnis; k++) {
		bool have = false;
		size_t idx;
		json_t *e;

		json_array_foreach(nets, idx, e)
			if (json_integer_value(json_object_get(e, "vni")) ==
			    (json_int_t)vnis[k])
				have = true;
		if (!have)
			json_array_append_new(nets, json_pack("{s:I, s:[], s:[]}",
			    "vni", (json_int_t)vnis[k], "vteps", "macs"));
	}
	free(vnis);
	mesh_doc_macs(hvd, host_id, local, nets);
	return json_pack("{s:i, s:s, s:s, s:o}", "version", 1, "local", local,
	    "underlay", "", "networks", nets);
}

char *
mesh_host_json(struct hvd *hvd, const struct host_row *h)
{
	struct mesh_member *m = NULL;
	char local[sizeof(h->underlay_ip)];
	size_t n = 0;
	json_t *doc;
	char *text;

	if (db_host_underlay(hvd->db, h, hvd->conf->dhcp_mode == DHCP_FULL,
	    local, sizeof(local)) < 0 || db_mesh_members(hvd->db, &m, &n) < 0)
		return NULL;
	doc = mesh_doc(hvd, h->id, local, m, n);
	free(m);
	text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	return text;
}

/*
 * Pushes.  A change marks the mesh dirty; one pass after the current event
 * recomputes every member's document and sends it to each connected agent
 * (`mesh.apply`), so a burst of changes costs one pass.  Each member's
 * last push and its answer are kept for `hvctl net show`.
 */
struct mesh_sync {
	int64_t host_id;
	uint64_t pushed, applied;	/* pass numbers */
	uint64_t seen;			/* the last pass that looked at it */
	uint8_t sent[MESH_DOC_HASH];	/* the document last pushed... */
	uint64_t sent_session;		/* ...to this session (0: none) */
	char error[128];		/* the agent's last error, "" if none */
	int64_t at;			/* wall time of the last answer */
};

static struct event *mesh_ev;
static struct hvd *mesh_hvd;
static struct mesh_sync *mesh_syncs;
static size_t mesh_nsyncs, mesh_capsyncs;

static struct mesh_sync *
mesh_sync_of(int64_t host_id)
{
	struct mesh_sync *tmp;

	for (size_t i = 0; i < mesh_nsyncs; i++)
		if (mesh_syncs[i].host_id == host_id)
			return &mesh_syncs[i];
	if (mesh_nsyncs == mesh_capsyncs) {
		size_t cap = mesh_capsyncs ? mesh_capsyncs * 2 : 64;

		if ((tmp = reallocarray(mesh_syncs, cap, sizeof(*tmp))) == NULL)
			return NULL;
		mesh_syncs = tmp;
		mesh_capsyncs = cap;
	}
	memset(&mesh_syncs[mesh_nsyncs], 0, sizeof(*mesh_syncs));
	mesh_syncs[mesh_nsyncs].host_id = host_id;
	return &mesh_syncs[mesh_nsyncs++];
}

struct mesh_push {
	int64_t host_id;
	uint64_t pass;
};

static void
mesh_push_done(void *arg, json_t *result, json_t *error)
{
	struct mesh_push *p = arg;
	struct mesh_sync *s = mesh_sync_of(p->host_id);

	if (s) {
		s->at = hvd_now_wall();
		if (result) {
			if (p->pass > s->applied)
				s->applied = p->pass;
			s->error[0] = '\0';
		} else {
			snprintf(s->error, sizeof(s->error), "%s: %s",
			    json_string_value(json_object_get(error, "code")) ?: "?",
			    json_string_value(json_object_get(error, "message")) ?: "");
		}
	}
	free(p);
}

static uint64_t mesh_pass;		/* numbers each push */

static struct {
	uint64_t pushed, applied;
	uint8_t sent[MESH_DOC_HASH];	/* the document last pushed */
	char result[160];		/* stats or error of the last apply */
	int64_t at;
} mesh_anchor_sync;

static void
mesh_anchor_done(void *arg, int result, const char *detail)
{
	uint64_t pass = (uint64_t)(uintptr_t)arg;

	mesh_anchor_sync.at = hvd_now_wall();
	snprintf(mesh_anchor_sync.result, sizeof(mesh_anchor_sync.result),
	    "%s", detail ? detail : "");
	if (result == 0) {
		mesh_anchor_sync.applied = pass;
		log_debug("mesh: anchor applied: %s", detail ? detail : "");
	} else {
		log_warnx("mesh: anchor: %s", detail ? detail : strerror(-result));
	}
}

static void
mesh_anchor_push(struct hvd *hvd, json_t *doc)
{
	struct mesh_state *st = NULL;
	char err[160];
	int r;

	uint8_t h[MESH_DOC_HASH];

	if (!hvd->conf->mesh_anchor)
		return;
	/* Unchanged and applied: nothing to do. */
	if (mesh_doc_hash(doc, h) == 0 && mesh_anchor_sync.pushed != 0 &&
	    mesh_anchor_sync.applied == mesh_anchor_sync.pushed &&
	    sodium_memcmp(h, mesh_anchor_sync.sent, sizeof(h)) == 0)
		return;
	memcpy(mesh_anchor_sync.sent, h, sizeof(h));
	if (mesh_state_from_json(doc, &st, err, sizeof(err)) < 0) {
		log_warnx("mesh: anchor state: %s", err);
		return;
	}
	mesh_anchor_sync.pushed = mesh_pass;
	r = mesh_priv_apply(st, mesh_anchor_done, (void *)(uintptr_t)mesh_pass);
	if (r < 0 && r != -EPERM)
		log_warnx("mesh: anchor: cannot reach the helper (%s)",
		    strerror(-r));
	mesh_state_free(st);
}

json_t *
mesh_anchor_json(struct hvd *hvd)
{
	char abuf[ADDR_STRLEN];

	if (!hvd->conf->mesh_anchor)
		return json_pack("{s:s}", "state", "off");
	return json_pack("{s:s, s:s?, s:s, s:I}", "state",
	    mesh_anchor_sync.pushed == 0 ? "pending" :
	    mesh_anchor_sync.applied == mesh_anchor_sync.pushed ? "synced" :
	    "error", "ip", addr_anchor(hvd, abuf, sizeof(abuf)), "result",
	    mesh_anchor_sync.result, "at", (json_int_t)mesh_anchor_sync.at);
}

/* The anchor: hvd's own devices, through the privileged helper. */
static void
mesh_anchor_apply(struct hvd *hvd, const struct mesh_member *m, size_t n)
{
	char abuf[ADDR_STRLEN];
	const char *local = addr_anchor(hvd, abuf, sizeof(abuf));
	json_t *doc;

	if (local == NULL)
		return;
	if ((doc = mesh_doc(hvd, 0, local, m, n)) == NULL)
		return;
	mesh_anchor_push(hvd, doc);
	json_decref(doc);
}

static void
mesh_push_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hvd *hvd = arg;
	struct mesh_member *m = NULL;
	size_t n = 0;

	(void)fd;
	(void)what;
	if (db_mesh_members(hvd->db, &m, &n) < 0) {
		log_warnx("mesh: cannot read the members; will retry on the next "
		    "change");
		return;
	}
	mesh_pass++;
	for (size_t i = 0; i < n; i++) {
		struct fleet_host *fh = fleet_by_id(m[i].host_id);
		struct mesh_sync *s;
		struct mesh_push *p;
		json_t *doc;

		uint8_t h[MESH_DOC_HASH];

		/* Once per host: members are sorted by VNI, not host. */
		if (fh == NULL || fleet_session(fh) == NULL ||
		    (s = mesh_sync_of(m[i].host_id)) == NULL ||
		    s->seen == mesh_pass)
			continue;
		s->seen = mesh_pass;
		if ((doc = mesh_doc(hvd, m[i].host_id, m[i].ip, m, n)) == NULL)
			continue;
		/* The same document, applied by the same session: not sent. */
		if (mesh_doc_hash(doc, h) == 0 &&
		    s->sent_session == fleet_session_serial(fh) &&
		    s->applied == s->pushed && s->error[0] == '\0' &&
		    sodium_memcmp(h, s->sent, sizeof(h)) == 0) {
			json_decref(doc);
			continue;
		}
		if ((p = calloc(1, sizeof(*p))) == NULL) {
			json_decref(doc);
			continue;
		}
		s->pushed = mesh_pass;
		memcpy(s->sent, h, sizeof(h));
		s->sent_session = fleet_session_serial(fh);
		p->host_id = m[i].host_id;
		p->pass = mesh_pass;
		if (fleet_request(fh, "mesh.apply", doc, mesh_push_done, p) < 0) {
			snprintf(s->error, sizeof(s->error), "could not send");
			free(p);
		}
	}
	mesh_anchor_apply(hvd, m, n);
	free(m);
}

/*
 * The one way a change reaches the mesh: every commit of the inventory
 * (store/db.c's hook) schedules one pass after the current event, so a
 * burst of changes costs one pass, and a pass sends only documents that
 * changed.  Runs inside SQLite: it only takes note.
 */
static void
mesh_committed(void *arg)
{
	(void)arg;
	if (mesh_ev)
		event_active(mesh_ev, EV_TIMEOUT, 0);
}

/* {"state": "synced"|"pending"|"error"|"offline", ...} for one member. */
json_t *
mesh_sync_json(int64_t host_id)
{
	struct fleet_host *fh = fleet_by_id(host_id);
	struct mesh_sync *s = NULL;

	for (size_t i = 0; i < mesh_nsyncs; i++)
		if (mesh_syncs[i].host_id == host_id)
			s = &mesh_syncs[i];
	if (fh == NULL || fleet_session(fh) == NULL)
		return json_pack("{s:s}", "state", "offline");
	if (s == NULL || s->pushed == 0)
		return json_pack("{s:s}", "state", "pending");
	if (s->error[0])
		return json_pack("{s:s, s:s, s:I}", "state", "error", "error",
		    s->error, "at", (json_int_t)s->at);
	return json_pack("{s:s, s:I}", "state", s->applied == s->pushed ?
	    "synced" : "pending", "at", (json_int_t)s->at);
}

int
mesh_init(struct hvd *hvd)
{
	mesh_hvd = hvd;
	if ((mesh_ev = event_new(hvd->base, -1, 0, mesh_push_cb, hvd)) == NULL)
		return -ENOMEM;
	if (db_on_commit(hvd->db, mesh_committed, NULL) < 0)
		return -ENOSPC;
	/* The anchor's devices follow the inventory from the start. */
	event_active(mesh_ev, EV_TIMEOUT, 0);
	return 0;
}

void
mesh_shutdown(void)
{
	if (mesh_hvd)
		db_off_commit(mesh_hvd->db, mesh_committed, NULL);
	if (mesh_ev)
		event_free(mesh_ev);
	mesh_ev = NULL;
	free(mesh_syncs);
	mesh_syncs = NULL;
	mesh_nsyncs = mesh_capsyncs = 0;
	mesh_hvd = NULL;
}
