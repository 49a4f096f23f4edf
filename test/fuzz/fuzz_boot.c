/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libFuzzer target: what HTTP boot parses from a client — the stage-2
 * query (key=value pairs, as libmicrohttpd hands them over) and Range
 * headers — and the template renderer.  A value the query parser accepts
 * must be safe to put into an iPXE script.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == '$' || *s == '{' ||
		    *s == '}' || (unsigned char)*s > 0x7e)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[512], err[256], *out = NULL, *eq, *p;
	struct boot_query q = { 0 };
	uint64_t off, len, fsize;
	static const char *const vars[] = { "hvd", "http://h", "host", "x",
	    NULL };

	if (size < 1 || size >= sizeof(buf))
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0:
		/* "k=v&k=v..." as the query iterator would deliver it. */
		for (p = strtok(buf, "&"); p; p = strtok(NULL, "&")) {
			if ((eq = strchr(p, '=')) != NULL)
				*eq++ = '\0';
			if (boot_query_set(&q, p, eq, err, sizeof(err)) < 0 &&
			    err[0] == '\0')
				abort();
		}
		check_safe(q.mac);
		check_safe(q.uuid);
		check_safe(q.serial);
		check_safe(q.product);
		check_safe(q.buildarch);
		break;
	case 1:
		fsize = size * 1000003ull;
		if (boot_range_parse(buf, fsize, &off, &len) == 0 &&
		    (len == 0 || off >= fsize || len > fsize - off))
			abort();
		break;
	case 2:
		if (boot_render(buf, vars, &out, err, sizeof(err)) == 0 &&
		    out == NULL)
			abort();
		free(out);
		break;
	}
	return 0;
}
