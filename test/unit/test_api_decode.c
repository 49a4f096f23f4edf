/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * REST body decoders and number parsing: strict, and every rejection names
 * what was wrong.  And the API's one time format.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "numparse.h"

struct decode_case {
	enum api_decode_mode mode;
	const char *body;
	const char *error;	/* NULL: accepted */
};

static const struct decode_case net_cases[] = {
	{ API_DECODE_CREATE, "{\"name\":\"prod\",\"vni\":100}", NULL },
	{ API_DECODE_CREATE, "{\"name\":\"a\",\"vni\":1,\"description\":\"x\",\"all_hosts\":false}", NULL },
	{ API_DECODE_CREATE, "{\"name\":\"a\",\"vni\":16777215}", NULL },
	{ API_DECODE_PATCH, "{\"description\":\"moved\"}", NULL },
	{ API_DECODE_CREATE, "", "request body is empty; expected a JSON object" },
	{ API_DECODE_CREATE, "{\"name\":", "invalid JSON at line 1, column 8: unexpected token near end of file" },
	{ API_DECODE_CREATE, "[1]", "request body must be a JSON object" },
	{ API_DECODE_CREATE, "{\"name\":\"a\",\"vni\":1} x", "invalid JSON at line 1, column 22: end of file expected near 'x'" },
	{ API_DECODE_CREATE, "{\"vni\":1}", "missing field 'name'" },
	{ API_DECODE_CREATE, "{\"name\":\"a\"}", "missing field 'vni'" },
	{ API_DECODE_CREATE, "{\"name\":\"a\",\"vni\":0}", "field 'vni' must be in 1..16777215" },
	{ API_DECODE_CREATE, "{\"name\":\"a\",\"vni\":16777216}", "field 'vni' must be in 1..16777215" },
	{ API_DECODE_CREATE, "{\"name\":\"a\",\"vni\":-5}", "field 'vni' must be in 1..16777215" },
	{ API_DECODE_CREATE, "{\"name\":\"a\",\"vni\":1.5}", "field 'vni' must be an integer" },
	{ API_DECODE_CREATE, "{\"name\":\"a\",\"vni\":\"7\"}", "field 'vni' must be an integer" },
	{ API_DECODE_CREATE, "{\"name\":7,\"vni\":7}", "field 'name' must be a string" },
	{ API_DECODE_CREATE, "{\"name\":\"Prod\",\"vni\":7}", "field 'name' must start with a-z and contain only a-z, 0-9 and '-' (not at the end), at most 63 characters" },
	{ API_DECODE_CREATE, "{\"name\":\"a-\",\"vni\":7}", "field 'name' must start with a-z and contain only a-z, 0-9 and '-' (not at the end), at most 63 characters" },
	{ API_DECODE_CREATE, "{\"name\":\"\",\"vni\":7}", "field 'name' must be 1 to 63 bytes long" },
	{ API_DECODE_CREATE, "{\"name\":\"a\\u0000b\",\"vni\":7}", "invalid JSON at line 1, column 18: \\u0000 is not allowed without JSON_ALLOW_NUL near '\"a\\u0000b\"'" },
	{ API_DECODE_CREATE, "{\"name\":\"a\",\"vni\":7,\"color\":\"red\"}", "unknown field 'color'" },
	{ API_DECODE_CREATE, "{\"name\":\"a\",\"name\":\"b\",\"vni\":7}", "invalid JSON at line 1, column 18: duplicate object key near '\"name\"'" },
	{ API_DECODE_CREATE, "{\"name\":\"a\",\"vni\":7,\"all_hosts\":1}", "field 'all_hosts' must be true or false" },
	{ API_DECODE_CREATE, "{\"name\":\"a\",\"vni\":7,\"description\":\"tab\\there\"}", "field 'description' contains a control character" },
	{ API_DECODE_PATCH, "{}", "nothing to change: give at least one of 'name', 'description', 'all_hosts', 'members'" },
	{ API_DECODE_CREATE, "{\"name\":\"a\",\"vni\":7,\"members\":[\"h1\"],\"all_hosts\":true}", "give 'members' or \"all_hosts\": true, not both" },
	{ API_DECODE_CREATE, "{\"name\":\"a\",\"vni\":7,\"members\":[\"h1\",\"h1\"]}", "members[1]: 'h1' is listed twice" },
};

static void
test_network_decode_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(net_cases) / sizeof(*net_cases); i++) {
		const struct decode_case *c = &net_cases[i];
		struct api_network n;
		char err[256] = "";
		int r;

		r = api_network_decode(c->body, strlen(c->body), c->mode, &n, err,
		    sizeof(err));
		if (c->error == NULL && r != 0)
			fail_msg("case %zu rejected: %s", i, err);
		if (c->error != NULL) {
			if (r != -EINVAL)
				fail_msg("case %zu accepted: %s", i, c->body);
			assert_string_equal(err, c->error);
		}
	}
}

static void
test_network_decode_values(void **state)
{
	static const char body[] = "{\"name\":\"prod-1\",\"vni\":4096,"
	    "\"description\":\"rack A\"}";
	struct api_network n;
	char err[128];

	(void)state;
	assert_int_equal(api_network_decode(body, strlen(body), API_DECODE_CREATE,
	    &n, err, sizeof(err)), 0);
	assert_string_equal(n.name, "prod-1");
	assert_int_equal(n.vni, 4096);
	assert_string_equal(n.description, "rack A");
	assert_true(n.all_hosts);	/* default */
	assert_int_equal(n.present, API_NET_NAME | API_NET_VNI | API_NET_DESCRIPTION);
}

/* Explicit members turn all_hosts off, and the flag says they were given. */
static void
test_network_decode_members(void **state)
{
	static const char body[] = "{\"name\":\"ops\",\"vni\":200,"
	    "\"members\":[\"h1\",\"h2\"]}";
	struct api_network n;
	char err[128];

	(void)state;
	assert_int_equal(api_network_decode(body, strlen(body), API_DECODE_CREATE,
	    &n, err, sizeof(err)), 0);
	assert_false(n.all_hosts);
	assert_int_equal(n.nmembers, 2);
	assert_string_equal(n.members[1], "h2");
	assert_int_equal(n.present, API_NET_NAME | API_NET_VNI |
	    API_NET_MEMBERS | API_NET_ALL_HOSTS);
}

static void
test_long_unknown_key_is_bounded(void **state)
{
	char body[600], err[256];
	struct api_network n;

	(void)state;
	memset(body, 'k', sizeof(body));
	memcpy(body, "{\"", 2);
	memcpy(body + sizeof(body) - 6, "\":1}", 5);
	assert_int_equal(api_network_decode(body, strlen(body), API_DECODE_CREATE,
	    &n, err, sizeof(err)), -EINVAL);
	assert_int_equal(strlen(err), strlen("unknown field ''") + 32);
}

static void
test_token_request(void **state)
{
	struct api_token_request t;
	char err[128];

	(void)state;
	assert_int_equal(api_token_request_decode("{\"role\":\"read\"}", 15, &t,
	    err, sizeof(err)), 0);
	assert_int_equal(t.role, API_ROLE_READ);
	assert_int_equal(api_token_request_decode("{\"role\":\"root\"}", 15, &t,
	    err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "field 'role' must be \"admin\" or \"read\"");
	assert_int_equal(api_token_request_decode("{\"name\":\"ci\"}", 13, &t,
	    err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "missing field 'role'");
}

static void
test_numparse(void **state)
{
	uint32_t v32;
	uint64_t v64;
	unsigned mode;

	(void)state;
	assert_int_equal(parse_u32("42", 0, 100, &v32), 0);
	assert_int_equal(v32, 42);
	assert_int_equal(parse_u32("101", 0, 100, &v32), -ERANGE);
	assert_int_equal(parse_u32(" 4", 0, 100, &v32), -EINVAL);
	assert_int_equal(parse_u32("4 ", 0, 100, &v32), -EINVAL);
	assert_int_equal(parse_u32("-4", 0, 100, &v32), -EINVAL);
	assert_int_equal(parse_u32("+4", 0, 100, &v32), -EINVAL);
	assert_int_equal(parse_u32("", 0, 100, &v32), -EINVAL);
	assert_int_equal(parse_u32("0x10", 0, 100, &v32), -EINVAL);
	assert_int_equal(parse_u64("18446744073709551616", 0, UINT64_MAX, &v64),
	    -ERANGE);
	assert_int_equal(parse_u64("18446744073709551615", 0, UINT64_MAX, &v64), 0);
	assert_int_equal(parse_mode("0640", &mode), 0);
	assert_int_equal(mode, 0640);
	assert_int_equal(parse_mode("1777", &mode), -ERANGE);
	assert_int_equal(parse_mode("08", &mode), -EINVAL);
}

static const struct {
	int64_t secs;
	const char *text;	/* NULL: unknown, JSON null */
} time_cases[] = {
	{ 1796326200, "2026-12-03T19:30:00Z" },
	{ 1, "1970-01-01T00:00:01Z" },
	{ 951782400, "2000-02-29T00:00:00Z" },
	{ 0, NULL },
	{ -1, NULL },
	{ INT64_MAX, NULL },
};

static void
test_time_format(void **state)
{
	char buf[API_TIME_LEN], small[8];

	(void)state;
	for (size_t i = 0; i < sizeof(time_cases) / sizeof(*time_cases); i++) {
		const char *t = time_cases[i].text;
		json_t *j = api_time_json(time_cases[i].secs);

		if (t) {
			assert_ptr_equal(api_time_format(time_cases[i].secs, buf,
			    sizeof(buf)), buf);
			assert_string_equal(buf, t);
			assert_string_equal(json_string_value(j), t);
		} else {
			assert_null(api_time_format(time_cases[i].secs, buf,
			    sizeof(buf)));
			assert_string_equal(buf, "");
			assert_true(json_is_null(j));
		}
		json_decref(j);
	}
	/* Never a cut time: too small a buffer is no time at all. */
	assert_null(api_time_format(1796326200, small, sizeof(small)));
	assert_string_equal(small, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_network_decode_table),
		cmocka_unit_test(test_network_decode_values),
		cmocka_unit_test(test_network_decode_members),
		cmocka_unit_test(test_long_unknown_key_is_bounded),
		cmocka_unit_test(test_token_request),
		cmocka_unit_test(test_numparse),
		cmocka_unit_test(test_time_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
