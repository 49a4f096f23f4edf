/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The interactive console's REST routes (fleet/console.c brokers the
 * sessions; PROTOCOL.md 6.2 vm.console_* is the agent's side):
 *
 *   POST   /api/v1/vms/{name}/console/attach  201 {"session", "vm", "host"}
 *   GET    /api/v1/consoles                   the caller's sessions
 *   GET    /api/v1/consoles/{id}?from=N&wait=S  {"vm", "next", "data",
 *                                             "lost", "closed"}, waiting up
 *                                             to S s (default and most 20)
 *   POST   /api/v1/consoles/{id}/input        {"data": base64} -> the agent
 *   DELETE /api/v1/consoles/{id}              detach
 *
 * A session is its caller's (the token, or the socket's uid): anyone else
 * gets the 404 an unknown id gets.  Attach, read (when it waits) and input
 * answer later: the reply is deferred, and the broker's callback finishes
 * it; nothing here blocks.
 * Must never: log console data, or tell another caller that a session
 * exists.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "console.h"
#include "numparse.h"
#include "rest.h"

/* An error of the broker as the HTTP status that says it. */
static unsigned
api_console_status(int r)
{
	switch (r) {
	case -ENOENT:
		return MHD_HTTP_NOT_FOUND;
	case -ERANGE:
	case -EINVAL:
		return MHD_HTTP_BAD_REQUEST;
	case -ESRCH:
	case -ENOTCONN:
	case -EPIPE:
	case -EREMOTEIO:
		return MHD_HTTP_CONFLICT;
	case -EMFILE:
	case -EBUSY:
		return MHD_HTTP_TOO_MANY_REQUESTS;
	case -ETIMEDOUT:
		return MHD_HTTP_GATEWAY_TIMEOUT;
	case -EPROTO:
		return MHD_HTTP_BAD_GATEWAY;
	case -EIO:
	case -ECANCELED:
		return MHD_HTTP_SERVICE_UNAVAILABLE;
	default:
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
}

struct api_console_wait {
	struct http_deferred *d;
	char vm[API_NAME_MAX + 1], host[API_NAME_MAX + 1];
};

static void
api_console_attached(void *arg, const char *id, int err, const char *why)
{
	struct api_console_wait *w = arg;
	struct http_reply rep = { 0 };

	if (id != NULL) {
		rep.status = MHD_HTTP_CREATED;
		rep.json = json_pack("{s:s, s:s, s:s}", "session", id, "vm", w->vm,
		    "host", w->host);
		snprintf(rep.location, sizeof(rep.location), "/api/v1/consoles/%s",
		    id);
	} else {
		http_error(&rep, api_console_status(err), "%s", why);
	}
	http_finish(w->d, &rep);
	free(w);
}

void
api_vm_console_attach(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	struct api_console_wait *w = NULL;
	struct vm_row *v;
	char err[512];
	int r;

	if ((v = malloc(sizeof(*v))) == NULL ||
	    (w = calloc(1, sizeof(*w))) == NULL) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		goto out;
	}
	if ((r = db_vm_get(hvd->db, key, v)) < 0) {
		http_error(rep, r == -ENOENT ? MHD_HTTP_NOT_FOUND :
		    MHD_HTTP_INTERNAL_SERVER_ERROR, r == -ENOENT ? "no VM '%s'" :
		    "database error", key);
		goto out;
	}
	snprintf(w->vm, sizeof(w->vm), "%s", v->name);
	snprintf(w->host, sizeof(w->host), "%s", v->host);
	if ((r = console_attach(hvd, v, req->actor, api_console_attached, w, err,
	    sizeof(err))) < 0) {
		http_error(rep, api_console_status(r), "%s", err);
		goto out;
	}
	/* The broker calls back from the loop, never from inside. */
	w->d = http_defer(req, rep);
	w = NULL;
out:
	free(w);
	free(v);
}

void
api_consoles_list(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	(void)hvd;
	rep->status = MHD_HTTP_OK;
	rep->json = console_list_json(req->actor, hvd_now_mono_ms());
}

/* A chunk as the read's reply; takes its data. */
static void
api_console_chunk(struct console_chunk *k, struct http_reply *rep)
{
	char *b64 = console_b64_encode(k->data, k->len);

	if (b64 == NULL) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	} else {
		rep->status = MHD_HTTP_OK;
		rep->json = json_pack("{s:s, s:I, s:s, s:I, s:s?}", "vm", k->vm,
		    "next", (json_int_t)k->next, "data", b64, "lost",
		    (json_int_t)k->lost, "closed", k->closed ? k->reason : NULL);
		snprintf(rep->header[0], sizeof(rep->header[0]),
		    "Cache-Control: no-store");
	}
	free(b64);
	console_chunk_dispose(k);
}

static void
api_console_read_done(void *arg, struct console_chunk *k)
{
	struct http_reply rep = { 0 };

	api_console_chunk(k, &rep);
	http_finish(arg, &rep);
}

void
api_console_read(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	const char *qf = req->query(req, "from"), *qw = req->query(req, "wait");
	struct http_deferred *d;
	struct console_chunk k;
	uint64_t from = 0;
	uint32_t wait_s = CONSOLE_WAIT_MAX_S;
	char err[512];
	int r;

	(void)hvd;
	if (qf != NULL && parse_u64(qf, 0, ((uint64_t)1 << 53) - 1, &from) < 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "query 'from' must be an "
		    "integer in 0..2^53-1 (the 'next' of the last read)");
		return;
	}
	if (qw != NULL && parse_u32(qw, 0, CONSOLE_WAIT_MAX_S, &wait_s) < 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "query 'wait' must be an "
		    "integer in 0..%d (seconds)", CONSOLE_WAIT_MAX_S);
		return;
	}
	/* Deferred first: the broker keeps the handle only when it waits. */
	d = http_defer(req, rep);
	r = console_read(key, req->actor, from, wait_s, hvd_now_mono_ms(),
	    api_console_read_done, d, &k, err, sizeof(err));
	if (r == 0)
		return;
	rep->deferred = false;
	if (r < 0)
		http_error(rep, api_console_status(r), "%s", err);
	else
		api_console_chunk(&k, rep);
}

static void
api_console_input_done(void *arg, int err, const char *why)
{
	struct http_reply rep = { 0 };

	if (err == 0) {
		rep.status = MHD_HTTP_OK;
		rep.json = json_pack("{s:b}", "accepted", 1);
	} else {
		http_error(&rep, api_console_status(err), "%s", why);
	}
	http_finish(arg, &rep);
}

void
api_console_input(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	uint8_t data[CONSOLE_INPUT_MAX];
	struct http_deferred *d;
	size_t n = 0;
	char err[512];
	int r;

	(void)hvd;
	if (console_input_decode(req->body ? req->body : "", req->body_len, data,
	    &n, err, sizeof(err)) < 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "%s", err);
		return;
	}
	d = http_defer(req, rep);
	if ((r = console_input(key, req->actor, data, n, api_console_input_done,
	    d, err, sizeof(err))) < 0) {
		rep->deferred = false;
		http_error(rep, api_console_status(r), "%s", err);
	}
}

void
api_console_detach(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	char err[512];
	int r;

	(void)hvd;
	if ((r = console_detach(key, req->actor, err, sizeof(err))) < 0) {
		http_error(rep, api_console_status(r), "%s", err);
		return;
	}
	rep->status = MHD_HTTP_OK;
	rep->json = json_pack("{s:s, s:b}", "session", key, "detached", 1);
}
