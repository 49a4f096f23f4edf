/*
 * Decoders for REST request bodies.
 *
 * Invariant: a decoder either fills the whole output and returns 0, or
 * returns -EINVAL with a reason; callers never see a half-valid struct.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

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

static bool
api_name_check(const char *s, char *err, size_t errlen)
{
	if (api_name_valid(s))
		return true;
	snprintf(err, errlen, "field 'name' must start with a-z and contain "
	    "only a-z, 0-9 and '-' (not at the end), at most %d characters",
	    API_NAME_MAX);
	return false;
}

static bool
api_text_check(const char *s, char *err, size_t errlen)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(err, errlen, "field 'description' contains a "
			    "control character");
			return false;
		}
	}
	return true;
}

static const struct jf_field api_network_fields[] = {
	{ "name", JF_STRING, API_NET_NAME, offsetof(struct api_network, name),
	    sizeof(((struct api_network *)0)->name), 1, API_NAME_MAX,
	    api_name_check },
	{ "vni", JF_UINT32, API_NET_VNI, offsetof(struct api_network, vni), 0,
	    API_VNI_MIN, API_VNI_MAX, NULL },
	{ "description", JF_STRING, API_NET_DESCRIPTION,
	    offsetof(struct api_network, description),
	    sizeof(((struct api_network *)0)->description), 0, API_DESC_MAX,
	    api_text_check },
	{ "all_hosts", JF_BOOL, API_NET_ALL_HOSTS,
	    offsetof(struct api_network, all_hosts), 0, 0, 0, NULL },
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
	r = jf_decode(root, api_network_fields,
	    sizeof(api_network_fields) / sizeof(*api_network_fields), &n,
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

static bool
api_token_name_check(const char *s, char *err, size_t errlen)
{
	if (s[0] == '\0' || api_name_valid(s))
		return true;
	snprintf(err, errlen, "field 'name' must start with a-z and contain "
	    "only a-z, 0-9 and '-'");
	return false;
}

static const struct jf_field api_token_fields[] = {
	{ "role", JF_STRING, 1, offsetof(struct api_token_wire, role),
	    sizeof(((struct api_token_wire *)0)->role), 1, 5, NULL },
	{ "name", JF_STRING, 2, offsetof(struct api_token_wire, name),
	    sizeof(((struct api_token_wire *)0)->name), 0, API_NAME_MAX,
	    api_token_name_check },
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
	r = jf_decode(root, api_token_fields,
	    sizeof(api_token_fields) / sizeof(*api_token_fields), &w,
	    &t.present, err, errlen);
	if (r < 0)
		goto out;
	r = -EINVAL;
	if (!(t.present & 1)) {
		snprintf(err, errlen, "missing field 'role'");
		goto out;
	}
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

static bool
api_pubkey_check(const char *s, char *err, size_t errlen)
{
	if (strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64)
		return true;
	snprintf(err, errlen, "field 'agent_pubkey' must be 64 lowercase hex "
	    "digits (an X25519 public key)");
	return false;
}

static const struct jf_field api_host_fields[] = {
	{ "name", JF_STRING, API_HOST_NAME,
	    offsetof(struct api_host_request, name),
	    sizeof(((struct api_host_request *)0)->name), 1, API_NAME_MAX,
	    api_name_check },
	{ "agent_pubkey", JF_STRING, API_HOST_PUBKEY,
	    offsetof(struct api_host_request, agent_pubkey),
	    sizeof(((struct api_host_request *)0)->agent_pubkey), 64, 64,
	    api_pubkey_check },
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
	if ((r = jf_decode(root, api_host_fields, sizeof(api_host_fields) /
	    sizeof(*api_host_fields), &h, &h.present, err, errlen)) < 0)
		goto out;
	if (!(h.present & API_HOST_NAME)) {
		snprintf(err, errlen, "missing field 'name'");
		r = -EINVAL;
		goto out;
	}
	*out = h;
out:
	json_decref(root);
	return r;
}
