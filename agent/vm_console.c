/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * vm.console (PROTOCOL.md 6.2): the tail of a VM's console log, which
 * xenconsoled writes to VM_CONSOLE_DIR/guest-<name>.log, as one JSON
 * string small enough for one reply frame.
 *
 * Invariants: the string is valid UTF-8 (invalid bytes become '?', a
 * character cut at the window's start is dropped), its JSON escape takes
 * at most the given budget, and the newest bytes are the ones kept.
 * Must never: follow a symlink or read anything but a regular file, write
 * to the log, or read more than the bytes asked for.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "vm.h"
#include "vm_internal.h"

#define VM_CONSOLE_JSON_MAX	65400	/* the reply must fit one frame */

/* Bytes a JSON string escape of C takes (jansson's default escaping). */
static size_t
vm_json_cost(unsigned char c)
{
	if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' ||
	    c == '\r' || c == '\t')
		return 2;
	return c < 0x20 ? 6 : 1;
}

/* Length of the valid UTF-8 sequence at P (at most N bytes), or 0. */
static size_t
vm_utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

json_t *
vm_console_tail(const char *path, size_t bytes, size_t maxjson)
{
	unsigned char *buf = NULL;
	struct stat sb;
	size_t n = 0, start = 0, cost = 0, i;
	off_t off;
	ssize_t got;
	json_t *s = NULL;
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return NULL;
	memset(&sb, 0, sizeof(sb));
	sb.st_mode = S_IFREG;
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		e = S_ISREG(sb.st_mode) ? errno : EINVAL;
		close(fd);
		errno = e;
		return NULL;
	}
	off = sb.st_size > (off_t)bytes ? sb.st_size - (off_t)bytes : 0;
	if ((buf = malloc(bytes + 1)) == NULL)
		goto out;
	while (n < bytes && (got = pread(fd, buf + n, bytes - n,
	    off + (off_t)n)) > 0)
		n += (size_t)got;
	/* A character cut by the window's start is dropped. */
	if (off > 0)
		while (start < n && start < 3 && (buf[start] & 0xc0) == 0x80)
			start++;
	/* Invalid UTF-8 becomes '?'. */
	for (i = start; i < n;) {
		size_t l = vm_utf8_len(buf + i, n - i);

		if (l == 0) {
			buf[i++] = '?';
			continue;
		}
		i += l;
	}
	/* The newest bytes that fit, on a character boundary. */
	for (i = n; i > start; i--) {
		size_t c = vm_json_cost(buf[i - 1]);

		if (cost + c > maxjson)
			break;
		cost += c;
	}
	while (i < n && (buf[i] & 0xc0) == 0x80)
		i++;
	s = json_stringn((const char *)buf + i, n - i);
	if (s == NULL)
		errno = ENOMEM;
out:
	e = errno;
	free(buf);
	close(fd);
	errno = e;
	return s;
}

json_t *
agent_vm_console(struct agent_vm *av, json_t *params, char *err,
    size_t errlen)
{
	char path[PATH_MAX];
	struct vm *vm;
	json_t *log;

	if (av == NULL)
		return vm_cmd_no_xen(err, errlen);
	if ((vm = vm_cmd_of(av, params)) == NULL || vm->name[0] == '\0') {
		snprintf(err, errlen, "%s is not running here",
		    json_string_value(json_object_get(params, "uuid")));
		return NULL;
	}
	snprintf(path, sizeof(path), VM_CONSOLE_DIR "/guest-%s.log", vm->name);
	if ((log = vm_console_tail(path, (size_t)json_integer_value(
	    json_object_get(params, "bytes")), VM_CONSOLE_JSON_MAX)) == NULL) {
		snprintf(err, errlen, "%s: %s (is xenconsoled running with "
		    "--log=guest?)", path, strerror(errno));
		return NULL;
	}
	return json_pack("{s:o}", "log", log);
}
