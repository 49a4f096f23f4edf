/*
 * hvctl status: is hvd up, which version, where it listens, what it holds.
 */
#include <stdio.h>

#include "hvctl.h"

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
		printf("tcp:       %s\n", output_str(listen, "tcp"));
	printf("your role: %s\n", output_str(rep.body, "your_role"));
	printf("inventory: %lld hosts, %lld networks, %lld vms\n",
	    (long long)json_integer_value(json_object_get(inv, "hosts")),
	    (long long)json_integer_value(json_object_get(inv, "networks")),
	    (long long)json_integer_value(json_object_get(inv, "vms")));
out:
	client_reply_dispose(&rep);
	return r;
}
