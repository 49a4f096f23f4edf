/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Host identity operations over REST: adopt a discovered machine, replace
 * an identity's hardware, retire a host, delete a retired one, edit its
 * settings.
 *
 *   POST   /api/v1/hosts/{fingerprint|mac}/adopt  {"name", "networks", ...}
 *   POST   /api/v1/hosts/{name}/replace           {"fingerprint"}
 *   POST   /api/v1/hosts/{name}/retire
 *   DELETE /api/v1/hosts/{name|fingerprint}       (retired hosts only)
 *   PATCH  /api/v1/hosts/{name}                   {"networks", "labels", ...}
 *
 * Bad input is a 4xx naming what was wrong: an unknown host (404), a
 * duplicate name, a host in the wrong state or still named by a VM (409),
 * an invalid MAC, fingerprint or VNI (400).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "rest.h"

static void
api_host_reply(struct hvd *hvd, struct http_reply *rep, unsigned status,
    const struct host_row *h)
{
	struct host_row fresh;

	if (db_host_by_id(hvd->db, h->id, &fresh) < 0)
		fresh = *h;
	rep->status = status;
	rep->json = json_pack("{s:s?, s:s, s:s, s:s?}", "name",
	    fresh.name[0] ? fresh.name : NULL, "state", fresh.state,
	    "fingerprint", fresh.fingerprint, "underlay_ip",
	    fresh.underlay_ip[0] ? fresh.underlay_ip : NULL);
}

/* A MAC in any case with ':' or '-', normalised; false if key is not one. */
static bool
api_mac_normalise(const char *key, char out[18])
{
	if (strlen(key) != 17)
		return false;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2) {
			if (key[i] != ':' && key[i] != '-')
				return false;
			out[i] = ':';
		} else {
			if (!isxdigit((unsigned char)key[i]))
				return false;
			out[i] = (char)tolower((unsigned char)key[i]);
		}
	}
	out[17] = '\0';
	return true;
}

/* The host a key names, as adopt and replace accept it: a fingerprint or
 * a boot MAC; 4xx sent and false when there is none. */
static bool
api_hardware(struct hvd *hvd, const char *key, struct host_row *h,
    struct http_reply *rep)
{
	char mac[18];
	int r;

	if (api_fingerprint_valid(key))
		r = db_host_find(hvd->db, key, h);
	else if (api_mac_normalise(key, mac))
		r = db_host_by_mac(hvd->db, mac, h);
	else {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "'%s' is neither a "
		    "fingerprint (%d lowercase hex digits) nor a MAC "
		    "(aa:bb:cc:dd:ee:ff)", key, API_FP_HEX);
		return false;
	}
	if (r == -ENOENT) {
		http_error(rep, MHD_HTTP_NOT_FOUND, "no machine with %s '%s' has "
		    "booted", api_fingerprint_valid(key) ? "fingerprint" : "MAC",
		    key);
		return false;
	}
	if (r < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
		return false;
	}
	return true;
}

static bool
api_vnis_exist(struct hvd *hvd, const struct api_host_spec *hs,
    struct http_reply *rep)
{
	struct network n;
	char key[16];

	for (size_t i = 0; i < hs->nvnis; i++) {
		snprintf(key, sizeof(key), "%u", hs->vnis[i]);
		if (db_network_get(hvd->db, key, &n) < 0) {
			http_error(rep, MHD_HTTP_BAD_REQUEST, "networks: no network "
			    "has VNI %u (hvctl net create first)", hs->vnis[i]);
			return false;
		}
	}
	return true;
}

static struct api_host_spec *
api_spec(const struct http_request *req, enum api_host_op op,
    struct http_reply *rep)
{
	struct api_host_spec *hs = malloc(sizeof(*hs));
	char err[256];

	if (hs == NULL) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return NULL;
	}
	if (api_host_spec_decode(req->body ? req->body : "", req->body_len, op,
	    hs, err, sizeof(err)) < 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "%s", err);
		free(hs);
		return NULL;
	}
	return hs;
}

void
api_host_adopt(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct api_host_spec *hs;
	struct host_row h, out;
	char ul[sizeof(h.underlay_ip)];
	int r;

	if (!api_hardware(hvd, key, &h, rep) ||
	    (hs = api_spec(req, API_HOST_ADOPT, rep)) == NULL)
		return;
	if (!api_vnis_exist(hvd, hs, rep))
		goto out;
	r = db_host_adopt(hvd->db, &h, hs, db_host_underlay(hvd->db, &h,
	    hvd->conf->dhcp_mode == DHCP_FULL, ul, sizeof(ul)) == 0 ? ul : NULL,
	    req->actor, hvd_now_wall(), &out);
	if (r == -EBUSY)
		http_error(rep, MHD_HTTP_CONFLICT, "machine %s is %s, not "
		    "discovered%s%s", key, h.state, h.name[0] ? ": it is host " :
		    "", h.name);
	else if (r == -EEXIST)
		http_error(rep, MHD_HTTP_CONFLICT, "a host named '%s' already "
		    "exists", hs->name);
	else if (r < 0)
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
	else {
		log_info("host %s: adopted (%s) by %s", out.name, out.boot_mac,
		    req->actor);
		fleet_get(hvd, &out);
		api_host_reply(hvd, rep, MHD_HTTP_OK, &out);
	}
out:
	free(hs);
}

static bool
api_identity(struct hvd *hvd, const char *key, struct host_row *h,
    struct http_reply *rep)
{
	int r = db_host_get(hvd->db, key, h);

	if (r == 0)
		return true;
	if (r == -ENOENT)
		http_error(rep, MHD_HTTP_NOT_FOUND, "no host named '%s'", key);
	else
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
	return false;
}

void
api_host_replace(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct api_host_spec *hs;
	struct host_row h, hw, out;
	struct fleet_host *fh;
	int r;

	if (!api_identity(hvd, key, &h, rep) ||
	    (hs = api_spec(req, API_HOST_REPLACE, rep)) == NULL)
		return;
	if ((r = db_host_find(hvd->db, hs->fingerprint, &hw)) == -ENOENT) {
		http_error(rep, MHD_HTTP_NOT_FOUND, "no machine with fingerprint "
		    "%s has booted: boot the new hardware first", hs->fingerprint);
		goto out;
	}
	if (r < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
		goto out;
	}
	if (hw.id == h.id) {
		http_error(rep, MHD_HTTP_CONFLICT, "host '%s' already has "
		    "fingerprint %s", key, hs->fingerprint);
		goto out;
	}
	if (strcmp(hw.state, "discovered") != 0) {
		http_error(rep, MHD_HTTP_CONFLICT, "fingerprint %s belongs to "
		    "host '%s' (%s); only a discovered machine can take over an "
		    "identity", hs->fingerprint, hw.name, hw.state);
		goto out;
	}
	r = db_host_replace(hvd->db, &h, &hw, req->actor, hvd_now_wall(), &out);
	if (r < 0) {
		http_error(rep, r == -EBUSY ? MHD_HTTP_CONFLICT :
		    MHD_HTTP_INTERNAL_SERVER_ERROR, r == -EBUSY ? "the machine "
		    "changed state meanwhile; try again" : "database error");
		goto out;
	}
	/* The old hardware's session, if any, ends: its key is gone. */
	if ((fh = fleet_by_id(h.id)) != NULL) {
		if (fleet_session(fh))
			agent_conn_close(fleet_session(fh), "host replaced");
		fleet_reset(fh);
	}
	log_info("host %s: replaced: %s -> %s by %s", h.name, h.boot_mac,
	    out.boot_mac, req->actor);
	api_host_reply(hvd, rep, MHD_HTTP_OK, &out);
out:
	free(hs);
}

void
api_host_retire(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct fleet_host *fh;
	struct host_row h;
	int r;

	if (req->body_len > 0 && strspn(req->body, " \t\r\n{}") != req->body_len) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "retire takes no body");
		return;
	}
	if ((r = db_host_find(hvd->db, key, &h)) < 0) {
		http_error(rep, r == -ENOENT ? MHD_HTTP_NOT_FOUND :
		    MHD_HTTP_INTERNAL_SERVER_ERROR, r == -ENOENT ? "no host '%s'" :
		    "database error", key);
		return;
	}
	if ((r = db_host_retire(hvd->db, &h, req->actor, hvd_now_wall())) ==
	    -EALREADY) {
		http_error(rep, MHD_HTTP_CONFLICT, "host '%s' is already retired",
		    key);
		return;
	}
	if (r < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
		return;
	}
	if ((fh = fleet_by_id(h.id)) != NULL) {
		if (fleet_session(fh))
			agent_conn_close(fleet_session(fh), "host retired");
		fleet_reset(fh);
	}
	log_info("host %s: retired by %s", h.name[0] ? h.name : h.fingerprint,
	    req->actor);
	api_host_reply(hvd, rep, MHD_HTTP_OK, &h);
}

/* 409 listing what still depends on retired host h, or true if nothing. */
static bool
api_host_unreferenced(struct hvd *hvd, const struct host_row *h,
    const char *who, struct http_reply *rep)
{
	struct migration_row *m = NULL;
	struct vm_row *v = NULL;
	char names[512];
	size_t n = 0, len = 0;
	bool ok = false;

	if (db_vm_list(hvd->db, h->id, &v, &n) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
		return false;
	}
	if (n > 0) {
		names[0] = '\0';
		for (size_t i = 0; i < n && len < sizeof(names) - 80; i++)
			len += (size_t)snprintf(names + len, sizeof(names) - len,
			    "%s%s", i ? ", " : "", v[i].name);
		if (len >= sizeof(names) - 80 && n > 1)
			snprintf(names + len, sizeof(names) - len, ", ...");
		http_error(rep, MHD_HTTP_CONFLICT, "host %s is still the host of "
		    "%zu VM%s: %s; destroy %s first (hvctl vm destroy NAME: a "
		    "VM whose host has no session is forgotten at once)", who, n,
		    n == 1 ? "" : "s", names, n == 1 ? "it" : "them");
		goto out;
	}
	if (db_migration_open_list(hvd->db, &m, &n) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (m[i].source_id == h->id || m[i].target_id == h->id) {
			http_error(rep, MHD_HTTP_CONFLICT, "host %s is the %s of "
			    "the unfinished migration %s of VM %s; it must end "
			    "first", who, m[i].source_id == h->id ? "source" :
			    "target", m[i].id, m[i].vm_name);
			goto out;
		}
	ok = true;
out:
	free(v);
	free(m);
	return ok;
}

/*
 * DELETE /api/v1/hosts/{name|fingerprint}: only a retired host's record
 * goes, and only once no VM names it as its host.  Its fingerprint stays
 * retired (the machine is still refused at boot), its events stay, and
 * its name and underlay address are free again.
 */
void
api_host_delete(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct fleet_host *fh;
	struct host_row h;
	const char *who;
	int r;

	if (req->body_len > 0 &&
	    strspn(req->body, " \t\r\n{}") != req->body_len) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "delete takes no body");
		return;
	}
	if ((r = db_host_find(hvd->db, key, &h)) < 0) {
		http_error(rep, r == -ENOENT ? MHD_HTTP_NOT_FOUND :
		    MHD_HTTP_INTERNAL_SERVER_ERROR, r == -ENOENT ? "no host '%s' "
		    "(by name or fingerprint)" : "database error", key);
		return;
	}
	who = h.name[0] ? h.name : h.fingerprint;
	if (strcmp(h.state, "retired") != 0) {
		http_error(rep, MHD_HTTP_CONFLICT, "host %s is %s; retire it "
		    "first (hvctl host retire %s)", who, h.state, who);
		return;
	}
	if (!api_host_unreferenced(hvd, &h, who, rep))
		return;
	if ((r = db_host_delete(hvd->db, &h, req->actor, hvd_now_wall())) < 0) {
		http_error(rep, r == -EBUSY ? MHD_HTTP_CONFLICT :
		    MHD_HTTP_INTERNAL_SERVER_ERROR, r == -EBUSY ? "host %s "
		    "changed meanwhile; try again" : "database error", who);
		return;
	}
	/* Its live state goes with it: a host that gets its id (SQLite may
	 * hand it out again) or its name must not inherit it. */
	if ((fh = fleet_by_id(h.id)) != NULL)
		fleet_forget(fh);
	log_info("host %s: deleted by %s (fingerprint %.16s... stays retired)",
	    who, req->actor, h.fingerprint);
	rep->status = MHD_HTTP_NO_CONTENT;
}

void
api_host_edit(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct api_host_spec *hs;
	struct host_row h;
	int r;

	if (!api_identity(hvd, key, &h, rep) ||
	    (hs = api_spec(req, API_HOST_EDIT, rep)) == NULL)
		return;
	if (strcmp(h.state, "retired") == 0) {
		http_error(rep, MHD_HTTP_CONFLICT, "host '%s' is retired", key);
		goto out;
	}
	if (!api_vnis_exist(hvd, hs, rep))
		goto out;
	if ((r = db_host_edit(hvd->db, &h, hs, req->actor, hvd_now_wall())) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
		goto out;
	}
	api_host_reply(hvd, rep, MHD_HTTP_OK, &h);
	api_host_show_config(hvd, &h, rep->json);
out:
	free(hs);
}
