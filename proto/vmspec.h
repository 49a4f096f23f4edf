/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The VM spec: the REST body of "create a VM" (hvctl -> hvd), decoded
 * strictly (see jsonfield.h for what strict means) into struct vm_spec.
 *
 *   {"name": "web1",                 required, api_name_valid()
 *    "vcpus": 2,                     required, 1..128
 *    "memory_mib": 512,              required, 32..1048576
 *    "type": "pv" | "pvh",           optional, default "pv"
 *    "kernel": "vmlinuz-6.1",        image names in hvd's image store:
 *    "initramfs": "initrd-6.1",      [a-z0-9][a-z0-9._-]*, at most 63
 *    "disk": "debian12-root",
 *    "cmdline": "root=/dev/xvda ro", printable ASCII, at most 1024 bytes
 *    "networks": [{"vni": 100, "mac": "00:16:3e:12:34:56"}, {"vni": 200}],
 *    "placement": {"host": "h7", "label": "rack=r1",
 *                  "anti_affinity": "web"}}
 *
 * Boot rules:
 *  - At least one of kernel and disk.  kernel alone or kernel + disk: the
 *    kernel is booted directly (the disk, if any, is the guest's xvda).
 *    disk alone: the agent runs the "pygrub" bootloader on the disk, which
 *    libxl supports for both pv and pvh guests.
 *  - initramfs and cmdline only with kernel ("cmdline": "" counts as
 *    absent; an empty image name is refused).
 * Network rules:
 *  - networks is optional (no NICs); at most VM_NICS_MAX entries; vni in
 *    1..16777215; a VNI at most once per VM (two NICs on one segment buy
 *    nothing but ambiguity in the FDB).
 *  - mac is optional (absent: vm_mac_generate() gives a stable one).  A
 *    fixed MAC must be unicast and either locally administered (bit 1 of the
 *    first octet set) or in Xen's OUI 00:16:3e; any other globally
 *    administered MAC belongs to some vendor's hardware and is refused, as
 *    is a MAC given twice.  Input may use either case.
 * Placement rules (all given constraints must hold together):
 *  - host: a host name (api_name_valid()); label: "key=value" with a key of
 *    1..63 [A-Za-z0-9._/-] and a value of 0..63 [A-Za-z0-9._/:-], matched
 *    against the host's labels; anti_affinity: a group name
 *    (api_name_valid()), no two VMs of a group on one host.
 *
 * Errors: -EINVAL with err naming the path of the field ("vcpus: ...",
 * "networks[1].mac: ...", "placement: unknown field 'x'").  The decoder
 * either fills *out whole and returns 0, or fails; it never echoes a value.
 *
 * The rules of the fields a VM also has in hv-agent's vm.create params
 * (name, vcpus, memory_mib, type, cmdline, the nics' MACs, and the uuid
 * hvd gives it) are the vm_rule_*() below: jsonfield rules that
 * agent/domain.c's table uses too, so both check one rule in one wording.
 */
#ifndef HV_VMSPEC_H
#define HV_VMSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "jsonfield.h"

#define VM_NICS_MAX		8
#define VM_CMDLINE_MAX		1024
#define VM_VCPUS_MAX		128
#define VM_MEMORY_MIN_MIB	32
#define VM_MEMORY_MAX_MIB	1048576
#define VM_IMAGE_MAX		63	/* image name length */
#define VM_MAC_TEXT		18	/* "xx:xx:xx:xx:xx:xx" + NUL */
#define VM_UUID_TEXT		36	/* 8-4-4-4-12 */
/* A NIC's transmit limit (libxl's vif rate) in kbit/s; 0 is none. */
#define VM_RATE_MIN_KBPS	64
#define VM_RATE_MAX_KBPS	100000000	/* 100 Gbit/s */

struct vm_nic_spec {
	uint32_t vni;
	bool has_mac;		/* false: generate with vm_mac_generate() */
	uint8_t mac[6];
	uint32_t rate_kbps;	/* 0: unlimited */
};

enum vm_type { VM_PV, VM_PVH };

struct vm_spec {
	char name[64];
	unsigned vcpus;
	uint64_t memory_mib;
	enum vm_type type;
	char kernel[64], initramfs[64], disk[64];	/* "" = none */
	char cmdline[VM_CMDLINE_MAX + 1];		/* "" = none */
	struct vm_nic_spec nics[VM_NICS_MAX];
	size_t nnics;
	char place_host[64];		/* "" = any */
	char place_label[128];		/* "key=value", "" = any */
	char anti_affinity[64];		/* "" = none */
};

int vm_spec_decode(const char *body, size_t len, struct vm_spec *out,
    char *err, size_t errlen);
/*
 * The canonical form: keys in a fixed order, optional fields left out when
 * empty (placement too), MACs in lowercase.  decode(dump(to_json(s))) gives
 * s back.  Returns a new reference, or NULL (ENOMEM).
 */
json_t *vm_spec_to_json(const struct vm_spec *s);
/* The boot rules above, shared with the agent's check of vm.create: WHERE
 * names the field of the first error, PREFIX prefixes the others. */
int vm_boot_rules(const char *kernel, const char *initramfs,
    const char *cmdline, const char *disk, const char *where,
    const char *prefix, char *err, size_t errlen);

/*
 * Shared field rules (jsonfield.h's jf_rule_fn, for JF_ANY fields): each
 * checks V, refuses it as "PATH: ..." and stores it into DST, a member of
 * the type given (NULL: check only).
 */
int vm_rule_name(const struct jf_ctx *c, const json_t *v, void *dst);
					/* char[]: api_name_valid() */
int vm_rule_uuid(const struct jf_ctx *c, const json_t *v, void *dst);
					/* char[VM_UUID_TEXT + 1]: lowercase
					   8-4-4-4-12 hex, not all zero */
int vm_rule_vcpus(const struct jf_ctx *c, const json_t *v, void *dst);
					/* unsigned: 1..VM_VCPUS_MAX */
int vm_rule_memory(const struct jf_ctx *c, const json_t *v, void *dst);
					/* uint64_t: VM_MEMORY_MIN_MIB..MAX */
int vm_rule_type(const struct jf_ctx *c, const json_t *v, void *dst);
					/* enum vm_type: "pv" or "pvh" */
int vm_rule_cmdline(const struct jf_ctx *c, const json_t *v, void *dst);
					/* char[VM_CMDLINE_MAX + 1]: printable
					   ASCII */
int vm_rule_rate(const struct jf_ctx *c, const json_t *v, void *dst);
					/* uint32_t: VM_RATE_MIN_KBPS..MAX */
/* The msg of a NIC array that is not one or has more than VM_NICS_MAX. */
#define VM_NICS_MSG	"must be an array of at most " JF_STR(VM_NICS_MAX) \
	" objects"
/*
 * The MAC of NIC c->index of an array (c->array) into MAC: "xx:xx:xx:xx:
 * xx:xx" in either case, vm_mac_acceptable(), and not the MAC of an earlier
 * NIC (the same member c->stride bytes back per NIC).  EXPLAIN words a
 * refusal for an operator (which bit is wrong), else in one line for the
 * agent link.  MAC NULL: check only.
 */
int vm_mac_rule(const struct jf_ctx *c, const json_t *v, uint8_t mac[6],
    bool explain);

/*
 * A stable MAC for NIC IDX of the VM whose uuid is VM_UUID: 00:16:3e followed
 * by the first 3 bytes of the unkeyed 32-byte BLAKE2b of the uuid text
 * (ASCII-lowercased) followed by IDX as 4 big-endian bytes.  hvd must still
 * check it is unique among its VMs' MACs.
 */
void vm_mac_generate(const char *vm_uuid, unsigned idx, uint8_t mac[6]);

/* "xx:xx:xx:xx:xx:xx" in either case, nothing else. */
bool vm_mac_parse(const char *s, uint8_t mac[6]);
/* Lowercase "xx:xx:xx:xx:xx:xx" into buf[VM_MAC_TEXT]. */
void vm_mac_format(const uint8_t mac[6], char buf[VM_MAC_TEXT]);
/* Unicast, and locally administered or in 00:16:3e (rules above). */
bool vm_mac_acceptable(const uint8_t mac[6]);
const char *vm_type_name(enum vm_type t);

#endif
