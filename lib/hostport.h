/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * ADDR:PORT as text, one strict rule for every listener, dialer and config
 * line: "10.0.0.1:8471" or "[fd00::1]:8471".
 *
 * Pure: no lookups (a name is refused, never resolved), no allocation.
 *
 * Errors: 0, or -EINVAL with err (always terminated when errlen > 0) naming
 * the token that is wrong, e.g. "port '80x' is not in 0..65535" or
 * "'fd00::1:80': IPv6 address must be in brackets".  host and *port are
 * written on success; on failure host is "" except as stated for
 * HOSTPORT_ADDRESS.
 */
#ifndef HV_HOSTPORT_H
#define HV_HOSTPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Which rule the text broke, for a caller that words its own messages. */
enum hostport_fault {
	HOSTPORT_OK = 0,
	HOSTPORT_EMPTY,		/* "" */
	HOSTPORT_NO_PORT,	/* no ':' at all */
	HOSTPORT_BRACKET,	/* '[' not closed by "]:" */
	HOSTPORT_UNBRACKETED,	/* an IPv6 address without brackets */
	HOSTPORT_ADDRESS,	/* not a numeric address of its family */
	HOSTPORT_PORT,		/* port not a bare decimal in range, or junk */
	HOSTPORT_TOO_LONG,	/* a valid address that does not fit hostlen */
};

/*
 * "10.0.0.1:8471", "[fd00::1]:8471" -> host (numeric, without brackets)
 * and port.  Strict: IPv6 must be bracketed; the host must be a numeric
 * IPv4 or IPv6 address (no names); the port a decimal 0..65535 (or
 * 1..65535 when allow_zero is false) with no sign, space or leading
 * junk; nothing after it.  0, or -EINVAL with err naming what is wrong.
 *
 * host is IPv6 exactly when it contains ':'.
 */
int hostport_parse(const char *s, bool allow_zero, char *host, size_t hostlen,
    uint16_t *port, char *err, size_t errlen);

/*
 * The same, and *fault (never NULL) says which rule failed.  On
 * HOSTPORT_ADDRESS, host holds the rejected address text (without
 * brackets, cut to hostlen - 1) so the caller can quote it.
 */
int hostport_parse_fault(const char *s, bool allow_zero, char *host,
    size_t hostlen, uint16_t *port, enum hostport_fault *fault, char *err,
    size_t errlen);

#endif
