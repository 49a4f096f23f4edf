/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvctl host adopt|replace|retire|edit: host identity.
 *
 *   host adopt FINGERPRINT|MAC --name NAME [--net VNI]... [--label K=V]...
 *       [--ssh-keys FILE] [--mount SOURCE:PATH[:FSTYPE[:OPTIONS]]]...
 *   host replace NAME --fingerprint FP
 *   host retire NAME
 *   host edit NAME [--net VNI]... [--no-nets] [--label K=V]... [--no-labels]
 *       [--ssh-keys FILE] [--mount ...]... [--no-mounts]
 *
 * hvd validates everything again; hvctl checks only what it must parse.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvctl.h"
#include "numparse.h"

enum { OPT_NAME = 256, OPT_NET, OPT_NO_NETS, OPT_LABEL, OPT_NO_LABELS,
    OPT_SSH_KEYS, OPT_MOUNT, OPT_NO_MOUNTS, OPT_FINGERPRINT };

static const struct option ident_opts[] = {
	{ "name", required_argument, NULL, OPT_NAME },
	{ "net", required_argument, NULL, OPT_NET },
	{ "no-nets", no_argument, NULL, OPT_NO_NETS },
	{ "label", required_argument, NULL, OPT_LABEL },
	{ "no-labels", no_argument, NULL, OPT_NO_LABELS },
	{ "ssh-keys", required_argument, NULL, OPT_SSH_KEYS },
	{ "mount", required_argument, NULL, OPT_MOUNT },
	{ "no-mounts", no_argument, NULL, OPT_NO_MOUNTS },
	{ "fingerprint", required_argument, NULL, OPT_FINGERPRINT },
	{ NULL, 0, NULL, 0 },
};

static json_t *
ident_read_keys(const char *cmd, const char *path)
{
	char buf[8193];
	size_t n;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL) {
		hvctl_usage_error(cmd, "--ssh-keys %s: %s", path, strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	if (!feof(f)) {
		fclose(f);
		hvctl_usage_error(cmd, "--ssh-keys %s: larger than 8 KiB", path);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	return json_string(buf);
}

/* SOURCE:PATH[:FSTYPE[:OPTIONS]]; SOURCE is UUID=... or LABEL=... */
static json_t *
ident_mount(const char *cmd, const char *arg)
{
	char buf[512], *part[4] = { NULL }, *save = NULL, *p;
	json_t *m;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", arg);
	for (p = strtok_r(buf, ":", &save); p && n < 4;
	    p = strtok_r(NULL, ":", &save))
		part[n++] = p;
	if (n < 2 || p != NULL) {
		hvctl_usage_error(cmd, "--mount '%s': expected "
		    "SOURCE:PATH[:FSTYPE[:OPTIONS]]", arg);
		return NULL;
	}
	m = json_pack("{s:s, s:s}", "source", part[0], "path", part[1]);
	if (part[2])
		json_object_set_new(m, "fstype", json_string(part[2]));
	if (part[3])
		json_object_set_new(m, "options", json_string(part[3]));
	return m;
}

/* Parses the options into body; returns HVCTL_OK or HVCTL_USAGE. */
static int
ident_parse(const char *cmd, int argc, char **argv, json_t *body,
    unsigned allowed)
{
	json_t *v;
	char *eq;
	uint32_t vni;
	int ch;

	while ((ch = getopt_long(argc, argv, "", ident_opts, NULL)) != -1) {
		if (ch == '?' || ch < OPT_NAME ||
		    !(allowed & (1u << (ch - OPT_NAME))))
			return hvctl_usage_error(cmd, "option not valid here");
		switch (ch) {
		case OPT_NAME:
			json_object_set_new(body, "name", json_string(optarg));
			break;
		case OPT_FINGERPRINT:
			json_object_set_new(body, "fingerprint", json_string(optarg));
			break;
		case OPT_NET:
			if (parse_u32(optarg, 1, 16777215, &vni) < 0)
				return hvctl_usage_error(cmd, "--net '%s': a VNI is "
				    "an integer in 1..16777215", optarg);
			if ((v = json_object_get(body, "networks")) == NULL)
				json_object_set_new(body, "networks", v = json_array());
			json_array_append_new(v, json_integer(vni));
			break;
		case OPT_NO_NETS:
			json_object_set_new(body, "networks", json_array());
			break;
		case OPT_LABEL:
			if ((eq = strchr(optarg, '=')) == NULL || eq == optarg)
				return hvctl_usage_error(cmd, "--label '%s': expected "
				    "KEY=VALUE", optarg);
			if ((v = json_object_get(body, "labels")) == NULL)
				json_object_set_new(body, "labels", v = json_object());
			*eq = '\0';
			json_object_set_new(v, optarg, json_string(eq + 1));
			*eq = '=';
			break;
		case OPT_NO_LABELS:
			json_object_set_new(body, "labels", json_object());
			break;
		case OPT_SSH_KEYS:
			if ((v = ident_read_keys(cmd, optarg)) == NULL)
				return HVCTL_USAGE;
			json_object_set_new(body, "ssh_keys", v);
			break;
		case OPT_MOUNT: {
			json_t *m = ident_mount(cmd, optarg);

			if (m == NULL)
				return HVCTL_USAGE;
			if ((v = json_object_get(body, "mounts")) == NULL)
				json_object_set_new(body, "mounts", v = json_array());
			json_array_append_new(v, m);
			break;
		}
		case OPT_NO_MOUNTS:
			json_object_set_new(body, "mounts", json_array());
			break;
		}
	}
	return HVCTL_OK;
}

#define ALLOW(o) (1u << ((o) - OPT_NAME))
#define ALLOW_CONFIG (ALLOW(OPT_NET) | ALLOW(OPT_LABEL) | \
    ALLOW(OPT_SSH_KEYS) | ALLOW(OPT_MOUNT))

static int
ident_call(struct hvctl *h, const char *cmd, const char *key,
    const char *method, const char *suffix, json_t *body, const char *verb)
{
	struct hvctl_reply rep;
	char path[256];
	int r;

	if (key[0] == '\0' || strlen(key) > 80 || strchr(key, '/') ||
	    strchr(key, '?') || strchr(key, '%'))
		return hvctl_usage_error(cmd, "'%s' is not a host name, "
		    "fingerprint or MAC", key);
	snprintf(path, sizeof(path), "/api/v1/hosts/%s%s", key, suffix);
	if ((r = client_call(h, method, path, body, &rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, cmd)) == HVCTL_OK) {
		if (h->json)
			output_json(rep.body);
		else
			printf("%s %s: %s, fingerprint %.16s..., underlay %s\n",
			    verb, output_cell(rep.body, "name"),
			    output_cell(rep.body, "state"),
			    output_cell(rep.body, "fingerprint"),
			    output_cell(rep.body, "underlay_ip"));
	}
	client_reply_dispose(&rep);
	return r;
}

int
cmd_host_adopt(struct hvctl *h, int argc, char **argv)
{
	json_t *body = json_object();
	int r;

	if ((r = ident_parse("host adopt", argc, argv, body, ALLOW(OPT_NAME) |
	    ALLOW_CONFIG)) != HVCTL_OK)
		goto out;
	if (optind + 1 != argc || !json_object_get(body, "name")) {
		r = hvctl_usage_error("host adopt", "expects FINGERPRINT|MAC "
		    "--name NAME");
		goto out;
	}
	r = ident_call(h, "host adopt", argv[optind], "POST", "/adopt", body,
	    "adopted");
out:
	json_decref(body);
	return r;
}

int
cmd_host_replace(struct hvctl *h, int argc, char **argv)
{
	json_t *body = json_object();
	int r;

	if ((r = ident_parse("host replace", argc, argv, body,
	    ALLOW(OPT_FINGERPRINT))) != HVCTL_OK)
		goto out;
	if (optind + 1 != argc || !json_object_get(body, "fingerprint")) {
		r = hvctl_usage_error("host replace", "expects NAME "
		    "--fingerprint FP");
		goto out;
	}
	r = ident_call(h, "host replace", argv[optind], "POST", "/replace", body,
	    "replaced the hardware of");
out:
	json_decref(body);
	return r;
}

int
cmd_host_retire(struct hvctl *h, int argc, char **argv)
{
	if (argc != 2)
		return hvctl_usage_error("host retire", "expects one NAME");
	return ident_call(h, "host retire", argv[1], "POST", "/retire", NULL,
	    "retired");
}

int
cmd_host_edit(struct hvctl *h, int argc, char **argv)
{
	json_t *body = json_object();
	int r;

	if ((r = ident_parse("host edit", argc, argv, body, ALLOW_CONFIG |
	    ALLOW(OPT_NO_NETS) | ALLOW(OPT_NO_LABELS) | ALLOW(OPT_NO_MOUNTS))) !=
	    HVCTL_OK)
		goto out;
	if (optind + 1 != argc || json_object_size(body) == 0) {
		r = hvctl_usage_error("host edit", "expects NAME and at least one "
		    "of --net, --no-nets, --label, --no-labels, --ssh-keys, "
		    "--mount, --no-mounts");
		goto out;
	}
	r = ident_call(h, "host edit", argv[optind], "PATCH", "", body, "edited");
out:
	json_decref(body);
	return r;
}
