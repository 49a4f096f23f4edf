/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvctl boot list|import: the files hvd boots hosts with.
 *
 * import copies Xen, the dom0 kernel, the initramfs and the modloop from a
 * directory (Alpine's netboot files, Debian's /boot, or this project's node
 * image) into hvd's boot root, decompressing xen.gz (iPXE cannot load a
 * compressed Xen), and records where each came from beside it.  Of several
 * candidates (a Debian /boot with two kernels) it takes the newest by
 * version, and the initramfs and modloop of that kernel when there are,
 * and says so.  It runs in hvctl, not hvd, so the daemon's loop never does
 * bulk file I/O; it needs write access to the boot root (root on the
 * orchestration node).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <sodium.h>

#include "hvctl.h"

/* Each boot file and the source names it is imported from, best first. */
static const struct {
	const char *target;
	const char *patterns[5];
} boot_sources[] = {
	{ "xen", { "xen", "xen.gz", "xen-*.gz", "xen-*[0-9]", NULL } },
	{ "vmlinuz", { "vmlinuz", "vmlinuz-lts", "vmlinuz-*", NULL } },
	{ "initramfs", { "initramfs", "initramfs-lts", "initrd.img",
	    "initrd.img-*", "initramfs-*" } },
	{ "modloop", { "modloop", "modloop-lts", "modloop-*", NULL } },
};

/*
 * The regular file in dir that pattern picks: with several matches (a
 * Debian /boot keeps every installed kernel), the newest by version
 * (versionsort: vmlinuz-6.1.0-57-amd64 after vmlinuz-6.1.0-10-amd64,
 * 6.1.0-9 before 6.1.0-10), unless one carries the version want ("-" +
 * want ends its name: the initramfs of the kernel taken).  note says why
 * when there was a choice, or is left empty.
 */
static bool
boot_candidate(const char *dir, const char *pattern, const char *name)
{
	struct stat st;
	char path[1024];

	if (fnmatch(pattern, name, 0) != 0)
		return false;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Why boot_find() took the one it did, when there was anything to say. */
static void
boot_note(char *note, size_t len, int count, const char *want, bool wanted,
    const char *others)
{
	if (wanted && count > 1)
		snprintf(note, len, " (the one for kernel %s; not %s)", want,
		    others);
	else if (count > 1)
		snprintf(note, len, " (the newest by version of %d; not %s%s)",
		    count, others, want ? "; none is for the kernel taken" : "");
	else if (want && !wanted)
		snprintf(note, len, " (the only one; its name does not end in "
		    "the kernel's version %s: check they match)", want);
}

static int
boot_find(const char *dir, const char *pattern, const char *want, char *out,
    size_t len, char *note, size_t notelen)
{
	struct dirent **ents = NULL;
	char others[256] = "";
	int n, pick = -1, wanted = -1, count = 0;
	size_t olen = 0, wlen = want ? strlen(want) : 0;

	note[0] = '\0';
	if ((n = scandir(dir, &ents, NULL, versionsort)) < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		size_t nlen = strlen(name);

		if (!boot_candidate(dir, pattern, name))
			continue;
		count++;
		pick = i;
		if (wlen && nlen > wlen && name[nlen - wlen - 1] == '-' &&
		    strcmp(name + nlen - wlen, want) == 0)
			wanted = i;
	}
	if (wanted >= 0)
		pick = wanted;
	if (pick >= 0) {
		snprintf(out, len, "%s/%s", dir, ents[pick]->d_name);
		for (int i = 0; count > 1 && i < n; i++)
			if (i != pick && olen < sizeof(others) &&
			    boot_candidate(dir, pattern, ents[i]->d_name))
				olen += (size_t)snprintf(others + olen,
				    sizeof(others) - olen, "%s%s",
				    olen ? ", " : "", ents[i]->d_name);
		boot_note(note, notelen, count, want, wanted >= 0, others);
	}
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return pick >= 0 ? 0 : -ENOENT;
}

/*
 * Copies src to root/target via a temporary file and rename, through
 * libarchive's raw reader so gzip (and xz, zstd) are undone on the way.
 * Fills the SHA-256 of what was written.
 */
static int
boot_copy(const char *src, int rootfd, const char *target, bool decompress,
    char hex[65], uint64_t *size)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	crypto_hash_sha256_state sha;
	uint8_t digest[32];
	char tmp[64], buf[65536];
	la_ssize_t n;
	int fd = -1, r = -EIO;

	snprintf(tmp, sizeof(tmp), ".%s.tmp", target);
	*size = 0;
	crypto_hash_sha256_init(&sha);
	if (decompress)
		archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	if (archive_read_open_filename(a, src, sizeof(buf)) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK) {
		fprintf(stderr, "hvctl: %s: %s\n", src, archive_error_string(a));
		goto out;
	}
	if ((fd = openat(rootfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0644)) == -1) {
		fprintf(stderr, "hvctl: boot root: %s: %s\n", tmp, strerror(errno));
		goto out;
	}
	while ((n = archive_read_data(a, buf, sizeof(buf))) > 0) {
		if (write(fd, buf, (size_t)n) != n) {
			fprintf(stderr, "hvctl: writing %s: %s\n", target,
			    strerror(errno));
			goto out;
		}
		crypto_hash_sha256_update(&sha, (uint8_t *)buf, (size_t)n);
		*size += (uint64_t)n;
	}
	if (n < 0) {
		fprintf(stderr, "hvctl: %s: %s\n", src, archive_error_string(a));
		goto out;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (renameat(rootfd, tmp, rootfd, target) == -1) {
		fprintf(stderr, "hvctl: %s: %s\n", target, strerror(errno));
		goto out;
	}
	crypto_hash_sha256_final(&sha, digest);
	sodium_bin2hex(hex, 65, digest, sizeof(digest));
	r = 0;
out:
	if (fd != -1)
		close(fd);
	if (r < 0)
		unlinkat(rootfd, tmp, 0);
	archive_read_free(a);
	return r;
}

static int
boot_record_source(int rootfd, const char *target, const char *src,
    const char *hex, uint64_t size)
{
	char name[64], text[1400], when[32];
	int fd, r = 0;
	size_t len;

	snprintf(name, sizeof(name), ".%s.source", target);
	len = (size_t)snprintf(text, sizeof(text), "%s sha256:%s %llu bytes, "
	    "imported %s\n", src, hex, (unsigned long long)size,
	    output_epoch((int64_t)time(NULL), when, sizeof(when)));
	if (len >= sizeof(text))
		len = sizeof(text) - 1;
	if ((fd = openat(rootfd, name, O_WRONLY | O_CREAT | O_TRUNC |
	    O_CLOEXEC | O_NOFOLLOW, 0644)) == -1)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		r = -EIO;
	close(fd);
	return r;
}

static int
boot_status(struct hvctl *h, struct hvctl_reply *rep, const json_t **boot)
{
	int r;

	if ((r = client_call(h, "GET", "/api/v1/status", NULL, rep)) != HVCTL_OK)
		return r;
	if ((r = client_check(rep, "boot")) != HVCTL_OK) {
		client_reply_dispose(rep);
		return r;
	}
	*boot = json_object_get(rep->body, "boot");
	return HVCTL_OK;
}

int
cmd_boot_import(struct hvctl *h, int argc, char **argv)
{
	struct hvctl_reply rep;
	const json_t *boot;
	const char *root, *dir;
	char kver[256] = "";	/* the version of the kernel taken */
	int rootfd = -1, r, imported = 0;

	if (argc != 2)
		return hvctl_usage_error("boot import", "expects one DIR");
	dir = argv[1];
	if (sodium_init() < 0)
		return HVCTL_FAIL;
	if ((r = boot_status(h, &rep, &boot)) != HVCTL_OK)
		return r;
	root = output_str(boot, "root");
	if (root == NULL || (rootfd = open(root, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1) {
		fprintf(stderr, "hvctl: boot root %s: %s\n", root ? root : "?",
		    strerror(errno));
		r = errno == EACCES ? HVCTL_DENIED : HVCTL_FAIL;
		goto out;
	}
	for (size_t i = 0; i < sizeof(boot_sources) / sizeof(*boot_sources); i++) {
		char src[1024], hex[65], note[400];
		const char *base;
		/* The initramfs and modloop go with the kernel taken. */
		bool kernel_bound = strcmp(boot_sources[i].target, "initramfs") ==
		    0 || strcmp(boot_sources[i].target, "modloop") == 0;
		uint64_t size = 0;
		int found = -ENOENT;

		for (size_t k = 0; k < 5 && boot_sources[i].patterns[k] &&
		    found < 0; k++)
			found = boot_find(dir, boot_sources[i].patterns[k],
			    kernel_bound && kver[0] ? kver : NULL, src,
			    sizeof(src), note, sizeof(note));
		if (found < 0) {
			printf("%-10s not found in %s\n", boot_sources[i].target, dir);
			continue;
		}
		if (boot_copy(src, rootfd, boot_sources[i].target,
		    strcmp(boot_sources[i].target, "xen") == 0, hex, &size) < 0 ||
		    boot_record_source(rootfd, boot_sources[i].target, src, hex,
		    size) < 0) {
			r = HVCTL_FAIL;
			goto out;
		}
		/* One line per file (scripts read its first word), saying
		 * which of several candidates it took and why. */
		printf("%-10s %12llu bytes  from %s%s\n",
		    boot_sources[i].target, (unsigned long long)size, src, note);
		base = strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
		if (strcmp(boot_sources[i].target, "vmlinuz") == 0 &&
		    strncmp(base, "vmlinuz-", 8) == 0)
			snprintf(kver, sizeof(kver), "%s", base + 8);
		imported++;
	}
	if (imported == 0) {
		fprintf(stderr, "hvctl: boot import: nothing to import in %s\n", dir);
		r = HVCTL_REJECTED;
	}
out:
	if (rootfd != -1)
		close(rootfd);
	client_reply_dispose(&rep);
	return r;
}

int
cmd_boot_list(struct hvctl *h, int argc, char **argv)
{
	static const char *const headers[] = { "FILE", "SIZE", "SOURCE" };
	struct hvctl_reply rep;
	const json_t *boot, *f;
	struct table *t;
	size_t i;
	int r;

	(void)argv;
	if (argc > 1)
		return hvctl_usage_error("boot list", "takes no arguments");
	if ((r = boot_status(h, &rep, &boot)) != HVCTL_OK)
		return r;
	if (h->json) {
		output_json(boot);
		goto out;
	}
	printf("boot root %s, served at %s\n", output_str(boot, "root"),
	    output_str(boot, "url") ? output_str(boot, "url") : "(no boot-http-listen)");
	t = table_new(headers, 3);
	json_array_foreach(json_object_get(boot, "files"), i, f) {
		char size[32];
		const char *cells[3];

		snprintf(size, sizeof(size), "%lld",
		    (long long)json_integer_value(json_object_get(f, "size")));
		cells[0] = output_str(f, "name");
		cells[1] = json_is_true(json_object_get(f, "present")) ? size :
		    "MISSING";
		cells[2] = output_str(f, "source");
		table_add(t, cells);
	}
	table_print(t);
	table_free(t);
out:
	client_reply_dispose(&rep);
	return r;
}
