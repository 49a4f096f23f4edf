/*
 * Host identity at boot time: the stage-2 request and the overlay request
 * name a machine by SMBIOS UUID and boot MAC; their fingerprint finds it in
 * the inventory or records it as discovered.  This file serves the overlay
 * (GET /ovl/{UUID}/{MAC}.apkovl.tar.gz) and takes a discovery agent's
 * hardware facts (POST /boot/discover).
 *
 * Must never: serve credentials twice for one boot, or to an address other
 * than the one that opened the boot (or, in full DHCP mode, holds the
 * MAC's lease); put a secret into a discovery overlay or a log line.
 * Every refusal writes an `ovl.refused` event.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>
#include <sodium.h>

#include "fleet.h"

#define IDENT_BOOT_IF	"eth0"	/* the underlay NIC of a booted host */

static void
ident_refuse(struct hvd *hvd, struct http_reply *rep, const char *subject,
    const char *ip, const char *why)
{
	char detail[200];

	snprintf(detail, sizeof(detail), "overlay refused to %s: %s", ip, why);
	log_warnx("ovl: %s: %s", subject, detail);
	db_event_record(hvd->db, "ovl.refused", subject, "boot", detail,
	    hvd_now_wall());
	http_error(rep, MHD_HTTP_FORBIDDEN, "%s", why);
}

/* Lab mode: an unknown machine is adopted on sight, named after its
 * fingerprint.  Production never does this (lab-auto-adopt is off). */
static int
ident_auto_adopt(struct hvd *hvd, struct host_row *h)
{
	struct api_host_spec *hs;
	struct host_row out;
	int r = -EEXIST;

	if ((hs = calloc(1, sizeof(*hs))) == NULL)
		return -ENOMEM;
	snprintf(hs->labels, sizeof(hs->labels), "{\"lab\":\"auto\"}");
	for (int n = 6; n <= 12 && r == -EEXIST; n += 2) {
		snprintf(hs->name, sizeof(hs->name), "node-%.*s", n, h->fingerprint);
		r = db_host_adopt(hvd->db, h, hs, ident_underlay(hvd, h), "lab",
		    hvd_now_wall(), &out);
	}
	free(hs);
	if (r < 0)
		return r;
	log_info("ident: lab-auto-adopt: %s is now host %s", h->boot_mac,
	    out.name);
	*h = out;
	return fleet_get(hvd, h) ? 0 : -ENOMEM;
}

const char *
ident_underlay(struct hvd *hvd, const struct host_row *h)
{
	static struct lease_row l;

	if (hvd->conf->dhcp_mode == DHCP_FULL &&
	    db_lease_get(hvd->db, h->boot_mac, &l) == 0 &&
	    strcmp(l.state, "released") != 0)
		return l.ip;
	return h->boot_ip[0] ? h->boot_ip : NULL;
}

int
ident_boot(struct hvd *hvd, const struct boot_query *q, const char *ip,
    bool stage2, struct host_row *h)
{
	struct host_seen s = { .stage2 = stage2 };
	int r;

	host_fingerprint(q->uuid, q->mac, s.fingerprint);
	snprintf(s.mac, sizeof(s.mac), "%s", q->mac);
	snprintf(s.uuid, sizeof(s.uuid), "%s", q->uuid);
	snprintf(s.serial, sizeof(s.serial), "%s", q->serial);
	snprintf(s.product, sizeof(s.product), "%s", q->product);
	snprintf(s.ip, sizeof(s.ip), "%s", ip ? ip : "");
	if ((r = db_host_seen(hvd->db, &s, hvd_now_wall(), h)) < 0)
		return r;
	if (strcmp(h->state, "discovered") == 0 && hvd->conf->lab_auto_adopt &&
	    (r = ident_auto_adopt(hvd, h)) < 0)
		log_warnx("ident: lab-auto-adopt of %s failed (%d)", q->mac, r);
	return 0;
}

/* Mounts as the inventory stores them (JSON written by db_ident.c). */
static size_t
ident_mounts(const char *text, struct apkovl_mount *m, size_t cap)
{
	json_t *arr = json_loads(text ? text : "[]", 0, NULL), *e;
	size_t i, n = 0;

	json_array_foreach(arr, i, e) {
		if (n == cap)
			break;
		snprintf(m[n].source, sizeof(m[n].source), "%s",
		    json_string_value(json_object_get(e, "source")) ?: "");
		snprintf(m[n].path, sizeof(m[n].path), "%s",
		    json_string_value(json_object_get(e, "path")) ?: "");
		snprintf(m[n].fstype, sizeof(m[n].fstype), "%s",
		    json_string_value(json_object_get(e, "fstype")) ?: "auto");
		snprintf(m[n].options, sizeof(m[n].options), "%s",
		    json_string_value(json_object_get(e, "options")) ?: "defaults");
		n++;
	}
	json_decref(arr);
	return n;
}

static void
ident_reply_overlay(struct http_reply *rep, unsigned char *buf, size_t len)
{
	rep->blob = blob_new((const char *)buf, len);
	sodium_memzero(buf, len);
	free(buf);
	if (rep->blob == NULL) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	rep->status = MHD_HTTP_OK;
	rep->content_type = "application/gzip";
	snprintf(rep->header[0], sizeof(rep->header[0]),
	    "Cache-Control: no-store");
}

/* Builds h's overlay: with fresh credentials (agent_key, token) or, for a
 * discovered machine, without any. */
int
ident_overlay(struct hvd *hvd, const struct host_row *h,
    const char *agent_key_hex, const char *token, unsigned char **out,
    size_t *len, char *err, size_t errlen)
{
	struct apkovl_mount mounts[API_HOST_MOUNTS_MAX];
	struct apkovl_input in = { 0 };
	struct host_config cfg = { 0 };
	char agent[ADDR_STRLEN], url[ADDR_STRLEN], hvdkey[65];
	char hostname[API_NAME_MAX + 1], query[96];
	char *mesh = NULL;
	int r;

	if ((r = db_host_config(hvd->db, h->id, &cfg)) < 0) {
		snprintf(err, errlen, "database error");
		return r;
	}
	addr_agents(hvd, agent, sizeof(agent));
	addr_boot_url(hvd, url, sizeof(url));
	sodium_bin2hex(hvdkey, sizeof(hvdkey), keys_link_public(), 32);
	in.discovery = agent_key_hex == NULL;
	if (in.discovery) {
		snprintf(hostname, sizeof(hostname), "discovered-%.8s",
		    h->fingerprint);
		snprintf(query, sizeof(query), "mac=%s&uuid=%s", h->boot_mac,
		    h->uuid);
		in.discovery_query = query;
	}
	else
		snprintf(hostname, sizeof(hostname), "%s", h->name);
	in.hostname = hostname;
	in.boot_if = IDENT_BOOT_IF;
	in.hvd_url = url;
	in.hvd_agent = agent;
	in.hvd_key_hex = hvdkey;
	in.agent_key_hex = agent_key_hex;
	in.boot_token = token;
	if (!in.discovery) {
		mesh = mesh_host_json(hvd, h);
		in.mesh_json = mesh;
		in.ssh_keys = cfg.ssh_keys;
		in.mounts = mounts;
		in.nmounts = ident_mounts(cfg.mounts, mounts, API_HOST_MOUNTS_MAX);
	}
	in.mtime = 0;
	r = apkovl_build(&in, out, len, err, errlen);
	free(mesh);
	host_config_free(&cfg);
	return r;
}

static bool
ident_ip_allowed(struct hvd *hvd, const struct host_row *h, const char *ip)
{
	struct lease_row l;

	if (h->boot_ip[0] && strcmp(h->boot_ip, ip) == 0)
		return true;
	return hvd->conf->dhcp_mode == DHCP_FULL &&
	    db_lease_get(hvd->db, h->boot_mac, &l) == 0 &&
	    strcmp(l.state, "bound") == 0 && strcmp(l.ip, ip) == 0;
}

void
ident_handle_ovl(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	struct boot_query q = { 0 };
	struct host_row h;
	uint8_t pub[32], priv[32], token_hash[AUTH_HASH_LEN];
	char token[AUTH_BOOT_TOKEN_STRLEN], pubhex[65], privhex[65];
	char err[160], subject[80];
	const char *ip = req->peer ? req->peer : "";
	unsigned char *buf = NULL;
	size_t len = 0;
	int r;

	rep->route = "/ovl/{}";
	if (strcmp(req->method, "GET") != 0) {
		/* Not even HEAD: it would look like a fetch without being one. */
		rep->allow = "GET";
		http_error(rep, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only");
		return;
	}
	if (ovl_path_parse(req->url, q.uuid, q.mac, err, sizeof(err)) < 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "%s", err);
		return;
	}
	if ((r = ident_boot(hvd, &q, ip, false, &h)) < 0) {
		char fp[HOST_FP_HEX];

		host_fingerprint(q.uuid, q.mac, fp);
		if (r == -EPERM)
			ident_refuse(hvd, rep, fp, ip, "this machine's fingerprint "
			    "was retired or replaced");
		else
			http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR,
			    "database error");
		return;
	}
	if (strcmp(h.state, "discovered") == 0) {
		if (ident_overlay(hvd, &h, NULL, NULL, &buf, &len, err,
		    sizeof(err)) < 0) {
			http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "overlay: %s",
			    err);
			return;
		}
		log_info("ovl: discovery overlay for %s (%s) to %s", h.boot_mac,
		    h.fingerprint, ip);
		ident_reply_overlay(rep, buf, len);
		return;
	}
	snprintf(subject, sizeof(subject), "%s", h.name[0] ? h.name :
	    h.fingerprint);
	if (h.boot_at == 0) {
		ident_refuse(hvd, rep, subject, ip, "no boot is open for this "
		    "host: its stage-2 request comes first");
		return;
	}
	if (h.ovl_served_at != 0) {
		ident_refuse(hvd, rep, subject, ip, "this boot's overlay was "
		    "already served");
		return;
	}
	if (!ident_ip_allowed(hvd, &h, ip)) {
		ident_refuse(hvd, rep, subject, ip, "the overlay goes only to the "
		    "address that booted this host");
		return;
	}
	crypto_box_keypair(pub, priv);
	sodium_bin2hex(pubhex, sizeof(pubhex), pub, sizeof(pub));
	sodium_bin2hex(privhex, sizeof(privhex), priv, sizeof(priv));
	auth_boot_token_generate(token, token_hash);
	r = db_host_ovl_claim(hvd->db, &h, ip, pubhex, token_hash, hvd_now_wall());
	if (r == -EALREADY) {
		ident_refuse(hvd, rep, subject, ip, "this boot's overlay was "
		    "already served");
	} else if (r < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
	} else if (ident_overlay(hvd, &h, privhex, token, &buf, &len, err,
	    sizeof(err)) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "overlay: %s", err);
	} else {
		log_info("ovl: %s: overlay with fresh credentials to %s", subject,
		    ip);
		ident_reply_overlay(rep, buf, len);
	}
	sodium_memzero(priv, sizeof(priv));
	sodium_memzero(privhex, sizeof(privhex));
	sodium_memzero(token, sizeof(token));
}

struct ident_query {
	struct boot_query q;
	char err[160];
	int r;
};

static void
ident_query_cb(void *arg, const char *key, const char *value)
{
	struct ident_query *c = arg;

	if (c->r == 0)
		c->r = boot_query_set(&c->q, key, value, c->err, sizeof(c->err));
}

/* POST /boot/discover?mac=..&uuid=.. {"facts": {...}}: a discovery agent's
 * report.  Refines a discovered record; tells an adopted machine who it is
 * now, so it can reboot into its own overlay. */
void
ident_handle_discover(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	struct ident_query c = { 0 };
	char fp[HOST_FP_HEX], *facts = NULL, *macs = NULL;
	struct host_row h;
	json_error_t jerr;
	json_t *body, *f, *arr, *nic;
	size_t i;

	rep->route = "/boot/discover";
	if (strcmp(req->method, "POST") != 0) {
		rep->allow = "POST";
		http_error(rep, MHD_HTTP_METHOD_NOT_ALLOWED, "POST only");
		return;
	}
	req->query_each(req, ident_query_cb, &c);
	if (c.r == 0 && c.q.mac[0] == '\0') {
		snprintf(c.err, sizeof(c.err), "query 'mac' is required");
		c.r = -EINVAL;
	}
	if (c.r < 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "%s", c.err);
		return;
	}
	body = json_loadb(req->body ? req->body : "", req->body_len,
	    JSON_REJECT_DUPLICATES, &jerr);
	f = json_object_get(body, "facts");
	if (!json_is_object(body) || json_object_size(body) != 1 ||
	    !json_is_object(f)) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "body must be {\"facts\": "
		    "object}");
		json_decref(body);
		return;
	}
	host_fingerprint(c.q.uuid, c.q.mac, fp);
	if (db_host_find(hvd->db, fp, &h) < 0) {
		http_error(rep, MHD_HTTP_NOT_FOUND, "this machine has not booted "
		    "from hvd");
		json_decref(body);
		return;
	}
	if (strcmp(h.state, "discovered") == 0) {
		arr = json_array();
		json_array_foreach(json_object_get(f, "nics"), i, nic)
			if (json_is_string(json_object_get(nic, "mac")))
				json_array_append(arr, json_object_get(nic, "mac"));
		facts = json_dumps(f, JSON_COMPACT);
		macs = json_dumps(arr, JSON_COMPACT);
		json_decref(arr);
		if (facts == NULL || db_host_set_facts(hvd->db, h.id, facts, macs,
		    hvd_now_wall()) < 0) {
			http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR,
			    "database error");
			goto out;
		}
		log_info("discover: facts from %s (%s)", h.boot_mac, req->peer ?
		    req->peer : "?");
	}
	rep->status = MHD_HTTP_OK;
	rep->json = json_pack("{s:s, s:s?, s:s}", "state", h.state, "name",
	    h.name[0] ? h.name : NULL, "fingerprint", h.fingerprint);
out:
	free(facts);
	free(macs);
	json_decref(body);
}
