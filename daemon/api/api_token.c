/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * /api/v1/tokens: create, list and revoke bearer tokens (admin only).
 *
 * The token string is returned once, in the creation reply, and exists
 * nowhere else: not in the database (only its hash), not in any log.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>
#include <sodium.h>

#include "rest.h"

static json_t *
api_token_json(const struct token_row *t)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", t->id,
	    "role", api_role_name(t->role), "name", t->name,
	    "created_at", api_time_json(t->created_at),
	    "last_used_at", api_time_json(t->last_used_at));
}

void
api_tokens_list(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	struct token_row *rows = NULL;
	size_t n = 0;
	json_t *arr;

	(void)req;
	if (db_token_list(hvd->db, &rows, &n) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "database error while listing tokens");
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, api_token_json(&rows[i]));
	free(rows);
	rep->status = MHD_HTTP_OK;
	rep->json = json_pack("{s:o}", "tokens", arr);
}

void
api_tokens_create(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	struct api_token_request in;
	struct token_row row = { 0 };
	char token[AUTH_TOKEN_STRLEN];
	char err[256];
	int r;

	if (api_token_request_decode(req->body, req->body_len, &in, err,
	    sizeof(err)) < 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "%s", err);
		return;
	}
	auth_token_generate(token, row.id, row.hash);
	row.role = in.role;
	snprintf(row.name, sizeof(row.name), "%s", in.name);
	row.created_at = hvd_now_wall();
	if ((r = db_token_insert(hvd->db, &row, req->actor, row.created_at)) < 0) {
		sodium_memzero(token, sizeof(token));
		http_error(rep, r == -EAGAIN ? MHD_HTTP_SERVICE_UNAVAILABLE :
		    MHD_HTTP_INTERNAL_SERVER_ERROR, "could not store the token");
		return;
	}
	log_info("token %s: created with role %s by %s", row.id,
	    api_role_name(row.role), req->actor);
	rep->status = MHD_HTTP_CREATED;
	rep->json = api_token_json(&row);
	json_object_set_new(rep->json, "token", json_string(token));
	sodium_memzero(token, sizeof(token));
}

void
api_token_delete(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *key)
{
	int r;

	if ((r = db_token_delete(hvd->db, key, req->actor, hvd_now_wall())) < 0) {
		if (r == -ENOENT)
			http_error(rep, MHD_HTTP_NOT_FOUND, "no token '%s'", key);
		else
			http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR,
			    "database error");
		return;
	}
	log_info("token %s: revoked by %s", key, req->actor);
	rep->status = MHD_HTTP_NO_CONTENT;
}
