/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The VXLAN mesh applier (DESIGN section 2.6), shared by hvd (the anchor)
 * and hv-agent.
 *
 * A mesh_state is the whole desired mesh of one node: for every VNI it is
 * a member of, the remote VTEPs (the flood list) and the VM NICs known to
 * sit behind them.  mesh_apply() makes the kernel match it: it dumps the
 * links and the FDB, diffs them against the state and sends the smallest
 * change over one NETLINK_ROUTE socket, checking every ACK.  Applying the
 * same state twice changes nothing the second time (only dumps are sent).
 *
 * Per VNI it owns a bridge br<VNI> and a vxlan<VNI> (nolearning, dstport
 * 4789, local = the underlay IP, MTU = the underlay's minus 50 for IPv4 or
 * 70 for IPv6) enslaved to it.  Ownership is the name AND IFLA_IFALIAS ==
 * MESH_MARKER: a device without the marker is never touched, even when its
 * name matches (that VNI then fails with -EEXIST and the error says so).
 *
 * The underlay is IPv4 or IPv6, one family per state: local and every
 * VTEP have the same family.  Addresses are held as struct in6_addr, an
 * IPv4 one IPv4-mapped (::ffff:a.b.c.d), so equality is a 16-byte memcmp
 * and the family is mesh_ip_is_v4().
 *
 * Errors: 0 or a negative errno, with a message in err.  mesh_apply()
 * carries on with the other VNIs after one fails and returns the first
 * failure.
 */
#ifndef HV_MESH_H
#define HV_MESH_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define MESH_MARKER		"hv-mesh"	/* IFLA_IFALIAS of owned devices */
#define MESH_VXLAN_PREFIX	"vxlan"
#define MESH_BRIDGE_PREFIX	"br"
#define MESH_VNI_MAX		16777215u
#define MESH_DSTPORT		4789
#define MESH_OVERHEAD		50	/* outer IPv4 + UDP + VXLAN + Ethernet */
#define MESH_OVERHEAD6		70	/* the same with an outer IPv6 header */
#define MESH_IP_STRLEN		INET6_ADDRSTRLEN	/* mesh_ip_str() room */
#define MESH_JSON_VERSION	1
/* Bounds every parser enforces. */
#define MESH_NETS_MAX		4096
#define MESH_VTEPS_MAX		4096	/* per VNI */
#define MESH_MACS_MAX		(1u << 20)	/* per state */
#define MESH_JSON_MAX		(64u * 1024 * 1024)	/* bytes */

struct mesh_mac {
	uint8_t mac[6];			/* unicast, not all-zero */
	struct in6_addr vtep;		/* a remote VTEP */
};

struct mesh_net {
	uint32_t vni;			/* 1 .. MESH_VNI_MAX */
	struct in6_addr *vteps;		/* remote members: the flood list */
	size_t nvteps;
	struct mesh_mac *macs;		/* VM NICs on remote hosts */
	size_t nmacs;
};

/* Owns nets and, through them, every vteps and macs array. */
struct mesh_state {
	struct in6_addr local;		/* this node's underlay IP */
	char underlay[IFNAMSIZ];	/* device holding local; "" = find it */
	struct mesh_net *nets;
	size_t nnets;
};

struct mesh_stats {
	unsigned links_added, links_changed, links_deleted;
	unsigned fdb_added, fdb_deleted, fdb_unchanged;
};

/* True when A is IPv4 (IPv4-mapped); false for a real IPv6 address. */
bool mesh_ip_is_v4(const struct in6_addr *a);
/*
 * TEXT as an address: a dotted quad (stored IPv4-mapped) or an IPv6 text
 * that is not itself IPv4-mapped or -compatible (one spelling per
 * address).  0, or -EINVAL with *out untouched.  Says nothing of whether
 * the address is usable as a VTEP: mesh_state_validate() does.
 */
int mesh_ip_parse(const char *text, struct in6_addr *out);
/*
 * A as text into BUF (LEN >= MESH_IP_STRLEN): a dotted quad when IPv4,
 * else compressed IPv6; what mesh_ip_parse() reads back.  "?" if LEN is
 * too small.
 */
void mesh_ip_str(const struct in6_addr *a, char *buf, size_t len);

/*
 * JSON form, used for /etc/hv/mesh.json in the overlay and as the params
 * of the agent-link request "mesh.apply":
 *   {"version":1,"local":"10.0.0.5","underlay":"eth0","networks":[
 *     {"vni":100,"vteps":["10.0.0.6"],
 *      "macs":[{"mac":"aa:bb:cc:dd:ee:ff","vtep":"10.0.0.6"}]}]}
 * Addresses are dotted-quad IPv4 or IPv6 text ("fd00::5"); every VTEP has
 * the family of "local".  "underlay" may be absent or "".  Strict: unknown
 * or duplicate keys, bad addresses (IPv4 0/8, 127/8, 224/3; IPv6 ::, ::1,
 * ff00::/8, fe80::/10 and IPv4-mapped or -compatible text; a VTEP of the
 * other family or the local address as a VTEP), a VNI out of range or
 * repeated, a repeated VTEP or MAC, a multicast or zero MAC are -EINVAL
 * with err naming the path ("networks[2].macs[7].mac: ...").
 * Duplicate keys are only seen by mesh_state_parse() (a json_t has none).
 * On success *out is a new state the caller frees.
 */
int mesh_state_from_json(json_t *j, struct mesh_state **out, char *err,
    size_t errlen);
int mesh_state_parse(const char *buf, size_t len, struct mesh_state **out,
    char *err, size_t errlen);
/* A new reference, or NULL (ENOMEM). */
json_t *mesh_state_to_json(const struct mesh_state *st);
/* The checks mesh_state_from_json() makes, on a state built in memory. */
int mesh_state_validate(const struct mesh_state *st, char *err, size_t errlen);
/* NULL-safe. */
void mesh_state_free(struct mesh_state *st);
/* {"links_added":N,...} as a new reference, or NULL (ENOMEM). */
json_t *mesh_stats_to_json(const struct mesh_stats *s);

struct mesh_applier;
/* One NETLINK_ROUTE socket.  0 or -errno (err set). */
int mesh_applier_new(struct mesh_applier **out, char *err, size_t errlen);
/* NULL-safe. */
void mesh_applier_free(struct mesh_applier *ma);
/*
 * Dump, diff, apply the smallest change; idempotent.  An empty state
 * (nnets 0) removes every owned device.  *stats (may be NULL) counts what
 * was done, also when an error is returned.  Blocking, but every netlink
 * call is bounded by a receive timeout.
 */
int mesh_apply(struct mesh_applier *ma, const struct mesh_state *st,
    struct mesh_stats *stats, char *err, size_t errlen);

#endif
