/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Interactive consoles, the part hvd, hv-agent and hvctl share: the limits
 * of the vm.console_* messages (PROTOCOL.md 6.2) and of the REST console
 * routes, the one base64 they all speak (RFC 4648 section 4, padded,
 * canonical), and the REST input body's strict decoder.
 *
 * Errors: decoders return 0 or -EINVAL (-EMSGSIZE where said) with a
 * one-line reason naming the field, never echoing the value.  Ownership:
 * console_b64_encode() returns a string the caller frees.
 */
#ifndef HV_CONSOLE_H
#define HV_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "jsonfield.h"

#define CONSOLE_ID_HEX		32	/* a session: 16 random bytes, hex */
#define CONSOLE_INPUT_MAX	4096	/* raw bytes of one input */
#define CONSOLE_OUTPUT_MAX	16384	/* raw bytes of one output notify */
#define CONSOLE_PER_VM_MAX	4	/* sessions attached to one VM */
#define CONSOLE_WAIT_MAX_S	20	/* the longest a read waits (REST) */
#define CONSOLE_ESCAPE		0x1d	/* Ctrl-]: hvctl detaches */
/* Characters of the padded base64 of N bytes. */
#define CONSOLE_B64_LEN(n)	((((size_t)(n) + 2) / 3) * 4)

/*
 * S[0..LEN) as canonical padded base64 (no whitespace, zero pad bits)
 * into OUT, which holds CAP bytes: 0 with *outlen set; -EMSGSIZE when it
 * decodes to more than CAP bytes; -EINVAL when it is not such base64.
 */
int console_b64_decode(const char *s, size_t len, uint8_t *out, size_t cap,
    size_t *outlen);
/* DATA as padded base64, NUL-terminated, malloc'd; NULL (ENOMEM). */
char *console_b64_encode(const uint8_t *data, size_t len);
/*
 * A jsonfield rule (type JF_ANY): the value is a string of base64 that
 * decodes to 1 .. field->max bytes.  Checks only; stores nothing.
 */
int console_b64_rule(const struct jf_ctx *c, const json_t *v, void *dst);

/*
 * POST /api/v1/consoles/{id}/input: {"data": base64 of 1 ..
 * CONSOLE_INPUT_MAX bytes}, nothing else.  The bytes go to OUT (which
 * holds CONSOLE_INPUT_MAX) and their number to *outlen.
 */
int console_input_decode(const char *body, size_t len, uint8_t *out,
    size_t *outlen, char *err, size_t errlen);

#endif
