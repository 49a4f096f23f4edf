/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Periodic host telemetry: CPU busy share, load, memory, NIC counters and
 * rates, filesystem usage, temperatures and Xen's physinfo, as one JSON
 * object per sample.
 *
 * Cost is the design constraint (the agent must stay well under
 * prometheus-node-exporter in RSS and CPU): one 64 KiB buffer is reused for
 * every read; the /proc files sampled each time stay open and are re-read
 * with pread at offset 0; temperature inputs stay open too; the hwmon and
 * mount lists are re-walked every TELEMETRY_RESCAN_MS, not every sample.
 *
 * Invariants: rates are computed from the previous sample's counters and
 * the caller's monotonic now_ms (CONVENTIONS 11), never from a clock read
 * here.  A section whose source fails is null; its failure is logged once
 * and its recovery once.
 *
 * Must never: statvfs a network or FUSE filesystem (a dead server would
 * block the agent's loop; procfs_parse_mounts leaves them out), or hold
 * more than one sample's worth of counters.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"

struct telemetry_sensor {
	int fd;				/* tempN_input, kept open */
	unsigned chip, index;		/* hwmonCHIP/tempINDEX: sort order */
	char sensor[32];		/* the chip's "name" */
	char label[64];			/* tempN_label, or "tempN" */
};

/* Sections that log their failure once, then their recovery once. */
enum {
	TM_CPU = 1 << 0,
	TM_LOAD = 1 << 1,
	TM_MEM = 1 << 2,
	TM_NET = 1 << 3,
	TM_MOUNTS = 1 << 4,
};

static void
tm_fail(struct telemetry *t, unsigned bit, const char *what, const char *why)
{
	if (!(t->failing & bit))
		log_warnx("telemetry: %s: %s; not reported until it recovers",
		    what, why);
	t->failing |= bit;
}

static void
tm_ok(struct telemetry *t, unsigned bit, const char *what)
{
	if (t->failing & bit)
		log_info("telemetry: %s: readable again", what);
	t->failing &= ~bit;
}

/* As facts_set(): takes V even on failure and clears *ok then. */
static void
tm_set(json_t *o, const char *k, json_t *v, bool *ok)
{
	if (json_object_set_new(o, k, v) < 0)
		*ok = false;
}

static json_t *
tm_done(json_t *o, bool ok)
{
	if (ok && o != NULL)
		return o;
	json_decref(o);
	return NULL;
}

/* Kernel counters are unsigned 64-bit; JSON integers here are signed. */
static json_t *
tm_int(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/*
 * Fresh contents of the /proc file kept open in *fdp, opened on first use
 * (and again after an error).  A file longer than the buffer is cut at its
 * last complete line: the parsers then see fewer lines, never half a one.
 */
static int
tm_read(struct telemetry *t, int *fdp, const char *path, size_t *len)
{
	const char *nl;
	int r;

	if (*fdp < 0) {
		if ((r = procfs_open(t->procfd, path)) < 0)
			return r;
		*fdp = r;
	}
	r = procfs_pread(*fdp, t->buf, TELEMETRY_BUF_SIZE, len);
	if (r == -EFBIG && (nl = memrchr(t->buf, '\n', *len)) != NULL) {
		*len = (size_t)(nl - t->buf) + 1;
		r = 0;
	}
	if (r < 0) {
		close(*fdp);
		*fdp = -1;
	}
	return r;
}

static json_t *
tm_cpu(struct telemetry *t)
{
	struct procfs_stat st;
	const char *why = NULL;
	uint64_t busy, total;
	json_t *o, *pct;
	size_t len;
	bool ok = true;
	int r;

	if ((r = tm_read(t, &t->statfd, "stat", &len)) < 0)
		why = strerror(-r);
	else if (procfs_parse_stat(t->buf, len, &st) < 0)
		why = st.err;
	if (why != NULL) {
		tm_fail(t, TM_CPU, "/proc/stat", why);
		t->cpu_valid = false;
		return json_null();
	}
	tm_ok(t, TM_CPU, "/proc/stat");
	/*
	 * Steal is time Xen gave this vCPU's pCPU to another domain: not
	 * work done here, so neither busy nor idle, but part of the total.
	 * guest and guest_nice are already inside user and nice.
	 */
	busy = st.user + st.nice + st.system + st.irq + st.softirq;
	total = busy + st.idle + st.iowait + st.steal;
	pct = json_null();
	/* iowait may step back on NO_HZ kernels; skip such a sample. */
	if (t->cpu_valid && total > t->prev_total && busy >= t->prev_busy &&
	    busy - t->prev_busy <= total - t->prev_total)
		pct = json_real(100.0 * (double)(busy - t->prev_busy) /
		    (double)(total - t->prev_total));
	t->prev_busy = busy;
	t->prev_total = total;
	t->cpu_valid = true;
	o = json_object();
	tm_set(o, "percent", pct, &ok);
	tm_set(o, "count", json_integer(st.ncpu), &ok);
	return tm_done(o, ok);
}

static json_t *
tm_load(struct telemetry *t)
{
	struct procfs_loadavg la;
	const char *why = NULL;
	json_t *a;
	size_t len;
	int r;

	if ((r = tm_read(t, &t->loadfd, "loadavg", &len)) < 0)
		why = strerror(-r);
	else if (procfs_parse_loadavg(t->buf, len, &la) < 0)
		why = la.err;
	if (why != NULL) {
		tm_fail(t, TM_LOAD, "/proc/loadavg", why);
		return json_null();
	}
	tm_ok(t, TM_LOAD, "/proc/loadavg");
	if ((a = json_array()) == NULL)
		return NULL;
	for (int i = 0; i < 3; i++) {
		if (json_array_append_new(a,
		    json_real(la.centi[i] / 100.0)) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *
tm_memory(struct telemetry *t)
{
	struct procfs_meminfo mi;
	const char *why = NULL;
	json_t *o;
	size_t len;
	bool ok = true;
	int r;

	if ((r = tm_read(t, &t->memfd, "meminfo", &len)) < 0)
		why = strerror(-r);
	else if (procfs_parse_meminfo(t->buf, len, &mi) < 0)
		why = mi.err;
	if (why != NULL) {
		tm_fail(t, TM_MEM, "/proc/meminfo", why);
		return json_null();
	}
	tm_ok(t, TM_MEM, "/proc/meminfo");
	o = json_object();
	tm_set(o, "total_bytes", tm_int(mi.total), &ok);
	tm_set(o, "available_bytes", tm_int(mi.available), &ok);
	/* MemAvailable is an estimate and may exceed MemTotal briefly. */
	tm_set(o, "used_bytes", tm_int(mi.total > mi.available ?
	    mi.total - mi.available : 0), &ok);
	return tm_done(o, ok);
}

/* Bits per second between two byte counters DT_MS apart, or null. */
static json_t *
tm_bps(uint64_t cur, const uint64_t *prev, int64_t dt_ms)
{
	/* A counter that went back was reset (driver reload, 32-bit wrap). */
	if (prev == NULL || cur < *prev)
		return json_null();
	return tm_int((uint64_t)((double)(cur - *prev) * 8000.0 /
	    (double)dt_ms + 0.5));
}

static json_t *
tm_nic(const struct procfs_netif *c, const struct procfs_netif *p,
    int64_t dt_ms)
{
	json_t *o = json_object();
	bool ok = true;

	tm_set(o, "name", json_string(c->name), &ok);
	tm_set(o, "rx_bytes", tm_int(c->rx_bytes), &ok);
	tm_set(o, "tx_bytes", tm_int(c->tx_bytes), &ok);
	tm_set(o, "rx_errors", tm_int(c->rx_errs), &ok);
	tm_set(o, "tx_errors", tm_int(c->tx_errs), &ok);
	tm_set(o, "rx_bps", tm_bps(c->rx_bytes, p ? &p->rx_bytes : NULL, dt_ms),
	    &ok);
	tm_set(o, "tx_bps", tm_bps(c->tx_bytes, p ? &p->tx_bytes : NULL, dt_ms),
	    &ok);
	return tm_done(o, ok);
}

/* The interface's previous counters; the kernel keeps the order stable, so
 * the same position is tried before a search. */
static const struct procfs_netif *
tm_prev_if(const struct procfs_net_dev *prev, const char *name, unsigned hint)
{
	if (hint < prev->n && strcmp(prev->ifs[hint].name, name) == 0)
		return &prev->ifs[hint];
	for (unsigned i = 0; i < prev->n; i++)
		if (strcmp(prev->ifs[i].name, name) == 0)
			return &prev->ifs[i];
	return NULL;
}

static json_t *
tm_nics(struct telemetry *t, int64_t now_ms)
{
	struct procfs_net_dev *cur = t->net[t->cur], *prev = t->net[!t->cur];
	int64_t dt = now_ms - t->net_ms;
	bool rates = t->net_valid && dt > 0;
	const char *why = NULL;
	json_t *list;
	size_t len;
	int r;

	if ((r = tm_read(t, &t->netfd, "net/dev", &len)) < 0)
		why = strerror(-r);
	else if (procfs_parse_net_dev(t->buf, len, cur) < 0)
		why = cur->err;
	if (why != NULL) {
		tm_fail(t, TM_NET, "/proc/net/dev", why);
		t->net_valid = false;
		return json_null();
	}
	tm_ok(t, TM_NET, "/proc/net/dev");
	if (cur->skipped > 0 && !t->warned_nics) {
		log_warnx("telemetry: %u interfaces beyond the first %d are "
		    "not reported", cur->skipped, PROCFS_NETIF_MAX);
		t->warned_nics = true;
	}
	if ((list = json_array()) == NULL)
		return NULL;
	for (unsigned i = 0; i < cur->n; i++) {
		const struct procfs_netif *c = &cur->ifs[i];

		/* Loopback traffic says nothing about the host's load. */
		if (strcmp(c->name, "lo") == 0)
			continue;
		if (json_array_append_new(list, tm_nic(c, rates ?
		    tm_prev_if(prev, c->name, i) : NULL, dt)) < 0) {
			json_decref(list);
			return NULL;
		}
	}
	t->cur = !t->cur;
	t->net_valid = true;
	t->net_ms = now_ms;
	return list;
}

/* Re-reads the mount list, keeping one mount point per filesystem. */
static void
tm_scan_mounts(struct telemetry *t)
{
	struct procfs_mounts *m = t->mounts;
	dev_t devs[PROCFS_MOUNT_MAX];
	const char *why = NULL;
	unsigned n = 0;
	const char *nl;
	size_t len;
	int r;

	r = procfs_read(t->procfd, "self/mounts", t->buf, TELEMETRY_BUF_SIZE,
	    &len);
	if (r == -EFBIG && (nl = memrchr(t->buf, '\n', len)) != NULL) {
		len = (size_t)(nl - t->buf) + 1;
		r = 0;
	}
	if (r < 0)
		why = strerror(-r);
	else if (procfs_parse_mounts(t->buf, len, m) < 0)
		why = m->err;
	if (why != NULL) {
		tm_fail(t, TM_MOUNTS, "/proc/self/mounts", why);
		m->n = 0;
		return;
	}
	tm_ok(t, TM_MOUNTS, "/proc/self/mounts");
	if (m->skipped > 0 && !t->warned_mounts) {
		log_warnx("telemetry: %u filesystems beyond the first %d are "
		    "not reported", m->skipped, PROCFS_MOUNT_MAX);
		t->warned_mounts = true;
	}
	/* Bind mounts show one filesystem twice; the first place wins. */
	for (unsigned i = 0; i < m->n; i++) {
		struct stat st;
		unsigned j;

		if (stat(m->m[i].dir, &st) == -1)
			continue;
		for (j = 0; j < n; j++)
			if (devs[j] == st.st_dev)
				break;
		if (j < n)
			continue;
		devs[n] = st.st_dev;
		if (n != i)
			m->m[n] = m->m[i];
		n++;
	}
	m->n = n;
}

static json_t *
tm_disks(struct telemetry *t)
{
	json_t *list;

	if ((list = json_array()) == NULL)
		return NULL;
	for (unsigned i = 0; i < t->mounts->n; i++) {
		const char *dir = t->mounts->m[i].dir;
		struct statvfs sv;
		json_t *o, *name;
		bool ok = true;

		if (statvfs(dir, &sv) == -1) {
			log_debug("telemetry: statvfs %s: %s", dir,
			    strerror(errno));
			continue;
		}
		/* Mount points are bytes; JSON wants UTF-8.  Skip the rest. */
		if ((name = json_string(dir)) == NULL)
			continue;
		o = json_object();
		tm_set(o, "mount", name, &ok);
		tm_set(o, "total_bytes", tm_int((uint64_t)sv.f_blocks *
		    sv.f_frsize), &ok);
		/* f_bavail: what is left for anyone but root, as df shows. */
		tm_set(o, "free_bytes", tm_int((uint64_t)sv.f_bavail *
		    sv.f_frsize), &ok);
		if (json_array_append_new(list, tm_done(o, ok)) < 0) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

static void
tm_sensors_close(struct telemetry *t)
{
	for (unsigned i = 0; i < t->nsensors; i++)
		close(t->sensors[i].fd);
	t->nsensors = 0;
}

/* NAME is PREFIX, 1 to 6 digits, then SUFFIX; the number in *n. */
static bool
tm_numbered(const char *name, const char *prefix, const char *suffix,
    unsigned *n)
{
	size_t pl = strlen(prefix), d = 0;
	unsigned v = 0;

	if (strncmp(name, prefix, pl) != 0)
		return false;
	name += pl;
	while (name[d] >= '0' && name[d] <= '9' && d < 6)
		v = v * 10 + (unsigned)(name[d++] - '0');
	if (d == 0 || strcmp(name + d, suffix) != 0)
		return false;
	*n = v;
	return true;
}

static void
tm_scan_chip(struct telemetry *t, int classfd, const char *dname,
    unsigned chip)
{
	char chipname[32], path[64];
	struct dirent *de;
	DIR *d = NULL;
	size_t len;
	int cfd, dfd;

	/* hwmonN is a symlink into the device tree: follow it. */
	if ((cfd = openat(classfd, dname, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		return;
	if (procfs_read(cfd, "name", t->buf, TELEMETRY_BUF_SIZE, &len) < 0 ||
	    procfs_parse_attr(t->buf, len, chipname, sizeof(chipname)) < 0)
		snprintf(chipname, sizeof(chipname), "hwmon%u", chip);
	if ((dfd = dup(cfd)) == -1 || (d = fdopendir(dfd)) == NULL) {
		if (dfd != -1)
			close(dfd);
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		struct telemetry_sensor *s;
		unsigned idx;
		int fd;

		if (!tm_numbered(de->d_name, "temp", "_input", &idx))
			continue;
		if (t->nsensors == TELEMETRY_SENSORS_MAX) {
			if (!t->warned_sensors)
				log_warnx("telemetry: more than %d temperature "
				    "sensors; the rest are not reported",
				    TELEMETRY_SENSORS_MAX);
			t->warned_sensors = true;
			break;
		}
		if ((fd = procfs_open(cfd, de->d_name)) < 0)
			continue;
		s = &t->sensors[t->nsensors++];
		s->fd = fd;
		s->chip = chip;
		s->index = idx;
		memcpy(s->sensor, chipname, sizeof(s->sensor));
		snprintf(path, sizeof(path), "temp%u_label", idx);
		if (procfs_read(cfd, path, t->buf, TELEMETRY_BUF_SIZE,
		    &len) < 0 || procfs_parse_attr(t->buf, len, s->label,
		    sizeof(s->label)) < 0)
			snprintf(s->label, sizeof(s->label), "temp%u", idx);
	}
out:
	if (d != NULL)
		closedir(d);
	close(cfd);
}

static int
tm_sensor_cmp(const void *a, const void *b)
{
	const struct telemetry_sensor *x = a, *y = b;

	if (x->chip != y->chip)
		return x->chip < y->chip ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Re-walks /sys/class/hwmon; no directory (most VMs) means no sensors. */
static void
tm_scan_hwmon(struct telemetry *t)
{
	struct dirent *de;
	DIR *d;
	int fd;

	tm_sensors_close(t);
	if (t->sysfd < 0 || (fd = openat(t->sysfd, "class/hwmon",
	    O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		unsigned chip;

		if (tm_numbered(de->d_name, "hwmon", "", &chip))
			tm_scan_chip(t, dirfd(d), de->d_name, chip);
	}
	closedir(d);
	qsort(t->sensors, t->nsensors, sizeof(*t->sensors), tm_sensor_cmp);
}

static json_t *
tm_temps(struct telemetry *t)
{
	json_t *list;

	if ((list = json_array()) == NULL)
		return NULL;
	for (unsigned i = 0; i < t->nsensors; i++) {
		const struct telemetry_sensor *s = &t->sensors[i];
		char b[32];
		int64_t mc;
		size_t len;
		json_t *o;
		bool ok = true;

		/* A sensor that faults (ENODATA, EIO) or left is skipped. */
		if (procfs_pread(s->fd, b, sizeof(b), &len) < 0 ||
		    procfs_parse_attr_i64(b, len, &mc) < 0)
			continue;
		o = json_object();
		tm_set(o, "sensor", json_string(s->sensor), &ok);
		tm_set(o, "label", json_string(s->label), &ok);
		tm_set(o, "celsius", json_real((double)mc / 1000.0), &ok);
		if (json_array_append_new(list, tm_done(o, ok)) < 0) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

static json_t *
tm_xen(struct telemetry *t)
{
	json_t *x = NULL;
	int r;

	if (t->xen == NULL)
		return json_null();
	/* xen.c logs its own failures, once. */
	if ((r = xen_physinfo(t->xen, &x)) == -ENOMEM)
		return NULL;
	return r < 0 ? json_null() : x;
}

int
telemetry_sample(struct telemetry *t, int64_t now_ms, json_t **out)
{
	json_t *o;
	bool ok = true;

	*out = NULL;
	if (t == NULL || !t->live)
		return -EINVAL;
	if (!t->scanned || now_ms - t->scanned_ms >= TELEMETRY_RESCAN_MS ||
	    now_ms < t->scanned_ms) {
		tm_scan_mounts(t);
		tm_scan_hwmon(t);
		t->scanned = true;
		t->scanned_ms = now_ms;
	}
	o = json_object();
	tm_set(o, "cpu", tm_cpu(t), &ok);
	tm_set(o, "load", tm_load(t), &ok);
	tm_set(o, "memory", tm_memory(t), &ok);
	tm_set(o, "nics", tm_nics(t, now_ms), &ok);
	tm_set(o, "disks", tm_disks(t), &ok);
	tm_set(o, "temps", tm_temps(t), &ok);
	tm_set(o, "xen", tm_xen(t), &ok);
	if ((*out = tm_done(o, ok)) == NULL)
		return -ENOMEM;
	return 0;
}

void
telemetry_set_xen(struct telemetry *t, struct xen *x)
{
	t->xen = x;
}

int
telemetry_init_at(struct telemetry *t, const char *root)
{
	int r;

	memset(t, 0, sizeof(*t));
	t->rootfd = t->procfd = t->sysfd = -1;
	t->statfd = t->loadfd = t->memfd = t->netfd = -1;
	t->live = true;
	if ((t->rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    (t->procfd = openat(t->rootfd, "proc", O_PATH | O_DIRECTORY |
	    O_CLOEXEC)) == -1) {
		r = -errno;
		log_warn("telemetry: proc/ under %s", root);
		goto err;
	}
	/* Without /sys there are only no temperatures. */
	t->sysfd = openat(t->rootfd, "sys", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if ((t->buf = malloc(TELEMETRY_BUF_SIZE)) == NULL ||
	    (t->net[0] = calloc(1, sizeof(*t->net[0]))) == NULL ||
	    (t->net[1] = calloc(1, sizeof(*t->net[1]))) == NULL ||
	    (t->sensors = calloc(TELEMETRY_SENSORS_MAX,
	    sizeof(*t->sensors))) == NULL ||
	    (t->mounts = calloc(1, sizeof(*t->mounts))) == NULL) {
		r = -ENOMEM;
		goto err;
	}
	return 0;
err:
	telemetry_dispose(t);
	return r;
}

int
telemetry_init(struct telemetry *t)
{
	return telemetry_init_at(t, "/");
}

static void
tm_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void
telemetry_dispose(struct telemetry *t)
{
	if (t == NULL || !t->live)
		return;
	if (t->sensors != NULL)
		tm_sensors_close(t);
	tm_close(&t->statfd);
	tm_close(&t->loadfd);
	tm_close(&t->memfd);
	tm_close(&t->netfd);
	tm_close(&t->sysfd);
	tm_close(&t->procfd);
	tm_close(&t->rootfd);
	free(t->buf);
	free(t->net[0]);
	free(t->net[1]);
	free(t->sensors);
	free(t->mounts);
	t->buf = NULL;
	t->net[0] = t->net[1] = NULL;
	t->sensors = NULL;
	t->mounts = NULL;
	t->xen = NULL;
	t->live = false;
}
