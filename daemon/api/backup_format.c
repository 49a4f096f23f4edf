/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The backup's names and the rules for them (backup_format.h), shared by
 * taking a backup (backup.c) and restoring one (restore.c).
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup_format.h"

const char backup_hex[] = "0123456789abcdef";
static const char backup_boot_chars[] = "abcdefghijklmnopqrstuvwxyz"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-";

/* --- names */

/* A name of the boot root a backup carries: a name hvd serves (boot.c's
 * rule: 1..64 of A-Z a-z 0-9 . _ + -, not hidden), or the ".NAME.source"
 * note hvctl boot import writes beside one. */
bool
backup_boot_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || strspn(s, backup_boot_chars) != n)
		return false;
	if (s[0] != '.')
		return n <= 64;
	return n >= 9 && n - 8 <= 64 && s[1] != '.' &&
	    strcmp(s + n - 7, ".source") == 0;
}

bool
backup_sha_name(const char *s)
{
	return strlen(s) == 64 && strspn(s, backup_hex) == 64;
}

/* NAME made printable and short, for a message. */
const char *
backup_shown(const char *name, char *buf, size_t len)
{
	size_t i, n = 0;

	if (name == NULL)
		return "(no name)";
	for (i = 0; name[i] != '\0' && n + 4 < len; i++)
		buf[n++] = name[i] > ' ' && name[i] < 0x7f ? name[i] : '?';
	if (name[i] != '\0' && len > 4) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

/* What a tar entry may be, by its name alone: a kind, or -1 with why. */
int
backup_classify(const char *name, char *why, size_t len)
{
	size_t n;

	if (name == NULL || name[0] == '\0') {
		snprintf(why, len, "has no name (or one that is not text)");
		return -1;
	}
	n = strlen(name);
	if (name[0] == '/') {
		snprintf(why, len, "is an absolute path");
		return -1;
	}
	if (strcmp(name, "..") == 0 || strncmp(name, "../", 3) == 0 ||
	    strstr(name, "/../") != NULL ||
	    (n >= 3 && strcmp(name + n - 3, "/..") == 0)) {
		snprintf(why, len, "leads out of the directory ('..')");
		return -1;
	}
	if (strcmp(name, "MANIFEST") == 0)
		return BK_MANIFEST;
	if (strcmp(name, "hvd.db") == 0)
		return BK_DB;
	if (strcmp(name, "master.key") == 0)
		return BK_KEY;
	if (strcmp(name, BACKUP_TLS_CERT) == 0)
		return BK_TLS_CERT;
	if (strcmp(name, BACKUP_TLS_KEY) == 0)
		return BK_TLS_KEY;
	if (strncmp(name, BACKUP_IMAGES, strlen(BACKUP_IMAGES)) == 0 &&
	    backup_sha_name(name + strlen(BACKUP_IMAGES)))
		return BK_IMAGE;
	if (strncmp(name, BACKUP_BOOT, strlen(BACKUP_BOOT)) == 0 &&
	    backup_boot_name(name + strlen(BACKUP_BOOT)))
		return BK_BOOT;
	snprintf(why, len, "is not part of a backup (MANIFEST, hvd.db, "
	    "master.key, tls/api.crt, tls/api.key, images/<sha256>, "
	    "boot/<name>)");
	return -1;
}

/* Removes DIR, its files and, DEPTH levels down, its directories: only
 * this file's temporary directories, whose shape it knows. */
void
backup_rmtree(const char *dir, int depth)
{
	struct dirent *de;
	char sub[PATH_MAX];
	struct stat st;
	DIR *d;
	int fd;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode)) {
			snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
			if (depth > 0)
				backup_rmtree(sub, depth - 1);
		} else {
			unlinkat(fd, de->d_name, 0);
		}
	}
	closedir(d);
	rmdir(dir);
}

