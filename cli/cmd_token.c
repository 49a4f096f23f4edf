/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvctl token create|list|revoke: bearer tokens for the TCP API.
 *
 * The secret is printed once, on stdout only, and nowhere else.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "hvctl.h"

int
cmd_token_create(struct hvctl *h, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "role", required_argument, NULL, 'r' },
		{ "name", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	struct hvctl_reply rep;
	const char *role = NULL, *name = NULL;
	json_t *body;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			role = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		default:
			return HVCTL_USAGE;
		}
	}
	if (optind != argc)
		return hvctl_usage_error("token create", "unexpected argument '%s'",
		    argv[optind]);
	if (role == NULL)
		return hvctl_usage_error("token create", "--role admin|read is "
		    "required");
	body = json_pack("{s:s}", "role", role);
	if (name)
		json_object_set_new(body, "name", json_string(name));
	r = client_call(h, "POST", "/api/v1/tokens", body, &rep);
	json_decref(body);
	if (r != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "token create")) != HVCTL_OK)
		goto out;
	if (h->json)
		output_json(rep.body);
	else
		printf("%s\n", output_str(rep.body, "token"));
	if (!h->json)
		fprintf(stderr, "token %s (role %s) created; it is shown only "
		    "once. Use it as HVCTL_TOKEN or an 'Authorization: Bearer' "
		    "header.\n", output_str(rep.body, "id"),
		    output_str(rep.body, "role"));
out:
	client_reply_dispose(&rep);
	return r;
}

int
cmd_token_list(struct hvctl *h, int argc, char **argv)
{
	static const char *const headers[] = { "ID", "ROLE", "NAME", "CREATED",
	    "LAST USED" };
	struct hvctl_reply rep;
	struct table *t;
	json_t *arr, *tok;
	size_t i;
	int r;

	(void)argv;
	if (argc > 1)
		return hvctl_usage_error("token list", "takes no arguments");
	if ((r = client_call(h, "GET", "/api/v1/tokens", NULL, &rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "token list")) != HVCTL_OK)
		goto out;
	if (h->json) {
		output_json(rep.body);
		goto out;
	}
	arr = json_object_get(rep.body, "tokens");
	t = table_new(headers, 5);
	json_array_foreach(arr, i, tok) {
		char c[32], u[32];
		const char *cells[5] = { output_str(tok, "id"),
		    output_str(tok, "role"), output_str(tok, "name"),
		    output_time(tok, "created_at", c, sizeof(c)),
		    output_time(tok, "last_used_at", u, sizeof(u)) };

		table_add(t, cells);
	}
	table_print(t);
	table_free(t);
out:
	client_reply_dispose(&rep);
	return r;
}

int
cmd_token_revoke(struct hvctl *h, int argc, char **argv)
{
	struct hvctl_reply rep;
	char path[128];
	int r;

	if (argc != 2)
		return hvctl_usage_error("token revoke", "expects one token ID");
	if (strlen(argv[1]) != 16 ||
	    strspn(argv[1], "0123456789abcdef") != 16)
		return hvctl_usage_error("token revoke", "'%s' is not a token ID "
		    "(16 hex digits, see hvctl token list)", argv[1]);
	snprintf(path, sizeof(path), "/api/v1/tokens/%s", argv[1]);
	if ((r = client_call(h, "DELETE", path, NULL, &rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "token revoke")) == HVCTL_OK && !h->json)
		printf("revoked token %s\n", argv[1]);
	client_reply_dispose(&rep);
	return r;
}
