/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Parsers for the kernel's text files the agent samples (/proc/stat,
 * loadavg, meminfo, net/dev, cpuinfo, self/mounts, sysfs attributes and the
 * SCSI serial VPD page), plus the bounded reads that feed them.
 *
 * Invariants: every procfs_parse_*() is a pure function over (buf, len): no
 * NUL terminator is assumed, nothing is allocated, no file or global is
 * touched, so each has a fuzz target.  They are strict: a line must end in
 * '\n', numbers are unsigned decimal without overflow, and a rejection
 * writes "line N: <what>" naming the token into out->err.
 *
 * Must never: follow a symlink in the last path component, read past the
 * caller's cap, or block on a FIFO planted in a test tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

/* A cursor over a buffer that is not NUL-terminated. */
struct scan {
	const char *p, *end;
	unsigned line;
	char *err;		/* PROCFS_ERR_MAX bytes */
};

static void
scan_init(struct scan *s, const char *buf, size_t len, char *err)
{
	s->p = buf;
	s->end = buf + len;
	s->line = 1;
	s->err = err;
	err[0] = '\0';
}

static int scan_fail(struct scan *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
scan_fail(struct scan *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(s->err, PROCFS_ERR_MAX, "line %u: ", s->line);
	if (n < 0 || n >= PROCFS_ERR_MAX)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(s->err + n, PROCFS_ERR_MAX - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

#define QUOTE_MAX	28

/*
 * The token at P (up to a blank or a newline, at most 20 bytes shown) in
 * quotes for an error message, or what stands there instead of a token.
 */
static const char *
quote(const char *p, const char *end, char out[QUOTE_MAX])
{
	size_t i, o = 0;

	if (p >= end)
		return "end of input";
	if (*p == '\n')
		return "end of line";
	if (*p == ' ' || *p == '\t')
		return "a blank";
	out[o++] = '\'';
	for (i = 0; p + i < end && p[i] != '\n' && p[i] != ' ' &&
	    p[i] != '\t'; i++) {
		if (i == 20) {
			out[o++] = '.';
			out[o++] = '.';
			break;
		}
		out[o++] = (p[i] > 0x20 && p[i] < 0x7f) ? p[i] : '?';
	}
	out[o++] = '\'';
	out[o] = '\0';
	return out;
}

static bool
scan_eof(const struct scan *s)
{
	return s->p >= s->end;
}

static size_t
scan_blanks(struct scan *s)
{
	const char *start = s->p;

	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t'))
		s->p++;
	return (size_t)(s->p - start);
}

/* At least one blank must separate two fields. */
static int
scan_sep(struct scan *s, const char *what)
{
	char q[QUOTE_MAX];

	if (scan_blanks(s) > 0)
		return 0;
	return scan_fail(s, "expected a blank before the %s, got %s", what,
	    quote(s->p, s->end, q));
}

/* Decimal digits, without looking at what follows them. */
static int
scan_num(struct scan *s, const char *what, uint64_t *out)
{
	const char *start = s->p;
	uint64_t v = 0;
	char q[QUOTE_MAX];

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
		unsigned d = (unsigned)(*s->p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return scan_fail(s, "the %s %s overflows 64 bits", what,
			    quote(start, s->end, q));
		v = v * 10 + d;
		s->p++;
	}
	if (s->p == start)
		return scan_fail(s, "expected a number for the %s, got %s",
		    what, quote(start, s->end, q));
	*out = v;
	return 0;
}

/* A whole field: digits followed by a blank, a newline or the end. */
static int
scan_u64(struct scan *s, const char *what, uint64_t *out)
{
	const char *start = s->p;
	char q[QUOTE_MAX];
	int r;

	if ((r = scan_num(s, what, out)) < 0)
		return r;
	/* "12ab" must not pass as 12 followed by junk the next step ignores. */
	if (s->p < s->end && *s->p != ' ' && *s->p != '\t' && *s->p != '\n')
		return scan_fail(s, "expected a number for the %s, got %s",
		    what, quote(start, s->end, q));
	return 0;
}

static int
scan_eol(struct scan *s)
{
	char q[QUOTE_MAX];

	if (scan_eof(s) || *s->p != '\n')
		return scan_fail(s, "expected end of line, got %s",
		    quote(s->p, s->end, q));
	s->p++;
	s->line++;
	return 0;
}

static bool
scan_lit(struct scan *s, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return false;
	s->p += n;
	return true;
}

/*
 * /proc/stat.  Only the leading cpu block is read: the "intr" line after it
 * can be tens of kilobytes on large hosts and the agent samples every
 * second, so that block must be followed by some "key ..." line, which is
 * how a buffer cut inside the block is told from a complete one.
 */
#define STAT_FIELDS_MIN	8	/* through steal (2.6.11) */
#define STAT_FIELDS_MAX	10	/* guest, guest_nice are inside user, nice */

/* The numbers of one cpu line, up to (not including) its newline. */
static int
stat_fields(struct scan *s, uint64_t *f, unsigned *nf)
{
	int r;

	*nf = 0;
	for (;;) {
		scan_blanks(s);
		if (scan_eof(s) || *s->p == '\n')
			break;
		if (*nf == STAT_FIELDS_MAX)
			return scan_fail(s, "more than %d cpu fields",
			    STAT_FIELDS_MAX);
		if ((r = scan_u64(s, "cpu field", &f[(*nf)++])) < 0)
			return r;
	}
	if (*nf < STAT_FIELDS_MIN)
		return scan_fail(s, "%u cpu fields, expected %d to %d", *nf,
		    STAT_FIELDS_MIN, STAT_FIELDS_MAX);
	return 0;
}

int
procfs_parse_stat(const char *buf, size_t len, struct procfs_stat *out)
{
	struct scan s;
	uint64_t f[STAT_FIELDS_MAX], idx, last = 0;
	unsigned nf, nf0;
	char q[QUOTE_MAX];
	const char *k;
	int r;

	scan_init(&s, buf, len, out->err);
	out->ncpu = 0;
	if (!scan_lit(&s, "cpu "))
		return scan_fail(&s, "expected the aggregate 'cpu' line, "
		    "got %s", quote(s.p, s.end, q));
	if ((r = stat_fields(&s, f, &nf0)) < 0 || (r = scan_eol(&s)) < 0)
		return r;
	out->user = f[0];
	out->nice = f[1];
	out->system = f[2];
	out->idle = f[3];
	out->iowait = f[4];
	out->irq = f[5];
	out->softirq = f[6];
	out->steal = f[7];
	while (s.end - s.p > 3 && memcmp(s.p, "cpu", 3) == 0 &&
	    s.p[3] >= '0' && s.p[3] <= '9') {
		s.p += 3;
		if ((r = scan_u64(&s, "cpu index", &idx)) < 0)
			return r;
		/* Offline CPUs leave gaps, but the order never goes back. */
		if (idx > 65535 || (out->ncpu > 0 && idx <= last))
			return scan_fail(&s, "cpu%llu out of order",
			    (unsigned long long)idx);
		last = idx;
		if ((r = stat_fields(&s, f, &nf)) < 0)
			return r;
		if (nf != nf0)
			return scan_fail(&s, "cpu%llu has %u fields, the "
			    "aggregate line %u", (unsigned long long)idx, nf,
			    nf0);
		if ((r = scan_eol(&s)) < 0)
			return r;
		out->ncpu++;
	}
	if (out->ncpu == 0)
		return scan_fail(&s, "expected cpu0 or another cpuN line, "
		    "got %s", quote(s.p, s.end, q));
	k = s.p;
	while (s.p < s.end && ((*s.p >= 'a' && *s.p <= 'z') || *s.p == '_'))
		s.p++;
	if (s.p == k || s.p == s.end || *s.p != ' ')
		return scan_fail(&s, "expected a key after the cpu lines, "
		    "got %s", quote(k, s.end, q));
	return 0;
}

/* "%lu.%02lu" exactly, as fs/proc/loadavg.c prints it, in hundredths. */
static int
loadavg_centi(struct scan *s, int i, uint32_t *out)
{
	const char *start = s->p;
	uint32_t v = 0;
	char q[QUOTE_MAX];

	/* Seven digits keep v * 100 inside 32 bits; no load gets near. */
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9' &&
	    s->p - start < 7)
		v = v * 10 + (uint32_t)(*s->p++ - '0');
	if (s->p == start || s->end - s->p < 3 || s->p[0] != '.' ||
	    s->p[1] < '0' || s->p[1] > '9' || s->p[2] < '0' || s->p[2] > '9' ||
	    (s->end - s->p > 3 && s->p[3] != ' '))
		return scan_fail(s, "expected load %d as N.NN, got %s", i + 1,
		    quote(start, s->end, q));
	*out = v * 100 + (uint32_t)(s->p[1] - '0') * 10 +
	    (uint32_t)(s->p[2] - '0');
	s->p += 3;
	return 0;
}

static int
loadavg_u32(struct scan *s, const char *what, uint32_t *out)
{
	uint64_t v = 0;
	int r;

	if ((r = scan_num(s, what, &v)) < 0)
		return r;
	if (v > UINT32_MAX)
		return scan_fail(s, "the %s %llu is too large", what,
		    (unsigned long long)v);
	*out = (uint32_t)v;
	return 0;
}

/* Exactly one of C after WHAT. */
static int
scan_char(struct scan *s, char c, const char *what)
{
	char q[QUOTE_MAX];

	if (scan_eof(s) || *s->p != c)
		return scan_fail(s, "expected '%c' after the %s, got %s", c,
		    what, quote(s->p, s->end, q));
	s->p++;
	return 0;
}

int
procfs_parse_loadavg(const char *buf, size_t len, struct procfs_loadavg *out)
{
	static const char *const loads[] = { "1-minute load", "5-minute load",
	    "15-minute load" };
	struct scan s;
	char q[QUOTE_MAX];
	int r;

	scan_init(&s, buf, len, out->err);
	for (int i = 0; i < 3; i++)
		if ((r = loadavg_centi(&s, i, &out->centi[i])) < 0 ||
		    (r = scan_char(&s, ' ', loads[i])) < 0)
			return r;
	if ((r = loadavg_u32(&s, "running count", &out->running)) < 0 ||
	    (r = scan_char(&s, '/', "running count")) < 0 ||
	    (r = loadavg_u32(&s, "task count", &out->total)) < 0 ||
	    (r = scan_char(&s, ' ', "task count")) < 0 ||
	    (r = loadavg_u32(&s, "last pid", &out->last_pid)) < 0 ||
	    (r = scan_eol(&s)) < 0)
		return r;
	if (!scan_eof(&s))
		return scan_fail(&s, "expected end of input, got %s",
		    quote(s.p, s.end, q));
	return 0;
}

/* Keys look like "MemTotal", "Active(anon)", "HugePages_Total". */
static bool
meminfo_keychar(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '(' || c == ')';
}

int
procfs_parse_meminfo(const char *buf, size_t len, struct procfs_meminfo *out)
{
	const struct {
		const char *key;
		uint64_t *dst;
	} want[] = {
		{ "MemTotal", &out->total },
		{ "MemFree", &out->free },
		{ "MemAvailable", &out->available },
		{ "Buffers", &out->buffers },
		{ "Cached", &out->cached },
		{ "SwapTotal", &out->swap_total },
		{ "SwapFree", &out->swap_free },
	};
	unsigned seen = 0;
	struct scan s;
	char q[QUOTE_MAX];
	int r;

	scan_init(&s, buf, len, out->err);
	while (!scan_eof(&s)) {
		const char *k = s.p;
		size_t klen, i;
		uint64_t v;
		bool kb;

		while (s.p < s.end && meminfo_keychar(*s.p))
			s.p++;
		klen = (size_t)(s.p - k);
		if (klen == 0 || klen > 32 || scan_eof(&s) || *s.p != ':')
			return scan_fail(&s, "expected 'Key:', got %s",
			    quote(k, s.end, q));
		s.p++;
		if ((r = scan_sep(&s, "value")) < 0 ||
		    (r = scan_u64(&s, "value", &v)) < 0)
			return r;
		kb = scan_lit(&s, " kB");
		for (i = 0; i < sizeof(want) / sizeof(*want); i++) {
			if (strlen(want[i].key) != klen ||
			    memcmp(want[i].key, k, klen) != 0)
				continue;
			if (seen & (1u << i))
				return scan_fail(&s, "%s repeated",
				    want[i].key);
			if (!kb)
				return scan_fail(&s, "%s is not in kB",
				    want[i].key);
			if (v > UINT64_MAX / 1024)
				return scan_fail(&s, "%s overflows",
				    want[i].key);
			seen |= 1u << i;
			*want[i].dst = v * 1024;
		}
		if ((r = scan_eol(&s)) < 0)
			return r;
	}
	for (size_t i = 0; i < sizeof(want) / sizeof(*want); i++)
		if (!(seen & (1u << i)))
			return scan_fail(&s, "no %s", want[i].key);
	return 0;
}

bool
procfs_ifname_valid(const char *s, size_t len)
{
	if (len == 0 || len >= IFNAMSIZ)
		return false;
	if (s[0] == '.' && (len == 1 || (len == 2 && s[1] == '.')))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '/' || s[i] == ':')
			return false;
	return true;
}

static const char net_dev_head1[] =
    "Inter-|   Receive                                                |  "
    "Transmit\n";
static const char net_dev_head2[] =
    " face |bytes    packets errs drop fifo frame compressed multicast|"
    "bytes    packets errs drop fifo colls carrier compressed\n";

static const char *const net_dev_cols[16] = {
	"rx bytes", "rx packets", "rx errs", "rx drop", "rx fifo", "rx frame",
	"rx compressed", "rx multicast",
	"tx bytes", "tx packets", "tx errs", "tx drop", "tx fifo", "tx colls",
	"tx carrier", "tx compressed",
};

int
procfs_parse_net_dev(const char *buf, size_t len, struct procfs_net_dev *out)
{
	struct scan s;
	char q[QUOTE_MAX];
	int r;

	scan_init(&s, buf, len, out->err);
	out->n = out->skipped = 0;
	/* The header names the 16 columns; a different one means a format
	 * this parser does not know. */
	if (!scan_lit(&s, net_dev_head1))
		return scan_fail(&s, "unknown first header line");
	s.line++;
	if (!scan_lit(&s, net_dev_head2))
		return scan_fail(&s, "unknown second header line");
	s.line++;
	while (!scan_eof(&s)) {
		uint64_t f[16];
		const char *name;
		size_t nlen;

		scan_blanks(&s);
		name = s.p;
		while (s.p < s.end && *s.p != ':' && *s.p != '\n' &&
		    *s.p != ' ' && s.p - name < IFNAMSIZ)
			s.p++;
		nlen = (size_t)(s.p - name);
		if (scan_eof(&s) || *s.p != ':')
			return scan_fail(&s, "expected 'NAME:', got %s",
			    quote(name, s.end, q));
		if (!procfs_ifname_valid(name, nlen))
			return scan_fail(&s, "%s is not an interface name",
			    quote(name, name + nlen, q));
		s.p++;
		for (int i = 0; i < 16; i++) {
			if ((r = scan_sep(&s, net_dev_cols[i])) < 0 ||
			    (r = scan_u64(&s, net_dev_cols[i], &f[i])) < 0)
				return r;
		}
		if ((r = scan_eol(&s)) < 0)
			return r;
		if (out->n == PROCFS_NETIF_MAX) {
			out->skipped++;
			continue;
		}
		{
			struct procfs_netif *ifp = &out->ifs[out->n++];

			memcpy(ifp->name, name, nlen);
			ifp->name[nlen] = '\0';
			ifp->rx_bytes = f[0];
			ifp->rx_packets = f[1];
			ifp->rx_errs = f[2];
			ifp->rx_drop = f[3];
			ifp->tx_bytes = f[8];
			ifp->tx_packets = f[9];
			ifp->tx_errs = f[10];
			ifp->tx_drop = f[11];
		}
	}
	return 0;
}

int
procfs_parse_cpuinfo(const char *buf, size_t len, struct procfs_cpuinfo *out)
{
	bool found = false;
	struct scan s;
	char q[QUOTE_MAX];

	scan_init(&s, buf, len, out->err);
	out->model[0] = '\0';
	if (scan_eof(&s))
		return scan_fail(&s, "expected a processor block, got end of "
		    "input");
	/* The first block ends at an empty line (or the end of the file). */
	while (!scan_eof(&s) && *s.p != '\n') {
		const char *k = s.p, *kend, *v, *vend, *nl;

		nl = memchr(s.p, '\n', (size_t)(s.end - s.p));
		if (nl == NULL)
			return scan_fail(&s, "expected end of line, got end of "
			    "input");
		while (s.p < nl && *s.p != ':')
			s.p++;
		if (s.p == nl)
			return scan_fail(&s, "expected 'key: value', got %s",
			    quote(k, nl, q));
		kend = s.p;
		while (kend > k && (kend[-1] == '\t' || kend[-1] == ' '))
			kend--;
		if (kend == k)
			return scan_fail(&s, "expected a key before ':'");
		v = s.p + 1;
		while (v < nl && (*v == ' ' || *v == '\t'))
			v++;
		vend = nl;
		while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
			vend--;
		/* The model becomes a JSON string: ASCII only. */
		for (const char *c = k; c < nl; c++)
			if (((unsigned char)*c < 0x20 && *c != '\t') ||
			    (unsigned char)*c >= 0x7f)
				return scan_fail(&s, "control or non-ASCII "
				    "byte in line");
		if (!found && (size_t)(kend - k) == 10 &&
		    memcmp(k, "model name", 10) == 0) {
			if ((size_t)(vend - v) >= sizeof(out->model))
				return scan_fail(&s, "model name longer than "
				    "%zu bytes", sizeof(out->model) - 1);
			memcpy(out->model, v, (size_t)(vend - v));
			out->model[vend - v] = '\0';
			found = true;
		}
		s.p = nl + 1;
		s.line++;
	}
	if (!found || out->model[0] == '\0') {
		snprintf(out->err, PROCFS_ERR_MAX, "no 'model name' in the "
		    "first processor block");
		return -ENOENT;
	}
	return 0;
}

/*
 * Kinds of filesystems telemetry leaves out: no disk behind them, or a
 * statvfs that can block the agent's loop for as long as a server is away.
 */
static const char *const mounts_skip[] = {
	"autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs",
	"debugfs", "devpts", "devtmpfs", "efivarfs", "fusectl", "hugetlbfs",
	"mqueue", "nsfs", "overlay", "proc", "pstore", "ramfs", "rootfs",
	"rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs", "tmpfs",
	"tracefs", "xenfs",
	"9p", "afs", "ceph", "cifs", "glusterfs", "ncpfs", "nfs", "nfs4",
	"smb3", "smbfs", "sshfs",
};

static bool
mounts_wanted(const char *dir, const char *type)
{
	if (strcmp(dir, "/") == 0)
		return true;
	/* fuse.* is any userspace daemon; fuseblk is a local disk (ntfs-3g). */
	if (strcmp(type, "fuse") == 0 || strncmp(type, "fuse.", 5) == 0)
		return false;
	for (size_t i = 0; i < sizeof(mounts_skip) / sizeof(*mounts_skip); i++)
		if (strcmp(type, mounts_skip[i]) == 0)
			return false;
	return true;
}

/* One field up to a blank; NUL and control bytes other than tab refused. */
static int
mounts_field(struct scan *s, const char *what, const char **f, size_t *flen)
{
	char q[QUOTE_MAX];

	*f = s->p;
	while (s->p < s->end && *s->p != ' ' && *s->p != '\n') {
		if ((unsigned char)*s->p < 0x20 && *s->p != '\t')
			return scan_fail(s, "control character in %s", what);
		s->p++;
	}
	*flen = (size_t)(s->p - *f);
	if (*flen == 0)
		return scan_fail(s, "expected the %s, got %s", what,
		    quote(s->p, s->end, q));
	return 0;
}

/* The kernel escapes ' ', '\t', '\n' and '\\' in paths as \ooo. */
static int
mounts_unescape(struct scan *s, const char *f, size_t flen, char *out,
    size_t outlen, bool *fits)
{
	char q[QUOTE_MAX];
	size_t o = 0;

	*fits = true;
	for (size_t i = 0; i < flen; i++) {
		char c = f[i];

		if (c == '\\') {
			unsigned v = 0;

			for (int j = 1; j <= 3; j++) {
				if (i + (size_t)j >= flen || f[i + j] < '0' ||
				    f[i + j] > '7')
					return scan_fail(s, "expected \\ooo in "
					    "the mount point, got %s",
					    quote(f + i, f + flen, q));
				v = v * 8 + (unsigned)(f[i + j] - '0');
			}
			if (v == 0 || v > 0377)
				return scan_fail(s, "escape \\%.3s out of "
				    "range", f + i + 1);
			c = (char)v;
			i += 3;
		}
		if (o + 1 >= outlen)
			*fits = false;
		else
			out[o++] = c;
	}
	if (outlen > 0)
		out[o] = '\0';
	return 0;
}

int
procfs_parse_mounts(const char *buf, size_t len, struct procfs_mounts *out)
{
	char q[QUOTE_MAX];
	struct scan s;
	int r;

	scan_init(&s, buf, len, out->err);
	out->n = out->skipped = 0;
	while (!scan_eof(&s)) {
		const char *f[6];
		size_t fl[6];
		char dir[PROCFS_MOUNT_DIR_MAX], type[32];
		uint64_t num;
		bool fits;
		unsigned i;

		for (i = 0; i < 4; i++) {
			static const char *const names[] = { "source",
			    "mount point", "type", "options" };

			if ((r = mounts_field(&s, names[i], &f[i],
			    &fl[i])) < 0 ||
			    (r = scan_char(&s, ' ', names[i])) < 0)
				return r;
		}
		if ((r = scan_u64(&s, "dump", &num)) < 0 ||
		    (r = scan_char(&s, ' ', "dump")) < 0 ||
		    (r = scan_u64(&s, "pass", &num)) < 0)
			return r;
		if (f[1][0] != '/')
			return scan_fail(&s, "expected an absolute mount "
			    "point, got %s", quote(f[1], f[1] + fl[1], q));
		if (fl[2] >= sizeof(type))
			return scan_fail(&s, "type longer than %zu bytes",
			    sizeof(type) - 1);
		memcpy(type, f[2], fl[2]);
		type[fl[2]] = '\0';
		if ((r = mounts_unescape(&s, f[1], fl[1], dir, sizeof(dir),
		    &fits)) < 0 || (r = scan_eol(&s)) < 0)
			return r;
		if (!mounts_wanted(dir, type))
			continue;
		if (!fits) {
			out->skipped++;
			continue;
		}
		/* A later mount on the same directory hides the earlier one. */
		for (i = 0; i < out->n; i++)
			if (strcmp(out->m[i].dir, dir) == 0)
				break;
		if (i == out->n) {
			if (out->n == PROCFS_MOUNT_MAX) {
				out->skipped++;
				continue;
			}
			out->n++;
		}
		memcpy(out->m[i].dir, dir, strlen(dir) + 1);
		memcpy(out->m[i].type, type, strlen(type) + 1);
	}
	return 0;
}

/* Trims blanks and newlines at both ends of [*b, *e). */
static void
attr_trim(const char **b, const char **e)
{
	while (*b < *e && (**b == ' ' || **b == '\t' || **b == '\n'))
		(*b)++;
	while (*e > *b && ((*e)[-1] == ' ' || (*e)[-1] == '\t' ||
	    (*e)[-1] == '\n'))
		(*e)--;
}

int
procfs_parse_attr(const char *buf, size_t len, char *out, size_t outlen)
{
	const char *b = buf, *e = buf + len;

	attr_trim(&b, &e);
	if (b == e)
		return -ENODATA;
	for (const char *c = b; c < e; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			return -EINVAL;
	if ((size_t)(e - b) >= outlen)
		return -EOVERFLOW;
	memcpy(out, b, (size_t)(e - b));
	out[e - b] = '\0';
	return 0;
}

int
procfs_parse_attr_i64(const char *buf, size_t len, int64_t *out)
{
	const char *b = buf, *e = buf + len;
	bool neg = false;
	uint64_t v = 0;

	attr_trim(&b, &e);
	if (b < e && *b == '-') {
		neg = true;
		b++;
	}
	if (b == e)
		return -EINVAL;
	for (; b < e; b++) {
		if (*b < '0' || *b > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(*b - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*b - '0');
	}
	if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
		return -ERANGE;
	/* -(INT64_MAX + 1) without overflowing on the way there. */
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

int
procfs_parse_vpd80(const char *buf, size_t len, char *out, size_t outlen)
{
	const unsigned char *u = (const unsigned char *)buf;
	const char *b, *e;
	size_t plen;

	/* SPC: device type, page code, big-endian page length, then data. */
	if (len < 4 || u[1] != 0x80)
		return -EINVAL;
	plen = (size_t)u[2] << 8 | u[3];
	if (4 + plen != len)
		return -EINVAL;
	b = buf + 4;
	e = buf + len;
	/* Drives pad the serial with blanks or NULs, on either side. */
	while (b < e && (*b == ' ' || *b == '\0'))
		b++;
	while (e > b && (e[-1] == ' ' || e[-1] == '\0'))
		e--;
	if (b == e)
		return -ENODATA;
	for (const char *c = b; c < e; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			return -EINVAL;
	if ((size_t)(e - b) >= outlen)
		return -EOVERFLOW;
	memcpy(out, b, (size_t)(e - b));
	out[e - b] = '\0';
	return 0;
}

/* A relative path without ".." components, so DIRFD bounds the read. */
static bool
path_beneath(const char *path)
{
	const char *c = path;

	if (path[0] == '\0' || path[0] == '/')
		return false;
	while (*c) {
		if (c[0] == '.' && c[1] == '.' && (c[2] == '/' || c[2] == '\0'))
			return false;
		c = strchr(c, '/');
		if (c == NULL)
			break;
		c++;
	}
	return true;
}

int
procfs_open(int dirfd, const char *path)
{
	struct stat st;
	int fd;

	if (!path_beneath(path))
		return -EINVAL;
	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
	    O_NONBLOCK | O_NOCTTY);
	if (fd == -1)
		return -errno;
	if (fstat(fd, &st) == -1) {
		int e = errno;

		close(fd);
		return -e;
	}
	/* procfs and sysfs files are regular; anything else is a mistake. */
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

int
procfs_pread(int fd, char *buf, size_t cap, size_t *len)
{
	size_t got = 0;
	ssize_t n;
	char extra;

	/* procfs hands out a page or so per read; loop until EOF or CAP. */
	while (got < cap) {
		n = pread(fd, buf + got, cap - got, (off_t)got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	*len = got;
	if (got < cap)
		return 0;
	do
		n = pread(fd, &extra, 1, (off_t)got);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -errno;
	return n > 0 ? -EFBIG : 0;
}

int
procfs_read(int dirfd, const char *path, char *buf, size_t cap, size_t *len)
{
	int fd, r;

	if ((fd = procfs_open(dirfd, path)) < 0)
		return fd;
	r = procfs_pread(fd, buf, cap, len);
	close(fd);
	return r;
}
