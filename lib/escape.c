/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * escape_text(): peer text made safe for a log line or a stored row (see
 * escape.h for the rule).  lib/log.c runs every formatted line through
 * escape_line() (the rule less the backslash) and hvd's store runs event
 * subjects and details through escape_text(), so no other file restates
 * the rule.
 *
 * Invariant: the output is printable ASCII only and fits the caller's
 * buffer, terminated.  Must never allocate: log.c calls it on
 * out-of-memory paths.
 */
#include "escape.h"

static bool
escape_keeps(unsigned char c, bool backslash)
{
	return c >= 0x20 && c < 0x7f && (backslash || c != '\\');
}

static size_t
escape_run(char *dst, size_t dstlen, const char *src, bool backslash)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)src;
	size_t need = 0, w = 0;
	bool full = dstlen == 0;

	for (; *s; s++) {
		size_t n = escape_keeps(*s, backslash) ? 1 : 4;

		/* Room for n more bytes and the NUL, or stop writing. */
		if (!full && w + n < dstlen) {
			if (n == 1) {
				dst[w++] = (char)*s;
			} else {
				dst[w++] = '\\';
				dst[w++] = 'x';
				dst[w++] = hex[*s >> 4];
				dst[w++] = hex[*s & 0xf];
			}
		} else {
			full = true;
		}
		need += n;
	}
	if (dstlen > 0)
		dst[w] = '\0';
	return need;
}

size_t
escape_text(char *dst, size_t dstlen, const char *src)
{
	return escape_run(dst, dstlen, src, false);
}

size_t
escape_line(char *dst, size_t dstlen, const char *src)
{
	return escape_run(dst, dstlen, src, true);
}

bool
escape_needed(const char *src)
{
	for (const unsigned char *s = (const unsigned char *)src; *s; s++)
		if (!escape_keeps(*s, false))
			return true;
	return false;
}
