/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * REST API request bodies, the contract between hvctl (and any other
 * client) and hvd.  Decoders are strict pure functions over a buffer: see
 * jsonfield.h for what strict means.  Each returns 0, or -EINVAL with a
 * one-line reason in err that hvd sends back as {"error": reason}.
 */
#ifndef HV_API_H
#define HV_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define API_NAME_MAX	63
#define API_DESC_MAX	256
#define API_VNI_MIN	1
#define API_VNI_MAX	16777215	/* 24-bit VXLAN network identifier */

enum api_decode_mode {
	API_DECODE_CREATE,	/* required fields must be present */
	API_DECODE_PATCH,	/* any subset; at least one field */
};

enum {
	API_NET_NAME = 1 << 0,
	API_NET_VNI = 1 << 1,
	API_NET_DESCRIPTION = 1 << 2,
	API_NET_ALL_HOSTS = 1 << 3,
	API_NET_MEMBERS = 1 << 4,
};
#define API_NET_MEMBERS_MAX	128

struct api_network {
	unsigned present;	/* API_NET_* bits of the fields in the body */
	char name[API_NAME_MAX + 1];
	uint32_t vni;
	char description[API_DESC_MAX + 1];
	bool all_hosts;		/* default true on create */
	/* Explicit member hosts; giving them implies all_hosts false. */
	char members[API_NET_MEMBERS_MAX][API_NAME_MAX + 1];
	size_t nmembers;
};

enum api_role { API_ROLE_NONE, API_ROLE_READ, API_ROLE_ADMIN };

struct api_token_request {
	unsigned present;
	enum api_role role;
	char name[API_NAME_MAX + 1];
};

struct api_host_request {
	unsigned present;
	char name[API_NAME_MAX + 1];
	char agent_pubkey[65];		/* 64 lowercase hex digits */
};
enum { API_HOST_NAME = 1, API_HOST_PUBKEY = 2 };

/* Object names: [a-z][a-z0-9-]*, at most API_NAME_MAX, no trailing '-'. */
bool api_name_valid(const char *s);
int api_network_decode(const char *body, size_t len, enum api_decode_mode mode,
    struct api_network *out, char *err, size_t errlen);
int api_token_request_decode(const char *body, size_t len,
    struct api_token_request *out, char *err, size_t errlen);
int api_host_request_decode(const char *body, size_t len,
    struct api_host_request *out, char *err, size_t errlen);
/* POST /api/v1/vms/{name}/migrate: empty (to "": the scheduler picks), or
 * {"to": HOST} with a valid name.  0, or -EINVAL with err naming the
 * problem. */
struct api_migrate_request {
	char to[API_NAME_MAX + 1];
};
int api_migrate_request_decode(const char *body, size_t len,
    struct api_migrate_request *out, char *err, size_t errlen);
/* Host identity operations (proto/api_host.c). */
#define API_FP_HEX		64	/* host fingerprint, lowercase hex */
#define API_HOST_NETS_MAX	64
#define API_HOST_LABELS_MAX	32
#define API_LABEL_MAX		63
#define API_HOST_MOUNTS_MAX	16
#define API_SSH_KEYS_MAX	8192
enum api_host_op { API_HOST_ADOPT, API_HOST_EDIT, API_HOST_REPLACE };
enum {
	API_HS_NAME = 1 << 0,
	API_HS_FINGERPRINT = 1 << 1,
	API_HS_NETWORKS = 1 << 2,
	API_HS_LABELS = 1 << 3,
	API_HS_SSH_KEYS = 1 << 4,
	API_HS_MOUNTS = 1 << 5,
};
struct api_mount {
	char source[96];	/* UUID=... or LABEL=... */
	char path[128];		/* absolute mount point */
	char fstype[16];	/* default "auto" */
	char options[64];	/* default "defaults" */
};
struct api_host_spec {
	unsigned present;	/* API_HS_* */
	char name[API_NAME_MAX + 1];
	char fingerprint[API_FP_HEX + 1];
	uint32_t vnis[API_HOST_NETS_MAX];
	size_t nvnis;
	char labels[4096];	/* canonical JSON object, "{}" if absent */
	char ssh_keys[API_SSH_KEYS_MAX + 1];
	struct api_mount mounts[API_HOST_MOUNTS_MAX];
	size_t nmounts;
};
bool api_fingerprint_valid(const char *s);
int api_host_spec_decode(const char *body, size_t len, enum api_host_op op,
    struct api_host_spec *hs, char *err, size_t errlen);
const char *api_role_name(enum api_role role);
int api_role_parse(const char *s, enum api_role *out);

/*
 * Every time in the API's JSON is RFC 3339 in UTC, to the second
 * ("2026-12-03T19:30:00Z"), or null when it is not known; hvctl shows the
 * same text.  api_time_format() writes secs (Unix seconds) so into buf
 * (API_TIME_LEN holds any) and returns buf; for 0 or less (unknown), or a
 * time it cannot write, it returns NULL and buf is "".  api_time_json() is
 * the same as a new JSON reference: the string, or null.
 */
#define API_TIME_LEN	32
const char *api_time_format(int64_t secs, char *buf, size_t len);
json_t *api_time_json(int64_t secs);

#endif
