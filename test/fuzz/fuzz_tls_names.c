/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libFuzzer target: the strings hvctl's TLS trust reads (cli/tls_names.c):
 * the host:port of an https URL (what names a known-hosts entry), a key
 * pin, and a known-hosts line, from a file anyone with the user's rights
 * may have edited.
 *
 * The first byte picks the function (mod 3); the rest is the text, cut at
 * its first NUL.  Whatever url_hostport() accepts fits its buffer, is
 * NUL-terminated, has a port and no byte that could split a known-hosts
 * line; whatever known_hosts_line() accepts has a valid pin and a host
 * without a space or '/', and is a part of the line it was given.
 */
#include <stdlib.h>
#include <string.h>

#include "hvctl.h"
#include "tls_pin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, out[64];
	const char *hp, *pin;

	if (size < 1 || (s = malloc(size)) == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 3) {
	case 0:
		memset(out, 'x', sizeof(out));
		if (url_hostport(s, out, sizeof(out)) == 0) {
			size_t n = strnlen(out, sizeof(out));

			if (n == sizeof(out) || n == 0 ||
			    strpbrk(out, " \t\r\n/@") != NULL ||
			    strrchr(out, ':') == NULL || !url_is_https(s))
				abort();
		}
		break;
	case 1:
		if (tls_pin_valid(s) && (strlen(s) != TLS_PIN_LEN ||
		    strncmp(s, "sha256//", 8) != 0))
			abort();
		break;
	default:
		if (known_hosts_line(s, &hp, &pin) == 0) {
			if (!tls_pin_valid(pin) || hp[0] == '\0' ||
			    strpbrk(hp, " /") != NULL || hp < s ||
			    pin <= hp || pin > s + size)
				abort();
		}
		break;
	}
	free(s);
	return 0;
}
