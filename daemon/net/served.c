/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The one rule for opening a file hvd serves, whatever serves it (TFTP,
 * HTTP boot files, VM images, the Alpine mirror, the boot root's
 * .NAME.source notes): beneath a root directory fd, never through a magic
 * link, a symbolic link only if it stays inside the root, non-blocking (a
 * FIFO must not wait for a writer on hvd's only thread), and only a
 * regular file, checked with fstat on what was opened.
 *
 * Must never: block, follow a path out of the root, or hand back anything
 * but a regular file.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "net.h"

int
served_open(int rootfd, const char *name, struct stat *st)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	int fd, r;

	if (rootfd < 0 || name == NULL || name[0] == '\0')
		return -ENOENT;
	fd = (int)syscall(SYS_openat2, rootfd, name, &how, sizeof(how));
	if (fd == -1)
		return -errno;
	if (fstat(fd, st) == -1) {
		r = -errno;
		close(fd);
		return r;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
	}
	return fd;
}
