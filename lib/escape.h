/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * One rule for text that came from a peer and goes to a log line or an
 * inventory row: printable ASCII (0x20 ... 0x7e) is kept, except the
 * backslash; the backslash, control bytes (newline, ESC, ...), DEL and
 * every byte above 0x7f become "\xNN" (two lowercase hex digits).  So an
 * escaped text is one line of plain ASCII: it can neither forge a log line
 * nor carry a terminal escape, and it reads back unambiguously.
 *
 * Pure: no allocation, no locale, no errors.
 */
#ifndef HV_ESCAPE_H
#define HV_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

/* The longest text n source bytes can escape to (without the NUL). */
#define ESCAPE_MAX(n)	((n) * 4)

/*
 * Escapes src into dst.  dst is always terminated when dstlen > 0 and never
 * holds more than dstlen bytes, NUL included; an escape sequence is never
 * cut: a byte whose escape does not fit ends the text there.  Returns the
 * length the whole escaped text needs (without the NUL), as snprintf()
 * does, so a return >= dstlen means dst was truncated.
 */
size_t escape_text(char *dst, size_t dstlen, const char *src);
/* Whether escape_text() would change src. */
bool escape_needed(const char *src);
/*
 * The same, for a log line (lib/log.c): the backslash is kept, so text a
 * module escaped already (TFTP file names, by this same rule) is not
 * escaped twice.  What a log line needs still holds: no byte in it can
 * start a line or drive a terminal.  Stored text uses escape_text().
 */
size_t escape_line(char *dst, size_t dstlen, const char *src);

#endif
