/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Orchestrator restore (hvd --restore FILE); the backup's format is in
 * backup.c's comment and backup_format.h.
 *
 * Restoring one (hvd --restore, before the loop) into a state directory
 * without an inventory: every entry is unpacked into a temporary directory
 * beside its destination (state-dir/.restore.*, boot-root/.restore.*) and
 * checked: each image's bytes against its name and the inventory's
 * images.sha256 and size, nothing missing and nothing extra, the inventory
 * opens (migrates) and the master key opens its sealed keys.  Only then is
 * it all renamed into place, hvd.db last: hvd.db is what makes a state
 * directory inventoried.  Any failure removes the temporary directories and
 * leaves the state directory as it was.
 *
 * Must never: trust the tar.  Only the names backup_classify() allows
 * (backup.c lists them), regular files only (no symlink, hard link,
 * directory or device), no absolute path, no "..", each name once; the
 * error names the entry.
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

/* --- restoring one */

struct restore_image {
	char name[65];		/* its content address in the tar */
	char sha256[65];	/* what its bytes hash to */
	uint64_t size;
	bool listed;		/* by the inventory */
};

struct restore {
	const struct hvd_config *conf;
	const char *file;
	char tmp[PATH_MAX];		/* state-dir/.restore.XXXXXX */
	char boottmp[PATH_MAX];		/* boot-root/.restore.XXXXXX or "" */
	int tmpfd, imgfd, bootfd;
	struct restore_image *img;
	size_t nimg, capimg;
	bool have_manifest, have_db, have_key;
	bool have_tls[2];		/* tls/api.crt, tls/api.key */
	bool made_boot_root;		/* removed again on failure */
	char *err;
	size_t errlen;
};

/* Writes the entry's data into dirfd/name, a new file of exactly size
 * bytes; its SHA-256 into hex when hex is not NULL. */
static int
restore_write(struct restore *rs, struct archive *a, int dirfd,
    const char *name, const char *entry, int64_t size, mode_t perm,
    char hex[65])
{
	crypto_hash_sha256_state sha;
	uint8_t digest[crypto_hash_sha256_BYTES];
	char buf[65536];
	la_ssize_t n;
	int64_t total = 0;
	int fd, r = 0;

	if ((fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, perm)) == -1) {
		r = -errno;
		if (r == -EEXIST)
			snprintf(rs->err, rs->errlen, "%s: entry '%s' appears "
			    "twice", rs->file, entry);
		else
			snprintf(rs->err, rs->errlen, "%s: cannot write it (%s)",
			    entry, strerror(-r));
		return r;
	}
	crypto_hash_sha256_init(&sha);
	while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) {
		total += n;
		if (total > size || write(fd, buf, (size_t)n) != n) {
			r = total > size ? -EINVAL : -errno ? -errno : -EIO;
			break;
		}
		if (hex)
			crypto_hash_sha256_update(&sha, (uint8_t *)buf, (size_t)n);
	}
	sodium_memzero(buf, sizeof(buf));
	if (r == 0 && (n < 0 || total != size))
		r = -EIO;
	if (r == 0 && (fchmod(fd, perm) == -1 || fsync(fd) == -1))
		r = -errno;
	close(fd);
	if (r < 0) {
		snprintf(rs->err, rs->errlen, "%s: entry '%s': %s", rs->file, entry,
		    n < 0 ? archive_error_string(a) : strerror(-r));
		return r;
	}
	if (hex) {
		crypto_hash_sha256_final(&sha, digest);
		sodium_bin2hex(hex, 65, digest, sizeof(digest));
	}
	return 0;
}

/* A temporary directory beside where its files go; its fd. */
static int
restore_tmpdir(struct restore *rs, const char *dir, char *path, size_t len)
{
	int fd;

	snprintf(path, len, "%s/.restore.XXXXXX", dir);
	if (mkdtemp(path) == NULL) {
		snprintf(rs->err, rs->errlen, "%s: %s", dir, strerror(errno));
		path[0] = '\0';
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		snprintf(rs->err, rs->errlen, "%s: %s", path, strerror(errno));
		rmdir(path);
		path[0] = '\0';
	}
	return fd;
}

/* Removes what a restore killed half-way left: the state directory is
 * locked (main.c), so no .restore.* there belongs to anyone alive. */
static void
restore_sweep(const char *dir)
{
	struct dirent *de;
	char path[PATH_MAX];
	struct stat st;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, ".restore.", 9) == 0 &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode)) {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			backup_rmtree(path, 1);
		}
	closedir(d);
}

static int
restore_manifest(struct restore *rs, struct archive *a, int64_t size)
{
	char buf[1024] = "";
	size_t got = 0;
	la_ssize_t n;

	if (size >= (int64_t)sizeof(buf))
		goto bad;
	while (got < (size_t)size &&
	    (n = archive_read_data(a, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	if (got == (size_t)size &&
	    strncmp(buf, BACKUP_MAGIC, strlen(BACKUP_MAGIC)) == 0) {
		rs->have_manifest = true;
		return 0;
	}
bad:
	snprintf(rs->err, rs->errlen, "%s: not a hypervisor backup (MANIFEST)",
	    rs->file);
	return -EINVAL;
}

static int
restore_image(struct restore *rs, struct archive *a, const char *entry,
    int64_t size)
{
	const char *name = entry + strlen(BACKUP_IMAGES);
	struct restore_image *im;
	int r;

	if (rs->imgfd == -1 && (mkdirat(rs->tmpfd, "images", 0700) == -1 ||
	    (rs->imgfd = openat(rs->tmpfd, "images", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)) {
		snprintf(rs->err, rs->errlen, "%s/images: %s", rs->tmp,
		    strerror(errno));
		return -errno;
	}
	if (rs->nimg == rs->capimg) {
		size_t cap = rs->capimg ? rs->capimg * 2 : 16;

		if ((im = reallocarray(rs->img, cap, sizeof(*im))) == NULL) {
			snprintf(rs->err, rs->errlen, "out of memory");
			return -ENOMEM;
		}
		rs->img = im;
		rs->capimg = cap;
	}
	im = &rs->img[rs->nimg];
	memset(im, 0, sizeof(*im));
	snprintf(im->name, sizeof(im->name), "%s", name);
	im->size = (uint64_t)size;
	if ((r = restore_write(rs, a, rs->imgfd, name, entry, size, 0644,
	    im->sha256)) < 0)
		return r;
	rs->nimg++;
	return 0;
}

static int
restore_boot(struct restore *rs, struct archive *a, const char *entry,
    int64_t size)
{
	if (rs->bootfd == -1) {
		if (mkdir(rs->conf->boot_root, 0755) == 0)
			rs->made_boot_root = true;
		else if (errno != EEXIST) {
			snprintf(rs->err, rs->errlen, "boot root %s: %s",
			    rs->conf->boot_root, strerror(errno));
			return -errno;
		}
		if ((rs->bootfd = restore_tmpdir(rs, rs->conf->boot_root,
		    rs->boottmp, sizeof(rs->boottmp))) == -1)
			return -EIO;
	}
	return restore_write(rs, a, rs->bootfd, entry + strlen(BACKUP_BOOT),
	    entry, size, 0644, NULL);
}

/* One entry of the tar, refused unless it is exactly what a backup holds. */
static int
restore_entry(struct restore *rs, struct archive *a, struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e);
	const char *link = archive_entry_hardlink(e);
	int64_t size = archive_entry_size(e);
	char shown[96], target[96], why[160];
	int kind;

	backup_shown(name, shown, sizeof(shown));
	if ((kind = backup_classify(name, why, sizeof(why))) < 0) {
		snprintf(rs->err, rs->errlen, "%s: entry '%s' %s", rs->file, shown,
		    why);
		return -EINVAL;
	}
	if (link != NULL || archive_entry_filetype(e) == AE_IFLNK ||
	    archive_entry_symlink(e) != NULL) {
		snprintf(rs->err, rs->errlen, "%s: entry '%s' is a %s link (to "
		    "'%s'): a backup holds regular files only", rs->file, shown,
		    link ? "hard" : "symbolic", backup_shown(link ? link :
		    archive_entry_symlink(e), target, sizeof(target)));
		return -EINVAL;
	}
	if (archive_entry_filetype(e) != AE_IFREG ||
	    !archive_entry_size_is_set(e) || size < 0) {
		snprintf(rs->err, rs->errlen, "%s: entry '%s' is not a regular "
		    "file", rs->file, shown);
		return -EINVAL;
	}
	if (!rs->have_manifest && kind != BK_MANIFEST) {
		snprintf(rs->err, rs->errlen, "%s: not a hypervisor backup (it "
		    "does not begin with MANIFEST)", rs->file);
		return -EINVAL;
	}
	switch (kind) {
	case BK_MANIFEST:
		if (rs->have_manifest)
			break;
		return restore_manifest(rs, a, size);
	case BK_DB:
		if (rs->have_db)
			break;
		if (size == 0 || size > BACKUP_DB_MAX) {
			snprintf(rs->err, rs->errlen, "%s: hvd.db: %lld bytes is "
			    "not an inventory", rs->file, (long long)size);
			return -EINVAL;
		}
		rs->have_db = true;
		return restore_write(rs, a, rs->tmpfd, "hvd.db", shown, size,
		    0600, NULL);
	case BK_KEY:
		if (rs->have_key)
			break;
		if (size != BACKUP_KEY_LEN) {
			snprintf(rs->err, rs->errlen, "%s: master.key: %lld bytes "
			    "is not a master key", rs->file, (long long)size);
			return -EINVAL;
		}
		rs->have_key = true;
		return restore_write(rs, a, rs->tmpfd, "master.key", shown, size,
		    0600, NULL);
	case BK_TLS_CERT:
	case BK_TLS_KEY:
		if (rs->have_tls[kind == BK_TLS_KEY])
			break;
		if (size == 0 || size > BACKUP_TLS_MAX) {
			snprintf(rs->err, rs->errlen, "%s: %s: %lld bytes is not a "
			    "PEM file", rs->file, shown, (long long)size);
			return -EINVAL;
		}
		rs->have_tls[kind == BK_TLS_KEY] = true;
		return restore_write(rs, a, rs->tmpfd, kind == BK_TLS_KEY ?
		    "tls-api.key" : "tls-api.crt", shown, size,
		    kind == BK_TLS_KEY ? 0600 : 0644, NULL);
	case BK_IMAGE:
		return restore_image(rs, a, name, size);
	case BK_BOOT:
		return restore_boot(rs, a, name, size);
	}
	snprintf(rs->err, rs->errlen, "%s: entry '%s' appears twice", rs->file,
	    shown);
	return -EINVAL;
}

static int
restore_image_cmp(const void *a, const void *b)
{
	return strcmp(((const struct restore_image *)a)->name,
	    ((const struct restore_image *)b)->name);
}

/*
 * The unpacked backup, proved whole before anything is renamed: the
 * inventory opens (and migrates), each image it lists is there with the
 * bytes its sha256 and size say, there is no other image, and the master
 * key opens the sealed keys.
 */
static int
restore_check(struct restore *rs)
{
	struct hvd_config *tc = NULL;
	struct hvd th = { 0 };
	struct image_row *rows = NULL;
	struct restore_image key, *im;
	char path[PATH_MAX];
	size_t n = 0;
	int r = -EINVAL;

	snprintf(path, sizeof(path), "%s/hvd.db", rs->tmp);
	if (db_open(path, &th.db) < 0 || db_ping(th.db) < 0) {
		snprintf(rs->err, rs->errlen, "%s: its hvd.db does not open as an "
		    "inventory", rs->file);
		goto out;
	}
	if (db_image_list(th.db, &rows, &n) < 0) {
		snprintf(rs->err, rs->errlen, "%s: cannot read the images of its "
		    "inventory", rs->file);
		goto out;
	}
	if (rs->nimg > 1)
		qsort(rs->img, rs->nimg, sizeof(*rs->img), restore_image_cmp);
	for (size_t i = 0; i < n; i++) {
		snprintf(key.name, sizeof(key.name), "%s", rows[i].sha256);
		im = bsearch(&key, rs->img, rs->nimg, sizeof(*rs->img),
		    restore_image_cmp);
		if (im == NULL) {
			snprintf(rs->err, rs->errlen, "%s: image '%s' (sha256 %s) "
			    "is in the inventory but not in the backup", rs->file,
			    rows[i].name, rows[i].sha256);
			goto out;
		}
		if (strcmp(im->sha256, rows[i].sha256) != 0) {
			snprintf(rs->err, rs->errlen, "%s: image '%s': "
			    BACKUP_IMAGES "%s in the backup hashes to sha256 %s: "
			    "it is damaged or altered", rs->file, rows[i].name,
			    im->name, im->sha256);
			goto out;
		}
		if (im->size != rows[i].size) {
			snprintf(rs->err, rs->errlen, "%s: image '%s': "
			    BACKUP_IMAGES "%s holds %llu bytes, the inventory "
			    "says %llu", rs->file, rows[i].name, im->name,
			    (unsigned long long)im->size,
			    (unsigned long long)rows[i].size);
			goto out;
		}
		im->listed = true;
	}
	for (size_t i = 0; i < rs->nimg; i++)
		if (!rs->img[i].listed) {
			snprintf(rs->err, rs->errlen, "%s: entry '" BACKUP_IMAGES
			    "%s' is in the backup but no image of its inventory "
			    "has that sha256", rs->file, rs->img[i].name);
			goto out;
		}
	/* keys_init() reads state-dir/master.key: point it at ours. */
	if ((tc = malloc(sizeof(*tc))) == NULL) {
		snprintf(rs->err, rs->errlen, "out of memory");
		goto out;
	}
	*tc = *rs->conf;
	snprintf(tc->state_dir, sizeof(tc->state_dir), "%s", rs->tmp);
	th.conf = tc;
	r = keys_init(&th);
	keys_shutdown();
	if (r < 0) {
		snprintf(rs->err, rs->errlen, "%s: its master.key does not open the "
		    "inventory's sealed keys", rs->file);
		goto out;
	}
	r = 0;
out:
	free(rows);
	free(tc);
	db_close(th.db);	/* checkpoints: no -wal stays beside hvd.db */
	return r;
}

static void
restore_sync(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd != -1) {
		fsync(fd);
		close(fd);
	}
}

/*
 * Renames the checked backup into place: images, boot files, master.key,
 * and hvd.db last.  Until hvd.db is renamed the state directory has no
 * inventory; a rename that fails before then (in a directory just
 * written, it does not) takes the images back out.  Files of the same
 * name (an orphan image, a boot file) are replaced.
 */
static int
restore_commit(struct restore *rs)
{
	const char *dir = rs->conf->state_dir;
	char path[PATH_MAX], tmp[PATH_MAX];
	struct dirent *de;
	size_t moved = 0;
	int imgdir = -1, rootfd = -1, fd, r = 0;
	DIR *d;

	if (rs->nimg > 0) {
		snprintf(path, sizeof(path), "%s/images", dir);
		if ((mkdir(path, 0700) == -1 && errno != EEXIST) ||
		    (imgdir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
		    -1) {
			r = -errno;
			goto fail;
		}
		for (; moved < rs->nimg; moved++)
			if (renameat(rs->imgfd, rs->img[moved].name, imgdir,
			    rs->img[moved].name) == -1) {
				r = -errno;
				goto fail;
			}
		fsync(imgdir);
	}
	if (rs->bootfd != -1) {
		snprintf(path, sizeof(path), "%s", rs->conf->boot_root);
		if ((rootfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
		    -1 || (fd = dup(rs->bootfd)) == -1 ||
		    (d = fdopendir(fd)) == NULL) {
			r = -errno;
			goto fail;
		}
		while ((de = readdir(d)) != NULL)
			if (backup_boot_name(de->d_name) &&
			    renameat(rs->bootfd, de->d_name, rootfd,
			    de->d_name) == -1) {
				r = -errno;
				closedir(d);
				goto fail;
			}
		closedir(d);
		fsync(rootfd);
	}
	if (rs->have_tls[0]) {
		snprintf(path, sizeof(path), "%s/tls", dir);
		if (mkdir(path, 0700) == -1 && errno != EEXIST) {
			r = -errno;
			goto fail;
		}
		for (int i = 0; i < 2; i++) {
			snprintf(path, sizeof(path), "%s/%s", dir, i ?
			    BACKUP_TLS_KEY : BACKUP_TLS_CERT);
			snprintf(tmp, sizeof(tmp), "%s/tls-api.%s", rs->tmp, i ?
			    "key" : "crt");
			if (rename(tmp, path) == -1) {
				r = -errno;
				goto fail;
			}
		}
	}
	snprintf(path, sizeof(path), "%s/master.key", dir);
	snprintf(tmp, sizeof(tmp), "%s/master.key", rs->tmp);
	if (rename(tmp, path) == -1) {
		r = -errno;
		goto fail;
	}
	/* A journal without its database would be replayed into ours. */
	snprintf(path, sizeof(path), "%s/hvd.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/hvd.db-shm", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/hvd.db", dir);
	snprintf(tmp, sizeof(tmp), "%s/hvd.db", rs->tmp);
	if (rename(tmp, path) == -1) {
		r = -errno;
		snprintf(path, sizeof(path), "%s/master.key", dir);
		unlink(path);
		goto fail;
	}
	restore_sync(dir);
	goto out;
fail:
	snprintf(rs->err, rs->errlen, "%s: cannot move the restored files into "
	    "place: %s", dir, strerror(-r));
	for (size_t i = 0; imgdir != -1 && i < moved; i++)
		unlinkat(imgdir, rs->img[i].name, 0);
out:
	if (imgdir != -1)
		close(imgdir);
	if (rootfd != -1)
		close(rootfd);
	return r;
}

int
backup_restore(const struct hvd_config *conf, const char *file, char *err,
    size_t errlen)
{
	struct restore rs = { .conf = conf, .file = file, .tmpfd = -1,
	    .imgfd = -1, .bootfd = -1, .err = err, .errlen = errlen };
	struct archive *a = NULL;
	struct archive_entry *e;
	char dbpath[PATH_MAX];
	unsigned entries = 0;
	struct stat st;
	int r = -EINVAL;

	snprintf(dbpath, sizeof(dbpath), "%s/hvd.db", conf->state_dir);
	if (lstat(dbpath, &st) == 0) {
		snprintf(err, errlen, "%s already exists: restore only into a "
		    "state directory without an inventory", dbpath);
		return -EEXIST;
	}
	if (mkdir(conf->state_dir, 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", conf->state_dir, strerror(errno));
		return -errno;
	}
	restore_sweep(conf->state_dir);
	restore_sweep(conf->boot_root);
	if ((rs.tmpfd = restore_tmpdir(&rs, conf->state_dir, rs.tmp,
	    sizeof(rs.tmp))) == -1)
		return -EIO;
	if ((a = archive_read_new()) == NULL ||
	    archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    archive_read_open_filename(a, file, 65536) != ARCHIVE_OK) {
		snprintf(err, errlen, "%s: %s", file, a ? archive_error_string(a) :
		    "out of memory");
		goto out;
	}
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		if (++entries > BACKUP_ENTRIES_MAX) {
			snprintf(err, errlen, "%s: more than %u entries", file,
			    BACKUP_ENTRIES_MAX);
			r = -EINVAL;
			goto out;
		}
		if ((r = restore_entry(&rs, a, e)) < 0)
			goto out;
	}
	if (r != ARCHIVE_EOF) {
		snprintf(err, errlen, "%s: %s", file, archive_error_string(a));
		r = -EIO;
		goto out;
	}
	if (rs.have_tls[0] != rs.have_tls[1]) {
		snprintf(err, errlen, "%s: holds only one of tls/api.crt and "
		    "tls/api.key", file);
		r = -EINVAL;
		goto out;
	}
	if (!rs.have_db || !rs.have_key) {
		snprintf(err, errlen, "%s: incomplete backup: %s missing", file,
		    rs.have_db ? "master.key" : "hvd.db");
		r = -EINVAL;
		goto out;
	}
	if ((r = restore_check(&rs)) < 0 || (r = restore_commit(&rs)) < 0)
		goto out;
	r = 0;
out:
	archive_read_free(a);
	if (rs.imgfd != -1)
		close(rs.imgfd);
	if (rs.bootfd != -1)
		close(rs.bootfd);
	if (rs.tmpfd != -1)
		close(rs.tmpfd);
	/* Whatever is still in them was not restored. */
	if (rs.boottmp[0])
		backup_rmtree(rs.boottmp, 0);
	if (rs.tmp[0])
		backup_rmtree(rs.tmp, 1);
	if (r < 0 && rs.made_boot_root)
		rmdir(conf->boot_root);
	free(rs.img);
	return r;
}
