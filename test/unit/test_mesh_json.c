/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The mesh state's JSON form (lib/mesh_json.c): a table of documents the
 * parser must accept or refuse with an exact message naming the path, the
 * same checks on a state built in memory, the address helpers, and the
 * round trip parse -> encode -> parse, for IPv4 and IPv6 underlays.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mesh.h"

#define HEAD "{\"version\":1,\"local\":\"10.0.0.5\","
#define NET(x) HEAD "\"networks\":[" x "]}"
#define HEAD6 "{\"version\":1,\"local\":\"fd00:78::5\","
#define NET6(x) HEAD6 "\"networks\":[" x "]}"
#define LOCAL(a) "{\"version\":1,\"local\":\"" a "\",\"networks\":[]}"
#define VTEP6(a) NET6("{\"vni\":5,\"vteps\":[\"fd00:78::6\",\"" a "\"]}")
#define MAC6(a) NET6("{\"vni\":5,\"vteps\":[],\"macs\":[{\"mac\":" \
    "\"02:00:00:00:00:01\",\"vtep\":\"" a "\"}]}")
#define V6_ROUND_TRIP 5		/* cases[] index of the IPv6 state */

static const struct {
	const char *text;
	const char *error;		/* NULL: accepted */
} cases[] = {
	{ NET(""), NULL },
	{ HEAD "\"underlay\":\"eth0\",\"networks\":[]}", NULL },
	{ HEAD "\"underlay\":\"\",\"networks\":[]}", NULL },
	{ NET("{\"vni\":100,\"vteps\":[\"10.0.0.6\",\"10.0.0.7\"],\"macs\":"
	    "[{\"mac\":\"aa:bb:cc:dd:ee:ff\",\"vtep\":\"10.0.0.6\"},"
	    "{\"mac\":\"02:00:00:00:00:01\",\"vtep\":\"10.0.0.9\"}]},"
	    "{\"vni\":16777215,\"vteps\":[]}"), NULL },
	{ NET("{\"vni\":1,\"vteps\":[],\"macs\":[{\"mac\":\"AA:BB:CC:DD:EE:0F\","
	    "\"vtep\":\"10.0.0.6\"}]}"), NULL },
	{ NET6("{\"vni\":100,\"vteps\":[\"fd00:78::6\",\"2001:0DB8:0000::7\"],"
	    "\"macs\":[{\"mac\":\"aa:bb:cc:dd:ee:ff\",\"vtep\":\"fd00:78::6\"},"
	    "{\"mac\":\"02:00:00:00:00:01\",\"vtep\":\"2001:db8:1:2:3:4:5:6\"}]},"
	    "{\"vni\":7,\"vteps\":[\"fd00:78:0:0:1::\"]}"), NULL },
	{ LOCAL("2001:db8::ffff:10.0.0.5"), NULL },
	{ LOCAL("::ffff:0:10.0.0.5"), NULL },
	{ "[]", "state: not an object" },
	{ "{", "state: line 1 column 1: string or '}' expected near end of file" },
	{ HEAD "\"networks\":[],\"extra\":1}", "state: unknown key 'extra'" },
	{ "{\"version\":1,\"networks\":[]}", "state: missing 'local'" },
	{ "{\"version\":2,\"local\":\"10.0.0.5\",\"networks\":[]}",
	    "version: must be 1" },
	{ HEAD "\"networks\":[],\"local\":\"10.0.0.6\"}",
	    "state: line 1 column 53: duplicate object key near '\"local\"'" },
	{ HEAD "\"networks\":{}}", "networks: not an array" },
	{ "{\"version\":1,\"local\":\"10.0.0.256\",\"networks\":[]}",
	    "local: not an IPv4 or IPv6 address" },
	{ "{\"version\":1,\"local\":\"127.0.0.1\",\"networks\":[]}",
	    "local: not a unicast IPv4 address" },
	{ "{\"version\":1,\"local\":5,\"networks\":[]}", "local: not a string" },
	{ HEAD "\"underlay\":\"eth/0\",\"networks\":[]}",
	    "underlay: not an interface name" },
	{ HEAD "\"underlay\":\"abcdefghijklmnop\",\"networks\":[]}",
	    "underlay: not an interface name" },
	{ NET("{\"vni\":0,\"vteps\":[]}"),
	    "networks[0].vni: not an integer in 1..16777215" },
	{ NET("{\"vni\":16777216,\"vteps\":[]}"),
	    "networks[0].vni: not an integer in 1..16777215" },
	{ NET("{\"vni\":\"5\",\"vteps\":[]}"),
	    "networks[0].vni: not an integer in 1..16777215" },
	{ NET("{\"vni\":5}"), "networks[0]: missing 'vteps'" },
	{ NET("{\"vni\":5,\"vteps\":[],\"mtu\":1}"),
	    "networks[0]: unknown key 'mtu'" },
	{ NET("{\"vni\":5,\"vteps\":[]},{\"vni\":5,\"vteps\":[]}"),
	    "networks: VNI 5 is listed twice" },
	{ NET("{\"vni\":5,\"vteps\":[\"10.0.0.6\",\"10.0.0.6\"]}"),
	    "networks[0].vteps: 10.0.0.6 is listed twice" },
	{ NET("{\"vni\":5,\"vteps\":[\"10.0.0.5\"]}"),
	    "networks[0].vteps[0]: not a remote unicast IPv4 address" },
	{ NET("{\"vni\":5,\"vteps\":[\"224.0.0.1\"]}"),
	    "networks[0].vteps[0]: not a remote unicast IPv4 address" },
	{ NET("{\"vni\":5,\"vteps\":[\"10.0.0.6\",\"010.0.0.7\"]}"),
	    "networks[0].vteps[1]: not an IPv4 or IPv6 address" },
	{ NET("{\"vni\":5,\"vteps\":[],\"macs\":[{\"mac\":\"aa:bb:cc:dd:ee\","
	    "\"vtep\":\"10.0.0.6\"}]}"),
	    "networks[0].macs[0].mac: not a MAC address like aa:bb:cc:dd:ee:ff" },
	{ NET("{\"vni\":5,\"vteps\":[],\"macs\":[{\"mac\":\"aa-bb-cc-dd-ee-ff\","
	    "\"vtep\":\"10.0.0.6\"}]}"),
	    "networks[0].macs[0].mac: not a MAC address like aa:bb:cc:dd:ee:ff" },
	{ NET("{\"vni\":5,\"vteps\":[],\"macs\":[{\"mac\":\"01:00:5e:00:00:01\","
	    "\"vtep\":\"10.0.0.6\"}]}"),
	    "networks[0].macs[0].mac: multicast or all-zero" },
	{ NET("{\"vni\":5,\"vteps\":[],\"macs\":[{\"mac\":\"00:00:00:00:00:00\","
	    "\"vtep\":\"10.0.0.6\"}]}"),
	    "networks[0].macs[0].mac: multicast or all-zero" },
	{ NET("{\"vni\":5,\"vteps\":[],\"macs\":[{\"mac\":\"02:00:00:00:00:01\"}]}"),
	    "networks[0].macs[0]: missing 'vtep'" },
	{ NET("{\"vni\":5,\"vteps\":[],\"macs\":[{\"mac\":\"02:00:00:00:00:01\","
	    "\"vtep\":\"10.0.0.6\"},{\"mac\":\"02:00:00:00:00:01\",\"vtep\":"
	    "\"10.0.0.7\"}]}"),
	    "networks[0].macs: 02:00:00:00:00:01 is listed twice" },
	{ NET("{\"vni\":5,\"vteps\":[],\"macs\":[{\"mac\":\"02:00:00:00:00:01\","
	    "\"vtep\":\"10.0.0.5\"}]}"),
	    "networks[0].macs[0].vtep: not a remote unicast IPv4 address" },
	{ LOCAL("0.1.2.3"), "local: not a unicast IPv4 address" },
	{ LOCAL("240.0.0.1"), "local: not a unicast IPv4 address" },
	/* IPv6. */
	{ LOCAL("::"), "local: not a unicast IPv6 address" },
	{ LOCAL("::1"), "local: not a unicast IPv6 address" },
	{ LOCAL("ff02::1"), "local: not a unicast IPv6 address" },
	{ LOCAL("ff0e::5"), "local: not a unicast IPv6 address" },
	{ LOCAL("fe80::1"), "local: a link-local IPv6 address; a VTEP needs a "
	    "routable one" },
	{ LOCAL("febf::1"), "local: a link-local IPv6 address; a VTEP needs a "
	    "routable one" },
	{ LOCAL("::ffff:10.0.0.5"), "local: an IPv4-mapped or -compatible IPv6 "
	    "address; write IPv4 as a dotted quad" },
	{ LOCAL("::ffff:a00:5"), "local: an IPv4-mapped or -compatible IPv6 "
	    "address; write IPv4 as a dotted quad" },
	{ LOCAL("::10.0.0.5"), "local: an IPv4-mapped or -compatible IPv6 "
	    "address; write IPv4 as a dotted quad" },
	{ LOCAL("fe80::1%eth0"), "local: not an IPv4 or IPv6 address" },
	{ LOCAL("fd00::1/64"), "local: not an IPv4 or IPv6 address" },
	{ LOCAL("[fd00::1]"), "local: not an IPv4 or IPv6 address" },
	{ LOCAL("fd00:0000:0000:0000:0000:0000:0000:0000:1"),
	    "local: not an IPv4 or IPv6 address" },
	{ LOCAL("fd00:0000:0000:0000:0000:0000:0000:0001  "),
	    "local: not an IPv4 or IPv6 address" },
	{ VTEP6("::"), "networks[0].vteps[1]: not a remote unicast IPv6 address" },
	{ VTEP6("::1"), "networks[0].vteps[1]: not a remote unicast IPv6 address" },
	{ VTEP6("ff02::1"),
	    "networks[0].vteps[1]: not a remote unicast IPv6 address" },
	{ VTEP6("fd00:78::5"),
	    "networks[0].vteps[1]: not a remote unicast IPv6 address" },
	{ VTEP6("fe80::6"), "networks[0].vteps[1]: a link-local IPv6 address; "
	    "a VTEP needs a routable one" },
	{ VTEP6("::ffff:10.0.0.6"), "networks[0].vteps[1]: an IPv4-mapped or "
	    "-compatible IPv6 address; write IPv4 as a dotted quad" },
	{ VTEP6("10.0.0.6"),
	    "networks[0].vteps[1]: an IPv4 VTEP for an IPv6 local address" },
	{ VTEP6("FD00:78:0::6"), "networks[0].vteps: fd00:78::6 is listed twice" },
	{ NET("{\"vni\":5,\"vteps\":[\"10.0.0.6\",\"fd00:78::6\"]}"),
	    "networks[0].vteps[1]: an IPv6 VTEP for an IPv4 local address" },
	{ MAC6("fd00:78::5"),
	    "networks[0].macs[0].vtep: not a remote unicast IPv6 address" },
	{ MAC6("fe80::6"), "networks[0].macs[0].vtep: a link-local IPv6 "
	    "address; a VTEP needs a routable one" },
	{ MAC6("ff02::2"),
	    "networks[0].macs[0].vtep: not a remote unicast IPv6 address" },
	{ MAC6("10.0.0.6"),
	    "networks[0].macs[0].vtep: an IPv4 VTEP for an IPv6 local address" },
	{ NET("{\"vni\":5,\"vteps\":[],\"macs\":[{\"mac\":\"02:00:00:00:00:01\","
	    "\"vtep\":\"fd00:78::6\"}]}"),
	    "networks[0].macs[0].vtep: an IPv6 VTEP for an IPv4 local address" },
};

static void
test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct mesh_state *st = NULL;
		char err[256] = "";
		int r;

		r = mesh_state_parse(cases[i].text, strlen(cases[i].text), &st,
		    err, sizeof(err));
		if (cases[i].error == NULL && r != 0)
			fail_msg("case %zu rejected: %s", i, err);
		if (cases[i].error) {
			if (r != -EINVAL || st != NULL)
				fail_msg("case %zu accepted (r=%d)", i, r);
			if (strcmp(err, cases[i].error) != 0)
				fail_msg("case %zu: got \"%s\", want \"%s\"", i,
				    err, cases[i].error);
		}
		mesh_state_free(st);
	}
}

static void
test_round_trip(void **state)
{
	const char *text = cases[3].text;
	struct mesh_state *a = NULL, *b = NULL;
	char err[256], *out, *out2;
	json_t *j;

	(void)state;
	assert_int_equal(mesh_state_parse(text, strlen(text), &a, err,
	    sizeof(err)), 0);
	assert_int_equal(a->nnets, 2);
	assert_int_equal(a->nets[0].vni, 100);
	assert_int_equal(a->nets[0].nvteps, 2);
	assert_int_equal(a->nets[0].nmacs, 2);
	assert_int_equal(a->nets[0].macs[0].mac[5], 0xff);
	assert_true(mesh_ip_is_v4(&a->nets[0].macs[1].vtep));
	assert_memory_equal(&a->nets[0].macs[1].vtep.s6_addr[12],
	    "\x0a\x00\x00\x09", 4);
	assert_int_equal(a->nets[1].vni, 16777215);
	assert_true(mesh_ip_is_v4(&a->local));
	assert_memory_equal(a->local.s6_addr,
	    "\0\0\0\0\0\0\0\0\0\0\xff\xff\x0a\x00\x00\x05", 16);
	assert_string_equal(a->underlay, "");
	assert_non_null(j = mesh_state_to_json(a));
	assert_non_null(out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER));
	json_decref(j);
	assert_int_equal(mesh_state_parse(out, strlen(out), &b, err,
	    sizeof(err)), 0);
	assert_non_null(j = mesh_state_to_json(b));
	assert_non_null(out2 = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER));
	json_decref(j);
	assert_string_equal(out, out2);
	assert_non_null(strstr(out, "\"mac\":\"aa:bb:cc:dd:ee:ff\""));
	assert_int_equal(b->nets[0].nmacs, 2);
	assert_memory_equal(a->nets[0].macs, b->nets[0].macs,
	    2 * sizeof(struct mesh_mac));
	free(out);
	free(out2);
	mesh_state_free(a);
	mesh_state_free(b);
}

/* An IPv6 state: parsed, written back in canonical text, parsed again. */
static void
test_round_trip6(void **state)
{
	const char *text = cases[V6_ROUND_TRIP].text;
	struct mesh_state *a = NULL, *b = NULL;
	struct in6_addr want;
	char err[256], *out;
	json_t *j;

	(void)state;
	assert_int_equal(mesh_state_parse(text, strlen(text), &a, err,
	    sizeof(err)), 0);
	assert_false(mesh_ip_is_v4(&a->local));
	assert_int_equal(inet_pton(AF_INET6, "fd00:78::5", &want), 1);
	assert_memory_equal(&a->local, &want, 16);
	assert_int_equal(a->nnets, 2);
	assert_int_equal(a->nets[0].nvteps, 2);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::7", &want), 1);
	assert_memory_equal(&a->nets[0].vteps[1], &want, 16);
	assert_int_equal(a->nets[0].nmacs, 2);
	assert_false(mesh_ip_is_v4(&a->nets[0].macs[1].vtep));
	assert_non_null(j = mesh_state_to_json(a));
	assert_non_null(out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER));
	json_decref(j);
	assert_string_equal(out, "{\"version\":1,\"local\":\"fd00:78::5\","
	    "\"underlay\":\"\",\"networks\":[{\"vni\":100,\"vteps\":"
	    "[\"fd00:78::6\",\"2001:db8::7\"],\"macs\":[{\"mac\":"
	    "\"aa:bb:cc:dd:ee:ff\",\"vtep\":\"fd00:78::6\"},{\"mac\":"
	    "\"02:00:00:00:00:01\",\"vtep\":\"2001:db8:1:2:3:4:5:6\"}]},"
	    "{\"vni\":7,\"vteps\":[\"fd00:78:0:0:1::\"],\"macs\":[]}]}");
	assert_int_equal(mesh_state_parse(out, strlen(out), &b, err,
	    sizeof(err)), 0);
	assert_memory_equal(&a->local, &b->local, 16);
	assert_memory_equal(a->nets[0].vteps, b->nets[0].vteps,
	    2 * sizeof(struct in6_addr));
	assert_memory_equal(a->nets[0].macs, b->nets[0].macs,
	    2 * sizeof(struct mesh_mac));
	assert_memory_equal(a->nets[1].vteps, b->nets[1].vteps,
	    sizeof(struct in6_addr));
	free(out);
	mesh_state_free(a);
	mesh_state_free(b);
}

/* mesh_ip_parse() / mesh_ip_str(): one text per address, both ways. */
static void
test_ip_helpers(void **state)
{
	static const struct {
		const char *in, *out;	/* out NULL: refused */
		bool v4;
	} t[] = {
		{ "10.0.0.5", "10.0.0.5", true },
		{ "255.255.255.255", "255.255.255.255", true },
		{ "fd00:78::5", "fd00:78::5", false },
		{ "FD00:0078:0000:0000:0000:0000:0000:0005", "fd00:78::5", false },
		{ "2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1", false },
		{ "::", "::", false },
		{ "::1", "::1", false },
		{ "::ffff:0:1.2.3.4", "::ffff:0:102:304", false },
		{ "::ffff:1.2.3.4", NULL, false },
		{ "::ffff:102:304", NULL, false },
		{ "::1.2.3.4", NULL, false },
		{ "::2", NULL, false },
		{ "1.2.3", NULL, false },
		{ "01.2.3.4", NULL, false },
		{ "fe80::1%1", NULL, false },
		{ "", NULL, false },
		{ " 10.0.0.5", NULL, false },
	};
	char buf[MESH_IP_STRLEN], tiny[4];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		struct in6_addr a, b;

		memset(&a, 0xa5, sizeof(a));
		b = a;
		if (t[i].out == NULL) {
			if (mesh_ip_parse(t[i].in, &a) != -EINVAL)
				fail_msg("\"%s\" accepted", t[i].in);
			if (memcmp(&a, &b, sizeof(a)) != 0)
				fail_msg("\"%s\": *out written", t[i].in);
			continue;
		}
		if (mesh_ip_parse(t[i].in, &a) != 0)
			fail_msg("\"%s\" refused", t[i].in);
		if (mesh_ip_is_v4(&a) != t[i].v4)
			fail_msg("\"%s\": wrong family", t[i].in);
		mesh_ip_str(&a, buf, sizeof(buf));
		if (strcmp(buf, t[i].out) != 0)
			fail_msg("\"%s\": got \"%s\", want \"%s\"", t[i].in,
			    buf, t[i].out);
		assert_int_equal(mesh_ip_parse(buf, &b), 0);
		assert_memory_equal(&a, &b, sizeof(a));
	}
	assert_int_equal(mesh_ip_parse(NULL, &(struct in6_addr){ 0 }),
	    -EINVAL);
	{
		struct in6_addr a;

		assert_int_equal(mesh_ip_parse("fd00::1", &a), 0);
		mesh_ip_str(&a, tiny, sizeof(tiny));
		assert_string_equal(tiny, "?");
	}
}

/* A state built in memory gets the parser's checks. */
static void
test_validate(void **state)
{
	struct in6_addr v[2];
	struct mesh_net n = { .vni = 7, .vteps = v, .nvteps = 2 };
	struct mesh_state st = { .nets = &n, .nnets = 1 };
	char err[256];

	(void)state;
	assert_int_equal(mesh_ip_parse("192.168.1.1", &st.local), 0);
	assert_int_equal(mesh_ip_parse("192.168.1.2", &v[0]), 0);
	assert_int_equal(mesh_ip_parse("192.168.1.3", &v[1]), 0);
	assert_int_equal(mesh_state_validate(&st, err, sizeof(err)), 0);
	v[1] = v[0];
	assert_int_equal(mesh_state_validate(&st, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "networks[0].vteps: 192.168.1.2 is listed twice");
	/* The same bytes as IPv6 (not IPv4-mapped) are another family. */
	v[1] = v[0];
	v[1].s6_addr[10] = 0;
	assert_int_equal(mesh_state_validate(&st, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "networks[0].vteps[1]: an IPv6 VTEP for an "
	    "IPv4 local address");
	/* IPv6 throughout; IPv4-compatible has no text, so it is refused. */
	assert_int_equal(mesh_ip_parse("fd00::1", &st.local), 0);
	assert_int_equal(mesh_ip_parse("fd00::2", &v[0]), 0);
	assert_int_equal(mesh_state_validate(&st, err, sizeof(err)), 0);
	memset(&v[0], 0, 12);
	assert_int_equal(mesh_state_validate(&st, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "networks[0].vteps[0]: not a remote unicast "
	    "IPv6 address");
	assert_int_equal(mesh_ip_parse("fd00::2", &v[0]), 0);
	st.local = v[1];
	assert_int_equal(mesh_state_validate(&st, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "networks[0].vteps[1]: not a remote unicast "
	    "IPv6 address");
	assert_int_equal(mesh_ip_parse("fe80::1", &st.local), 0);
	assert_int_equal(mesh_state_validate(&st, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "local: a link-local IPv6 address; a VTEP "
	    "needs a routable one");
	assert_int_equal(mesh_ip_parse("192.168.1.1", &st.local), 0);
	assert_int_equal(mesh_ip_parse("192.168.1.2", &v[0]), 0);
	assert_int_equal(mesh_ip_parse("192.168.1.3", &v[1]), 0);
	n.vni = 0;
	assert_int_equal(mesh_state_validate(&st, err, sizeof(err)), -EINVAL);
	n.vni = 7;
	memcpy(st.underlay, "0123456789abcdef", IFNAMSIZ);
	assert_int_equal(mesh_state_validate(&st, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "underlay: not an interface name");
}

static void
test_stats_json(void **state)
{
	struct mesh_stats s = { 1, 2, 3, 4, 5, 6 };
	json_t *j;
	char *out;

	(void)state;
	assert_non_null(j = mesh_stats_to_json(&s));
	assert_non_null(out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS));
	assert_string_equal(out, "{\"fdb_added\":4,\"fdb_deleted\":5,"
	    "\"fdb_unchanged\":6,\"links_added\":1,\"links_changed\":2,"
	    "\"links_deleted\":3}");
	free(out);
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_round_trip6),
		cmocka_unit_test(test_ip_helpers),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_stats_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
