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
#include <unistd.h>

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

struct client_sink {
	CURL *c;
	int fd;
	long status;			/* 0 until the first body bytes */
	struct client_buf err;		/* a non-2xx body */
	bool failed;
};

/* Sends a 2xx body to the file, anything else to the error buffer: the
 * status is known by the time the first body bytes arrive. */
static size_t
client_write_sink(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct client_sink *k = arg;
	size_t n = size * nmemb, done = 0;
	ssize_t w;

	if (k->status == 0)
		curl_easy_getinfo(k->c, CURLINFO_RESPONSE_CODE, &k->status);
	if (k->status < 200 || k->status >= 300)
		return client_write(ptr, size, nmemb, &k->err);
	while (done < n) {
		if ((w = write(k->fd, ptr + done, n - done)) <= 0) {
			k->failed = true;
			return 0;
		}
		done += (size_t)w;
	}
	return n;
}

/*
 * GET path into fd (a 2xx body, any size); a 4xx/5xx body is read as the
 * API's JSON error into out->body instead.  Local socket only.
 */
int
client_download(struct hvctl *h, const char *path, int fd,
    struct hvctl_reply *out)
{
	struct client_sink k = { .fd = fd };
	char url[1024];
	long oserr = 0;
	CURLcode cc;
	int r = HVCTL_FAIL;

	out->status = 0;
	out->body = NULL;
	if (h->url) {
		fprintf(stderr, "hvctl: this is only taken over the local socket\n");
		return HVCTL_USAGE;
	}
	if ((k.c = curl_easy_init()) == NULL)
		return HVCTL_FAIL;
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(k.c, CURLOPT_UNIX_SOCKET_PATH, h->socket);
	curl_easy_setopt(k.c, CURLOPT_URL, url);
	curl_easy_setopt(k.c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(k.c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(k.c, CURLOPT_WRITEFUNCTION, client_write_sink);
	curl_easy_setopt(k.c, CURLOPT_WRITEDATA, &k);
	cc = curl_easy_perform(k.c);
	if (cc != CURLE_OK) {
		curl_easy_getinfo(k.c, CURLINFO_OS_ERRNO, &oserr);
		r = k.failed ? (fprintf(stderr, "hvctl: cannot write the "
		    "download: %s\n", strerror(errno)), HVCTL_FAIL) :
		    client_transport_error(h, cc, oserr);
		goto out;
	}
	curl_easy_getinfo(k.c, CURLINFO_RESPONSE_CODE, &out->status);
	if (k.err.len > 0)
		out->body = json_loadb(k.err.data, k.err.len, 0, NULL);
	r = HVCTL_OK;
out:
	curl_easy_cleanup(k.c);
	free(k.err.data);
	return r;
}

/* POST the file f (size bytes) as the body of path, streamed. */
int
client_upload(struct hvctl *h, const char *path, FILE *f, uint64_t size,
    struct hvctl_reply *out)
{
	struct client_buf buf = { 0 };
	struct curl_slist *hdrs = NULL;
	char url[1024], auth[256];
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
	hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "POST");
	curl_easy_setopt(c, CURLOPT_READDATA, f);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, client_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
		r = client_transport_error(h, cc, oserr);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
	if (buf.len > 0)
		out->body = json_loadb(buf.data, buf.len, 0, NULL);
	r = HVCTL_OK;
out:
	if (h->token)
		memset(auth, 0, sizeof(auth));
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
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
