/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * net/addr.c, hvd's own addresses: the listeners really bind (ephemeral
 * ports on loopback, IPv4 and IPv6) and the addresses are read back as
 * hosts and iPXE would be told them: the agent address, the boot URL, the
 * anchor, with boot-server overriding and IPv6 in brackets.  The topology
 * module is not started, so a wildcard listener without boot-server falls
 * back to 127.0.0.1, as hvd does before it has read its interfaces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "net.h"

static void
routes_unused(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	(void)hvd;
	(void)req;
	(void)rep;
	fail_msg("no request is made in this test");
}

static bool
upload_never(const char *method, const char *url)
{
	(void)method;
	(void)url;
	return false;
}

static void
served_unused(const char *route, const char *method, unsigned status)
{
	(void)route;
	(void)method;
	(void)status;
}

static const struct http_routes routes = {
	.api = routes_unused, .boot = routes_unused, .upload = upload_never,
	.served = served_unused,
};
static const struct agent_ops no_ops;

/* hvd with the given config lines, its agent and boot listeners bound. */
static void
start(struct hvd *hvd, const char *conf_text)
{
	char err[256];

	memset(hvd, 0, sizeof(*hvd));
	assert_non_null(hvd->conf = config_new());
	assert_int_equal(config_parse(hvd->conf, conf_text, strlen(conf_text),
	    "test", err, sizeof(err)), 0);
	hvd->conf->api_socket[0] = '\0';	/* no unix socket here */
	assert_non_null(hvd->base = event_base_new());
	assert_int_equal(agents_init(hvd, &no_ops), 0);
	assert_int_equal(http_init(hvd, &routes), 0);
}

static void
stop(struct hvd *hvd)
{
	agents_shutdown();
	http_shutdown();
	event_base_free(hvd->base);
	config_free(hvd->conf);
}

static void
expect_agents(struct hvd *hvd, const char *prefix)
{
	char got[ADDR_STRLEN], want[ADDR_STRLEN];

	assert_true(agents_port() != 0);
	snprintf(want, sizeof(want), "%s%u", prefix, agents_port());
	addr_agents(hvd, got, sizeof(got));
	assert_string_equal(got, want);
}

static void
expect_boot_url(struct hvd *hvd, const char *prefix, uint16_t port)
{
	char got[ADDR_STRLEN], want[ADDR_STRLEN];

	snprintf(want, sizeof(want), "%s%u", prefix, port);
	addr_boot_url(hvd, got, sizeof(got));
	assert_string_equal(got, want);
}

static void
test_ipv4_bound_ports(void **state)
{
	struct hvd hvd;
	char buf[ADDR_STRLEN];

	(void)state;
	start(&hvd, "agent-listen 127.0.0.1:0\nboot-http-listen 127.0.0.1:0\n");
	expect_agents(&hvd, "127.0.0.1:");
	assert_true(http_boot_port() != 0);
	expect_boot_url(&hvd, "http://127.0.0.1:", http_boot_port());
	/* No boot-server and no topology yet: nothing to anchor at. */
	assert_null(addr_anchor(&hvd, buf, sizeof(buf)));
	stop(&hvd);
}

static void
test_ipv6_bracketed(void **state)
{
	struct hvd hvd;

	(void)state;
	start(&hvd, "agent-listen [::1]:0\nboot-http-listen [::1]:0\n");
	expect_agents(&hvd, "[::1]:");
	expect_boot_url(&hvd, "http://[::1]:", http_boot_port());
	stop(&hvd);
}

static void
test_boot_server_overrides(void **state)
{
	struct hvd hvd;
	char buf[ADDR_STRLEN];

	(void)state;
	start(&hvd, "agent-listen 127.0.0.1:0\nboot-http-listen 127.0.0.1:0\n"
	    "boot-server 10.0.0.5\n");
	expect_agents(&hvd, "10.0.0.5:");
	expect_boot_url(&hvd, "http://10.0.0.5:", http_boot_port());
	assert_string_equal(addr_anchor(&hvd, buf, sizeof(buf)), "10.0.0.5");
	stop(&hvd);
}

static void
test_wildcard_falls_back(void **state)
{
	struct hvd hvd;

	(void)state;
	/* Bound to every address, the listener names none: loopback until
	 * topology.c has read the boot interface. */
	start(&hvd, "agent-listen 0.0.0.0:0\nboot-http-listen 0.0.0.0:0\n");
	expect_agents(&hvd, "127.0.0.1:");
	expect_boot_url(&hvd, "http://127.0.0.1:", http_boot_port());
	stop(&hvd);
}

static void
test_no_boot_http_is_port_80(void **state)
{
	struct hvd hvd;

	(void)state;
	start(&hvd, "agent-listen 127.0.0.1:0\nboot-server 10.0.0.5\n");
	assert_int_equal(http_boot_port(), 0);
	expect_boot_url(&hvd, "http://10.0.0.5:", 80);
	stop(&hvd);
}

static void
test_join(void **state)
{
	char buf[ADDR_STRLEN];

	(void)state;
	addr_join("10.1.2.3", 69, buf, sizeof(buf));
	assert_string_equal(buf, "10.1.2.3:69");
	addr_join("fd00::1", 8471, buf, sizeof(buf));
	assert_string_equal(buf, "[fd00::1]:8471");
	addr_join("::", 0, buf, sizeof(buf));
	assert_string_equal(buf, "[::]:0");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_bound_ports),
		cmocka_unit_test(test_ipv6_bracketed),
		cmocka_unit_test(test_boot_server_overrides),
		cmocka_unit_test(test_wildcard_falls_back),
		cmocka_unit_test(test_no_boot_http_is_port_80),
		cmocka_unit_test(test_join),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
