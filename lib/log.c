/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Logging sinks: stderr (foreground) or syslog (daemon).  A daemon with no
 * syslog to talk to (nothing listens on /dev/log: a container, a rescue
 * shell) logs to stderr instead, since glibc's syslog() drops messages
 * silently; and a daemon started from a terminal also prints its fatal()
 * there, so a failed start never goes unexplained.
 *
 * Invariants: errno is preserved across every call, so callers may log
 * before returning -errno.  Every formatted message goes through
 * escape_line() before it reaches a sink, so text a peer put into it can
 * neither start a line of its own nor carry a terminal escape.  Must never
 * allocate on the heap: it is called on out-of-memory paths.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "escape.h"
#include "log.h"

#ifndef _PATH_LOG
#define _PATH_LOG "/dev/log"
#endif

static bool log_foreground = true;
static bool log_fatal_tty;	/* syslog sink: fatal() also on stderr */
static enum log_level log_threshold = LOG_LEVEL_INFO;

static const char *const log_level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

/* Whether a syslog daemon answers on /dev/log, over either socket type
 * glibc's syslog() tries. */
static bool
log_syslog_reachable(void)
{
	static const int types[] = { SOCK_DGRAM, SOCK_STREAM };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	bool ok = false;
	int fd;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", _PATH_LOG);
	for (size_t i = 0; i < sizeof(types) / sizeof(*types) && !ok; i++) {
		if ((fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0)) == -1)
			continue;
		ok = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
		close(fd);
	}
	return ok;
}

void
log_init(bool foreground, enum log_level level, const char *ident)
{
	int saved = errno;

	log_threshold = level;
	log_foreground = foreground || !log_syslog_reachable();
	log_fatal_tty = false;
	if (!log_foreground) {
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_fatal_tty = isatty(STDERR_FILENO) == 1;
	}
	tzset();
	errno = saved;
}

void
log_setlevel(enum log_level level)
{
	log_threshold = level;
}

enum log_level
log_getlevel(void)
{
	return log_threshold;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(log_level_names) / sizeof(*log_level_names); i++) {
		if (strcmp(s, log_level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

static void log_emit(enum log_level level, const char *errstr,
    const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

static void
log_emit(enum log_level level, const char *errstr, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char raw[1024], msg[2048];
	int saved = errno;

	if (level > log_threshold)
		goto out;
	vsnprintf(raw, sizeof(raw), fmt, ap);
	escape_line(msg, sizeof(msg), raw);
	if (!log_foreground) {
		if (errstr)
			syslog(prio[level], "%s: %s", msg, errstr);
		else
			syslog(prio[level], "%s", msg);
	}
	if (log_foreground || (level == LOG_LEVEL_ERROR && log_fatal_tty)) {
		if (errstr)
			fprintf(stderr, "%s: %s\n", msg, errstr);
		else
			fprintf(stderr, "%s\n", msg);
		fflush(stderr);
	}
out:
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	const char *e = strerror(errno);

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_WARN, e, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_WARN, NULL, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_INFO, NULL, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_DEBUG, NULL, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	const char *e = strerror(errno);

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_ERROR, e, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
