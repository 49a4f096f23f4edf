/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * config_parse()/config_validate(): a pass/fail table.  Each failing case
 * names the exact "FILE:LINE: message" an operator would see.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wire.h"

struct config_case {
	const char *text;
	const char *error;	/* NULL: must parse and validate */
};

static const struct config_case config_cases[] = {
	{ "", NULL },
	{ "# only a comment\n\n   \n", NULL },
	{ "state-dir /var/lib/hv\napi-listen 127.0.0.1:8470\n", NULL },
	{ "api-listen [::1]:0\n", NULL },
	{ "api-socket-mode 0600\napi-socket-peer-role none\n", NULL },
	{ "api-body-max 1024\nlog-level debug   # trailing comment\n", NULL },
	{ "state-dir \"/srv/hv state\"\n", NULL },
	{ "log-level info\r\n", NULL },
	{ "state-dir relative/path\n", "t.conf:1: state-dir: 'relative/path' is not an absolute path" },
	{ "\n\nbogus-key 1\n", "t.conf:3: unknown keyword 'bogus-key'" },
	{ "log-level info\nlog-level debug\n", "t.conf:2: log-level: already set on line 1" },
	{ "log-level\n", "t.conf:1: log-level: expects 1 value, got 0" },
	{ "log-level info debug\n", "t.conf:1: log-level: expects 1 value, got 2" },
	{ "log-level loud\n", "t.conf:1: log-level: 'loud' is not one of error, warn, info, debug" },
	{ "api-listen localhost:80\n", "t.conf:1: api-listen: 'localhost' is not a numeric IPv4 address (names are not resolved)" },
	{ "api-listen 127.0.0.1\n", "t.conf:1: api-listen: '127.0.0.1' has no :PORT" },
	{ "api-listen 127.0.0.1:65536\n", "t.conf:1: api-listen: port '65536' is not in 0..65535" },
	{ "api-listen 127.0.0.1:-1\n", "t.conf:1: api-listen: port '-1' is not in 0..65535" },
	{ "api-listen [::1:80\n", "t.conf:1: api-listen: '[::1:80' is not [IPV6]:PORT" },
	{ "api-socket-mode 0999\n", "t.conf:1: api-socket-mode: '0999' is not an octal mode between 0000 and 0777" },
	{ "api-socket-mode 0060\n", "t.conf:1: api-socket-mode: 0060 locks hvd's own user out; the owner needs read and write" },
	{ "api-body-max 100\n", "t.conf:1: api-body-max: '100' is not a byte count in 1024..16777216" },
	{ "api-body-max 1k\n", "t.conf:1: api-body-max: '1k' is not a byte count in 1024..16777216" },
	{ "api-socket-peer-role root\n", "t.conf:1: api-socket-peer-role: 'root' is not one of admin, read, none" },
	{ "state-dir \"/unterminated\n", "t.conf:1: unterminated quote" },
	{ "state-dir \"/a\"b\n", "t.conf:1: text after closing quote" },
	{ "log-level info\x01\n", "t.conf:1: control character in line" },
	{ "api-socket none\n", "t.conf: no API listener: set api-socket or api-listen" },
	{ "api-socket none\napi-listen none\n", "t.conf: no API listener: set api-socket or api-listen" },
	{ "state-dir /s\napi-socket /s/hvd.sock\n", "t.conf: api-socket /s/hvd.sock is inside state-dir, where api-socket-mode 0660 cannot admit anyone but hvd's user" },
	{ "state-dir /s\napi-socket /s/hvd.sock\napi-socket-mode 0600\n", NULL },
	{ "tftp-listen 0.0.0.0:69\ntftp-blksize-max 8192\ntftp-windowsize-max 8\n"
	    "boot-root /srv/boot\nboot-http-listen 0.0.0.0:80\nboot-server 10.0.0.1\n", NULL },
	{ "dhcp-mode full\ndhcp-interface br0\ndhcp-range 10.0.0.100 10.0.0.200\n"
	    "dhcp-router 10.0.0.1\ndhcp-dns 10.0.0.1\ndhcp-lease-time 600\n", NULL },
	{ "dhcp-mode proxy\ndhcp-interface eth0\n", NULL },
	{ "tftp-blksize-max 70000\n", "t.conf:1: tftp-blksize-max: '70000' is not an integer in 512..65464" },
	{ "dhcp-mode relay\n", "t.conf:1: dhcp-mode: 'relay' is not one of off, proxy, full" },
	{ "dhcp-range 10.0.0.9 10.0.0.1\n", "t.conf:1: dhcp-range: 10.0.0.9 is after 10.0.0.1" },
	{ "dhcp-range 10.0.0.9\n", "t.conf:1: dhcp-range: expects 2 values, got 1" },
	{ "dhcp-router fe80::1\n", "t.conf:1: dhcp-router: 'fe80::1' is not an IPv4 address" },
	{ "dhcp-mode proxy\n", "t.conf: dhcp-mode proxy needs dhcp-interface" },
	{ "dhcp-mode full\ndhcp-interface br0\n", "t.conf: dhcp-mode full needs dhcp-range" },
};

static void
test_config_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(config_cases) / sizeof(*config_cases); i++) {
		const struct config_case *c = &config_cases[i];
		struct hvd_config *conf = config_new();
		char err[512] = "";
		int r;

		assert_non_null(conf);
		r = config_parse(conf, c->text, strlen(c->text), "t.conf", err,
		    sizeof(err));
		if (r == 0)
			r = config_validate(conf, "t.conf", err, sizeof(err));
		if (c->error == NULL) {
			if (r != 0)
				fail_msg("case %zu: unexpected error: %s", i, err);
		} else {
			if (r != -EINVAL)
				fail_msg("case %zu: accepted, want: %s", i, c->error);
			assert_string_equal(err, c->error);
		}
		config_free(conf);
	}
}

static void
test_config_values(void **state)
{
	static const char text[] = "state-dir /srv/hv\n"
	    "api-socket /run/hv.sock\napi-socket-mode 0600\n"
	    "api-listen [::1]:9000\napi-body-max 2048\nlog-level warn\n"
	    "api-socket-peer-role admin\n";
	struct hvd_config *conf = config_new();
	char err[256];

	(void)state;
	assert_int_equal(config_parse(conf, text, strlen(text), "t", err,
	    sizeof(err)), 0);
	assert_string_equal(conf->state_dir, "/srv/hv");
	assert_string_equal(conf->api_socket, "/run/hv.sock");
	assert_int_equal(conf->api_socket_mode, 0600);
	assert_true(conf->api_tcp);
	assert_string_equal(conf->api_listen_host, "::1");
	assert_int_equal(conf->api_listen_port, 9000);
	assert_int_equal(conf->api_body_max, 2048);
	assert_int_equal(conf->log_level, LOG_LEVEL_WARN);
	assert_int_equal(conf->api_socket_peer_role, API_ROLE_ADMIN);
	config_free(conf);
}

static void
test_config_embedded_nul_and_long_line(void **state)
{
	static const char nul[] = "log-level info\nlog-level\0x\n";
	struct hvd_config *conf = config_new();
	char line[1100], err[256];

	(void)state;
	assert_int_equal(config_parse(conf, nul, sizeof(nul) - 1, "t", err,
	    sizeof(err)), -EINVAL);
	assert_string_equal(err, "t:2: NUL byte in line");
	memset(line, '#', sizeof(line));
	assert_int_equal(config_parse(conf, line, sizeof(line), "t", err,
	    sizeof(err)), -EINVAL);
	assert_string_equal(err, "t:1: line longer than 1024 bytes");
	config_free(conf);
}

static void
test_config_restart_needed(void **state)
{
	struct hvd_config *a = config_new(), *b = config_new();

	(void)state;
	assert_null(config_restart_needed(a, b));
	b->log_level = LOG_LEVEL_DEBUG;
	b->api_body_max = 4096;
	assert_null(config_restart_needed(a, b));
	b->api_listen_port = 1;
	b->api_tcp = true;
	assert_string_equal(config_restart_needed(a, b), "api-listen");
	config_free(a);
	config_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_table),
		cmocka_unit_test(test_config_values),
		cmocka_unit_test(test_config_embedded_nul_and_long_line),
		cmocka_unit_test(test_config_restart_needed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
