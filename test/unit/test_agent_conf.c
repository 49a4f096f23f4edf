/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hv-agent's configuration parser (pass/fail table with line numbers) and
 * the reconnect backoff bounds of PROTOCOL.md section 10.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agent_link.h"

#define KEY "2b6c1e8a583c59eb8943317916911b5966183f4dd9a617db203341ad37f4802f"
#define BASE "hvd 10.0.0.1:8471\nhvd-key " KEY "\nhost h1\n"

static const struct {
	const char *text;
	const char *error;
} cases[] = {
	{ BASE, NULL },
	{ "# comment\n" BASE "boot-token hvb_" KEY "\n", NULL },
	{ BASE "key-file /etc/hv/k\nsession-file /run/hv/s\n", NULL },
	{ "hvd [fd00::1]:8471\nhvd-key " KEY "\nhost h1\n", NULL },
	{ "hvd 10.0.0.1:8471\n", "a.conf: needs hvd, hvd-key and host" },
	{ "hvd hvd.example:8471\n", "a.conf:1: hvd: 'hvd.example' is not a numeric address" },
	{ "hvd 10.0.0.1:0\n", "a.conf:1: hvd: port '0' is not in 1..65535" },
	{ "hvd 10.0.0.1\n", "a.conf:1: hvd: '10.0.0.1' is not ADDR:PORT" },
	{ "hvd-key ABCD\n", "a.conf:1: hvd-key: not 64 lowercase hex digits" },
	{ "host H1\n", "a.conf:1: host: 'H1' is not a host name" },
	{ BASE "boot-token hvb_123\n", "a.conf:4: boot-token: not a boot token (hvb_ and 64 hex digits)" },
	{ BASE "key-file relative\n", "a.conf:4: key-file: 'relative' is not an absolute path" },
	{ BASE "fstab /srv/fstab\n", NULL },
	{ BASE "fstab etc/fstab\n", "a.conf:4: fstab: 'etc/fstab' is not an absolute path" },
	{ BASE "host h2\n", "a.conf:4: host: already set on line 3" },
	{ BASE "colour blue\n", "a.conf:4: unknown keyword 'colour'" },
	{ BASE "host\n", "a.conf:4: host: expects one value" },
};

static void
test_conf_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct agent_conf c;
		char err[256] = "";
		int r;

		agent_conf_defaults(&c);
		r = agent_conf_parse(&c, cases[i].text, strlen(cases[i].text),
		    "a.conf", err, sizeof(err));
		if (cases[i].error == NULL && r != 0)
			fail_msg("case %zu rejected: %s", i, err);
		if (cases[i].error) {
			if (r == 0)
				fail_msg("case %zu accepted", i);
			assert_string_equal(err, cases[i].error);
		}
	}
}

static void
test_conf_values(void **state)
{
	static const char text[] = BASE "boot-token hvb_" KEY "\n";
	struct agent_conf c;
	char err[128];

	(void)state;
	agent_conf_defaults(&c);
	assert_int_equal(agent_conf_parse(&c, text, strlen(text), "a", err,
	    sizeof(err)), 0);
	assert_string_equal(c.hvd_host, "10.0.0.1");
	assert_int_equal(c.hvd_port, 8471);
	assert_int_equal(c.hvd_key[0], 0x2b);
	assert_string_equal(c.host, "h1");
	assert_string_equal(c.boot_token, "hvb_" KEY);
	assert_string_equal(c.key_file, "/etc/hv/agent.key");
}

static void
test_backoff_bounds(void **state)
{
	(void)state;
	/* d = min(250 ms * 2^(n-1), 15 s), delay in [0.5 d, 1.5 d). */
	assert_int_equal(agent_backoff_ms(1, 0.0), 125);
	assert_int_equal(agent_backoff_ms(1, 0.999999), 374);
	assert_int_equal(agent_backoff_ms(2, 0.5), 500);
	assert_int_equal(agent_backoff_ms(3, 0.5), 1000);
	assert_int_equal(agent_backoff_ms(7, 0.5), 15000);
	assert_int_equal(agent_backoff_ms(8, 0.5), 15000);
	assert_int_equal(agent_backoff_ms(1000, 0.0), 7500);
	assert_int_equal(agent_backoff_ms(1000, 0.999999), 22499);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_table),
		cmocka_unit_test(test_conf_values),
		cmocka_unit_test(test_backoff_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
