/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The edge of hvd's HTTP listeners: what a request must be before any
 * handler sees it.  A NUL anywhere in the request target, a query value
 * or a header, an HTTP/1.1 request without Host, a Transfer-Encoding other
 * than exactly "chunked", and a request too large in any dimension are
 * refused at once with the API's JSON error (400, 414 or 431).
 *
 * What libmicrohttpd's hooks saw of the request line while it parsed it
 * (wire/http_target.c) is checked here, with the header fields it parsed.
 *
 * Must never: let a refused request reach a handler, or read outside the
 * request line libmicrohttpd holds.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "net.h"

/*
 * libmicrohttpd 0.9.75 keeps each header line in its read buffer: the
 * name ends where it put a NUL for the colon, the value where it put NULs
 * for the CR and LF.  A raw NUL inside a line cuts the name or value
 * short, and the rest of the line then follows the cut: so a name must be
 * followed only by blanks up to its value, and a value by the second NUL
 * of its CRLF (a line must end in CRLF, as RFC 9112 says).
 */
static bool
http_edge_header_cut(const char *key, size_t key_size, const char *value,
    size_t value_size)
{
	const char *c;

	for (c = key + key_size + 1; c < value; c++)
		if (*c != ' ' && *c != '\t')
			return true;
	return c != value || value[value_size + 1] != '\0';
}

struct http_edge_fields {
	unsigned count;
	size_t bytes;
	bool nul;
};

static enum MHD_Result
http_edge_field(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
	struct http_edge_fields *f = cls;

	f->count++;
	f->bytes += key_size + value_size;
	if ((key && strlen(key) != key_size) ||
	    (value && strlen(value) != value_size))
		f->nul = true;
	if (kind == MHD_HEADER_KIND && key && value)
		f->nul |= http_edge_header_cut(key, key_size, value, value_size);
	return MHD_YES;
}

unsigned
http_edge_check(struct MHD_Connection *conn, const char *version,
    const struct http_target *e, char *why, size_t len)
{
	struct http_edge_fields h = { 0 }, q = { 0 };
	const char *te;

	if (e->nul) {
		snprintf(why, len, "a NUL byte in the request target");
		return MHD_HTTP_BAD_REQUEST;
	}
	if (e->target_len > HTTP_TARGET_MAX) {
		snprintf(why, len, "request target longer than %u bytes",
		    HTTP_TARGET_MAX);
		return MHD_HTTP_URI_TOO_LONG;
	}
	if (e->nargs > HTTP_ARGS_MAX) {
		snprintf(why, len, "more than %u query arguments", HTTP_ARGS_MAX);
		return MHD_HTTP_URI_TOO_LONG;
	}
	(void)MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND,
	    http_edge_field, &q);
	if (q.nul) {
		snprintf(why, len, "a NUL byte in a query argument");
		return MHD_HTTP_BAD_REQUEST;
	}
	(void)MHD_get_connection_values_n(conn, MHD_HEADER_KIND,
	    http_edge_field, &h);
	if (h.nul) {
		snprintf(why, len, "a NUL byte in a header field");
		return MHD_HTTP_BAD_REQUEST;
	}
	if (h.count > HTTP_HEADERS_MAX) {
		snprintf(why, len, "more than %u header fields", HTTP_HEADERS_MAX);
		return MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE;
	}
	if (h.bytes > HTTP_HEADER_BYTES_MAX) {
		snprintf(why, len, "header fields larger than %u bytes",
		    HTTP_HEADER_BYTES_MAX);
		return MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE;
	}
	if (version && strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_HOST) == NULL) {
		snprintf(why, len, "an HTTP/1.1 request without a Host header");
		return MHD_HTTP_BAD_REQUEST;
	}
	te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_TRANSFER_ENCODING);
	if (te && strcasecmp(te, "chunked") != 0) {
		snprintf(why, len, "Transfer-Encoding must be exactly 'chunked'");
		return MHD_HTTP_BAD_REQUEST;
	}
	return 0;
}
