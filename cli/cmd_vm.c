/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvctl vm create|list|show|stop|start|reboot|destroy|console|migrate.
 *
 *   vm create NAME --vcpus N --memory MIB [--type pv|pvh] [--kernel IMAGE]
 *       [--initramfs IMAGE] [--cmdline TEXT] [--disk IMAGE]
 *       [--net VNI[=MAC]]... [--rate RATE] [--host HOST] [--label K=V]
 *       [--anti-affinity GROUP] [--no-wait]
 *
 * --rate caps what each of the VM's NICs may send (libxl's vif rate):
 * 500k, 20M or 1G bit/s, or a bare number of kbit/s.
 *   vm migrate NAME [--to HOST] [--no-wait]
 *
 * hvd answers a change with 202 and an operation id; hvctl then follows
 * the operation (and the VM's state) until it is done or failed, unless
 * --no-wait.  The spec is validated by hvd, which names the bad field.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hvctl.h"
#include "numparse.h"

#define VM_WAIT_S	300

static bool
vm_name_ok(const char *s)
{
	return s[0] && strlen(s) < 64 &&
	    strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(s);
}

/* Follows operation op of vm until it ends; prints each new VM state. */
static int
vm_wait(struct hvctl *h, long long op, const char *vm)
{
	char path[128], last[32] = "";
	struct hvctl_reply rep;
	time_t start = time(NULL);
	struct timespec ts = { 0, 500 * 1000 * 1000 };
	int r;

	for (;;) {
		const char *state, *vstate;

		snprintf(path, sizeof(path), "/api/v1/vms/%s", vm);
		if (client_call(h, "GET", path, NULL, &rep) == HVCTL_OK &&
		    rep.status == 200 && (vstate = output_str(rep.body, "state")) &&
		    strcmp(vstate, last) != 0) {
			snprintf(last, sizeof(last), "%s", vstate);
			printf("  %s: %s%s%s\n", vm, vstate,
			    output_str(rep.body, "host") ? " on " : "",
			    output_str(rep.body, "host") ?: "");
			fflush(stdout);
		}
		client_reply_dispose(&rep);
		snprintf(path, sizeof(path), "/api/v1/operations/%lld", op);
		if ((r = client_call(h, "GET", path, NULL, &rep)) != HVCTL_OK)
			return r;
		/* Ids are never reused: an unknown one is from before a restart. */
		if (rep.status == 404) {
			fprintf(stderr, "hvctl: hvd no longer knows operation %lld "
			    "(it restarted since); where it got: hvctl vm show %s\n",
			    op, vm);
			client_reply_dispose(&rep);
			return HVCTL_FAIL;
		}
		if ((r = client_check(&rep, "vm")) != HVCTL_OK) {
			client_reply_dispose(&rep);
			return r;
		}
		state = output_cell(rep.body, "state");
		if (strcmp(state, "pending") != 0) {
			bool ok = strcmp(state, "done") == 0;

			printf("operation %lld (%s %s): %s%s%s\n", op,
			    output_cell(rep.body, "action"), vm, state,
			    output_str(rep.body, "message") &&
			    output_str(rep.body, "message")[0] ? ": " : "",
			    output_str(rep.body, "message") ?: "");
			client_reply_dispose(&rep);
			return ok ? HVCTL_OK : HVCTL_FAIL;
		}
		client_reply_dispose(&rep);
		if (time(NULL) - start > VM_WAIT_S) {
			fprintf(stderr, "hvctl: operation %lld still pending after "
			    "%d s; hvctl vm show %s\n", op, VM_WAIT_S, vm);
			return HVCTL_FAIL;
		}
		nanosleep(&ts, NULL);
	}
}

/* Prints a 202's operation and waits for it unless no_wait. */
static int
vm_follow(struct hvctl *h, struct hvctl_reply *rep, const char *vm,
    bool no_wait, const char *what)
{
	long long op = json_integer_value(json_object_get(rep->body, "operation"));
	const char *warn = output_str(rep->body, "warning");

	if (h->json) {
		output_json(rep->body);
		return HVCTL_OK;
	}
	if (warn)
		printf("%s %s: accepted, but: %s\n", what, vm, warn);
	if (op == 0) {
		if (!warn)
			printf("%s %s: done\n", what, vm);
		return HVCTL_OK;
	}
	printf("%s %s: operation %lld\n", what, vm, op);
	if (no_wait)
		return HVCTL_OK;
	return vm_wait(h, op, vm);
}

/* RATE as kbit/s: N[k|M|G] (bit/s), a bare N is kbit/s; 0 if unreadable. */
static uint64_t
vm_rate_kbps(const char *rate)
{
	char num[24];
	size_t n = strlen(rate);
	uint64_t v, mul = 1;

	if (n == 0 || n >= sizeof(num))
		return 0;
	memcpy(num, rate, n + 1);
	switch (num[n - 1]) {
	case 'k': num[n - 1] = '\0'; break;
	case 'M': num[n - 1] = '\0'; mul = 1000; break;
	case 'G': num[n - 1] = '\0'; mul = 1000000; break;
	}
	if (parse_u64(num, 1, UINT32_MAX, &v) < 0 || v > UINT32_MAX / mul)
		return 0;
	return v * mul;
}

int
cmd_vm_create(struct hvctl *h, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vcpus", required_argument, NULL, 'c' },
		{ "memory", required_argument, NULL, 'm' },
		{ "type", required_argument, NULL, 't' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "initramfs", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'l' },
		{ "disk", required_argument, NULL, 'd' },
		{ "net", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "host", required_argument, NULL, 'H' },
		{ "label", required_argument, NULL, 'L' },
		{ "anti-affinity", required_argument, NULL, 'a' },
		{ "no-wait", no_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *body = json_object(), *nets = json_array(), *place = json_object();
	struct hvctl_reply rep;
	bool no_wait = false;
	uint64_t v, rate = 0;
	json_t *nic;
	size_t i;
	char *eq;
	int ch, r = HVCTL_USAGE;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
		case 'm':
			if (parse_u64(optarg, 0, UINT32_MAX, &v) < 0) {
				hvctl_usage_error("vm create", "--%s '%s' is not a "
				    "number", ch == 'c' ? "vcpus" : "memory", optarg);
				goto out;
			}
			json_object_set_new(body, ch == 'c' ? "vcpus" : "memory_mib",
			    json_integer((json_int_t)v));
			break;
		case 't':
			json_object_set_new(body, "type", json_string(optarg));
			break;
		case 'k':
			json_object_set_new(body, "kernel", json_string(optarg));
			break;
		case 'i':
			json_object_set_new(body, "initramfs", json_string(optarg));
			break;
		case 'l':
			json_object_set_new(body, "cmdline", json_string(optarg));
			break;
		case 'd':
			json_object_set_new(body, "disk", json_string(optarg));
			break;
		case 'n': {
			if ((eq = strchr(optarg, '=')) != NULL)
				*eq = '\0';
			if (parse_u64(optarg, 0, UINT32_MAX, &v) < 0) {
				hvctl_usage_error("vm create", "--net '%s': expected "
				    "VNI[=MAC]", optarg);
				goto out;
			}
			nic = json_pack("{s:I}", "vni", (json_int_t)v);
			if (eq)
				json_object_set_new(nic, "mac", json_string(eq + 1));
			json_array_append_new(nets, nic);
			break;
		}
		case 'r':
			/* hvd checks the range and names the field. */
			if ((rate = vm_rate_kbps(optarg)) == 0) {
				hvctl_usage_error("vm create", "--rate '%s': expected "
				    "N[k|M|G] bit/s (e.g. 20M) or kbit/s", optarg);
				goto out;
			}
			break;
		case 'H':
			json_object_set_new(place, "host", json_string(optarg));
			break;
		case 'L':
			json_object_set_new(place, "label", json_string(optarg));
			break;
		case 'a':
			json_object_set_new(place, "anti_affinity", json_string(optarg));
			break;
		case 'W':
			no_wait = true;
			break;
		default:
			goto out;
		}
	}
	if (optind + 1 != argc) {
		r = hvctl_usage_error("vm create", "expects one NAME");
		goto out;
	}
	json_object_set_new(body, "name", json_string(argv[optind]));
	if (rate != 0 && json_array_size(nets) == 0) {
		r = hvctl_usage_error("vm create", "--rate needs a --net to limit");
		goto out;
	}
	json_array_foreach(nets, i, nic)
		if (rate != 0)
			json_object_set_new(nic, "rate_kbps",
			    json_integer((json_int_t)rate));
	if (json_array_size(nets))
		json_object_set(body, "networks", nets);
	if (json_object_size(place))
		json_object_set(body, "placement", place);
	if ((r = client_call(h, "POST", "/api/v1/vms", body, &rep)) != HVCTL_OK)
		goto out;
	if ((r = client_check(&rep, "vm create")) == HVCTL_OK)
		r = vm_follow(h, &rep, argv[optind], no_wait, "create");
	client_reply_dispose(&rep);
out:
	json_decref(nets);
	json_decref(place);
	json_decref(body);
	return r;
}

int
cmd_vm_list(struct hvctl *h, int argc, char **argv)
{
	static const char *const headers[] = { "NAME", "HOST", "STATE",
	    "DESIRED", "VCPUS", "MEMORY", "REASON" };
	struct hvctl_reply rep;
	struct table *t;
	json_t *vm;
	size_t i;
	int r;

	(void)argv;
	if (argc > 1)
		return hvctl_usage_error("vm list", "takes no arguments");
	if ((r = client_call(h, "GET", "/api/v1/vms", NULL, &rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "vm list")) == HVCTL_OK) {
		if (h->json) {
			output_json(rep.body);
		} else {
			t = table_new(headers, 7);
			json_array_foreach(json_object_get(rep.body, "vms"), i, vm) {
				char vcpus[16], mem[24];
				const char *cells[7];

				snprintf(vcpus, sizeof(vcpus), "%lld", (long long)
				    json_integer_value(json_object_get(vm, "vcpus")));
				snprintf(mem, sizeof(mem), "%lld MiB", (long long)
				    json_integer_value(json_object_get(vm,
				    "memory_mib")));
				cells[0] = output_cell(vm, "name");
				cells[1] = output_cell(vm, "host");
				cells[2] = output_cell(vm, "state");
				cells[3] = output_cell(vm, "desired");
				cells[4] = vcpus;
				cells[5] = mem;
				cells[6] = output_cell(vm, "reason");
				table_add(t, cells);
			}
			table_print(t);
			table_free(t);
		}
	}
	client_reply_dispose(&rep);
	return r;
}

static int
vm_simple(struct hvctl *h, int argc, char **argv, const char *cmd,
    const char *method, const char *suffix)
{
	static const struct option opts[] = {
		{ "no-wait", no_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 },
	};
	struct hvctl_reply rep;
	bool no_wait = false;
	char path[128];
	int ch, r;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'W')
			return HVCTL_USAGE;
		no_wait = true;
	}
	if (optind + 1 != argc || !vm_name_ok(argv[optind]))
		return hvctl_usage_error(cmd, "expects one VM NAME");
	snprintf(path, sizeof(path), "/api/v1/vms/%s%s", argv[optind], suffix);
	if ((r = client_call(h, method, path, NULL, &rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, cmd)) == HVCTL_OK) {
		if (strcmp(method, "GET") == 0)
			output_json(rep.body);
		else
			r = vm_follow(h, &rep, argv[optind], no_wait, cmd + 3);
	}
	client_reply_dispose(&rep);
	return r;
}

int
cmd_vm_show(struct hvctl *h, int argc, char **argv)
{
	return vm_simple(h, argc, argv, "vm show", "GET", "");
}

int
cmd_vm_stop(struct hvctl *h, int argc, char **argv)
{
	return vm_simple(h, argc, argv, "vm stop", "POST", "/stop");
}

int
cmd_vm_start(struct hvctl *h, int argc, char **argv)
{
	return vm_simple(h, argc, argv, "vm start", "POST", "/start");
}

/* Done when the VM runs again (a new domain); exit 1 if it did not. */
int
cmd_vm_reboot(struct hvctl *h, int argc, char **argv)
{
	return vm_simple(h, argc, argv, "vm reboot", "POST", "/reboot");
}

int
cmd_vm_destroy(struct hvctl *h, int argc, char **argv)
{
	return vm_simple(h, argc, argv, "vm destroy", "DELETE", "");
}

int
cmd_vm_console(struct hvctl *h, int argc, char **argv)
{
	char path[128];
	int fd_out = 1, r;
	struct hvctl_reply rep;

	if (argc != 2 || !vm_name_ok(argv[1]))
		return hvctl_usage_error("vm console", "expects one VM NAME");
	snprintf(path, sizeof(path), "/api/v1/vms/%s/console", argv[1]);
	if ((r = client_download(h, path, fd_out, &rep)) == HVCTL_OK)
		r = client_check(&rep, "vm console");
	client_reply_dispose(&rep);
	return r;
}

/* Follows a migrate operation: one line per change of phase, mode or
 * (while copying) bytes; exit 0 when done, 1 with the message if failed. */
static int
vm_migrate_wait(struct hvctl *h, long long op, const char *vm)
{
	struct timespec ts = { 0, 250 * 1000 * 1000 };
	char path[128], last[160] = "";
	time_t start = time(NULL);
	struct hvctl_reply rep;
	int r;

	snprintf(path, sizeof(path), "/api/v1/operations/%lld", op);
	for (;;) {
		const char *state, *phase, *mode, *msg;
		long long bytes, round;
		char line[160], rounds[32];

		if ((r = client_call(h, "GET", path, NULL, &rep)) != HVCTL_OK)
			return r;
		if ((r = client_check(&rep, "vm migrate")) != HVCTL_OK) {
			client_reply_dispose(&rep);
			return r;
		}
		state = output_cell(rep.body, "state");
		phase = output_cell(rep.body, "phase");
		mode = output_str(rep.body, "mode");
		msg = output_str(rep.body, "message");
		bytes = (long long)json_integer_value(json_object_get(rep.body,
		    "bytes"));
		round = (long long)json_integer_value(json_object_get(rep.body,
		    "round"));
		if (round > 0)
			snprintf(rounds, sizeof(rounds), ", round %lld", round);
		else
			rounds[0] = '\0';
		snprintf(line, sizeof(line), "  %s: %s%s%s%s, %lld bytes", vm, phase,
		    mode ? " " : "", mode ? mode : "", rounds, bytes);
		if (strcmp(line, last) != 0) {
			printf("%s\n", line);
			fflush(stdout);
			snprintf(last, sizeof(last), "%s", line);
		}
		if (strcmp(state, "pending") != 0) {
			bool ok = strcmp(state, "done") == 0;

			if (ok)
				printf("operation %lld (migrate %s): done%s%s\n", op, vm,
				    msg && msg[0] ? ": " : "", msg ? msg : "");
			else
				fprintf(stderr, "hvctl: vm migrate %s: failed: %s\n", vm,
				    msg && msg[0] ? msg : "no reason given");
			client_reply_dispose(&rep);
			return ok ? HVCTL_OK : HVCTL_FAIL;
		}
		client_reply_dispose(&rep);
		/* hvd bounds a migration at timeout_s + 60 s; wait a bit more. */
		if (time(NULL) - start > 2 * VM_WAIT_S) {
			fprintf(stderr, "hvctl: operation %lld still pending after "
			    "%d s; hvctl vm show %s\n", op, 2 * VM_WAIT_S, vm);
			return HVCTL_FAIL;
		}
		nanosleep(&ts, NULL);
	}
}

int
cmd_vm_migrate(struct hvctl *h, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "no-wait", no_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *body = NULL;
	struct hvctl_reply rep;
	bool no_wait = false;
	const char *to = NULL;
	char path[128];
	long long op;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 't')
			to = optarg;
		else if (ch == 'W')
			no_wait = true;
		else
			return HVCTL_USAGE;
	}
	if (optind + 1 != argc || !vm_name_ok(argv[optind]))
		return hvctl_usage_error("vm migrate", "expects one VM NAME");
	if (to)
		body = json_pack("{s:s}", "to", to);
	snprintf(path, sizeof(path), "/api/v1/vms/%s/migrate", argv[optind]);
	r = client_call(h, "POST", path, body, &rep);
	json_decref(body);
	if (r != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "vm migrate")) != HVCTL_OK) {
		client_reply_dispose(&rep);
		return r;
	}
	op = json_integer_value(json_object_get(rep.body, "operation"));
	if (h->json) {
		output_json(rep.body);
	} else {
		printf("migrate %s: %s -> %s, operation %lld\n", argv[optind],
		    output_cell(rep.body, "source"), output_cell(rep.body, "target"),
		    op);
		fflush(stdout);
		if (!no_wait)
			r = vm_migrate_wait(h, op, argv[optind]);
	}
	client_reply_dispose(&rep);
	return r;
}
