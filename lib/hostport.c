/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * ADDR:PORT splitting and checking (see hostport.h).
 *
 * Invariants: the address is checked with inet_pton, so only numeric
 * addresses pass and the result needs no further validation; the port goes
 * through parse_u32, so a sign, a space, an empty port or anything after
 * the digits is refused.  Must never resolve a name: hvd parses its config
 * before the event loop and must not block on DNS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hostport.h"
#include "numparse.h"

static int hp_fail(enum hostport_fault *fault, enum hostport_fault f,
    char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
hp_fail(enum hostport_fault *fault, enum hostport_fault f, char *err,
    size_t errlen, const char *fmt, ...)
{
	va_list ap;

	*fault = f;
	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Whether s[0..len) is a numeric address of family af. */
static bool
hp_numeric(int af, const char *s, size_t len)
{
	unsigned char bin[sizeof(struct in6_addr)];
	char a[INET6_ADDRSTRLEN];

	if (len >= sizeof(a))
		return false;
	memcpy(a, s, len);
	a[len] = '\0';
	return inet_pton(af, a, bin) == 1;
}

/*
 * A second colon without brackets: either an IPv6 address someone forgot
 * to bracket ("fd00::1:80", "fd00::1") or junk after an IPv4 port.
 */
static bool
hp_unbracketed_v6(const char *s)
{
	const char *last = strrchr(s, ':');

	return hp_numeric(AF_INET6, s, strlen(s)) ||
	    hp_numeric(AF_INET6, s, (size_t)(last - s));
}

int
hostport_parse_fault(const char *s, bool allow_zero, char *host,
    size_t hostlen, uint16_t *port, enum hostport_fault *fault, char *err,
    size_t errlen)
{
	const char *h, *p;
	size_t hlen;
	uint32_t v;
	int af;

	if (hostlen > 0)
		host[0] = '\0';
	if (s == NULL || s[0] == '\0')
		return hp_fail(fault, HOSTPORT_EMPTY, err, errlen,
		    "empty value; expected ADDR:PORT or [IPV6]:PORT");
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return hp_fail(fault, HOSTPORT_BRACKET, err, errlen,
			    "'%s' is not [IPV6]:PORT", s);
		af = AF_INET6;
		h = s + 1;
		hlen = (size_t)(close - h);
		p = close + 2;
	} else {
		const char *colon = strchr(s, ':');

		if (colon == NULL)
			return hp_fail(fault, HOSTPORT_NO_PORT, err, errlen,
			    "'%s' has no :PORT", s);
		if (strchr(colon + 1, ':') != NULL && hp_unbracketed_v6(s))
			return hp_fail(fault, HOSTPORT_UNBRACKETED, err, errlen,
			    "'%s': IPv6 address must be in brackets", s);
		af = AF_INET;
		h = s;
		hlen = (size_t)(colon - h);
		p = colon + 1;
	}
	if (!hp_numeric(af, h, hlen)) {
		if (hostlen > 0) {
			size_t n = hlen < hostlen ? hlen : hostlen - 1;

			memcpy(host, h, n);
			host[n] = '\0';
		}
		return hp_fail(fault, HOSTPORT_ADDRESS, err, errlen,
		    "'%.*s' is not a numeric %s address (names are not "
		    "resolved)", hlen > 255 ? 255 : (int)hlen, h,
		    af == AF_INET ? "IPv4" : "IPv6");
	}
	if (parse_u32(p, allow_zero ? 0 : 1, 65535, &v) < 0)
		return hp_fail(fault, HOSTPORT_PORT, err, errlen,
		    "port '%s' is not in %u..65535", p, allow_zero ? 0u : 1u);
	if (hlen >= hostlen)
		return hp_fail(fault, HOSTPORT_TOO_LONG, err, errlen,
		    "address '%.*s' is longer than %zu bytes", (int)hlen, h,
		    hostlen > 0 ? hostlen - 1 : 0);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)v;
	*fault = HOSTPORT_OK;
	return 0;
}

int
hostport_parse(const char *s, bool allow_zero, char *host, size_t hostlen,
    uint16_t *port, char *err, size_t errlen)
{
	enum hostport_fault fault;

	return hostport_parse_fault(s, allow_zero, host, hostlen, port, &fault,
	    err, errlen);
}
