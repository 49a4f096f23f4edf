/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The per-host Alpine overlay (DESIGN section 4): the /ovl request path,
 * the host fingerprint and the overlay archive itself.  Everything here is
 * pure: no I/O, no database, no logging, so hvd's HTTP route, unit tests,
 * the fuzzer and the benchmark share it unchanged.
 */
#ifndef HVD_APKOVL_H
#define HVD_APKOVL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ovl_parse.c: the overlay request path, strict (fuzzed). */

/*
 * "/ovl/<uuid>/<mac>.apkovl.tar.gz" -> uuid (lowercase 8-4-4-4-12 hex, or ""
 * when the machine has none: Alpine then substitutes an empty string,
 * giving "/ovl//<mac>..."), mac (lowercase aa:bb:cc:dd:ee:ff; ':' or '-'
 * separated, either case, on input; all-zero and multicast rejected).
 * Anything else is -EINVAL with err naming the bad part (never echoing the
 * path).  No percent-decoding: '%' is an error, and so are '?' and '#'.
 */
int ovl_path_parse(const char *path, char uuid[37], char mac[18], char *err,
    size_t errlen);

/*
 * Lowercase hex of BLAKE2b-256 (no key) over
 * "hv-fp-v1\n" + uuid + "\n" + mac, where uuid is lowercased and mac is
 * lowercased with '-' turned into ':'.  Total: any strings are hashed;
 * validate them with ovl_path_parse() first.
 */
#define HOST_FP_HEX	65
void host_fingerprint(const char *uuid, const char *mac, char out[HOST_FP_HEX]);

/* apkovl.c: the overlay, a deterministic tar.gz built in memory. */
struct apkovl_mount {
	char source[96];	/* "UUID=<fs uuid>" or "LABEL=<label>" */
	char path[128];		/* absolute mount point */
	char fstype[16];	/* e.g. "ext4", "xfs", "auto" */
	char options[64];	/* e.g. "defaults,noatime" */
};

#define APKOVL_TEXT_MAX		(256 * 1024)	/* mesh.json, authorized_keys */
#define APKOVL_MOUNTS_MAX	64
#define APKOVL_WORLD_MAX	256
#define APKOVL_KEYS_MAX		8
#define APKOVL_KEY_NAME_MAX	64
#define APKOVL_KEY_MAX		(16 * 1024)

/* A public key apk trusts: the site's signing key for its own repository
 * (abuild-keygen's NAME.rsa.pub), into etc/apk/keys/NAME. */
struct apkovl_key {
	char name[APKOVL_KEY_NAME_MAX];	/* [A-Za-z0-9._@+-], ends ".rsa.pub" */
	const char *pem;		/* "-----BEGIN PUBLIC KEY-----" ... */
};

struct apkovl_input {
	bool discovery;		/* true: no key, no token, agent discovers */
	const char *hostname;	/* [a-z][a-z0-9-]*, <= 63 */
	const char *boot_if;	/* underlay NIC in the host, e.g. "eth0" */
	const char *hvd_url;	/* "http://10.77.0.1:80": boot HTTP base */
	const char *hvd_agent;	/* "10.77.0.1:8471": agent link address */
	const char *hvd_key_hex;	/* hvd's agent-link public key, 64 hex */
	const char *agent_key_hex;	/* per-boot private key; NULL if discovery */
	const char *boot_token;	/* "hvb_" + 64 hex; NULL if discovery */
	/* Discovery only: "mac=..&uuid=.." for discovery-url, or NULL.  Only
	 * [0-9a-f:=&-] and the words mac and uuid; the caller builds it from
	 * parsed values. */
	const char *discovery_query;
	const char *mesh_json;	/* etc/hv/mesh.json verbatim; NULL = no file */
	const char *ssh_keys;	/* authorized_keys; NULL or "" = no file */
	const struct apkovl_mount *mounts;
	size_t nmounts;
	const char *const *world;	/* extra packages, NULL-terminated */
	/* The site's repository keys; with any, etc/apk/repositories also
	 * names hvd_url/alpine/hypervisor, where the site's hv-agent is. */
	const struct apkovl_key *apk_keys;
	size_t napk_keys;
	int64_t mtime;		/* mtime of every entry, >= 0 */
};

/* Why K cannot go into an overlay (a static text), or NULL: the one rule
 * for repository keys, which ident.c also uses to skip a bad file. */
const char *apkovl_key_check(const struct apkovl_key *k);

/*
 * Builds the overlay into *out (malloc'd, the caller frees it; it holds
 * the agent key and boot token, so wipe it with sodium_memzero first).
 * The same input gives the same bytes.  Returns 0, -EINVAL (err names the
 * bad input, never a secret) or -ENOMEM/-EIO (err says what failed).
 */
int apkovl_build(const struct apkovl_input *in, unsigned char **out,
    size_t *len, char *err, size_t errlen);

#endif
