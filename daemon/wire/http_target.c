/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The request target as libmicrohttpd 0.9.75 parses it, seen through two
 * of its hooks, as pure functions over its buffer: the URI log callback
 * gets the raw target (its length, its query arguments, a raw NUL in it)
 * before the query is split, and the unescape callback every %XX
 * sequence.  A query with too many arguments is cut before libmicrohttpd
 * splits it: otherwise its memory pool runs out and the request gets no
 * answer.  net/http_edge.c refuses what these found (fuzzed:
 * test/fuzz/fuzz_http.c).
 *
 * Must never: read outside the request line, or decode %00 into a NUL.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "wire.h"

/* The request whose line libmicrohttpd is parsing (one thread). */
static struct http_target *http_target_parsing;

void
http_target_scan(struct http_target *e, char *target)
{
	size_t len = strlen(target);
	char *q;

	memset(e, 0, sizeof(*e));
	http_target_parsing = e;
	e->target_len = len;
	/*
	 * libmicrohttpd has cut the request line after the target (a NUL
	 * where the space before the version was).  What follows this
	 * string's end is therefore the version ("HTTP/1.1"); anything else
	 * means the target itself held a raw NUL and continues after it.
	 */
	if (strncmp(target + len + 1, "HTTP/", 5) != 0)
		e->nul = true;
	if ((q = strchr(target, '?')) != NULL) {
		e->nargs = 1;
		for (const char *c = q + 1; *c; c++)
			if (*c == '&')
				e->nargs++;
	}
	if (q && (len > HTTP_TARGET_MAX || e->nargs > HTTP_ARGS_MAX)) {
		/* libmicrohttpd splits the query after this hook returns:
		 * leave it nothing to split.  The request is refused. */
		q[1] = '\0';
		e->args_cut = true;
	}
}

void
http_target_done(const struct http_target *e)
{
	if (http_target_parsing == e)
		http_target_parsing = NULL;
}

static int
http_target_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* %XX decoding in place, as libmicrohttpd's own; %00 is left encoded and
 * marks the request, which is then refused. */
size_t
http_target_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	char *r = s, *w = s;

	(void)cls;
	(void)conn;
	while (*r) {
		int hi, lo;

		if (r[0] == '%' && (hi = http_target_hex((unsigned char)r[1])) >= 0 &&
		    (lo = http_target_hex((unsigned char)r[2])) >= 0) {
			if (hi == 0 && lo == 0) {
				if (http_target_parsing)
					http_target_parsing->nul = true;
				*w++ = *r++;
				continue;
			}
			*w++ = (char)(hi * 16 + lo);
			r += 3;
			continue;
		}
		*w++ = *r++;
	}
	*w = '\0';
	return (size_t)(w - s);
}
