/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The overlay request path and the host fingerprint.
 *
 * Alpine's initramfs fetches apkovl=http://hvd/ovl/{UUID}/{MAC}.apkovl.tar.gz
 * after replacing {UUID} with the SMBIOS UUID (empty when the machine has
 * none) and {MAC} with /sys/class/net/IF/address.  ovl_path_parse() is a
 * strict pure function over that path (fuzzed by fuzz_ovl): what it accepts
 * is canonical, so one machine always maps to one fingerprint.
 *
 * Must never: percent-decode (a '%' is rejected, so "%2e%2e" cannot become
 * ".."), accept a path with anything after the suffix, or echo the client's
 * bytes into err.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "apkovl.h"

#define OVL_PREFIX	"/ovl/"
#define OVL_SUFFIX	".apkovl.tar.gz"
#define OVL_PATH_MAX	128	/* a valid path is at most 73 bytes */

static int
ovl_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static bool
ovl_hex(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int
ovl_error(char *err, size_t errlen, const char *msg)
{
	snprintf(err, errlen, "%s", msg);
	return -EINVAL;
}

/* s[0..n): 8-4-4-4-12 hex digits, either case. */
static bool
ovl_uuid(const char *s, size_t n, char out[37])
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		int c = ovl_lower((unsigned char)s[i]);

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!ovl_hex(c)) {
			return false;
		}
		out[i] = (char)c;
	}
	out[36] = '\0';
	return true;
}

/* s[0..n): six hex octets separated by one kind of ':' or '-'. */
static bool
ovl_mac(const char *s, size_t n, char out[18])
{
	int lo;

	if (n != 17)
		return false;
	for (size_t i = 0; i < 17; i++) {
		int c = ovl_lower((unsigned char)s[i]);

		if (i % 3 == 2) {
			if ((c != ':' && c != '-') || c != s[2])
				return false;
			out[i] = ':';
		} else {
			if (!ovl_hex(c))
				return false;
			out[i] = (char)c;
		}
	}
	out[17] = '\0';
	/* A NIC's own address is unicast and not all-zero. */
	lo = out[1] <= '9' ? out[1] - '0' : out[1] - 'a' + 10;
	if (lo & 1)
		return false;
	return strcmp(out, "00:00:00:00:00:00") != 0;
}

int
ovl_path_parse(const char *path, char uuid[37], char mac[18], char *err,
    size_t errlen)
{
	const char *p, *slash, *dot;
	size_t n;

	uuid[0] = '\0';
	mac[0] = '\0';
	n = strnlen(path, OVL_PATH_MAX + 1);
	if (n > OVL_PATH_MAX)
		return ovl_error(err, errlen, "overlay path too long");
	if (strpbrk(path, "%?#\\") != NULL)
		return ovl_error(err, errlen, "overlay path holds '%', '?', '#' "
		    "or '\\'");
	if (strncmp(path, OVL_PREFIX, strlen(OVL_PREFIX)) != 0)
		return ovl_error(err, errlen, "overlay path must start with /ovl/");
	p = path + strlen(OVL_PREFIX);
	if ((slash = strchr(p, '/')) == NULL)
		return ovl_error(err, errlen, "overlay path must be "
		    "/ovl/<uuid>/<mac>.apkovl.tar.gz");
	if (slash != p && !ovl_uuid(p, (size_t)(slash - p), uuid)) {
		uuid[0] = '\0';
		return ovl_error(err, errlen, "overlay path: uuid must be 8-4-4-4-12 "
		    "hex digits or empty");
	}
	p = slash + 1;
	if (strchr(p, '/') != NULL) {
		uuid[0] = '\0';
		return ovl_error(err, errlen, "overlay path: extra '/' after the uuid");
	}
	n = strlen(p);
	if (n < strlen(OVL_SUFFIX) ||
	    strcmp(p + n - strlen(OVL_SUFFIX), OVL_SUFFIX) != 0) {
		uuid[0] = '\0';
		return ovl_error(err, errlen, "overlay path must end in "
		    ".apkovl.tar.gz");
	}
	dot = p + n - strlen(OVL_SUFFIX);
	if (!ovl_mac(p, (size_t)(dot - p), mac)) {
		uuid[0] = '\0';
		mac[0] = '\0';
		return ovl_error(err, errlen, "overlay path: mac must be six hex "
		    "octets like 52:54:00:12:34:56 (unicast, not zero)");
	}
	return 0;
}

/* Feeds s to the hash lowercased, '-' as ':' when mac is set. */
static void
fp_update(crypto_generichash_state *st, const char *s, bool mac)
{
	unsigned char buf[64];
	size_t n = 0;

	for (; *s; s++) {
		int c = ovl_lower((unsigned char)*s);

		buf[n++] = (unsigned char)(mac && c == '-' ? ':' : c);
		if (n == sizeof(buf)) {
			crypto_generichash_update(st, buf, n);
			n = 0;
		}
	}
	crypto_generichash_update(st, buf, n);
}

void
host_fingerprint(const char *uuid, const char *mac, char out[HOST_FP_HEX])
{
	static const char tag[] = "hv-fp-v1\n";
	crypto_generichash_state st;
	unsigned char h[32];

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const unsigned char *)tag,
	    sizeof(tag) - 1);
	fp_update(&st, uuid, false);
	crypto_generichash_update(&st, (const unsigned char *)"\n", 1);
	fp_update(&st, mac, true);
	crypto_generichash_final(&st, h, sizeof(h));
	sodium_bin2hex(out, HOST_FP_HEX, h, sizeof(h));
}
