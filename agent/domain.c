/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * vm.create params -> struct dom_spec -> libxl_domain_config (domain.h).
 *
 * The params are checked by a jsonfield table whose rules are proto/
 * vmspec.h's, the ones hvd's REST spec uses (name, uuid, vcpus, memory,
 * type, cmdline, MACs, the boot rules); only what exists on this side
 * alone is checked here: image paths in the agent's cache and the mesh's
 * bridges.
 *
 * Invariants: every value is checked against its character set and range
 * before it is copied, so what reaches libxl is a clean absolute path, a
 * bridge the mesh owns ("br<VNI>") and a unicast MAC; dom_config_build()
 * allocates only with malloc/strdup and the libxl_*_init functions, so
 * libxl_domain_config_dispose() owns the result whatever happens.
 *
 * Must never: touch a libxl context, Xen or the filesystem here (the caller
 * creates the domain), or echo a value in an error (cmdlines may carry
 * secrets).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxl_utils.h>

#include "api.h"
#include "domain.h"
#include "jsonfield.h"

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
dom_rule_path(const struct jf_ctx *c, const json_t *v, void *dst)
{
	const char *s = jf_string(v, DOM_PATH_MAX);

	if (s == NULL || !dom_path_valid(s))
		return jf_fail(c, "must be an absolute path of at most %d bytes: "
		    "components of A-Z a-z 0-9 . _ + -, no '.' or '..'",
		    DOM_PATH_MAX);
	return jf_store(c, dst, s);
}

/* The bridge, and its VNI beside it; each bridge at most once. */
static int
dom_rule_bridge(const struct jf_ctx *c, const json_t *v, void *dst)
{
	struct dom_nic *n = c->obj;
	const char *s = jf_string(v, DOM_BRIDGE_MAX);
	uint32_t vni;

	if (s == NULL || !dom_bridge_parse(s, &vni))
		return jf_fail(c, "must be br<VNI>, VNI in %d..%d", API_VNI_MIN,
		    API_VNI_MAX);
	if (n == NULL)
		return 0;
	for (size_t j = 0; j < c->index; j++)
		if ((n - c->index + j)->vni == vni)
			return jf_fail(c, "same bridge as %s[%zu]", c->array, j);
	n->vni = vni;
	return jf_store(c, dst, s);
}

static int
dom_rule_mac(const struct jf_ctx *c, const json_t *v, void *dst)
{
	return vm_mac_rule(c, v, dst, false);
}

#define DS_AT(m)	.offset = offsetof(struct dom_spec, m), \
	.size = sizeof(((struct dom_spec *)0)->m)
#define DN_AT(m)	.offset = offsetof(struct dom_nic, m), \
	.size = sizeof(((struct dom_nic *)0)->m)

static const struct jf_field dom_nic_fields[] = {
	{ .name = "bridge", .type = JF_ANY, .flags = JF_REQUIRED, DN_AT(bridge),
	    .rule = dom_rule_bridge },
	{ .name = "mac", .type = JF_ANY, .flags = JF_REQUIRED, DN_AT(mac),
	    .rule = dom_rule_mac },
	{ .name = "rate_kbps", .type = JF_ANY, DN_AT(rate_kbps),
	    .rule = vm_rule_rate },
};
static const struct jf_field dom_fields[] = {
	{ .name = "name", .type = JF_ANY, .flags = JF_REQUIRED, DS_AT(name),
	    .rule = vm_rule_name },
	{ .name = "uuid", .type = JF_ANY, .flags = JF_REQUIRED, DS_AT(uuid),
	    .rule = vm_rule_uuid },
	{ .name = "vcpus", .type = JF_ANY, .flags = JF_REQUIRED, DS_AT(vcpus),
	    .rule = vm_rule_vcpus },
	{ .name = "memory_mib", .type = JF_ANY, .flags = JF_REQUIRED,
	    DS_AT(memory_mib), .rule = vm_rule_memory },
	{ .name = "type", .type = JF_ANY, .flags = JF_REQUIRED, DS_AT(type),
	    .rule = vm_rule_type },
	{ .name = "kernel", .type = JF_ANY, DS_AT(kernel),
	    .rule = dom_rule_path },
	{ .name = "initramfs", .type = JF_ANY, DS_AT(initramfs),
	    .rule = dom_rule_path },
	{ .name = "disk", .type = JF_ANY, DS_AT(disk), .rule = dom_rule_path },
	{ .name = "cmdline", .type = JF_ANY, DS_AT(cmdline),
	    .rule = vm_rule_cmdline },
	/* Each NIC in table order: its bridge before its MAC. */
	{ .name = "nics", .type = JF_ARRAY, .flags = JF_REQUIRED |
	    JF_TABLE_ORDER, .offset = offsetof(struct dom_spec, nics),
	    .size = sizeof(struct dom_nic), .max = VM_NICS_MAX,
	    .elem = JF_OBJECT, .child = dom_nic_fields,
	    .nchild = JF_LEN(dom_nic_fields),
	    .count = offsetof(struct dom_spec, nnics), .msg = VM_NICS_MSG },
};
static const struct jf_field dom_params = { .name = "params",
	.type = JF_OBJECT, .child = dom_fields, .nchild = JF_LEN(dom_fields) };

int
dom_spec_from_json(const json_t *params, struct dom_spec *out, char *err,
    size_t errlen)
{
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = jf_check(&dom_params, params, "params", out, err, errlen)) == 0)
		r = vm_boot_rules(out->kernel, out->initramfs, out->cmdline,
		    out->disk, "params", "params.", err, errlen);
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

/*
 * A transmit limit as libxl's vif rate: netback grants the guest
 * rate_bytes_per_interval every rate_interval_usecs, xl's own 50 ms.
 */
void
dom_nic_rate(uint32_t rate_kbps, libxl_device_nic *n)
{
	if (rate_kbps == 0)
		return;
	n->rate_interval_usecs = DOM_RATE_INTERVAL_US;
	n->rate_bytes_per_interval = (uint64_t)rate_kbps * 1000 / 8 *
	    DOM_RATE_INTERVAL_US / 1000000;
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
			dom_nic_rate(s->nics[i].rate_kbps, n);
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
