/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libFuzzer target: the overlay path parser and the overlay builder's
 * validation.
 *
 * First byte even: the rest is a request path.  What ovl_path_parse()
 * accepts must be canonical (lowercase uuid or "", aa:bb:cc:dd:ee:ff mac),
 * rebuild to a path that parses to the same values, and fingerprint to 64
 * hex digits; a rejection must say why.
 *
 * First byte odd: the rest, split at NUL bytes, fills the overlay's string
 * inputs.  apkovl_build() must either reject them with a message or
 * produce a gzip stream, and no input may make it crash or leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apkovl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_canonical(const char *uuid, const char *mac)
{
	size_t n = strlen(uuid);

	if (n != 0 && n != 36)
		abort();
	for (size_t i = 0; i < n; i++)
		if (!(i == 8 || i == 13 || i == 18 || i == 23 ?
		    uuid[i] == '-' : strchr("0123456789abcdef", uuid[i]) != NULL))
			abort();
	if (strlen(mac) != 17)
		abort();
	for (size_t i = 0; i < 17; i++)
		if (!(i % 3 == 2 ? mac[i] == ':' :
		    strchr("0123456789abcdef", mac[i]) != NULL))
			abort();
}

static void
fuzz_path(const char *path)
{
	char uuid[37], mac[18], uuid2[37], mac2[18], again[128], err[256] = "";
	char fp[HOST_FP_HEX];

	if (ovl_path_parse(path, uuid, mac, err, sizeof(err)) < 0) {
		if (err[0] == '\0' || uuid[0] != '\0' || mac[0] != '\0')
			abort();
		return;
	}
	if (strpbrk(path, "%?#") != NULL)
		abort();
	check_canonical(uuid, mac);
	snprintf(again, sizeof(again), "/ovl/%s/%s.apkovl.tar.gz", uuid, mac);
	if (ovl_path_parse(again, uuid2, mac2, err, sizeof(err)) < 0 ||
	    strcmp(uuid, uuid2) != 0 || strcmp(mac, mac2) != 0)
		abort();
	host_fingerprint(uuid, mac, fp);
	if (strlen(fp) != 64 || strspn(fp, "0123456789abcdef") != 64)
		abort();
}

static void
fuzz_build(const char *buf, size_t len)
{
	static const char key[] = "00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff";
	const char *f[12] = { 0 };
	const char *world[3] = { 0 };
	struct apkovl_mount m[2];
	struct apkovl_input in;
	unsigned char *out = NULL;
	size_t n = 0, olen = 0;
	char err[256] = "";
	int r;

	/* Fields are the NUL-separated strings of buf, missing ones NULL. */
	for (size_t off = 0; off < len && n < sizeof(f) / sizeof(*f); n++) {
		f[n] = buf + off;
		off += strlen(buf + off) + 1;
	}
	memset(m, 0, sizeof(m));
	for (size_t i = 0; i < 2; i++) {
		snprintf(m[i].source, sizeof(m[i].source), "%s",
		    f[8 + i] ? f[8 + i] : "LABEL=data");
		snprintf(m[i].path, sizeof(m[i].path), "%s",
		    f[10 + i] ? f[10 + i] : "/srv/data");
		snprintf(m[i].fstype, sizeof(m[i].fstype), "ext4");
		snprintf(m[i].options, sizeof(m[i].options), "defaults");
	}
	world[0] = f[6];
	world[1] = f[6] ? f[7] : NULL;
	in = (struct apkovl_input){
		.discovery = f[5] == NULL,
		.hostname = f[0] ? f[0] : "h1",
		.boot_if = f[1] ? f[1] : "eth0",
		.hvd_url = f[2] ? f[2] : "http://10.0.0.1",
		.hvd_agent = f[3] ? f[3] : "10.0.0.1:8471",
		.hvd_key_hex = key,
		.agent_key_hex = f[5] ? key : NULL,
		.boot_token = f[5],
		.mesh_json = f[4],
		.ssh_keys = f[4],
		.mounts = m,
		.nmounts = (size_t)(len % 3),
		.world = world,
		.mtime = 0,
	};
	r = apkovl_build(&in, &out, &olen, err, sizeof(err));
	if (r < 0 && (err[0] == '\0' || out != NULL))
		abort();
	if (r == 0 && (out == NULL || olen < 18 || out[0] != 0x1f ||
	    out[1] != 0x8b))
		abort();
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf;

	if (size < 1 || size > 4096)
		return 0;
	if ((buf = malloc(size)) == NULL)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	if (data[0] % 2 == 0)
		fuzz_path(buf);
	else
		fuzz_build(buf, size - 1);
	free(buf);
	return 0;
}
