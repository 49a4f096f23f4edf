/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The boot listener's identity routes: GET /ovl/{UUID}/{MAC}.apkovl.tar.gz
 * serves a machine its overlay (fleet/ident.c builds it and says who may
 * have it), and POST /boot/discover takes a discovery agent's facts.
 *
 * Must never: serve credentials twice for one boot, or to an address other
 * than the one that opened the boot (or, in full DHCP mode, holds the
 * MAC's lease); let a HEAD peek at an overlay; keep a secret in memory
 * after the reply holds it.  Every refusal writes an `ovl.refused` event.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>
#include <sodium.h>

#include "rest.h"

static void
boot_ovl_refuse(struct hvd *hvd, struct http_reply *rep, const char *subject,
    const char *ip, const char *why)
{
	char detail[200];

	snprintf(detail, sizeof(detail), "overlay refused to %s: %s", ip, why);
	log_warnx("ovl: %s: %s", subject, detail);
	db_event_record(hvd->db, "ovl.refused", subject, "boot", detail,
	    hvd_now_wall());
	http_error(rep, MHD_HTTP_FORBIDDEN, "%s", why);
}

static void
boot_ovl_reply(struct http_reply *rep, unsigned char *buf, size_t len)
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

void
boot_ovl_handle(struct hvd *hvd, const struct http_request *req,
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
			boot_ovl_refuse(hvd, rep, fp, ip, "this machine's fingerprint "
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
		boot_ovl_reply(rep, buf, len);
		return;
	}
	snprintf(subject, sizeof(subject), "%s", h.name[0] ? h.name :
	    h.fingerprint);
	if (h.boot_at == 0) {
		boot_ovl_refuse(hvd, rep, subject, ip, "no boot is open for this "
		    "host: its stage-2 request comes first");
		return;
	}
	if (h.ovl_served_at != 0) {
		boot_ovl_refuse(hvd, rep, subject, ip, "this boot's overlay was "
		    "already served");
		return;
	}
	if (!ident_ip_allowed(hvd, &h, ip)) {
		boot_ovl_refuse(hvd, rep, subject, ip, "the overlay goes only to the "
		    "address that booted this host");
		return;
	}
	crypto_box_keypair(pub, priv);
	sodium_bin2hex(pubhex, sizeof(pubhex), pub, sizeof(pub));
	sodium_bin2hex(privhex, sizeof(privhex), priv, sizeof(priv));
	auth_boot_token_generate(token, token_hash);
	r = db_host_ovl_claim(hvd->db, &h, ip, pubhex, token_hash, hvd_now_wall());
	if (r == -EALREADY) {
		boot_ovl_refuse(hvd, rep, subject, ip, "this boot's overlay was "
		    "already served");
	} else if (r < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
	} else if (ident_overlay(hvd, &h, privhex, token, &buf, &len, err,
	    sizeof(err)) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "overlay: %s", err);
	} else {
		log_info("ovl: %s: overlay with fresh credentials to %s", subject,
		    ip);
		boot_ovl_reply(rep, buf, len);
	}
	sodium_memzero(priv, sizeof(priv));
	sodium_memzero(privhex, sizeof(privhex));
	sodium_memzero(token, sizeof(token));
}

struct boot_ovl_query {
	struct boot_query q;
	char err[160];
	int r;
};

static void
boot_ovl_query_cb(void *arg, const char *key, const char *value)
{
	struct boot_ovl_query *c = arg;

	if (c->r == 0)
		c->r = boot_query_set(&c->q, key, value, c->err, sizeof(c->err));
}

/* POST /boot/discover?mac=..&uuid=.. {"facts": {...}}: a discovery agent's
 * report.  Refines a discovered record; tells an adopted machine who it is
 * now, so it can reboot into its own overlay. */
void
boot_discover_handle(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	struct boot_ovl_query c = { 0 };
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
	req->query_each(req, boot_ovl_query_cb, &c);
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
