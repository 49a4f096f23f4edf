/*
 * hvctl's HTTP client: libcurl over hvd's unix socket, or to a URL with a
 * bearer token.  Errors become the exit codes in hvctl.h here, once.
 *
 * Must never print the token.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "hvctl.h"

#define CLIENT_REPLY_MAX	(64 * 1024 * 1024)

struct client_buf {
	char *data;
	size_t len;
	bool overflow;
};

static size_t
client_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct client_buf *b = arg;
	size_t n = size * nmemb;
	char *nd;

	if (b->len + n > CLIENT_REPLY_MAX) {
		b->overflow = true;
		return 0;
	}
	if ((nd = realloc(b->data, b->len + n + 1)) == NULL)
		return 0;
	b->data = nd;
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

void
client_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void
client_global_cleanup(void)
{
	curl_global_cleanup();
}

static int
client_transport_error(struct hvctl *h, CURLcode cc, long oserr)
{
	const char *where = h->url ? h->url : h->socket;

	if (cc == CURLE_COULDNT_CONNECT && (oserr == EACCES || oserr == EPERM)) {
		fprintf(stderr, "hvctl: permission denied connecting to %s "
		    "(run as root or as a member of the socket's group)\n", where);
		return HVCTL_DENIED;
	}
	if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST) {
		fprintf(stderr, "hvctl: hvd is not running (cannot connect to "
		    "%s: %s)\n", where, oserr ? strerror((int)oserr) :
		    curl_easy_strerror(cc));
		return HVCTL_NOT_RUNNING;
	}
	fprintf(stderr, "hvctl: request to %s failed: %s\n", where,
	    curl_easy_strerror(cc));
	return HVCTL_FAIL;
}

int
client_call(struct hvctl *h, const char *method, const char *path,
    json_t *body, struct hvctl_reply *out)
{
	struct client_buf buf = { 0 };
	struct curl_slist *hdrs = NULL;
	char url[1024], auth[256];
	char *payload = NULL;
	json_error_t jerr;
	long oserr = 0;
	CURLcode cc;
	CURL *c;
	int r = HVCTL_FAIL;

	out->status = 0;
	out->body = NULL;
	if ((c = curl_easy_init()) == NULL)
		return HVCTL_FAIL;
	if (h->url) {
		snprintf(url, sizeof(url), "%s%s", h->url, path);
		if (h->token) {
			snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
			    h->token);
			hdrs = curl_slist_append(hdrs, auth);
		}
	} else {
		snprintf(url, sizeof(url), "http://localhost%s", path);
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, h->socket);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, client_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (body) {
		if ((payload = json_dumps(body, JSON_COMPACT)) == NULL)
			goto out;
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
		r = buf.overflow ? (fprintf(stderr, "hvctl: reply larger than "
		    "%d bytes\n", CLIENT_REPLY_MAX), HVCTL_FAIL) :
		    client_transport_error(h, cc, oserr);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
	if (buf.len > 0 && (out->body = json_loadb(buf.data, buf.len, 0,
	    &jerr)) == NULL && out->status < 300) {
		fprintf(stderr, "hvctl: hvd sent a reply that is not JSON: %s\n",
		    jerr.text);
		goto out;
	}
	r = HVCTL_OK;
out:
	if (h->token)
		memset(auth, 0, sizeof(auth));
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	free(payload);
	free(buf.data);
	return r;
}

/* Maps an HTTP status onto an exit code, printing the API's own words. */
int
client_check(const struct hvctl_reply *r, const char *what)
{
	const char *msg = NULL;

	if (r->status >= 200 && r->status < 300)
		return HVCTL_OK;
	if (r->body)
		msg = json_string_value(json_object_get(r->body, "error"));
	if (msg == NULL)
		msg = "no detail given";
	fprintf(stderr, "hvctl: %s: %s (HTTP %ld)\n", what, msg, r->status);
	if (r->status == 401 || r->status == 403)
		return HVCTL_DENIED;
	if (r->status >= 400 && r->status < 500)
		return HVCTL_REJECTED;
	return HVCTL_FAIL;
}

void
client_reply_dispose(struct hvctl_reply *r)
{
	json_decref(r->body);
	r->body = NULL;
}
