/*
 * Orchestrator backup and restore.  A backup is one tar file holding:
 *   MANIFEST    "hypervisor-backup 1", hvd's version, the time;
 *   hvd.db      an SQLite online backup of the inventory (consistent while
 *               hvd keeps serving: sqlite3_backup reads one snapshot);
 *   master.key  the key that seals every secret in hvd.db.
 * Everything an orchestrator knows is in those two files, so a restored
 * hvd knows the same hosts, networks and keys.
 *
 * GET /api/v1/backup serves it to an admin over the local unix socket only
 * (it carries the master key; the TCP API has no TLS).  hvctl writes it
 * mode 0600.  `hvd --restore FILE` unpacks it into a state directory that
 * has no inventory yet, then checks that the database opens and that the
 * master key opens the sealed agent-link key.
 *
 * Blocking: the backup copies the database file inside one event (a few
 * MiB for a thousand hosts, milliseconds); restore runs before the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <microhttpd.h>
#include <sodium.h>

#include "rest.h"

#define BACKUP_MAGIC		"hypervisor-backup 1\n"
#define BACKUP_DB_MAX		(1024ll * 1024 * 1024)
#define BACKUP_KEY_LEN		32

static int
backup_slurp(const char *path, size_t max, char **out, size_t *len)
{
	struct stat st;
	char *buf;
	int fd, r = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -errno;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size > max) {
		close(fd);
		return -EINVAL;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	if (read(fd, buf, (size_t)st.st_size) != st.st_size)
		r = -EIO;
	close(fd);
	if (r < 0) {
		free(buf);
		return r;
	}
	*out = buf;
	*len = (size_t)st.st_size;
	return 0;
}

static int
backup_add(struct archive *a, const char *name, const char *data, size_t len,
    int64_t now)
{
	struct archive_entry *e = archive_entry_new();
	int r = 0;

	if (e == NULL)
		return -ENOMEM;
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0600);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_entry_set_mtime(e, now, 0);
	if (archive_write_header(a, e) != ARCHIVE_OK ||
	    archive_write_data(a, data, len) != (la_ssize_t)len)
		r = -EIO;
	archive_entry_free(e);
	return r;
}

void
api_backup(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	char tmp[PATH_MAX], key[PATH_MAX], manifest[160];
	char *db = NULL, *mk = NULL, *tar = NULL;
	size_t dblen = 0, mklen = 0, cap, used = 0;
	struct archive *a = NULL;
	int64_t now = hvd_now_wall();
	int r;

	if (strncmp(req->actor, "uid:", 4) != 0) {
		http_error(rep, MHD_HTTP_FORBIDDEN, "a backup holds the master key: "
		    "take it over the local socket (hvctl on the orchestrator)");
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s/.backup.db", hvd->conf->state_dir);
	snprintf(key, sizeof(key), "%s/master.key", hvd->conf->state_dir);
	unlink(tmp);
	if ((r = db_backup_to(hvd->db, tmp)) < 0 ||
	    (r = backup_slurp(tmp, BACKUP_DB_MAX, &db, &dblen)) < 0 ||
	    (r = backup_slurp(key, BACKUP_KEY_LEN, &mk, &mklen)) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "backup failed: %s",
		    strerror(-r));
		goto out;
	}
	snprintf(manifest, sizeof(manifest), BACKUP_MAGIC "hvd %s\ntime %lld\n",
	    HV_VERSION, (long long)now);
	cap = dblen + mklen + 64 * 1024;
	if ((tar = malloc(cap)) == NULL || (a = archive_write_new()) == NULL ||
	    archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_open_memory(a, tar, cap, &used) != ARCHIVE_OK ||
	    backup_add(a, "MANIFEST", manifest, strlen(manifest), now) < 0 ||
	    backup_add(a, "hvd.db", db, dblen, now) < 0 ||
	    backup_add(a, "master.key", mk, mklen, now) < 0 ||
	    archive_write_close(a) != ARCHIVE_OK) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "backup: cannot "
		    "write the archive");
		goto out;
	}
	if ((rep->blob = blob_new(tar, used)) == NULL) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		goto out;
	}
	rep->status = MHD_HTTP_OK;
	rep->content_type = "application/x-tar";
	db_event_record(hvd->db, "hvd.backup", "hvd", req->actor, "backup taken",
	    now);
	log_info("backup: taken by %s (%zu bytes)", req->actor, used);
out:
	if (a)
		archive_write_free(a);
	if (mk)
		sodium_memzero(mk, mklen);
	if (tar)
		sodium_memzero(tar, cap);
	free(mk);
	free(tar);
	free(db);
	unlink(tmp);
}

static int
backup_write(const char *dir, const char *name, struct archive *a,
    int64_t size, char *err, size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX], buf[65536];
	la_ssize_t n;
	int64_t total = 0;
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.restore", dir, name);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -errno;
	}
	while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) {
		total += n;
		if (total > size || write(fd, buf, (size_t)n) != n) {
			r = -EIO;
			break;
		}
	}
	sodium_memzero(buf, sizeof(buf));
	if (n < 0 || total != size)
		r = -EIO;
	if (fsync(fd) == -1 && r == 0)
		r = -errno;
	close(fd);
	if (r == 0 && rename(tmp, path) == -1)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		snprintf(err, errlen, "%s: cannot write it (%s)", name,
		    strerror(-r));
	}
	return r;
}

int
backup_restore(const struct hvd_config *conf, const char *file, char *err,
    size_t errlen)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	char dbpath[PATH_MAX];
	bool have_manifest = false, have_db = false, have_key = false;
	struct stat st;
	int r = -EINVAL;

	snprintf(dbpath, sizeof(dbpath), "%s/hvd.db", conf->state_dir);
	if (stat(dbpath, &st) == 0) {
		snprintf(err, errlen, "%s already exists: restore only into a "
		    "state directory without an inventory", dbpath);
		archive_read_free(a);
		return -EEXIST;
	}
	if (mkdir(conf->state_dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", conf->state_dir, strerror(errno));
		archive_read_free(a);
		return -errno;
	}
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, file, 65536) != ARCHIVE_OK) {
		snprintf(err, errlen, "%s: %s", file, archive_error_string(a));
		goto out;
	}
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		int64_t size = archive_entry_size(e);

		r = -EINVAL;
		if (archive_entry_filetype(e) != AE_IFREG) {
			snprintf(err, errlen, "%s: entry '%.64s' is not a regular "
			    "file", file, name);
			goto out;
		}
		if (strcmp(name, "MANIFEST") == 0 && !have_manifest &&
		    size < 1024) {
			char buf[1024] = "";

			if (archive_read_data(a, buf, sizeof(buf) - 1) < 0 ||
			    strncmp(buf, BACKUP_MAGIC, strlen(BACKUP_MAGIC)) != 0) {
				snprintf(err, errlen, "%s: not a hypervisor backup "
				    "(MANIFEST)", file);
				goto out;
			}
			have_manifest = true;
		} else if (strcmp(name, "hvd.db") == 0 && have_manifest &&
		    !have_db && size > 0 && size <= BACKUP_DB_MAX) {
			if ((r = backup_write(conf->state_dir, "hvd.db", a, size,
			    err, errlen)) < 0)
				goto out;
			have_db = true;
		} else if (strcmp(name, "master.key") == 0 && have_manifest &&
		    !have_key && size == BACKUP_KEY_LEN) {
			if ((r = backup_write(conf->state_dir, "master.key", a, size,
			    err, errlen)) < 0)
				goto out;
			have_key = true;
		} else {
			snprintf(err, errlen, "%s: unexpected entry '%.64s' (or "
			    "out of order, repeated, or of the wrong size)", file,
			    name);
			goto out;
		}
	}
	if (r != ARCHIVE_EOF) {
		snprintf(err, errlen, "%s: %s", file, archive_error_string(a));
		r = -EIO;
		goto out;
	}
	if (!have_db || !have_key) {
		snprintf(err, errlen, "%s: incomplete backup: %s missing", file,
		    have_db ? "master.key" : "hvd.db");
		r = -EINVAL;
		goto out;
	}
	r = 0;
out:
	archive_read_free(a);
	if (r < 0 && r != -EEXIST) {
		/* Leave no half restore behind. */
		char p[PATH_MAX];

		if (have_db)
			unlink(dbpath);
		snprintf(p, sizeof(p), "%s/master.key", conf->state_dir);
		if (have_key)
			unlink(p);
	}
	return r;
}
