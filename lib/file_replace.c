/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * file_replace.c: see file_replace.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "file_replace.h"

int
file_replace(const char *dir, const char *name, const void *data, size_t len,
    mode_t mode)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	const char *p = data;
	size_t done = 0;
	ssize_t n;
	int fd, r = 0;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	/* A temporary file left by a crash is ours to remove. */
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, mode)) == -1)
		return -errno;
	while (done < len) {
		if ((n = write(fd, p + done, len - done)) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		done += (size_t)n;
	}
	if (r == 0 && fsync(fd) == -1)
		r = -errno;
	if (close(fd) == -1 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) == -1)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}
