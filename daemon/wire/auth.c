/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Bearer tokens for the TCP API: generation, parsing, hashing, role checks.
 *
 * A token reads "hvt_<16 hex id>_<64 hex secret>".  The id is public and
 * is the database key; only BLAKE2b(secret) is stored, so a stolen database
 * grants nothing.  The secret has 256 bits of entropy, so a fast hash is
 * enough (no password stretching needed).
 *
 * Must never log a token or a secret, nor compare secrets with memcmp.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "wire.h"

#define AUTH_PREFIX	"hvt_"
#define AUTH_PREFIX_LEN	4
/* Domain separation: these hashes can never collide with other BLAKE2b uses. */
static const uint8_t auth_hash_key[] = "hypervisor api token v1";

void
auth_secret_hash(const uint8_t secret[AUTH_SECRET_LEN],
    uint8_t hash[AUTH_HASH_LEN])
{
	crypto_generichash(hash, AUTH_HASH_LEN, secret, AUTH_SECRET_LEN,
	    auth_hash_key, sizeof(auth_hash_key) - 1);
}

int
auth_token_generate(char token[AUTH_TOKEN_STRLEN], char id[AUTH_ID_HEX + 1],
    uint8_t hash[AUTH_HASH_LEN])
{
	uint8_t idbytes[AUTH_ID_HEX / 2];
	uint8_t secret[AUTH_SECRET_LEN];

	randombytes_buf(idbytes, sizeof(idbytes));
	randombytes_buf(secret, sizeof(secret));
	sodium_bin2hex(id, AUTH_ID_HEX + 1, idbytes, sizeof(idbytes));
	memcpy(token, AUTH_PREFIX, AUTH_PREFIX_LEN);
	memcpy(token + AUTH_PREFIX_LEN, id, AUTH_ID_HEX);
	token[AUTH_PREFIX_LEN + AUTH_ID_HEX] = '_';
	sodium_bin2hex(token + AUTH_PREFIX_LEN + AUTH_ID_HEX + 1,
	    2 * AUTH_SECRET_LEN + 1, secret, sizeof(secret));
	auth_secret_hash(secret, hash);
	sodium_memzero(secret, sizeof(secret));
	return 0;
}

static bool
auth_is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int
auth_token_parse(const char *s, size_t len, char id[AUTH_ID_HEX + 1],
    uint8_t secret[AUTH_SECRET_LEN])
{
	const char *sec = s + AUTH_PREFIX_LEN + AUTH_ID_HEX + 1;
	size_t binlen = 0;

	if (len != AUTH_TOKEN_STRLEN - 1 ||
	    memcmp(s, AUTH_PREFIX, AUTH_PREFIX_LEN) != 0 ||
	    s[AUTH_PREFIX_LEN + AUTH_ID_HEX] != '_' ||
	    !auth_is_lower_hex(s + AUTH_PREFIX_LEN, AUTH_ID_HEX) ||
	    !auth_is_lower_hex(sec, 2 * AUTH_SECRET_LEN))
		return -EINVAL;
	if (sodium_hex2bin(secret, AUTH_SECRET_LEN, sec, 2 * AUTH_SECRET_LEN,
	    NULL, &binlen, NULL) != 0 || binlen != AUTH_SECRET_LEN)
		return -EINVAL;
	memcpy(id, s + AUTH_PREFIX_LEN, AUTH_ID_HEX);
	id[AUTH_ID_HEX] = '\0';
	return 0;
}

bool
auth_role_allows(enum api_role have, enum api_role need)
{
	if (need == API_ROLE_NONE)
		return true;
	if (have == API_ROLE_ADMIN)
		return true;
	return have == API_ROLE_READ && need == API_ROLE_READ;
}

/*
 * Boot tokens: "hvb_" + 64 hex digits, single use, carried in a host's
 * overlay and presented once in the agent's hello.  Stored as a keyed hash
 * like API tokens, under a different key so the two can never be swapped.
 */
static const uint8_t auth_boot_key[] = "hypervisor boot token v1";

void
auth_boot_token_generate(char token[AUTH_BOOT_TOKEN_STRLEN],
    uint8_t hash[AUTH_HASH_LEN])
{
	uint8_t secret[AUTH_SECRET_LEN];

	randombytes_buf(secret, sizeof(secret));
	memcpy(token, "hvb_", 4);
	sodium_bin2hex(token + 4, 2 * AUTH_SECRET_LEN + 1, secret, sizeof(secret));
	sodium_memzero(secret, sizeof(secret));
	auth_boot_token_hash(token, hash);
}

int
auth_boot_token_hash(const char *token, uint8_t hash[AUTH_HASH_LEN])
{
	size_t n = strlen(token);

	if (n != AUTH_BOOT_TOKEN_STRLEN - 1 || memcmp(token, "hvb_", 4) != 0 ||
	    !auth_is_lower_hex(token + 4, 2 * AUTH_SECRET_LEN))
		return -EINVAL;
	crypto_generichash(hash, AUTH_HASH_LEN, (const uint8_t *)token, n,
	    auth_boot_key, sizeof(auth_boot_key) - 1);
	return 0;
}
