/*
 * Strict JSON object decoding against a field table.
 *
 * Invariants: nothing is written past a field's declared size; a string
 * with an embedded NUL is rejected (jansson allows them, C strings cannot
 * hold them).  Must never echo a whole value back in an error: values can be
 * long or secret, so errors name the field only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jsonfield.h"

int
jf_parse_object(const char *body, size_t len, json_t **out, char *err,
    size_t errlen)
{
	json_error_t jerr;
	json_t *root;

	*out = NULL;
	if (len == 0) {
		snprintf(err, errlen, "request body is empty; expected a JSON object");
		return -EINVAL;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		snprintf(err, errlen, "invalid JSON at line %d, column %d: %s",
		    jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "request body must be a JSON object");
		json_decref(root);
		return -EINVAL;
	}
	*out = root;
	return 0;
}

static const struct jf_field *
jf_lookup(const struct jf_field *fields, size_t nfields, const char *key)
{
	for (size_t i = 0; i < nfields; i++)
		if (strcmp(fields[i].name, key) == 0)
			return &fields[i];
	return NULL;
}

static int
jf_decode_one(const struct jf_field *f, json_t *v, char *dst, char *err,
    size_t errlen)
{
	const char *s;
	size_t n;
	json_int_t i;

	switch (f->type) {
	case JF_STRING:
		if (!json_is_string(v)) {
			snprintf(err, errlen, "field '%s' must be a string", f->name);
			return -EINVAL;
		}
		s = json_string_value(v);
		n = json_string_length(v);
		if (strlen(s) != n) {
			snprintf(err, errlen, "field '%s' contains a NUL byte", f->name);
			return -EINVAL;
		}
		if (n < f->min || n > f->max || n >= f->size) {
			snprintf(err, errlen, "field '%s' must be %llu to %llu bytes long",
			    f->name, (unsigned long long)f->min,
			    (unsigned long long)f->max);
			return -EINVAL;
		}
		if (f->valid && !f->valid(s, err, errlen))
			return -EINVAL;
		memcpy(dst, s, n + 1);
		return 0;
	case JF_UINT32:
		if (!json_is_integer(v)) {
			snprintf(err, errlen, "field '%s' must be an integer", f->name);
			return -EINVAL;
		}
		i = json_integer_value(v);
		if (i < 0 || (uint64_t)i < f->min || (uint64_t)i > f->max) {
			snprintf(err, errlen, "field '%s' must be in %llu..%llu",
			    f->name, (unsigned long long)f->min,
			    (unsigned long long)f->max);
			return -EINVAL;
		}
		*(uint32_t *)(void *)dst = (uint32_t)i;
		return 0;
	case JF_BOOL:
		if (!json_is_boolean(v)) {
			snprintf(err, errlen, "field '%s' must be true or false", f->name);
			return -EINVAL;
		}
		*(bool *)(void *)dst = json_is_true(v);
		return 0;
	}
	snprintf(err, errlen, "field '%s' has no decoder", f->name);
	return -EINVAL;
}

int
jf_decode(const json_t *obj, const struct jf_field *fields, size_t nfields,
    void *out, unsigned *present, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	int r;

	*present = 0;
	/* json_object_foreach needs a non-const object; it does not modify it. */
	json_object_foreach((json_t *)obj, key, v) {
		const struct jf_field *f = jf_lookup(fields, nfields, key);

		if (f == NULL) {
			/* Keys may be long or binary: print a bounded, safe prefix. */
			snprintf(err, errlen, "unknown field '%.32s'", key);
			for (char *p = err; *p; p++)
				if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
					*p = '?';
			return -EINVAL;
		}
		if ((r = jf_decode_one(f, v, (char *)out + f->offset, err, errlen)) < 0)
			return r;
		*present |= f->flag;
	}
	return 0;
}

int
jf_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int
jf_unknown(char *err, size_t errlen, const char *where, const char *key)
{
	char k[33];
	size_t i;

	for (i = 0; key[i] && i < sizeof(k) - 1; i++)
		k[i] = ((unsigned char)key[i] < 0x20 ||
		    (unsigned char)key[i] > 0x7e) ? '?' : key[i];
	k[i] = '\0';
	if (where == NULL)
		return jf_error(err, errlen, "unknown field '%s'", k);
	return jf_error(err, errlen, "%s: unknown field '%s'", where, k);
}
