/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libFuzzer target: every hv-agent procfs/sysfs parser over arbitrary
 * bytes; the first byte picks the parser, the rest is its buffer (libFuzzer
 * allocates it at its exact size, so ASan flags a read one byte past).
 *
 * A finding is any crash, UB or leak, and also a broken promise: a return
 * code outside the documented set, a refusal without "line N: ..." text, or
 * an accepted result that violates the parser's own bounds (an interface
 * name the kernel could not have, an unterminated or over-long string).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A line parser's refusal must say where. */
static void
check_refusal(int r, const char *err)
{
	if (r != -EINVAL || strncmp(err, "line ", 5) != 0 ||
	    strlen(err) >= PROCFS_ERR_MAX)
		abort();
}

static void
check_printable(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n == 0 || n == cap)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			abort();
}

static void
fuzz_stat(const char *buf, size_t len)
{
	struct procfs_stat st;
	int r = procfs_parse_stat(buf, len, &st);

	if (r == 0 && st.ncpu == 0)
		abort();
	if (r != 0)
		check_refusal(r, st.err);
}

static void
fuzz_loadavg(const char *buf, size_t len)
{
	struct procfs_loadavg la;
	int r = procfs_parse_loadavg(buf, len, &la);

	if (r != 0)
		check_refusal(r, la.err);
}

static void
fuzz_meminfo(const char *buf, size_t len)
{
	struct procfs_meminfo mi;
	int r = procfs_parse_meminfo(buf, len, &mi);

	if (r == 0 && (mi.total % 1024 != 0 || mi.available % 1024 != 0))
		abort();
	if (r != 0)
		check_refusal(r, mi.err);
}

static void
fuzz_net_dev(const char *buf, size_t len)
{
	static struct procfs_net_dev nd;
	int r = procfs_parse_net_dev(buf, len, &nd);

	if (r != 0) {
		check_refusal(r, nd.err);
		return;
	}
	if (nd.n > PROCFS_NETIF_MAX)
		abort();
	for (unsigned i = 0; i < nd.n; i++) {
		size_t n = strnlen(nd.ifs[i].name, IFNAMSIZ);

		if (n == IFNAMSIZ || !procfs_ifname_valid(nd.ifs[i].name, n))
			abort();
	}
}

static void
fuzz_cpuinfo(const char *buf, size_t len)
{
	struct procfs_cpuinfo ci;
	int r = procfs_parse_cpuinfo(buf, len, &ci);

	if (r == 0) {
		if (strnlen(ci.model, PROCFS_MODEL_MAX) == 0 ||
		    strnlen(ci.model, PROCFS_MODEL_MAX) == PROCFS_MODEL_MAX)
			abort();
	} else if (r == -ENOENT) {
		if (ci.err[0] == '\0')
			abort();
	} else {
		check_refusal(r, ci.err);
	}
}

static void
fuzz_mounts(const char *buf, size_t len)
{
	static struct procfs_mounts m;
	int r = procfs_parse_mounts(buf, len, &m);

	if (r != 0) {
		check_refusal(r, m.err);
		return;
	}
	if (m.n > PROCFS_MOUNT_MAX)
		abort();
	for (unsigned i = 0; i < m.n; i++) {
		if (m.m[i].dir[0] != '/' ||
		    strnlen(m.m[i].dir, PROCFS_MOUNT_DIR_MAX) ==
		    PROCFS_MOUNT_DIR_MAX ||
		    strnlen(m.m[i].type, sizeof(m.m[i].type)) ==
		    sizeof(m.m[i].type))
			abort();
		for (unsigned j = 0; j < i; j++)
			if (strcmp(m.m[i].dir, m.m[j].dir) == 0)
				abort();
	}
}

static void
fuzz_attrs(const char *buf, size_t len)
{
	char out[16];
	int64_t v;
	int r;

	r = procfs_parse_attr(buf, len, out, sizeof(out));
	if (r == 0)
		check_printable(out, sizeof(out));
	else if (r != -ENODATA && r != -EINVAL && r != -EOVERFLOW)
		abort();
	r = procfs_parse_attr_i64(buf, len, &v);
	if (r != 0 && r != -EINVAL && r != -ERANGE)
		abort();
	r = procfs_parse_vpd80(buf, len, out, sizeof(out));
	if (r == 0)
		check_printable(out, sizeof(out));
	else if (r != -ENODATA && r != -EINVAL && r != -EOVERFLOW)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static void (*const parsers[])(const char *, size_t) = {
		fuzz_stat, fuzz_loadavg, fuzz_meminfo, fuzz_net_dev,
		fuzz_cpuinfo, fuzz_mounts, fuzz_attrs,
	};

	if (size == 0)
		return 0;
	parsers[data[0] % (sizeof(parsers) / sizeof(*parsers))](
	    (const char *)data + 1, size - 1);
	return 0;
}
