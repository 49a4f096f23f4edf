/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libFuzzer target: the request target as hvd reads it from
 * libmicrohttpd's buffer (wire/http_target.c).  The input is laid out as
 * libmicrohttpd leaves a request line after splitting it: the raw target,
 * a NUL where the space before the version was, then the version.  What
 * the scan reports must match what is really there (a NUL inside the
 * target, its length, its arguments), a cut query must leave nothing to
 * parse, and unescaping must never produce a NUL or grow the string; the
 * decoded arguments then go through the boot query parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[HTTP_TARGET_MAX * 2 + 16], err[256], *q, *p, *eq;
	struct boot_query bq = { 0 };
	struct http_target t;
	bool has_nul;
	size_t n;

	if (size > HTTP_TARGET_MAX * 2)
		return 0;
	memcpy(line, data, size);
	memcpy(line + size, "\0HTTP/1.1\0\0", 11);
	has_nul = memchr(data, '\0', size) != NULL;
	http_target_scan(&t, line);
	/* The scan sees a raw NUL whenever there is one (a NUL followed by
	 * "HTTP/" inside the input itself is the one thing it cannot tell). */
	if (has_nul != t.nul && !(has_nul && memmem(data, size, "\0HTTP/", 6)))
		abort();
	if (!has_nul && t.target_len != size)
		abort();
	if (t.args_cut && (q = strchr(line, '?')) != NULL && q[1] != '\0')
		abort();
	if ((q = strchr(line, '?')) == NULL) {
		http_target_done(&t);
		return 0;
	}
	for (p = strtok(q + 1, "&"); p; p = strtok(NULL, "&")) {
		size_t before = strlen(p);

		if ((eq = strchr(p, '=')) != NULL)
			*eq++ = '\0';
		n = http_target_unescape(NULL, NULL, p);
		if (n != strlen(p) || n > before)
			abort();
		if (eq) {
			n = http_target_unescape(NULL, NULL, eq);
			if (n != strlen(eq))
				abort();
		}
		if (boot_query_set(&bq, p, eq, err, sizeof(err)) < 0 &&
		    err[0] == '\0')
			abort();
	}
	http_target_done(&t);
	return 0;
}
