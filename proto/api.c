/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Decoders for REST request bodies, and the one time format of the API's
 * replies (hvd writes it, hvctl shows it).
 *
 * Invariant: a decoder either fills the whole output and returns 0, or
 * returns -EINVAL with a reason; callers never see a half-valid struct.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "jsonfield.h"

bool
api_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > API_NAME_MAX || s[0] < 'a' || s[0] > 'z' ||
	    s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-'))
			return false;
	}
	return true;
}

/* Rules for jf_decode(), worded "field 'NAME' ...". */
static int
api_name_rule(const struct jf_ctx *c, const json_t *v, void *dst)
{
	(void)dst;
	if (api_name_valid(json_string_value(v)))
		return 0;
	return jf_fail(c, "must start with a-z and contain only a-z, 0-9 and "
	    "'-' (not at the end), at most %d characters", API_NAME_MAX);
}

static int
api_text_rule(const struct jf_ctx *c, const json_t *v, void *dst)
{
	(void)dst;
	for (const unsigned char *p = (const unsigned char *)json_string_value(v);
	    *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return jf_fail(c, "contains a control character");
	return 0;
}

#define NET_AT(m)	.offset = offsetof(struct api_network, m), \
	.size = sizeof(((struct api_network *)0)->m)

static const struct jf_field api_network_fields[] = {
	{ .name = "name", .type = JF_STRING, .flag = API_NET_NAME, NET_AT(name),
	    .min = 1, .max = API_NAME_MAX, .rule = api_name_rule },
	{ .name = "vni", .type = JF_UINT, .flag = API_NET_VNI, NET_AT(vni),
	    .min = API_VNI_MIN, .max = API_VNI_MAX },
	{ .name = "description", .type = JF_STRING, .flag = API_NET_DESCRIPTION,
	    NET_AT(description), .max = API_DESC_MAX, .rule = api_text_rule },
	{ .name = "all_hosts", .type = JF_BOOL, .flag = API_NET_ALL_HOSTS,
	    NET_AT(all_hosts) },
};

/* "members": [host names], taken out of root before the table decode. */
static int
api_network_members(json_t *root, struct api_network *n, char *err,
    size_t errlen)
{
	json_t *arr = json_object_get(root, "members"), *e;
	size_t i;

	if (arr == NULL)
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > API_NET_MEMBERS_MAX) {
		snprintf(err, errlen, "field 'members' must be an array of at "
		    "most %d host names", API_NET_MEMBERS_MAX);
		return -EINVAL;
	}
	json_array_foreach(arr, i, e) {
		const char *name = json_string_value(e);

		if (name == NULL || !api_name_valid(name)) {
			snprintf(err, errlen, "members[%zu] is not a host name", i);
			return -EINVAL;
		}
		for (size_t j = 0; j < n->nmembers; j++)
			if (strcmp(n->members[j], name) == 0) {
				snprintf(err, errlen, "members[%zu]: '%s' is listed "
				    "twice", i, name);
				return -EINVAL;
			}
		snprintf(n->members[n->nmembers++], sizeof(n->members[0]), "%s",
		    name);
	}
	n->present |= API_NET_MEMBERS;
	json_object_del(root, "members");
	return 0;
}

int
api_network_decode(const char *body, size_t len, enum api_decode_mode mode,
    struct api_network *out, char *err, size_t errlen)
{
	struct api_network n = { .all_hosts = true };
	json_t *root = NULL;
	unsigned members;
	int r;

	if ((r = jf_parse_object(body, len, &root, err, errlen)) < 0)
		goto out;
	if ((r = api_network_members(root, &n, err, errlen)) < 0)
		goto out;
	/* jf_decode starts its flags from 0: keep API_NET_MEMBERS. */
	members = n.present;
	r = jf_decode(root, api_network_fields, JF_LEN(api_network_fields), &n,
	    &n.present, err, errlen);
	if (r < 0)
		goto out;
	n.present |= members;
	r = -EINVAL;
	if (mode == API_DECODE_CREATE && !(n.present & API_NET_NAME)) {
		snprintf(err, errlen, "missing field 'name'");
		goto out;
	}
	if (mode == API_DECODE_CREATE && !(n.present & API_NET_VNI)) {
		snprintf(err, errlen, "missing field 'vni'");
		goto out;
	}
	if (mode == API_DECODE_PATCH && n.present == 0) {
		snprintf(err, errlen, "nothing to change: give at least one of "
		    "'name', 'description', 'all_hosts', 'members'");
		goto out;
	}
	if (n.present & API_NET_MEMBERS) {
		if ((n.present & API_NET_ALL_HOSTS) && n.all_hosts) {
			snprintf(err, errlen, "give 'members' or \"all_hosts\": "
			    "true, not both");
			goto out;
		}
		n.all_hosts = false;
		n.present |= API_NET_ALL_HOSTS;
	}
	*out = n;
	r = 0;
out:
	json_decref(root);
	return r;
}

static const char *const api_role_names[] = {
	[API_ROLE_NONE] = "none",
	[API_ROLE_READ] = "read",
	[API_ROLE_ADMIN] = "admin",
};

const char *
api_role_name(enum api_role role)
{
	if ((unsigned)role >= sizeof(api_role_names) / sizeof(*api_role_names))
		return "invalid";
	return api_role_names[role];
}

const char *
api_time_format(int64_t secs, char *buf, size_t len)
{
	time_t t = (time_t)secs;
	struct tm tm;

	if (secs > 0 && (int64_t)t == secs && gmtime_r(&t, &tm) != NULL &&
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) != 0)
		return buf;
	/* strftime() leaves a buffer it could not fill undefined. */
	if (len > 0)
		buf[0] = '\0';
	return NULL;
}

json_t *
api_time_json(int64_t secs)
{
	char buf[API_TIME_LEN];

	if (api_time_format(secs, buf, sizeof(buf)) == NULL)
		return json_null();
	return json_string(buf);
}

int
api_role_parse(const char *s, enum api_role *out)
{
	if (strcmp(s, "read") == 0)
		*out = API_ROLE_READ;
	else if (strcmp(s, "admin") == 0)
		*out = API_ROLE_ADMIN;
	else
		return -EINVAL;
	return 0;
}

struct api_token_wire {
	char role[8];
	char name[API_NAME_MAX + 1];
};

static int
api_token_name_rule(const struct jf_ctx *c, const json_t *v, void *dst)
{
	const char *s = json_string_value(v);

	(void)dst;
	if (s[0] == '\0' || api_name_valid(s))
		return 0;
	return jf_fail(c, "must start with a-z and contain only a-z, 0-9 and "
	    "'-'");
}

#define TOKEN_AT(m)	.offset = offsetof(struct api_token_wire, m), \
	.size = sizeof(((struct api_token_wire *)0)->m)

static const struct jf_field api_token_fields[] = {
	{ .name = "role", .type = JF_STRING, .flags = JF_REQUIRED, .flag = 1,
	    TOKEN_AT(role), .min = 1, .max = 5 },
	{ .name = "name", .type = JF_STRING, .flag = 2, TOKEN_AT(name),
	    .max = API_NAME_MAX, .rule = api_token_name_rule },
};

int
api_token_request_decode(const char *body, size_t len,
    struct api_token_request *out, char *err, size_t errlen)
{
	struct api_token_wire w = { "", "" };
	struct api_token_request t = { 0 };
	json_t *root = NULL;
	int r;

	if ((r = jf_parse_object(body, len, &root, err, errlen)) < 0)
		goto out;
	r = jf_decode(root, api_token_fields, JF_LEN(api_token_fields), &w,
	    &t.present, err, errlen);
	if (r < 0)
		goto out;
	r = -EINVAL;
	if (api_role_parse(w.role, &t.role) < 0) {
		snprintf(err, errlen, "field 'role' must be \"admin\" or \"read\"");
		goto out;
	}
	memcpy(t.name, w.name, sizeof(t.name));
	*out = t;
	r = 0;
out:
	json_decref(root);
	return r;
}

/* POST /api/v1/vms/{name}/migrate: an empty body, or {"to": HOST}. */
struct api_migrate_wire {
	char to[API_NAME_MAX + 1];
};

static const struct jf_field api_migrate_fields[] = {
	{ .name = "to", .type = JF_STRING, .flag = 1,
	    .offset = offsetof(struct api_migrate_wire, to),
	    .size = sizeof(((struct api_migrate_wire *)0)->to),
	    .min = 1, .max = API_NAME_MAX, .rule = api_name_rule },
};

int
api_migrate_request_decode(const char *body, size_t len,
    struct api_migrate_request *out, char *err, size_t errlen)
{
	struct api_migrate_wire w = { "" };
	unsigned present = 0;
	json_t *root = NULL;
	size_t blank = 0;
	int r;

	while (blank < len && (body[blank] == ' ' || body[blank] == '\t' ||
	    body[blank] == '\r' || body[blank] == '\n'))
		blank++;
	if (blank == len) {
		memset(out, 0, sizeof(*out));
		return 0;
	}
	if ((r = jf_parse_object(body, len, &root, err, errlen)) < 0)
		goto out;
	if ((r = jf_decode(root, api_migrate_fields, JF_LEN(api_migrate_fields),
	    &w, &present, err, errlen)) < 0)
		goto out;
	memcpy(out->to, w.to, sizeof(out->to));
out:
	json_decref(root);
	return r;
}

static int
api_pubkey_rule(const struct jf_ctx *c, const json_t *v, void *dst)
{
	(void)dst;
	if (jf_hex_valid(json_string_value(v), json_string_length(v), 64))
		return 0;
	return jf_fail(c, "must be 64 lowercase hex digits (an X25519 public "
	    "key)");
}

#define HOST_AT(m)	.offset = offsetof(struct api_host_request, m), \
	.size = sizeof(((struct api_host_request *)0)->m)

static const struct jf_field api_host_fields[] = {
	{ .name = "name", .type = JF_STRING, .flags = JF_REQUIRED,
	    .flag = API_HOST_NAME, HOST_AT(name), .min = 1, .max = API_NAME_MAX,
	    .rule = api_name_rule },
	{ .name = "agent_pubkey", .type = JF_STRING, .flag = API_HOST_PUBKEY,
	    HOST_AT(agent_pubkey), .min = 64, .max = 64,
	    .rule = api_pubkey_rule },
};

int
api_host_request_decode(const char *body, size_t len,
    struct api_host_request *out, char *err, size_t errlen)
{
	struct api_host_request h = { 0 };
	json_t *root = NULL;
	int r;

	if ((r = jf_parse_object(body, len, &root, err, errlen)) < 0)
		goto out;
	if ((r = jf_decode(root, api_host_fields, JF_LEN(api_host_fields), &h,
	    &h.present, err, errlen)) < 0)
		goto out;
	*out = h;
out:
	json_decref(root);
	return r;
}
