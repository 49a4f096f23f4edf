/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvctl host add|list|show|delete: hosts and their live state.
 *
 * "host show" prints one "key: value" line per fact (identity, state,
 * boot, session and telemetry, networks, settings, a summary of the
 * agent's facts), --json the API's object whole.  Times are RFC 3339 UTC.
 * "host delete" removes the record of a retired host (hvd refuses any
 * other, and one a VM still names).
 *
 * "host add NAME --out DIR" writes the credentials hvd issued (agent.conf
 * and agent.key, mode 0600) as a host's overlay will carry them; the
 * secrets exist nowhere else afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
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

/*
 * When hvd last heard of the host: its latest telemetry, session start or
 * boot request, whichever is newest, into buf; "-" if never.  The API's
 * times are RFC 3339 in UTC of one length, which sort as text (RFC 3339
 * section 5.1).
 */
static const char *
host_last_seen(const json_t *host, char *buf, size_t len)
{
	const json_t *obj[] = { json_object_get(host, "live"), host, host };
	const char *keys[] = { "telemetry_at", "last_seen_at", "boot_at" };
	const char *best = "-";

	for (size_t k = 0; k < sizeof(keys) / sizeof(*keys); k++) {
		char t[API_TIME_LEN];
		const char *v = output_time(obj[k], keys[k], t, sizeof(t));

		if (strcmp(v, "-") != 0 && (strcmp(best, "-") == 0 ||
		    strcmp(v, best) > 0)) {
			snprintf(buf, len, "%s", v);
			best = buf;
		}
	}
	return best;
}

int
host_table(const json_t *hosts)
{
	/* SESSION stays last, NAME and STATE first: scripts read them so. */
	static const char *const headers[] = { "NAME", "STATE", "FINGERPRINT",
	    "BOOT MAC", "UNDERLAY", "CPU", "MEMORY", "LOAD", "LAST SEEN",
	    "SESSION" };
	struct table *t = table_new(headers, 10);
	const json_t *host;
	size_t i;

	json_array_foreach(hosts, i, host) {
		char cpu[16], mem[48], load[16], fp[16], st[48];
		char seen[API_TIME_LEN];
		const char *state;
		const json_t *live = json_object_get(host, "live");
		const char *cells[10];

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
		cells[8] = host_last_seen(host, seen, sizeof(seen));
		cells[9] = json_is_true(json_object_get(live, "connected")) ?
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

/* host show: one "key: value" line each, keys aligned. */
static void
show_kv(const char *key, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
show_kv(const char *key, const char *fmt, ...)
{
	char k[32];
	va_list ap;

	/* A continuation line (key "") is indented like the values. */
	snprintf(k, sizeof(k), "%s%s", key, key[0] ? ":" : "");
	printf("%-13s ", k);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static const char *
show_or(const json_t *obj, const char *key, const char *none)
{
	const char *s = output_str(obj, key);

	return s && s[0] ? s : none;
}

/* Appends ", TEXT" (no comma first) to buf. */
static void
show_part(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
show_part(char *buf, size_t len, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used > 0 && used + 2 < len) {
		memcpy(buf + used, ", ", 3);
		used += 2;
	}
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

/* "8.0 GiB" */
static void
show_bytes(char *buf, size_t len, const json_t *v)
{
	if (json_is_integer(v))
		snprintf(buf, len, "%.1f GiB", (double)json_integer_value(v) /
		    (1 << 30));
	else
		snprintf(buf, len, "?");
}

static void
show_boot(const json_t *host)
{
	char t[API_TIME_LEN];
	const char *ovl = show_or(host, "overlay", "none");
	const char *at = output_time(host, "boot_at", t, sizeof(t));

	if (strcmp(at, "-") == 0) {
		show_kv("boot", "never booted from hvd");
		return;
	}
	show_kv("boot", "%s from %s, overlay %s", at,
	    show_or(host, "boot_ip", "?"),
	    strcmp(ovl, "served") == 0 ? "served" : "not fetched yet");
	if (output_str(host, "boot_id") && output_str(host, "boot_id")[0])
		show_kv("boot id", "%s", output_str(host, "boot_id"));
}

static void
show_session(const json_t *host)
{
	const json_t *live = json_object_get(host, "live");
	char t[API_TIME_LEN], tt[API_TIME_LEN];
	char mem[64] = "", cpu[24] = "", load[24] = "";
	const json_t *c = json_object_get(live, "cpu_percent");
	const json_t *l = json_object_get(live, "load1");
	bool connected = json_is_true(json_object_get(live, "connected"));
	const char *since = output_time(host, "last_seen_at", t, sizeof(t));

	if (strcmp(since, "-") == 0)
		show_kv("session", "%s", connected ? "connected" :
		    "never connected");
	else
		show_kv("session", "%s %s", connected ? "connected since" :
		    "not connected; the last began", since);
	if (live == NULL || strcmp(output_time(live, "telemetry_at", tt,
	    sizeof(tt)), "-") == 0) {
		show_kv("live", "%s, no telemetry", live && json_is_true(
		    json_object_get(live, "up")) ? "up" : "not up");
		return;
	}
	if (json_is_number(c))
		snprintf(cpu, sizeof(cpu), ", cpu %.1f%%", json_number_value(c));
	if (json_is_integer(json_object_get(live, "memory_total_bytes"))) {
		char used[24], total[24];

		show_bytes(used, sizeof(used), json_object_get(live,
		    "memory_used_bytes"));
		show_bytes(total, sizeof(total), json_object_get(live,
		    "memory_total_bytes"));
		snprintf(mem, sizeof(mem), ", memory %s of %s", used, total);
	}
	if (json_is_number(l))
		snprintf(load, sizeof(load), ", load %.2f", json_number_value(l));
	show_kv("live", "%s%s%s%s, telemetry at %s", json_is_true(
	    json_object_get(live, "up")) ? "up" : "not up", cpu, mem, load,
	    output_time(live, "telemetry_at", tt, sizeof(tt)));
}

static bool
show_has_vni(const json_t *vnis, json_int_t vni)
{
	const json_t *v;
	size_t i;

	json_array_foreach(vnis, i, v)
		if (json_integer_value(v) == vni)
			return true;
	return false;
}

/* The networks the host is in: its explicit ones and every all-hosts
 * network (nets is GET /api/v1/networks, or NULL if that failed). */
static void
show_networks(const json_t *host, const json_t *nets)
{
	const json_t *vnis = json_object_get(host, "networks"), *n, *v;
	const char *state = show_or(host, "state", "");
	char buf[2048] = "";
	size_t i;

	if (strcmp(state, "discovered") == 0 || strcmp(state, "retired") == 0) {
		show_kv("networks", "none (a %s host is in no network)", state);
		return;
	}
	if (nets == NULL) {
		json_array_foreach(vnis, i, v)
			show_part(buf, sizeof(buf), "VNI %lld",
			    (long long)json_integer_value(v));
	}
	json_array_foreach(json_object_get(nets, "networks"), i, n) {
		json_int_t vni = json_integer_value(json_object_get(n, "vni"));
		bool all = json_is_true(json_object_get(n, "all_hosts"));

		if (all || show_has_vni(vnis, vni))
			show_part(buf, sizeof(buf), "%s (VNI %lld%s)",
			    show_or(n, "name", "?"), (long long)vni,
			    all ? ", all hosts" : "");
	}
	show_kv("networks", "%s", buf[0] ? buf : "none");
}

static void
show_labels(const json_t *host)
{
	const json_t *labels = json_object_get(host, "labels"), *v;
	const char *k;
	char buf[2048] = "";

	json_object_foreach((json_t *)labels, k, v)
		show_part(buf, sizeof(buf), "%s=%s", k, json_is_string(v) ?
		    json_string_value(v) : "?");
	show_kv("labels", "%s", buf[0] ? buf : "none");
}

static void
show_keys(const json_t *host)
{
	const char *p = show_or(host, "ssh_keys", "");
	unsigned n = 0;

	/* One authorized_keys line per key; blank lines and comments aside. */
	while (*p) {
		size_t len = strcspn(p, "\n");

		n += len > 0 && *p != '#';
		p += len + (p[len] == '\n');
	}
	if (n == 0)
		show_kv("ssh keys", "none");
	else
		show_kv("ssh keys", "%u authorized key%s", n, n == 1 ? "" : "s");
}

static void
show_mounts(const json_t *host)
{
	const json_t *m;
	size_t i;

	if (json_array_size(json_object_get(host, "mounts")) == 0) {
		show_kv("mounts", "none");
		return;
	}
	json_array_foreach(json_object_get(host, "mounts"), i, m)
		show_kv(i == 0 ? "mounts" : "", "%s on %s (%s%s%s)",
		    show_or(m, "source", "?"), show_or(m, "path", "?"),
		    show_or(m, "fstype", "auto"), output_str(m, "options") &&
		    output_str(m, "options")[0] ? ", " : "",
		    show_or(m, "options", ""));
}

/* One line of what the agent reported: CPUs, memory, NICs, disks, kernel,
 * vendor and product; what it did not report is left out. */
static void
show_facts(const json_t *host)
{
	const json_t *f = json_object_get(host, "facts");
	const json_t *cpu = json_object_get(f, "cpu"), *dmi = json_object_get(f,
	    "dmi"), *total = json_object_get(json_object_get(f, "memory"),
	    "total_bytes");
	const char *model = output_str(cpu, "model");
	const char *vendor = show_or(dmi, "sys_vendor", ""), *product =
	    show_or(dmi, "product_name", ""), *kernel =
	    output_str(json_object_get(f, "kernel"), "release");
	char buf[512] = "", mem[24];

	if (!json_is_object(f) || json_object_size(f) == 0) {
		show_kv("facts", "none reported (no agent has connected)");
		return;
	}
	if (json_is_integer(json_object_get(cpu, "count")))
		show_part(buf, sizeof(buf), "%lld CPUs%s%s%s",
		    (long long)json_integer_value(json_object_get(cpu, "count")),
		    model ? " (" : "", model ? model : "", model ? ")" : "");
	if (json_is_integer(total)) {
		show_bytes(mem, sizeof(mem), total);
		show_part(buf, sizeof(buf), "%s memory", mem);
	}
	show_part(buf, sizeof(buf), "%zu NICs, %zu disks",
	    json_array_size(json_object_get(f, "nics")),
	    json_array_size(json_object_get(f, "disks")));
	if (kernel)
		show_part(buf, sizeof(buf), "kernel %s", kernel);
	if (vendor[0] || product[0])
		show_part(buf, sizeof(buf), "%s%s%s", vendor, vendor[0] &&
		    product[0] ? " " : "", product);
	show_kv("facts", "%s", buf);
}

static void
host_show_text(const json_t *host, const json_t *nets)
{
	const char *name = output_str(host, "name");
	const char *agent = show_or(host, "agent_pubkey", NULL);

	show_kv("name", "%s", name ? name : "- (not adopted)");
	show_kv("state", "%s", show_or(host, "state", "?"));
	show_kv("draining", "%s", json_is_true(json_object_get(host,
	    "draining")) ? "yes: the scheduler places nothing here" : "no");
	show_kv("fingerprint", "%s", show_or(host, "fingerprint", "?"));
	show_kv("boot mac", "%s", show_or(host, "boot_mac", "-"));
	show_kv("uuid", "%s", show_or(host, "uuid", "-"));
	show_kv("serial", "%s", show_or(host, "serial", "-"));
	show_kv("product", "%s", show_or(host, "product", "-"));
	show_kv("underlay", "%s", show_or(host, "underlay_ip", "none yet"));
	show_kv("agent key", "%s", agent ? agent : "none");
	show_boot(host);
	show_session(host);
	show_networks(host, nets);
	show_labels(host);
	show_keys(host);
	show_mounts(host);
	show_facts(host);
}

int
cmd_host_show(struct hvctl *h, int argc, char **argv)
{
	struct hvctl_reply rep, nets = { 0 };
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
	if ((r = client_check(&rep, "host show")) == HVCTL_OK) {
		if (h->json)
			output_json(rep.body);
		else {
			/* Network names are a nicety: without them, VNIs. */
			bool named = client_call(h, "GET", "/api/v1/networks",
			    NULL, &nets) == HVCTL_OK && nets.status == 200;

			host_show_text(rep.body, named ? nets.body : NULL);
		}
	}
	client_reply_dispose(&nets);
	client_reply_dispose(&rep);
	return r;
}

/* host delete NAME|FINGERPRINT: the record of a retired host. */
int
cmd_host_delete(struct hvctl *h, int argc, char **argv)
{
	struct hvctl_reply rep;
	char path[160];
	int r;

	if (argc != 2)
		return hvctl_usage_error("host delete", "expects one NAME or "
		    "FINGERPRINT");
	if (strspn(argv[1], "abcdefghijklmnopqrstuvwxyz0123456789-:") !=
	    strlen(argv[1]) || argv[1][0] == '\0' || strlen(argv[1]) > 80)
		return hvctl_usage_error("host delete", "'%s' is not a host name "
		    "or fingerprint", argv[1]);
	snprintf(path, sizeof(path), "/api/v1/hosts/%s", argv[1]);
	if ((r = client_call(h, "DELETE", path, NULL, &rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "host delete")) == HVCTL_OK && !h->json)
		printf("deleted host %s; its fingerprint stays retired, so the "
		    "machine is still refused if it boots\n", argv[1]);
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
