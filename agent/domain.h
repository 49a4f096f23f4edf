/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * A VM as hv-agent builds it (the params of the vm.create request,
 * PROTOCOL.md 6.2, with each image object {url, sha256} replaced by the
 * path of its file in the image cache: agent/vm.c does that), and its
 * translation into a libxl domain configuration.  Both are pure: no libxl
 * context, no Xen, no files.
 *
 * The params, resolved by hvd from the REST spec (proto/vmspec.h):
 *
 *   {"name": "web1",                  required, api_name_valid()
 *    "uuid": "<36-char uuid>",        required, lowercase 8-4-4-4-12 hex,
 *                                     not all zero
 *    "vcpus": 1,                      required, 1..128
 *    "memory_mib": 256,               required, 32..1048576
 *    "type": "pv" | "pvh",            required
 *    "kernel": "/var/lib/hv/images/<sha256>",   optional absolute paths
 *    "initramfs": "/var/lib/hv/images/<sha256>",
 *    "disk": "/dev/vg0/web1",
 *    "cmdline": "root=/dev/xvda ro",  optional, printable ASCII <= 1024
 *    "nics": [{"bridge": "br100", "mac": "00:16:3e:12:34:56"}]}  required
 *
 * Paths: absolute, at most DOM_PATH_MAX bytes, components of
 * [A-Za-z0-9._+-] without "." or "..", no "//" and no trailing '/'.
 * kernel or disk (or both) is required; initramfs and cmdline only with a
 * kernel; "cmdline": "" counts as absent.  nics: at most VM_NICS_MAX, may be
 * empty; bridge is exactly "br<VNI>" (VNI 1..16777215, no leading zero),
 * the bridge the mesh owns, each at most once; mac is required here (hvd
 * generated the missing ones), unicast, locally administered or in
 * 00:16:3e, each at most once.  Unknown or missing fields, wrong types and
 * out-of-range values are -EINVAL with err naming the path
 * ("params.nics[1].mac: ...").  The rules the REST spec has too are
 * proto/vmspec.h's vm_rule_*() and vm_boot_rules(), not repeated here.
 */
#ifndef HV_AGENT_DOMAIN_H
#define HV_AGENT_DOMAIN_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libxl.h>

#include "vmspec.h"

#define DOM_PATH_MAX	255
#define DOM_BRIDGE_MAX	15		/* IFNAMSIZ - 1 */
#define DOM_UUID_TEXT	VM_UUID_TEXT
#define DOM_BOOTLOADER	"pygrub"	/* disk without kernel */

struct dom_nic {
	char bridge[DOM_BRIDGE_MAX + 1];
	uint32_t vni;			/* the bridge's VNI */
	uint8_t mac[6];
	uint32_t rate_kbps;		/* transmit limit, 0: none */
};

struct dom_spec {
	char name[64];
	char uuid[DOM_UUID_TEXT + 1];
	unsigned vcpus;
	uint64_t memory_mib;
	enum vm_type type;
	char kernel[DOM_PATH_MAX + 1];		/* "" = none */
	char initramfs[DOM_PATH_MAX + 1];	/* "" = none */
	char disk[DOM_PATH_MAX + 1];		/* "" = none */
	char cmdline[VM_CMDLINE_MAX + 1];	/* "" = none */
	struct dom_nic nics[VM_NICS_MAX];
	size_t nnics;
};

/* 0, or -EINVAL with the reason; *out is whole on success, zeroed on error. */
int dom_spec_from_json(const json_t *params, struct dom_spec *out, char *err,
    size_t errlen);

/*
 * Fills DC, fresh from libxl_domain_config_init(), for a PV or PVH guest:
 *  - c_info: type, name, uuid;
 *  - b_info (libxl_domain_build_info_init_type() done here): max_vcpus and
 *    avail_vcpus (bits 0..vcpus-1), max_memkb = target_memkb, and the
 *    top-level kernel, ramdisk and cmdline (libxl's LIBXL_HAVE_BUILDINFO_
 *    KERNEL fields, which both types use; the old u.pv.* stay NULL); with a
 *    disk and no kernel, bootloader DOM_BOOTLOADER instead;
 *  - one disk when s->disk is set: pdev_path, vdev "xvda", backend phy
 *    (blkback; the hotplug script puts a regular file on a loop device),
 *    format raw, read-write;
 *  - one nic per s->nics[i]: devid i, bridge, mac, and its rate if any
 *    (dom_nic_rate()).
 * Everything is malloc'd as libxl expects, so libxl_domain_config_dispose()
 * frees it all, also after an error (-ENOMEM, or -EINVAL for a spec that
 * did not come from dom_spec_from_json()).  Needs no libxl context.
 */
#define DOM_RATE_INTERVAL_US	50000	/* xl's default vif rate interval */
/* RATE_KBPS (0: none) as N's rate_bytes_per_interval/rate_interval_usecs. */
void dom_nic_rate(uint32_t rate_kbps, libxl_device_nic *n);

int dom_config_build(const struct dom_spec *s, libxl_domain_config *dc,
    char *err, size_t errlen);

#endif
