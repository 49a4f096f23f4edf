/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvd's net layer: the transports: libmicrohttpd glue, the agent-link listener, TFTP,
 * DHCP, topology, the privileged mesh helper, and hvd's own addresses.
 * Reaches up only through the handlers and operations it is handed.
 */
#ifndef HVD_NET_H
#define HVD_NET_H

#include <sys/types.h>

#include "store.h"

/* http.c: libmicrohttpd glue on the libevent loop. */
struct http_request {
	const char *method;
	const char *url;
	const char *body;
	size_t body_len;
	enum api_role role;
	bool anonymous;		/* TCP without a valid token */
	const char *auth_refused;	/* why a token was not checked, or NULL */
	const char *actor;	/* for the audit log: "uid:0", "token:<id>" */
	bool tls;		/* arrived over TLS (a cookie may be Secure) */
	const char *cookie;	/* the session cookie it was authenticated by */
	/* Why a secret (a token in a header or a body) may not travel on
	 * this connection: plaintext TCP (api-tls off), or NULL when it may. */
	const char *secrets_refused;
	const char *peer;	/* boot listener: client address, else NULL */
	/* A streamed upload (POST /api/v1/images/{name}): a temporary file
	 * the handler may rename (http.c removes it otherwise). */
	const char *upload_path;
	uint64_t upload_size;
	char upload_sha256[65];
	int upload_fd;
	const char *(*query)(const struct http_request *req, const char *key);
	const char *(*header)(const struct http_request *req, const char *key);
	/* Calls cb for every query argument (cb may be NULL); returns the
	 * number of arguments. */
	int (*query_each)(const struct http_request *req,
	    void (*cb)(void *arg, const char *key, const char *value), void *arg);
	struct MHD_Connection *conn;	/* http.c's, for query() */
	void *pending;			/* http.c's, for http_defer() */
};
struct blob;
struct http_deferred;
struct http_stream;
struct http_reply {
	unsigned status;
	json_t *json;		/* owned, serialised by http.c */
	struct blob *blob;	/* owned reference, sent as is */
	const char *content_type;
	char location[128];
	const char *allow;
	const char *route;	/* route template, for metrics */
	/* A handler that answers later sets this and keeps the handle it
	 * got from http_defer(); the client waits (no thread blocks). */
	bool deferred;
	/* A file range sent zero-copy; file_fd (> 0) is owned and closed. */
	int file_fd;
	uint64_t file_off, file_len;
	struct http_stream *stream;	/* http_stream(): produced as it goes */
#define HTTP_EXTRA_HEADERS 6
	char header[HTTP_EXTRA_HEADERS][256];	/* "Name: value" */
};
/* Called from a handler: the reply will come through http_finish(). */
struct http_deferred *http_defer(const struct http_request *req,
    struct http_reply *rep);
void http_upload_keep(const struct http_request *req);
/* Completes a deferred reply; takes ownership of rep's contents. */
void http_finish(struct http_deferred *d, struct http_reply *rep);
void http_error(struct http_reply *reply, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * A reply of unknown length, produced as it goes (Server-Sent Events).
 * read() fills at most max bytes of buf and returns how many; 0 means
 * "nothing now": the connection is suspended (no polling) until
 * http_stream_wake(); -1 ends the reply.  done() is called once, when the
 * connection ends for any reason; the handle is dead after it.  Only from
 * a handler, which sets rep's status and content type as usual.
 */
struct http_stream_ops {
	ssize_t (*read)(void *arg, char *buf, size_t max);
	void (*done)(void *arg);
};
struct http_stream *http_stream(const struct http_request *req,
    struct http_reply *rep, const struct http_stream_ops *ops, void *arg);
void http_stream_wake(struct http_stream *s);
/* http_edge.c: what a request must be before any handler sees it. */
/* 0, or the status to refuse the request with (why says it). */
unsigned http_edge_check(struct MHD_Connection *conn, const char *version,
    const struct http_target *e, char *why, size_t len);

/* The handlers a finished request goes to; main.c fills them in. */
struct http_routes {
	void (*api)(struct hvd *hvd, const struct http_request *req,
	    struct http_reply *rep);		/* unix socket and TCP */
	void (*boot)(struct hvd *hvd, const struct http_request *req,
	    struct http_reply *rep);		/* the boot listener */
	/* Whether the body of this API request streams to a file. */
	bool (*upload)(const char *method, const char *url);
	/* Every reply sent: its route template, method and status. */
	void (*served)(const char *route, const char *method, unsigned status);
	/* A TCP request without a bearer token but with the dashboard's
	 * session cookie: 0 and its role and actor, or -1 with why (a
	 * state-changing method must carry the session's CSRF token, csrf,
	 * which may be NULL). */
	int (*session)(struct hvd *hvd, const char *cookie, const char *method,
	    const char *csrf, enum api_role *role, char *actor, size_t actorlen,
	    const char **why);
};
#define HTTP_SESSION_COOKIE	"hv_session"
#define HTTP_CSRF_HEADER	"X-CSRF-Token"
/* routes must outlive the listeners. */
int http_init(struct hvd *hvd, const struct http_routes *routes);
void http_shutdown(void);
uint16_t http_tcp_port(void);
/* The TCP API's key pin ("sha256//BASE64"), or NULL without TLS. */
const char *http_tls_pin(void);
uint16_t http_boot_port(void);
void http_metrics(FILE *f);

/* agents.c: the agent-link listener and sessions. */
struct agent_conn;
struct fleet_host;		/* the fleet's, opaque here */
/*
 * What a session means, from the layer above; main.c hands it to
 * agents_init().  A function that refuses writes why and the connection
 * is closed: from hello on, why is the detail of the agent.rejected event
 * naming the host; before, it goes to the per-source refusal log line
 * (no event: the peer proved nothing).
 */
struct agent_ops {
	/* Handshake message 1 proved the peer holds pubkey: its host into
	 * *h, unless the key is unknown or timestamp replays.  0 or -1; on
	 * -1, *h is zeroed for an unknown key and holds the host otherwise
	 * (a replay), which is how the refusal is counted. */
	int (*authorize)(struct hvd *hvd, const uint8_t pubkey[32],
	    uint64_t timestamp, struct host_row *h, char *why, size_t whylen);
	/* A well-formed hello on ac from peer: the fleet's handle of the
	 * session it recorded, or NULL. */
	struct fleet_host *(*hello)(struct hvd *hvd, struct agent_conn *ac,
	    const struct host_row *h, json_t *params, const char *peer,
	    char *why, size_t whylen);
	/* The hello reply went out: the host is up. */
	void (*up)(struct hvd *hvd, struct fleet_host *fh, int64_t host_id);
	/* Any authenticated message of an established session. */
	void (*heartbeat)(struct fleet_host *fh);
	/* A notification ("telemetry", "vm.state", ...): 0 or -1. */
	int (*notify)(struct hvd *hvd, struct fleet_host *fh, const char *method,
	    json_t *params, char *why, size_t whylen);
	/* The session ended, for any reason. */
	void (*gone)(struct fleet_host *fh, struct agent_conn *ac);
};
/* ops must outlive the listener. */
int agents_init(struct hvd *hvd, const struct agent_ops *ops);
void agents_shutdown(void);
void agent_conn_close(struct agent_conn *ac, const char *why);
/* Sends a request to the host's agent; cb runs exactly once with the
 * result or an error object ({code, message}), also on disconnect,
 * timeout (10 s) or shutdown.  Takes ownership of params. */
typedef void (*agent_reply_cb)(void *arg, json_t *result, json_t *error);
int agents_request(struct agent_conn *ac, const char *method, json_t *params,
    agent_reply_cb cb, void *arg);
uint16_t agents_port(void);
/* How often accepting paused because hvd was out of descriptors. */
uint64_t agents_accept_pauses(void);
/* hvd_agent_refused_total{reason}, hvd_agent_rejected_total, the
 * backpressure counters and hvd_events_pruned_total. */
void agents_metrics(FILE *f);

/* topology.c: this node's interfaces, addresses and routes via libnl. */
int topology_init(struct hvd *hvd);
void topology_shutdown(void);
const char *topology_boot_address(void);
json_t *topology_json(void);

/* dhcp.c: proxy and full DHCP on dhcp-interface. */
int dhcp_init(struct hvd *hvd);
void dhcp_shutdown(void);
void dhcp_metrics(FILE *f);

/* tftp.c: the TFTP server (read-only, files under boot-root). */
int tftp_init(struct hvd *hvd);
void tftp_shutdown(void);
uint16_t tftp_port(void);
void tftp_metrics(FILE *f);

/* mesh_priv.c: the anchor's privileged netlink path (DESIGN section 5). */
struct mesh_state;
/*
 * Before the loop starts: forks a helper that keeps only CAP_NET_ADMIN and
 * runs mesh_apply() on each state it is sent, then drops CAP_NET_ADMIN
 * from hvd.  Without CAP_NET_ADMIN it logs that the anchor is disabled and
 * returns 0 (mesh_priv_apply() then returns -EPERM).  0 or -errno.
 */
int mesh_priv_init(struct hvd *hvd);
/* Closes the helper's socket (it exits) and reaps it; pending callbacks
 * get -ECANCELED. */
void mesh_priv_shutdown(void);
/*
 * RESULT: 0 or -errno from the helper (or -EPIPE when it died); DETAIL:
 * on success the stats as JSON text ({"links_added":0,...}), else the
 * error message.  DETAIL is valid only during the call.
 */
typedef void (*mesh_priv_cb)(void *arg, int result, const char *detail);
/*
 * Sends ST (copied) to the helper; CB runs once, from the loop, when it
 * answers.  Requests are answered in order.  0, or -EPERM (anchor
 * disabled), -EPIPE (helper gone), -ENOMEM, -EMSGSIZE: then CB never runs.
 */
int mesh_priv_apply(const struct mesh_state *st, mesh_priv_cb cb, void *arg);

/* addr.c: hvd's own addresses, one rule (see the file's head). */
#define ADDR_STRLEN	96	/* "http://[" IPv6 "]:65535" fits */
/* "HOST:PORT", with brackets around an IPv6 HOST. */
void addr_join(const char *host, uint16_t port, char *buf, size_t len);
/* The address hosts reach a listener bound to listen_host at (NULL: no
 * listener in particular); returns buf. */
const char *addr_self(const struct hvd *hvd, const char *listen_host,
    char *buf, size_t len);
/* "http://HOST:PORT" of the boot scripts (port 80 without boot HTTP). */
void addr_boot_url(const struct hvd *hvd, char *buf, size_t len);
/* "HOST:PORT" agents dial (written into overlays). */
void addr_agents(const struct hvd *hvd, char *buf, size_t len);
/* hvd's VTEP, or NULL while it has no address to anchor the mesh at. */
const char *addr_anchor(const struct hvd *hvd, char *buf, size_t len);

/* served.c: the one open rule for served files.  name beneath rootfd,
 * non-blocking, no magic links, symlinks only inside the root, a regular
 * file only.  The fd with *st filled, or -errno: -ENOENT or -ENOTDIR (no
 * such file), -EXDEV (leaves the root), -ELOOP (a loop or magic link),
 * -EISDIR, -EINVAL (not a regular file: a FIFO, a device), -EACCES. */
struct stat;
int served_open(int rootfd, const char *name, struct stat *st);

#endif
