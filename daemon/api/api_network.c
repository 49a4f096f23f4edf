/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * /api/v1/networks: CRUD on VXLAN networks.
 *
 * The list is served from a cached, refcounted JSON body rebuilt only when
 * the database generation moves, so a fleet of readers costs no queries.
 * One network's members include those the mesh cannot place yet (no
 * underlay address), with "vtep": null and the reason.
 *
 * Invariant: a 2xx on a change is sent only after the change has committed
 * (synchronous=FULL), so nothing acknowledged is ever lost.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "rest.h"

static struct blob *api_network_cache;
static uint64_t api_network_cache_gen;

static json_t *
api_network_json(const struct network *n)
{
	return json_pack("{s:s, s:I, s:s, s:b, s:o, s:o}",
	    "name", n->name, "vni", (json_int_t)n->vni,
	    "description", n->description, "all_hosts", n->all_hosts,
	    "created_at", api_time_json(n->created_at),
	    "updated_at", api_time_json(n->updated_at));
}

static void
api_network_db_error(struct hvd *hvd, struct http_reply *rep, int r,
    const char *key, const struct network *n)
{
	const char *col = db_conflict(hvd->db);

	switch (r) {
	case -ENOENT:
		http_error(rep, MHD_HTTP_NOT_FOUND, "no network '%s'", key);
		break;
	case -EEXIST:
		if (strcmp(col, "networks.vni") == 0)
			http_error(rep, MHD_HTTP_CONFLICT, "vni %u is already used "
			    "by another network", n->vni);
		else
			http_error(rep, MHD_HTTP_CONFLICT, "a network named '%s' "
			    "already exists", n->name);
		break;
	case -EBUSY:
		http_error(rep, MHD_HTTP_CONFLICT, "network '%s' is still used by "
		    "VM NICs", key);
		break;
	case -EAGAIN:
		http_error(rep, MHD_HTTP_SERVICE_UNAVAILABLE, "database busy; retry");
		break;
	default:
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
		break;
	}
}

/* Every listed member must be a host: 400 naming the first that is not. */
static bool
api_members_exist(struct hvd *hvd, const struct api_network *in,
    struct http_reply *rep)
{
	struct host_row h;

	for (size_t i = 0; i < in->nmembers; i++)
		if (db_host_get(hvd->db, in->members[i], &h) < 0) {
			http_error(rep, MHD_HTTP_BAD_REQUEST, "members: no host "
			    "named '%s'", in->members[i]);
			return false;
		}
	return true;
}

/*
 * Why member h has no underlay address.  Adoption gives a host the address
 * db_host_underlay() names (its DHCP lease in full mode, else the address
 * it booted from) and its agent's first session the session's source
 * address (session.c), each only if no other host has it as its underlay:
 * addresses are unique, so a second host from the same address waits.
 */
static void
api_member_why(struct hvd *hvd, const struct host_row *h,
    const struct host_row *all, size_t n, char *why, size_t len)
{
	struct fleet_host *fh = fleet_by_id(h->id);
	char ip[sizeof(h->underlay_ip)];
	const struct host_row *holder = NULL;

	if (db_host_underlay(hvd->db, h, hvd->conf->dhcp_mode == DHCP_FULL, ip,
	    sizeof(ip)) < 0) {
		snprintf(why, len, fh && fleet_session(fh) ? "no underlay "
		    "address: its agent is connected, but from an address "
		    "another host already has as its underlay address (each "
		    "host needs its own)" : "no underlay address yet: the host "
		    "never booted from hvd, so hvd takes the address its "
		    "agent's first session comes from, and its agent has not "
		    "connected");
		return;
	}
	for (size_t i = 0; i < n && holder == NULL; i++)
		if (all[i].id != h->id && strcmp(all[i].underlay_ip, ip) == 0)
			holder = &all[i];
	if (holder)
		snprintf(why, len, "no underlay address: %s, %s, is already the "
		    "underlay address of host %s (each host needs its own)", ip,
		    strcmp(ip, h->boot_ip) == 0 ? "the address it booted from" :
		    "its DHCP lease", holder->name[0] ? holder->name :
		    holder->fingerprint);
	else
		snprintf(why, len, "no underlay address yet: %s is free now, and "
		    "the host gets its address when its agent next connects", ip);
}

/*
 * The members the mesh leaves out for want of an underlay address
 * (db_mesh_members() lists only hosts that have one), each with the
 * reason, so that net show names every member.  Added to arr with
 * "vtep": null and "why".
 */
static void
api_network_unplaced_json(struct hvd *hvd, const struct network *n,
    json_t *arr)
{
	struct host_row *rows = NULL;
	struct host_config c;
	char why[256];
	size_t cnt = 0;

	if (db_host_list(hvd->db, &rows, &cnt) < 0)
		return;
	for (size_t i = 0; i < cnt; i++) {
		const struct host_row *h = &rows[i];
		bool member = n->all_hosts;

		if (h->underlay_ip[0] || h->name[0] == '\0' ||
		    strcmp(h->state, "discovered") == 0 ||
		    strcmp(h->state, "retired") == 0)
			continue;
		if (!member && db_host_config(hvd->db, h->id, &c) == 0) {
			for (size_t k = 0; k < c.nvnis; k++)
				member |= c.vnis[k] == n->vni;
			host_config_free(&c);
		}
		if (!member)
			continue;
		api_member_why(hvd, h, rows, cnt, why, sizeof(why));
		json_array_append_new(arr, json_pack("{s:s, s:n, s:s, s:{s:s}, "
		    "s:s}", "host", h->name, "vtep", "state", h->state, "sync",
		    "state", "none", "why", why));
	}
	free(rows);
}

/* The members of n with their VTEP address and sync state, and the anchor. */
static void
api_network_members_json(struct hvd *hvd, const struct network *n, json_t *j)
{
	struct mesh_member *m = NULL;
	size_t cnt = 0;
	json_t *arr = json_array();

	if (db_mesh_members(hvd->db, &m, &cnt) == 0) {
		for (size_t i = 0; i < cnt; i++) {
			if (m[i].vni != n->vni)
				continue;
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o}",
			    "host", m[i].name, "vtep", m[i].ip, "state", m[i].state,
			    "sync", mesh_sync_json(m[i].host_id)));
		}
		free(m);
	}
	api_network_unplaced_json(hvd, n, arr);
	json_object_set_new(j, "members", arr);
	json_object_set_new(j, "anchor", mesh_anchor_json(hvd));
}

void
api_networks_list(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	struct network *rows = NULL;
	json_t *arr, *doc;
	char *text;
	size_t n = 0;

	(void)req;
	if (api_network_cache == NULL ||
	    api_network_cache_gen != db_generation(hvd->db)) {
		if (db_network_list(hvd->db, &rows, &n) < 0) {
			http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR,
			    "database error while listing networks");
			return;
		}
		arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, api_network_json(&rows[i]));
		free(rows);
		doc = json_pack("{s:o}", "networks", arr);
		text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
		json_decref(doc);
		if (text == NULL) {
			http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR,
			    "out of memory");
			return;
		}
		blob_unref(api_network_cache);
		api_network_cache = blob_new(text, strlen(text));
		api_network_cache_gen = db_generation(hvd->db);
		free(text);
		if (api_network_cache == NULL) {
			http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR,
			    "out of memory");
			return;
		}
	}
	rep->status = MHD_HTTP_OK;
	rep->blob = blob_ref(api_network_cache);
}

void
api_networks_create(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	struct api_network in;
	struct network n = { 0 };
	char err[256];
	int r;

	if (api_network_decode(req->body, req->body_len, API_DECODE_CREATE, &in,
	    err, sizeof(err)) < 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "%s", err);
		return;
	}
	snprintf(n.name, sizeof(n.name), "%s", in.name);
	n.vni = in.vni;
	snprintf(n.description, sizeof(n.description), "%s", in.description);
	n.all_hosts = in.all_hosts;
	if (!api_members_exist(hvd, &in, rep))
		return;
	if ((r = db_network_create(hvd->db, &n, req->actor, hvd_now_wall())) < 0) {
		api_network_db_error(hvd, rep, r, n.name, &n);
		return;
	}
	if ((in.present & API_NET_MEMBERS) && (r = db_network_set_members(hvd->db,
	    n.id, in.members, in.nmembers, req->actor, hvd_now_wall())) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "network %s created "
		    "but its members could not be set (%d); set them again with "
		    "PATCH", n.name, r);
		return;
	}
	log_info("network %s: created (vni %u) by %s", n.name, n.vni, req->actor);
	rep->status = MHD_HTTP_CREATED;
	rep->json = api_network_json(&n);
	snprintf(rep->location, sizeof(rep->location), "/api/v1/networks/%s",
	    n.name);
}

void
api_network_show(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct network n;
	int r;

	(void)req;
	if ((r = db_network_get(hvd->db, key, &n)) < 0) {
		api_network_db_error(hvd, rep, r, key, &n);
		return;
	}
	rep->status = MHD_HTTP_OK;
	rep->json = api_network_json(&n);
	api_network_members_json(hvd, &n, rep->json);
}

void
api_network_patch(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct api_network in;
	struct network n = { 0 };
	char err[256];
	int r;

	if (api_network_decode(req->body, req->body_len, API_DECODE_PATCH, &in,
	    err, sizeof(err)) < 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "%s", err);
		return;
	}
	if (in.present & API_NET_VNI) {
		/* Every member's devices are named by VNI: delete and recreate. */
		http_error(rep, MHD_HTTP_BAD_REQUEST, "field 'vni' cannot change; "
		    "delete the network and create it again");
		return;
	}
	if (!api_members_exist(hvd, &in, rep))
		return;
	snprintf(n.name, sizeof(n.name), "%s", in.name);
	if ((r = db_network_update(hvd->db, key, &in, &n, req->actor,
	    hvd_now_wall())) < 0) {
		api_network_db_error(hvd, rep, r, key, &n);
		return;
	}
	if ((in.present & API_NET_MEMBERS) && (r = db_network_set_members(hvd->db,
	    n.id, in.members, in.nmembers, req->actor, hvd_now_wall())) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error "
		    "setting the members");
		return;
	}
	log_info("network %s: updated by %s", n.name, req->actor);
	rep->status = MHD_HTTP_OK;
	rep->json = api_network_json(&n);
	api_network_members_json(hvd, &n, rep->json);
}

void
api_network_delete(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	int r;

	if ((r = db_network_delete(hvd->db, key, req->actor, hvd_now_wall())) < 0) {
		api_network_db_error(hvd, rep, r, key, NULL);
		return;
	}
	log_info("network %s: deleted by %s", key, req->actor);
	rep->status = MHD_HTTP_NO_CONTENT;
}

void
api_network_shutdown(void)
{
	blob_unref(api_network_cache);
	api_network_cache = NULL;
}
