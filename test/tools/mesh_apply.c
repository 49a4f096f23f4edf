/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * mesh_apply: applies a mesh state file (lib/mesh.h's JSON form) with the
 * same applier hvd and hv-agent use, and prints what it did as one line of
 * JSON per apply:
 *   {"links_added":1,...,"fdb_unchanged":0,"ms":1.234}
 * plus "error":"..." when the apply failed.  A test and bench tool, never
 * installed.
 *
 *   mesh_apply [-r REPEAT] FILE.json      (FILE "-" reads stdin)
 *
 * Exit 0: every apply succeeded.  1: an apply failed.  2: usage, or the
 * file cannot be read or parsed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mesh.h"

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	size_t cap = 65536, n = 0, k;
	char *buf = NULL, *nb;

	if (f == NULL)
		return NULL;
	for (;;) {
		if ((nb = realloc(buf, cap)) == NULL)
			goto fail;
		buf = nb;
		k = fread(buf + n, 1, cap - n, f);
		n += k;
		if (n < cap)
			break;
		if (cap > MESH_JSON_MAX)
			goto fail;
		cap *= 2;
	}
	if (ferror(f))
		goto fail;
	if (f != stdin)
		fclose(f);
	*len = n;
	return buf;
fail:
	free(buf);
	if (f != stdin)
		fclose(f);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct mesh_state *st = NULL;
	struct mesh_applier *ma = NULL;
	struct mesh_stats s;
	struct timespec t0, t1;
	char err[512];
	unsigned repeat = 1;
	size_t len = 0;
	char *buf;
	int ch, rc = 0;

	while ((ch = getopt(argc, argv, "r:")) != -1) {
		switch (ch) {
		case 'r':
			repeat = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1 || repeat < 1 || repeat > 10000)
		goto usage;
	log_init(true, getenv("MESH_DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN,
	    "mesh_apply");
	if ((buf = slurp(argv[optind], &len)) == NULL) {
		fprintf(stderr, "mesh_apply: %s: %s\n", argv[optind],
		    strerror(errno ? errno : EIO));
		return 2;
	}
	if (mesh_state_parse(buf, len, &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "mesh_apply: %s: %s\n", argv[optind], err);
		free(buf);
		return 2;
	}
	free(buf);
	if (mesh_applier_new(&ma, err, sizeof(err)) < 0) {
		fprintf(stderr, "mesh_apply: %s\n", err);
		mesh_state_free(st);
		return 2;
	}
	for (unsigned i = 0; i < repeat; i++) {
		json_t *j;
		char *out;
		int r;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = mesh_apply(ma, st, &s, err, sizeof(err));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if ((j = mesh_stats_to_json(&s)) == NULL)
			return 2;
		json_object_set_new(j, "ms", json_real(
		    (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6));
		if (r < 0) {
			json_object_set_new(j, "error", json_string(err));
			rc = 1;
		}
		out = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER |
		    JSON_REAL_PRECISION(6));
		printf("%s\n", out ? out : "{}");
		free(out);
		json_decref(j);
	}
	mesh_applier_free(ma);
	mesh_state_free(st);
	return rc;
usage:
	fprintf(stderr, "usage: mesh_apply [-r REPEAT] FILE.json\n");
	return 2;
}
