/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * mesh_priv_probe: drives hvd's privileged mesh path (daemon/mesh_priv.c)
 * the way hvd does, on a libevent loop: mesh_priv_init(), one
 * mesh_priv_apply() of FILE, then prints one line
 *   result=R detail=D self_capeff=HEX helper_capeff=HEX
 * with this process's and the helper's effective capabilities (read from
 * /proc before shutdown).  A test tool, never installed.
 *
 *   mesh_priv_probe FILE.json
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <dirent.h>
#include <unistd.h>

#include <event2/event.h>

#include "net.h"
#include "mesh.h"

static int done_result = 1;
static char done_detail[1024];

static void
done(void *arg, int result, const char *detail)
{
	done_result = result;
	snprintf(done_detail, sizeof(done_detail), "%s", detail);
	event_base_loopbreak(arg);
}

static void
capeff(pid_t pid, char *out, size_t len)
{
	char path[64], line[256];
	FILE *f;

	snprintf(out, len, "?");
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "CapEff:\t", 8) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, len, "%s", line + 8);
		}
	fclose(f);
}

/* The helper is this process's only child. */
static pid_t
child_pid(void)
{
	char path[64], buf[4096];
	FILE *f;
	pid_t p = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)getpid(),
	    (int)getpid());
	if ((f = fopen(path, "re")) != NULL) {
		if (fgets(buf, sizeof(buf), f))
			p = (pid_t)atoi(buf);
		fclose(f);
	}
	return p;
}

int
main(int argc, char **argv)
{
	struct hvd hvd;
	struct mesh_state *st = NULL;
	char err[512], self[32], helper[32] = "-", *buf;
	struct timeval tv = { 10, 0 };
	FILE *f;
	long n;
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: mesh_priv_probe FILE.json\n");
		return 2;
	}
	log_init(true, LOG_LEVEL_INFO, "mesh_priv_probe");
	if ((f = fopen(argv[1], "re")) == NULL || fseek(f, 0, SEEK_END) != 0 ||
	    (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    (buf = malloc((size_t)n + 1)) == NULL ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		perror(argv[1]);
		return 2;
	}
	fclose(f);
	if (mesh_state_parse(buf, (size_t)n, &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", argv[1], err);
		return 2;
	}
	free(buf);
	memset(&hvd, 0, sizeof(hvd));
	if ((hvd.base = event_base_new()) == NULL)
		return 2;
	if ((r = mesh_priv_init(&hvd)) < 0) {
		fprintf(stderr, "mesh_priv_init: %s\n", strerror(-r));
		return 2;
	}
	if ((r = mesh_priv_apply(st, done, hvd.base)) < 0) {
		done_result = r;
		snprintf(done_detail, sizeof(done_detail), "%s", strerror(-r));
	} else {
		event_base_loopexit(hvd.base, &tv);
		event_base_dispatch(hvd.base);
	}
	capeff(getpid(), self, sizeof(self));
	if (child_pid() > 0)
		capeff(child_pid(), helper, sizeof(helper));
	printf("result=%d detail=%s self_capeff=%s helper_capeff=%s\n",
	    done_result, done_detail, self, helper);
	mesh_priv_shutdown();
	mesh_state_free(st);
	event_base_free(hvd.base);
	return done_result == 0 ? 0 : 1;
}
