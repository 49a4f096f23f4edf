/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Orchestrator backup and restore.  A backup is one tar file holding:
 *   MANIFEST         "hypervisor-backup 1", hvd's version, the time;
 *   hvd.db           an SQLite online backup of the inventory;
 *   master.key       the key that seals every secret in hvd.db;
 *   tls/api.crt, tls/api.key  the TCP API's self-signed TLS pair, when
 *                    hvd made one (an operator's api-tls-cert stays theirs),
 *                    so a restored hvd presents the key clients pinned;
 *   images/<sha256>  each file of the image store that the inventory's
 *                    images table names, under its content address;
 *   boot/<name>      the boot root's files (what hvctl boot import and hvd
 *                    put there) and their .NAME.source notes, when the boot
 *                    root is inside the state directory (the default).
 * There is no volumes table yet: when there is, its rows travel in hvd.db
 * and a volume's data stays with the host that serves it.
 *
 * Taking one: GET /api/v1/backup, to an admin over the local unix socket
 * only (it carries the master key and the TLS key).  Within the
 * request's callback: the database snapshot, the image list of the same
 * instant, and one open descriptor per file, so the backup is one
 * consistent set whatever is added or removed while it is written.  The
 * tar then goes into an unnamed temporary file in the state directory,
 * BACKUP_TURN bytes per turn of the event loop, each image hashed on the
 * way (a damaged store copy fails the backup, not a later restore); the
 * deferred reply sends the file zero-copy when it is complete.  No file is
 * ever held in memory whole: hvd grows by one BACKUP_CHUNK buffer.  The
 * price is disk: the state directory needs room for one more copy while a
 * backup is taken.  One backup at a time.
 *
 * restore.c restores one; backup_format.c holds the names and rules.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <event2/event.h>
#include <microhttpd.h>
#include <sodium.h>

#include "backup_format.h"
#include "rest.h"

/* --- taking a backup */

struct backup_src {
	char name[BACKUP_NAME_MAX];	/* in the tar */
	char image[64];			/* an image's name, "" otherwise */
	int fd;
	uint64_t size;
	mode_t perm;
};

struct backup_job {
	struct hvd *hvd;
	struct http_deferred *d;	/* NULL until the reply is deferred */
	struct event *ev;
	struct archive *a;
	int out;			/* the unnamed tar file */
	struct backup_src *src;
	size_t nsrc, cap, cur, nimages, nboot;
	uint64_t left;			/* of src[cur], once its header is out */
	bool in_entry;
	crypto_hash_sha256_state sha;
	char *buf;			/* BACKUP_CHUNK */
	char actor[64];
	int64_t now;
};

static struct backup_job *backup_running;
static const struct timeval backup_asap = { 0, 0 };

static void backup_turn(evutil_socket_t unused, short what, void *arg);

static void
backup_job_free(struct backup_job *job)
{
	if (job == NULL)
		return;
	if (job->ev)
		event_free(job->ev);
	if (job->a)
		archive_write_free(job->a);
	for (size_t i = 0; i < job->nsrc; i++)
		if (job->src[i].fd != -1)
			close(job->src[i].fd);
	if (job->out != -1)
		close(job->out);
	if (job->buf) {
		sodium_memzero(job->buf, BACKUP_CHUNK);	/* held the key */
		free(job->buf);
	}
	free(job->src);
	free(job);
}

/* Takes ownership of fd. */
static int
backup_src_add(struct backup_job *job, const char *name, const char *image,
    int fd, uint64_t size, mode_t perm)
{
	struct backup_src *s;

	if (job->nsrc == job->cap) {
		size_t cap = job->cap ? job->cap * 2 : 16;

		if ((s = reallocarray(job->src, cap, sizeof(*s))) == NULL) {
			close(fd);
			return -ENOMEM;
		}
		job->src = s;
		job->cap = cap;
	}
	s = &job->src[job->nsrc++];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->image, sizeof(s->image), "%s", image ? image : "");
	s->fd = fd;
	s->size = size;
	s->perm = perm;
	return 0;
}

/* Opens path as a regular file of the state directory, size into *size. */
static int
backup_open(const char *path, uint64_t *size)
{
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -errno;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

static int
backup_sha_cmp(const void *a, const void *b)
{
	return strcmp(((const struct image_row *)a)->sha256,
	    ((const struct image_row *)b)->sha256);
}

/* Every distinct file the images table names, opened now. */
static int
backup_add_images(struct backup_job *job, unsigned *status, char *why,
    size_t len)
{
	const char *dir = job->hvd->conf->state_dir;
	struct image_row *rows = NULL;
	char name[BACKUP_NAME_MAX];
	size_t n = 0;
	struct stat st;
	int dfd = -1, fd, r = 0;

	if (db_image_list(job->hvd->db, &rows, &n) < 0) {
		snprintf(why, len, "cannot list the images (database error)");
		return -EIO;
	}
	if (n > 1)	/* qsort takes no NULL, even for no rows */
		qsort(rows, n, sizeof(*rows), backup_sha_cmp);
	for (size_t i = 0; i < n; i++) {
		const struct image_row *im = &rows[i];

		if (i > 0 && strcmp(im->sha256, rows[i - 1].sha256) == 0)
			continue;	/* one file, several names */
		if (dfd == -1 && (dfd = open(dir, O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC)) == -1) {
			r = -errno;
			snprintf(why, len, "%s: %s", dir, strerror(-r));
			break;
		}
		snprintf(name, sizeof(name), BACKUP_IMAGES "%s", im->sha256);
		fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd == -1 || fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
		    (uint64_t)st.st_size != im->size) {
			r = fd == -1 ? -errno : -EINVAL;
			snprintf(why, len, "image '%s': %s/%s: %s; a backup of it "
			    "would not restore (hvctl image rm %s, then add it "
			    "again)", im->name, dir, name, fd == -1 ?
			    strerror(errno) : "is not the size the inventory "
			    "says", im->name);
			if (fd != -1)
				close(fd);
			*status = MHD_HTTP_CONFLICT;
			break;
		}
		if ((r = backup_src_add(job, name, im->name, fd,
		    (uint64_t)st.st_size, 0644)) < 0) {
			snprintf(why, len, "out of memory");
			break;
		}
		job->nimages++;
	}
	if (dfd != -1)
		close(dfd);
	free(rows);
	return r;
}

static int
backup_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* state-dir/tls/'s pair, both or neither. */
static int
backup_add_tls(struct backup_job *job, char *why, size_t len)
{
	static const struct { const char *name; unsigned mode; } f[2] = {
		{ BACKUP_TLS_CERT, 0644 }, { BACKUP_TLS_KEY, 0600 },
	};
	const char *dir = job->hvd->conf->state_dir;
	char path[PATH_MAX];
	uint64_t size[2];
	int fd[2] = { -1, -1 };

	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, f[i].name);
		fd[i] = backup_open(path, &size[i]);
		if (fd[i] == -ENOENT)
			continue;
		if (fd[i] < 0 || size[i] == 0 || size[i] > BACKUP_TLS_MAX) {
			snprintf(why, len, "%s: %s", path, fd[i] < 0 ?
			    strerror(-fd[i]) : "not a PEM file of 1..65536 bytes");
			goto fail;
		}
	}
	if ((fd[0] < 0) != (fd[1] < 0)) {
		snprintf(why, len, "%s/tls holds only one of api.crt and api.key",
		    dir);
		goto fail;
	}
	if (fd[0] < 0)
		return 0;
	for (int i = 0; i < 2; i++) {
		if (backup_src_add(job, f[i].name, NULL, fd[i], size[i],
		    f[i].mode) < 0) {
			snprintf(why, len, "out of memory");
			goto fail;
		}
		fd[i] = -1;
	}
	return 0;
fail:
	for (int i = 0; i < 2; i++)
		if (fd[i] >= 0)
			close(fd[i]);
	return -1;
}

/* The boot root's files, when the boot root is the state directory's. */
static int
backup_add_boot(struct backup_job *job, char *why, size_t len)
{
	const struct hvd_config *c = job->hvd->conf;
	char state[PATH_MAX], boot[PATH_MAX], name[BACKUP_NAME_MAX];
	char **names = NULL;
	size_t n = 0, cap = 0, sl;
	struct dirent *de;
	struct stat st;
	DIR *d = NULL;
	int rootfd = -1, fd, r = 0;

	if (realpath(c->state_dir, state) == NULL ||
	    realpath(c->boot_root, boot) == NULL)
		return 0;	/* no boot root yet: nothing to carry */
	sl = strlen(state);
	if (strncmp(boot, state, sl) != 0 || boot[sl] != '/')
		return 0;	/* the operator's own: theirs to back up */
	if ((rootfd = open(boot, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    (fd = dup(rootfd)) == -1 || (d = fdopendir(fd)) == NULL) {
		r = -errno;
		snprintf(why, len, "boot root %s: %s", boot, strerror(-r));
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		char **nn;

		if (!backup_boot_name(de->d_name)) {
			if (de->d_name[0] != '.')
				log_debug("backup: boot root: '%s' is not a boot "
				    "file name; left out", de->d_name);
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nn = reallocarray(names, cap, sizeof(*nn))) == NULL) {
				r = -ENOMEM;
				goto nomem;
			}
			names = nn;
		}
		if ((names[n] = strdup(de->d_name)) == NULL) {
			r = -ENOMEM;
			goto nomem;
		}
		n++;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), backup_name_cmp);
	for (size_t i = 0; i < n; i++) {
		/* The served-file rule: what hvd would send under that name,
		 * a symlink leading out of the root being nothing. */
		if ((fd = served_open(rootfd, names[i], &st)) < 0) {
			log_debug("backup: boot root: '%s' left out: %s",
			    names[i], strerror(-fd));
			continue;
		}
		snprintf(name, sizeof(name), BACKUP_BOOT "%s", names[i]);
		if ((r = backup_src_add(job, name, NULL, fd,
		    (uint64_t)st.st_size, 0644)) < 0)
			goto nomem;
		job->nboot++;
	}
	goto out;
nomem:
	snprintf(why, len, "out of memory");
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (d)
		closedir(d);
	if (rootfd != -1)
		close(rootfd);
	return r;
}

/* An unnamed file in dir: nothing to clean up whatever happens to hvd. */
static int
backup_tmpfile(const char *dir)
{
	char path[PATH_MAX];
	int fd;

	if ((fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) != -1)
		return fd;
	snprintf(path, sizeof(path), "%s/.backup.XXXXXX", dir);
	if ((fd = mkostemp(path, O_CLOEXEC)) == -1)
		return -errno;
	unlink(path);
	return fd;
}

static int
backup_header(struct archive *a, const char *name, uint64_t size,
    mode_t perm, int64_t now)
{
	struct archive_entry *e = archive_entry_new();
	int r = 0;

	if (e == NULL)
		return -ENOMEM;
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, perm);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_mtime(e, now, 0);
	if (archive_write_header(a, e) != ARCHIVE_OK)
		r = -EIO;
	archive_entry_free(e);
	return r;
}

/*
 * Everything of one instant, opened: the snapshot of hvd.db, master.key,
 * the images and the boot files, and the tar begun with its MANIFEST.
 * NULL with *status and why when it cannot be taken.
 */
static struct backup_job *
backup_job_new(struct hvd *hvd, const char *actor, unsigned *status,
    char *why, size_t len)
{
	const char *dir = hvd->conf->state_dir;
	char path[PATH_MAX], manifest[160];
	struct backup_job *job;
	struct statvfs vfs;
	uint64_t size, need;
	int fd, r;

	*status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	if ((job = calloc(1, sizeof(*job))) == NULL ||
	    (job->buf = malloc(BACKUP_CHUNK)) == NULL) {
		snprintf(why, len, "out of memory");
		goto fail;
	}
	job->out = -1;
	job->hvd = hvd;
	job->now = hvd_now_wall();
	snprintf(job->actor, sizeof(job->actor), "%s", actor);
	if ((job->ev = event_new(hvd->base, -1, 0, backup_turn, job)) == NULL) {
		snprintf(why, len, "out of memory");
		goto fail;
	}
	if ((job->out = backup_tmpfile(dir)) < 0) {
		snprintf(why, len, "%s: %s", dir, strerror(-job->out));
		goto fail;
	}
	/* The snapshot is opened and unlinked at once: a fixed name is
	 * safe, as nothing else runs in between. */
	snprintf(path, sizeof(path), "%s/.backup.db", dir);
	unlink(path);
	r = db_backup_to(hvd->db, path);
	fd = r < 0 ? r : backup_open(path, &size);
	unlink(path);
	if (fd < 0 || size == 0 || size > BACKUP_DB_MAX) {
		if (fd >= 0)
			close(fd);
		snprintf(why, len, "cannot copy the inventory");
		goto fail;
	}
	if (backup_src_add(job, "hvd.db", NULL, fd, size, 0600) < 0)
		goto nomem;
	snprintf(path, sizeof(path), "%s/master.key", dir);
	if ((fd = backup_open(path, &size)) < 0 || size != BACKUP_KEY_LEN) {
		snprintf(why, len, "%s: %s", path, fd < 0 ? strerror(-fd) :
		    "not a master key");
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	if (backup_src_add(job, "master.key", NULL, fd, size, 0600) < 0)
		goto nomem;
	if (backup_add_tls(job, why, len) < 0)
		goto fail;
	if (backup_add_images(job, status, why, len) < 0 ||
	    backup_add_boot(job, why, len) < 0)
		goto fail;
	/* Refuse at once, not gigabytes later: the copy needs the room. */
	need = 64 * 1024;
	for (size_t i = 0; i < job->nsrc; i++)
		need += job->src[i].size + 3 * 512;
	if (fstatvfs(job->out, &vfs) == 0 &&
	    (uint64_t)vfs.f_bavail * vfs.f_frsize < need) {
		*status = MHD_HTTP_INSUFFICIENT_STORAGE;
		snprintf(why, len, "%s has %llu MiB free; the backup's "
		    "temporary copy needs %llu MiB", dir,
		    (unsigned long long)((uint64_t)vfs.f_bavail * vfs.f_frsize >>
		    20), (unsigned long long)(need >> 20) + 1);
		goto fail;
	}
	snprintf(manifest, sizeof(manifest), BACKUP_MAGIC "hvd %s\ntime %lld\n",
	    HV_VERSION, (long long)job->now);
	if ((job->a = archive_write_new()) == NULL ||
	    archive_write_set_format_pax_restricted(job->a) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(job->a, 1) != ARCHIVE_OK ||
	    archive_write_open_fd(job->a, job->out) != ARCHIVE_OK ||
	    backup_header(job->a, "MANIFEST", strlen(manifest), 0600,
	    job->now) < 0 ||
	    archive_write_data(job->a, manifest, strlen(manifest)) !=
	    (la_ssize_t)strlen(manifest)) {
		snprintf(why, len, "cannot write the archive");
		goto fail;
	}
	return job;
nomem:
	snprintf(why, len, "out of memory");
fail:
	backup_job_free(job);
	return NULL;
}

/* Ends the job with an error reply. */
static void
backup_fail(struct backup_job *job, unsigned status, const char *why)
{
	struct http_reply rep = { 0 };

	log_warnx("backup: for %s: %s", job->actor, why);
	http_error(&rep, status, "backup failed: %s", why);
	http_finish(job->d, &rep);
	backup_running = NULL;
	backup_job_free(job);
}

/* The tar is complete: send it, zero-copy, from the file. */
static void
backup_done(struct backup_job *job)
{
	struct http_reply rep = { 0 };
	struct stat st;

	if (archive_write_close(job->a) != ARCHIVE_OK ||
	    fstat(job->out, &st) == -1) {
		backup_fail(job, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write "
		    "the archive");
		return;
	}
	rep.status = MHD_HTTP_OK;
	rep.content_type = "application/x-tar";
	rep.file_fd = job->out;		/* the reply owns it now */
	rep.file_off = 0;
	rep.file_len = (uint64_t)st.st_size;
	job->out = -1;
	db_event_record(job->hvd->db, "hvd.backup", "hvd", job->actor,
	    "backup taken", job->now);
	log_info("backup: taken by %s (%lld bytes: the inventory, the master "
	    "key, %zu images, %zu boot files)", job->actor,
	    (long long)st.st_size, job->nimages, job->nboot);
	http_finish(job->d, &rep);
	backup_running = NULL;
	backup_job_free(job);
}

/* One turn of the loop: up to BACKUP_TURN bytes into the tar. */
static void
backup_turn(evutil_socket_t unused, short what, void *arg)
{
	struct backup_job *job = arg;
	size_t budget = BACKUP_TURN;
	char why[512];

	(void)unused;
	(void)what;
	while (budget > 0 && job->cur < job->nsrc) {
		struct backup_src *s = &job->src[job->cur];

		if (!job->in_entry) {
			if (backup_header(job->a, s->name, s->size, s->perm,
			    job->now) < 0)
				goto write_error;
			crypto_hash_sha256_init(&job->sha);
			job->left = s->size;
			job->in_entry = true;
		}
		if (job->left > 0) {
			size_t want = job->left < BACKUP_CHUNK ? job->left :
			    BACKUP_CHUNK;
			ssize_t n = read(s->fd, job->buf, want);

			if (n <= 0) {
				snprintf(why, sizeof(why), "%s: %s", s->name, n < 0 ?
				    strerror(errno) : "shrank while the backup "
				    "was taken");
				backup_fail(job, MHD_HTTP_INTERNAL_SERVER_ERROR, why);
				return;
			}
			if (s->image[0])
				crypto_hash_sha256_update(&job->sha,
				    (const uint8_t *)job->buf, (size_t)n);
			if (archive_write_data(job->a, job->buf, (size_t)n) != n)
				goto write_error;
			job->left -= (uint64_t)n;
			budget -= (size_t)n < budget ? (size_t)n : budget;
			if (job->left > 0)
				continue;
		}
		if (s->image[0]) {
			uint8_t digest[crypto_hash_sha256_BYTES];
			char hex[65];

			crypto_hash_sha256_final(&job->sha, digest);
			sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
			if (strcmp(hex, s->name + strlen(BACKUP_IMAGES)) != 0) {
				snprintf(why, sizeof(why), "image '%s': the image "
				    "store's %s hashes to sha256 %s: it is "
				    "damaged (hvctl image rm %s, then add it "
				    "again)", s->image, s->name, hex, s->image);
				backup_fail(job, MHD_HTTP_CONFLICT, why);
				return;
			}
		}
		close(s->fd);
		s->fd = -1;
		job->cur++;
		job->in_entry = false;
		/* A header costs too: many small files still yield. */
		budget -= budget < 4096 ? budget : 4096;
	}
	if (job->cur < job->nsrc) {
		if (event_add(job->ev, &backup_asap) == -1)
			backup_fail(job, MHD_HTTP_INTERNAL_SERVER_ERROR,
			    "cannot schedule the copy");
		return;
	}
	backup_done(job);
	return;
write_error:
	snprintf(why, sizeof(why), "cannot write the archive: %s",
	    archive_error_string(job->a) ? archive_error_string(job->a) : "?");
	backup_fail(job, MHD_HTTP_INTERNAL_SERVER_ERROR, why);
}

void
api_backup(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	struct backup_job *job;
	unsigned status;
	char why[512];

	if (strncmp(req->actor, "uid:", 4) != 0) {
		http_error(rep, MHD_HTTP_FORBIDDEN, "a backup holds the master key: "
		    "take it over the local socket (hvctl on the orchestrator)");
		return;
	}
	if (backup_running) {
		http_error(rep, MHD_HTTP_CONFLICT, "a backup is being taken (for "
		    "%s); take yours when it is done", backup_running->actor);
		return;
	}
	if ((job = backup_job_new(hvd, req->actor, &status, why,
	    sizeof(why))) == NULL) {
		log_warnx("backup: for %s: %s", req->actor, why);
		http_error(rep, status, "backup failed: %s", why);
		return;
	}
	/* Scheduled before the reply is deferred: it runs from the loop. */
	if (event_add(job->ev, &backup_asap) == -1) {
		backup_job_free(job);
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "backup: cannot "
		    "schedule the copy");
		return;
	}
	job->d = http_defer(req, rep);
	backup_running = job;
	log_info("backup: for %s: %zu files, %zu of them images, %zu boot "
	    "files", req->actor, job->nsrc, job->nimages, job->nboot);
}

void
backup_shutdown(void)
{
	if (backup_running)
		backup_fail(backup_running, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "hvd is stopping");
}

