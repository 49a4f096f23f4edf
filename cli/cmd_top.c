/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvctl top: a live terminal view of every host, redrawn every interval
 * until interrupted; when hvd restarts it says so and goes on once hvd is
 * back (client.c).  --once draws a single frame (for scripts and tests)
 * and, like any one-shot command, fails at once when hvd is away.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "hvctl.h"
#include "numparse.h"

int
cmd_top(struct hvctl *h, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "once", no_argument, NULL, 'o' },
		{ "interval", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	struct hvctl_reply rep;
	bool once = false, tty = isatty(STDOUT_FILENO);
	uint32_t interval = 2;
	char stamp[API_TIME_LEN];
	int ch, r = HVCTL_OK;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			once = true;
			break;
		case 'i':
			if (parse_u32(optarg, 1, 3600, &interval) < 0)
				return hvctl_usage_error("top", "--interval must be "
				    "1..3600 seconds");
			break;
		default:
			return HVCTL_USAGE;
		}
	}
	if (once)
		h->follow = false;
	client_catch_interrupt();
	while (!client_interrupted()) {
		/* Interrupted while it waited for hvd: ended as asked. */
		if ((r = client_call(h, "GET", "/api/v1/hosts", NULL, &rep)) !=
		    HVCTL_OK)
			return client_interrupted() ? HVCTL_OK : r;
		if ((r = client_check(&rep, "top")) != HVCTL_OK) {
			client_reply_dispose(&rep);
			return r;
		}
		output_epoch((int64_t)time(NULL), stamp, sizeof(stamp));
		/* Home the cursor and clear, as top(1) does, only on a tty. */
		if (tty && !once)
			fputs("\033[H\033[2J", stdout);
		printf("hvctl top  %s  %zu hosts  (every %us, Ctrl-C quits)\n\n",
		    stamp, json_array_size(json_object_get(rep.body, "hosts")),
		    interval);
		host_table(json_object_get(rep.body, "hosts"));
		fflush(stdout);
		client_reply_dispose(&rep);
		if (once)
			break;
		for (uint32_t s = 0; s < interval * 10 && !client_interrupted();
		    s++)
			usleep(100000);
	}
	return r;
}
