/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The VM spec (vmspec.h): strict decoding of the REST body (a jsonfield
 * table), the field rules hv-agent's vm.create check shares, the canonical
 * JSON form, and the MACs generated for NICs that name none.
 *
 * Invariants: a decode either fills the whole struct and returns 0, or
 * returns -EINVAL with a reason naming the field's path; every string is
 * checked against its character set and length before it is copied, so
 * hvd stores and renders only values that passed here.  Must never echo a
 * value back in an error (a cmdline may carry secrets), only the path.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api.h"
#include "jsonfield.h"
#include "vmspec.h"

static const uint8_t vm_xen_oui[3] = { 0x00, 0x16, 0x3e };

const char *
vm_type_name(enum vm_type t)
{
	return t == VM_PVH ? "pvh" : "pv";
}

bool
vm_mac_parse(const char *s, uint8_t mac[6])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t m[6];

	if (strlen(s) != VM_MAC_TEXT - 1)
		return false;
	for (int i = 0; i < 6; i++) {
		const char *hi, *lo;

		if (i > 0 && s[3 * i - 1] != ':')
			return false;
		if (s[3 * i] == '\0' || s[3 * i + 1] == '\0' ||
		    (hi = strchr(hex, s[3 * i] | 0x20)) == NULL ||
		    (lo = strchr(hex, s[3 * i + 1] | 0x20)) == NULL)
			return false;
		m[i] = (uint8_t)((hi - hex) << 4 | (lo - hex));
	}
	memcpy(mac, m, 6);
	return true;
}

void
vm_mac_format(const uint8_t mac[6], char buf[VM_MAC_TEXT])
{
	snprintf(buf, VM_MAC_TEXT, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0],
	    mac[1], mac[2], mac[3], mac[4], mac[5]);
}

bool
vm_mac_acceptable(const uint8_t mac[6])
{
	if (mac[0] & 0x01)
		return false;
	return (mac[0] & 0x02) || memcmp(mac, vm_xen_oui, 3) == 0;
}

void
vm_mac_generate(const char *vm_uuid, unsigned idx, uint8_t mac[6])
{
	crypto_generichash_state st;
	uint8_t h[crypto_generichash_BYTES];
	uint8_t be[4] = { (uint8_t)(idx >> 24), (uint8_t)(idx >> 16),
	    (uint8_t)(idx >> 8), (uint8_t)idx };

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	/* Lowercased so "ABC..." and "abc..." name the same VM. */
	for (const char *p = vm_uuid; *p; p++) {
		uint8_t c = (uint8_t)*p;

		if (c >= 'A' && c <= 'Z')
			c |= 0x20;
		crypto_generichash_update(&st, &c, 1);
	}
	crypto_generichash_update(&st, be, sizeof(be));
	crypto_generichash_final(&st, h, sizeof(h));
	memcpy(mac, vm_xen_oui, 3);
	memcpy(mac + 3, h, 3);
}

/* Image names in hvd's store: [a-z0-9][a-z0-9._-]*, 1..VM_IMAGE_MAX. */
static bool
vs_image_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > VM_IMAGE_MAX ||
	    !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* Label keys and values as hosts carry them (api_host.c). */
static bool
vs_label_valid(const char *s)
{
	const char *eq = strchr(s, '=');
	size_t klen, vlen;
	static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789";
	char kset[80], vset[80];

	if (eq == NULL)
		return false;
	klen = (size_t)(eq - s);
	vlen = strlen(eq + 1);
	snprintf(kset, sizeof(kset), "%s._/-", alnum);
	snprintf(vset, sizeof(vset), "%s._/-:", alnum);
	return klen >= 1 && klen <= API_LABEL_MAX && vlen <= API_LABEL_MAX &&
	    strspn(s, kset) == klen && strspn(eq + 1, vset) == vlen;
}

static bool
vs_cmdline_valid(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return false;
	return true;
}

/* ---- The rules shared with hv-agent's vm.create (vmspec.h) ---- */

int
vm_rule_name(const struct jf_ctx *c, const json_t *v, void *dst)
{
	const char *s = jf_string(v, API_NAME_MAX);

	if (s == NULL || !api_name_valid(s))
		return jf_fail(c, "must start with a-z and contain only a-z, 0-9 "
		    "and '-' (not at the end), at most %d characters",
		    API_NAME_MAX);
	return jf_store(c, dst, s);
}

int
vm_rule_uuid(const struct jf_ctx *c, const json_t *v, void *dst)
{
	const char *s = jf_string(v, VM_UUID_TEXT);

	/* All zero is libxl's "no uuid": a domain must have a real one. */
	if (s == NULL || !jf_uuid_valid(s, strlen(s)) ||
	    strspn(s, "0-") == VM_UUID_TEXT)
		return jf_fail(c, "must be a lowercase 8-4-4-4-12 hex uuid, not "
		    "all zero");
	return jf_store(c, dst, s);
}

int
vm_rule_vcpus(const struct jf_ctx *c, const json_t *v, void *dst)
{
	uint64_t u;

	if (!jf_uint(v, 1, VM_VCPUS_MAX, &u))
		return jf_fail(c, "must be an integer in 1..%d", VM_VCPUS_MAX);
	if (dst != NULL)
		*(unsigned *)dst = (unsigned)u;
	return 0;
}

int
vm_rule_rate(const struct jf_ctx *c, const json_t *v, void *dst)
{
	uint64_t u;

	if (!jf_uint(v, VM_RATE_MIN_KBPS, VM_RATE_MAX_KBPS, &u))
		return jf_fail(c, "must be an integer in %d..%d (kbit/s)",
		    VM_RATE_MIN_KBPS, VM_RATE_MAX_KBPS);
	if (dst != NULL)
		*(uint32_t *)dst = (uint32_t)u;
	return 0;
}

int
vm_rule_memory(const struct jf_ctx *c, const json_t *v, void *dst)
{
	uint64_t u;

	if (!jf_uint(v, VM_MEMORY_MIN_MIB, VM_MEMORY_MAX_MIB, &u))
		return jf_fail(c, "must be an integer in %d..%d",
		    VM_MEMORY_MIN_MIB, VM_MEMORY_MAX_MIB);
	if (dst != NULL)
		*(uint64_t *)dst = u;
	return 0;
}

int
vm_rule_type(const struct jf_ctx *c, const json_t *v, void *dst)
{
	const char *s = jf_string(v, 3);
	enum vm_type t;

	if (s != NULL && strcmp(s, "pv") == 0)
		t = VM_PV;
	else if (s != NULL && strcmp(s, "pvh") == 0)
		t = VM_PVH;
	else
		return jf_fail(c, "must be \"pv\" or \"pvh\"");
	if (dst != NULL)
		*(enum vm_type *)dst = t;
	return 0;
}

int
vm_rule_cmdline(const struct jf_ctx *c, const json_t *v, void *dst)
{
	const char *s = jf_string(v, VM_CMDLINE_MAX);

	if (s == NULL || !vs_cmdline_valid(s))
		return jf_fail(c, "must be printable ASCII, at most %d bytes",
		    VM_CMDLINE_MAX);
	return jf_store(c, dst, s);
}

int
vm_mac_rule(const struct jf_ctx *c, const json_t *v, uint8_t mac[6],
    bool explain)
{
	const char *s = jf_string(v, VM_MAC_TEXT - 1);
	uint8_t m[6];

	if (s == NULL || !vm_mac_parse(s, m))
		return jf_fail(c, "must be a MAC address xx:xx:xx:xx:xx:xx");
	if (!explain && !vm_mac_acceptable(m))
		return jf_fail(c, "must be unicast and locally administered or "
		    "in 00:16:3e");
	if (m[0] & 0x01)
		return jf_fail(c, "must be unicast (a multicast bit is set)");
	if (!vm_mac_acceptable(m))
		return jf_fail(c, "must be locally administered (x2:, x6:, xa:, "
		    "xe:) or in Xen's 00:16:3e");
	if (mac == NULL)
		return 0;
	/* An earlier NIC without a MAC holds zeros, which is never
	 * acceptable, so it never matches. */
	for (size_t j = 0; c->stride != 0 && j < c->index; j++)
		if (memcmp(mac - (c->index - j) * c->stride, m, 6) == 0)
			return jf_fail(c, "same MAC as %s[%zu]", c->array, j);
	memcpy(mac, m, 6);
	return 0;
}

/* ---- The REST body ---- */

static int
vs_rule_image(const struct jf_ctx *c, const json_t *v, void *dst)
{
	const char *s = jf_string(v, VM_IMAGE_MAX);

	if (s == NULL || !vs_image_valid(s))
		return jf_fail(c, "must be an image name: 1..%d of a-z 0-9 . _ -, "
		    "starting with a-z or 0-9", VM_IMAGE_MAX);
	return jf_store(c, dst, s);
}

/* A VNI at most once per VM: the FDB could not tell two NICs apart. */
static int
vs_rule_vni(const struct jf_ctx *c, const json_t *v, void *dst)
{
	const struct vm_nic_spec *first;
	uint64_t u;

	if (!jf_uint(v, API_VNI_MIN, API_VNI_MAX, &u))
		return jf_fail(c, "must be an integer in %d..%d", API_VNI_MIN,
		    API_VNI_MAX);
	if (dst == NULL)
		return 0;
	first = (const struct vm_nic_spec *)c->obj - c->index;
	for (size_t j = 0; j < c->index; j++)
		if (first[j].vni == (uint32_t)u)
			return jf_fail(c, "VNI %u is already %s[%zu]", (unsigned)u,
			    c->array, j);
	*(uint32_t *)dst = (uint32_t)u;
	return 0;
}

static int
vs_rule_mac(const struct jf_ctx *c, const json_t *v, void *dst)
{
	int r;

	if ((r = vm_mac_rule(c, v, dst, true)) == 0 && c->obj != NULL)
		((struct vm_nic_spec *)c->obj)->has_mac = true;
	return r;
}

static int
vs_rule_host(const struct jf_ctx *c, const json_t *v, void *dst)
{
	const char *s = jf_string(v, API_NAME_MAX);

	if (s == NULL || !api_name_valid(s))
		return jf_fail(c, "must be a host name");
	return jf_store(c, dst, s);
}

static int
vs_rule_label(const struct jf_ctx *c, const json_t *v, void *dst)
{
	const char *s = jf_string(v, c->field->size - 1);

	if (s == NULL || !vs_label_valid(s))
		return jf_fail(c, "must be key=value (key 1..%d of A-Z a-z 0-9 . _ "
		    "/ -, value 0..%d of those and :)", API_LABEL_MAX,
		    API_LABEL_MAX);
	return jf_store(c, dst, s);
}

static int
vs_rule_group(const struct jf_ctx *c, const json_t *v, void *dst)
{
	const char *s = jf_string(v, API_NAME_MAX);

	if (s == NULL || !api_name_valid(s))
		return jf_fail(c, "must be a group name: a-z first, then a-z, 0-9 "
		    "and '-' (not at the end), at most %d", API_NAME_MAX);
	return jf_store(c, dst, s);
}

#define VS_AT(m)	.offset = offsetof(struct vm_spec, m), \
	.size = sizeof(((struct vm_spec *)0)->m)
#define VS_NIC_AT(m)	.offset = offsetof(struct vm_nic_spec, m), \
	.size = sizeof(((struct vm_nic_spec *)0)->m)

/* Checked in table order: a NIC's VNI before its MAC, as vmspec.h says. */
static const struct jf_field vs_nic_fields[] = {
	{ .name = "vni", .type = JF_ANY, .flags = JF_REQUIRED, VS_NIC_AT(vni),
	    .rule = vs_rule_vni },
	{ .name = "mac", .type = JF_ANY, VS_NIC_AT(mac), .rule = vs_rule_mac },
	{ .name = "rate_kbps", .type = JF_ANY, VS_NIC_AT(rate_kbps),
	    .rule = vm_rule_rate },
};
/* Members of struct vm_spec itself (the object sits at offset 0). */
static const struct jf_field vs_placement_fields[] = {
	{ .name = "host", .type = JF_ANY, VS_AT(place_host),
	    .rule = vs_rule_host },
	{ .name = "label", .type = JF_ANY, VS_AT(place_label),
	    .rule = vs_rule_label },
	{ .name = "anti_affinity", .type = JF_ANY, VS_AT(anti_affinity),
	    .rule = vs_rule_group },
};
static const struct jf_field vs_fields[] = {
	{ .name = "name", .type = JF_ANY, .flags = JF_REQUIRED, VS_AT(name),
	    .rule = vm_rule_name },
	{ .name = "vcpus", .type = JF_ANY, .flags = JF_REQUIRED, VS_AT(vcpus),
	    .rule = vm_rule_vcpus },
	{ .name = "memory_mib", .type = JF_ANY, .flags = JF_REQUIRED,
	    VS_AT(memory_mib), .rule = vm_rule_memory },
	{ .name = "type", .type = JF_ANY, VS_AT(type), .rule = vm_rule_type },
	{ .name = "kernel", .type = JF_ANY, VS_AT(kernel),
	    .rule = vs_rule_image },
	{ .name = "initramfs", .type = JF_ANY, VS_AT(initramfs),
	    .rule = vs_rule_image },
	{ .name = "disk", .type = JF_ANY, VS_AT(disk), .rule = vs_rule_image },
	{ .name = "cmdline", .type = JF_ANY, VS_AT(cmdline),
	    .rule = vm_rule_cmdline },
	{ .name = "networks", .type = JF_ARRAY, .flags = JF_TABLE_ORDER,
	    .offset = offsetof(struct vm_spec, nics),
	    .size = sizeof(struct vm_nic_spec), .max = VM_NICS_MAX,
	    .elem = JF_OBJECT, .child = vs_nic_fields,
	    .nchild = JF_LEN(vs_nic_fields),
	    .count = offsetof(struct vm_spec, nnics), .msg = VM_NICS_MSG },
	/* Its own msg: null is "must be an object" too. */
	{ .name = "placement", .type = JF_OBJECT, .child = vs_placement_fields,
	    .nchild = JF_LEN(vs_placement_fields), .msg = "must be an object" },
};
static const struct jf_field vs_root = { .name = "", .type = JF_OBJECT,
	.child = vs_fields, .nchild = JF_LEN(vs_fields) };

int
vm_boot_rules(const char *kernel, const char *initramfs, const char *cmdline,
    const char *disk, const char *where, const char *prefix, char *err,
    size_t errlen)
{
	if (kernel[0] == '\0' && disk[0] == '\0')
		return jf_error(err, errlen, "%s: a kernel or a disk (or both) is "
		    "required to boot", where);
	if (kernel[0] == '\0' && initramfs[0] != '\0')
		return jf_error(err, errlen, "%sinitramfs: only with a kernel",
		    prefix);
	if (kernel[0] == '\0' && cmdline[0] != '\0')
		return jf_error(err, errlen, "%scmdline: only with a kernel",
		    prefix);
	return 0;
}

int
vm_spec_decode(const char *body, size_t len, struct vm_spec *out, char *err,
    size_t errlen)
{
	json_t *root = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = jf_parse_object(body, len, &root, err, errlen)) < 0)
		return r;
	if ((r = jf_check(&vs_root, root, "", out, err, errlen)) < 0)
		goto out;
	r = vm_boot_rules(out->kernel, out->initramfs, out->cmdline, out->disk,
	    "kernel", "", err, errlen);
out:
	json_decref(root);
	if (r < 0)
		memset(out, 0, sizeof(*out));
	return r;
}

/* Sets KEY to a new string unless S is empty; false on ENOMEM. */
static bool
vs_set_str(json_t *o, const char *key, const char *s)
{
	return s[0] == '\0' || json_object_set_new(o, key, json_string(s)) == 0;
}

json_t *
vm_spec_to_json(const struct vm_spec *s)
{
	json_t *o = NULL, *nets = NULL, *place = NULL;
	char mac[VM_MAC_TEXT];

	o = json_pack("{s:s, s:I, s:I, s:s}", "name", s->name,
	    "vcpus", (json_int_t)s->vcpus, "memory_mib",
	    (json_int_t)s->memory_mib, "type", vm_type_name(s->type));
	if (o == NULL || !vs_set_str(o, "kernel", s->kernel) ||
	    !vs_set_str(o, "initramfs", s->initramfs) ||
	    !vs_set_str(o, "cmdline", s->cmdline) ||
	    !vs_set_str(o, "disk", s->disk))
		goto fail;
	if ((nets = json_array()) == NULL)
		goto fail;
	for (size_t i = 0; i < s->nnics; i++) {
		json_t *n = json_pack("{s:I}", "vni", (json_int_t)s->nics[i].vni);

		if (n == NULL || json_array_append_new(nets, n) < 0)
			goto fail;
		if (s->nics[i].has_mac) {
			vm_mac_format(s->nics[i].mac, mac);
			if (json_object_set_new(n, "mac", json_string(mac)) < 0)
				goto fail;
		}
		if (s->nics[i].rate_kbps != 0 && json_object_set_new(n,
		    "rate_kbps", json_integer(s->nics[i].rate_kbps)) < 0)
			goto fail;
	}
	if (json_object_set_new(o, "networks", nets) < 0) {
		nets = NULL;
		goto fail;
	}
	nets = NULL;
	if (s->place_host[0] || s->place_label[0] || s->anti_affinity[0]) {
		if ((place = json_object()) == NULL ||
		    !vs_set_str(place, "host", s->place_host) ||
		    !vs_set_str(place, "label", s->place_label) ||
		    !vs_set_str(place, "anti_affinity", s->anti_affinity))
			goto fail;
		if (json_object_set_new(o, "placement", place) < 0) {
			place = NULL;
			goto fail;
		}
	}
	return o;
fail:
	json_decref(place);
	json_decref(nets);
	json_decref(o);
	errno = ENOMEM;
	return NULL;
}
