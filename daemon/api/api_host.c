/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * /api/v1/hosts: the inventory's hosts joined with their live state
 * (session, liveness, latest telemetry), enrolment, and telemetry history.
 *
 * Enrolment (POST) either registers an agent key the operator supplies or,
 * without one, issues fresh credentials exactly as a host's overlay will
 * carry them: an agent key pair and a single-use boot token.  The secrets
 * appear only in that reply; hvd keeps the public key and the token's hash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>
#include <sodium.h>

#include "rest.h"

static json_t *
api_host_json(const struct host_row *h)
{
	struct fleet_host *fh = h->name[0] ? fleet_by_id(h->id) : NULL;
	json_t *j;

	j = json_pack("{s:s?, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, "
	    "s:s?, s:o, s:o, s:s, s:s}",
	    "name", h->name[0] ? h->name : NULL, "state", h->state,
	    "fingerprint", h->fingerprint, "boot_mac", h->boot_mac,
	    "uuid", h->uuid, "serial", h->serial[0] ? h->serial : NULL,
	    "product", h->product[0] ? h->product : NULL,
	    "underlay_ip", h->underlay_ip[0] ? h->underlay_ip : NULL,
	    "boot_ip", h->boot_ip[0] ? h->boot_ip : NULL,
	    "agent_pubkey", h->agent_pubkey[0] ? h->agent_pubkey : NULL,
	    "boot_at", api_time_json(h->boot_at),
	    "last_seen_at", api_time_json(h->last_seen_at),
	    "boot_id", h->boot_id, "overlay", h->boot_at == 0 ? "none" :
	    h->ovl_served_at ? "served" : "pending");
	if (j)
		json_object_set_new(j, "draining", json_boolean(h->draining));
	if (j && fh)
		json_object_set_new(j, "live", fleet_host_json(fh));
	return j;
}

/* The operator's settings and the agent's facts, for `host show`. */
void
api_host_show_config(struct hvd *hvd, const struct host_row *h, json_t *j)
{
	struct host_config c;
	json_t *vnis;

	if (db_host_config(hvd->db, h->id, &c) < 0)
		return;
	vnis = json_array();
	for (size_t i = 0; i < c.nvnis; i++)
		json_array_append_new(vnis, json_integer(c.vnis[i]));
	json_object_set_new(j, "networks", vnis);
	json_object_set_new(j, "labels", json_loads(c.labels, 0, NULL));
	json_object_set_new(j, "mounts", json_loads(c.mounts, 0, NULL));
	json_object_set_new(j, "ssh_keys", json_string(c.ssh_keys));
	json_object_set_new(j, "facts", json_loads(c.facts, 0, NULL));
	host_config_free(&c);
}

void
api_hosts_list(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	struct host_row *rows = NULL;
	size_t n = 0;
	json_t *arr;

	(void)req;
	if (db_host_list(hvd->db, &rows, &n) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "database error while listing hosts");
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, api_host_json(&rows[i]));
	free(rows);
	rep->status = MHD_HTTP_OK;
	rep->json = json_pack("{s:o}", "hosts", arr);
}

void
api_host_show(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct host_row h;
	int r;

	(void)req;
	if ((r = db_host_find(hvd->db, key, &h)) < 0) {
		http_error(rep, r == -ENOENT ? MHD_HTTP_NOT_FOUND :
		    MHD_HTTP_INTERNAL_SERVER_ERROR, r == -ENOENT ?
		    "no host '%s' (by name, fingerprint or boot MAC)" :
		    "database error", key);
		return;
	}
	rep->status = MHD_HTTP_OK;
	rep->json = api_host_json(&h);
	api_host_show_config(hvd, &h, rep->json);
}

void
api_host_telemetry(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct fleet_host *fh = fleet_find(key);
	struct host_row h;

	(void)req;
	if (fh == NULL) {
		if (db_host_get(hvd->db, key, &h) < 0) {
			http_error(rep, MHD_HTTP_NOT_FOUND, "no host '%s'", key);
			return;
		}
		http_error(rep, MHD_HTTP_NOT_FOUND, "host '%s' has reported no "
		    "telemetry", key);
		return;
	}
	rep->status = MHD_HTTP_OK;
	rep->json = fleet_telemetry_json(fh);
}

void
api_hosts_create(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	struct api_host_request in;
	struct host_row h;
	uint8_t pub[32], priv[32], token_hash[AUTH_HASH_LEN];
	char token[AUTH_BOOT_TOKEN_STRLEN], pubhex[65], privhex[65], hvdkey[65];
	char err[256];
	bool issue;
	int r;

	if (api_host_request_decode(req->body, req->body_len, &in, err,
	    sizeof(err)) < 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "%s", err);
		return;
	}
	issue = !(in.present & API_HOST_PUBKEY);
	if (issue) {
		crypto_box_keypair(pub, priv);
		sodium_bin2hex(pubhex, sizeof(pubhex), pub, sizeof(pub));
		auth_boot_token_generate(token, token_hash);
	} else {
		memcpy(pubhex, in.agent_pubkey, sizeof(pubhex));
	}
	r = db_host_register(hvd->db, in.name, pubhex, issue ? token_hash : NULL,
	    req->actor, hvd_now_wall(), &h);
	if (r < 0) {
		if (r == -EEXIST && strcmp(db_conflict(hvd->db),
		    "hosts.agent_pubkey") == 0)
			http_error(rep, MHD_HTTP_CONFLICT, "that agent key is "
			    "already enrolled for another host");
		else if (r == -EEXIST)
			http_error(rep, MHD_HTTP_CONFLICT, "a host named '%s' "
			    "already exists", in.name);
		else
			http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR,
			    "database error");
		goto out;
	}
	log_info("host %s: enrolled by %s%s", h.name, req->actor,
	    issue ? " with fresh credentials" : "");
	if (fleet_get(hvd, &h) == NULL) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		goto out;
	}
	rep->status = MHD_HTTP_CREATED;
	rep->json = api_host_json(&h);
	snprintf(rep->location, sizeof(rep->location), "/api/v1/hosts/%s",
	    h.name);
	if (issue) {
		sodium_bin2hex(privhex, sizeof(privhex), priv, sizeof(priv));
		sodium_bin2hex(hvdkey, sizeof(hvdkey), keys_link_public(), 32);
		json_object_set_new(rep->json, "credentials", json_pack(
		    "{s:s, s:s, s:s}", "agent_key", privhex, "boot_token", token,
		    "hvd_key", hvdkey));
	}
out:
	sodium_memzero(priv, sizeof(priv));
	sodium_memzero(privhex, sizeof(privhex));
	sodium_memzero(token, sizeof(token));
}

/* hvd -> agent commands, answered when the agent replies. */
static const char *const api_host_methods[] = { "ping", "facts.refresh",
    "config.apply" };

struct api_command {
	struct http_deferred *d;
	char host[API_NAME_MAX + 1];
	char method[32];
	struct timespec sent;
};

static void
api_command_done(void *arg, json_t *result, json_t *error)
{
	struct api_command *c = arg;
	struct http_reply rep = { 0 };
	struct timespec now;
	double ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (double)(now.tv_sec - c->sent.tv_sec) * 1e3 +
	    (double)(now.tv_nsec - c->sent.tv_nsec) / 1e6;
	if (result) {
		rep.status = MHD_HTTP_OK;
		rep.json = json_pack("{s:s, s:s, s:f, s:O}", "host", c->host,
		    "method", c->method, "rtt_ms", ms, "result", result);
	} else {
		const char *code = json_string_value(json_object_get(error, "code"));
		const char *msg = json_string_value(json_object_get(error,
		    "message"));

		http_error(&rep, code && strcmp(code, "timeout") == 0 ?
		    MHD_HTTP_GATEWAY_TIMEOUT : MHD_HTTP_BAD_GATEWAY,
		    "%s: agent answered %s: %s", c->host, code ? code : "?",
		    msg ? msg : "");
	}
	log_debug("host %s: %s answered (%d), resuming the HTTP reply", c->host, c->method, rep.status);
	http_finish(c->d, &rep);
	free(c);
}

void
api_host_command(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct fleet_host *fh = fleet_find(key);
	struct api_command *c;
	const char *method;
	json_t *body = NULL, *params;
	json_error_t jerr;
	bool known = false;
	int r;

	(void)hvd;
	if (fh == NULL) {
		http_error(rep, MHD_HTTP_NOT_FOUND, "no host '%s'", key);
		return;
	}
	body = json_loadb(req->body ? req->body : "", req->body_len,
	    JSON_REJECT_DUPLICATES, &jerr);
	method = json_string_value(json_object_get(body, "method"));
	params = json_object_get(body, "params");
	if (!json_is_object(body) || method == NULL ||
	    json_object_size(body) != 1 + (params != NULL) ||
	    (params && !json_is_object(params))) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "body must be {\"method\": "
		    "string, \"params\": object (optional)}");
		goto out;
	}
	for (size_t i = 0; i < sizeof(api_host_methods) /
	    sizeof(*api_host_methods); i++)
		known |= strcmp(method, api_host_methods[i]) == 0;
	if (!known) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "unknown method '%.32s'; "
		    "one of ping, facts.refresh, config.apply", method);
		goto out;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		goto out;
	}
	snprintf(c->host, sizeof(c->host), "%s", key);
	snprintf(c->method, sizeof(c->method), "%s", method);
	clock_gettime(CLOCK_MONOTONIC, &c->sent);
	c->d = http_defer(req, rep);
	r = fleet_request(fh, method, params ? json_incref(params) :
	    json_object(), api_command_done, c);
	if (r < 0) {
		free(c);
		rep->deferred = false;
		http_error(rep, r == -ENOTCONN ? MHD_HTTP_CONFLICT :
		    MHD_HTTP_SERVICE_UNAVAILABLE, r == -ENOTCONN ?
		    "host '%s' has no agent session" : "host '%s': cannot send "
		    "now", key);
	}
out:
	json_decref(body);
}
