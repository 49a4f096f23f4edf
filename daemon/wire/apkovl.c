/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The per-host APKOVL (DESIGN section 4): the tar.gz Alpine's initramfs
 * unpacks over its RAM root before switching to it, built in memory with
 * libarchive for one boot of one host.
 *
 * Invariants: the same input gives the same bytes (entries sorted by path,
 * so every directory comes before its contents; uid/gid 0 root/root;
 * explicit modes; one fixed mtime; no timestamp in the gzip header).  Every
 * input is validated before anything is built, and a value that ends up on
 * one line of a file can hold no newline or control character, so no input
 * can add a line or a file the overlay did not mean to have.
 *
 * Must never: log (the overlay carries the agent's private key and its
 * single-use boot token), leave a copy of those in freed memory (every
 * buffer that held them is wiped), or put a key or token in a discovery
 * overlay.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include <archive.h>
#include <archive_entry.h>
#include <sodium.h>

#include "apkovl.h"
#include "numparse.h"

#define OVL_URL_MAX	200
#define OVL_COMP_MAX	64	/* one mount path component */
#define OVL_MTIME_MAX	077777777777LL	/* ustar's 11 octal digits */

/* A growing byte buffer whose old copies are wiped, not just freed. */
struct sbuf {
	char *p;
	size_t len, cap;
	bool failed;
};

struct ovl_entry {
	char path[160];
	unsigned type;		/* AE_IFREG, AE_IFDIR, AE_IFLNK */
	unsigned mode;
	struct sbuf data;	/* file contents or symlink target */
};

struct ovl {
	struct ovl_entry *e;
	size_t n, cap;
	bool failed;
};

static const char *const base_world[] = { "alpine-base", "hv-agent", "xen",
    "xen-hypervisor" };

/*
 * Runlevels.  sysinit and boot are what Alpine's initramfs adds by default
 * (plus networking, which setup-alpine puts in boot); modloop mounts the
 * kernel modules and must be there for any NIC driver to load.  default
 * runs Xen's daemons and the agent; localmount joins boot when the overlay
 * has an fstab.
 */
static const char *const rl_sysinit[] = { "devfs", "dmesg", "mdev",
    "hwdrivers", "modloop", NULL };
static const char *const rl_boot[] = { "modules", "sysctl", "hostname",
    "bootmisc", "syslog", "networking", NULL };
static const char *const rl_default[] = { "xenstored", "xenconsoled",
    "hv-agent", NULL };
static const char *const rl_shutdown[] = { "killprocs", "mount-ro",
    "savecache", NULL };

/* Top-level (and /var) directories a mount may not sit under: system
 * trees, and the symlinks and special modes the overlay would clobber. */
static const char *const mount_denied[] = { "bin", "boot", "dev", "etc",
    "lib", "proc", "root", "run", "sbin", "sys", "tmp", "usr", "var/empty",
    "var/lock", "var/mail", "var/run", "var/tmp", NULL };

static int
ovl_err(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
ovl_err(char *err, size_t errlen, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return r;
}

static void
sbuf_dispose(struct sbuf *b)
{
	if (b->p != NULL) {
		sodium_memzero(b->p, b->cap);
		free(b->p);
	}
	memset(b, 0, sizeof(*b));
}

static bool
sbuf_reserve(struct sbuf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->failed)
		return false;
	if (b->cap - b->len > more)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap - b->len <= more) {
		if (cap > SIZE_MAX / 2)
			return !(b->failed = true);
		cap *= 2;
	}
	if ((p = malloc(cap)) == NULL)
		return !(b->failed = true);
	if (b->p != NULL) {
		memcpy(p, b->p, b->len);
		sodium_memzero(b->p, b->cap);
		free(b->p);
	}
	b->p = p;
	b->cap = cap;
	b->p[b->len] = '\0';
	return true;
}

static void
sbuf_add(struct sbuf *b, const void *data, size_t n)
{
	if (!sbuf_reserve(b, n))
		return;
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sbuf_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (!sbuf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* --- validation ---------------------------------------------------- */

/* Every byte of s in the set, 1..max bytes. */
static bool
only(const char *s, const char *set, size_t max)
{
	size_t n = strnlen(s, max + 1);

	return n >= 1 && n <= max && strspn(s, set) == n;
}

#define LOWER	"abcdefghijklmnopqrstuvwxyz"
#define UPPER	"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define DIGIT	"0123456789"
#define HEXLC	"0123456789abcdef"

static bool
is_hex64(const char *s)
{
	return s != NULL && strlen(s) == 64 && strspn(s, HEXLC) == 64;
}

/* What agent/conf.c accepts for "hvd": ADDR:PORT, numeric, [v6]:PORT. */
static bool
valid_agent_addr(const char *v)
{
	const char *colon;
	char host[64];
	unsigned char sa[16];
	uint32_t port;
	size_t hlen;
	int af = AF_INET;

	if (v == NULL || strnlen(v, 80) >= 80 || (colon = strrchr(v, ':')) == NULL)
		return false;
	hlen = (size_t)(colon - v);
	if (v[0] == '[' && hlen >= 2 && v[hlen - 1] == ']') {
		v++;
		hlen -= 2;
		af = AF_INET6;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return false;
	memcpy(host, v, hlen);
	host[hlen] = '\0';
	return inet_pton(af, host, sa) == 1 &&
	    parse_u32(colon + 1, 1, 65535, &port) == 0;
}

static bool
valid_url(const char *u)
{
	const char *rest;

	if (u == NULL)
		return false;
	if (strncmp(u, "http://", 7) == 0)
		rest = u + 7;
	else if (strncmp(u, "https://", 8) == 0)
		rest = u + 8;
	else
		return false;
	return only(rest, LOWER UPPER DIGIT ".:/[]_~-", OVL_URL_MAX) &&
	    rest[0] != '/' && rest[strlen(rest) - 1] != '/';
}

/* Printable ASCII lines, tabs allowed; at most APKOVL_TEXT_MAX bytes. */
static bool
valid_text(const char *s)
{
	size_t n = strnlen(s, APKOVL_TEXT_MAX + 1);

	if (n > APKOVL_TEXT_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\n' && c != '\t') || c > 0x7e)
			return false;
	}
	return true;
}

/* A field of a fixed-size array: NUL-terminated inside it. */
static bool
terminated(const char *f, size_t size)
{
	return memchr(f, '\0', size) != NULL;
}

/* "/a/b/c": components [A-Za-z0-9._-], not "." or "..", none denied. */
static bool
valid_mount_path(const char *p)
{
	const char *c, *end;

	if (p[0] != '/' || p[1] == '\0' || p[strlen(p) - 1] == '/' ||
	    !only(p, LOWER UPPER DIGIT "._-/", sizeof(((struct apkovl_mount *)0)->path) - 1))
		return false;
	for (c = p + 1; *c; c = *end ? end + 1 : end) {
		size_t n;

		end = strchrnul(c, '/');
		n = (size_t)(end - c);
		if (n == 0 || n > OVL_COMP_MAX || (n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
	}
	for (size_t i = 0; mount_denied[i]; i++) {
		size_t n = strlen(mount_denied[i]);

		if (strncmp(p + 1, mount_denied[i], n) == 0 &&
		    (p[1 + n] == '\0' || p[1 + n] == '/'))
			return false;
	}
	return true;
}

static int
check_mount(const struct apkovl_mount *m, size_t i, char *err, size_t errlen)
{
	const char *v;

	if (!terminated(m->source, sizeof(m->source)) ||
	    !terminated(m->path, sizeof(m->path)) ||
	    !terminated(m->fstype, sizeof(m->fstype)) ||
	    !terminated(m->options, sizeof(m->options)))
		return ovl_err(err, errlen, -EINVAL, "mount %zu: a field is not "
		    "NUL-terminated", i);
	if (strncmp(m->source, "UUID=", 5) == 0) {
		v = m->source + 5;
		if (!only(v, DIGIT "abcdefABCDEF-", 64))
			return ovl_err(err, errlen, -EINVAL, "mount %zu: source "
			    "UUID= must be hex digits and '-'", i);
	} else if (strncmp(m->source, "LABEL=", 6) == 0) {
		v = m->source + 6;
		if (!only(v, LOWER UPPER DIGIT "._-", 64))
			return ovl_err(err, errlen, -EINVAL, "mount %zu: source "
			    "LABEL= must be 1..64 of [A-Za-z0-9._-]", i);
	} else {
		return ovl_err(err, errlen, -EINVAL, "mount %zu: source must be "
		    "UUID=... or LABEL=...", i);
	}
	if (!valid_mount_path(m->path))
		return ovl_err(err, errlen, -EINVAL, "mount %zu: path must be "
		    "absolute and normalized, components of [A-Za-z0-9._-], not "
		    "under a system directory (/etc, /root, /var/run, ...)", i);
	if (!only(m->fstype, LOWER DIGIT, sizeof(m->fstype) - 1))
		return ovl_err(err, errlen, -EINVAL, "mount %zu: fstype must be "
		    "[a-z0-9]", i);
	if (!only(m->options, LOWER UPPER DIGIT ",=._-", sizeof(m->options) - 1))
		return ovl_err(err, errlen, -EINVAL, "mount %zu: options must be "
		    "[A-Za-z0-9,=._-]", i);
	return 0;
}

static int
check_input(const struct apkovl_input *in, char *err, size_t errlen)
{
	size_t i;

	if (in->hostname == NULL || in->hostname[0] < 'a' || in->hostname[0] > 'z' ||
	    !only(in->hostname, LOWER DIGIT "-", 63))
		return ovl_err(err, errlen, -EINVAL, "hostname must be 1..63 of "
		    "[a-z0-9-], starting with a letter");
	if (in->boot_if == NULL || !only(in->boot_if, LOWER UPPER DIGIT "._-", 15) ||
	    strcmp(in->boot_if, ".") == 0 || strcmp(in->boot_if, "..") == 0)
		return ovl_err(err, errlen, -EINVAL, "boot_if must be an interface "
		    "name (1..15 of [A-Za-z0-9._-])");
	if (!valid_url(in->hvd_url))
		return ovl_err(err, errlen, -EINVAL, "hvd_url must be http[s]://"
		    "host[:port][/path] without a trailing '/'");
	if (!valid_agent_addr(in->hvd_agent))
		return ovl_err(err, errlen, -EINVAL, "hvd_agent must be a numeric "
		    "ADDR:PORT or [ADDR6]:PORT");
	if (!is_hex64(in->hvd_key_hex))
		return ovl_err(err, errlen, -EINVAL, "hvd_key_hex must be 64 "
		    "lowercase hex digits");
	if (in->discovery) {
		if (in->agent_key_hex != NULL || in->boot_token != NULL)
			return ovl_err(err, errlen, -EINVAL, "a discovery overlay "
			    "takes no agent key and no boot token");
		if (in->discovery_query != NULL &&
		    (strlen(in->discovery_query) > 96 ||
		    strspn(in->discovery_query, "0123456789abcdef:=&-muid") !=
		    strlen(in->discovery_query)))
			return ovl_err(err, errlen, -EINVAL, "discovery_query may "
			    "hold only mac=, uuid= and lowercase hex");
	} else {
		if (in->discovery_query != NULL)
			return ovl_err(err, errlen, -EINVAL, "discovery_query is for "
			    "discovery overlays only");
		if (!is_hex64(in->agent_key_hex))
			return ovl_err(err, errlen, -EINVAL, "agent_key_hex must be "
			    "64 lowercase hex digits");
		if (in->boot_token == NULL || strlen(in->boot_token) != 68 ||
		    strncmp(in->boot_token, "hvb_", 4) != 0 ||
		    strspn(in->boot_token + 4, HEXLC) != 64)
			return ovl_err(err, errlen, -EINVAL, "boot_token must be hvb_ "
			    "and 64 lowercase hex digits");
	}
	if (in->mesh_json != NULL &&
	    strnlen(in->mesh_json, APKOVL_TEXT_MAX + 1) > APKOVL_TEXT_MAX)
		return ovl_err(err, errlen, -EINVAL, "mesh_json is longer than %d "
		    "bytes", APKOVL_TEXT_MAX);
	if (in->ssh_keys != NULL && !valid_text(in->ssh_keys))
		return ovl_err(err, errlen, -EINVAL, "ssh_keys must be at most %d "
		    "bytes of printable ASCII lines", APKOVL_TEXT_MAX);
	if (in->nmounts > APKOVL_MOUNTS_MAX || (in->nmounts && in->mounts == NULL))
		return ovl_err(err, errlen, -EINVAL, "at most %d mounts",
		    APKOVL_MOUNTS_MAX);
	for (i = 0; i < in->nmounts; i++) {
		int r = check_mount(&in->mounts[i], i, err, errlen);

		if (r < 0)
			return r;
		for (size_t j = 0; j < i; j++)
			if (strcmp(in->mounts[i].path, in->mounts[j].path) == 0)
				return ovl_err(err, errlen, -EINVAL, "mounts %zu and "
				    "%zu share a mount point", j, i);
	}
	for (i = 0; in->world != NULL && in->world[i] != NULL; i++) {
		const char *w = in->world[i];

		if (i == APKOVL_WORLD_MAX)
			return ovl_err(err, errlen, -EINVAL, "at most %d world "
			    "packages", APKOVL_WORLD_MAX);
		if (!only(w, LOWER UPPER DIGIT "._+-", 64) ||
		    strchr(LOWER UPPER DIGIT, w[0]) == NULL)
			return ovl_err(err, errlen, -EINVAL, "world package %zu must "
			    "be 1..64 of [A-Za-z0-9._+-], starting alphanumeric", i);
	}
	if (in->napk_keys > APKOVL_KEYS_MAX || (in->napk_keys &&
	    in->apk_keys == NULL))
		return ovl_err(err, errlen, -EINVAL, "at most %d apk keys",
		    APKOVL_KEYS_MAX);
	for (i = 0; i < in->napk_keys; i++) {
		const struct apkovl_key *k = &in->apk_keys[i];
		const char *why = apkovl_key_check(k);

		if (why != NULL)
			return ovl_err(err, errlen, -EINVAL, "apk key %zu: %s", i,
			    why);
		for (size_t j = 0; j < i; j++)
			if (strcmp(k->name, in->apk_keys[j].name) == 0)
				return ovl_err(err, errlen, -EINVAL, "apk key %s "
				    "twice", k->name);
	}
	if (in->mtime < 0 || in->mtime > OVL_MTIME_MAX)
		return ovl_err(err, errlen, -EINVAL, "mtime out of range");
	return 0;
}

const char *
apkovl_key_check(const struct apkovl_key *k)
{
	size_t n = strnlen(k->name, sizeof(k->name));

	if (n < 9 || n == sizeof(k->name) ||
	    !only(k->name, LOWER UPPER DIGIT "._@+-", sizeof(k->name) - 1) ||
	    k->name[0] == '.' || strcmp(k->name + n - 8, ".rsa.pub") != 0)
		return "its name must be [A-Za-z0-9._@+-], not starting with "
		    "'.', ending in .rsa.pub, at most 63 bytes";
	if (k->pem == NULL || strnlen(k->pem, APKOVL_KEY_MAX + 1) >
	    APKOVL_KEY_MAX ||
	    strncmp(k->pem, "-----BEGIN PUBLIC KEY-----\n", 27) != 0 ||
	    !valid_text(k->pem))
		return "not a PEM public key of at most 16384 bytes";
	return NULL;
}

/* --- entries ------------------------------------------------------- */

static struct ovl_entry *
ovl_add(struct ovl *o, unsigned type, unsigned mode, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static struct ovl_entry *
ovl_add(struct ovl *o, unsigned type, unsigned mode, const char *fmt, ...)
{
	struct ovl_entry *e;
	va_list ap;
	int n;

	if (o->failed)
		return NULL;
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;

		if ((e = reallocarray(o->e, cap, sizeof(*e))) == NULL) {
			o->failed = true;
			return NULL;
		}
		o->e = e;
		o->cap = cap;
	}
	e = &o->e[o->n];
	memset(e, 0, sizeof(*e));
	va_start(ap, fmt);
	n = vsnprintf(e->path, sizeof(e->path), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(e->path)) {
		o->failed = true;
		return NULL;
	}
	e->type = type;
	e->mode = mode;
	o->n++;
	return e;
}

static void
ovl_file(struct ovl *o, unsigned mode, const char *path, const char *data)
{
	struct ovl_entry *e = ovl_add(o, AE_IFREG, mode, "%s", path);

	if (e != NULL && data != NULL)
		sbuf_add(&e->data, data, strlen(data));
}

static void
ovl_dir(struct ovl *o, unsigned mode, const char *path)
{
	ovl_add(o, AE_IFDIR, mode, "%s", path);
}

static void
ovl_runlevel(struct ovl *o, const char *level, const char *const *svcs)
{
	ovl_add(o, AE_IFDIR, 0755, "etc/runlevels/%s", level);
	for (; *svcs; svcs++) {
		struct ovl_entry *e = ovl_add(o, AE_IFLNK, 0777,
		    "etc/runlevels/%s/%s", level, *svcs);

		if (e != NULL)
			sbuf_printf(&e->data, "/etc/init.d/%s", *svcs);
	}
}

static void
ovl_dispose(struct ovl *o)
{
	for (size_t i = 0; i < o->n; i++)
		sbuf_dispose(&o->e[i].data);
	free(o->e);
	memset(o, 0, sizeof(*o));
}

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ovl_entry *)a)->path,
	    ((const struct ovl_entry *)b)->path);
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The mount point and every directory above it, all 0755 (the paths
 * that would need another mode are refused by valid_mount_path). */
static void
ovl_mount_dirs(struct ovl *o, const char *path)
{
	char buf[sizeof(((struct apkovl_mount *)0)->path)];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path + 1);
	for (p = buf; p != NULL; p = strchr(p + 1, '/')) {
		char save = *p;

		if (p == buf)
			continue;
		*p = '\0';
		ovl_dir(o, 0755, buf);
		*p = save;
	}
	ovl_dir(o, 0755, buf);
}

static void
ovl_world(struct ovl *o, const struct apkovl_input *in)
{
	const char *list[APKOVL_WORLD_MAX + 4];
	struct ovl_entry *e;
	size_t n = 0;

	for (size_t i = 0; i < sizeof(base_world) / sizeof(*base_world); i++)
		list[n++] = base_world[i];
	for (size_t i = 0; in->world != NULL && in->world[i] != NULL; i++)
		list[n++] = in->world[i];
	qsort(list, n, sizeof(*list), str_cmp);
	if ((e = ovl_add(o, AE_IFREG, 0644, "etc/apk/world")) == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || strcmp(list[i], list[i - 1]) != 0)
			sbuf_printf(&e->data, "%s\n", list[i]);
}

static void
ovl_agent_conf(struct ovl *o, const struct apkovl_input *in)
{
	struct ovl_entry *e;

	/* 0600: it holds the boot token. */
	if ((e = ovl_add(o, AE_IFREG, 0600, "etc/hv/agent.conf")) == NULL)
		return;
	if (in->discovery) {
		/* The agent reports facts and waits; once adopted it reboots
		 * into the host's own overlay. */
		sbuf_printf(&e->data, "# discovery overlay: no credentials\n"
		    "hvd %s\nhvd-key %s\nhost %s\ndiscovery-url %s/boot/discover"
		    "%s%s\ndiscovery-reboot yes\n", in->hvd_agent,
		    in->hvd_key_hex, in->hostname, in->hvd_url,
		    in->discovery_query ? "?" : "",
		    in->discovery_query ? in->discovery_query : "");
		return;
	}
	sbuf_printf(&e->data, "# written by hvd for this boot of %s\n"
	    "hvd %s\nhvd-key %s\nhost %s\nkey-file /etc/hv/agent.key\n"
	    "boot-token %s\n", in->hostname, in->hvd_agent, in->hvd_key_hex,
	    in->hostname, in->boot_token);
	if ((e = ovl_add(o, AE_IFREG, 0600, "etc/hv/agent.key")) != NULL)
		sbuf_printf(&e->data, "%s\n", in->agent_key_hex);
}

static void
ovl_collect(struct ovl *o, const struct apkovl_input *in)
{
	struct ovl_entry *e;

	ovl_dir(o, 0755, "etc");
	ovl_dir(o, 0755, "etc/apk");
	ovl_dir(o, 0755, "etc/hv");
	ovl_dir(o, 0755, "etc/network");
	ovl_dir(o, 0755, "etc/runlevels");

	/*
	 * Alpine's initramfs, having unpacked an overlay, adds its default
	 * boot services (devfs, mdev, modloop, hostname, ... and the shutdown
	 * ones) only when this marker exists, then deletes it; without it the
	 * overlay's runlevels are taken as they are.  The overlay lists those
	 * services itself too (rc_add is idempotent), so the host comes up the
	 * same with or without the marker, and still gets whatever a later
	 * Alpine adds to its defaults.
	 */
	ovl_file(o, 0644, "etc/.default_boot_services", NULL);

	if ((e = ovl_add(o, AE_IFREG, 0644, "etc/hostname")) != NULL)
		sbuf_printf(&e->data, "%s\n", in->hostname);
	if ((e = ovl_add(o, AE_IFREG, 0644, "etc/hosts")) != NULL)
		sbuf_printf(&e->data, "127.0.0.1\tlocalhost localhost.localdomain"
		    " %s\n::1\t\tlocalhost localhost.localdomain\n", in->hostname);
	/* hvd's full DHCP answers by client MAC; the hostname option only
	 * names the lease. */
	if ((e = ovl_add(o, AE_IFREG, 0644, "etc/network/interfaces")) != NULL)
		sbuf_printf(&e->data, "auto lo\niface lo inet loopback\n\n"
		    "auto %s\niface %s inet dhcp\n\thostname %s\n", in->boot_if,
		    in->boot_if, in->hostname);
	if ((e = ovl_add(o, AE_IFREG, 0644, "etc/apk/repositories")) != NULL) {
		sbuf_printf(&e->data, "%s/alpine/main\n%s/alpine/community\n",
		    in->hvd_url, in->hvd_url);
		if (in->napk_keys > 0)
			sbuf_printf(&e->data, "%s/alpine/hypervisor\n", in->hvd_url);
	}
	if (in->napk_keys > 0)
		ovl_dir(o, 0755, "etc/apk/keys");
	for (size_t i = 0; i < in->napk_keys; i++)
		if ((e = ovl_add(o, AE_IFREG, 0644, "etc/apk/keys/%s",
		    in->apk_keys[i].name)) != NULL)
			sbuf_add(&e->data, in->apk_keys[i].pem,
			    strlen(in->apk_keys[i].pem));
	ovl_world(o, in);

	ovl_runlevel(o, "sysinit", rl_sysinit);
	ovl_runlevel(o, "boot", rl_boot);
	ovl_runlevel(o, "default", rl_default);
	ovl_runlevel(o, "shutdown", rl_shutdown);

	ovl_agent_conf(o, in);
	if (in->mesh_json != NULL)
		ovl_file(o, 0644, "etc/hv/mesh.json", in->mesh_json);

	if (in->nmounts > 0) {
		if ((e = ovl_add(o, AE_IFLNK, 0777, "etc/runlevels/boot/localmount"))
		    != NULL)
			sbuf_printf(&e->data, "/etc/init.d/localmount");
		/* Pass 0: the diskless boot runs no fsck service. */
		if ((e = ovl_add(o, AE_IFREG, 0644, "etc/fstab")) != NULL)
			for (size_t i = 0; i < in->nmounts; i++)
				sbuf_printf(&e->data, "%s\t%s\t%s\t%s\t0 0\n",
				    in->mounts[i].source, in->mounts[i].path,
				    in->mounts[i].fstype, in->mounts[i].options);
		for (size_t i = 0; i < in->nmounts; i++)
			ovl_mount_dirs(o, in->mounts[i].path);
	}

	if (in->ssh_keys != NULL && in->ssh_keys[0] != '\0') {
		size_t n = strlen(in->ssh_keys);

		ovl_dir(o, 0700, "root");
		ovl_dir(o, 0700, "root/.ssh");
		if ((e = ovl_add(o, AE_IFREG, 0600, "root/.ssh/authorized_keys"))
		    != NULL) {
			sbuf_add(&e->data, in->ssh_keys, n);
			if (in->ssh_keys[n - 1] != '\n')
				sbuf_add(&e->data, "\n", 1);
		}
	}
}

/* Sorts, merges repeated directories, and refuses any other repeat. */
static int
ovl_finish(struct ovl *o, char *err, size_t errlen)
{
	size_t i, k = 0;

	qsort(o->e, o->n, sizeof(*o->e), entry_cmp);
	for (i = 0; i < o->n; i++) {
		if (k > 0 && strcmp(o->e[i].path, o->e[k - 1].path) == 0) {
			if (o->e[i].type != AE_IFDIR || o->e[k - 1].type != AE_IFDIR ||
			    o->e[i].mode != o->e[k - 1].mode)
				return ovl_err(err, errlen, -EINVAL, "overlay entry "
				    "%s given twice", o->e[i].path);
			sbuf_dispose(&o->e[i].data);
			continue;
		}
		if (k != i)
			o->e[k] = o->e[i];
		k++;
	}
	o->n = k;
	return 0;
}

/* --- archive ------------------------------------------------------- */

static la_ssize_t
ovl_write_cb(struct archive *a, void *arg, const void *buf, size_t n)
{
	struct sbuf *out = arg;

	sbuf_add(out, buf, n);
	if (out->failed) {
		archive_set_error(a, ENOMEM, "out of memory");
		return -1;
	}
	return (la_ssize_t)n;
}

static int
ovl_archive(const struct ovl *o, int64_t mtime, struct sbuf *out, char *err,
    size_t errlen)
{
	struct archive *a = NULL;
	struct archive_entry *ae = NULL;
	int r = -EIO;

	if ((a = archive_write_new()) == NULL ||
	    (ae = archive_entry_new()) == NULL) {
		r = ovl_err(err, errlen, -ENOMEM, "overlay: out of memory");
		goto out;
	}
	/* "!timestamp": no build time in the gzip header.  One byte in the
	 * last block: no padding of the gzip stream to 10240 bytes. */
	if (archive_write_set_format_ustar(a) != ARCHIVE_OK ||
	    archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
	    archive_write_set_filter_option(a, "gzip", "timestamp", NULL) !=
	    ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open(a, out, NULL, ovl_write_cb, NULL) !=
	    ARCHIVE_OK)
		goto fail;
	for (size_t i = 0; i < o->n; i++) {
		const struct ovl_entry *e = &o->e[i];

		archive_entry_clear(ae);
		archive_entry_set_pathname(ae, e->path);
		archive_entry_set_filetype(ae, e->type);
		archive_entry_set_perm(ae, e->mode);
		archive_entry_set_uid(ae, 0);
		archive_entry_set_gid(ae, 0);
		archive_entry_set_uname(ae, "root");
		archive_entry_set_gname(ae, "root");
		archive_entry_set_mtime(ae, mtime, 0);
		if (e->type == AE_IFLNK)
			archive_entry_set_symlink(ae, e->data.p);
		archive_entry_set_size(ae, e->type == AE_IFREG ?
		    (la_int64_t)e->data.len : 0);
		if (archive_write_header(a, ae) != ARCHIVE_OK)
			goto fail;
		if (e->type == AE_IFREG && e->data.len > 0 &&
		    archive_write_data(a, e->data.p, e->data.len) !=
		    (la_ssize_t)e->data.len)
			goto fail;
	}
	if (archive_write_close(a) != ARCHIVE_OK)
		goto fail;
	r = 0;
	goto out;
fail:
	r = ovl_err(err, errlen, out->failed ? -ENOMEM : -EIO,
	    "overlay: libarchive: %s", archive_error_string(a) ?
	    archive_error_string(a) : "failed");
out:
	archive_entry_free(ae);
	if (a != NULL)
		archive_write_free(a);
	return r;
}

int
apkovl_build(const struct apkovl_input *in, unsigned char **out, size_t *len,
    char *err, size_t errlen)
{
	struct ovl o = { 0 };
	struct sbuf buf = { 0 };
	int r;

	*out = NULL;
	*len = 0;
	if ((r = check_input(in, err, errlen)) < 0)
		return r;
	ovl_collect(&o, in);
	for (size_t i = 0; i < o.n; i++)
		o.failed |= o.e[i].data.failed;
	if (o.failed) {
		r = ovl_err(err, errlen, -ENOMEM, "overlay: out of memory");
		goto out;
	}
	if ((r = ovl_finish(&o, err, errlen)) < 0 ||
	    (r = ovl_archive(&o, in->mtime, &buf, err, errlen)) < 0)
		goto out;
	*out = (unsigned char *)buf.p;
	*len = buf.len;
	buf.p = NULL;
out:
	sbuf_dispose(&buf);
	ovl_dispose(&o);
	return r;
}
