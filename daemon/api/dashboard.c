/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The web dashboard's files: GET / is the page, GET /ui/NAME its script
 * and style sheet, all compiled into hvd (dashboard/ui, embedded by
 * dashboard/embed.cmake), so nothing on disk can be swapped in.
 *
 * Every reply carries the headers that keep the page inert to what it
 * shows: a CSP that runs only the page's own script and styles (no inline
 * code, no other origin, no framing), nosniff and no referrer.  The
 * script itself only ever sets text, never markup.  The files need no
 * sign-in: the page asks for a token before it shows anything.
 */
#include <string.h>

#include <microhttpd.h>

#include "rest.h"

struct dashboard_asset {
	const char *name;
	const char *data;
	size_t len;
};
extern const struct dashboard_asset dashboard_assets[];

static const char *const dashboard_headers[] = {
	"Content-Security-Policy: default-src 'none'; script-src 'self'; "
	    "style-src 'self'; img-src 'self' data:; connect-src 'self'; "
	    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
	"X-Content-Type-Options: nosniff",
	"Referrer-Policy: no-referrer",
	"X-Frame-Options: DENY",
	"Cache-Control: no-cache",
};

static const char *
dashboard_type(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (dot && strcmp(dot, ".js") == 0)
		return "text/javascript; charset=utf-8";
	if (dot && strcmp(dot, ".css") == 0)
		return "text/css; charset=utf-8";
	if (dot && strcmp(dot, ".svg") == 0)
		return "image/svg+xml";
	return "text/html; charset=utf-8";
}

static void
dashboard_send(const char *name, struct http_reply *rep)
{
	const struct dashboard_asset *a;

	for (a = dashboard_assets; a->name; a++)
		if (strcmp(a->name, name) == 0)
			break;
	if (a->name == NULL) {
		http_error(rep, MHD_HTTP_NOT_FOUND, "the dashboard has no file "
		    "'%s'", name);
		return;
	}
	if ((rep->blob = blob_new(a->data, a->len)) == NULL) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	for (size_t i = 0; i < sizeof(dashboard_headers) /
	    sizeof(*dashboard_headers) && i < HTTP_EXTRA_HEADERS; i++)
		snprintf(rep->header[i], sizeof(rep->header[i]), "%s",
		    dashboard_headers[i]);
	rep->content_type = dashboard_type(name);
	rep->status = MHD_HTTP_OK;
}

void
api_dashboard_page(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	(void)hvd;
	(void)req;
	dashboard_send("index.html", rep);
}

void
api_dashboard_asset(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep, const char *name)
{
	(void)hvd;
	(void)req;
	/* The page is served at / only: one address for it. */
	if (strcmp(name, "index.html") == 0) {
		http_error(rep, MHD_HTTP_NOT_FOUND, "the dashboard's page is at /");
		return;
	}
	dashboard_send(name, rep);
}
