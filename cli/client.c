/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvctl's HTTP client: libcurl over hvd's unix socket, or to a URL with a
 * bearer token.  Errors become the exit codes in hvctl.h here, once, and a
 * refused token or role says what to set (client_check).
 *
 * A long-running command (h->follow: top, and the commands that follow
 * what they started) waits out an hvd restart here and nowhere else: a GET
 * that cannot reach hvd says so in one line, then is retried after 0.5 s,
 * doubling up to 5 s, until hvd answers or the user interrupts.  A request
 * that changes something is never retried (hvd may have done it), and a
 * one-shot command fails at once.
 *
 * Must never print the token.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "hvctl.h"

#define CLIENT_REPLY_MAX	(64 * 1024 * 1024)
#define CLIENT_RETRY_FIRST_MS	500
#define CLIENT_RETRY_MAX_MS	5000
/* client_call_once(): the transport failed; nothing printed yet. */
#define CLIENT_TRANSPORT	(-1)

static volatile sig_atomic_t client_stop;

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

static void
client_on_signal(int sig)
{
	(void)sig;
	client_stop = 1;
}

/* Not SA_RESTART: a sleep in progress ends at once. */
void
client_catch_interrupt(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = client_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

bool
client_interrupted(void)
{
	return client_stop != 0;
}

/* libcurl calls this at least once a second: a request hvd does not
 * answer ends soon after an interrupt. */
static int
client_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	(void)arg;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return client_stop != 0;
}

/* The wait before the next retry: 0.5 s after none (prev_ms 0), then
 * doubling up to 5 s. */
static unsigned
client_backoff(unsigned prev_ms)
{
	if (prev_ms == 0)
		return CLIENT_RETRY_FIRST_MS;
	return prev_ms >= CLIENT_RETRY_MAX_MS / 2 ? CLIENT_RETRY_MAX_MS :
	    prev_ms * 2;
}

/* Sleeps ms in steps of 100 ms; -1 as soon as interrupted. */
static int
client_pause(unsigned ms)
{
	struct timespec step = { 0, 100 * 1000 * 1000 };

	for (unsigned slept = 0; slept < ms; slept += 100) {
		if (client_stop)
			return -1;
		nanosleep(&step, NULL);
	}
	return client_stop ? -1 : 0;
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

	if (tls_trust_explain(h, cc))
		return HVCTL_FAIL;
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

/* Whether a retry may find hvd: it does not listen (yet), or it went away
 * mid-request; not a refusal such as the socket's permissions. */
static bool
client_transient(CURLcode cc, long oserr)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
		return oserr != EACCES && oserr != EPERM;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:
		return true;
	default:
		return false;
	}
}

/* One request; CLIENT_TRANSPORT (unprinted, *cc and *oserr set) when
 * libcurl got no reply. */
static int
client_call_once(struct hvctl *h, const char *method, const char *path,
    json_t *body, struct hvctl_reply *out, CURLcode *cc, long *oserr)
{
	struct client_buf buf = { 0 };
	struct curl_slist *hdrs = NULL;
	char url[1024], auth[256];
	char *payload = NULL;
	json_error_t jerr;
	CURL *c;
	int r = HVCTL_FAIL;

	out->status = 0;
	out->body = NULL;
	out->via_tcp = h->url != NULL;
	out->sent_token = h->url != NULL && h->token != NULL && h->token[0];
	*oserr = 0;
	if ((c = curl_easy_init()) == NULL)
		return HVCTL_FAIL;
	tls_trust_apply(h, c);
	if (h->url) {
		snprintf(url, sizeof(url), "%s%s", h->url, path);
		if (out->sent_token) {
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
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, client_progress);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	if (body) {
		if ((payload = json_dumps(body, JSON_COMPACT)) == NULL)
			goto out;
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	*cc = curl_easy_perform(c);
	if (*cc != CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_OS_ERRNO, oserr);
		r = buf.overflow ? (fprintf(stderr, "hvctl: reply larger than "
		    "%d bytes\n", CLIENT_REPLY_MAX), HVCTL_FAIL) :
		    CLIENT_TRANSPORT;
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
	/* An answer came through the checked key: a new pin is good. */
	tls_trust_remember(h);
	if (buf.len > 0 && (out->body = json_loadb(buf.data, buf.len, 0,
	    &jerr)) == NULL && out->status < 300) {
		fprintf(stderr, "hvctl: hvd sent a reply that is not JSON: %s\n",
		    jerr.text);
		goto out;
	}
	r = HVCTL_OK;
out:
	if (out->sent_token)
		memset(auth, 0, sizeof(auth));
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	free(payload);
	free(buf.data);
	return r;
}

int
client_call(struct hvctl *h, const char *method, const char *path,
    json_t *body, struct hvctl_reply *out)
{
	bool retry = h->follow && strcmp(method, "GET") == 0;
	unsigned wait_ms = 0;
	long oserr;
	CURLcode cc;
	int r;

	while ((r = client_call_once(h, method, path, body, out, &cc,
	    &oserr)) == CLIENT_TRANSPORT) {
		/* Interrupted (client_progress): the command ends quietly. */
		if (client_stop)
			return HVCTL_FAIL;
		if (!retry || !client_transient(cc, oserr))
			return client_transport_error(h, cc, oserr);
		/* Once per outage: the next line is hvd's fresh answer. */
		if (wait_ms == 0)
			fprintf(stderr, "hvctl: hvd is unreachable at %s (%s); "
			    "retrying until it is back (Ctrl-C quits)\n",
			    h->url ? h->url : h->socket, oserr ?
			    strerror((int)oserr) : curl_easy_strerror(cc));
		wait_ms = client_backoff(wait_ms);
		if (client_pause(wait_ms) < 0)
			return HVCTL_FAIL;
	}
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
	out->via_tcp = false;
	out->sent_token = false;
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
	out->via_tcp = h->url != NULL;
	out->sent_token = h->url != NULL && h->token != NULL && h->token[0];
	if ((c = curl_easy_init()) == NULL)
		return HVCTL_FAIL;
	tls_trust_apply(h, c);
	if (h->url) {
		snprintf(url, sizeof(url), "%s%s", h->url, path);
		if (out->sent_token) {
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
	if (out->sent_token)
		memset(auth, 0, sizeof(auth));
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	free(buf.data);
	return r;
}

/* After a 401 or 403: what to set.  The token is only ever read from
 * $HVCTL_TOKEN (hvctl takes none on its command line, where ps shows it). */
static void
client_hint(const struct hvctl_reply *r)
{
	if (r->via_tcp && r->status == 401 && !r->sent_token)
		fprintf(stderr, "hvctl: no token was sent: set HVCTL_TOKEN to an "
		    "API token (hvctl token create, on hvd's host)\n");
	else if (r->via_tcp && r->status == 401)
		fprintf(stderr, "hvctl: hvd did not accept the token in "
		    "HVCTL_TOKEN (revoked, or mistyped?): set HVCTL_TOKEN to a "
		    "valid one (hvctl token list, on hvd's host)\n");
	else if (r->via_tcp && r->status == 403)
		fprintf(stderr, "hvctl: set HVCTL_TOKEN to a token whose role may "
		    "do this (hvctl token create --role admin, on hvd's host)\n");
	else if (r->status == 403)
		fprintf(stderr, "hvctl: over the socket, users other than root and "
		    "hvd's own get api-socket-peer-role; run as root, or use "
		    "--url with a token in HVCTL_TOKEN\n");
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
	if (r->status == 401 || r->status == 403) {
		client_hint(r);
		return HVCTL_DENIED;
	}
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
