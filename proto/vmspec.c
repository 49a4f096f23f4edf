/*
 * The VM spec (vmspec.h): strict decoding of the REST body, its canonical
 * JSON form, and the MACs generated for NICs that name none.
 *
 * Invariants: a decode either fills the whole struct and returns 0, or
 * returns -EINVAL with a reason naming the field's path; every string is
 * checked against its character set and length before it is copied, so
 * hvd stores and renders only values that passed here.  Must never echo a
 * value back in an error (a cmdline may carry secrets), only the path.
 */
#include <errno.h>
#include <stdarg.h>
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

/* A JSON string without NUL and at most MAX bytes, or NULL. */
static const char *
vs_string(const json_t *v, size_t max)
{
	const char *s = json_string_value(v);

	if (s == NULL || strlen(s) != json_string_length(v) || strlen(s) > max)
		return NULL;
	return s;
}

static int
vs_uint(const json_t *v, const char *path, uint64_t min, uint64_t max,
    uint64_t *out, char *err, size_t errlen)
{
	json_int_t i = json_integer_value(v);

	if (!json_is_integer(v) || i < 0 || (uint64_t)i < min ||
	    (uint64_t)i > max)
		return jf_error(err, errlen, "%s: must be an integer in "
		    "%llu..%llu", path, (unsigned long long)min,
		    (unsigned long long)max);
	*out = (uint64_t)i;
	return 0;
}

static int
vs_image(const json_t *v, const char *path, char dst[64], char *err,
    size_t errlen)
{
	const char *s = vs_string(v, VM_IMAGE_MAX);

	if (s == NULL || !vs_image_valid(s))
		return jf_error(err, errlen, "%s: must be an image name: 1..%d "
		    "of a-z 0-9 . _ -, starting with a-z or 0-9", path,
		    VM_IMAGE_MAX);
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static int
vs_nic(const json_t *o, size_t idx, struct vm_spec *vs, char *err,
    size_t errlen)
{
	struct vm_nic_spec *n = &vs->nics[idx];
	char where[32], path[40];
	const char *k, *s;
	json_t *v;
	uint64_t u;
	int r;

	snprintf(where, sizeof(where), "networks[%zu]", idx);
	if (!json_is_object(o))
		return jf_error(err, errlen, "%s: must be an object", where);
	json_object_foreach((json_t *)o, k, v)
		if (strcmp(k, "vni") != 0 && strcmp(k, "mac") != 0)
			return jf_unknown(err, errlen, where, k);
	if ((v = json_object_get(o, "vni")) == NULL)
		return jf_error(err, errlen, "%s: missing field 'vni'", where);
	snprintf(path, sizeof(path), "%s.vni", where);
	if ((r = vs_uint(v, path, API_VNI_MIN, API_VNI_MAX, &u, err,
	    errlen)) < 0)
		return r;
	n->vni = (uint32_t)u;
	for (size_t j = 0; j < idx; j++)
		if (vs->nics[j].vni == n->vni)
			return jf_error(err, errlen, "%s.vni: VNI %u is already "
			    "networks[%zu]", where, n->vni, j);
	if ((v = json_object_get(o, "mac")) == NULL)
		return 0;
	if ((s = vs_string(v, VM_MAC_TEXT - 1)) == NULL ||
	    !vm_mac_parse(s, n->mac))
		return jf_error(err, errlen, "%s.mac: must be a MAC address "
		    "xx:xx:xx:xx:xx:xx", where);
	if (n->mac[0] & 0x01)
		return jf_error(err, errlen, "%s.mac: must be unicast (a "
		    "multicast bit is set)", where);
	if (!vm_mac_acceptable(n->mac))
		return jf_error(err, errlen, "%s.mac: must be locally "
		    "administered (x2:, x6:, xa:, xe:) or in Xen's 00:16:3e",
		    where);
	for (size_t j = 0; j < idx; j++)
		if (vs->nics[j].has_mac &&
		    memcmp(vs->nics[j].mac, n->mac, 6) == 0)
			return jf_error(err, errlen, "%s.mac: same MAC as "
			    "networks[%zu]", where, j);
	n->has_mac = true;
	return 0;
}

static int
vs_networks(const json_t *v, struct vm_spec *vs, char *err, size_t errlen)
{
	size_t i;
	json_t *e;
	int r;

	if (!json_is_array(v) || json_array_size(v) > VM_NICS_MAX)
		return jf_error(err, errlen, "networks: must be an array of at "
		    "most %d objects", VM_NICS_MAX);
	json_array_foreach((json_t *)v, i, e) {
		if ((r = vs_nic(e, i, vs, err, errlen)) < 0)
			return r;
		vs->nnics = i + 1;
	}
	return 0;
}

static int
vs_placement(const json_t *o, struct vm_spec *vs, char *err, size_t errlen)
{
	const char *k, *s;
	json_t *v;

	if (!json_is_object(o))
		return jf_error(err, errlen, "placement: must be an object");
	json_object_foreach((json_t *)o, k, v) {
		if (strcmp(k, "host") == 0) {
			if ((s = vs_string(v, API_NAME_MAX)) == NULL ||
			    !api_name_valid(s))
				return jf_error(err, errlen, "placement.host: must "
				    "be a host name");
			memcpy(vs->place_host, s, strlen(s) + 1);
		} else if (strcmp(k, "label") == 0) {
			if ((s = vs_string(v, sizeof(vs->place_label) - 1)) ==
			    NULL || !vs_label_valid(s))
				return jf_error(err, errlen, "placement.label: must "
				    "be key=value (key 1..%d of A-Z a-z 0-9 . _ / -, "
				    "value 0..%d of those and :)", API_LABEL_MAX,
				    API_LABEL_MAX);
			memcpy(vs->place_label, s, strlen(s) + 1);
		} else if (strcmp(k, "anti_affinity") == 0) {
			if ((s = vs_string(v, API_NAME_MAX)) == NULL ||
			    !api_name_valid(s))
				return jf_error(err, errlen, "placement."
				    "anti_affinity: must be a group name: a-z "
				    "first, then a-z, 0-9 and '-' (not at the "
				    "end), at most %d", API_NAME_MAX);
			memcpy(vs->anti_affinity, s, strlen(s) + 1);
		} else {
			return jf_unknown(err, errlen, "placement", k);
		}
	}
	return 0;
}

enum {
	VS_NAME = 1 << 0,
	VS_VCPUS = 1 << 1,
	VS_MEMORY = 1 << 2,
};

static int
vs_field(const char *k, const json_t *v, struct vm_spec *vs,
    unsigned *present, char *err, size_t errlen)
{
	const char *s;
	uint64_t u;
	int r;

	if (strcmp(k, "name") == 0) {
		if ((s = vs_string(v, API_NAME_MAX)) == NULL || !api_name_valid(s))
			return jf_error(err, errlen, "name: must start with a-z "
			    "and contain only a-z, 0-9 and '-' (not at the "
			    "end), at most %d characters", API_NAME_MAX);
		memcpy(vs->name, s, strlen(s) + 1);
		*present |= VS_NAME;
	} else if (strcmp(k, "vcpus") == 0) {
		if ((r = vs_uint(v, "vcpus", 1, VM_VCPUS_MAX, &u, err,
		    errlen)) < 0)
			return r;
		vs->vcpus = (unsigned)u;
		*present |= VS_VCPUS;
	} else if (strcmp(k, "memory_mib") == 0) {
		if ((r = vs_uint(v, "memory_mib", VM_MEMORY_MIN_MIB,
		    VM_MEMORY_MAX_MIB, &vs->memory_mib, err, errlen)) < 0)
			return r;
		*present |= VS_MEMORY;
	} else if (strcmp(k, "type") == 0) {
		s = json_string_value(v);
		if (s != NULL && strcmp(s, "pv") == 0 && json_string_length(v) == 2)
			vs->type = VM_PV;
		else if (s != NULL && strcmp(s, "pvh") == 0 &&
		    json_string_length(v) == 3)
			vs->type = VM_PVH;
		else
			return jf_error(err, errlen, "type: must be \"pv\" or "
			    "\"pvh\"");
	} else if (strcmp(k, "kernel") == 0) {
		return vs_image(v, "kernel", vs->kernel, err, errlen);
	} else if (strcmp(k, "initramfs") == 0) {
		return vs_image(v, "initramfs", vs->initramfs, err, errlen);
	} else if (strcmp(k, "disk") == 0) {
		return vs_image(v, "disk", vs->disk, err, errlen);
	} else if (strcmp(k, "cmdline") == 0) {
		if ((s = vs_string(v, VM_CMDLINE_MAX)) == NULL ||
		    !vs_cmdline_valid(s))
			return jf_error(err, errlen, "cmdline: must be printable "
			    "ASCII, at most %d bytes", VM_CMDLINE_MAX);
		memcpy(vs->cmdline, s, strlen(s) + 1);
	} else if (strcmp(k, "networks") == 0) {
		return vs_networks(v, vs, err, errlen);
	} else if (strcmp(k, "placement") == 0) {
		return vs_placement(v, vs, err, errlen);
	} else {
		return jf_unknown(err, errlen, NULL, k);
	}
	return 0;
}

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
	static const struct { unsigned flag; const char *name; } required[] = {
		{ VS_NAME, "name" }, { VS_VCPUS, "vcpus" },
		{ VS_MEMORY, "memory_mib" },
	};
	json_t *root = NULL, *v;
	unsigned present = 0;
	const char *k;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = jf_parse_object(body, len, &root, err, errlen)) < 0)
		return r;
	json_object_foreach(root, k, v)
		if ((r = vs_field(k, v, out, &present, err, errlen)) < 0)
			goto out;
	r = -EINVAL;
	for (size_t i = 0; i < sizeof(required) / sizeof(*required); i++)
		if (!(present & required[i].flag)) {
			jf_error(err, errlen, "missing field '%s'",
			    required[i].name);
			goto out;
		}
	if (vm_boot_rules(out->kernel, out->initramfs, out->cmdline, out->disk,
	    "kernel", "", err, errlen) < 0)
		goto out;
	r = 0;
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
