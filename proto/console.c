/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The interactive console's shared rules: base64 through libsodium (the
 * original alphabet, padded), its jsonfield rule for the vm.console_*
 * schemas (proto/msg.c), and the REST input body's decoder.
 *
 * Invariants: only canonical base64 is accepted (length a multiple of 4,
 * padding exactly where it belongs, zero pad bits, no whitespace), so one
 * byte string has one encoding on the wire; nothing decodes past its
 * buffer.  Must never echo a value in an error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "console.h"
#include "jsonfield.h"

int
console_b64_decode(const char *s, size_t len, uint8_t *out, size_t cap,
    size_t *outlen)
{
	size_t pads = 0, n = 0;

	*outlen = 0;
	if (len % 4 != 0)
		return -EINVAL;
	if (len > 0 && s[len - 1] == '=')
		pads = len > 1 && s[len - 2] == '=' ? 2 : 1;
	if (len / 4 * 3 - pads > cap)
		return -EMSGSIZE;
	if (len == 0)
		return 0;
	/* No ignore set, no end pointer: anything but base64 fails. */
	if (sodium_base642bin(out, cap, s, len, NULL, &n, NULL,
	    sodium_base64_VARIANT_ORIGINAL) != 0)
		return -EINVAL;
	*outlen = n;
	return 0;
}

char *
console_b64_encode(const uint8_t *data, size_t len)
{
	size_t n = sodium_base64_ENCODED_LEN(len,
	    sodium_base64_VARIANT_ORIGINAL);
	char *s = malloc(n);

	if (s == NULL)
		return NULL;
	sodium_bin2base64(s, n, data, len, sodium_base64_VARIANT_ORIGINAL);
	return s;
}

int
console_b64_rule(const struct jf_ctx *c, const json_t *v, void *dst)
{
	size_t max = (size_t)c->field->max, n = 0, len;
	const char *s;
	uint8_t *buf;
	int r;

	(void)dst;
	if ((s = jf_string(v, CONSOLE_B64_LEN(max))) == NULL) {
		if (json_is_string(v) && strlen(json_string_value(v)) ==
		    json_string_length(v))
			return jf_fail(c, "is more than %zu bytes once decoded; at "
			    "most %zu are taken at once", max, max);
		return jf_fail(c, "must be a string of base64");
	}
	len = strlen(s);
	if ((buf = malloc(max ? max : 1)) == NULL)
		return jf_fail(c, "out of memory");
	r = console_b64_decode(s, len, buf, max, &n);
	free(buf);
	if (r == -EMSGSIZE)
		return jf_fail(c, "is more than %zu bytes once decoded; at most "
		    "%zu are taken at once", max, max);
	if (r < 0)
		return jf_fail(c, "must be base64 (RFC 4648: A-Z a-z 0-9 + /, "
		    "padded with =, no spaces or newlines)");
	if (n == 0)
		return jf_fail(c, "must not be empty");
	return 0;
}

static const struct jf_field console_input_fields[] = {
	{ .name = "data", .type = JF_ANY, .flags = JF_REQUIRED,
	    .max = CONSOLE_INPUT_MAX, .rule = console_b64_rule },
};

int
console_input_decode(const char *body, size_t len, uint8_t *out,
    size_t *outlen, char *err, size_t errlen)
{
	unsigned present = 0;
	json_t *root = NULL;
	const char *s;
	int r;

	*outlen = 0;
	if ((r = jf_parse_object(body, len, &root, err, errlen)) < 0)
		return r;
	if ((r = jf_decode(root, console_input_fields,
	    JF_LEN(console_input_fields), NULL, &present, err, errlen)) < 0)
		goto out;
	s = json_string_value(json_object_get(root, "data"));
	if (console_b64_decode(s, strlen(s), out, CONSOLE_INPUT_MAX,
	    outlen) < 0)
		r = jf_error(err, errlen, "field 'data' is not base64");
out:
	json_decref(root);
	return r;
}
