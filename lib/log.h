/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Logging for every hypervisor binary, in the OpenBSD style.
 *
 * log_init() chooses the sink once: stderr in the foreground, syslog
 * otherwise (journald collects syslog on systemd hosts), or stderr after
 * all when nothing listens on /dev/log.  With syslog, fatal()/fatalx() also
 * print on stderr when it is a terminal.  log_warn() appends
 * strerror(errno); log_warnx() does not.  fatal()/fatalx() are for start-up
 * and broken invariants only: never call them on input from the network.
 *
 * Never pass a secret (key, token, password) to any of these functions.
 */
#ifndef HV_LOG_H
#define HV_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void log_init(bool foreground, enum log_level level, const char *ident);
void log_setlevel(enum log_level level);
enum log_level log_getlevel(void);
/* Parses "error", "warn", "info" or "debug"; returns -EINVAL otherwise. */
int log_level_parse(const char *s, enum log_level *out);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
