/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * What a browser sends the dashboard's session layer, parsed strictly:
 * the session cookie (64 lowercase hex digits, nothing else), the login
 * body ({"token": "hvt_..."} and no other key) and SSE's Last-Event-ID (a
 * decimal id).  Pure functions over the client's bytes (fuzz_session).
 *
 * Must never keep or copy a token anywhere but the caller's buffer.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "numparse.h"
#include "wire.h"

int
session_cookie_parse(const char *s, uint8_t id[SESSION_ID_LEN])
{
	size_t n;

	if (s == NULL || (n = strnlen(s, 2 * SESSION_ID_LEN + 1)) !=
	    2 * SESSION_ID_LEN)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return -EINVAL;
	if (sodium_hex2bin(id, SESSION_ID_LEN, s, n, NULL, NULL, NULL) != 0)
		return -EINVAL;
	return 0;
}

/* "unknown field 'KEY'", naming KEY only when it is plainly a name. */
static void
session_unknown_field(const char *key, const char **why)
{
	static char msg[80];
	size_t n = strlen(key);
	bool plain = n > 0 && n <= 32;

	for (size_t i = 0; plain && i < n; i++)
		plain = (key[i] >= 'a' && key[i] <= 'z') || key[i] == '_' ||
		    (key[i] >= '0' && key[i] <= '9');
	if (!plain) {
		*why = "unknown field in the login body (it takes only 'token')";
		return;
	}
	snprintf(msg, sizeof(msg), "unknown field '%s' (the login body takes "
	    "only 'token')", key);
	*why = msg;
}

int
session_login_parse(const char *body, size_t len,
    char token[AUTH_TOKEN_STRLEN], const char **why)
{
	uint8_t secret[AUTH_SECRET_LEN];
	char id[AUTH_ID_HEX + 1];
	json_error_t jerr;
	const char *key, *t;
	json_t *j, *v;
	int r = -EINVAL;

	*why = "the body must be a JSON object {\"token\": \"hvt_...\"}";
	if (body == NULL || len == 0 || len > SESSION_LOGIN_MAX)
		return -EINVAL;
	if ((j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		return -EINVAL;
	if (!json_is_object(j))
		goto out;
	json_object_foreach(j, key, v) {
		if (strcmp(key, "token") != 0) {
			session_unknown_field(key, why);
			goto out;
		}
	}
	if ((v = json_object_get(j, "token")) == NULL) {
		*why = "missing field 'token'";
		goto out;
	}
	if ((t = json_string_value(v)) == NULL) {
		*why = "field 'token' must be a string";
		goto out;
	}
	if (auth_token_parse(t, strlen(t), id, secret) < 0) {
		*why = "\"token\" is not an hvd API token (hvt_<id>_<secret>)";
		goto out;
	}
	sodium_memzero(secret, sizeof(secret));
	memcpy(token, t, strlen(t) + 1);
	*why = NULL;
	r = 0;
out:
	json_decref(j);
	return r;
}

int
session_last_event_id(const char *s, uint64_t *id)
{
	if (s == NULL || s[0] == '\0' || strlen(s) > 20)
		return -EINVAL;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return -EINVAL;
	return parse_u64(s, 0, UINT64_MAX, id);
}
