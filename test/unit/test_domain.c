/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * vm.create params -> struct dom_spec -> libxl_domain_config
 * (agent/domain.c): every field of the config for PV, PVH and disk-only
 * guests, the same config as libxl's own JSON serialiser sees it, a table of
 * refused params with exact messages, and libxl_domain_config_dispose()
 * releasing everything (LeakSanitizer fails the test otherwise).  No Xen is
 * needed: nothing here opens a libxl context.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libxl_utils.h>

#include "domain.h"

#define UUID "6f1c0a52-8f2e-4b7a-9c1d-3e5f7a9b0c2d"
#define IMG "/var/lib/hv/images/"
#define KSHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ISHA "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static const uint8_t uuid_bytes[16] = { 0x6f, 0x1c, 0x0a, 0x52, 0x8f, 0x2e,
	0x4b, 0x7a, 0x9c, 0x1d, 0x3e, 0x5f, 0x7a, 0x9b, 0x0c, 0x2d };

static json_t *
load(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
	    &jerr);

	if (j == NULL)
		fail_msg("bad test JSON: %s: %s", jerr.text, text);
	return j;
}

/* params -> dom_spec -> config, asserting both steps succeed. */
static void
build(const char *text, struct dom_spec *ds, libxl_domain_config *dc)
{
	char err[256] = "";
	json_t *j = load(text);

	if (dom_spec_from_json(j, ds, err, sizeof(err)) != 0)
		fail_msg("params refused: %s", err);
	json_decref(j);
	libxl_domain_config_init(dc);
	if (dom_config_build(ds, dc, err, sizeof(err)) != 0)
		fail_msg("config refused: %s", err);
}

static void
assert_vcpus(const libxl_domain_build_info *b, int n)
{
	assert_int_equal(b->max_vcpus, n);
	assert_int_equal(b->avail_vcpus.size, (n + 7) / 8);
	assert_int_equal(libxl_bitmap_count_set(&b->avail_vcpus), n);
	for (int i = 0; i < n; i++)
		assert_true(libxl_bitmap_test(&b->avail_vcpus, i));
	/* Bits past the last vCPU, within the last byte, stay clear. */
	for (int i = n; i < (int)b->avail_vcpus.size * 8; i++)
		assert_false(libxl_bitmap_test(&b->avail_vcpus, i));
}

static void
test_pv_full(void **state)
{
	struct dom_spec ds;
	libxl_domain_config dc;
	const libxl_domain_build_info *b = &dc.b_info;

	(void)state;
	build("{\"name\":\"web1\",\"uuid\":\"" UUID "\",\"vcpus\":2,"
	    "\"memory_mib\":256,\"type\":\"pv\",\"kernel\":\"" IMG KSHA "\","
	    "\"initramfs\":\"" IMG ISHA "\",\"cmdline\":\"root=/dev/xvda ro "
	    "console=hvc0\",\"disk\":\"/dev/vg0/web1\",\"nics\":["
	    "{\"bridge\":\"br100\",\"mac\":\"00:16:3e:12:34:56\"},"
	    "{\"bridge\":\"br16777215\",\"mac\":\"02:AB:cd:00:00:01\","
	    "\"rate_kbps\":2000}]}",
	    &ds, &dc);
	assert_int_equal(ds.nics[1].vni, 16777215);

	assert_int_equal(dc.c_info.type, LIBXL_DOMAIN_TYPE_PV);
	assert_string_equal(dc.c_info.name, "web1");
	assert_memory_equal(libxl_uuid_bytearray(&dc.c_info.uuid), uuid_bytes,
	    16);

	assert_int_equal(b->type, LIBXL_DOMAIN_TYPE_PV);
	assert_vcpus(b, 2);
	assert_int_equal(b->max_memkb, 256 * 1024);
	assert_int_equal(b->target_memkb, 256 * 1024);
	assert_string_equal(b->kernel, IMG KSHA);
	assert_string_equal(b->ramdisk, IMG ISHA);
	assert_string_equal(b->cmdline, "root=/dev/xvda ro console=hvc0");
	assert_null(b->bootloader);
	/* The deprecated PV-only copies stay unset: libxl refuses both. */
	assert_null(b->u.pv.kernel);
	assert_null(b->u.pv.ramdisk);
	assert_null(b->u.pv.cmdline);

	assert_int_equal(dc.num_disks, 1);
	assert_string_equal(dc.disks[0].pdev_path, "/dev/vg0/web1");
	assert_string_equal(dc.disks[0].vdev, "xvda");
	assert_int_equal(dc.disks[0].backend, LIBXL_DISK_BACKEND_PHY);
	assert_int_equal(dc.disks[0].format, LIBXL_DISK_FORMAT_RAW);
	assert_int_equal(dc.disks[0].readwrite, 1);
	assert_int_equal(dc.disks[0].is_cdrom, 0);

	assert_int_equal(dc.num_nics, 2);
	assert_int_equal(dc.nics[0].devid, 0);
	assert_string_equal(dc.nics[0].bridge, "br100");
	assert_memory_equal(dc.nics[0].mac,
	    ((const uint8_t[]){ 0x00, 0x16, 0x3e, 0x12, 0x34, 0x56 }), 6);
	assert_int_equal(dc.nics[1].devid, 1);
	assert_string_equal(dc.nics[1].bridge, "br16777215");
	assert_memory_equal(dc.nics[1].mac,
	    ((const uint8_t[]){ 0x02, 0xab, 0xcd, 0x00, 0x00, 0x01 }), 6);
	/* No rate: libxl's zero (none); 2000 kbit/s: 12,500 bytes / 50 ms. */
	assert_int_equal(dc.nics[0].rate_bytes_per_interval, 0);
	assert_int_equal(dc.nics[0].rate_interval_usecs, 0);
	assert_int_equal(dc.nics[1].rate_bytes_per_interval, 12500);
	assert_int_equal(dc.nics[1].rate_interval_usecs, 50000);

	assert_int_equal(dc.num_pcidevs, 0);
	assert_int_equal(dc.num_vfbs, 0);
	libxl_domain_config_dispose(&dc);
}

/* The same config through libxl's own serialiser, which walks every
 * pointer it owns (a dangling or wrongly-typed field would show here). */
static void
test_pv_libxl_json(void **state)
{
	struct dom_spec ds;
	libxl_domain_config dc;
	json_t *j, *ci, *bi, *d, *n;
	char *text;

	(void)state;
	build("{\"name\":\"web1\",\"uuid\":\"" UUID "\",\"vcpus\":3,"
	    "\"memory_mib\":512,\"type\":\"pv\",\"kernel\":\"/k\","
	    "\"initramfs\":\"/i\",\"cmdline\":\"ro\",\"disk\":\"/d.img\","
	    "\"nics\":[{\"bridge\":\"br7\",\"mac\":\"00:16:3e:00:00:07\"}]}",
	    &ds, &dc);
	/* libxl's JSON generator needs no context (libxl 4.17): NULL. */
	text = libxl_domain_config_to_json(NULL, &dc);
	assert_non_null(text);
	j = load(text);
	free(text);
	assert_non_null(ci = json_object_get(j, "c_info"));
	assert_string_equal(json_string_value(json_object_get(ci, "type")), "pv");
	assert_string_equal(json_string_value(json_object_get(ci, "name")),
	    "web1");
	assert_string_equal(json_string_value(json_object_get(ci, "uuid")),
	    UUID);
	assert_non_null(bi = json_object_get(j, "b_info"));
	assert_int_equal(json_integer_value(json_object_get(bi, "max_vcpus")),
	    3);
	text = json_dumps(json_object_get(bi, "avail_vcpus"), JSON_COMPACT);
	assert_string_equal(text, "[0,1,2]");
	free(text);
	assert_int_equal(json_integer_value(json_object_get(bi, "max_memkb")),
	    512 * 1024);
	assert_int_equal(json_integer_value(json_object_get(bi,
	    "target_memkb")), 512 * 1024);
	assert_string_equal(json_string_value(json_object_get(bi, "kernel")),
	    "/k");
	assert_string_equal(json_string_value(json_object_get(bi, "ramdisk")),
	    "/i");
	assert_string_equal(json_string_value(json_object_get(bi, "cmdline")),
	    "ro");
	assert_null(json_object_get(bi, "bootloader"));
	assert_int_equal(json_array_size(json_object_get(j, "disks")), 1);
	d = json_array_get(json_object_get(j, "disks"), 0);
	assert_string_equal(json_string_value(json_object_get(d, "pdev_path")),
	    "/d.img");
	assert_string_equal(json_string_value(json_object_get(d, "vdev")),
	    "xvda");
	assert_string_equal(json_string_value(json_object_get(d, "backend")),
	    "phy");
	assert_string_equal(json_string_value(json_object_get(d, "format")),
	    "raw");
	assert_int_equal(json_integer_value(json_object_get(d, "readwrite")), 1);
	assert_int_equal(json_array_size(json_object_get(j, "nics")), 1);
	n = json_array_get(json_object_get(j, "nics"), 0);
	assert_string_equal(json_string_value(json_object_get(n, "bridge")),
	    "br7");
	assert_string_equal(json_string_value(json_object_get(n, "mac")),
	    "00:16:3e:00:00:07");
	json_decref(j);
	libxl_domain_config_dispose(&dc);
}

static void
test_pvh_kernel_only(void **state)
{
	struct dom_spec ds;
	libxl_domain_config dc;
	const libxl_domain_build_info *b = &dc.b_info;

	(void)state;
	build("{\"name\":\"k\",\"uuid\":\"" UUID "\",\"vcpus\":9,"
	    "\"memory_mib\":1048576,\"type\":\"pvh\",\"kernel\":\"/boot/vmlinuz\","
	    "\"cmdline\":\"\",\"nics\":[]}", &ds, &dc);
	assert_int_equal(dc.c_info.type, LIBXL_DOMAIN_TYPE_PVH);
	assert_int_equal(b->type, LIBXL_DOMAIN_TYPE_PVH);
	assert_string_equal(dc.c_info.name, "k");
	assert_vcpus(b, 9);
	assert_int_equal(b->max_memkb, UINT64_C(1048576) * 1024);
	assert_int_equal(b->target_memkb, UINT64_C(1048576) * 1024);
	assert_string_equal(b->kernel, "/boot/vmlinuz");
	assert_null(b->ramdisk);
	assert_null(b->cmdline);
	assert_null(b->bootloader);
	assert_int_equal(dc.num_disks, 0);
	assert_null(dc.disks);
	assert_int_equal(dc.num_nics, 0);
	assert_null(dc.nics);
	libxl_domain_config_dispose(&dc);
}

static void
test_disk_only(void **state)
{
	struct dom_spec ds;
	libxl_domain_config dc;

	(void)state;
	build("{\"name\":\"d\",\"uuid\":\"" UUID "\",\"vcpus\":128,"
	    "\"memory_mib\":32,\"type\":\"pvh\",\"disk\":\"/srv/vm/d.raw\","
	    "\"nics\":[{\"bridge\":\"br1\",\"mac\":\"06:00:00:00:00:01\"}]}",
	    &ds, &dc);
	assert_int_equal(dc.c_info.type, LIBXL_DOMAIN_TYPE_PVH);
	assert_vcpus(&dc.b_info, 128);
	assert_int_equal(dc.b_info.max_memkb, 32 * 1024);
	assert_null(dc.b_info.kernel);
	assert_null(dc.b_info.ramdisk);
	assert_null(dc.b_info.cmdline);
	assert_string_equal(dc.b_info.bootloader, DOM_BOOTLOADER);
	assert_int_equal(dc.num_disks, 1);
	assert_string_equal(dc.disks[0].pdev_path, "/srv/vm/d.raw");
	assert_int_equal(dc.num_nics, 1);
	assert_string_equal(dc.nics[0].bridge, "br1");
	libxl_domain_config_dispose(&dc);
}

/* A spec that did not come from dom_spec_from_json() is refused, and the
 * half-built config still disposes cleanly. */
static void
test_build_refuses(void **state)
{
	struct dom_spec ds;
	libxl_domain_config dc;
	char err[256] = "";

	(void)state;
	build("{\"name\":\"w\",\"uuid\":\"" UUID "\",\"vcpus\":1,"
	    "\"memory_mib\":64,\"type\":\"pv\",\"kernel\":\"/k\",\"nics\":[]}",
	    &ds, &dc);
	libxl_domain_config_dispose(&dc);

	ds.vcpus = 0;
	libxl_domain_config_init(&dc);
	assert_int_equal(dom_config_build(&ds, &dc, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "w: not a checked spec");
	libxl_domain_config_dispose(&dc);

	ds.vcpus = 1;
	memcpy(ds.uuid, "zz", 3);
	libxl_domain_config_init(&dc);
	assert_int_equal(dom_config_build(&ds, &dc, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "w: uuid: not a uuid");
	libxl_domain_config_dispose(&dc);
}

#define P0 "\"name\":\"w\",\"uuid\":\"" UUID "\",\"vcpus\":1," \
	"\"memory_mib\":64,\"type\":\"pv\""
#define P(x) "{" P0 ",\"kernel\":\"/k\",\"nics\":[]" x "}"
#define NICS(x) "{" P0 ",\"kernel\":\"/k\",\"nics\":[" x "]}"
#define PATH_ERR(f) "params." f ": must be an absolute path of at most 255 " \
	"bytes: components of A-Z a-z 0-9 . _ + -, no '.' or '..'"
#define UUID_ERR "params.uuid: must be a lowercase 8-4-4-4-12 hex uuid, " \
	"not all zero"
#define BR_ERR(i) "params.nics[" #i "].bridge: must be br<VNI>, VNI in " \
	"1..16777215"
#define MAC_ERR(i) "params.nics[" #i "].mac: must be a MAC address " \
	"xx:xx:xx:xx:xx:xx"

static const struct {
	const char *text;
	const char *error;
} refused[] = {
	{ "[]", "params: must be an object" },
	{ P(",\"extra\":1"), "params: unknown field 'extra'" },
	{ P(",\"placement\":{}"), "params: unknown field 'placement'" },
	{ "{\"uuid\":\"" UUID "\",\"vcpus\":1,\"memory_mib\":64,\"type\":\"pv\","
	    "\"kernel\":\"/k\",\"nics\":[]}", "params: missing field 'name'" },
	{ "{\"name\":\"w\",\"vcpus\":1,\"memory_mib\":64,\"type\":\"pv\","
	    "\"kernel\":\"/k\",\"nics\":[]}", "params: missing field 'uuid'" },
	{ "{\"name\":\"w\",\"uuid\":\"" UUID "\",\"vcpus\":1,\"memory_mib\":64,"
	    "\"kernel\":\"/k\",\"nics\":[]}", "params: missing field 'type'" },
	{ "{" P0 ",\"kernel\":\"/k\"}", "params: missing field 'nics'" },
	{ "{\"name\":\"W\",\"uuid\":\"" UUID "\",\"vcpus\":1,\"memory_mib\":64,"
	    "\"type\":\"pv\",\"kernel\":\"/k\",\"nics\":[]}",
	    "params.name: must start with a-z and contain only a-z, 0-9 and "
	    "'-' (not at the end), at most 63 characters" },
	{ "{\"name\":\"w\",\"uuid\":\"6F1C0A52-8F2E-4B7A-9C1D-3E5F7A9B0C2D\","
	    "\"vcpus\":1,\"memory_mib\":64,\"type\":\"pv\",\"kernel\":\"/k\","
	    "\"nics\":[]}", UUID_ERR },
	{ "{\"name\":\"w\",\"uuid\":\"00000000-0000-0000-0000-000000000000\","
	    "\"vcpus\":1,\"memory_mib\":64,\"type\":\"pv\",\"kernel\":\"/k\","
	    "\"nics\":[]}", UUID_ERR },
	{ "{\"name\":\"w\",\"uuid\":\"6f1c0a528f2e4b7a9c1d3e5f7a9b0c2d\","
	    "\"vcpus\":1,\"memory_mib\":64,\"type\":\"pv\",\"kernel\":\"/k\","
	    "\"nics\":[]}", UUID_ERR },
	{ "{\"name\":\"w\",\"uuid\":\"6f1c0a52-8f2e-4b7a-9c1d-3e5f7a9b0c2\","
	    "\"vcpus\":1,\"memory_mib\":64,\"type\":\"pv\",\"kernel\":\"/k\","
	    "\"nics\":[]}", UUID_ERR },
	{ "{\"name\":\"w\",\"uuid\":\"" UUID "\",\"vcpus\":129,"
	    "\"memory_mib\":64,\"type\":\"pv\",\"kernel\":\"/k\",\"nics\":[]}",
	    "params.vcpus: must be an integer in 1..128" },
	{ "{\"name\":\"w\",\"uuid\":\"" UUID "\",\"vcpus\":1,"
	    "\"memory_mib\":16,\"type\":\"pv\",\"kernel\":\"/k\",\"nics\":[]}",
	    "params.memory_mib: must be an integer in 32..1048576" },
	{ "{\"name\":\"w\",\"uuid\":\"" UUID "\",\"vcpus\":1,"
	    "\"memory_mib\":64,\"type\":\"hvm\",\"kernel\":\"/k\",\"nics\":[]}",
	    "params.type: must be \"pv\" or \"pvh\"" },
	{ "{" P0 ",\"nics\":[]}",
	    "params: a kernel or a disk (or both) is required to boot" },
	{ "{" P0 ",\"disk\":\"/d\",\"initramfs\":\"/i\",\"nics\":[]}",
	    "params.initramfs: only with a kernel" },
	{ "{" P0 ",\"disk\":\"/d\",\"cmdline\":\"x\",\"nics\":[]}",
	    "params.cmdline: only with a kernel" },
	{ "{" P0 ",\"kernel\":\"k\",\"nics\":[]}", PATH_ERR("kernel") },
	{ "{" P0 ",\"kernel\":\"/\",\"nics\":[]}", PATH_ERR("kernel") },
	{ "{" P0 ",\"kernel\":\"/a/../etc/shadow\",\"nics\":[]}",
	    PATH_ERR("kernel") },
	{ "{" P0 ",\"kernel\":\"/a/./b\",\"nics\":[]}", PATH_ERR("kernel") },
	{ "{" P0 ",\"kernel\":\"/a//b\",\"nics\":[]}", PATH_ERR("kernel") },
	{ "{" P0 ",\"kernel\":\"/a/\",\"nics\":[]}", PATH_ERR("kernel") },
	{ "{" P0 ",\"kernel\":\"/a b\",\"nics\":[]}", PATH_ERR("kernel") },
	{ "{" P0 ",\"kernel\":\"/a,b\",\"nics\":[]}", PATH_ERR("kernel") },
	{ P(",\"initramfs\":\"/i\\u0000x\""), PATH_ERR("initramfs") },
	{ P(",\"disk\":\"phy:/dev/sda\""), PATH_ERR("disk") },
	{ P(",\"cmdline\":\"a\\tb\""),
	    "params.cmdline: must be printable ASCII, at most 1024 bytes" },
	{ "{" P0 ",\"kernel\":\"/k\",\"nics\":{}}",
	    "params.nics: must be an array of at most 8 objects" },
	{ NICS("[]"), "params.nics[0]: must be an object" },
	{ NICS("{\"bridge\":\"br1\",\"mac\":\"02:00:00:00:00:01\",\"vni\":1}"),
	    "params.nics[0]: unknown field 'vni'" },
	{ NICS("{\"mac\":\"02:00:00:00:00:01\"}"),
	    "params.nics[0]: missing field 'bridge'" },
	{ NICS("{\"bridge\":\"br1\"}"), "params.nics[0]: missing field 'mac'" },
	{ NICS("{\"bridge\":\"eth0\",\"mac\":\"02:00:00:00:00:01\"}"),
	    BR_ERR(0) },
	{ NICS("{\"bridge\":\"br0\",\"mac\":\"02:00:00:00:00:01\"}"),
	    BR_ERR(0) },
	{ NICS("{\"bridge\":\"br01\",\"mac\":\"02:00:00:00:00:01\"}"),
	    BR_ERR(0) },
	{ NICS("{\"bridge\":\"br16777216\",\"mac\":\"02:00:00:00:00:01\"}"),
	    BR_ERR(0) },
	{ NICS("{\"bridge\":\"br99999999999999\",\"mac\":\"02:00:00:00:00:01\"}"),
	    BR_ERR(0) },
	{ NICS("{\"bridge\":\"br\",\"mac\":\"02:00:00:00:00:01\"}"), BR_ERR(0) },
	{ NICS("{\"bridge\":\"br1\",\"mac\":\"02:00:00:00:00:01\"},"
	    "{\"bridge\":\"br1\",\"mac\":\"02:00:00:00:00:02\"}"),
	    "params.nics[1].bridge: same bridge as nics[0]" },
	{ NICS("{\"bridge\":\"br1\",\"mac\":\"02:00:00:00:00:01\"},"
	    "{\"bridge\":\"br2\",\"mac\":\"02:00:00:00:00:01\"}"),
	    "params.nics[1].mac: same MAC as nics[0]" },
	{ NICS("{\"bridge\":\"br1\",\"mac\":\"02:00:00:00:00\"}"), MAC_ERR(0) },
	{ NICS("{\"bridge\":\"br1\",\"mac\":\"03:00:00:00:00:01\"}"),
	    "params.nics[0].mac: must be unicast and locally administered or "
	    "in 00:16:3e" },
	{ NICS("{\"bridge\":\"br1\",\"mac\":\"00:1b:21:00:00:01\"}"),
	    "params.nics[0].mac: must be unicast and locally administered or "
	    "in 00:16:3e" },
};

static void
test_refused(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
		struct dom_spec ds;
		char err[256] = "";
		json_t *j = load(refused[i].text);
		int r = dom_spec_from_json(j, &ds, err, sizeof(err));

		json_decref(j);
		if (r != -EINVAL || strcmp(err, refused[i].error) != 0)
			fail_msg("case %zu: r=%d err '%s', want '%s'\n  %s", i, r,
			    err, refused[i].error, refused[i].text);
		assert_string_equal(ds.name, "");
		assert_int_equal(ds.nnics, 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pv_full),
		cmocka_unit_test(test_pv_libxl_json),
		cmocka_unit_test(test_pvh_kernel_only),
		cmocka_unit_test(test_disk_only),
		cmocka_unit_test(test_build_refuses),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
