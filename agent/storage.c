/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Local storage: at start, before the mesh and the link, the agent mounts
 * the filesystems /etc/fstab names by UUID= or LABEL= (hvd writes those
 * lines from the host's inventory mounts).  Other lines are left to the
 * boot's localmount.
 *
 * A line is mounted only with a small safe set of options (defaults,
 * noatime, nodev, nosuid, noexec, ro); any other option refuses the line.
 * The one agent option, x-hv-format=NAME (NAME a bare /dev entry such as
 * vdb), formats /dev/NAME with mkfs.FSTYPE -L LABEL, and only when: the
 * source is LABEL=, no device carries that label, FSTYPE is concrete, and
 * blkid finds neither a filesystem nor a partition table on /dev/NAME.
 *
 * Must never: format a device that holds anything blkid recognises; fail
 * the agent because a disk is missing (a diskless host runs from RAM).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <blkid.h>

#include "agent.h"
#include "log.h"

#define ST_FIELD_MAX	256
#define ST_RESULTS_MAX	32

/* The outcome of each UUID=/LABEL= line of the last pass, for the facts. */
static struct st_result {
	char source[ST_FIELD_MAX];
	char path[ST_FIELD_MAX];
	char device[ST_FIELD_MAX];	/* "" when none was found */
	char fstype[64];		/* "" when unknown */
	char error[128];		/* "" when mounted */
} st_results[ST_RESULTS_MAX];
static unsigned st_nresults;

struct st_line {
	char source[ST_FIELD_MAX];
	char path[ST_FIELD_MAX];
	char fstype[64];
	unsigned long flags;
	char format[32];		/* x-hv-format=NAME, "" when absent */
};

static bool
st_name_ok(const char *s, const char *extra)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		    (*s >= 'A' && *s <= 'Z') || strchr(extra, *s) != NULL))
			return false;
	return true;
}

/* The options field: 0, or -EINVAL with the refused option logged. */
static int
st_options(const char *where, char *opts, struct st_line *l)
{
	static const struct {
		const char *name;
		unsigned long flag;
	} known[] = {
		{ "defaults", 0 }, { "noatime", MS_NOATIME },
		{ "nodev", MS_NODEV }, { "nosuid", MS_NOSUID },
		{ "noexec", MS_NOEXEC }, { "ro", MS_RDONLY },
	};
	char *o, *save = NULL;
	size_t k;

	for (o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (strncmp(o, "x-hv-format=", 12) == 0) {
			if (strlen(o + 12) >= sizeof(l->format) ||
			    !st_name_ok(o + 12, "")) {
				log_warnx("storage: %s: x-hv-format wants a /dev "
				    "name such as vdb, got '%.32s'", where, o + 12);
				return -EINVAL;
			}
			memcpy(l->format, o + 12, strlen(o + 12) + 1);
			continue;
		}
		for (k = 0; k < sizeof(known) / sizeof(*known); k++)
			if (strcmp(o, known[k].name) == 0)
				break;
		if (k == sizeof(known) / sizeof(*known)) {
			log_warnx("storage: %s: option '%.32s' is not one of "
			    "defaults, noatime, nodev, nosuid, noexec, ro, "
			    "x-hv-format=DEV; not mounting", where, o);
			return -EINVAL;
		}
		l->flags |= known[k].flag;
	}
	return 0;
}

/*
 * Probes DEV: 0 with TYPE set (maybe "") when blkid recognises something
 * on it (a filesystem, or a partition table: TYPE is then ""), 1 when it
 * holds nothing, -errno when it cannot be probed.
 */
static int
st_probe(const char *dev, char *type, size_t typelen)
{
	blkid_probe pr;
	const char *v = NULL;
	int r;

	type[0] = '\0';
	if ((pr = blkid_new_probe_from_filename(dev)) == NULL)
		return errno ? -errno : -EIO;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
	blkid_probe_enable_partitions(pr, 1);
	r = blkid_do_safeprobe(pr);
	if (r == 0) {
		if (blkid_probe_lookup_value(pr, "TYPE", &v, NULL) == 0 && v)
			snprintf(type, typelen, "%s", v);
	} else if (r != 1) {
		/* -2: ambiguous, several signatures; never "nothing". */
		r = r == -2 ? 0 : -EIO;
	}
	blkid_free_probe(pr);
	return r;
}

static int
st_mkdir_p(const char *path)
{
	char buf[ST_FIELD_MAX];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, 0755) == -1 && errno != EEXIST)
				return -errno;
			if ((*p = c) == '\0')
				break;
		}
	}
	return 0;
}

/* 1 when DEV is mounted on PATH, 0 when nothing is, -EBUSY when another
 * device is; /proc/self/mountinfo, the last mount on PATH wins. */
static int
st_mounted(const char *dev, const char *path)
{
	char line[1024], mp[ST_FIELD_MAX];
	unsigned maj, min;
	struct stat st;
	FILE *f;
	int r = 0;

	if (stat(dev, &st) == -1)
		return -errno;
	if ((f = fopen("/proc/self/mountinfo", "re")) == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		char raw[ST_FIELD_MAX], *s, *d;

		if (sscanf(line, "%*u %*u %u:%u %*s %255s", &maj, &min, raw) != 3)
			continue;
		/* Decode the kernel's \ooo escapes. */
		for (s = raw, d = mp; *s; d++) {
			if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
			    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
				*d = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				    (s[3] - '0'));
				s += 4;
			} else
				*d = *s++;
		}
		*d = '\0';
		if (strcmp(mp, path) == 0)
			r = (major(st.st_rdev) == maj && minor(st.st_rdev) == min) ?
			    1 : -EBUSY;
	}
	fclose(f);
	return r;
}

/* mkfs.FSTYPE -L LABEL DEV, waited for.  0 or -errno / -EIO. */
static int
st_mkfs(const char *fstype, const char *label, const char *dev)
{
	char prog[80];
	pid_t pid;
	int status;

	snprintf(prog, sizeof(prog), "mkfs.%s", fstype);
	if ((pid = fork()) == -1)
		return -errno;
	if (pid == 0) {
		int fd = open("/dev/null", O_RDONLY);

		if (fd >= 0)
			dup2(fd, STDIN_FILENO);
		execlp(prog, prog, "-L", label, dev, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* The format path: a device path in DEV (PATH_MAX) or -errno, logged. */
static int
st_format(const char *where, const struct st_line *l, char *dev, size_t devlen)
{
	const char *label = l->source + 6;
	char type[64];
	struct stat st;
	int r;

	snprintf(dev, devlen, "/dev/%s", l->format);
	if (strncmp(l->source, "LABEL=", 6) != 0) {
		log_warnx("storage: %s: x-hv-format needs a LABEL= source; "
		    "not formatting", where);
		return -EINVAL;
	}
	if (strcmp(l->fstype, "auto") == 0 || !st_name_ok(l->fstype, "")) {
		log_warnx("storage: %s: x-hv-format needs a filesystem type, "
		    "not '%s'; not formatting", where, l->fstype);
		return -EINVAL;
	}
	if (stat(dev, &st) == -1 || !S_ISBLK(st.st_mode)) {
		log_warnx("storage: %s: %s is not a block device; not "
		    "formatting", where, dev);
		return -ENODEV;
	}
	if ((r = st_probe(dev, type, sizeof(type))) < 0) {
		log_warnx("storage: %s: cannot probe %s: %s; not formatting",
		    where, dev, strerror(-r));
		return r;
	}
	if (r == 0) {
		log_warnx("storage: %s: %s already holds %s; NOT formatting it",
		    where, dev, type[0] ? type : "a partition table");
		return -EEXIST;
	}
	log_warnx("storage: %s: FORMATTING %s as %s with label %s (the operator "
	    "asked with x-hv-format)", where, dev, l->fstype, label);
	if ((r = st_mkfs(l->fstype, label, dev)) < 0) {
		log_warnx("storage: %s: mkfs.%s %s failed", where, l->fstype, dev);
		return r;
	}
	return 0;
}

/* One fstab line already split; every outcome is logged and kept in RES. */
static void
st_line(const char *where, struct st_line *l, struct st_result *res)
{
	char dev[PATH_MAX], type[64], *found;
	const char *fstype = l->fstype;
	int r;

	found = blkid_evaluate_tag(l->source, NULL, NULL);
	if (found != NULL) {
		snprintf(dev, sizeof(dev), "%s", found);
		free(found);
	} else if (l->format[0] == '\0') {
		log_warnx("storage: %s: no device with %s; %s stays unmounted",
		    where, l->source, l->path);
		snprintf(res->error, sizeof(res->error), "no such device");
		return;
	} else if ((r = st_format(where, l, dev, sizeof(dev))) < 0) {
		snprintf(res->error, sizeof(res->error), "no such device; not "
		    "formatted: %s", r == -EEXIST ? "the device is not empty" :
		    strerror(-r));
		return;
	}
	snprintf(res->device, sizeof(res->device), "%s", dev);
	if (strcmp(fstype, "auto") != 0)
		snprintf(res->fstype, sizeof(res->fstype), "%s", fstype);

	if ((r = st_mounted(dev, l->path)) == 1) {
		log_info("storage: %s: %s already mounted on %s", where, dev,
		    l->path);
		return;
	} else if (r < 0) {
		log_warnx("storage: %s: %s: %s", where, r == -EBUSY ? l->path :
		    dev, r == -EBUSY ? "another device is mounted there" :
		    strerror(-r));
		snprintf(res->error, sizeof(res->error), "%s", r == -EBUSY ?
		    "another device is mounted there" : strerror(-r));
		return;
	}
	if (strcmp(fstype, "auto") == 0 || fstype[0] == '\0') {
		if (st_probe(dev, type, sizeof(type)) != 0 || type[0] == '\0') {
			log_warnx("storage: %s: %s: no filesystem type found",
			    where, dev);
			snprintf(res->error, sizeof(res->error), "no filesystem "
			    "type found");
			return;
		}
		fstype = type;
		snprintf(res->fstype, sizeof(res->fstype), "%s", fstype);
	}
	if ((r = st_mkdir_p(l->path)) < 0) {
		log_warnx("storage: %s: mkdir %s: %s", where, l->path,
		    strerror(-r));
		snprintf(res->error, sizeof(res->error), "mkdir: %s",
		    strerror(-r));
		return;
	}
	if (mount(dev, l->path, fstype, l->flags, NULL) == -1) {
		snprintf(res->error, sizeof(res->error), "mount: %s",
		    strerror(errno));
		log_warn("storage: %s: mount %s (%s) on %s", where, dev, fstype,
		    l->path);
		return;
	}
	log_info("storage: %s: mounted %s (%s, %s) on %s", where, dev, fstype,
	    l->source, l->path);
}

int
agent_storage_mount(const char *fstab)
{
	char buf[1024], where[ST_FIELD_MAX + 16], *w[7], *p, *save;
	struct st_result *res, spare;
	unsigned lineno = 0;
	int nw, n = 0;
	FILE *f;

	st_nresults = 0;

	if ((f = fopen(fstab, "re")) == NULL) {
		if (errno == ENOENT) {
			log_info("storage: no %s; running from RAM", fstab);
			return 0;
		}
		log_warn("storage: %s", fstab);
		return -errno;
	}
	while (fgets(buf, sizeof(buf), f) != NULL) {
		struct st_line l;

		lineno++;
		snprintf(where, sizeof(where), "%s:%u", fstab, lineno);
		if (strchr(buf, '\n') == NULL && !feof(f)) {
			log_warnx("storage: %s: line too long; skipping the rest "
			    "of the file", where);
			break;
		}
		if ((p = strchr(buf, '#')) != NULL)
			*p = '\0';
		nw = 0;
		save = NULL;
		for (p = strtok_r(buf, " \t\r\n", &save); p && nw < 7;
		    p = strtok_r(NULL, " \t\r\n", &save))
			w[nw++] = p;
		if (nw == 0 || (strncmp(w[0], "UUID=", 5) != 0 &&
		    strncmp(w[0], "LABEL=", 6) != 0))
			continue;
		memset(&l, 0, sizeof(l));
		if (nw < 3 || nw > 6 || strlen(w[0]) >= sizeof(l.source) ||
		    strlen(w[1]) >= sizeof(l.path) || w[1][0] != '/' ||
		    strstr(w[1], "..") != NULL || strlen(w[2]) >= sizeof(l.fstype) ||
		    !st_name_ok(strchr(w[0], '=') + 1, "._-") ||
		    !st_name_ok(w[1], "/._-") || !st_name_ok(w[2], "._-")) {
			log_warnx("storage: %s: malformed line; skipping it",
			    where);
			continue;
		}
		memcpy(l.source, w[0], strlen(w[0]) + 1);
		memcpy(l.path, w[1], strlen(w[1]) + 1);
		memcpy(l.fstype, w[2], strlen(w[2]) + 1);
		res = NULL;
		if (st_nresults < ST_RESULTS_MAX) {
			res = &st_results[st_nresults++];
			memset(res, 0, sizeof(*res));
			memcpy(res->source, l.source, sizeof(res->source));
			memcpy(res->path, l.path, sizeof(res->path));
		} else
			res = &spare;
		n++;
		if (nw >= 4 && st_options(where, w[3], &l) < 0) {
			snprintf(res->error, sizeof(res->error), "options "
			    "refused");
			continue;
		}
		st_line(where, &l, res);
	}
	fclose(f);
	return n;
}

json_t *
agent_storage_json(void)
{
	json_t *a, *o;
	unsigned i;
	bool ok = true;

	if ((a = json_array()) == NULL)
		return NULL;
	for (i = 0; i < st_nresults && ok; i++) {
		const struct st_result *r = &st_results[i];
		bool mounted = r->device[0] && st_mounted(r->device, r->path) == 1;

		o = json_pack("{s:s, s:s, s:o, s:o, s:b}", "source", r->source,
		    "path", r->path, "device", r->device[0] ?
		    json_string(r->device) : json_null(), "fstype",
		    r->fstype[0] ? json_string(r->fstype) : json_null(),
		    "mounted", mounted);
		if (o != NULL && !mounted && r->error[0] &&
		    json_object_set_new(o, "error", json_string(r->error)) < 0)
			ok = false;
		if (o == NULL || json_array_append_new(a, o) < 0)
			ok = false;
	}
	if (!ok) {
		json_decref(a);
		return NULL;
	}
	return a;
}
