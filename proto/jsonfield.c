/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Strict JSON checking and decoding against field tables (jsonfield.h).
 *
 * One recursive walker serves every table: an object walks its fields, an
 * array its elements, a leaf gets its generic checks and then its rule.
 *
 * Invariants: recursion depth is bounded by the static tables, not by the
 * input; array lengths are bounded by max; nothing is written past a
 * member's size; a string with an embedded NUL is rejected (jansson allows
 * them, C strings cannot hold them).  Must never echo a value back in an
 * error: values can be long or secret, so errors name the path only, and a
 * key is printed bounded with its unprintable bytes as '?'.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jsonfield.h"

#define JF_PATH_MAX	160

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

int
jf_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int jf_vfail(const struct jf_ctx *c, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static int
jf_vfail(const struct jf_ctx *c, const char *fmt, va_list ap)
{
	int n = 0;

	if (c->field_style)
		n = snprintf(c->err, c->errlen, "field '%s' ", c->field->name);
	else if (c->path[0] != '\0')
		n = snprintf(c->err, c->errlen, "%s: ", c->path);
	else if (c->errlen > 0)
		c->err[0] = '\0';
	if (n >= 0 && (size_t)n < c->errlen)
		vsnprintf(c->err + n, c->errlen - n, fmt, ap);
	return -EINVAL;
}

int
jf_fail(const struct jf_ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	jf_vfail(c, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int jf_bad(const struct jf_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A generic refusal of the value itself, unless the field words its own. */
static int
jf_bad(const struct jf_ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->field->msg != NULL)
		return jf_fail(c, "%s", c->field->msg);
	va_start(ap, fmt);
	jf_vfail(c, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* "PATH: unknown field 'KEY'", the key bounded and printable. */
static int
jf_unknown(const struct jf_ctx *c, const char *key)
{
	char k[33];
	size_t i;

	for (i = 0; key[i] && i < sizeof(k) - 1; i++)
		k[i] = ((unsigned char)key[i] < 0x20 ||
		    (unsigned char)key[i] > 0x7e) ? '?' : key[i];
	k[i] = '\0';
	if (c->field_style || c->path[0] == '\0')
		return jf_error(c->err, c->errlen, "unknown field '%s'", k);
	return jf_error(c->err, c->errlen, "%s: unknown field '%s'", c->path, k);
}

static int
jf_missing(const struct jf_ctx *c, const char *name)
{
	if (c->field_style || c->path[0] == '\0')
		return jf_error(c->err, c->errlen, "missing field '%s'", name);
	return jf_error(c->err, c->errlen, "%s: missing field '%s'", c->path,
	    name);
}

bool
jf_hex_valid(const char *s, size_t len, size_t n)
{
	if (len != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

bool
jf_uuid_valid(const char *s, size_t len)
{
	if (len != 36)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !jf_hex_valid(s + i, 1, 1))
			return false;
	}
	return true;
}

const char *
jf_string(const json_t *v, size_t max)
{
	const char *s = json_string_value(v);

	if (s == NULL || strlen(s) != json_string_length(v) || strlen(s) > max)
		return NULL;
	return s;
}

bool
jf_uint(const json_t *v, uint64_t min, uint64_t max, uint64_t *out)
{
	json_int_t i = json_integer_value(v);

	if (!json_is_integer(v) || i < 0 || (uint64_t)i < min ||
	    (uint64_t)i > max)
		return false;
	*out = (uint64_t)i;
	return true;
}

int
jf_store(const struct jf_ctx *c, void *dst, const char *s)
{
	size_t n = strlen(s);

	if (dst == NULL)
		return 0;
	/* A table whose max exceeds its member: refuse, never overflow. */
	if (n >= c->field->size)
		return jf_fail(c, "longer than %zu bytes", c->field->size - 1);
	memcpy(dst, s, n + 1);
	return 0;
}

static int
jf_string_value(const struct jf_ctx *c, const json_t *v, void *dst)
{
	const struct jf_field *f = c->field;
	const char *s;
	size_t n;

	if (!json_is_string(v))
		return jf_bad(c, "must be a string");
	s = json_string_value(v);
	n = json_string_length(v);
	switch (f->type) {
	case JF_HEX:
		if (!jf_hex_valid(s, n, f->max))
			return jf_bad(c, "must be %llu lowercase hex digits",
			    (unsigned long long)f->max);
		break;
	case JF_UUID:
		if (!jf_uuid_valid(s, n))
			return jf_bad(c, "must be a lowercase 8-4-4-4-12 hex uuid");
		break;
	default:
		if (strlen(s) != n)
			return jf_bad(c, "contains a NUL byte");
		if (n < f->min || n > f->max || (dst && n >= f->size)) {
			if (c->field_style || f->min > 0)
				return jf_bad(c, "must be %llu to %llu bytes long",
				    (unsigned long long)f->min,
				    (unsigned long long)f->max);
			return jf_bad(c, "longer than %llu bytes",
			    (unsigned long long)f->max);
		}
		if (f->oneof != NULL) {
			const char *const *o;

			for (o = f->oneof; *o && strcmp(*o, s) != 0; o++)
				;
			if (*o == NULL)
				return jf_bad(c, "not an allowed value");
		}
		break;
	}
	return jf_store(c, dst, s);
}

static int
jf_uint_value(const struct jf_ctx *c, const json_t *v, void *dst)
{
	const struct jf_field *f = c->field;
	json_int_t i;

	if (!json_is_integer(v))
		return jf_bad(c, "must be an integer");
	i = json_integer_value(v);
	/* REST bodies have always said "must be in" for a negative, too. */
	if (i < 0 && !c->field_style)
		return jf_bad(c, "must not be negative");
	if (f->max == 0 && (i < 0 || (uint64_t)i < f->min))
		return jf_bad(c, "must be at least %llu",
		    (unsigned long long)f->min);
	if (f->max != 0 && (i < 0 || (uint64_t)i < f->min ||
	    (uint64_t)i > f->max))
		return jf_bad(c, "must be in %llu..%llu",
		    (unsigned long long)f->min, (unsigned long long)f->max);
	if (dst != NULL && f->size == sizeof(uint32_t))
		*(uint32_t *)dst = (uint32_t)i;
	else if (dst != NULL && f->size == sizeof(uint64_t))
		*(uint64_t *)dst = (uint64_t)i;
	return 0;
}

static int jf_value(const struct jf_ctx *c, const json_t *v, bool member);

static const struct jf_field *
jf_lookup(const struct jf_field *f, const char *key)
{
	for (size_t i = 0; i < f->nchild; i++)
		if (strcmp(f->child[i].name, key) == 0)
			return &f->child[i];
	return NULL;
}

/* Member CF of the object at C, whose members live at BASE. */
static int
jf_member(const struct jf_ctx *c, const struct jf_field *cf, const json_t *v,
    void *base)
{
	char path[JF_PATH_MAX];
	struct jf_ctx m = *c;
	int r;

	if (c->path[0] == '\0')
		snprintf(path, sizeof(path), "%s", cf->name);
	else
		snprintf(path, sizeof(path), "%s.%s", c->path, cf->name);
	m.field = cf;
	m.path = path;
	m.obj = base;
	m.present = NULL;
	if ((r = jf_value(&m, v, true)) < 0)
		return r;
	if (c->present != NULL)
		*c->present |= cf->flag;
	return 0;
}

static int
jf_object(const struct jf_ctx *c, const json_t *v)
{
	const struct jf_field *f = c->field;
	void *base = c->obj ? (char *)c->obj + f->offset : NULL;
	const char *key;
	json_t *m;
	int r;

	if (!json_is_object(v))
		return jf_bad(c, "must be an object");
	/* json_object_foreach needs a non-const object; it does not modify it. */
	json_object_foreach((json_t *)v, key, m) {
		const struct jf_field *cf = jf_lookup(f, key);

		if (cf == NULL)
			return jf_unknown(c, key);
		if (!(f->flags & JF_TABLE_ORDER) &&
		    (r = jf_member(c, cf, m, base)) < 0)
			return r;
	}
	for (size_t i = 0; i < f->nchild; i++) {
		const struct jf_field *cf = &f->child[i];

		if ((m = json_object_get(v, cf->name)) == NULL) {
			if (cf->flags & JF_REQUIRED)
				return jf_missing(c, cf->name);
			continue;
		}
		if ((f->flags & JF_TABLE_ORDER) &&
		    (r = jf_member(c, cf, m, base)) < 0)
			return r;
	}
	return 0;
}

static int
jf_array(const struct jf_ctx *c, const json_t *v)
{
	const struct jf_field *f = c->field;
	struct jf_field ef = { .name = f->name, .type = f->elem,
	    .flags = f->flags & JF_TABLE_ORDER, .child = f->child,
	    .nchild = f->nchild };
	char path[JF_PATH_MAX];
	struct jf_ctx e = *c;
	size_t i;
	json_t *x;
	int r;

	if (!json_is_array(v))
		return jf_bad(c, "must be an array");
	if (json_array_size(v) > f->max)
		return jf_bad(c, "more than %llu elements",
		    (unsigned long long)f->max);
	e.field = &ef;
	e.path = path;
	e.array = f->name;
	e.stride = c->obj ? f->size : 0;
	json_array_foreach((json_t *)v, i, x) {
		snprintf(path, sizeof(path), "%s[%zu]", c->path, i);
		e.index = i;
		e.obj = e.stride ? (char *)c->obj + f->offset + i * f->size :
		    NULL;
		if ((r = jf_value(&e, x, false)) < 0)
			return r;
		if (e.stride)
			*(size_t *)(void *)((char *)c->obj + f->count) = i + 1;
	}
	return 0;
}

/*
 * One value.  A null member is "must not be null" in jf_check()'s wording
 * (an array element, a jf_decode() field, or one with its own msg is
 * refused by its type like any other wrong value).
 */
static int
jf_value(const struct jf_ctx *c, const json_t *v, bool member)
{
	const struct jf_field *f = c->field;
	void *dst = c->obj && (f->size || f->type == JF_ANY) ?
	    (char *)c->obj + f->offset : NULL;
	int r = 0;

	if (json_is_null(v) && f->type != JF_ANY) {
		if (f->flags & JF_NULLABLE)
			return 0;
		if (member && !c->field_style && f->msg == NULL)
			return jf_fail(c, "must not be null");
	}
	switch (f->type) {
	case JF_STRING:
	case JF_HEX:
	case JF_UUID:
		r = jf_string_value(c, v, dst);
		break;
	case JF_UINT:
		r = jf_uint_value(c, v, dst);
		break;
	case JF_INT:
		if (!json_is_integer(v))
			r = jf_bad(c, "must be an integer");
		break;
	case JF_NUMBER:
		if (!json_is_number(v))
			r = jf_bad(c, "must be a number");
		break;
	case JF_BOOL:
		if (!json_is_boolean(v))
			r = jf_bad(c, "must be true or false");
		else if (dst != NULL)
			*(bool *)dst = json_is_true(v);
		break;
	case JF_OBJECT:
		/* Its members are placed from obj, not from dst. */
		r = jf_object(c, v);
		break;
	case JF_ARRAY:
		r = jf_array(c, v);
		break;
	case JF_ANY:
		break;
	default:
		r = jf_fail(c, "has no schema type");
		break;
	}
	if (r == 0 && f->rule != NULL)
		r = f->rule(c, v, dst);
	return r;
}

int
jf_decode(const json_t *obj, const struct jf_field *fields, size_t nfields,
    void *out, unsigned *present, char *err, size_t errlen)
{
	const struct jf_field root = { .name = "", .type = JF_OBJECT,
	    .child = fields, .nchild = nfields };
	struct jf_ctx c = { .field = &root, .path = "", .obj = out,
	    .field_style = true, .present = present, .err = err,
	    .errlen = errlen };

	*present = 0;
	return jf_object(&c, obj);
}

int
jf_check(const struct jf_field *root, const json_t *v, const char *path,
    void *out, char *err, size_t errlen)
{
	struct jf_ctx c = { .field = root, .path = path, .obj = out,
	    .err = err, .errlen = errlen };

	return jf_value(&c, v, false);
}
