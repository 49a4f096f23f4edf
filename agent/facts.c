/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Hardware facts for the agent's hello: what this host is (CPU model and
 * count, memory, NICs, disks, DMI identity, kernel), read once per
 * connection from /proc and /sys.
 *
 * Invariants: best-effort field by field.  A file that is missing,
 * unreadable or malformed turns into JSON null (or leaves one entry out of
 * a list); only running out of memory fails the whole collection.  Lists
 * are sorted by name so two hellos from one host compare equal.
 *
 * Must never: read a file through a symlink at its last component, read
 * more than FACTS_BUF_SIZE of any file, or write anything.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"

#define FACTS_BUF_SIZE		(64 * 1024)
#define FACTS_DISKS_MAX		256
#define FACTS_ATTR_MAX		256

/*
 * Sets K to V in O, taking ownership of V even on failure (V may be NULL
 * from a failed allocation); clears *ok on failure so a caller can make
 * several calls and test once.
 */
static void
facts_set(json_t *o, const char *k, json_t *v, bool *ok)
{
	if (json_object_set_new(o, k, v) < 0)
		*ok = false;
}

/* O itself if every facts_set() succeeded, else NULL with O released. */
static json_t *
facts_done(json_t *o, bool ok)
{
	if (ok && o != NULL)
		return o;
	json_decref(o);
	return NULL;
}

struct facts_ctx {
	int procfd, sysfd;
	char *buf;
	size_t len;
};

/* A file's contents in ctx->buf, or false.  A prefix is enough for the
 * files read here, so -EFBIG counts as success. */
static bool
facts_read(struct facts_ctx *ctx, int dirfd, const char *path)
{
	int r = procfs_read(dirfd, path, ctx->buf, FACTS_BUF_SIZE, &ctx->len);

	if (r < 0 && r != -EFBIG) {
		log_debug("facts: %s: %s", path, strerror(-r));
		return false;
	}
	return true;
}

/* DIR/NAME/LEAF under /sys into ctx->buf, or false. */
static bool
facts_read_sys(struct facts_ctx *ctx, const char *dir, const char *name,
    const char *leaf)
{
	char path[PATH_MAX];

	return (size_t)snprintf(path, sizeof(path), "%s/%s/%s", dir, name,
	    leaf) < sizeof(path) && facts_read(ctx, ctx->sysfd, path);
}

/* A string attribute as a new JSON string, or JSON null. */
static json_t *
facts_attr(struct facts_ctx *ctx, const char *dir, const char *name,
    const char *leaf)
{
	char val[FACTS_ATTR_MAX];

	if (!facts_read_sys(ctx, dir, name, leaf) ||
	    procfs_parse_attr(ctx->buf, ctx->len, val, sizeof(val)) < 0)
		return json_null();
	return json_string(val);
}

/* A decimal attribute, or false. */
static bool
facts_attr_i64(struct facts_ctx *ctx, const char *dir, const char *name,
    const char *leaf, int64_t *out)
{
	return facts_read_sys(ctx, dir, name, leaf) &&
	    procfs_parse_attr_i64(ctx->buf, ctx->len, out) == 0;
}

static json_t *
facts_i64_or_null(bool ok, int64_t v)
{
	return ok ? json_integer(v) : json_null();
}

static json_t *
facts_cpu(struct facts_ctx *ctx)
{
	struct procfs_cpuinfo ci;
	struct procfs_stat st;
	json_t *model = json_null(), *count = json_null(), *o = json_object();
	bool ok = true;

	if (facts_read(ctx, ctx->procfd, "cpuinfo")) {
		int r = procfs_parse_cpuinfo(ctx->buf, ctx->len, &ci);

		if (r == 0)
			model = json_string(ci.model);
		else
			log_debug("facts: /proc/cpuinfo: %s", ci.err);
	}
	/* The same count telemetry reports: online CPUs of this domain. */
	if (facts_read(ctx, ctx->procfd, "stat")) {
		if (procfs_parse_stat(ctx->buf, ctx->len, &st) == 0)
			count = json_integer(st.ncpu);
		else
			log_warnx("facts: /proc/stat: %s", st.err);
	}
	facts_set(o, "model", model, &ok);
	facts_set(o, "count", count, &ok);
	return facts_done(o, ok);
}

static json_t *
facts_memory(struct facts_ctx *ctx)
{
	struct procfs_meminfo mi;
	json_t *total = json_null(), *o = json_object();
	bool ok = true;

	if (facts_read(ctx, ctx->procfd, "meminfo")) {
		if (procfs_parse_meminfo(ctx->buf, ctx->len, &mi) == 0)
			total = json_integer((json_int_t)mi.total);
		else
			log_warnx("facts: /proc/meminfo: %s", mi.err);
	}
	facts_set(o, "total_bytes", total, &ok);
	return facts_done(o, ok);
}

static int
facts_namecmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The entries of DIR under sysfd that KEEP accepts, sorted, at most MAX.
 * Returns the count or -errno; *names must be freed with facts_names_free.
 */
static int
facts_list(struct facts_ctx *ctx, const char *dir, bool (*keep)(const char *),
    unsigned max, char ***names)
{
	DIR *d = NULL;
	struct dirent *de;
	char **v = NULL;
	unsigned n = 0;
	int fd, r = 0;

	*names = NULL;
	if ((fd = openat(ctx->sysfd, dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1) {
		r = -errno;
		goto out;
	}
	if ((d = fdopendir(fd)) == NULL) {
		r = -errno;
		close(fd);
		goto out;
	}
	if ((v = calloc(max, sizeof(*v))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !keep(de->d_name))
			continue;
		if (n == max) {
			log_warnx("facts: /sys/%s: more than %u entries, the "
			    "rest left out", dir, max);
			break;
		}
		if ((v[n] = strdup(de->d_name)) == NULL) {
			r = -ENOMEM;
			goto out;
		}
		n++;
	}
	qsort(v, n, sizeof(*v), facts_namecmp);
	*names = v;
	v = NULL;
	r = (int)n;
out:
	if (v != NULL) {
		for (unsigned i = 0; i < n; i++)
			free(v[i]);
		free(v);
	}
	if (d != NULL)
		closedir(d);
	return r;
}

static void
facts_names_free(char **names, int n)
{
	if (names == NULL)
		return;
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static bool
facts_keep_nic(const char *name)
{
	return strcmp(name, "lo") != 0 &&
	    procfs_ifname_valid(name, strlen(name));
}

static json_t *
facts_nic(struct facts_ctx *ctx, const char *name)
{
	json_t *o = json_object();
	int64_t speed = -1, mtu = 0;
	bool have_speed, have_mtu, ok = true;

	/* speed is EINVAL while the link is down and -1 when unknown. */
	have_speed = facts_attr_i64(ctx, "class/net", name, "speed", &speed) &&
	    speed >= 0;
	have_mtu = facts_attr_i64(ctx, "class/net", name, "mtu", &mtu);
	facts_set(o, "name", json_string(name), &ok);
	facts_set(o, "mac", facts_attr(ctx, "class/net", name, "address"), &ok);
	facts_set(o, "speed_mbps", facts_i64_or_null(have_speed, speed), &ok);
	facts_set(o, "mtu", facts_i64_or_null(have_mtu, mtu), &ok);
	facts_set(o, "operstate", facts_attr(ctx, "class/net", name,
	    "operstate"), &ok);
	return facts_done(o, ok);
}

static bool
facts_keep_disk(const char *name)
{
	static const char *const skip[] = { "loop", "ram", "zram", "dm-" };

	for (const char *c = name; *c; c++)
		if (*c <= 0x20 || *c >= 0x7f || *c == '/')
			return false;
	for (size_t i = 0; i < sizeof(skip) / sizeof(*skip); i++)
		if (strncmp(name, skip[i], strlen(skip[i])) == 0)
			return false;
	return true;
}

/* NVMe and some SCSI drivers export device/serial, virtio-blk serial, and
 * SATA/SAS disks only the raw VPD page 0x80. */
static json_t *
facts_disk_serial(struct facts_ctx *ctx, const char *name)
{
	static const char *const leaves[] = { "device/serial", "serial" };
	char val[FACTS_ATTR_MAX];

	for (size_t i = 0; i < sizeof(leaves) / sizeof(*leaves); i++) {
		json_t *s = facts_attr(ctx, "block", name, leaves[i]);

		if (!json_is_null(s))
			return s;
	}
	if (facts_read_sys(ctx, "block", name, "device/vpd_pg80") &&
	    procfs_parse_vpd80(ctx->buf, ctx->len, val, sizeof(val)) == 0)
		return json_string(val);
	return json_null();
}

static json_t *
facts_disk(struct facts_ctx *ctx, const char *name)
{
	json_t *o = json_object();
	int64_t sectors = 0, rot = 0;
	bool have_size, have_rot, ok = true;

	/* "size" counts 512-byte sectors whatever the device's block size. */
	have_size = facts_attr_i64(ctx, "block", name, "size", &sectors) &&
	    sectors >= 0 && sectors <= INT64_MAX / 512;
	have_rot = facts_attr_i64(ctx, "block", name, "queue/rotational", &rot);
	facts_set(o, "name", json_string(name), &ok);
	facts_set(o, "size_bytes", facts_i64_or_null(have_size, sectors * 512),
	    &ok);
	facts_set(o, "serial", facts_disk_serial(ctx, name), &ok);
	facts_set(o, "model", facts_attr(ctx, "block", name, "device/model"),
	    &ok);
	facts_set(o, "rotational", have_rot ? json_boolean(rot != 0) :
	    json_null(), &ok);
	return facts_done(o, ok);
}

/* One entry per accepted name in DIR; a failed read leaves the list empty. */
static json_t *
facts_each(struct facts_ctx *ctx, const char *dir, bool (*keep)(const char *),
    unsigned max, json_t *(*one)(struct facts_ctx *, const char *))
{
	json_t *list = NULL, *ret = NULL;
	char **names = NULL;
	int n = 0;

	if ((list = json_array()) == NULL)
		goto out;
	if ((n = facts_list(ctx, dir, keep, max, &names)) == -ENOMEM)
		goto out;
	for (int i = 0; i < n; i++)
		if (json_array_append_new(list, one(ctx, names[i])) < 0)
			goto out;
	ret = list;
	list = NULL;
out:
	facts_names_free(names, n);
	json_decref(list);
	return ret;
}

static json_t *
facts_dmi(struct facts_ctx *ctx)
{
	static const char *const keys[] = { "sys_vendor", "product_name",
	    "product_uuid", "product_serial", "board_name", "bios_version" };
	json_t *dmi = json_object();
	bool ok = true;

	/* product_uuid and product_serial are root-only; null otherwise. */
	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
		facts_set(dmi, keys[i], facts_attr(ctx, "class/dmi", "id",
		    keys[i]), &ok);
	return facts_done(dmi, ok);
}

static json_t *
facts_kernel(void)
{
	struct utsname u;
	json_t *o = json_object(), *rel = NULL;
	bool ok = true;

	if (uname(&u) == 0)
		rel = json_string(u.release);
	/* json_string() also refuses bytes that are not UTF-8. */
	facts_set(o, "release", rel ? rel : json_null(), &ok);
	return facts_done(o, ok);
}

json_t *
facts_collect_at(const char *root)
{
	struct facts_ctx ctx = { -1, -1, NULL, 0 };
	json_t *facts = NULL;
	int rootfd = -1;
	bool ok = true;

	if ((ctx.buf = malloc(FACTS_BUF_SIZE)) == NULL)
		goto out;
	/* A missing tree only nulls the facts read from it. */
	if ((rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1)
		log_warn("facts: %s", root);
	ctx.procfd = openat(rootfd, "proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
	ctx.sysfd = openat(rootfd, "sys", O_PATH | O_DIRECTORY | O_CLOEXEC);
	facts = json_object();
	facts_set(facts, "cpu", facts_cpu(&ctx), &ok);
	facts_set(facts, "memory", facts_memory(&ctx), &ok);
	facts_set(facts, "nics", facts_each(&ctx, "class/net", facts_keep_nic,
	    PROCFS_NETIF_MAX, facts_nic), &ok);
	facts_set(facts, "disks", facts_each(&ctx, "block", facts_keep_disk,
	    FACTS_DISKS_MAX, facts_disk), &ok);
	facts_set(facts, "dmi", facts_dmi(&ctx), &ok);
	facts_set(facts, "kernel", facts_kernel(), &ok);
	facts = facts_done(facts, ok);
out:
	if (facts == NULL)
		errno = ENOMEM;
	free(ctx.buf);
	if (ctx.sysfd != -1)
		close(ctx.sysfd);
	if (ctx.procfd != -1)
		close(ctx.procfd);
	if (rootfd != -1)
		close(rootfd);
	return facts;
}

json_t *
facts_collect(void)
{
	json_t *f, *m;

	if ((f = facts_collect_at("/")) == NULL)
		return NULL;
	/* The storage pass's outcome (empty before it or without disks). */
	if ((m = agent_storage_json()) == NULL ||
	    json_object_set_new(f, "mounts", m) < 0) {
		json_decref(f);
		errno = ENOMEM;
		return NULL;
	}
	return f;
}
