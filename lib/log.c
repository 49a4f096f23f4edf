/*
 * Logging sinks: stderr (foreground) or syslog (daemon).
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
#include <syslog.h>
#include <time.h>

#include "escape.h"
#include "log.h"

static bool log_foreground = true;
static enum log_level log_threshold = LOG_LEVEL_INFO;

static const char *const log_level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

void
log_init(bool foreground, enum log_level level, const char *ident)
{
	log_foreground = foreground;
	log_threshold = level;
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	tzset();
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
	if (log_foreground) {
		if (errstr)
			fprintf(stderr, "%s: %s\n", msg, errstr);
		else
			fprintf(stderr, "%s\n", msg);
		fflush(stderr);
	} else if (errstr) {
		syslog(prio[level], "%s: %s", msg, errstr);
	} else {
		syslog(prio[level], "%s", msg);
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
