/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The TCP API's bearer check: a token from an Authorization header against
 * the stored hash of its id (wire/auth.c parses and hashes; this looks it
 * up).  Secrets are wiped after use and compared in constant time; nothing
 * here logs a token.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "store.h"

/*
 * Checks an Authorization header value.  Returns 0 with the token's role,
 * -ENOENT when there is no usable header, -EACCES when the token is wrong.
 * Both failures look the same to the client (401); the log tells them apart.
 */
int
auth_bearer(struct db *db, const char *authorization, enum api_role *role,
    char id[AUTH_ID_HEX + 1], int64_t now)
{
	uint8_t secret[AUTH_SECRET_LEN], hash[AUTH_HASH_LEN];
	struct token_row row;
	const char *tok;
	int r;

	if (authorization == NULL || strncmp(authorization, "Bearer ", 7) != 0)
		return -ENOENT;
	tok = authorization + 7;
	if (auth_token_parse(tok, strlen(tok), id, secret) < 0) {
		r = -EACCES;
		goto out;
	}
	auth_secret_hash(secret, hash);
	if ((r = db_token_get(db, id, &row)) < 0) {
		r = -EACCES;
		goto out;
	}
	if (sodium_memcmp(hash, row.hash, AUTH_HASH_LEN) != 0) {
		r = -EACCES;
		goto out;
	}
	/* Recording use costs a durable write: at most once a minute. */
	if (now - row.last_used_at >= 60)
		(void)db_token_touch(db, id, now);
	*role = row.role;
	r = 0;
out:
	sodium_memzero(secret, sizeof(secret));
	return r;
}
