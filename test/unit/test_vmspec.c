/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The VM spec (proto/vmspec.c): a table of REST bodies the decoder must
 * accept or refuse with an exact message naming the field, the round trip
 * decode -> to_json -> decode, the canonical text, and the generated MACs
 * against vectors computed independently (Python's hashlib.blake2b).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmspec.h"

#define BASE "\"name\":\"web1\",\"vcpus\":2,\"memory_mib\":512,"
#define K "\"kernel\":\"vmlinuz-6.1\""
#define SPEC(x) "{" BASE x "}"
#define NETS(x) SPEC(K ",\"networks\":[" x "]")
#define PLACE(x) SPEC(K ",\"placement\":{" x "}")
#define D10 "0123456789"
#define D60 D10 D10 D10 D10 D10 D10
#define NAME_ERR "name: must start with a-z and contain only a-z, 0-9 and " \
	"'-' (not at the end), at most 63 characters"
#define IMG_ERR(f) f ": must be an image name: 1..63 of a-z 0-9 . _ -, " \
	"starting with a-z or 0-9"
#define MAC_ERR(i) "networks[" #i "].mac: must be a MAC address " \
	"xx:xx:xx:xx:xx:xx"
#define RATE_ERR(i) "networks[" #i "].rate_kbps: must be an integer in " \
	"64..100000000 (kbit/s)"
#define LOCAL_ERR(i) "networks[" #i "].mac: must be locally administered " \
	"(x2:, x6:, xa:, xe:) or in Xen's 00:16:3e"
#define LABEL_ERR "placement.label: must be key=value (key 1..63 of A-Z " \
	"a-z 0-9 . _ / -, value 0..63 of those and :)"
#define GROUP_ERR "placement.anti_affinity: must be a group name: a-z " \
	"first, then a-z, 0-9 and '-' (not at the end), at most 63"

static const struct {
	const char *text;
	const char *error;		/* NULL: accepted */
} cases[] = {
	/* Accepted. */
	{ SPEC(K), NULL },
	{ SPEC("\"disk\":\"debian12\""), NULL },
	{ SPEC("\"type\":\"pvh\",\"disk\":\"d\"," K ",\"initramfs\":\"i.gz\","
	    "\"cmdline\":\"root=/dev/xvda ro console=hvc0\"") , NULL },
	{ SPEC(K ",\"cmdline\":\"\"") , NULL },
	{ SPEC("\"disk\":\"d\",\"cmdline\":\"\""), NULL },
	{ NETS(""), NULL },
	{ NETS("{\"vni\":100},{\"vni\":16777215,\"mac\":\"00:16:3E:AB:CD:EF\"},"
	    "{\"vni\":1,\"mac\":\"02:00:00:00:00:01\"},"
	    "{\"vni\":2,\"mac\":\"fe:ff:ff:ff:ff:ff\"}"), NULL },
	{ NETS("{\"vni\":1},{\"vni\":2},{\"vni\":3},{\"vni\":4},{\"vni\":5},"
	    "{\"vni\":6},{\"vni\":7},{\"vni\":8}"), NULL },
	{ PLACE(""), NULL },
	{ PLACE("\"host\":\"h7\",\"label\":\"rack=r1\",\"anti_affinity\":\"web\""),
	    NULL },
	{ PLACE("\"label\":\"Zone.A/b_c-d=\""), NULL },
	{ PLACE("\"label\":\"k=v:1/2\""), NULL },
	{ "{\"name\":\"a\",\"vcpus\":128,\"memory_mib\":1048576,\"kernel\":\"0\"}",
	    NULL },
	{ "{\"name\":\"a\",\"vcpus\":1,\"memory_mib\":32,\"kernel\":\"k\"}", NULL },
	{ SPEC("\"kernel\":\"a" D60 "01\""), NULL },	/* 63 bytes */

	/* Envelope. */
	{ "", "request body is empty; expected a JSON object" },
	{ "[]", "request body must be a JSON object" },
	{ "{", "invalid JSON at line 1, column 1: string or '}' expected near "
	    "end of file" },
	{ "{" BASE K ",\"name\":\"x\"}", "invalid JSON at line 1, column 71: "
	    "duplicate object key near '\"name\"'" },
	{ SPEC(K ",\"extra\":1"), "unknown field 'extra'" },
	{ SPEC(K ",\"a\\u0001b\":1"), "unknown field 'a?b'" },

	/* Required fields and sizes. */
	{ "{\"vcpus\":2,\"memory_mib\":512," K "}", "missing field 'name'" },
	{ "{\"name\":\"a\",\"memory_mib\":512," K "}", "missing field 'vcpus'" },
	{ "{\"name\":\"a\",\"vcpus\":1," K "}", "missing field 'memory_mib'" },
	{ "{\"name\":\"Web\",\"vcpus\":1,\"memory_mib\":64," K "}", NAME_ERR },
	{ "{\"name\":\"web-\",\"vcpus\":1,\"memory_mib\":64," K "}", NAME_ERR },
	{ "{\"name\":7,\"vcpus\":1,\"memory_mib\":64," K "}", NAME_ERR },
	/* jansson refuses a NUL before any field is looked at. */
	{ "{\"name\":\"w\\u0000x\",\"vcpus\":1,\"memory_mib\":64," K "}",
	    "invalid JSON at line 1, column 18: \\u0000 is not allowed without "
	    "JSON_ALLOW_NUL near '\"w\\u0000x\"'" },
	{ "{\"name\":\"a\",\"vcpus\":0,\"memory_mib\":64," K "}",
	    "vcpus: must be an integer in 1..128" },
	{ "{\"name\":\"a\",\"vcpus\":129,\"memory_mib\":64," K "}",
	    "vcpus: must be an integer in 1..128" },
	{ "{\"name\":\"a\",\"vcpus\":1.0,\"memory_mib\":64," K "}",
	    "vcpus: must be an integer in 1..128" },
	{ "{\"name\":\"a\",\"vcpus\":\"1\",\"memory_mib\":64," K "}",
	    "vcpus: must be an integer in 1..128" },
	{ "{\"name\":\"a\",\"vcpus\":-1,\"memory_mib\":64," K "}",
	    "vcpus: must be an integer in 1..128" },
	{ "{\"name\":\"a\",\"vcpus\":1,\"memory_mib\":31," K "}",
	    "memory_mib: must be an integer in 32..1048576" },
	{ "{\"name\":\"a\",\"vcpus\":1,\"memory_mib\":1048577," K "}",
	    "memory_mib: must be an integer in 32..1048576" },
	{ "{\"name\":\"a\",\"vcpus\":1,\"memory_mib\":null," K "}",
	    "memory_mib: must be an integer in 32..1048576" },
	{ SPEC(K ",\"type\":\"hvm\""), "type: must be \"pv\" or \"pvh\"" },
	{ SPEC(K ",\"type\":\"PV\""), "type: must be \"pv\" or \"pvh\"" },

	/* Boot. */
	{ SPEC("\"type\":\"pv\""),
	    "kernel: a kernel or a disk (or both) is required to boot" },
	{ SPEC("\"disk\":\"d\",\"initramfs\":\"i\""),
	    "initramfs: only with a kernel" },
	{ SPEC("\"disk\":\"d\",\"cmdline\":\"quiet\""),
	    "cmdline: only with a kernel" },
	{ SPEC("\"kernel\":\"\""), IMG_ERR("kernel") },
	{ SPEC("\"kernel\":\"Vmlinuz\""), IMG_ERR("kernel") },
	{ SPEC("\"kernel\":\".hidden\""), IMG_ERR("kernel") },
	{ SPEC("\"kernel\":\"../etc/passwd\""), IMG_ERR("kernel") },
	{ SPEC("\"kernel\":\"a/b\""), IMG_ERR("kernel") },
	{ SPEC("\"kernel\":\"a" D60 "012\""), IMG_ERR("kernel") },
	{ SPEC(K ",\"initramfs\":5"), IMG_ERR("initramfs") },
	{ SPEC("\"disk\":\"a b\""), IMG_ERR("disk") },
	{ SPEC(K ",\"cmdline\":\"a\\nb\""),
	    "cmdline: must be printable ASCII, at most 1024 bytes" },
	{ SPEC(K ",\"cmdline\":\"caf\\u00e9\""),
	    "cmdline: must be printable ASCII, at most 1024 bytes" },
	{ SPEC(K ",\"cmdline\":[]"),
	    "cmdline: must be printable ASCII, at most 1024 bytes" },

	/* Networks. */
	{ SPEC(K ",\"networks\":{}"),
	    "networks: must be an array of at most 8 objects" },
	{ NETS("{\"vni\":1},{\"vni\":2},{\"vni\":3},{\"vni\":4},{\"vni\":5},"
	    "{\"vni\":6},{\"vni\":7},{\"vni\":8},{\"vni\":9}"),
	    "networks: must be an array of at most 8 objects" },
	{ NETS("100"), "networks[0]: must be an object" },
	{ NETS("{\"vni\":1},{}"), "networks[1]: missing field 'vni'" },
	{ NETS("{\"vni\":1,\"bridge\":\"br1\"}"),
	    "networks[0]: unknown field 'bridge'" },
	{ NETS("{\"vni\":0}"), "networks[0].vni: must be an integer in "
	    "1..16777215" },
	{ NETS("{\"vni\":16777216}"), "networks[0].vni: must be an integer in "
	    "1..16777215" },
	{ NETS("{\"vni\":100},{\"vni\":200},{\"vni\":100}"),
	    "networks[2].vni: VNI 100 is already networks[0]" },
	{ NETS("{\"vni\":1,\"mac\":\"00:16:3e:00:00\"}"), MAC_ERR(0) },
	{ NETS("{\"vni\":1},{\"vni\":2,\"mac\":\"00-16-3e-00-00-01\"}"),
	    MAC_ERR(1) },
	{ NETS("{\"vni\":1,\"mac\":\"00:16:3e:00:00:0g\"}"), MAC_ERR(0) },
	{ NETS("{\"vni\":1,\"mac\":\"00:16:3e:00:00:011\"}"), MAC_ERR(0) },
	{ NETS("{\"vni\":1,\"mac\":null}"), MAC_ERR(0) },
	{ NETS("{\"vni\":1,\"mac\":\"01:16:3e:00:00:01\"}"),
	    "networks[0].mac: must be unicast (a multicast bit is set)" },
	{ NETS("{\"vni\":1,\"mac\":\"ff:ff:ff:ff:ff:ff\"}"),
	    "networks[0].mac: must be unicast (a multicast bit is set)" },
	/* QEMU's 52:54:00 is locally administered. */
	{ NETS("{\"vni\":1},{\"vni\":2,\"mac\":\"52:54:00:12:34:56\"}"),
	    NULL },
	{ NETS("{\"vni\":1},{\"vni\":2,\"mac\":\"00:50:56:12:34:56\"}"),
	    LOCAL_ERR(1) },
	{ NETS("{\"vni\":1,\"mac\":\"00:00:00:00:00:00\"}"), LOCAL_ERR(0) },
	{ NETS("{\"vni\":1,\"mac\":\"00:1b:21:00:00:01\"}"), LOCAL_ERR(0) },
	{ NETS("{\"vni\":1,\"rate_kbps\":63}"), RATE_ERR(0) },
	{ NETS("{\"vni\":1},{\"vni\":2,\"rate_kbps\":100000001}"),
	    RATE_ERR(1) },
	{ NETS("{\"vni\":1,\"rate_kbps\":\"2M\"}"), RATE_ERR(0) },
	{ NETS("{\"vni\":1,\"rate_kbps\":1.5}"), RATE_ERR(0) },
	{ NETS("{\"vni\":1,\"mac\":\"02:00:00:00:00:01\"},"
	    "{\"vni\":2,\"mac\":\"02:00:00:00:00:01\"}"),
	    "networks[1].mac: same MAC as networks[0]" },
	{ NETS("{\"vni\":1,\"mac\":\"00:16:3e:00:00:01\"},{\"vni\":3},"
	    "{\"vni\":2,\"mac\":\"00:16:3E:00:00:01\"}"),
	    "networks[2].mac: same MAC as networks[0]" },

	/* Placement. */
	{ SPEC(K ",\"placement\":[]"), "placement: must be an object" },
	{ PLACE("\"rack\":\"r1\""), "placement: unknown field 'rack'" },
	{ PLACE("\"host\":\"H7\""), "placement.host: must be a host name" },
	{ PLACE("\"host\":\"\""), "placement.host: must be a host name" },
	{ PLACE("\"label\":\"rack\""), LABEL_ERR },
	{ PLACE("\"label\":\"=r1\""), LABEL_ERR },
	{ PLACE("\"label\":\"rack=r 1\""), LABEL_ERR },
	{ PLACE("\"label\":\"rack=a=b\""), LABEL_ERR },
	{ PLACE("\"label\":\"ra:ck=b\""), LABEL_ERR },
	{ PLACE("\"anti_affinity\":\"Web\""), GROUP_ERR },
	{ PLACE("\"anti_affinity\":1"), GROUP_ERR },
};

static void
test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct vm_spec s;
		char err[256] = "";
		int r;

		r = vm_spec_decode(cases[i].text, strlen(cases[i].text), &s, err,
		    sizeof(err));
		if (cases[i].error == NULL) {
			if (r != 0)
				fail_msg("case %zu refused: %s\n  %s", i, err,
				    cases[i].text);
			continue;
		}
		if (r != -EINVAL || strcmp(err, cases[i].error) != 0)
			fail_msg("case %zu: r=%d err '%s', want '%s'\n  %s", i, r,
			    err, cases[i].error, cases[i].text);
		/* A refusal leaves nothing half-filled. */
		assert_int_equal(s.vcpus, 0);
		assert_string_equal(s.name, "");
	}
}

/* decode -> to_json -> dump -> decode gives the same struct, for every
 * accepted case. */
static void
test_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct vm_spec a, b;
		char err[256];
		json_t *j;
		char *text;

		if (cases[i].error != NULL)
			continue;
		assert_int_equal(vm_spec_decode(cases[i].text,
		    strlen(cases[i].text), &a, err, sizeof(err)), 0);
		assert_non_null(j = vm_spec_to_json(&a));
		assert_non_null(text = json_dumps(j, JSON_COMPACT |
		    JSON_PRESERVE_ORDER));
		json_decref(j);
		if (vm_spec_decode(text, strlen(text), &b, err, sizeof(err)) != 0)
			fail_msg("case %zu: canonical form refused: %s\n  %s", i,
			    err, text);
		if (memcmp(&a, &b, sizeof(a)) != 0)
			fail_msg("case %zu: round trip differs\n  %s", i, text);
		free(text);
	}
}

static void
test_fields_and_canonical(void **state)
{
	const char *in = "{\"placement\":{\"anti_affinity\":\"web\","
	    "\"host\":\"h7\"},\"networks\":[{\"mac\":\"02:AA:bb:0C:0d:0E\","
	    "\"vni\":100},{\"rate_kbps\":2000,\"vni\":7}],"
	    "\"cmdline\":\"console=hvc0\",\"initramfs\":\"initrd\",\"kernel\":\"vmlinuz\",\"type\":\"pvh\","
	    "\"memory_mib\":1024,\"vcpus\":4,\"name\":\"db-1\"}";
	struct vm_spec s;
	char err[256];
	json_t *j;
	char *text;

	(void)state;
	assert_int_equal(vm_spec_decode(in, strlen(in), &s, err, sizeof(err)),
	    0);
	assert_string_equal(s.name, "db-1");
	assert_int_equal(s.vcpus, 4);
	assert_int_equal(s.memory_mib, 1024);
	assert_int_equal(s.type, VM_PVH);
	assert_string_equal(s.kernel, "vmlinuz");
	assert_string_equal(s.initramfs, "initrd");
	assert_string_equal(s.disk, "");
	assert_string_equal(s.cmdline, "console=hvc0");
	assert_int_equal(s.nnics, 2);
	assert_int_equal(s.nics[0].vni, 100);
	assert_true(s.nics[0].has_mac);
	assert_memory_equal(s.nics[0].mac,
	    ((const uint8_t[]){ 0x02, 0xaa, 0xbb, 0x0c, 0x0d, 0x0e }), 6);
	assert_int_equal(s.nics[1].vni, 7);
	assert_false(s.nics[1].has_mac);
	assert_string_equal(s.place_host, "h7");
	assert_string_equal(s.place_label, "");
	assert_string_equal(s.anti_affinity, "web");

	assert_non_null(j = vm_spec_to_json(&s));
	assert_non_null(text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER));
	json_decref(j);
	assert_string_equal(text, "{\"name\":\"db-1\",\"vcpus\":4,"
	    "\"memory_mib\":1024,\"type\":\"pvh\",\"kernel\":\"vmlinuz\","
	    "\"initramfs\":\"initrd\",\"cmdline\":\"console=hvc0\","
	    "\"networks\":[{\"vni\":100,\"mac\":\"02:aa:bb:0c:0d:0e\"},"
	    "{\"vni\":7,\"rate_kbps\":2000}],\"placement\":{\"host\":\"h7\","
	    "\"anti_affinity\":\"web\"}}");
	free(text);

	/* Defaults: type pv, no networks, no placement. */
	in = "{\"name\":\"a\",\"vcpus\":1,\"memory_mib\":32,\"disk\":\"d\"}";
	assert_int_equal(vm_spec_decode(in, strlen(in), &s, err, sizeof(err)),
	    0);
	assert_int_equal(s.type, VM_PV);
	assert_int_equal(s.nnics, 0);
	assert_non_null(j = vm_spec_to_json(&s));
	assert_non_null(text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER));
	json_decref(j);
	assert_string_equal(text, "{\"name\":\"a\",\"vcpus\":1,\"memory_mib\":32,"
	    "\"type\":\"pv\",\"disk\":\"d\",\"networks\":[]}");
	free(text);
}

/* A cmdline of exactly VM_CMDLINE_MAX bytes passes, one more does not. */
static void
test_cmdline_length(void **state)
{
	char body[VM_CMDLINE_MAX + 256], line[VM_CMDLINE_MAX + 2];
	struct vm_spec s;
	char err[256];

	(void)state;
	memset(line, 'x', sizeof(line) - 1);
	line[VM_CMDLINE_MAX] = '\0';
	snprintf(body, sizeof(body), SPEC(K ",\"cmdline\":\"%s\""), line);
	assert_int_equal(vm_spec_decode(body, strlen(body), &s, err,
	    sizeof(err)), 0);
	assert_int_equal(strlen(s.cmdline), VM_CMDLINE_MAX);
	line[VM_CMDLINE_MAX] = 'x';
	line[VM_CMDLINE_MAX + 1] = '\0';
	snprintf(body, sizeof(body), SPEC(K ",\"cmdline\":\"%s\""), line);
	assert_int_equal(vm_spec_decode(body, strlen(body), &s, err,
	    sizeof(err)), -EINVAL);
	assert_string_equal(err, "cmdline: must be printable ASCII, at most "
	    "1024 bytes");
}

static void
test_mac_generate(void **state)
{
	static const struct {
		unsigned idx;
		const char *mac;
	} vectors[] = {
		/* hashlib.blake2b(uuid + idx.to_bytes(4, "big"),
		 * digest_size=32).digest()[:3] */
		{ 0, "00:16:3e:dc:9c:8d" },
		{ 1, "00:16:3e:0d:d3:fd" },
		{ 7, "00:16:3e:0e:9e:be" },
		{ 256, "00:16:3e:f6:59:31" },
	};
	const char *uuid = "6f1c0a52-8f2e-4b7a-9c1d-3e5f7a9b0c2d";
	uint8_t mac[6], again[6], other[6];
	char text[VM_MAC_TEXT];

	(void)state;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(*vectors); i++) {
		vm_mac_generate(uuid, vectors[i].idx, mac);
		vm_mac_format(mac, text);
		assert_string_equal(text, vectors[i].mac);
		assert_true(vm_mac_acceptable(mac));
		/* Stable, and the case of the uuid does not matter. */
		vm_mac_generate("6F1C0A52-8F2E-4B7A-9C1D-3E5F7A9B0C2D",
		    vectors[i].idx, again);
		assert_memory_equal(mac, again, 6);
	}
	/* Distinct per index and per VM. */
	for (unsigned a = 0; a < VM_NICS_MAX; a++) {
		vm_mac_generate(uuid, a, mac);
		for (unsigned b = a + 1; b < VM_NICS_MAX; b++) {
			vm_mac_generate(uuid, b, other);
			assert_memory_not_equal(mac, other, 6);
		}
		vm_mac_generate("6f1c0a52-8f2e-4b7a-9c1d-3e5f7a9b0c2e", a, other);
		assert_memory_not_equal(mac, other, 6);
	}
}

static void
test_mac_helpers(void **state)
{
	uint8_t mac[6] = { 9, 9, 9, 9, 9, 9 };

	(void)state;
	assert_true(vm_mac_parse("0A:1b:2C:3d:4E:5f", mac));
	assert_memory_equal(mac,
	    ((const uint8_t[]){ 0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f }), 6);
	assert_false(vm_mac_parse("0a:1b:2c:3d:4e:5f:", mac));
	assert_false(vm_mac_parse("0a:1b:2c:3d:4e", mac));
	assert_false(vm_mac_parse("0a1b:2c:3d:4e:5f:6", mac));
	assert_false(vm_mac_parse(" a:1b:2c:3d:4e:5f", mac));
	/* A refused parse leaves the output alone. */
	assert_int_equal(mac[0], 0x0a);
	assert_true(vm_mac_acceptable((const uint8_t[]){ 0x06, 0, 0, 0, 0, 1 }));
	assert_true(vm_mac_acceptable((const uint8_t[]){ 0, 0x16, 0x3e, 0, 0,
	    0 }));
	assert_false(vm_mac_acceptable((const uint8_t[]){ 0x03, 0, 0, 0, 0,
	    1 }));
	assert_false(vm_mac_acceptable((const uint8_t[]){ 0, 0x16, 0x3f, 0, 0,
	    1 }));
	assert_string_equal(vm_type_name(VM_PV), "pv");
	assert_string_equal(vm_type_name(VM_PVH), "pvh");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_fields_and_canonical),
		cmocka_unit_test(test_cmdline_length),
		cmocka_unit_test(test_mac_generate),
		cmocka_unit_test(test_mac_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
