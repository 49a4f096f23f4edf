/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * /api/v1/hosts/{name}/drain and /undrain: maintenance mode.  POST drain
 * marks the host draining and starts moving its VMs (202 with the drain's
 * progress, VM by VM); GET drain is that progress, which hvctl follows;
 * POST undrain clears the mark (fleet/drain.c does the work).  Neither
 * POST takes parameters: the body is empty or {}.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <microhttpd.h>

#include "rest.h"

/* The host key names, by name only: a drain is of a named host. */
static int
api_drain_host(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key, struct host_row *h)
{
	json_t *body = NULL;
	int r;

	if (req->body_len > 0) {
		body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES,
		    NULL);
		if (!json_is_object(body) || json_object_size(body) != 0) {
			json_decref(body);
			http_error(rep, MHD_HTTP_BAD_REQUEST, "this request takes no "
			    "parameters: send no body, or {}");
			return -EINVAL;
		}
		json_decref(body);
	}
	if ((r = db_host_get(hvd->db, key, h)) < 0) {
		http_error(rep, r == -ENOENT ? MHD_HTTP_NOT_FOUND :
		    MHD_HTTP_INTERNAL_SERVER_ERROR, r == -ENOENT ? "no host named "
		    "'%s'" : "database error", key);
		return r;
	}
	if (strcmp(h->state, "retired") == 0) {
		http_error(rep, MHD_HTTP_CONFLICT, "host %s is retired", h->name);
		return -EPERM;
	}
	return 0;
}

/* The drain's progress, or just the mark when none ran since hvd started. */
static json_t *
api_drain_json(const struct host_row *h, bool draining)
{
	json_t *d = drain_json(h->id);

	if (d == NULL)
		d = json_pack("{s:s}", "host", h->name);
	json_object_set_new(d, "draining", json_boolean(draining));
	return d;
}

void
api_host_drain(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct host_row h;
	char err[256];

	if (api_drain_host(hvd, req, rep, key, &h) < 0)
		return;
	if (drain_start(hvd, &h, req->actor, err, sizeof(err)) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err);
		return;
	}
	rep->status = MHD_HTTP_ACCEPTED;
	rep->json = api_drain_json(&h, true);
	snprintf(rep->location, sizeof(rep->location), "/api/v1/hosts/%s/drain",
	    h.name);
}

void
api_host_undrain(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct host_row h;

	if (api_drain_host(hvd, req, rep, key, &h) < 0)
		return;
	if (drain_stop(hvd, &h, req->actor) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error "
		    "clearing host %s's drain", h.name);
		return;
	}
	rep->status = MHD_HTTP_OK;
	rep->json = api_drain_json(&h, false);
}

void
api_host_drain_show(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct host_row h;
	int r;

	(void)req;
	if ((r = db_host_get(hvd->db, key, &h)) < 0) {
		http_error(rep, r == -ENOENT ? MHD_HTTP_NOT_FOUND :
		    MHD_HTTP_INTERNAL_SERVER_ERROR, r == -ENOENT ? "no host named "
		    "'%s'" : "database error", key);
		return;
	}
	rep->status = MHD_HTTP_OK;
	rep->json = api_drain_json(&h, h.draining);
}
