/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * tls_names.c: the strings hvctl's TLS trust reads (tls_trust.c): an
 * https URL's host:port, a key pin, a known-hosts line.  Pure functions,
 * no I/O; fuzz_tls_names drives them.
 */
#include <errno.h>
#include <string.h>

#include "hvctl.h"
#include "tls_pin.h"

#define PIN_PREFIX	"sha256//"

bool
url_is_https(const char *url)
{
	return url != NULL && strncmp(url, "https://", 8) == 0;
}

/* "host:port" of an https URL (brackets kept), into OUT. */
int
url_hostport(const char *url, char *out, size_t len)
{
	const char *p, *end;
	size_t n;

	if (!url_is_https(url))
		return -EINVAL;
	p = url + 8;
	end = p + strcspn(p, "/?#");
	n = (size_t)(end - p);
	/* Names, IPv4, [IPv6] and a port: nothing that could split a
	 * known-hosts line or hide a user ("@"). */
	if (n == 0 || n >= len || strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789.-_:[]%") < n)
		return -EINVAL;
	memcpy(out, p, n);
	out[n] = '\0';
	/* The default port, spelled out, so one host has one entry. */
	if (strrchr(out, ':') == NULL || (out[0] == '[' &&
	    strrchr(out, ']') > strrchr(out, ':'))) {
		if (n + 4 >= len)
			return -EINVAL;
		strcat(out, ":443");
	}
	return 0;
}

bool
tls_pin_valid(const char *pin)
{
	size_t n;

	if (pin == NULL || strncmp(pin, PIN_PREFIX, 8) != 0)
		return false;
	n = strlen(pin + 8);
	return n == TLS_PIN_LEN - 8 && strspn(pin + 8, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/=") == n;
}

int
known_hosts_line(char *line, const char **hostport, const char **pin)
{
	char *sp;

	line[strcspn(line, "\r\n")] = '\0';
	if (line[0] == '#' || (sp = strchr(line, ' ')) == NULL || sp == line)
		return -EINVAL;
	*sp = '\0';
	if (strchr(line, '/') != NULL || !tls_pin_valid(sp + 1))
		return -EINVAL;
	*hostport = line;
	*pin = sp + 1;
	return 0;
}
