/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvctl status: is hvd up, which version, where it listens, what it holds.
 */
#include <stdio.h>

#include "hvctl.h"

/* The boot root's files, and loudly which ones are missing. */
static void
status_boot_files(const json_t *boot)
{
	const json_t *files = json_object_get(boot, "files"), *f;
	const json_t *missing = json_object_get(boot, "missing");
	size_t i;

	if (boot == NULL)
		return;
	printf("boot root: %s\n", output_str(boot, "root"));
	json_array_foreach(files, i, f) {
		if (!json_is_true(json_object_get(f, "present")))
			continue;
		printf("           %-14s %lld bytes\n", output_str(f, "name"),
		    (long long)json_integer_value(json_object_get(f, "size")));
	}
	if (json_array_size(missing) > 0) {
		printf("MISSING:  ");
		json_array_foreach(missing, i, f)
			printf(" %s", json_string_value(f));
		printf("  (hosts cannot boot without xen, vmlinuz and "
		    "initramfs: hvctl boot import DIR)\n");
	}
}

int
cmd_status(struct hvctl *h, int argc, char **argv)
{
	struct hvctl_reply rep;
	json_t *inv, *listen;
	int r;

	(void)argv;
	if (argc > 1)
		return hvctl_usage_error("status", "takes no arguments");
	if ((r = client_call(h, "GET", "/api/v1/status", NULL, &rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(&rep, "status")) != HVCTL_OK)
		goto out;
	if (h->json) {
		output_json(rep.body);
		goto out;
	}
	inv = json_object_get(rep.body, "inventory");
	listen = json_object_get(rep.body, "listen");
	printf("hvd %s, pid %lld, up %llds\n", output_str(rep.body, "version"),
	    (long long)json_integer_value(json_object_get(rep.body, "pid")),
	    (long long)json_integer_value(json_object_get(rep.body,
	    "uptime_seconds")));
	printf("state:     %s\n", output_str(rep.body, "state_dir"));
	if (output_str(listen, "socket"))
		printf("socket:    %s\n", output_str(listen, "socket"));
	if (output_str(listen, "tcp"))
		printf("tcp:       %s%s\n", output_str(listen, "tcp"),
		    json_is_false(json_object_get(listen, "tcp_tls")) ?
		    " (plaintext)" : "");
	if (output_str(listen, "tcp_pin"))
		printf("tls key:   %s\n", output_str(listen, "tcp_pin"));
	if (output_str(listen, "agents"))
		printf("agents:    %s (%lld connected)\n", output_str(listen,
		    "agents"), (long long)json_integer_value(json_object_get(
		    rep.body, "agent_sessions")));
	if (output_str(listen, "boot_http"))
		printf("boot http: %s (clients use %s)\n", output_str(listen,
		    "boot_http"), output_str(json_object_get(rep.body, "boot"),
		    "url"));
	if (output_str(listen, "tftp"))
		printf("tftp:      %s\n", output_str(listen, "tftp"));
	if (json_object_get(rep.body, "topology")) {
		const json_t *t = json_object_get(rep.body, "topology");

		printf("network:   boot interface %s, %s/%lld\n",
		    output_str(t, "boot_interface")[0] ?
		    output_str(t, "boot_interface") : "(none)",
		    output_str(t, "boot_address") ? output_str(t, "boot_address") :
		    "no IPv4 address",
		    (long long)json_integer_value(json_object_get(t, "boot_prefix")));
	}
	status_boot_files(json_object_get(rep.body, "boot"));
	printf("your role: %s\n", output_str(rep.body, "your_role"));
	printf("inventory: %lld hosts, %lld networks, %lld vms\n",
	    (long long)json_integer_value(json_object_get(inv, "hosts")),
	    (long long)json_integer_value(json_object_get(inv, "networks")),
	    (long long)json_integer_value(json_object_get(inv, "vms")));
out:
	client_reply_dispose(&rep);
	return r;
}
