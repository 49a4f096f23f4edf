/*
 * The mesh state's JSON form (lib/mesh_json.c): a table of documents the
 * parser must accept or refuse with an exact message naming the path, the
 * same checks on a state built in memory, and the round trip
 * parse -> encode -> parse.
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
	    "local: not a dotted-quad IPv4 address" },
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
	    "networks[0].vteps[1]: not a dotted-quad IPv4 address" },
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
	assert_int_equal(a->nets[0].macs[1].vtep.s_addr, inet_addr("10.0.0.9"));
	assert_int_equal(a->nets[1].vni, 16777215);
	assert_int_equal(a->local.s_addr, inet_addr("10.0.0.5"));
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

/* A state built in memory gets the parser's checks. */
static void
test_validate(void **state)
{
	struct in_addr v[2];
	struct mesh_net n = { .vni = 7, .vteps = v, .nvteps = 2 };
	struct mesh_state st = { .nets = &n, .nnets = 1 };
	char err[256];

	(void)state;
	st.local.s_addr = inet_addr("192.168.1.1");
	v[0].s_addr = inet_addr("192.168.1.2");
	v[1].s_addr = inet_addr("192.168.1.3");
	assert_int_equal(mesh_state_validate(&st, err, sizeof(err)), 0);
	v[1] = v[0];
	assert_int_equal(mesh_state_validate(&st, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "networks[0].vteps: 192.168.1.2 is listed twice");
	v[1].s_addr = inet_addr("192.168.1.3");
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
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_stats_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
