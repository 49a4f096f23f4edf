/*
 * hvctl host add|list|show: hosts and their live state.
 *
 * "host add NAME --out DIR" writes the credentials hvd issued (agent.conf
 * and agent.key, mode 0600) as a host's overlay will carry them; the
 * secrets exist nowhere else afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hvctl.h"

static int
host_write_file(const char *dir, const char *name, const char *text)
{
	char path[1024];
	size_t len = strlen(text);
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1 || fchmod(fd, 0600) == -1 ||
	    write(fd, text, len) != (ssize_t)len)
		r = -errno;
	if (fd != -1)
		close(fd);
	if (r < 0)
		fprintf(stderr, "hvctl: %s: %s\n", path, strerror(-r));
	return r;
}

static int
host_write_credentials(const char *dir, const json_t *host, const char *agents)
{
	const json_t *cred = json_object_get(host, "credentials");
	char conf[1024], key[80];

	if (agents == NULL) {
		fprintf(stderr, "hvctl: hvd has no agent listener; set "
		    "agent-listen in hvd.conf\n");
		return -EINVAL;
	}
	snprintf(conf, sizeof(conf), "# Written by hvctl host add: how %s "
	    "reaches hvd.\nhvd %s\nhvd-key %s\nhost %s\nboot-token %s\n"
	    "key-file %s/agent.key\n", output_str(host, "name"), agents,
	    output_str(cred, "hvd_key"), output_str(host, "name"),
	    output_str(cred, "boot_token"), dir);
	snprintf(key, sizeof(key), "%s\n", output_str(cred, "agent_key"));
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		fprintf(stderr, "hvctl: %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	return host_write_file(dir, "agent.conf", conf) < 0 ||
	    host_write_file(dir, "agent.key", key) < 0 ? -EIO : 0;
}

int
cmd_host_add(struct hvctl *h, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pubkey", required_argument, NULL, 'p' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	struct hvctl_reply rep, st;
	const char *pubkey = NULL, *out = NULL, *agents;
	json_t *body;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			pubkey = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		default:
			return HVCTL_USAGE;
		}
	}
	if (optind + 1 != argc)
		return hvctl_usage_error("host add", "expects one NAME");
	if ((pubkey == NULL) == (out == NULL))
		return hvctl_usage_error("host add", "give --out DIR (hvd issues "
		    "credentials) or --pubkey HEX (your own agent key)");
	body = json_pack("{s:s}", "name", argv[optind]);
	if (pubkey)
		json_object_set_new(body, "agent_pubkey", json_string(pubkey));
	r = client_call(h, "POST", "/api/v1/hosts", body, &rep);
	json_decref(body);
	if (r != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "host add")) != HVCTL_OK)
		goto done;
	if (out) {
		if ((r = client_call(h, "GET", "/api/v1/status", NULL, &st)) !=
		    HVCTL_OK)
			goto done;
		agents = output_str(json_object_get(st.body, "listen"), "agents");
		if (host_write_credentials(out, rep.body, agents) < 0)
			r = HVCTL_FAIL;
		client_reply_dispose(&st);
		if (r == HVCTL_OK && !h->json)
			printf("enrolled host %s; credentials in %s/agent.conf "
			    "and %s/agent.key\n", argv[optind], out, out);
	} else if (!h->json) {
		printf("enrolled host %s\n", argv[optind]);
	}
	/* Never echo the secrets, even with --json. */
	json_object_del(rep.body, "credentials");
	if (h->json)
		output_json(rep.body);
done:
	client_reply_dispose(&rep);
	return r;
}

static void
host_cells(const json_t *host, char cpu[16], char mem[48], char load[16],
    const char **state)
{
	const json_t *live = json_object_get(host, "live");
	const json_t *c = json_object_get(live, "cpu_percent");
	const json_t *mu = json_object_get(live, "memory_used_bytes");
	const json_t *mt = json_object_get(live, "memory_total_bytes");
	const json_t *l = json_object_get(live, "load1");

	*state = output_str(host, "state");
	snprintf(cpu, 16, "%s", "-");
	snprintf(mem, 48, "%s", "-");
	snprintf(load, 16, "%s", "-");
	if (json_is_number(c))
		snprintf(cpu, 16, "%.1f%%", json_number_value(c));
	if (json_is_integer(mu) && json_is_integer(mt) && json_integer_value(mt))
		snprintf(mem, 48, "%.1f/%.1f GiB",
		    (double)json_integer_value(mu) / (1 << 30),
		    (double)json_integer_value(mt) / (1 << 30));
	if (json_is_number(l))
		snprintf(load, 16, "%.2f", json_number_value(l));
}

int
host_table(const json_t *hosts)
{
	static const char *const headers[] = { "NAME", "STATE", "FINGERPRINT",
	    "BOOT MAC", "UNDERLAY", "CPU", "MEMORY", "LOAD", "SESSION" };
	struct table *t = table_new(headers, 9);
	const json_t *host;
	size_t i;

	json_array_foreach(hosts, i, host) {
		char cpu[16], mem[48], load[16], fp[16], st[48];
		const char *state;
		const json_t *live = json_object_get(host, "live");
		const char *cells[9];

		host_cells(host, cpu, mem, load, &state);
		snprintf(fp, sizeof(fp), "%.12s", output_cell(host, "fingerprint"));
		cells[0] = output_cell(host, "name");
		/* One word, so scripts can still split the columns. */
		snprintf(st, sizeof(st), "%s%s", state, json_is_true(json_object_get(
		    host, "draining")) ? ",draining" : "");
		cells[1] = st;
		cells[2] = fp;
		cells[3] = output_cell(host, "boot_mac");
		cells[4] = output_cell(host, "underlay_ip");
		cells[5] = cpu;
		cells[6] = mem;
		cells[7] = load;
		cells[8] = json_is_true(json_object_get(live, "connected")) ?
		    "connected" : "-";
		table_add(t, cells);
	}
	table_print(t);
	table_free(t);
	return HVCTL_OK;
}

int
cmd_host_list(struct hvctl *h, int argc, char **argv)
{
	struct hvctl_reply rep;
	int r;

	(void)argv;
	if (argc > 1)
		return hvctl_usage_error("host list", "takes no arguments");
	if ((r = client_call(h, "GET", "/api/v1/hosts", NULL, &rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "host list")) == HVCTL_OK) {
		if (h->json)
			output_json(rep.body);
		else
			r = host_table(json_object_get(rep.body, "hosts"));
	}
	client_reply_dispose(&rep);
	return r;
}

int
cmd_host_telemetry(struct hvctl *h, int argc, char **argv)
{
	struct hvctl_reply rep;
	char path[128];
	int r;

	if (argc != 2)
		return hvctl_usage_error("host telemetry", "expects one NAME");
	if (strspn(argv[1], "abcdefghijklmnopqrstuvwxyz0123456789-") !=
	    strlen(argv[1]) || argv[1][0] == '\0')
		return hvctl_usage_error("host telemetry", "'%s' is not a host "
		    "name", argv[1]);
	snprintf(path, sizeof(path), "/api/v1/hosts/%s/telemetry", argv[1]);
	if ((r = client_call(h, "GET", path, NULL, &rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "host telemetry")) == HVCTL_OK)
		output_json(rep.body);
	client_reply_dispose(&rep);
	return r;
}

int
cmd_host_show(struct hvctl *h, int argc, char **argv)
{
	struct hvctl_reply rep;
	char path[160];
	int r;

	if (argc != 2)
		return hvctl_usage_error("host show", "expects one NAME, "
		    "FINGERPRINT or MAC");
	if (strspn(argv[1], "abcdefghijklmnopqrstuvwxyzABCDEF0123456789-:") !=
	    strlen(argv[1]) || argv[1][0] == '\0' || strlen(argv[1]) > 80)
		return hvctl_usage_error("host show", "'%s' is not a host name, "
		    "fingerprint or MAC", argv[1]);
	snprintf(path, sizeof(path), "/api/v1/hosts/%s", argv[1]);
	if ((r = client_call(h, "GET", path, NULL, &rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "host show")) == HVCTL_OK)
		output_json(rep.body);
	client_reply_dispose(&rep);
	return r;
}

/* host call NAME METHOD [PARAMS-JSON]: run one agent command through hvd. */
int
cmd_host_call(struct hvctl *h, int argc, char **argv)
{
	struct hvctl_reply rep;
	json_t *body, *params = NULL;
	json_error_t jerr;
	char path[128];
	int r;

	if (argc != 3 && argc != 4)
		return hvctl_usage_error("host call", "expects NAME METHOD "
		    "[PARAMS-JSON]");
	if (strspn(argv[1], "abcdefghijklmnopqrstuvwxyz0123456789-") !=
	    strlen(argv[1]) || argv[1][0] == '\0')
		return hvctl_usage_error("host call", "'%s' is not a host name",
		    argv[1]);
	if (argc == 4 && (params = json_loads(argv[3], 0, &jerr)) == NULL)
		return hvctl_usage_error("host call", "PARAMS-JSON: %s", jerr.text);
	body = json_pack("{s:s}", "method", argv[2]);
	if (params)
		json_object_set_new(body, "params", params);
	snprintf(path, sizeof(path), "/api/v1/hosts/%s/command", argv[1]);
	r = client_call(h, "POST", path, body, &rep);
	json_decref(body);
	if (r != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "host call")) == HVCTL_OK) {
		if (h->json)
			output_json(rep.body);
		else {
			printf("%s %s: %.1f ms\n", argv[1], argv[2],
			    json_number_value(json_object_get(rep.body, "rtt_ms")));
			output_json(json_object_get(rep.body, "result"));
		}
	}
	client_reply_dispose(&rep);
	return r;
}
