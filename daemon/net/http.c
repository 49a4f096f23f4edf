/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libmicrohttpd glue: the REST API's listeners, driven by the libevent loop.
 *
 * Each listener is one MHD daemon in external-loop epoll mode (no MHD
 * threads).  libevent watches MHD's epoll fd and a timer re-armed from
 * MHD_get_timeout() after every MHD_run().  Requests are authenticated here
 * (SO_PEERCRED on the unix socket, bearer tokens on TCP), bodies are bounded
 * by api-body-max, and the finished request goes to the handlers main.c
 * handed to http_init() (struct http_routes): this file knows no route.
 *
 * Must never: block (MHD sockets are non-blocking, handlers are bounded);
 * log an Authorization header; let a client make hvd exit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <microhttpd.h>
#include <sodium.h>

#include "net.h"
#include "numparse.h"
#include "sockaddr.h"

#define HTTP_CONN_MAX		1024
#define HTTP_CONN_TIMEOUT_S	60	/* the unix socket's idle timeout */
#define HTTP_CONN_MEMORY	(128 * 1024)	/* per connection */

enum http_kind { HTTP_UNIX, HTTP_TCP, HTTP_BOOT };

/* A TCP client connection, from accept to close (per-client limits). */
struct http_client {
	TAILQ_ENTRY(http_client) entry;
	struct MHD_Connection *conn;
	char addr[SA_STRLEN];
	int64_t since;			/* mono s: accepted, or last request done */
	bool in_request;		/* its headers are complete */
	bool cut;			/* shut down for a header deadline */
};
TAILQ_HEAD(http_clients, http_client);

struct http_listener {
	struct hvd *hvd;
	enum http_kind kind;
	struct MHD_Daemon *mhd;		/* owns the listen fd once started */
	struct event *ev_io;
	struct event *ev_timer;
	struct event *ev_sweep;		/* TCP: header deadlines, every second */
	struct http_clients clients;	/* TCP only */
	unsigned nclients;
	char path[HVD_SOCKET_PATH_MAX + 1];	/* unix: unlinked at shutdown */
	uint16_t port;				/* tcp: the bound port */
	bool tls;				/* API over TLS (api-tls on) */
	struct tls_pem pem;			/* its pair, while the daemon runs */
};

/* Refusals at the edge, for /metrics. */
static uint64_t http_refused_per_ip, http_refused_reserve, http_header_cuts;
static uint64_t http_refused_edge[3];	/* 400, 414, 431 */

/* One per request; freed by http_completed(). */
struct http_pending {
	char *body;
	size_t len, cap;
	bool too_large;
	bool anonymous;
	enum api_role role;
	char actor[48];
	const char *auth_refused;	/* why a token was not even checked */
	const char *secrets_refused;	/* why no secret may travel here */
	const char *cookie;		/* MHD's: authenticated by this */
	char peer[INET6_ADDRSTRLEN];	/* boot listener: the client's address */
	/* An upload streamed to a file (image store), not kept in memory. */
	struct http_upload *up;
	bool discard;		/* an upload refused by role: body dropped */
	struct http_target edge;	/* what the request line looked like */
	bool started;		/* the first access call happened */
	unsigned refuse;	/* refused at the edge with this status */
	char refuse_why[96];
	/* A deferred reply: the connection is suspended until finished. */
	struct http_listener *l;
	struct MHD_Connection *conn;
	bool deferred, finished;
	struct http_reply reply;
	char method[16];
	const char *method_seen;	/* MHD's, for the whole request */
};

/* The handle a deferring handler keeps is the request's own state. */
struct http_deferred {
	struct http_pending p;
};

static struct http_listener *http_listeners[3];

static void
http_listener_free(struct http_listener *l)
{
	if (l == NULL)
		return;
	if (l->ev_io)
		event_free(l->ev_io);
	if (l->ev_timer)
		event_free(l->ev_timer);
	if (l->ev_sweep)
		event_free(l->ev_sweep);
	/* Stopping the daemon closes every connection: the clients go then. */
	if (l->mhd)
		MHD_stop_daemon(l->mhd);
	if (l->kind == HTTP_UNIX && l->path[0] != '\0')
		unlink(l->path);
	tls_pem_free(&l->pem);
	free(l);
}

static void
http_run(struct http_listener *l)
{
	MHD_UNSIGNED_LONG_LONG ms;
	struct timeval tv;

	MHD_run(l->mhd);
	if (MHD_get_timeout(l->mhd, &ms) == MHD_YES) {
		tv.tv_sec = (time_t)(ms / 1000);
		tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
		evtimer_add(l->ev_timer, &tv);
	} else {
		evtimer_del(l->ev_timer);
	}
}

static void
http_io_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	http_run(arg);
}

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
http_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("http: %s", msg);
}

/*
 * Streamed uploads.  A POST to /api/v1/images/{name} by an admin goes to a
 * temporary file in state-dir/images, hashed (SHA-256) as it arrives and
 * bounded by image-max-bytes; the handler gets the file's path, size and
 * hash, and renames it into the store.  A file the handler did not take is
 * removed when the request ends.
 */
struct http_upload {
	int fd;
	char path[PATH_MAX];
	uint64_t size, max;
	crypto_hash_sha256_state sha;
	bool too_large, failed;
};

static void
http_upload_free(struct http_upload *u)
{
	if (u == NULL)
		return;
	if (u->fd != -1)
		close(u->fd);
	if (u->path[0])
		unlink(u->path);
	free(u);
}

/* The handler moved the uploaded file into place: do not remove it. */
void
http_upload_keep(const struct http_request *req)
{
	struct http_pending *p = req->pending;

	if (p && p->up)
		p->up->path[0] = '\0';
}

static const struct http_routes *http_routes;

static bool
http_is_upload_path(const struct http_listener *l, const char *method,
    const char *url)
{
	return l->kind != HTTP_BOOT && http_routes->upload(method, url);
}

static bool
http_is_upload(const struct http_listener *l, const char *method,
    const char *url, const struct http_pending *p)
{
	return http_is_upload_path(l, method, url) && p->role == API_ROLE_ADMIN;
}

static struct http_upload *
http_upload_new(const struct hvd *hvd)
{
	struct http_upload *u = calloc(1, sizeof(*u));
	char dir[PATH_MAX];

	if (u == NULL)
		return NULL;
	snprintf(dir, sizeof(dir), "%s/images", hvd->conf->state_dir);
	(void)mkdir(dir, 0700);
	snprintf(u->path, sizeof(u->path), "%s/.upload-XXXXXX", dir);
	if ((u->fd = mkostemp(u->path, O_CLOEXEC)) == -1) {
		log_warn("http: upload: %s", u->path);
		u->path[0] = '\0';
		free(u);
		return NULL;
	}
	u->max = hvd->conf->image_max_bytes;
	crypto_hash_sha256_init(&u->sha);
	return u;
}

static void
http_upload_data(struct http_upload *u, const char *data, size_t n)
{
	size_t done = 0;
	ssize_t w;

	if (u->too_large || u->failed)
		return;
	if (u->size + n > u->max) {
		u->too_large = true;
		return;
	}
	crypto_hash_sha256_update(&u->sha, (const unsigned char *)data, n);
	while (done < n) {
		if ((w = write(u->fd, data + done, n - done)) <= 0) {
			log_warn("http: upload: %s", u->path);
			u->failed = true;
			return;
		}
		done += (size_t)w;
	}
	u->size += n;
}

static void
http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http_pending *p = *con_cls;

	const union MHD_ConnectionInfo *ci;
	struct http_client *cl;

	(void)cls;
	(void)toe;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci && (cl = ci->socket_context) != NULL) {
		/* Keep-alive: the next request's headers get a deadline too. */
		cl->in_request = false;
		cl->since = hvd_now_mono();
	}
	if (p == NULL)
		return;
	http_target_done(&p->edge);
	http_upload_free(p->up);
	free(p->body);
	json_decref(p->reply.json);
	blob_unref(p->reply.blob);
	free(p);
	*con_cls = NULL;
}

static void
http_auth_unix(struct http_listener *l, struct MHD_Connection *conn,
    struct http_pending *p)
{
	const union MHD_ConnectionInfo *ci;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	p->role = API_ROLE_NONE;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci == NULL || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED,
	    &cred, &len) == -1) {
		log_warn("http: unix peer credentials");
		snprintf(p->actor, sizeof(p->actor), "unix:unknown");
		return;
	}
	snprintf(p->actor, sizeof(p->actor), "uid:%u", (unsigned)cred.uid);
	if (cred.uid == 0 || cred.uid == geteuid())
		p->role = API_ROLE_ADMIN;
	else
		p->role = l->hvd->conf->api_socket_peer_role;
}

/* 127.0.0.0/8, ::1 or an IPv4-mapped 127/8. */
static bool
http_peer_loopback(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	const struct sockaddr_in6 *s6;

	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)->
		    sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family != AF_INET6)
		return false;
	s6 = (const struct sockaddr_in6 *)(const void *)sa;
	return IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
	    (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && s6->sin6_addr.s6_addr[12] ==
	    127);
}

/* The dashboard's session cookie, checked by the layer that issued it;
 * a cookie is a secret, so it is not looked at where secrets may not go. */
static void
http_auth_cookie(struct http_listener *l, struct MHD_Connection *conn,
    struct http_pending *p)
{
	const char *cookie = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND,
	    HTTP_SESSION_COOKIE), *why = NULL;

	if (cookie == NULL || http_routes->session == NULL)
		return;
	if (p->secrets_refused != NULL) {
		p->auth_refused = p->secrets_refused;
		return;
	}
	if (http_routes->session(l->hvd, cookie, p->method_seen,
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, HTTP_CSRF_HEADER),
	    &p->role, p->actor, sizeof(p->actor), &why) == 0) {
		p->anonymous = false;
		p->cookie = cookie;
		return;
	}
	p->role = API_ROLE_NONE;
	p->auth_refused = why;
}

static void
http_auth_tcp(struct http_listener *l, struct MHD_Connection *conn,
    struct http_pending *p)
{
	const struct hvd_config *c = l->hvd->conf;
	const char *hdr;
	char id[AUTH_ID_HEX + 1];
	int r;

	p->role = API_ROLE_NONE;
	p->anonymous = true;
	snprintf(p->actor, sizeof(p->actor), "anonymous");
	if (!l->tls && !(c->api_plaintext_tokens_loopback &&
	    http_peer_loopback(conn)))
		p->secrets_refused = c->api_plaintext_tokens_loopback ?
		    "bearer tokens over plaintext TCP are accepted from loopback "
		    "only (api-tls off, api-plaintext-tokens loopback)" :
		    "bearer tokens are refused over plaintext TCP (api-tls off); "
		    "use TLS, or the unix socket";
	hdr = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	/* A token sent in clear is not even looked at: it may be a replay. */
	if (hdr != NULL && p->secrets_refused != NULL) {
		p->auth_refused = p->secrets_refused;
		return;
	}
	if (hdr == NULL) {
		http_auth_cookie(l, conn, p);
		return;
	}
	r = auth_bearer(l->hvd->db, hdr, &p->role, id, hvd_now_wall());
	if (r == 0) {
		p->anonymous = false;
		snprintf(p->actor, sizeof(p->actor), "token:%s", id);
	} else if (r == -EACCES) {
		log_debug("http: rejected a bearer token");
	}
}

static const char *
http_query(const struct http_request *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

static const char *
http_header(const struct http_request *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, key);
}

struct http_query_iter {
	void (*cb)(void *, const char *, const char *);
	void *arg;
};

static enum MHD_Result
http_query_iter_cb(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct http_query_iter *it = cls;

	(void)kind;
	if (it->cb)
		it->cb(it->arg, key, value);
	return MHD_YES;
}

/* The boot listener's clients are anonymous; the overlay route needs
 * their address (an overlay goes only to the address that booted). */
static void
http_boot_peer(struct MHD_Connection *conn, struct http_pending *p)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	p->peer[0] = '\0';
	if (sa)
		sa_addr_str(sa, p->peer, sizeof(p->peer));
	snprintf(p->actor, sizeof(p->actor), "boot:%s", p->peer[0] ? p->peer :
	    "unknown");
}

static int
http_query_each(const struct http_request *req,
    void (*cb)(void *, const char *, const char *), void *arg)
{
	struct http_query_iter it = { cb, arg };

	return MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND,
	    http_query_iter_cb, &it);
}

static void
http_blob_free(void *cls)
{
	blob_unref(cls);
}

/*
 * Streamed replies.  MHD asks for more whenever the socket can take it;
 * with nothing to send the connection is suspended from inside the
 * reader (which MHD allows) so the loop never polls it, and
 * http_stream_wake() resumes it.
 */
#define HTTP_STREAM_BLOCK	(32 * 1024)
struct http_stream {
	const struct http_stream_ops *ops;
	void *arg;
	struct MHD_Connection *conn;
	struct http_listener *l;
	bool suspended;
};

static ssize_t
http_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_stream *s = cls;
	ssize_t n;

	(void)pos;
	if ((n = s->ops->read(s->arg, buf, max)) < 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n == 0 && !s->suspended) {
		s->suspended = true;
		MHD_suspend_connection(s->conn);
	}
	return n;
}

static void
http_stream_free(void *cls)
{
	struct http_stream *s = cls;

	s->ops->done(s->arg);
	free(s);
}

struct http_stream *
http_stream(const struct http_request *req, struct http_reply *rep,
    const struct http_stream_ops *ops, void *arg)
{
	struct http_pending *p = req->pending;
	struct http_stream *s;

	if (p == NULL || p->l == NULL || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->ops = ops;
	s->arg = arg;
	s->conn = req->conn;
	s->l = p->l;
	rep->stream = s;
	return s;
}

void
http_stream_wake(struct http_stream *s)
{
	if (!s->suspended)
		return;
	s->suspended = false;
	MHD_resume_connection(s->conn);
	/* As in http_finish(): run MHD from the loop so it writes now. */
	event_active(s->l->ev_timer, EV_TIMEOUT, 0);
}

static enum MHD_Result
http_respond(struct MHD_Connection *conn, const char *method,
    struct http_reply *rep)
{
	struct MHD_Response *resp = NULL;
	enum MHD_Result ret;
	char *text = NULL;
	size_t len;

	if (rep->json && rep->blob == NULL) {
		text = json_dumps(rep->json, JSON_COMPACT);
		if (text != NULL) {
			len = strlen(text);
			rep->blob = blob_new(text, len);
			free(text);
		}
		if (rep->blob == NULL) {
			rep->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
			log_warnx("http: out of memory serialising a reply");
		}
	}
	if (rep->blob) {
		resp = MHD_create_response_from_buffer_with_free_callback_cls(
		    blob_len(rep->blob), (void *)blob_data(rep->blob),
		    http_blob_free, rep->blob);
		if (resp)
			rep->blob = NULL;	/* the response owns it now */
	} else if (rep->stream) {
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
		    HTTP_STREAM_BLOCK, http_stream_read, rep->stream,
		    http_stream_free);
		if (resp)
			rep->stream = NULL;	/* the response owns it now */
	} else if (rep->file_fd > 0) {
		/* Zero-copy: libmicrohttpd sends the range with sendfile and
		 * closes the fd when the response is done. */
		resp = MHD_create_response_from_fd_at_offset64(rep->file_len,
		    rep->file_fd, rep->file_off);
		if (resp)
			rep->file_fd = 0;
	} else {
		resp = MHD_create_response_from_buffer(0, (void *)"",
		    MHD_RESPMEM_PERSISTENT);
	}
	if (resp == NULL)
		return MHD_NO;
	for (size_t i = 0; i < HTTP_EXTRA_HEADERS && rep->header[i][0]; i++) {
		char name[64];
		const char *colon = strchr(rep->header[i], ':');
		size_t n = colon ? (size_t)(colon - rep->header[i]) : 0;

		if (n == 0 || n >= sizeof(name))
			continue;
		memcpy(name, rep->header[i], n);
		name[n] = '\0';
		if (MHD_add_response_header(resp, name, colon + 2) != MHD_YES) {
			MHD_destroy_response(resp);
			return MHD_NO;
		}
	}
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    rep->content_type ? rep->content_type : "application/json") != MHD_YES ||
	    (rep->file_len == 0 && MHD_add_response_header(resp,
	    MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES) ||
	    (rep->location[0] && MHD_add_response_header(resp,
	    MHD_HTTP_HEADER_LOCATION, rep->location) != MHD_YES) ||
	    (rep->allow && MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
	    rep->allow) != MHD_YES) ||
	    (rep->status == MHD_HTTP_UNAUTHORIZED && MHD_add_response_header(resp,
	    MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"hvd\"") != MHD_YES)) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	ret = MHD_queue_response(conn, rep->status, resp);
	MHD_destroy_response(resp);
	http_routes->served(rep->route ? rep->route : "unmatched", method,
	    rep->status);
	return ret;
}

static void
http_reply_dispose(struct http_reply *rep)
{
	if (rep->stream)
		http_stream_free(rep->stream);	/* never handed to MHD */
	rep->stream = NULL;
	json_decref(rep->json);
	blob_unref(rep->blob);
	if (rep->file_fd > 0)
		close(rep->file_fd);
}

static void
http_count_edge(unsigned status)
{
	http_refused_edge[status == MHD_HTTP_URI_TOO_LONG ? 1 :
	    status == MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE ? 2 : 0]++;
}

/* libmicrohttpd's URI log callback: the raw request target, before the
 * query is split.  Its return value becomes the request's state. */
static void *
http_uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct http_pending *p;

	(void)cls;
	(void)conn;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	/* The target lies in libmicrohttpd's own read buffer, writable. */
	http_target_scan(&p->edge, (char *)(uintptr_t)uri);
	return p;
}

static size_t
http_clients_from(const struct http_listener *l, const char *addr)
{
	const struct http_client *c;
	size_t n = 0;

	TAILQ_FOREACH(c, &l->clients, entry)
		if (strcmp(c->addr, addr) == 0)
			n++;
	return n;
}

/*
 * Who may connect to a TCP listener: no source address holds more than
 * http-conn-per-ip connections, and the last http-conn-reserve slots go
 * only to addresses that hold none yet (a booting host, an operator), so
 * strangers holding connections cannot lock everyone out.
 */
static enum MHD_Result
http_accept_policy(void *cls, const struct sockaddr *sa, socklen_t salen)
{
	struct http_listener *l = cls;
	const struct hvd_config *c = l->hvd->conf;
	char addr[SA_STRLEN];
	size_t mine;

	(void)salen;
	sa_addr_str(sa, addr, sizeof(addr));
	mine = http_clients_from(l, addr);
	if (mine >= c->http_conn_per_ip) {
		http_refused_per_ip++;
		return MHD_NO;
	}
	if (mine > 0 && l->nclients >= c->http_conn_max - c->http_conn_reserve) {
		http_refused_reserve++;
		return MHD_NO;
	}
	return MHD_YES;
}

static void
http_notify_connection(void *cls, struct MHD_Connection *conn,
    void **socket_context, enum MHD_ConnectionNotificationCode toe)
{
	struct http_listener *l = cls;
	struct http_client *c = *socket_context;
	const union MHD_ConnectionInfo *ci;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		if ((c = calloc(1, sizeof(*c))) == NULL)
			return;
		c->conn = conn;
		c->since = hvd_now_mono();
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		sa_addr_str(ci ? ci->client_addr : NULL, c->addr, sizeof(c->addr));
		TAILQ_INSERT_TAIL(&l->clients, c, entry);
		l->nclients++;
		*socket_context = c;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && c) {
		TAILQ_REMOVE(&l->clients, c, entry);
		l->nclients--;
		free(c);
		*socket_context = NULL;
	}
}

/* Every second: a connection whose request headers are not complete
 * within http-header-timeout (a slow or idle client) is shut down; the
 * loop then sees it close. */
static void
http_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_listener *l = arg;
	int64_t now = hvd_now_mono();
	const union MHD_ConnectionInfo *ci;
	struct http_client *c;

	(void)fd;
	(void)what;
	TAILQ_FOREACH(c, &l->clients, entry) {
		if (c->in_request || c->cut ||
		    now - c->since < (int64_t)l->hvd->conf->http_header_timeout_s)
			continue;
		ci = MHD_get_connection_info(c->conn,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci && shutdown(ci->connect_fd, SHUT_RDWR) == 0) {
			c->cut = true;
			http_header_cuts++;
		}
	}
	http_run(l);
}

void
http_metrics(FILE *f)
{
	fprintf(f, "# HELP hvd_http_refused_total TCP connections and requests "
	    "refused at the edge, by reason.\n"
	    "# TYPE hvd_http_refused_total counter\n"
	    "hvd_http_refused_total{reason=\"per_ip\"} %llu\n"
	    "hvd_http_refused_total{reason=\"reserve\"} %llu\n"
	    "hvd_http_refused_total{reason=\"header_timeout\"} %llu\n"
	    "hvd_http_refused_total{reason=\"bad_request\"} %llu\n"
	    "hvd_http_refused_total{reason=\"uri_too_long\"} %llu\n"
	    "hvd_http_refused_total{reason=\"headers_too_large\"} %llu\n",
	    (unsigned long long)http_refused_per_ip,
	    (unsigned long long)http_refused_reserve,
	    (unsigned long long)http_header_cuts,
	    (unsigned long long)http_refused_edge[0],
	    (unsigned long long)http_refused_edge[1],
	    (unsigned long long)http_refused_edge[2]);
}

static enum MHD_Result
http_access(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct http_listener *l = cls;
	struct http_pending *p = *con_cls;
	struct http_reply rep = { 0 };
	struct http_request req;
	const char *cl;
	uint64_t clen;
	enum MHD_Result ret;

	if (p == NULL) {
		/* Only without the URI log callback (which allocates it). */
		if ((p = calloc(1, sizeof(*p))) == NULL)
			return MHD_NO;
		*con_cls = p;
	}
	if (!p->started) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		struct http_client *client = ci ? ci->socket_context : NULL;

		p->started = true;
		http_target_done(&p->edge);
		if (client)
			client->in_request = true;
		if ((p->refuse = http_edge_check(conn, version, &p->edge,
		    p->refuse_why, sizeof(p->refuse_why))) != 0) {
			http_count_edge(p->refuse);
			goto reply;
		}
		p->method_seen = method;
		if (l->kind == HTTP_UNIX)
			http_auth_unix(l, conn, p);
		else if (l->kind == HTTP_TCP)
			http_auth_tcp(l, conn, p);
		else
			http_boot_peer(conn, p);
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (http_is_upload_path(l, method, url) &&
		    p->role != API_ROLE_ADMIN) {
			/* Refused by role, not by size: the route says 401/403. */
			p->discard = true;
			return MHD_YES;
		}
		if (http_is_upload(l, method, url, p)) {
			if ((p->up = http_upload_new(l->hvd)) == NULL)
				return MHD_NO;
			if (cl && (parse_u64(cl, 0, UINT64_MAX, &clen) < 0 ||
			    clen > p->up->max))
				p->up->too_large = true;
			return MHD_YES;
		}
		if (cl && (parse_u64(cl, 0, UINT64_MAX, &clen) < 0 ||
		    clen > l->hvd->conf->api_body_max)) {
			/* Refuse before reading: the client may still be sending. */
			p->too_large = true;
			goto reply;
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0 && p->discard) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size > 0 && p->up) {
		http_upload_data(p->up, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (p->too_large || p->len + n > l->hvd->conf->api_body_max) {
			p->too_large = true;
			return MHD_YES;
		}
		if (p->len + n + 1 > p->cap) {
			size_t cap = p->len + n + 1 < 1024 ? 1024 : (p->len + n + 1) * 2;
			char *nb;

			if (cap > l->hvd->conf->api_body_max + 1)
				cap = l->hvd->conf->api_body_max + 1;
			if ((nb = realloc(p->body, cap)) == NULL)
				return MHD_NO;
			p->body = nb;
			p->cap = cap;
		}
		memcpy(p->body + p->len, upload_data, n);
		p->len += n;
		p->body[p->len] = '\0';
		return MHD_YES;
	}
reply:
	if (p->deferred) {
		/* Resumed by http_finish(): send what it stored. */
		if (!p->finished)
			return MHD_YES;
		ret = http_respond(conn, p->method, &p->reply);
		http_reply_dispose(&p->reply);
		memset(&p->reply, 0, sizeof(p->reply));
		return ret;
	}
	if (p->refuse) {
		rep.route = "refused";
		http_error(&rep, p->refuse, "%s", p->refuse_why);
	} else if (p->too_large) {
		http_error(&rep, MHD_HTTP_CONTENT_TOO_LARGE,
		    "request body larger than %zu bytes", l->hvd->conf->api_body_max);
	} else if (p->up && (p->up->too_large || p->up->failed)) {
		if (p->up->too_large)
			http_error(&rep, MHD_HTTP_CONTENT_TOO_LARGE, "image larger "
			    "than image-max-bytes (%llu)",
			    (unsigned long long)p->up->max);
		else
			http_error(&rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "could not "
			    "store the upload");
	} else {
		req = (struct http_request){
			.method = method, .url = url, .body = p->body,
			.body_len = p->len, .role = p->role,
			.anonymous = p->anonymous, .actor = p->actor,
			.auth_refused = p->auth_refused,
			.tls = l->tls, .secrets_refused = p->secrets_refused,
			.cookie = p->cookie, .header = http_header,
			.query = http_query, .conn = conn, .pending = p,
			.upload_fd = -1,
		};
		if (p->up) {
			unsigned char h[crypto_hash_sha256_BYTES];

			crypto_hash_sha256_final(&p->up->sha, h);
			sodium_bin2hex(req.upload_sha256, sizeof(req.upload_sha256),
			    h, sizeof(h));
			req.upload_path = p->up->path;
			req.upload_size = p->up->size;
			req.upload_fd = p->up->fd;
		}
		p->conn = conn;
		p->l = l;
		snprintf(p->method, sizeof(p->method), "%s", method);
		if (l->kind == HTTP_BOOT) {
			req.header = http_header;
			req.query_each = http_query_each;
			req.peer = p->peer;
			http_routes->boot(l->hvd, &req, &rep);
		} else {
			http_routes->api(l->hvd, &req, &rep);
		}
		if (rep.deferred) {
			p->deferred = true;
			p->reply.route = rep.route;
			MHD_suspend_connection(conn);
			http_reply_dispose(&rep);
			return MHD_YES;
		}
	}
	ret = http_respond(conn, method, &rep);
	http_reply_dispose(&rep);
	return ret;
}

/* The one error body: {"error": "..."} with status. */
void
http_error(struct http_reply *reply, unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_decref(reply->json);
	reply->status = status;
	reply->json = json_pack("{s:s}", "error", msg);
}

struct http_deferred *
http_defer(const struct http_request *req, struct http_reply *rep)
{
	rep->deferred = true;
	return (struct http_deferred *)req->pending;
}

void
http_finish(struct http_deferred *d, struct http_reply *rep)
{
	struct http_pending *p = &d->p;
	const char *route = p->reply.route;

	p->reply = *rep;
	if (p->reply.route == NULL)
		p->reply.route = route;
	p->finished = true;
	MHD_resume_connection(p->conn);
	/* Resuming does not wake MHD's epoll fd in external mode: run the
	 * daemon from the loop now, and http_access() sends the reply. */
	event_active(p->l->ev_timer, EV_TIMEOUT, 0);
}

static int
http_unix_socket(const char *path, unsigned mode)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int fd, r;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	/* Only a socket is ever removed: whatever else is at the path is the
	 * operator's, and a mistyped api-socket must not delete it. */
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		log_warnx("api-socket %s: %s is there, not a socket; hvd "
		    "replaces only a stale socket of its own", path,
		    S_ISREG(st.st_mode) ? "a regular file" :
		    S_ISDIR(st.st_mode) ? "a directory" :
		    S_ISLNK(st.st_mode) ? "a symbolic link" : "a special file");
		return -EEXIST;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1)
		return -errno;
	/* A live hvd answers on the socket; a dead one leaves a stale socket,
	 * ours to remove: hvd holds its state directory's lock. */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		close(fd);
		return -EADDRINUSE;
	}
	if (errno == ECONNREFUSED && lstat(path, &st) == 0 &&
	    S_ISSOCK(st.st_mode))
		unlink(path);
	close(fd);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1)
		return -errno;
	/* Bind under a umask so the socket is never briefly too open. */
	old = umask(~mode & 0777);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r == -1 || chmod(path, mode) == -1 || listen(fd, 128) == -1) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static int
http_tcp_socket(const char *host, uint16_t port, uint16_t *bound)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int fd, one = 1, r;

	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
	} else {
		return -EINVAL;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&ss, len) == -1 ||
	    listen(fd, 511) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) == -1) {
		r = -errno;
		close(fd);
		return r;
	}
	*bound = ntohs(ss.ss_family == AF_INET ? sin->sin_port : sin6->sin6_port);
	return fd;
}

static int
http_listener_start(struct hvd *hvd, enum http_kind kind,
    struct http_listener **out)
{
	const struct hvd_config *c = hvd->conf;
	const union MHD_DaemonInfo *di;
	struct http_listener *l;
	struct MHD_OptionItem tls_opts[3] = { { MHD_OPTION_END, 0, NULL } };
	char err[512];
	bool tcp;
	int fd, r;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return -ENOMEM;
	l->hvd = hvd;
	l->kind = kind;
	if (kind == HTTP_TCP && c->api_tls) {
		if ((r = tls_cert_load(c, &l->pem, err, sizeof(err))) < 0) {
			log_warnx("api: TLS: %s", err);
			goto fail;
		}
		if (l->pem.created)
			log_info("api: made a self-signed TLS certificate, valid ten "
			    "years: %s", l->pem.cert_path);
		if (l->pem.expires < hvd_now_wall())
			log_warnx("api: TLS: %s has expired: clients that check it "
			    "against a CA refuse it", l->pem.cert_path);
		l->tls = true;
		tls_opts[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0,
		    l->pem.key };
		tls_opts[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0,
		    l->pem.cert };
		tls_opts[2] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	}
	if (kind == HTTP_UNIX) {
		fd = http_unix_socket(c->api_socket, c->api_socket_mode);
		if (fd < 0) {
			errno = -fd;
			log_warn("api: %s", c->api_socket);
			r = fd;
			goto fail;
		}
		snprintf(l->path, sizeof(l->path), "%s", c->api_socket);
	} else {
		const char *host = kind == HTTP_TCP ? c->api_listen_host :
		    c->boot_http_host;
		uint16_t port = kind == HTTP_TCP ? c->api_listen_port :
		    c->boot_http_port;

		if ((fd = http_tcp_socket(host, port, &l->port)) < 0) {
			char where[ADDR_STRLEN];

			addr_join(host, port, where, sizeof(where));
			errno = -fd;
			log_warn("%s: listen %s", kind == HTTP_TCP ? "api" :
			    "boot", where);
			r = fd;
			goto fail;
		}
	}
	TAILQ_INIT(&l->clients);
	tcp = kind != HTTP_UNIX;
	l->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_TURBO |
	    MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME |
	    (l->tls ? MHD_USE_TLS : 0), 0,
	    tcp ? http_accept_policy : NULL, l, http_access, l,
	    MHD_OPTION_EXTERNAL_LOGGER, http_mhd_log, NULL,
	    MHD_OPTION_LISTEN_SOCKET, fd,
	    MHD_OPTION_CONNECTION_LIMIT, tcp ? c->http_conn_max :
	    (unsigned)HTTP_CONN_MAX,
	    MHD_OPTION_CONNECTION_TIMEOUT, tcp ? c->http_idle_timeout_s :
	    (unsigned)HTTP_CONN_TIMEOUT_S,
	    /* Room for a request the edge refuses with its own JSON error. */
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
	    MHD_OPTION_URI_LOG_CALLBACK, http_uri_log, NULL,
	    MHD_OPTION_UNESCAPE_CALLBACK, http_target_unescape, NULL,
	    MHD_OPTION_NOTIFY_CONNECTION, tcp ? http_notify_connection : NULL, l,
	    MHD_OPTION_NOTIFY_COMPLETED, http_completed, NULL,
	    /* main() ignores SIGPIPE; saying so lets libmicrohttpd send file
	     * replies with sendfile() instead of pread() + send() per chunk. */
	    MHD_OPTION_SIGPIPE_HANDLED_BY_APP, (int)1,
	    MHD_OPTION_ARRAY, tls_opts,
	    MHD_OPTION_END);
	if (l->mhd == NULL) {
		log_warnx("api: libmicrohttpd failed to start");
		close(fd);
		r = -EIO;
		goto fail;
	}
	di = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (di == NULL) {
		r = -EIO;
		goto fail;
	}
	l->ev_io = event_new(hvd->base, di->epoll_fd, EV_READ | EV_PERSIST,
	    http_io_cb, l);
	l->ev_timer = evtimer_new(hvd->base, http_io_cb, l);
	if (tcp) {
		struct timeval sec = { 1, 0 };

		if ((l->ev_sweep = event_new(hvd->base, -1, EV_PERSIST,
		    http_sweep_cb, l)) == NULL ||
		    event_add(l->ev_sweep, &sec) == -1) {
			r = -ENOMEM;
			goto fail;
		}
	}
	if (l->ev_io == NULL || l->ev_timer == NULL ||
	    event_add(l->ev_io, NULL) == -1) {
		r = -ENOMEM;
		goto fail;
	}
	if (kind == HTTP_UNIX)
		log_info("api: listening on %s (mode %04o)", l->path,
		    c->api_socket_mode);
	else if (kind == HTTP_TCP && l->tls)
		log_info("api: listening on %s:%u, TLS, key %s (%s)",
		    c->api_listen_host, l->port, l->pem.pin, l->pem.self_signed ?
		    "self-signed: clients pin this key" : c->api_tls_cert);
	else if (kind == HTTP_TCP)
		log_info("api: listening on %s:%u, plaintext (api-tls off)",
		    c->api_listen_host, l->port);
	else
		log_info("boot: HTTP on %s:%u", c->boot_http_host, l->port);
	*out = l;
	return 0;
fail:
	http_listener_free(l);
	return r;
}

int
http_init(struct hvd *hvd, const struct http_routes *routes)
{
	int r;

	http_routes = routes;
	if (hvd->conf->api_socket[0] &&
	    (r = http_listener_start(hvd, HTTP_UNIX, &http_listeners[0])) < 0)
		return r;
	if (hvd->conf->api_tcp &&
	    (r = http_listener_start(hvd, HTTP_TCP, &http_listeners[1])) < 0)
		return r;
	if (hvd->conf->boot_http &&
	    (r = http_listener_start(hvd, HTTP_BOOT, &http_listeners[2])) < 0)
		return r;
	return 0;
}

uint16_t
http_boot_port(void)
{
	return http_listeners[2] ? http_listeners[2]->port : 0;
}

void
http_shutdown(void)
{
	for (size_t i = 0; i < 3; i++) {
		http_listener_free(http_listeners[i]);
		http_listeners[i] = NULL;
	}
}

const char *
http_tls_pin(void)
{
	return http_listeners[1] && http_listeners[1]->tls ?
	    http_listeners[1]->pem.pin : NULL;
}

uint16_t
http_tcp_port(void)
{
	return http_listeners[1] ? http_listeners[1]->port : 0;
}
