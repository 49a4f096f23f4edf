/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Token generation, parsing and hashing, bearer checks against a real
 * database, and the role table.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "store.h"

static char tmpdir[] = "/tmp/hv-test-auth.XXXXXX";

static void
test_generate_parse_roundtrip(void **state)
{
	char token[AUTH_TOKEN_STRLEN], id[AUTH_ID_HEX + 1], id2[AUTH_ID_HEX + 1];
	uint8_t hash[AUTH_HASH_LEN], hash2[AUTH_HASH_LEN];
	uint8_t secret[AUTH_SECRET_LEN];

	(void)state;
	assert_int_equal(auth_token_generate(token, id, hash), 0);
	assert_int_equal(strlen(token), AUTH_TOKEN_STRLEN - 1);
	assert_memory_equal(token, "hvt_", 4);
	assert_int_equal(auth_token_parse(token, strlen(token), id2, secret), 0);
	assert_string_equal(id, id2);
	auth_secret_hash(secret, hash2);
	assert_memory_equal(hash, hash2, AUTH_HASH_LEN);
	/* The stored hash is not the secret itself. */
	assert_memory_not_equal(hash, secret, AUTH_HASH_LEN);
}

static void
test_two_tokens_differ(void **state)
{
	char t1[AUTH_TOKEN_STRLEN], t2[AUTH_TOKEN_STRLEN];
	char i1[AUTH_ID_HEX + 1], i2[AUTH_ID_HEX + 1];
	uint8_t h1[AUTH_HASH_LEN], h2[AUTH_HASH_LEN];

	(void)state;
	auth_token_generate(t1, i1, h1);
	auth_token_generate(t2, i2, h2);
	assert_string_not_equal(t1, t2);
	assert_string_not_equal(i1, i2);
	assert_memory_not_equal(h1, h2, AUTH_HASH_LEN);
}

static void
test_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"hvt_",
		"Hvt_0123456789abcdef_0000000000000000000000000000000000000000000000000000000000000000",
		"hvt_0123456789abcdeF_0000000000000000000000000000000000000000000000000000000000000000",
		"hvt_0123456789abcdef-0000000000000000000000000000000000000000000000000000000000000000",
		"hvt_0123456789abcdef_000000000000000000000000000000000000000000000000000000000000000",
		"hvt_0123456789abcdef_00000000000000000000000000000000000000000000000000000000000000000",
		"hvt_0123456789abcdef_000000000000000000000000000000000000000000000000000000000000000g",
		"hvt_0123456789abcde _0000000000000000000000000000000000000000000000000000000000000000",
	};
	char id[AUTH_ID_HEX + 1];
	uint8_t secret[AUTH_SECRET_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (auth_token_parse(bad[i], strlen(bad[i]), id, secret) != -EINVAL)
			fail_msg("accepted bad token %zu: %s", i, bad[i]);
}

static void
test_roles(void **state)
{
	(void)state;
	assert_true(auth_role_allows(API_ROLE_ADMIN, API_ROLE_ADMIN));
	assert_true(auth_role_allows(API_ROLE_ADMIN, API_ROLE_READ));
	assert_true(auth_role_allows(API_ROLE_READ, API_ROLE_READ));
	assert_false(auth_role_allows(API_ROLE_READ, API_ROLE_ADMIN));
	assert_false(auth_role_allows(API_ROLE_NONE, API_ROLE_READ));
	assert_false(auth_role_allows(API_ROLE_NONE, API_ROLE_ADMIN));
	assert_true(auth_role_allows(API_ROLE_NONE, API_ROLE_NONE));
}

static void
test_bearer_against_db(void **state)
{
	char token[AUTH_TOKEN_STRLEN], hdr[AUTH_TOKEN_STRLEN + 16];
	char id[AUTH_ID_HEX + 1];
	struct token_row row = { .role = API_ROLE_READ };
	enum api_role role = API_ROLE_NONE;
	char path[256];
	struct db *db;

	(void)state;
	snprintf(path, sizeof(path), "%s/auth.db", tmpdir);
	assert_int_equal(db_open(path, &db), 0);
	auth_token_generate(token, row.id, row.hash);
	assert_int_equal(db_token_insert(db, &row, "test", 100), 0);

	snprintf(hdr, sizeof(hdr), "Bearer %s", token);
	assert_int_equal(auth_bearer(db, hdr, &role, id, 200), 0);
	assert_int_equal(role, API_ROLE_READ);
	assert_string_equal(id, row.id);

	assert_int_equal(auth_bearer(db, NULL, &role, id, 200), -ENOENT);
	assert_int_equal(auth_bearer(db, "Basic Zm9vOmJhcg==", &role, id, 200),
	    -ENOENT);
	/* Right id, wrong secret: one flipped hex digit. */
	hdr[strlen(hdr) - 1] = hdr[strlen(hdr) - 1] == '0' ? '1' : '0';
	assert_int_equal(auth_bearer(db, hdr, &role, id, 200), -EACCES);
	/* Revoked token. */
	snprintf(hdr, sizeof(hdr), "Bearer %s", token);
	assert_int_equal(db_token_delete(db, row.id, "test", 300), 0);
	assert_int_equal(auth_bearer(db, hdr, &role, id, 400), -EACCES);
	db_close(db);
}

static int
setup(void **state)
{
	(void)state;
	log_init(true, LOG_LEVEL_ERROR, "test");
	return sodium_init() < 0 || mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate_parse_roundtrip),
		cmocka_unit_test(test_two_tokens_differ),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_bearer_against_db),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
