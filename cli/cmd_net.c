/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvctl net create|list|show|delete: VXLAN networks.
 *
 * Validation is the API's job (it names the bad field); hvctl only checks
 * what it must to build a request, so there is one source of truth.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvctl.h"
#include "numparse.h"

static void
net_row(struct table *t, const json_t *n)
{
	char vni[16];
	const char *cells[4];

	snprintf(vni, sizeof(vni), "%lld",
	    (long long)json_integer_value(json_object_get(n, "vni")));
	cells[0] = output_str(n, "name");
	cells[1] = vni;
	cells[2] = json_is_true(json_object_get(n, "all_hosts")) ? "all hosts" :
	    "listed hosts";
	cells[3] = output_str(n, "description");
	table_add(t, cells);
}

/* net show: each member's VTEP and whether it applied its latest mesh; a
 * member without an underlay address yet has VTEP "-" and a note. */
static void
net_print_members(const json_t *n)
{
	static const char *const headers[] = { "MEMBER", "VTEP", "STATE",
	    "SYNC" };
	const json_t *anchor = json_object_get(n, "anchor"), *m;
	struct table *t = table_new(headers, 4);
	const char *cells[4];
	char sync[160];
	size_t i;

	cells[0] = "(hvd anchor)";
	cells[1] = output_cell(anchor, "ip");
	cells[2] = "-";
	cells[3] = output_cell(anchor, "state");
	table_add(t, cells);
	json_array_foreach(json_object_get(n, "members"), i, m) {
		const json_t *s = json_object_get(m, "sync");

		snprintf(sync, sizeof(sync), "%s%s%s", output_cell(s, "state"),
		    output_str(s, "error") ? ": " : "",
		    output_str(s, "error") ? output_str(s, "error") : "");
		cells[0] = output_cell(m, "host");
		cells[1] = output_cell(m, "vtep");
		cells[2] = output_cell(m, "state");
		cells[3] = sync;
		table_add(t, cells);
	}
	printf("\n");
	table_print(t);
	table_free(t);
	/* Members the mesh cannot place yet, under the table (whose last
	 * column scripts read), each with hvd's reason. */
	json_array_foreach(json_object_get(n, "members"), i, m)
		if (output_str(m, "why"))
			printf("%s: %s\n", output_cell(m, "host"),
			    output_str(m, "why"));
}

static const char *const net_headers[] = { "NAME", "VNI", "MEMBERS",
    "DESCRIPTION" };

static int
net_print_one(struct hvctl *h, const json_t *n)
{
	struct table *t;

	if (h->json) {
		output_json(n);
		return HVCTL_OK;
	}
	t = table_new(net_headers, 4);
	net_row(t, n);
	table_print(t);
	table_free(t);
	if (json_object_get(n, "members"))
		net_print_members(n);
	return HVCTL_OK;
}

int
cmd_net_create(struct hvctl *h, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vni", required_argument, NULL, 'v' },
		{ "description", required_argument, NULL, 'd' },
		{ "members-only", no_argument, NULL, 'm' },
		{ "member", required_argument, NULL, 'M' },
		{ "all-hosts", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	struct hvctl_reply rep;
	const char *desc = NULL, *vni_s = NULL;
	bool members_only = false, all_hosts = false;
	json_t *body, *members = json_array();
	uint64_t vni;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'v':
			vni_s = optarg;
			break;
		case 'd':
			desc = optarg;
			break;
		case 'm':
			members_only = true;
			break;
		case 'M':
			json_array_append_new(members, json_string(optarg));
			break;
		case 'a':
			all_hosts = true;
			break;
		default:
			json_decref(members);
			return HVCTL_USAGE;
		}
	}
	if (all_hosts && (members_only || json_array_size(members))) {
		json_decref(members);
		return hvctl_usage_error("net create", "--all-hosts excludes "
		    "--member and --members-only");
	}
	if (optind + 1 != argc || vni_s == NULL) {
		json_decref(members);
		return hvctl_usage_error("net create", optind + 1 != argc ?
		    "expects one NAME" : "--vni is required");
	}
	/* Any integer goes through; the API says if it is out of range. */
	if (parse_u64(vni_s, 0, UINT32_MAX, &vni) < 0) {
		json_decref(members);
		return hvctl_usage_error("net create", "--vni '%s' is not a "
		    "number", vni_s);
	}
	body = json_pack("{s:s, s:I}", "name", argv[optind], "vni",
	    (json_int_t)vni);
	if (json_array_size(members))
		json_object_set_new(body, "members", members);
	else {
		json_object_set_new(body, "all_hosts", json_boolean(!members_only));
		json_decref(members);
	}
	if (desc)
		json_object_set_new(body, "description", json_string(desc));
	r = client_call(h, "POST", "/api/v1/networks", body, &rep);
	json_decref(body);
	if (r != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "net create")) == HVCTL_OK)
		r = net_print_one(h, rep.body);
	client_reply_dispose(&rep);
	return r;
}

int
cmd_net_list(struct hvctl *h, int argc, char **argv)
{
	struct hvctl_reply rep;
	struct table *t;
	json_t *arr, *n;
	size_t i;
	int r;

	(void)argv;
	if (argc > 1)
		return hvctl_usage_error("net list", "takes no arguments");
	if ((r = client_call(h, "GET", "/api/v1/networks", NULL, &rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "net list")) != HVCTL_OK)
		goto out;
	if (h->json) {
		output_json(rep.body);
		goto out;
	}
	arr = json_object_get(rep.body, "networks");
	t = table_new(net_headers, 4);
	json_array_foreach(arr, i, n)
		net_row(t, n);
	table_print(t);
	table_free(t);
out:
	client_reply_dispose(&rep);
	return r;
}

/* Path-safe key: names are [a-z0-9-] and VNIs digits; anything else is
 * refused here rather than smuggled into a URL. */
static int
net_key_path(const char *cmd, const char *key, char *path, size_t len)
{
	if (key[0] == '\0' || strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789-")
	    != strlen(key))
		return hvctl_usage_error(cmd, "'%s' is not a network name or VNI",
		    key);
	snprintf(path, len, "/api/v1/networks/%s", key);
	return HVCTL_OK;
}

int
cmd_net_show(struct hvctl *h, int argc, char **argv)
{
	struct hvctl_reply rep;
	char path[128];
	int r;

	if (argc != 2)
		return hvctl_usage_error("net show", "expects one NAME or VNI");
	if ((r = net_key_path("net show", argv[1], path, sizeof(path))) != HVCTL_OK)
		return r;
	if ((r = client_call(h, "GET", path, NULL, &rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "net show")) == HVCTL_OK)
		r = net_print_one(h, rep.body);
	client_reply_dispose(&rep);
	return r;
}

int
cmd_net_delete(struct hvctl *h, int argc, char **argv)
{
	struct hvctl_reply rep;
	char path[128];
	int r;

	if (argc != 2)
		return hvctl_usage_error("net delete", "expects one NAME or VNI");
	if ((r = net_key_path("net delete", argv[1], path, sizeof(path))) != HVCTL_OK)
		return r;
	if ((r = client_call(h, "DELETE", path, NULL, &rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "net delete")) == HVCTL_OK && !h->json)
		printf("deleted network %s\n", argv[1]);
	client_reply_dispose(&rep);
	return r;
}
