/*
 * Strict, table-driven decoding of JSON objects into C structs.  Used for
 * REST bodies (hvctl -> hvd) and, later, agent messages.
 *
 * Strict means: the body must be one JSON object with no duplicate keys and
 * nothing after it; every key must be in the table; every value must have
 * the table's type and range.  On error the functions return -EINVAL and
 * write a one-line reason naming the offending field into err.
 *
 * Ownership: jf_parse_object() returns a new reference the caller must
 * json_decref().  jf_decode() copies strings into the caller's struct, so
 * the struct does not borrow from the json_t.
 */
#ifndef HV_JSONFIELD_H
#define HV_JSONFIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum jf_type {
	JF_STRING,	/* char[size]; min/max bound the length in bytes */
	JF_UINT32,	/* uint32_t; min/max bound the value */
	JF_BOOL,	/* bool */
};

struct jf_field {
	const char *name;
	enum jf_type type;
	unsigned flag;		/* OR-ed into *present when seen */
	size_t offset;		/* of the member in the output struct */
	size_t size;		/* JF_STRING: buffer size including NUL */
	uint64_t min, max;
	/* Optional extra check; returns false and explains in err. */
	bool (*valid)(const char *s, char *err, size_t errlen);
};

/* Writes a one-line reason into err and returns -EINVAL, for decoders. */
int jf_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "WHERE: unknown field 'KEY'" (or without WHERE when NULL), with a
 * bounded, printable copy of the key; returns -EINVAL. */
int jf_unknown(char *err, size_t errlen, const char *where, const char *key);

int jf_parse_object(const char *body, size_t len, json_t **out, char *err,
    size_t errlen);
int jf_decode(const json_t *obj, const struct jf_field *fields, size_t nfields,
    void *out, unsigned *present, char *err, size_t errlen);

#endif
