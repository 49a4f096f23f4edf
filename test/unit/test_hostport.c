/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hostport_parse(): a pass/fail table.  Each accepted case names the host
 * and port it must yield; each refused case the fault and the exact
 * message, since hvd.conf and agent.conf errors are built from them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostport.h"

struct hp_case {
	const char *text;
	bool allow_zero;
	const char *host;	/* on success */
	uint16_t port;
	enum hostport_fault fault;
	const char *error;	/* NULL: must parse */
};

static const struct hp_case hp_cases[] = {
	/* accepted */
	{ "10.0.0.1:8471", true, "10.0.0.1", 8471, HOSTPORT_OK, NULL },
	{ "0.0.0.0:69", false, "0.0.0.0", 69, HOSTPORT_OK, NULL },
	{ "[fd00::1]:8471", false, "fd00::1", 8471, HOSTPORT_OK, NULL },
	{ "[::1]:0", true, "::1", 0, HOSTPORT_OK, NULL },
	{ "[::ffff:10.0.0.1]:80", true, "::ffff:10.0.0.1", 80, HOSTPORT_OK,
	    NULL },
	{ "127.0.0.1:0", true, "127.0.0.1", 0, HOSTPORT_OK, NULL },
	{ "127.0.0.1:65535", false, "127.0.0.1", 65535, HOSTPORT_OK, NULL },
	{ "127.0.0.1:00080", false, "127.0.0.1", 80, HOSTPORT_OK, NULL },

	/* empty, no colon */
	{ "", true, NULL, 0, HOSTPORT_EMPTY,
	    "empty value; expected ADDR:PORT or [IPV6]:PORT" },
	{ "127.0.0.1", true, NULL, 0, HOSTPORT_NO_PORT,
	    "'127.0.0.1' has no :PORT" },

	/* bad port */
	{ "10.0.0.1:80x", true, NULL, 0, HOSTPORT_PORT,
	    "port '80x' is not in 0..65535" },
	{ "10.0.0.1:", true, NULL, 0, HOSTPORT_PORT,
	    "port '' is not in 0..65535" },
	{ "10.0.0.1:0x50", true, NULL, 0, HOSTPORT_PORT,
	    "port '0x50' is not in 0..65535" },
	{ "10.0.0.1:65536", true, NULL, 0, HOSTPORT_PORT,
	    "port '65536' is not in 0..65535" },
	{ "10.0.0.1:99999999999999999999", true, NULL, 0, HOSTPORT_PORT,
	    "port '99999999999999999999' is not in 0..65535" },
	{ "10.0.0.1:0", false, NULL, 0, HOSTPORT_PORT,
	    "port '0' is not in 1..65535" },
	{ "[::1]:0", false, NULL, 0, HOSTPORT_PORT,
	    "port '0' is not in 1..65535" },
	/* sign or space */
	{ "10.0.0.1:-1", true, NULL, 0, HOSTPORT_PORT,
	    "port '-1' is not in 0..65535" },
	{ "10.0.0.1:+80", true, NULL, 0, HOSTPORT_PORT,
	    "port '+80' is not in 0..65535" },
	{ "10.0.0.1: 80", true, NULL, 0, HOSTPORT_PORT,
	    "port ' 80' is not in 0..65535" },
	{ "10.0.0.1:80 ", true, NULL, 0, HOSTPORT_PORT,
	    "port '80 ' is not in 0..65535" },
	/* junk after the port */
	{ "10.0.0.1:80:90", true, NULL, 0, HOSTPORT_PORT,
	    "port '80:90' is not in 0..65535" },
	{ "[::1]:80]", true, NULL, 0, HOSTPORT_PORT,
	    "port '80]' is not in 0..65535" },
	{ "[::1]:80/x", true, NULL, 0, HOSTPORT_PORT,
	    "port '80/x' is not in 0..65535" },

	/* unbracketed IPv6 */
	{ "fd00::1:8471", true, NULL, 0, HOSTPORT_UNBRACKETED,
	    "'fd00::1:8471': IPv6 address must be in brackets" },
	{ "::1", true, NULL, 0, HOSTPORT_UNBRACKETED,
	    "'::1': IPv6 address must be in brackets" },

	/* unclosed bracket, or anything but ':' after it */
	{ "[::1:80", true, NULL, 0, HOSTPORT_BRACKET,
	    "'[::1:80' is not [IPV6]:PORT" },
	{ "[::1]80", true, NULL, 0, HOSTPORT_BRACKET,
	    "'[::1]80' is not [IPV6]:PORT" },
	{ "[::1]", true, NULL, 0, HOSTPORT_BRACKET,
	    "'[::1]' is not [IPV6]:PORT" },

	/* a name, or anything else that is not a numeric address */
	{ "localhost:80", true, NULL, 0, HOSTPORT_ADDRESS,
	    "'localhost' is not a numeric IPv4 address (names are not "
	    "resolved)" },
	{ "[hvd.example]:8471", true, NULL, 0, HOSTPORT_ADDRESS,
	    "'hvd.example' is not a numeric IPv6 address (names are not "
	    "resolved)" },
	{ "[10.0.0.1]:80", true, NULL, 0, HOSTPORT_ADDRESS,
	    "'10.0.0.1' is not a numeric IPv6 address (names are not "
	    "resolved)" },
	{ ":80", true, NULL, 0, HOSTPORT_ADDRESS,
	    "'' is not a numeric IPv4 address (names are not resolved)" },
	{ "[]:80", true, NULL, 0, HOSTPORT_ADDRESS,
	    "'' is not a numeric IPv6 address (names are not resolved)" },
	{ "10.0.0:80", true, NULL, 0, HOSTPORT_ADDRESS,
	    "'10.0.0' is not a numeric IPv4 address (names are not "
	    "resolved)" },
	{ " 10.0.0.1:80", true, NULL, 0, HOSTPORT_ADDRESS,
	    "' 10.0.0.1' is not a numeric IPv4 address (names are not "
	    "resolved)" },
	{ "[fe80::1%eth0]:80", true, NULL, 0, HOSTPORT_ADDRESS,
	    "'fe80::1%eth0' is not a numeric IPv6 address (names are not "
	    "resolved)" },
};

static void
test_hostport_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(hp_cases) / sizeof(*hp_cases); i++) {
		const struct hp_case *c = &hp_cases[i];
		enum hostport_fault fault = HOSTPORT_OK;
		char host[64] = "unset", err[256] = "";
		uint16_t port = 12345;
		int r;

		r = hostport_parse_fault(c->text, c->allow_zero, host,
		    sizeof(host), &port, &fault, err, sizeof(err));
		if (c->error == NULL) {
			if (r != 0)
				fail_msg("case %zu '%s' refused: %s", i, c->text,
				    err);
			assert_int_equal(fault, HOSTPORT_OK);
			assert_string_equal(host, c->host);
			assert_int_equal(port, c->port);
			continue;
		}
		if (r == 0)
			fail_msg("case %zu '%s' accepted", i, c->text);
		assert_int_equal(r, -EINVAL);
		if (fault != c->fault)
			fail_msg("case %zu '%s': fault %d, want %d", i, c->text,
			    (int)fault, (int)c->fault);
		assert_string_equal(err, c->error);
		assert_int_equal(port, 12345);	/* untouched on failure */

		/* The plain entry point says the same. */
		err[0] = '\0';
		assert_int_equal(hostport_parse(c->text, c->allow_zero, host,
		    sizeof(host), &port, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, c->error);
	}
}

/* The rejected address is handed back for the caller's own message. */
static void
test_hostport_address_quoted(void **state)
{
	enum hostport_fault fault;
	char host[8], err[128];
	uint16_t port;

	(void)state;
	assert_int_equal(hostport_parse_fault("[hvd.example]:1", true, host,
	    sizeof(host), &port, &fault, err, sizeof(err)), -EINVAL);
	assert_int_equal(fault, HOSTPORT_ADDRESS);
	assert_string_equal(host, "hvd.exa");	/* cut to hostlen - 1 */

	assert_int_equal(hostport_parse_fault("1.2.3.4", true, host,
	    sizeof(host), &port, &fault, err, sizeof(err)), -EINVAL);
	assert_string_equal(host, "");
}

/* A valid address that does not fit is refused, never cut. */
static void
test_hostport_too_long(void **state)
{
	enum hostport_fault fault;
	char host[8], err[128];
	uint16_t port = 7;

	(void)state;
	assert_int_equal(hostport_parse_fault("10.0.0.1:80", true, host,
	    sizeof(host), &port, &fault, err, sizeof(err)), -EINVAL);
	assert_int_equal(fault, HOSTPORT_TOO_LONG);
	assert_string_equal(err, "address '10.0.0.1' is longer than 7 bytes");
	assert_int_equal(port, 7);
	/* Seven bytes and the NUL: just fits. */
	assert_int_equal(hostport_parse_fault("1.0.0.1:80", true, host,
	    sizeof(host), &port, &fault, err, sizeof(err)), 0);
	assert_string_equal(host, "1.0.0.1");
	assert_int_equal(port, 80);
}

/* A short err buffer is cut and terminated, never overrun. */
static void
test_hostport_short_err(void **state)
{
	char host[64], err[8];
	uint16_t port;

	(void)state;
	memset(err, 'x', sizeof(err));
	assert_int_equal(hostport_parse("localhost:80", true, host,
	    sizeof(host), &port, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "'localh");
	assert_int_equal(hostport_parse("localhost:80", true, host,
	    sizeof(host), &port, NULL, 0), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostport_table),
		cmocka_unit_test(test_hostport_address_quoted),
		cmocka_unit_test(test_hostport_too_long),
		cmocka_unit_test(test_hostport_short_err),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
