/*
 * vm.create params -> struct dom_spec -> libxl_domain_config (domain.h).
 *
 * Invariants: dom_spec_from_json() checks every value against its
 * character set and range before it is copied, so what reaches libxl is a
 * clean absolute path, a bridge the mesh owns ("br<VNI>") and a unicast
 * MAC; dom_config_build() allocates only with malloc/strdup and the
 * libxl_*_init functions, so libxl_domain_config_dispose() owns the result
 * whatever happens.
 *
 * Must never: touch a libxl context, Xen or the filesystem here (the caller
 * creates the domain), or echo a value in an error (cmdlines may carry
 * secrets).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxl_utils.h>

#include "api.h"
#include "domain.h"
#include "jsonfield.h"

/* A JSON string without NUL and at most MAX bytes, or NULL. */
static const char *
dom_string(const json_t *v, size_t max)
{
	const char *s = json_string_value(v);

	if (s == NULL || strlen(s) != json_string_length(v) || strlen(s) > max)
		return NULL;
	return s;
}

static bool
dom_uuid_valid(const char *s)
{
	bool nonzero = false;

	if (strlen(s) != DOM_UUID_TEXT)
		return false;
	for (size_t i = 0; i < DOM_UUID_TEXT; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (strchr("0123456789abcdef", s[i]) == NULL ||
		    s[i] == '\0') {
			return false;
		} else if (s[i] != '0') {
			nonzero = true;
		}
	}
	return nonzero;
}

static bool
dom_path_valid(const char *s)
{
	const char *p = s;
	size_t n = strlen(s);

	if (n < 2 || n > DOM_PATH_MAX || s[0] != '/' || s[n - 1] == '/')
		return false;
	while (*p == '/') {
		size_t c;

		p++;
		c = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789._+-");
		if (c == 0 || (c == 1 && p[0] == '.') ||
		    (c == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += c;
	}
	return *p == '\0';
}

/* "br<VNI>": the bridge lib/mesh.c owns for that VNI. */
static bool
dom_bridge_parse(const char *s, uint32_t *vni)
{
	uint64_t v = 0;
	size_t n = strlen(s);

	if (n < 3 || n > DOM_BRIDGE_MAX || strncmp(s, "br", 2) != 0 ||
	    s[2] == '0' || strspn(s + 2, "0123456789") != n - 2)
		return false;
	for (size_t i = 2; i < n && v <= API_VNI_MAX; i++)
		v = v * 10 + (uint64_t)(s[i] - '0');
	if (v < API_VNI_MIN || v > API_VNI_MAX)
		return false;
	*vni = (uint32_t)v;
	return true;
}

static int
dom_uint(const json_t *v, const char *path, uint64_t min, uint64_t max,
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
dom_nic(const json_t *o, size_t idx, struct dom_spec *ds, char *err,
    size_t errlen)
{
	struct dom_nic *n = &ds->nics[idx];
	char where[32];
	const char *k, *s;
	json_t *v;

	snprintf(where, sizeof(where), "params.nics[%zu]", idx);
	if (!json_is_object(o))
		return jf_error(err, errlen, "%s: must be an object", where);
	json_object_foreach((json_t *)o, k, v)
		if (strcmp(k, "bridge") != 0 && strcmp(k, "mac") != 0)
			return jf_unknown(err, errlen, where, k);
	if ((v = json_object_get(o, "bridge")) == NULL)
		return jf_error(err, errlen, "%s: missing field 'bridge'", where);
	if ((s = dom_string(v, DOM_BRIDGE_MAX)) == NULL ||
	    !dom_bridge_parse(s, &n->vni))
		return jf_error(err, errlen, "%s.bridge: must be br<VNI>, VNI "
		    "in %d..%d", where, API_VNI_MIN, API_VNI_MAX);
	memcpy(n->bridge, s, strlen(s) + 1);
	for (size_t j = 0; j < idx; j++)
		if (ds->nics[j].vni == n->vni)
			return jf_error(err, errlen, "%s.bridge: same bridge as "
			    "nics[%zu]", where, j);
	if ((v = json_object_get(o, "mac")) == NULL)
		return jf_error(err, errlen, "%s: missing field 'mac'", where);
	if ((s = dom_string(v, VM_MAC_TEXT - 1)) == NULL ||
	    !vm_mac_parse(s, n->mac))
		return jf_error(err, errlen, "%s.mac: must be a MAC address "
		    "xx:xx:xx:xx:xx:xx", where);
	if (!vm_mac_acceptable(n->mac))
		return jf_error(err, errlen, "%s.mac: must be unicast and "
		    "locally administered or in 00:16:3e", where);
	for (size_t j = 0; j < idx; j++)
		if (memcmp(ds->nics[j].mac, n->mac, 6) == 0)
			return jf_error(err, errlen, "%s.mac: same MAC as "
			    "nics[%zu]", where, j);
	return 0;
}

static int
dom_path(const json_t *v, const char *key, char dst[DOM_PATH_MAX + 1],
    char *err, size_t errlen)
{
	const char *s = dom_string(v, DOM_PATH_MAX);

	if (s == NULL || !dom_path_valid(s))
		return jf_error(err, errlen, "params.%s: must be an absolute "
		    "path of at most %d bytes: components of A-Z a-z 0-9 . _ + "
		    "-, no '.' or '..'", key, DOM_PATH_MAX);
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

enum {
	DF_NAME = 1 << 0,
	DF_UUID = 1 << 1,
	DF_VCPUS = 1 << 2,
	DF_MEMORY = 1 << 3,
	DF_TYPE = 1 << 4,
	DF_NICS = 1 << 5,
};

static int
dom_field(const char *k, const json_t *v, struct dom_spec *ds,
    unsigned *present, char *err, size_t errlen)
{
	const char *s;
	uint64_t u;
	size_t i;
	json_t *e;
	int r;

	if (strcmp(k, "name") == 0) {
		if ((s = dom_string(v, API_NAME_MAX)) == NULL || !api_name_valid(s))
			return jf_error(err, errlen, "params.name: must start "
			    "with a-z and contain only a-z, 0-9 and '-' (not at "
			    "the end), at most %d characters", API_NAME_MAX);
		memcpy(ds->name, s, strlen(s) + 1);
		*present |= DF_NAME;
	} else if (strcmp(k, "uuid") == 0) {
		if ((s = dom_string(v, DOM_UUID_TEXT)) == NULL ||
		    !dom_uuid_valid(s))
			return jf_error(err, errlen, "params.uuid: must be a "
			    "lowercase 8-4-4-4-12 hex uuid, not all zero");
		memcpy(ds->uuid, s, strlen(s) + 1);
		*present |= DF_UUID;
	} else if (strcmp(k, "vcpus") == 0) {
		if ((r = dom_uint(v, "params.vcpus", 1, VM_VCPUS_MAX, &u, err,
		    errlen)) < 0)
			return r;
		ds->vcpus = (unsigned)u;
		*present |= DF_VCPUS;
	} else if (strcmp(k, "memory_mib") == 0) {
		if ((r = dom_uint(v, "params.memory_mib", VM_MEMORY_MIN_MIB,
		    VM_MEMORY_MAX_MIB, &ds->memory_mib, err, errlen)) < 0)
			return r;
		*present |= DF_MEMORY;
	} else if (strcmp(k, "type") == 0) {
		if ((s = dom_string(v, 3)) != NULL && strcmp(s, "pv") == 0)
			ds->type = VM_PV;
		else if (s != NULL && strcmp(s, "pvh") == 0)
			ds->type = VM_PVH;
		else
			return jf_error(err, errlen, "params.type: must be "
			    "\"pv\" or \"pvh\"");
		*present |= DF_TYPE;
	} else if (strcmp(k, "kernel") == 0) {
		return dom_path(v, k, ds->kernel, err, errlen);
	} else if (strcmp(k, "initramfs") == 0) {
		return dom_path(v, k, ds->initramfs, err, errlen);
	} else if (strcmp(k, "disk") == 0) {
		return dom_path(v, k, ds->disk, err, errlen);
	} else if (strcmp(k, "cmdline") == 0) {
		if ((s = dom_string(v, VM_CMDLINE_MAX)) == NULL)
			return jf_error(err, errlen, "params.cmdline: must be "
			    "printable ASCII, at most %d bytes", VM_CMDLINE_MAX);
		for (const char *p = s; *p; p++)
			if (*p < 0x20 || *p > 0x7e)
				return jf_error(err, errlen, "params.cmdline: "
				    "must be printable ASCII, at most %d bytes",
				    VM_CMDLINE_MAX);
		memcpy(ds->cmdline, s, strlen(s) + 1);
	} else if (strcmp(k, "nics") == 0) {
		if (!json_is_array(v) || json_array_size(v) > VM_NICS_MAX)
			return jf_error(err, errlen, "params.nics: must be an "
			    "array of at most %d objects", VM_NICS_MAX);
		json_array_foreach((json_t *)v, i, e) {
			if ((r = dom_nic(e, i, ds, err, errlen)) < 0)
				return r;
			ds->nnics = i + 1;
		}
		*present |= DF_NICS;
	} else {
		return jf_unknown(err, errlen, "params", k);
	}
	return 0;
}

int
dom_spec_from_json(const json_t *params, struct dom_spec *out, char *err,
    size_t errlen)
{
	static const struct { unsigned flag; const char *name; } required[] = {
		{ DF_NAME, "name" }, { DF_UUID, "uuid" }, { DF_VCPUS, "vcpus" },
		{ DF_MEMORY, "memory_mib" }, { DF_TYPE, "type" },
		{ DF_NICS, "nics" },
	};
	unsigned present = 0;
	const char *k;
	json_t *v;
	int r = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(params)) {
		jf_error(err, errlen, "params: must be an object");
		goto out;
	}
	json_object_foreach((json_t *)params, k, v)
		if ((r = dom_field(k, v, out, &present, err, errlen)) < 0)
			goto out;
	r = -EINVAL;
	for (size_t i = 0; i < sizeof(required) / sizeof(*required); i++)
		if (!(present & required[i].flag)) {
			jf_error(err, errlen, "params: missing field '%s'",
			    required[i].name);
			goto out;
		}
	if (vm_boot_rules(out->kernel, out->initramfs, out->cmdline, out->disk,
	    "params", "params.", err, errlen) < 0)
		goto out;
	r = 0;
out:
	if (r < 0)
		memset(out, 0, sizeof(*out));
	return r;
}

/* strdup of a non-empty S into *DST; false on ENOMEM. */
static bool
dom_dup(char **dst, const char *s)
{
	if (s[0] == '\0')
		return true;
	return (*dst = strdup(s)) != NULL;
}

int
dom_config_build(const struct dom_spec *s, libxl_domain_config *dc,
    char *err, size_t errlen)
{
	libxl_domain_type type = s->type == VM_PVH ? LIBXL_DOMAIN_TYPE_PVH :
	    LIBXL_DOMAIN_TYPE_PV;
	libxl_domain_build_info *b = &dc->b_info;

	if (s->vcpus < 1 || s->vcpus > VM_VCPUS_MAX ||
	    s->memory_mib < VM_MEMORY_MIN_MIB ||
	    s->memory_mib > VM_MEMORY_MAX_MIB || s->nnics > VM_NICS_MAX ||
	    (s->type != VM_PV && s->type != VM_PVH) ||
	    (s->kernel[0] == '\0' && s->disk[0] == '\0'))
		return jf_error(err, errlen, "%s: not a checked spec", s->name);

	dc->c_info.type = type;
	if (!dom_dup(&dc->c_info.name, s->name))
		goto nomem;
	if (libxl_uuid_from_string(&dc->c_info.uuid, s->uuid) != 0)
		return jf_error(err, errlen, "%s: uuid: not a uuid", s->name);

	libxl_domain_build_info_init_type(b, type);
	b->max_vcpus = (int)s->vcpus;
	/* Allocated by hand: libxl_bitmap_alloc() dereferences its ctx, and
	 * there is none here.  libxl_bitmap_dispose() free()s map. */
	if ((b->avail_vcpus.map = calloc((s->vcpus + 7) / 8, 1)) == NULL)
		goto nomem;
	b->avail_vcpus.size = (s->vcpus + 7) / 8;
	for (unsigned i = 0; i < s->vcpus; i++)
		libxl_bitmap_set(&b->avail_vcpus, (int)i);
	b->max_memkb = b->target_memkb = s->memory_mib * 1024;
	if (s->kernel[0] != '\0') {
		if (!dom_dup(&b->kernel, s->kernel) ||
		    !dom_dup(&b->ramdisk, s->initramfs) ||
		    !dom_dup(&b->cmdline, s->cmdline))
			goto nomem;
	} else if ((b->bootloader = strdup(DOM_BOOTLOADER)) == NULL) {
		goto nomem;
	}

	if (s->disk[0] != '\0') {
		libxl_device_disk *d;

		if ((dc->disks = calloc(1, sizeof(*dc->disks))) == NULL)
			goto nomem;
		d = &dc->disks[0];
		libxl_device_disk_init(d);
		dc->num_disks = 1;
		d->backend = LIBXL_DISK_BACKEND_PHY;
		d->format = LIBXL_DISK_FORMAT_RAW;
		d->readwrite = 1;
		if ((d->pdev_path = strdup(s->disk)) == NULL ||
		    (d->vdev = strdup("xvda")) == NULL)
			goto nomem;
	}

	if (s->nnics > 0) {
		if ((dc->nics = calloc(s->nnics, sizeof(*dc->nics))) == NULL)
			goto nomem;
		/* Each initialised before num_nics counts it: dispose walks
		 * exactly num_nics entries. */
		for (size_t i = 0; i < s->nnics; i++) {
			libxl_device_nic *n = &dc->nics[i];

			libxl_device_nic_init(n);
			dc->num_nics = (int)i + 1;
			n->devid = (libxl_devid)i;
			memcpy(n->mac, s->nics[i].mac, sizeof(n->mac));
			if ((n->bridge = strdup(s->nics[i].bridge)) == NULL)
				goto nomem;
		}
	}
	return 0;
nomem:
	snprintf(err, errlen, "%s: out of memory building the domain config",
	    s->name);
	return -ENOMEM;
}
