/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvctl host drain|undrain: maintenance mode.
 *
 *   host drain NAME [--no-wait]   mark NAME draining and move its VMs away;
 *                                 follows the drain VM by VM, and ends with
 *                                 the VMs that could not move, and why
 *                                 (exit 1 if there are any)
 *   host undrain NAME             the scheduler may place VMs on NAME again
 *
 * Following waits out an hvd restart (client.c); hvd keeps no drain across
 * one, so the follow then ends, saying how to go on.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "hvctl.h"

/* hvd bounds each migration (300 s + 60 s); a drain moves two at a time. */
#define DRAIN_WAIT_PER_VM_S	400

/* One line per VM whose state changed since the last poll. */
static void
drain_print_changes(const json_t *vms, char (*last)[96], size_t nlast)
{
	const json_t *vm;
	size_t i;

	json_array_foreach(vms, i, vm) {
		const char *name = output_cell(vm, "name");
		const char *state = output_cell(vm, "state");
		const char *target = output_str(vm, "target");
		const json_t *op = json_object_get(vm, "operation");
		char now[96];

		if (i >= nlast)
			break;
		snprintf(now, sizeof(now), "%s %s", state, target ? target : "");
		if (strcmp(now, last[i]) == 0)
			continue;
		snprintf(last[i], sizeof(last[i]), "%s", now);
		if (strcmp(state, "moving") == 0)
			printf("  %s: moving to %s (operation %lld)\n", name,
			    target ? target : "?", (long long)json_integer_value(op));
		else if (strcmp(state, "moved") == 0)
			printf("  %s: moved to %s\n", name, target ? target : "?");
		else if (strcmp(state, "not moved") == 0)
			printf("  %s: not moved: %s\n", name,
			    output_cell(vm, "reason"));
	}
	fflush(stdout);
}

/* The end: the tally, and what stays on the host. */
static int
drain_print_end(const char *host, const json_t *d)
{
	long long moved = json_integer_value(json_object_get(d, "moved"));
	long long left = json_integer_value(json_object_get(d, "not_moved"));
	const json_t *vm;
	size_t i;

	printf("host %s: drain ended: %lld VM(s) moved, %lld not moved%s\n", host,
	    moved, left, json_is_true(json_object_get(d, "undrained")) ?
	    " (undrained meanwhile)" : "");
	if (left == 0)
		return HVCTL_OK;
	fprintf(stderr, "hvctl: host drain %s: these VMs stay on it:\n", host);
	json_array_foreach(json_object_get(d, "vms"), i, vm)
		if (strcmp(output_cell(vm, "state"), "not moved") == 0)
			fprintf(stderr, "  %s: %s\n", output_cell(vm, "name"),
			    output_cell(vm, "reason"));
	return HVCTL_FAIL;
}

static int
drain_follow(struct hvctl *h, const char *host, size_t nvms)
{
	struct timespec ts = { 0, 500 * 1000 * 1000 };
	char last[64][96] = { { 0 } };
	char path[160];
	time_t start = time(NULL);
	struct hvctl_reply rep;
	int r;

	snprintf(path, sizeof(path), "/api/v1/hosts/%s/drain", host);
	for (;;) {
		if ((r = client_call(h, "GET", path, NULL, &rep)) != HVCTL_OK)
			return r;
		if ((r = client_check(&rep, "host drain")) != HVCTL_OK) {
			client_reply_dispose(&rep);
			return r;
		}
		/* Just the mark: this hvd started after the drain did. */
		if (output_str(rep.body, "state") == NULL) {
			if (json_is_true(json_object_get(rep.body, "draining")))
				fprintf(stderr, "hvctl: host drain %s: hvd restarted "
				    "and moves no VMs off %s any more; it stays "
				    "draining, and hvctl host drain %s moves what is "
				    "left\n", host, host, host);
			else
				fprintf(stderr, "hvctl: host drain %s: hvd restarted "
				    "and %s is no longer draining\n", host, host);
			client_reply_dispose(&rep);
			return HVCTL_FAIL;
		}
		drain_print_changes(json_object_get(rep.body, "vms"), last,
		    sizeof(last) / sizeof(last[0]));
		if (strcmp(output_cell(rep.body, "state"), "running") != 0) {
			if (h->json)
				output_json(rep.body);
			r = drain_print_end(host, rep.body);
			client_reply_dispose(&rep);
			return r;
		}
		client_reply_dispose(&rep);
		if (time(NULL) - start > (time_t)(nvms + 1) * DRAIN_WAIT_PER_VM_S) {
			fprintf(stderr, "hvctl: host drain %s: still running after "
			    "%lld s; hvctl host drain %s again follows it\n", host,
			    (long long)(time(NULL) - start), host);
			return HVCTL_FAIL;
		}
		nanosleep(&ts, NULL);
	}
}

int
cmd_host_drain(struct hvctl *h, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "no-wait", no_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 },
	};
	struct hvctl_reply rep;
	bool no_wait = false;
	char path[160];
	size_t nvms;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'W')
			no_wait = true;
		else
			return HVCTL_USAGE;
	}
	if (optind + 1 != argc || !api_name_valid(argv[optind]))
		return hvctl_usage_error("host drain", "expects one host NAME");
	snprintf(path, sizeof(path), "/api/v1/hosts/%s/drain", argv[optind]);
	if ((r = client_call(h, "POST", path, NULL, &rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "host drain")) != HVCTL_OK) {
		client_reply_dispose(&rep);
		return r;
	}
	nvms = json_array_size(json_object_get(rep.body, "vms"));
	if (h->json && no_wait)
		output_json(rep.body);
	else
		printf("host %s: draining: the scheduler places nothing there; "
		    "%zu VM(s) to move, %lld at a time\n", argv[optind], nvms,
		    (long long)json_integer_value(json_object_get(rep.body,
		    "parallel")));
	fflush(stdout);
	client_reply_dispose(&rep);
	if (no_wait)
		return HVCTL_OK;
	return drain_follow(h, argv[optind], nvms);
}

int
cmd_host_undrain(struct hvctl *h, int argc, char **argv)
{
	struct hvctl_reply rep;
	char path[160];
	int r;

	if (argc != 2 || !api_name_valid(argv[1]))
		return hvctl_usage_error("host undrain", "expects one host NAME");
	snprintf(path, sizeof(path), "/api/v1/hosts/%s/undrain", argv[1]);
	if ((r = client_call(h, "POST", path, NULL, &rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "host undrain")) == HVCTL_OK) {
		if (h->json)
			output_json(rep.body);
		else
			printf("host %s: undrained: the scheduler may place VMs there "
			    "again\n", argv[1]);
	}
	client_reply_dispose(&rep);
	return r;
}
