/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The one strict JSON layer: table-driven checking and decoding of JSON
 * objects into C structs, for REST bodies (hvctl -> hvd, proto/api.c,
 * proto/vmspec.c) and agent link messages (proto/msg.c, agent/domain.c).
 *
 * Strict means: a body must be one JSON object with no duplicate keys and
 * nothing after it (jf_parse_object()); every key must be in the table;
 * every required field must be there; every value must have the table's
 * type and range; strings hold no NUL.  Objects and arrays nest, and an
 * error names the path of the value it refuses ("params.nics[1].mac: ...").
 * On error the functions return -EINVAL and write a one-line reason into
 * err; they never echo a value, and print keys bounded and made printable.
 *
 * Two wordings, so that existing messages stay what clients match on:
 *  - jf_decode(), a flat REST body: "field 'vni' must be in 1..16777215";
 *  - jf_check(), anything nested: "params.vni: must be in 1..16777215"
 *    (with an empty path at a body's top level: "vni: ...").
 * A field's msg replaces the generic text; its rule adds checks of its own
 * (a character set, a cross-field or cross-element rule) and reports them
 * with jf_fail(), which words them the same way.
 *
 * Ownership: jf_parse_object() returns a new reference the caller must
 * json_decref().  Decoding copies strings into the caller's struct, so it
 * does not borrow from the json_t.  Nothing is written past a member's
 * declared size, nor past max elements of an array.
 */
#ifndef HV_JSONFIELD_H
#define HV_JSONFIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* "8" from a macro defined as 8, for messages built at compile time. */
#define JF_STR(x)	JF_STR_(x)
#define JF_STR_(x)	#x
#define JF_LEN(a)	(sizeof(a) / sizeof(*(a)))

enum jf_type {
	JF_STRING,	/* min..max bytes (with jf_check: at most max), no NUL;
			   oneof: NULL-ended list of the allowed values */
	JF_HEX,		/* exactly max lowercase hex digits */
	JF_UUID,	/* lowercase 8-4-4-4-12 hex */
	JF_UINT,	/* integer in min..max; max 0: no upper bound.  Stored
			   as uint32_t or uint64_t, as size says */
	JF_INT,		/* any integer; not stored */
	JF_NUMBER,	/* any number; not stored */
	JF_BOOL,	/* true or false; stored as bool */
	JF_OBJECT,	/* the nchild fields in child, at offsets from this
			   field's offset (0: members of the same struct) */
	JF_ARRAY,	/* at most max elements of type elem (JF_OBJECT: with
			   child/nchild), element i stored at offset + i * size,
			   the number stored so far in the size_t at count */
	JF_ANY,		/* no generic check: rule alone checks and stores */
};

/* jf_field.flags */
#define JF_REQUIRED	0x1	/* absent is "missing field 'NAME'" */
#define JF_NULLABLE	0x2	/* null is accepted (and stores nothing) */
/*
 * JF_OBJECT and an array of them: report unknown keys first, then each
 * field in table order (absent or bad).  Without it: each key in the
 * input's order (unknown or bad), then absent fields in table order.
 */
#define JF_TABLE_ORDER	0x4

struct jf_field;

/*
 * Where a value is, for a rule.  A rule reads field, path, obj and, inside
 * an array, index, stride and array (the array's name); the members after
 * them are jsonfield's own.
 */
struct jf_ctx {
	const struct jf_field *field;
	const char *path;	/* "params.nics[1].mac", "" at a body's top */
	void *obj;		/* the struct holding the member; NULL: check only */
	size_t index;		/* innermost array: this element's index */
	size_t stride;		/*   its element size (0: not stored) */
	const char *array;	/*   its name, NULL outside arrays */
	bool field_style;	/* jf_decode()'s wording */
	unsigned *present;	/* jf_decode()'s flags, top level only */
	char *err;
	size_t errlen;
};

/*
 * A field's own check, run after the generic ones (and after the store):
 * returns 0 or jf_fail()'s -EINVAL.  dst is the member (obj + offset), or
 * NULL when only checking; a JF_ANY rule stores through it itself.
 */
typedef int jf_rule_fn(const struct jf_ctx *c, const json_t *v, void *dst);

struct jf_field {
	const char *name;
	enum jf_type type;
	unsigned flags;		/* JF_REQUIRED, JF_NULLABLE, JF_TABLE_ORDER */
	unsigned flag;		/* jf_decode(): OR-ed into *present when seen */
	size_t offset;		/* of the member in the output struct */
	size_t size;		/* of the member (JF_ARRAY: of an element); 0:
				   not stored */
	uint64_t min, max;
	const struct jf_field *child;	/* JF_OBJECT, JF_ARRAY of objects */
	size_t nchild;
	enum jf_type elem;	/* JF_ARRAY: JF_OBJECT, JF_INT or JF_NUMBER */
	size_t count;		/* JF_ARRAY: offset of the size_t count */
	const char *const *oneof;	/* JF_STRING */
	const char *msg;	/* replaces every generic message of this value */
	jf_rule_fn *rule;
};

int jf_parse_object(const char *body, size_t len, json_t **out, char *err,
    size_t errlen);
/*
 * A REST body's top-level object, flat, in jf_decode()'s wording.  *present
 * gets the flags of the fields seen; JF_REQUIRED fields are checked after
 * every key.
 */
int jf_decode(const json_t *obj, const struct jf_field *fields, size_t nfields,
    void *out, unsigned *present, char *err, size_t errlen);
/*
 * V, found at PATH, against ROOT (usually a JF_OBJECT), in jf_check()'s
 * wording; stored into OUT, or only checked when OUT is NULL.
 */
int jf_check(const struct jf_field *root, const json_t *v, const char *path,
    void *out, char *err, size_t errlen);

/* For rules: the reason, worded like the generic ones; returns -EINVAL. */
int jf_fail(const struct jf_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* For rules: V as a string without NUL of at most MAX bytes, or NULL. */
const char *jf_string(const json_t *v, size_t max);
/* For rules: V as an integer in MIN..MAX into *OUT, or false. */
bool jf_uint(const json_t *v, uint64_t min, uint64_t max, uint64_t *out);
/* For rules: copies S into DST (NULL: nothing), which holds field->size. */
int jf_store(const struct jf_ctx *c, void *dst, const char *s);
/* Exactly N lowercase hex digits in S[0..LEN). */
bool jf_hex_valid(const char *s, size_t len, size_t n);
/* A lowercase 8-4-4-4-12 hex uuid in S[0..LEN). */
bool jf_uuid_valid(const char *s, size_t len);

/* Writes a one-line reason into err and returns -EINVAL, for decoders. */
int jf_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
