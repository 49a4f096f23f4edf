/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvctl backup [--force] FILE: the orchestrator's inventory and master key
 * in one file, mode 0600 (restore it with hvd --restore FILE).
 *
 * The backup holds the master key, so it is never in a file that is
 * partial or readable by others: it is written to an unnamed file
 * (O_TMPFILE) in FILE's directory, mode 0600, fsynced, and only then
 * given a name, so an interrupted hvctl leaves nothing behind.  Where the
 * filesystem has no O_TMPFILE, a 0600 temporary name beside FILE stands
 * in, removed on failure.  FILE is replaced only with --force, and the
 * check is the rename itself (RENAME_NOREPLACE), not a stat before it.
 *
 * Must never: follow an option-looking FILE ("-x") as a name, overwrite
 * without --force, or leave the key in a file mode other than 0600.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hvctl.h"

struct backup_out {
	const char *file;
	char dir[4096];
	char tmp[4096];		/* its temporary name, "" while unnamed */
	bool unnamed;		/* O_TMPFILE: no name until complete */
	int fd;
};

/* Opens the file the download goes to; prints why not. */
static int
backup_open(struct backup_out *o)
{
	const char *slash = strrchr(o->file, '/');
	int n;

	if (slash == NULL)
		snprintf(o->dir, sizeof(o->dir), ".");
	else if (slash == o->file)
		snprintf(o->dir, sizeof(o->dir), "/");
	else
		snprintf(o->dir, sizeof(o->dir), "%.*s", (int)(slash - o->file),
		    o->file);
	o->fd = open(o->dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (o->fd != -1) {
		o->unnamed = true;
	} else if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) {
		/* No O_TMPFILE here: mkstemp's name, 0600 from the start. */
		n = snprintf(o->tmp, sizeof(o->tmp), "%s.XXXXXX", o->file);
		if (n < 0 || (size_t)n >= sizeof(o->tmp)) {
			fprintf(stderr, "hvctl backup: %s: name too long\n",
			    o->file);
			return HVCTL_USAGE;
		}
		if ((o->fd = mkostemp(o->tmp, O_CLOEXEC)) == -1)
			o->tmp[0] = '\0';
	}
	if (o->fd == -1 || fchmod(o->fd, 0600) == -1) {
		fprintf(stderr, "hvctl backup: %s: %s\n", o->tmp[0] ? o->tmp :
		    o->dir, strerror(errno));
		return HVCTL_FAIL;
	}
	return HVCTL_OK;
}

/* Names an unnamed file, at a fresh temporary name beside FILE. */
static int
backup_name(struct backup_out *o)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", o->fd);
	for (unsigned i = 0; i < 100; i++) {
		snprintf(o->tmp, sizeof(o->tmp), "%s.%ld.%u", o->file,
		    (long)getpid(), i);
		if (linkat(AT_FDCWD, proc, AT_FDCWD, o->tmp,
		    AT_SYMLINK_FOLLOW) == 0 ||
		    linkat(o->fd, "", AT_FDCWD, o->tmp, AT_EMPTY_PATH) == 0)
			return 0;
		if (errno != EEXIST)
			break;
	}
	fprintf(stderr, "hvctl backup: %s: %s\n", o->tmp, strerror(errno));
	o->tmp[0] = '\0';
	return -1;
}

/* Gives the complete, synced file its name FILE. */
static int
backup_publish(struct backup_out *o, bool force)
{
	int dfd, r;

	if (o->unnamed && backup_name(o) == -1)
		return HVCTL_FAIL;
	if (force)
		r = rename(o->tmp, o->file);
	else if ((r = renameat2(AT_FDCWD, o->tmp, AT_FDCWD, o->file,
	    RENAME_NOREPLACE)) == -1 && errno == EINVAL &&
	    (r = link(o->tmp, o->file)) == 0)
		unlink(o->tmp);
	if (r == -1) {
		if (errno == EEXIST)
			fprintf(stderr, "hvctl backup: %s exists (it appeared "
			    "while the backup was written); give --force to "
			    "replace it\n", o->file);
		else
			fprintf(stderr, "hvctl backup: %s: %s\n", o->file,
			    strerror(errno));
		return HVCTL_FAIL;
	}
	o->tmp[0] = '\0';
	/* The new name is durable too, not only the contents. */
	if ((dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		fsync(dfd);
		close(dfd);
	}
	return HVCTL_OK;
}

int
cmd_backup(struct hvctl *h, int argc, char **argv)
{
	struct backup_out o = { .fd = -1 };
	struct hvctl_reply rep = { 0 };
	struct stat st = { 0 };
	bool force = false, ended = false;
	int i, r;

	for (i = 1; i < argc; i++) {
		if (!ended && strcmp(argv[i], "--force") == 0)
			force = true;
		else if (!ended && strcmp(argv[i], "--") == 0)
			ended = true;
		else if (o.file == NULL)
			o.file = argv[i];
		else
			return hvctl_usage_error("backup", "expects one FILE");
	}
	if (o.file == NULL || o.file[0] == '\0')
		return hvctl_usage_error("backup", "expects one FILE");
	/* A mistyped option must not become a file: "./-x" names one. */
	if (o.file[0] == '-')
		return hvctl_usage_error("backup", "'%s' looks like an option, "
		    "not a file name; use ./%s", o.file, o.file);
	if (!force && lstat(o.file, &st) == 0) {
		fprintf(stderr, "hvctl backup: %s exists; give --force to "
		    "replace it\n", o.file);
		return HVCTL_FAIL;
	}
	if ((r = backup_open(&o)) != HVCTL_OK)
		goto out;
	r = client_download(h, "/api/v1/backup", o.fd, &rep);
	if (r == HVCTL_OK)
		r = client_check(&rep, "backup");
	if (r == HVCTL_OK && (fsync(o.fd) == -1 || fstat(o.fd, &st) == -1)) {
		fprintf(stderr, "hvctl backup: %s: %s\n", o.file,
		    strerror(errno));
		r = HVCTL_FAIL;
	} else if (r == HVCTL_OK && st.st_size == 0) {
		fprintf(stderr, "hvctl backup: hvd sent an empty backup\n");
		r = HVCTL_FAIL;
	}
	if (r == HVCTL_OK)
		r = backup_publish(&o, force);
	if (r == HVCTL_OK && !h->json)
		printf("backup written to %s (%lld bytes, mode 0600); restore "
		    "with: hvd --restore %s\n", o.file, (long long)st.st_size,
		    o.file);
out:
	if (o.tmp[0])
		unlink(o.tmp);
	if (o.fd != -1)
		close(o.fd);
	client_reply_dispose(&rep);
	return r;
}
