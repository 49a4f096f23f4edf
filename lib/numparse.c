/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Strict decimal and octal parsing on top of strtoull.
 *
 * strtoull alone accepts leading space, a sign, and wraps negative input;
 * every one of those is rejected here before it is called.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "numparse.h"

static int
parse_unsigned(const char *s, int base, uint64_t min, uint64_t max,
    uint64_t *out)
{
	char *end = NULL;
	unsigned long long v;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, base);
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int
parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	return parse_unsigned(s, 10, min, max, out);
}

int
parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v;
	int r;

	if ((r = parse_unsigned(s, 10, min, max, &v)) < 0)
		return r;
	*out = (uint32_t)v;
	return 0;
}

int
parse_mode(const char *s, unsigned *out)
{
	uint64_t v;
	int r;

	if ((r = parse_unsigned(s, 8, 0, 0777, &v)) < 0)
		return r;
	*out = (unsigned)v;
	return 0;
}
