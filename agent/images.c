/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The agent's image store (vm.h): images fetched from hvd over HTTP, kept
 * under their SHA-256 in RAM or on local storage, and the per-VM disk
 * copies made from them.
 *
 * One job per image in flight; requests for the same image join it.  A
 * job is a state machine driven by libevent: REHASH (a file found on disk
 * but not verified by this process, hashed a slice per loop pass), FETCH
 * (evhttp streams the body into ".<sha>.part" and the hash), or COPY (a
 * disk copy, a slice of copy_file_range per loop pass), then DONE, which
 * calls the waiters from a callback of its own, never from libevent's HTTP
 * code or from the function that made the request.
 *
 * Invariants: a file named <sha256> in the directory was hashed to that
 * name by this code (or is hashed again before use); a failed or
 * mismatching download leaves no file behind.  Must never: resolve names
 * or block the loop on the network, follow a redirect, or let a VM write
 * to a cached image.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <linux/magic.h>
#include <sodium.h>

#include "log.h"
#include "vm.h"

#define IMG_SLICE	(4u << 20)	/* bytes hashed or copied per pass */
#define IMG_ERR_MAX	256

enum img_kind { IMG_REHASH, IMG_FETCH, IMG_COPY };

struct img_req {
	TAILQ_ENTRY(img_req) entry;
	struct img_job *job;
	img_done_fn *cb;
	void *arg;
};
TAILQ_HEAD(img_reqs, img_req);

struct img_job {
	LIST_ENTRY(img_job) entry;
	struct img_cache *c;
	enum img_kind kind;
	char sha[IMG_SHA_HEX + 1];
	char key[IMG_PATH_MAX + 1];	/* sha, or "vm/<uuid>" for copies */
	char url[IMG_URL_MAX + 1];
	char path[PATH_MAX], part[PATH_MAX];
	int fd, srcfd;			/* -1 when closed */
	crypto_hash_sha256_state hs;
	uint64_t bytes;
	struct evhttp_connection *conn;
	struct event *ev;		/* the next step, or DONE */
	bool done;
	int r;
	char err[IMG_ERR_MAX];
	struct img_reqs reqs;
};

/* What this process verified: reused while the file is unchanged. */
struct img_known {
	LIST_ENTRY(img_known) entry;
	char sha[IMG_SHA_HEX + 1];
	off_t size;
	ino_t ino;
	struct timespec mtime;
};

struct img_cache {
	struct event_base *base;
	char dir[PATH_MAX];
	LIST_HEAD(, img_job) jobs;
	LIST_HEAD(, img_known) known;
};

static void img_step(evutil_socket_t, short, void *);

int
img_dir_choose(const char *persist, const char *volatile_dir, char *out,
    size_t outlen)
{
	struct statfs sf;
	struct stat sb;
	char tmp[PATH_MAX];
	size_t n;

	if (stat(persist, &sb) == 0 && S_ISDIR(sb.st_mode) &&
	    statfs(persist, &sf) == 0 && sf.f_type != TMPFS_MAGIC &&
	    sf.f_type != RAMFS_MAGIC) {
		if ((size_t)snprintf(out, outlen, "%s", persist) >= outlen)
			return -ENAMETOOLONG;
		return 0;
	}
	if ((n = (size_t)snprintf(tmp, sizeof(tmp), "%s", volatile_dir)) >=
	    sizeof(tmp) || n >= outlen || tmp[0] != '/')
		return -EINVAL;
	/* mkdir -p, each component 0700. */
	for (char *p = tmp + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(tmp, 0700) == -1 && errno != EEXIST)
			return -errno;
		*p = c;
		if (c == '\0')
			break;
	}
	if (stat(volatile_dir, &sb) == -1)
		return -errno;
	if (!S_ISDIR(sb.st_mode))
		return -ENOTDIR;
	snprintf(out, outlen, "%s", volatile_dir);
	return 0;
}

static bool
img_sha_valid(const char *s)
{
	if (strlen(s) != IMG_SHA_HEX)
		return false;
	for (size_t i = 0; i < IMG_SHA_HEX; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/*
 * http://<IPv4 or [IPv6]>[:port]/images/<sha256>, nothing more: the agent
 * resolves no names on its loop and fetches only what hvd serves.
 */
static int
img_url_parse(const char *url, const char *sha, char *host, size_t hostlen,
    uint16_t *port, char *err, size_t errlen)
{
	struct evhttp_uri *u = NULL;
	const char *h, *p;
	char want[16 + IMG_SHA_HEX], v6[64];
	unsigned char a[16];
	int r = -EINVAL, pn;

	if (strlen(url) > IMG_URL_MAX ||
	    (u = evhttp_uri_parse_with_flags(url, 0)) == NULL) {
		snprintf(err, errlen, "not a URL");
		goto out;
	}
	if (evhttp_uri_get_scheme(u) == NULL ||
	    strcmp(evhttp_uri_get_scheme(u), "http") != 0 ||
	    evhttp_uri_get_userinfo(u) != NULL ||
	    evhttp_uri_get_query(u) != NULL ||
	    evhttp_uri_get_fragment(u) != NULL) {
		snprintf(err, errlen, "must be http://address[:port]/images/"
		    "<sha256>");
		goto out;
	}
	/* libevent keeps an IPv6 literal's brackets. */
	if ((h = evhttp_uri_get_host(u)) != NULL && h[0] == '[' &&
	    strlen(h) >= 2 && h[strlen(h) - 1] == ']') {
		snprintf(v6, sizeof(v6), "%.*s", (int)strlen(h) - 2, h + 1);
		h = v6;
	}
	if (h == NULL || strlen(h) >= hostlen || (inet_pton(AF_INET, h, a) != 1 &&
	    inet_pton(AF_INET6, h, a) != 1)) {
		snprintf(err, errlen, "host must be a numeric address");
		goto out;
	}
	pn = evhttp_uri_get_port(u);
	if (pn == 0 || pn > 65535) {
		snprintf(err, errlen, "bad port");
		goto out;
	}
	p = evhttp_uri_get_path(u);
	snprintf(want, sizeof(want), "/images/%s", sha);
	if (p == NULL || strcmp(p, want) != 0) {
		snprintf(err, errlen, "path must be /images/<the image's sha256>");
		goto out;
	}
	snprintf(host, hostlen, "%s", h);
	*port = pn < 0 ? 80 : (uint16_t)pn;
	r = 0;
out:
	if (u)
		evhttp_uri_free(u);
	return r;
}

int
img_ref_check(const char *url, const char *sha256, char *err, size_t errlen)
{
	char host[64];
	uint16_t port;

	if (!img_sha_valid(sha256)) {
		snprintf(err, errlen, "sha256: must be 64 lowercase hex digits");
		return -EINVAL;
	}
	return img_url_parse(url, sha256, host, sizeof(host), &port, err,
	    errlen);
}

struct img_cache *
img_cache_new(struct event_base *base, const char *dir)
{
	struct img_cache *c;
	struct stat sb;

	if (strlen(dir) + 1 + IMG_SHA_HEX + 16 >= PATH_MAX) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	if (stat(dir, &sb) == -1)
		return NULL;
	if (!S_ISDIR(sb.st_mode)) {
		errno = ENOTDIR;
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->base = base;
	snprintf(c->dir, sizeof(c->dir), "%s", dir);
	LIST_INIT(&c->jobs);
	LIST_INIT(&c->known);
	return c;
}

const char *
img_cache_dir(const struct img_cache *c)
{
	return c->dir;
}

static void
img_job_free(struct img_job *j)
{
	struct img_req *rq;

	if (j == NULL)
		return;
	while ((rq = TAILQ_FIRST(&j->reqs)) != NULL) {
		TAILQ_REMOVE(&j->reqs, rq, entry);
		free(rq);
	}
	if (j->conn)
		evhttp_connection_free(j->conn);
	if (j->fd != -1)
		close(j->fd);
	if (j->srcfd != -1)
		close(j->srcfd);
	if (j->part[0])
		unlink(j->part);
	if (j->ev)
		event_free(j->ev);
	LIST_REMOVE(j, entry);
	free(j);
}

void
img_cache_free(struct img_cache *c)
{
	struct img_known *k;

	if (c == NULL)
		return;
	while (!LIST_EMPTY(&c->jobs))
		img_job_free(LIST_FIRST(&c->jobs));
	while ((k = LIST_FIRST(&c->known)) != NULL) {
		LIST_REMOVE(k, entry);
		free(k);
	}
	free(c);
}

static struct img_known *
img_known_find(struct img_cache *c, const char *sha)
{
	struct img_known *k;

	LIST_FOREACH(k, &c->known, entry)
		if (strcmp(k->sha, sha) == 0)
			return k;
	return NULL;
}

static void
img_known_add(struct img_cache *c, const char *sha, const struct stat *sb)
{
	struct img_known *k = img_known_find(c, sha);

	if (k == NULL) {
		if ((k = calloc(1, sizeof(*k))) == NULL)
			return;		/* hashed again next time */
		memcpy(k->sha, sha, IMG_SHA_HEX + 1);
		LIST_INSERT_HEAD(&c->known, k, entry);
	}
	k->size = sb->st_size;
	k->ino = sb->st_ino;
	k->mtime = sb->st_mtim;
}

static void
img_known_drop(struct img_cache *c, const char *sha)
{
	struct img_known *k = img_known_find(c, sha);

	if (k != NULL) {
		LIST_REMOVE(k, entry);
		free(k);
	}
}

/* Ends the job: DONE runs on the next loop pass. */
static void
img_finish(struct img_job *j, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
img_finish(struct img_job *j, int r, const char *fmt, ...)
{
	char msg[IMG_ERR_MAX];
	va_list ap;

	if (j->done)
		return;
	j->done = true;
	j->r = r;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		memcpy(j->err, msg, sizeof(msg));
	}
	if (j->fd != -1)
		close(j->fd);
	j->fd = -1;
	if (r < 0 && j->part[0])
		unlink(j->part);
	j->part[0] = '\0';
	event_active(j->ev, EV_TIMEOUT, 0);
}

static void
img_next(struct img_job *j)
{
	event_active(j->ev, EV_TIMEOUT, 0);
}

static bool
img_hash_matches(struct img_job *j)
{
	uint8_t got[crypto_hash_sha256_BYTES];
	char hex[IMG_SHA_HEX + 1];

	crypto_hash_sha256_final(&j->hs, got);
	sodium_bin2hex(hex, sizeof(hex), got, sizeof(got));
	return strcmp(hex, j->sha) == 0;
}

static void img_start_fetch(struct img_job *j);

/* Hashes one slice of an unverified cached file. */
static void
img_rehash_step(struct img_job *j)
{
	static uint8_t buf[1 << 16];
	struct stat sb;
	size_t done = 0;
	ssize_t n = 0;

	while (done < IMG_SLICE &&
	    (n = read(j->srcfd, buf, sizeof(buf))) > 0) {
		crypto_hash_sha256_update(&j->hs, buf, (size_t)n);
		done += (size_t)n;
	}
	if (n > 0) {
		img_next(j);
		return;
	}
	if (n < 0) {
		log_warn("images: %s: read", j->path);
	} else if (img_hash_matches(j) && fstat(j->srcfd, &sb) == 0) {
		img_known_add(j->c, j->sha, &sb);
		log_info("images: %s verified in the cache", j->sha);
		close(j->srcfd);
		j->srcfd = -1;
		img_finish(j, 0, NULL);
		return;
	} else {
		log_warnx("images: %s: cached file does not match its hash; "
		    "fetching it again", j->sha);
	}
	close(j->srcfd);
	j->srcfd = -1;
	unlink(j->path);
	img_start_fetch(j);
}

static void
img_copy_step(struct img_job *j)
{
	struct stat sb;
	ssize_t n;

	n = copy_file_range(j->srcfd, NULL, j->fd, NULL, IMG_SLICE, 0);
	if (n > 0) {
		j->bytes += (uint64_t)n;
		img_next(j);
		return;
	}
	if (n < 0) {
		img_finish(j, -errno, "copying the disk image: %s",
		    strerror(errno));
		return;
	}
	if (fstat(j->srcfd, &sb) == -1 || (uint64_t)sb.st_size != j->bytes) {
		img_finish(j, -EIO, "copying the disk image: short copy");
		return;
	}
	if (fsync(j->fd) == -1 || rename(j->part, j->path) == -1) {
		img_finish(j, -errno, "saving the disk copy: %s",
		    strerror(errno));
		return;
	}
	j->part[0] = '\0';
	img_finish(j, 0, NULL);
}

static void
img_step(evutil_socket_t fd, short what, void *arg)
{
	struct img_job *j = arg;
	struct img_req *rq;

	(void)fd;
	(void)what;
	if (!j->done) {
		if (j->kind == IMG_REHASH)
			img_rehash_step(j);
		else if (j->kind == IMG_COPY)
			img_copy_step(j);
		return;
	}
	/* Waiters may start new jobs or cancel this job's other requests. */
	while ((rq = TAILQ_FIRST(&j->reqs)) != NULL) {
		TAILQ_REMOVE(&j->reqs, rq, entry);
		rq->cb(rq->arg, j->r, j->r == 0 ? j->path : NULL,
		    j->r == 0 ? NULL : j->err);
		free(rq);
	}
	img_job_free(j);
}

static int
img_header_cb(struct evhttp_request *req, void *arg)
{
	struct img_job *j = arg;
	const char *cl;
	struct statvfs sv;
	unsigned long long len;
	char *end;
	int code = evhttp_request_get_response_code(req);

	if (code != 200) {
		snprintf(j->err, sizeof(j->err), "HTTP %d from %s", code, j->url);
		return -1;
	}
	cl = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Content-Length");
	if (cl != NULL && fstatvfs(j->fd, &sv) == 0) {
		errno = 0;
		len = strtoull(cl, &end, 10);
		if (errno == 0 && *end == '\0' &&
		    len > (unsigned long long)sv.f_bavail * sv.f_frsize) {
			snprintf(j->err, sizeof(j->err), "%llu bytes do not fit "
			    "in %s", len, j->c->dir);
			return -1;
		}
	}
	return 0;
}

static void
img_chunk_cb(struct evhttp_request *req, void *arg)
{
	struct img_job *j = arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	unsigned char *p;
	ssize_t n;

	if (j->done || j->err[0] || len == 0)
		return;
	if ((p = evbuffer_pullup(in, -1)) == NULL) {
		snprintf(j->err, sizeof(j->err), "out of memory");
		return;
	}
	crypto_hash_sha256_update(&j->hs, p, len);
	j->bytes += len;
	while (len > 0) {
		if ((n = write(j->fd, p, len)) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(j->err, sizeof(j->err), "writing %s: %s",
			    j->part, strerror(errno));
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	evbuffer_drain(in, evbuffer_get_length(in));
}

static void
img_error_cb(enum evhttp_request_error e, void *arg)
{
	struct img_job *j = arg;

	if (j->err[0] == '\0')
		snprintf(j->err, sizeof(j->err), "fetching %s: %s", j->url,
		    e == EVREQ_HTTP_TIMEOUT ? "timed out" : e == EVREQ_HTTP_EOF ?
		    "connection closed" : "connection failed");
}

/* libevent's request is finished here; the job ends in img_step(). */
static void
img_done_cb(struct evhttp_request *req, void *arg)
{
	struct img_job *j = arg;
	struct stat sb;

	if (req == NULL || j->err[0]) {
		img_finish(j, -EIO, "%s", j->err[0] ? j->err :
		    "fetch failed");
		return;
	}
	/* A connection refused ends here with no response at all. */
	if (evhttp_request_get_response_code(req) != 200) {
		img_finish(j, -EIO, "fetching %s: no answer (HTTP %d)", j->url,
		    evhttp_request_get_response_code(req));
		return;
	}
	img_chunk_cb(req, j);	/* a body without a chunk callback yet */
	if (j->err[0]) {
		img_finish(j, -EIO, "%s", j->err);
		return;
	}
	if (!img_hash_matches(j)) {
		log_warnx("images: %s: the %llu bytes from %s do not match the "
		    "sha256; deleted", j->sha, (unsigned long long)j->bytes,
		    j->url);
		img_finish(j, -EBADMSG, "sha256 mismatch for %s", j->url);
		return;
	}
	if (fsync(j->fd) == -1 || fstat(j->fd, &sb) == -1 ||
	    rename(j->part, j->path) == -1) {
		img_finish(j, -errno, "saving %s: %s", j->path, strerror(errno));
		return;
	}
	j->part[0] = '\0';
	img_known_add(j->c, j->sha, &sb);
	log_info("images: %s fetched (%llu bytes)", j->sha,
	    (unsigned long long)j->bytes);
	img_finish(j, 0, NULL);
}

static void
img_start_fetch(struct img_job *j)
{
	struct evhttp_request *req = NULL;
	struct evkeyvalq *h;
	char host[64], hosthdr[80];
	uint16_t port;

	j->kind = IMG_FETCH;
	j->bytes = 0;
	crypto_hash_sha256_init(&j->hs);
	if (img_url_parse(j->url, j->sha, host, sizeof(host), &port, j->err,
	    sizeof(j->err)) < 0) {
		img_finish(j, -EINVAL, "%s", j->err);
		return;
	}
	snprintf(j->part, sizeof(j->part), "%s/.%s.part", j->c->dir, j->sha);
	if ((j->fd = open(j->part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1) {
		j->part[0] = '\0';
		img_finish(j, -errno, "%s/.%s.part: %s", j->c->dir, j->sha,
		    strerror(errno));
		return;
	}
	if ((j->conn = evhttp_connection_base_new(j->c->base, NULL, host,
	    port)) == NULL || (req = evhttp_request_new(img_done_cb, j)) ==
	    NULL) {
		img_finish(j, -ENOMEM, "out of memory");
		return;
	}
	evhttp_connection_set_timeout(j->conn, IMG_TIMEOUT_S);
	evhttp_connection_set_retries(j->conn, 0);
	evhttp_request_set_header_cb(req, img_header_cb);
	evhttp_request_set_chunked_cb(req, img_chunk_cb);
	evhttp_request_set_error_cb(req, img_error_cb);
	h = evhttp_request_get_output_headers(req);
	snprintf(hosthdr, sizeof(hosthdr), strchr(host, ':') ? "[%s]:%u" :
	    "%s:%u", host, port);
	evhttp_add_header(h, "Host", hosthdr);
	evhttp_add_header(h, "Connection", "close");
	/* On failure libevent has freed req. */
	if (evhttp_make_request(j->conn, req, EVHTTP_REQ_GET,
	    strstr(j->url + 7, "/images/")) != 0)
		img_finish(j, -EIO, "cannot request %s", j->url);
}

static struct img_job *
img_job_new(struct img_cache *c, const char *key)
{
	struct img_job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	j->c = c;
	j->fd = j->srcfd = -1;
	snprintf(j->key, sizeof(j->key), "%s", key);
	TAILQ_INIT(&j->reqs);
	if ((j->ev = event_new(c->base, -1, 0, img_step, j)) == NULL) {
		free(j);
		return NULL;
	}
	LIST_INSERT_HEAD(&c->jobs, j, entry);
	return j;
}

static struct img_req *
img_join(struct img_job *j, img_done_fn *cb, void *arg)
{
	struct img_req *rq;

	if ((rq = calloc(1, sizeof(*rq))) == NULL)
		return NULL;
	rq->job = j;
	rq->cb = cb;
	rq->arg = arg;
	TAILQ_INSERT_TAIL(&j->reqs, rq, entry);
	return rq;
}

struct img_req *
img_fetch(struct img_cache *c, const char *url, const char *sha256,
    img_done_fn *cb, void *arg)
{
	struct img_known *k;
	struct img_job *j;
	struct img_req *rq;
	struct stat sb;
	char err[IMG_ERR_MAX];

	if (img_ref_check(url, sha256, err, sizeof(err)) < 0) {
		errno = EINVAL;
		return NULL;
	}
	LIST_FOREACH(j, &c->jobs, entry)
		if (strcmp(j->key, sha256) == 0 && !j->done)
			return img_join(j, cb, arg);
	if ((j = img_job_new(c, sha256)) == NULL)
		return NULL;
	if ((rq = img_join(j, cb, arg)) == NULL) {
		img_job_free(j);
		return NULL;
	}
	memcpy(j->sha, sha256, IMG_SHA_HEX + 1);
	snprintf(j->url, sizeof(j->url), "%s", url);
	snprintf(j->path, sizeof(j->path), "%s/%s", c->dir, sha256);
	errno = 0;
	if (lstat(j->path, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		/* Not ours if it is not a regular file: it goes. */
		if (errno != ENOENT)
			unlink(j->path);
		img_known_drop(c, sha256);
		img_start_fetch(j);
		return rq;
	}
	k = img_known_find(c, sha256);
	if (k != NULL && k->size == sb.st_size && k->ino == sb.st_ino &&
	    k->mtime.tv_sec == sb.st_mtim.tv_sec &&
	    k->mtime.tv_nsec == sb.st_mtim.tv_nsec) {
		img_finish(j, 0, NULL);
		return rq;
	}
	img_known_drop(c, sha256);
	j->kind = IMG_REHASH;
	crypto_hash_sha256_init(&j->hs);
	if ((j->srcfd = open(j->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) ==
	    -1) {
		unlink(j->path);
		img_start_fetch(j);
		return rq;
	}
	img_next(j);
	return rq;
}

struct img_req *
img_disk(struct img_cache *c, const char *sha256, const char *uuid,
    img_done_fn *cb, void *arg)
{
	struct img_job *j;
	struct img_req *rq;
	char key[IMG_PATH_MAX + 1], sub[PATH_MAX];
	struct stat sb;

	if (!img_sha_valid(sha256) || strlen(uuid) != 36 ||
	    strspn(uuid, "0123456789abcdef-") != 36) {
		errno = EINVAL;
		return NULL;
	}
	snprintf(key, sizeof(key), IMG_VM_SUBDIR "/%s", uuid);
	LIST_FOREACH(j, &c->jobs, entry)
		if (strcmp(j->key, key) == 0 && !j->done)
			return img_join(j, cb, arg);
	if ((j = img_job_new(c, key)) == NULL)
		return NULL;
	if ((rq = img_join(j, cb, arg)) == NULL) {
		img_job_free(j);
		return NULL;
	}
	j->kind = IMG_COPY;
	memcpy(j->sha, sha256, IMG_SHA_HEX + 1);
	snprintf(sub, sizeof(sub), "%s/" IMG_VM_SUBDIR, c->dir);
	snprintf(j->path, sizeof(j->path), "%s/%s.disk", sub, uuid);
	if (mkdir(sub, 0700) == -1 && errno != EEXIST) {
		img_finish(j, -errno, "%s: %s", sub, strerror(errno));
		return rq;
	}
	/* The VM's disk outlives its domain: a re-create keeps its data. */
	if (lstat(j->path, &sb) == 0 && S_ISREG(sb.st_mode)) {
		img_finish(j, 0, NULL);
		return rq;
	}
	snprintf(sub, sizeof(sub), "%s/%s", c->dir, sha256);
	if ((j->srcfd = open(sub, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		img_finish(j, -errno, "disk image %s: %s", sha256,
		    strerror(errno));
		return rq;
	}
	snprintf(j->part, sizeof(j->part), "%s.part", j->path);
	if ((j->fd = open(j->part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1) {
		j->part[0] = '\0';
		img_finish(j, -errno, "%s.part: %s", j->path, strerror(errno));
		return rq;
	}
	img_next(j);
	return rq;
}

int
img_disk_remove(struct img_cache *c, const char *uuid)
{
	char path[PATH_MAX];

	if (strlen(uuid) != 36 || strspn(uuid, "0123456789abcdef-") != 36)
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/" IMG_VM_SUBDIR "/%s.disk", c->dir,
	    uuid);
	return unlink(path) == 0 ? 0 : -errno;
}

void
img_cancel(struct img_req *rq)
{
	if (rq == NULL)
		return;
	TAILQ_REMOVE(&rq->job->reqs, rq, entry);
	free(rq);
}
