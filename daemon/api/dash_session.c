/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The dashboard's sign-in: an operator trades an API token for a session
 * cookie (POST /api/v1/session), which then stands for that token on the
 * TCP API until it expires, is ended (DELETE /api/v1/session) or its token
 * is deleted.
 *
 * The cookie is 256 random bits, HttpOnly, SameSite=Strict, Path=/, with a
 * Max-Age, and Secure when the API is on TLS.  Only its keyed hash is kept,
 * in memory: an hvd restart signs everyone out.  A state-changing request
 * made with the cookie must also carry the session's CSRF token in
 * X-CSRF-Token, which the page learns from the login reply or GET
 * /api/v1/session (same-origin only: no CORS header is ever sent).
 *
 * Invariants: at most DASH_SESSIONS_MAX sessions (the oldest goes first);
 * a session's role is its token's, read again on every request.  Must
 * never log a cookie, a CSRF token or the token signed in with; refusals
 * are counted, not logged one by one.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <microhttpd.h>
#include <sodium.h>

#include "rest.h"

#define DASH_SESSIONS_MAX	256
#define DASH_SESSION_TTL_S	(8 * 3600)

struct dash_session {
	bool used;
	uint8_t id_hash[32];
	char csrf[2 * SESSION_ID_LEN + 1];
	char token_id[AUTH_ID_HEX + 1];
	int64_t created, expires;	/* wall seconds */
};

static struct dash_session dash_sessions[DASH_SESSIONS_MAX];
static uint64_t dash_logins[2];		/* refused, accepted */
static uint64_t dash_uses_refused;
static const uint8_t dash_hash_key[] = "hvd dashboard session v1";

static void
dash_hash(const uint8_t id[SESSION_ID_LEN], uint8_t h[32])
{
	crypto_generichash(h, 32, id, SESSION_ID_LEN, dash_hash_key,
	    sizeof(dash_hash_key) - 1);
}

static struct dash_session *
dash_find(const char *cookie, int64_t now)
{
	uint8_t id[SESSION_ID_LEN], h[32];
	struct dash_session *hit = NULL;

	if (session_cookie_parse(cookie, id) < 0)
		return NULL;
	dash_hash(id, h);
	sodium_memzero(id, sizeof(id));
	for (size_t i = 0; i < DASH_SESSIONS_MAX; i++) {
		struct dash_session *s = &dash_sessions[i];

		if (!s->used)
			continue;
		if (s->expires <= now) {
			sodium_memzero(s, sizeof(*s));
			continue;
		}
		if (sodium_memcmp(s->id_hash, h, sizeof(h)) == 0)
			hit = s;
	}
	return hit;
}

static bool
dash_safe_method(const char *method)
{
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

int
dash_session_check(struct hvd *hvd, const char *cookie, const char *method,
    const char *csrf, enum api_role *role, char *actor, size_t actorlen,
    const char **why)
{
	int64_t now = hvd_now_wall();
	struct dash_session *s = dash_find(cookie, now);
	struct token_row row;

	dash_uses_refused++;
	if (s == NULL) {
		*why = "the dashboard session has expired or ended: sign in again";
		return -1;
	}
	if (db_token_get(hvd->db, s->token_id, &row) < 0) {
		sodium_memzero(s, sizeof(*s));
		*why = "the token this dashboard session signed in with was "
		    "deleted: sign in again";
		return -1;
	}
	if (!dash_safe_method(method) && (csrf == NULL ||
	    strlen(csrf) != sizeof(s->csrf) - 1 ||
	    sodium_memcmp(csrf, s->csrf, sizeof(s->csrf) - 1) != 0)) {
		*why = "a dashboard session's request that changes something "
		    "needs the session's X-CSRF-Token header";
		return -1;
	}
	dash_uses_refused--;
	*role = row.role;
	snprintf(actor, actorlen, "session:%s", s->token_id);
	return 0;
}

/* "Set-Cookie: ..." into rep's first free extra header. */
static void
dash_set_cookie(const struct http_request *req, struct http_reply *rep,
    const char *value, int64_t max_age)
{
	for (size_t i = 0; i < HTTP_EXTRA_HEADERS; i++) {
		if (rep->header[i][0])
			continue;
		snprintf(rep->header[i], sizeof(rep->header[i]),
		    "Set-Cookie: %s=%s; Path=/; Max-Age=%lld; HttpOnly; "
		    "SameSite=Strict%s", HTTP_SESSION_COOKIE, value,
		    (long long)max_age, req->tls ? "; Secure" : "");
		return;
	}
}

static struct dash_session *
dash_slot(int64_t now)
{
	struct dash_session *oldest = &dash_sessions[0];

	for (size_t i = 0; i < DASH_SESSIONS_MAX; i++) {
		struct dash_session *s = &dash_sessions[i];

		if (!s->used || s->expires <= now)
			return s;
		if (s->created < oldest->created)
			oldest = s;
	}
	return oldest;
}

static json_t *
dash_session_json(const struct dash_session *s, enum api_role role)
{
	return json_pack("{s:b, s:s, s:s, s:s, s:o}", "session", 1,
	    "role", api_role_name(role), "token_id", s->token_id,
	    "csrf", s->csrf, "expires_at", api_time_json(s->expires));
}

void
api_session_create(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	char token[AUTH_TOKEN_STRLEN], bearer[AUTH_TOKEN_STRLEN + 8];
	char id[AUTH_ID_HEX + 1], cookie[2 * SESSION_ID_LEN + 1];
	uint8_t raw[SESSION_ID_LEN], csrf[SESSION_ID_LEN];
	int64_t now = hvd_now_wall();
	struct dash_session *s;
	enum api_role role;
	const char *why;
	int r;

	if (req->secrets_refused != NULL) {
		dash_logins[0]++;
		http_error(rep, MHD_HTTP_UNAUTHORIZED, "%s", req->secrets_refused);
		return;
	}
	if (session_login_parse(req->body, req->body_len, token, &why) < 0) {
		dash_logins[0]++;
		http_error(rep, MHD_HTTP_BAD_REQUEST, "%s", why);
		return;
	}
	snprintf(bearer, sizeof(bearer), "Bearer %s", token);
	r = auth_bearer(hvd->db, bearer, &role, id, now);
	sodium_memzero(token, sizeof(token));
	sodium_memzero(bearer, sizeof(bearer));
	if (r < 0) {
		dash_logins[0]++;
		http_error(rep, MHD_HTTP_UNAUTHORIZED, "that token is not valid "
		    "(deleted, or never issued by this hvd)");
		return;
	}
	s = dash_slot(now);
	sodium_memzero(s, sizeof(*s));
	randombytes_buf(raw, sizeof(raw));
	randombytes_buf(csrf, sizeof(csrf));
	dash_hash(raw, s->id_hash);
	sodium_bin2hex(cookie, sizeof(cookie), raw, sizeof(raw));
	sodium_bin2hex(s->csrf, sizeof(s->csrf), csrf, sizeof(csrf));
	sodium_memzero(raw, sizeof(raw));
	snprintf(s->token_id, sizeof(s->token_id), "%s", id);
	s->created = now;
	s->expires = now + DASH_SESSION_TTL_S;
	s->used = true;
	dash_logins[1]++;
	dash_set_cookie(req, rep, cookie, DASH_SESSION_TTL_S);
	sodium_memzero(cookie, sizeof(cookie));
	(void)db_event_record(hvd->db, "session.opened", id, req->actor,
	    api_role_name(role), now);
	rep->status = MHD_HTTP_CREATED;
	rep->json = dash_session_json(s, role);
}

void
api_session_show(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	struct dash_session *s = req->cookie ? dash_find(req->cookie,
	    hvd_now_wall()) : NULL;

	(void)hvd;
	rep->status = MHD_HTTP_OK;
	if (s == NULL) {
		/* A bearer token or the unix socket: no session to show. */
		rep->json = json_pack("{s:b, s:s}", "session", 0, "role",
		    api_role_name(req->role));
		return;
	}
	rep->json = dash_session_json(s, req->role);
}

void
api_session_delete(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	struct dash_session *s = req->cookie ? dash_find(req->cookie,
	    hvd_now_wall()) : NULL;

	if (s == NULL) {
		http_error(rep, MHD_HTTP_NOT_FOUND, "this request carries no "
		    "dashboard session to end");
		return;
	}
	(void)db_event_record(hvd->db, "session.closed", s->token_id,
	    req->actor, "signed out", hvd_now_wall());
	sodium_memzero(s, sizeof(*s));
	dash_set_cookie(req, rep, "", 0);
	rep->status = MHD_HTTP_OK;
	rep->json = json_pack("{s:b}", "ended", 1);
}

void
dash_session_metrics(FILE *f)
{
	int64_t now = hvd_now_wall();
	size_t live = 0;

	for (size_t i = 0; i < DASH_SESSIONS_MAX; i++)
		live += dash_sessions[i].used && dash_sessions[i].expires > now;
	fprintf(f, "# HELP hvd_dashboard_sessions Dashboard sessions signed in.\n"
	    "# TYPE hvd_dashboard_sessions gauge\nhvd_dashboard_sessions %zu\n"
	    "# HELP hvd_dashboard_logins_total Dashboard sign-ins, by result.\n"
	    "# TYPE hvd_dashboard_logins_total counter\n"
	    "hvd_dashboard_logins_total{result=\"accepted\"} %llu\n"
	    "hvd_dashboard_logins_total{result=\"refused\"} %llu\n"
	    "# HELP hvd_dashboard_session_refused_total Requests whose session "
	    "cookie or CSRF token was refused.\n"
	    "# TYPE hvd_dashboard_session_refused_total counter\n"
	    "hvd_dashboard_session_refused_total %llu\n", live,
	    (unsigned long long)dash_logins[1], (unsigned long long)dash_logins[0],
	    (unsigned long long)dash_uses_refused);
}

void
dash_session_shutdown(void)
{
	sodium_memzero(dash_sessions, sizeof(dash_sessions));
}
