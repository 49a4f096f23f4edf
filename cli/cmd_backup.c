/*
 * hvctl backup FILE: the orchestrator's inventory and master key in one
 * file, mode 0600 (restore it with hvd --restore FILE).  Written to a
 * temporary name beside FILE and renamed, so FILE is never half a backup.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hvctl.h"

int
cmd_backup(struct hvctl *h, int argc, char **argv)
{
	struct hvctl_reply rep;
	char tmp[4096];
	struct stat st;
	int fd, r;

	if (argc != 2)
		return hvctl_usage_error("backup", "expects one FILE");
	snprintf(tmp, sizeof(tmp), "%s.partial", argv[1]);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1 || fchmod(fd, 0600) == -1) {
		fprintf(stderr, "hvctl: %s: %s\n", tmp, strerror(errno));
		if (fd != -1)
			close(fd);
		return HVCTL_FAIL;
	}
	r = client_download(h, "/api/v1/backup", fd, &rep);
	if (r == HVCTL_OK)
		r = client_check(&rep, "backup");
	if (r == HVCTL_OK && (fsync(fd) == -1 || fstat(fd, &st) == -1 ||
	    st.st_size == 0)) {
		fprintf(stderr, "hvctl: %s: %s\n", tmp, st.st_size == 0 ?
		    "empty backup" : strerror(errno));
		r = HVCTL_FAIL;
	}
	close(fd);
	if (r == HVCTL_OK && rename(tmp, argv[1]) == -1) {
		fprintf(stderr, "hvctl: %s: %s\n", argv[1], strerror(errno));
		r = HVCTL_FAIL;
	}
	if (r != HVCTL_OK)
		unlink(tmp);
	else if (!h->json)
		printf("backup written to %s (%lld bytes, mode 0600); restore "
		    "with: hvd --restore %s\n", argv[1], (long long)st.st_size,
		    argv[1]);
	client_reply_dispose(&rep);
	return r;
}
