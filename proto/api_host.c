/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * REST bodies of host identity operations: adopt, edit and replace.
 *
 * Strict as jsonfield.h defines it, for the fields jsonfield cannot
 * express (arrays of VNIs, a labels object, mount objects).  Values are
 * checked here once, so hvd stores and renders only what passed: labels
 * and mount fields are single-line printable ASCII, ssh keys are lines of
 * printable ASCII.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "jsonfield.h"

/* Printable ASCII without spaces at the ends; allow: extra characters
 * besides [A-Za-z0-9]. */
static bool
hs_token(const char *s, size_t max, const char *allow)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr(allow, c)))
			return false;
	}
	return true;
}

bool
api_fingerprint_valid(const char *s)
{
	return strlen(s) == API_FP_HEX && strspn(s, "0123456789abcdef") ==
	    API_FP_HEX;
}

static int
hs_networks(json_t *v, struct api_host_spec *hs, char *err, size_t errlen)
{
	size_t i;
	json_t *e;

	if (!json_is_array(v))
		return jf_error(err, errlen, "field 'networks' must be an array "
		    "of VNIs");
	if (json_array_size(v) > API_HOST_NETS_MAX)
		return jf_error(err, errlen, "field 'networks' has more than %d "
		    "entries", API_HOST_NETS_MAX);
	json_array_foreach(v, i, e) {
		json_int_t vni = json_integer_value(e);

		if (!json_is_integer(e) || vni < API_VNI_MIN || vni > API_VNI_MAX)
			return jf_error(err, errlen, "networks[%zu]: a VNI must be "
			    "an integer in %d..%d", i, API_VNI_MIN, API_VNI_MAX);
		for (size_t j = 0; j < hs->nvnis; j++)
			if (hs->vnis[j] == (uint32_t)vni)
				return jf_error(err, errlen, "networks[%zu]: VNI "
				    "%lld is listed twice", i, (long long)vni);
		hs->vnis[hs->nvnis++] = (uint32_t)vni;
	}
	return 0;
}

static int
hs_labels(json_t *v, struct api_host_spec *hs, char *err, size_t errlen)
{
	const char *k;
	json_t *e;

	if (!json_is_object(v))
		return jf_error(err, errlen, "field 'labels' must be an object of "
		    "strings");
	if (json_object_size(v) > API_HOST_LABELS_MAX)
		return jf_error(err, errlen, "field 'labels' has more than %d "
		    "entries", API_HOST_LABELS_MAX);
	json_object_foreach(v, k, e) {
		const char *s = json_string_value(e);

		if (!hs_token(k, API_LABEL_MAX, "._/-"))
			return jf_error(err, errlen, "labels: key '%.40s' must be "
			    "1..%d of A-Z a-z 0-9 . _ / -", k, API_LABEL_MAX);
		if (s == NULL || (s[0] && !hs_token(s, API_LABEL_MAX, "._/-:")))
			return jf_error(err, errlen, "labels: value of '%s' must be "
			    "a string of at most %d of A-Z a-z 0-9 . _ / - :", k,
			    API_LABEL_MAX);
	}
	/* Sorted keys: the stored text is canonical, so equal labels compare
	 * equal as text. */
	{
		char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);

		if (text == NULL || strlen(text) >= sizeof(hs->labels)) {
			free(text);
			return jf_error(err, errlen, "field 'labels' is too large");
		}
		memcpy(hs->labels, text, strlen(text) + 1);
		free(text);
	}
	return 0;
}

static int
hs_ssh_keys(json_t *v, struct api_host_spec *hs, char *err, size_t errlen)
{
	const char *s = json_string_value(v);
	size_t n;

	if (s == NULL)
		return jf_error(err, errlen, "field 'ssh_keys' must be a string "
		    "(authorized_keys lines)");
	if ((n = strlen(s)) >= sizeof(hs->ssh_keys) || n != json_string_length(v))
		return jf_error(err, errlen, "field 'ssh_keys' is longer than %zu "
		    "bytes or holds a NUL", sizeof(hs->ssh_keys) - 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c != '\n' && (c < 0x20 || c > 0x7e))
			return jf_error(err, errlen, "field 'ssh_keys': byte %zu is "
			    "not printable ASCII", i);
	}
	memcpy(hs->ssh_keys, s, n + 1);
	return 0;
}

struct hs_mount_field {
	const char *name;
	size_t off, size;
	const char *allow;
	bool required;
};

static const struct hs_mount_field hs_mount_fields[] = {
	{ "source", offsetof(struct api_mount, source),
	    sizeof(((struct api_mount *)0)->source), "=._-", true },
	{ "path", offsetof(struct api_mount, path),
	    sizeof(((struct api_mount *)0)->path), "/._-", true },
	{ "fstype", offsetof(struct api_mount, fstype),
	    sizeof(((struct api_mount *)0)->fstype), "._-", false },
	{ "options", offsetof(struct api_mount, options),
	    sizeof(((struct api_mount *)0)->options), ",=._-", false },
};

static int
hs_mount(json_t *o, size_t idx, struct api_mount *m, char *err, size_t errlen)
{
	const size_t nf = sizeof(hs_mount_fields) / sizeof(*hs_mount_fields);
	const char *k;
	json_t *e;

	if (!json_is_object(o))
		return jf_error(err, errlen, "mounts[%zu] must be an object", idx);
	json_object_foreach(o, k, e) {
		size_t f;

		for (f = 0; f < nf; f++)
			if (strcmp(k, hs_mount_fields[f].name) == 0)
				break;
		if (f == nf)
			return jf_error(err, errlen, "mounts[%zu]: unknown field "
			    "'%.32s'; expected source, path, fstype, options", idx, k);
	}
	for (size_t f = 0; f < nf; f++) {
		const struct hs_mount_field *mf = &hs_mount_fields[f];
		json_t *v = json_object_get(o, mf->name);
		const char *s = json_string_value(v);

		if (v == NULL && !mf->required)
			continue;
		if (s == NULL || !hs_token(s, mf->size - 1, mf->allow))
			return jf_error(err, errlen, "mounts[%zu]: field '%s' must "
			    "be 1..%zu of A-Z a-z 0-9 %s", idx, mf->name,
			    mf->size - 1, mf->allow);
		memcpy((char *)m + mf->off, s, strlen(s) + 1);
	}
	if (strncmp(m->source, "UUID=", 5) != 0 &&
	    strncmp(m->source, "LABEL=", 6) != 0)
		return jf_error(err, errlen, "mounts[%zu]: 'source' must be "
		    "UUID=<filesystem uuid> or LABEL=<label>", idx);
	if (m->source[strcspn(m->source, "=") + 1] == '\0')
		return jf_error(err, errlen, "mounts[%zu]: 'source' names no "
		    "filesystem", idx);
	if (m->path[0] != '/' || strstr(m->path, "//") || strstr(m->path, "/.") ||
	    strcmp(m->path, "/") == 0)
		return jf_error(err, errlen, "mounts[%zu]: 'path' must be an "
		    "absolute path below / without '.' components", idx);
	if (m->fstype[0] == '\0')
		snprintf(m->fstype, sizeof(m->fstype), "auto");
	if (m->options[0] == '\0')
		snprintf(m->options, sizeof(m->options), "defaults");
	return 0;
}

static int
hs_mounts(json_t *v, struct api_host_spec *hs, char *err, size_t errlen)
{
	size_t i;
	json_t *e;
	int r;

	if (!json_is_array(v))
		return jf_error(err, errlen, "field 'mounts' must be an array");
	if (json_array_size(v) > API_HOST_MOUNTS_MAX)
		return jf_error(err, errlen, "field 'mounts' has more than %d "
		    "entries", API_HOST_MOUNTS_MAX);
	json_array_foreach(v, i, e) {
		if ((r = hs_mount(e, i, &hs->mounts[i], err, errlen)) < 0)
			return r;
		for (size_t j = 0; j < i; j++)
			if (strcmp(hs->mounts[j].path, hs->mounts[i].path) == 0)
				return jf_error(err, errlen, "mounts[%zu]: path %s is "
				    "mounted twice", i, hs->mounts[i].path);
		hs->nmounts = i + 1;
	}
	return 0;
}

int
api_host_spec_decode(const char *body, size_t len, enum api_host_op op,
    struct api_host_spec *hs, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		unsigned flag;
		unsigned ops;	/* bit per enum api_host_op */
	} fields[] = {
		{ "name", API_HS_NAME, 1u << API_HOST_ADOPT },
		{ "fingerprint", API_HS_FINGERPRINT, 1u << API_HOST_REPLACE },
		{ "networks", API_HS_NETWORKS, 1u << API_HOST_ADOPT | 1u << API_HOST_EDIT },
		{ "labels", API_HS_LABELS, 1u << API_HOST_ADOPT | 1u << API_HOST_EDIT },
		{ "ssh_keys", API_HS_SSH_KEYS, 1u << API_HOST_ADOPT | 1u << API_HOST_EDIT },
		{ "mounts", API_HS_MOUNTS, 1u << API_HOST_ADOPT | 1u << API_HOST_EDIT },
	};
	const size_t nfields = sizeof(fields) / sizeof(*fields);
	json_t *root = NULL, *v;
	const char *k;
	int r;

	memset(hs, 0, sizeof(*hs));
	snprintf(hs->labels, sizeof(hs->labels), "{}");
	if ((r = jf_parse_object(body, len, &root, err, errlen)) < 0)
		return r;
	r = -EINVAL;
	json_object_foreach(root, k, v) {
		size_t f;

		for (f = 0; f < nfields; f++)
			if (strcmp(k, fields[f].name) == 0 &&
			    (fields[f].ops & (1u << op)))
				break;
		if (f == nfields) {
			jf_error(err, errlen, "unknown field '%.32s' for this "
			    "operation", k);
			goto out;
		}
		hs->present |= fields[f].flag;
		switch (fields[f].flag) {
		case API_HS_NAME:
			if (!json_is_string(v) || !api_name_valid(json_string_value(v))) {
				jf_error(err, errlen, "field 'name' must start with a-z "
				    "and contain only a-z, 0-9 and '-' (at most %d)",
				    API_NAME_MAX);
				goto out;
			}
			snprintf(hs->name, sizeof(hs->name), "%s", json_string_value(v));
			break;
		case API_HS_FINGERPRINT:
			if (!json_is_string(v) ||
			    !api_fingerprint_valid(json_string_value(v))) {
				jf_error(err, errlen, "field 'fingerprint' must be %d "
				    "lowercase hex digits", API_FP_HEX);
				goto out;
			}
			snprintf(hs->fingerprint, sizeof(hs->fingerprint), "%s",
			    json_string_value(v));
			break;
		case API_HS_NETWORKS:
			if (hs_networks(v, hs, err, errlen) < 0)
				goto out;
			break;
		case API_HS_LABELS:
			if (hs_labels(v, hs, err, errlen) < 0)
				goto out;
			break;
		case API_HS_SSH_KEYS:
			if (hs_ssh_keys(v, hs, err, errlen) < 0)
				goto out;
			break;
		case API_HS_MOUNTS:
			if (hs_mounts(v, hs, err, errlen) < 0)
				goto out;
			break;
		}
	}
	if (op == API_HOST_ADOPT && !(hs->present & API_HS_NAME)) {
		jf_error(err, errlen, "missing field 'name'");
		goto out;
	}
	if (op == API_HOST_REPLACE && !(hs->present & API_HS_FINGERPRINT)) {
		jf_error(err, errlen, "missing field 'fingerprint'");
		goto out;
	}
	if (op == API_HOST_EDIT && hs->present == 0) {
		jf_error(err, errlen, "nothing to change: give networks, labels, "
		    "ssh_keys or mounts");
		goto out;
	}
	r = 0;
out:
	json_decref(root);
	return r;
}
