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
	return HVCTL_OK;
}

int
cmd_net_create(struct hvctl *h, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vni", required_argument, NULL, 'v' },
		{ "description", required_argument, NULL, 'd' },
		{ "members-only", no_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	struct hvctl_reply rep;
	const char *desc = NULL, *vni_s = NULL;
	bool members_only = false;
	json_t *body;
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
		default:
			return HVCTL_USAGE;
		}
	}
	if (optind + 1 != argc)
		return hvctl_usage_error("net create", "expects one NAME");
	if (vni_s == NULL)
		return hvctl_usage_error("net create", "--vni is required");
	/* Any integer goes through; the API says if it is out of range. */
	if (parse_u64(vni_s, 0, UINT32_MAX, &vni) < 0)
		return hvctl_usage_error("net create", "--vni '%s' is not a "
		    "number", vni_s);
	body = json_pack("{s:s, s:I, s:b}", "name", argv[optind], "vni",
	    (json_int_t)vni, "all_hosts", !members_only);
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
