/*
 * hvd's private header, grouped by the file that defines each symbol.
 *
 * struct hvd is a handle, not a god-struct: it holds the event base, the
 * active configuration and the database, which every subsystem needs.  Each
 * subsystem keeps its own state static in its file behind <mod>_init() and
 * <mod>_shutdown().
 */
#ifndef HVD_H
#define HVD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>
#include <time.h>

#include <stdio.h>

#include <jansson.h>

#include "api.h"
#include "log.h"

#define HVD_CONF_DEFAULT	"/etc/hypervisor/hvd.conf"
#define HVD_IPXE_DIR		"/usr/lib/ipxe"		/* Debian's ipxe package */
#define HVD_CONF_MAX_BYTES	(1024 * 1024)
#define HVD_SOCKET_PATH_MAX	(sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

struct event_base;
struct MHD_Connection;
struct db;

struct hvd_config {
	char state_dir[PATH_MAX];
	char api_socket[HVD_SOCKET_PATH_MAX + 1];	/* "" = no unix socket */
	unsigned api_socket_mode;
	enum api_role api_socket_peer_role;	/* peers neither root nor hvd */
	bool api_tcp;				/* api-listen given */
	char api_listen_host[64];		/* numeric IPv4 or IPv6 */
	uint16_t api_listen_port;		/* 0 = ephemeral */
	size_t api_body_max;
	enum log_level log_level;
	bool agent_listen;			/* agent-listen given */
	char agent_listen_host[64];
	uint16_t agent_listen_port;
	unsigned heartbeat_ms;			/* agents' telemetry interval */
	unsigned telemetry_step_s;		/* history resolution */
	unsigned telemetry_retention_s;		/* history length */
	/* Network boot (issue 3). */
	char boot_root[PATH_MAX];		/* served files: iPXE, xen, ... */
	char boot_templates[PATH_MAX];		/* operator's iPXE overrides */
	char boot_server[64];			/* address clients use, "" = auto */
	bool boot_http;				/* boot-http-listen given */
	char boot_http_host[64];
	uint16_t boot_http_port;
	bool tftp;				/* tftp-listen given */
	char tftp_host[64];
	uint16_t tftp_port;
	unsigned tftp_blksize_max;
	unsigned tftp_windowsize_max;
	unsigned tftp_timeout_ms;
	unsigned tftp_retries;
	enum dhcp_mode { DHCP_OFF, DHCP_PROXY, DHCP_FULL } dhcp_mode;
	char dhcp_interface[16];		/* IFNAMSIZ */
	char dhcp_range_start[16], dhcp_range_end[16];	/* IPv4, full mode */
	char dhcp_router[16], dhcp_dns[16];	/* "" = none */
	unsigned dhcp_lease_s;
};

struct hvd {
	struct event_base *base;
	struct hvd_config *conf;	/* owned; swapped on SIGHUP */
	const char *conf_path;		/* NULL: built-in local config */
	struct db *db;			/* owned */
	time_t started_wall;
	struct timespec started_mono;
};

/* Monotonic seconds, the "now" passed to decisions (CONVENTIONS 11). */
int64_t hvd_now_mono(void);
int64_t hvd_now_wall(void);

/* config.c */
struct hvd_config *config_new(void);
void config_free(struct hvd_config *conf);
void config_local(struct hvd_config *conf, const char *dir);
int config_parse(struct hvd_config *conf, const char *buf, size_t len,
    const char *fname, char *err, size_t errlen);
int config_validate(const struct hvd_config *conf, const char *fname,
    char *err, size_t errlen);
struct hvd_config *config_load(const char *path, char *err, size_t errlen);
/* Names the first setting that a reload cannot change, or NULL. */
const char *config_restart_needed(const struct hvd_config *old,
    const struct hvd_config *new);

/* auth.c */
#define AUTH_ID_HEX	16			/* public token id */
#define AUTH_SECRET_LEN	32			/* bytes of secret */
#define AUTH_HASH_LEN	32
/* "hvt_" id "_" secret-hex, plus NUL */
#define AUTH_TOKEN_STRLEN (4 + AUTH_ID_HEX + 1 + 2 * AUTH_SECRET_LEN + 1)
int auth_token_generate(char token[AUTH_TOKEN_STRLEN],
    char id[AUTH_ID_HEX + 1], uint8_t hash[AUTH_HASH_LEN]);
int auth_token_parse(const char *s, size_t len, char id[AUTH_ID_HEX + 1],
    uint8_t secret[AUTH_SECRET_LEN]);
void auth_secret_hash(const uint8_t secret[AUTH_SECRET_LEN],
    uint8_t hash[AUTH_HASH_LEN]);
bool auth_role_allows(enum api_role have, enum api_role need);
#define AUTH_BOOT_TOKEN_STRLEN	(4 + 2 * AUTH_SECRET_LEN + 1)
void auth_boot_token_generate(char token[AUTH_BOOT_TOKEN_STRLEN],
    uint8_t hash[AUTH_HASH_LEN]);
int auth_boot_token_hash(const char *token, uint8_t hash[AUTH_HASH_LEN]);
int auth_bearer(struct db *db, const char *authorization, enum api_role *role,
    char id[AUTH_ID_HEX + 1], int64_t now);

/* db.c: only db*.c touch sqlite3. */
int db_open(const char *path, struct db **out);
int db_open_version(const char *path, int version, struct db **out);
void db_close(struct db *db);
int db_user_version(struct db *db);
int db_schema_dump(struct db *db, char **out);
uint64_t db_generation(struct db *db);
const char *db_conflict(struct db *db);
int db_ping(struct db *db);

/* db_event.c */
struct event_row {
	int64_t id, time;
	char kind[48], subject[96], actor[64], detail[256];
};
int db_event_list(struct db *db, const char *subject, unsigned limit,
    struct event_row **out, size_t *n);

/* db_network.c */
struct network {
	int64_t id;
	char name[API_NAME_MAX + 1];
	uint32_t vni;
	char description[API_DESC_MAX + 1];
	bool all_hosts;
	int64_t created_at, updated_at;
};
int db_network_create(struct db *db, struct network *n, const char *actor,
    int64_t now);
int db_network_get(struct db *db, const char *key, struct network *out);
int db_network_list(struct db *db, struct network **out, size_t *n);
int db_network_update(struct db *db, const char *key,
    const struct api_network *patch, struct network *out, const char *actor,
    int64_t now);
int db_network_delete(struct db *db, const char *key, const char *actor,
    int64_t now);
int db_count(struct db *db, const char *table, int64_t *out);

/* db_token.c */
struct token_row {
	char id[AUTH_ID_HEX + 1];
	uint8_t hash[AUTH_HASH_LEN];
	enum api_role role;
	char name[API_NAME_MAX + 1];
	int64_t created_at, last_used_at;
};
int db_token_insert(struct db *db, const struct token_row *t,
    const char *actor, int64_t now);
int db_token_get(struct db *db, const char *id, struct token_row *out);
int db_token_touch(struct db *db, const char *id, int64_t now);
int db_token_list(struct db *db, struct token_row **out, size_t *n);
int db_token_delete(struct db *db, const char *id, const char *actor,
    int64_t now);

/* http.c: libmicrohttpd glue on the libevent loop. */
struct http_request {
	const char *method;
	const char *url;
	const char *body;
	size_t body_len;
	enum api_role role;
	bool anonymous;		/* TCP without a valid token */
	const char *actor;	/* for the audit log: "uid:0", "token:<id>" */
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
#define HTTP_EXTRA_HEADERS 6
	char header[HTTP_EXTRA_HEADERS][128];	/* "Name: value" */
};
/* Called from a handler: the reply will come through http_finish(). */
struct http_deferred *http_defer(const struct http_request *req,
    struct http_reply *rep);
/* Completes a deferred reply; takes ownership of rep's contents. */
void http_finish(struct http_deferred *d, struct http_reply *rep);
int http_init(struct hvd *hvd);
void http_shutdown(void);
uint16_t http_tcp_port(void);
uint16_t http_boot_port(void);

/* blob.c: refcounted immutable bytes, shared by cached responses. */
struct blob *blob_new(const char *data, size_t len);
struct blob *blob_ref(struct blob *b);
void blob_unref(struct blob *b);
const char *blob_data(const struct blob *b);
size_t blob_len(const struct blob *b);

/* api.c: REST routes. */
void api_handle(struct hvd *hvd, const struct http_request *req,
    struct http_reply *reply);
void api_error(struct http_reply *reply, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void api_shutdown(void);

/* api_network.c, api_token.c: one file per resource. */
void api_networks_list(struct hvd *, const struct http_request *, struct http_reply *);
void api_networks_create(struct hvd *, const struct http_request *, struct http_reply *);
void api_network_show(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_network_patch(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_network_delete(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_network_shutdown(void);
void api_tokens_list(struct hvd *, const struct http_request *, struct http_reply *);
void api_tokens_create(struct hvd *, const struct http_request *, struct http_reply *);
void api_token_delete(struct hvd *, const struct http_request *, struct http_reply *, const char *key);

/* keys.c: hvd's own keys, sealed at rest with state-dir/master.key. */
int keys_init(struct hvd *hvd);
void keys_shutdown(void);
const uint8_t *keys_link_public(void);
const uint8_t *keys_link_secret(void);

/* db_key.c */
int db_key_get(struct db *db, const char *name, uint8_t pub[32],
    uint8_t *sealed, size_t *sealed_len);
int db_key_put(struct db *db, const char *name, const uint8_t pub[32],
    const uint8_t *sealed, size_t sealed_len, int64_t now);

/* db_host.c */
struct host_row {
	int64_t id;
	char name[API_NAME_MAX + 1];
	char fingerprint[80];
	char state[16];
	char agent_pubkey[65];
	bool has_token, token_used;
	uint8_t token_hash[AUTH_HASH_LEN];
	char underlay_ip[46];
	int64_t last_seen_at;
	char boot_id[65];
};
int db_host_by_pubkey(struct db *db, const char *pubhex, struct host_row *out);
int db_host_get(struct db *db, const char *name, struct host_row *out);
int db_host_by_mac(struct db *db, const char *mac, struct host_row *out);
int db_host_list(struct db *db, struct host_row **out, size_t *n);
int db_host_register(struct db *db, const char *name, const char *pubhex,
    const uint8_t *token_hash, const char *actor, int64_t now,
    struct host_row *out);
int db_host_set_state(struct db *db, int64_t id, const char *name,
    const char *state, const char *cause, const char *actor, int64_t now);
int db_host_session_start(struct db *db, const struct host_row *h,
    const char *boot_id, bool consume_token, const char *facts_json,
    const char *peer, int64_t now);
int db_event_record(struct db *db, const char *kind, const char *subject,
    const char *actor, const char *detail, int64_t now);

/* fleet.c: the live state of every host (sessions, liveness, telemetry). */
struct fleet_host;
struct agent_conn;
struct fleet_sample {
	int64_t t;			/* wall seconds, start of the step */
	float cpu_percent, load1;
	uint64_t mem_used, mem_total;
	uint64_t rx_bps, tx_bps;
};
int fleet_init(struct hvd *hvd);
void fleet_shutdown(void);
struct fleet_host *fleet_get(struct hvd *hvd, const struct host_row *h);
struct fleet_host *fleet_find(const char *name);
struct fleet_host *fleet_by_id(int64_t id);
struct agent_conn *fleet_session(const struct fleet_host *fh);
const char *fleet_name(const struct fleet_host *fh);
bool fleet_is_up(const struct fleet_host *fh);
/* Replay defence for handshake message 1: true if ts is newer. */
bool fleet_accept_timestamp(struct fleet_host *fh, uint64_t ts);
/* Attaches a session, closing any previous one (PROTOCOL.md section 9). */
void fleet_session_up(struct fleet_host *fh, struct agent_conn *ac);
void fleet_session_gone(struct fleet_host *fh, struct agent_conn *ac);
void fleet_heartbeat(struct fleet_host *fh);
void fleet_telemetry(struct fleet_host *fh, json_t *sample, int64_t now);
json_t *fleet_host_json(const struct fleet_host *fh);
json_t *fleet_telemetry_json(const struct fleet_host *fh);
void fleet_metrics(FILE *f);
size_t fleet_sessions(void);

/* agents.c: the agent-link listener and sessions. */
int agents_init(struct hvd *hvd);
void agents_shutdown(void);
void agent_conn_close(struct agent_conn *ac, const char *why);
/* Sends a request to the host's agent; cb runs exactly once with the
 * result or an error object ({code, message}), also on disconnect,
 * timeout (10 s) or shutdown.  Takes ownership of params. */
typedef void (*agent_reply_cb)(void *arg, json_t *result, json_t *error);
int agents_request(struct fleet_host *fh, const char *method, json_t *params,
    agent_reply_cb cb, void *arg);
uint16_t agents_port(void);

/* api_host.c */
void api_hosts_list(struct hvd *, const struct http_request *, struct http_reply *);
void api_hosts_create(struct hvd *, const struct http_request *, struct http_reply *);
void api_host_show(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_host_telemetry(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_host_command(struct hvd *, const struct http_request *, struct http_reply *, const char *key);

/* boot_parse.c: pure parsers behind HTTP boot (fuzzed). */
struct boot_query {
	unsigned present;
	char mac[18];		/* aa:bb:cc:dd:ee:ff */
	char uuid[37];		/* "" when the machine has none */
	char serial[65], product[65];
	char buildarch[12];
};
int boot_query_set(struct boot_query *q, const char *key, const char *value,
    char *err, size_t errlen);
int boot_query_check(const struct boot_query *q, char *err, size_t errlen);
int boot_range_parse(const char *h, uint64_t size, uint64_t *off,
    uint64_t *len);
int boot_render(const char *tpl, const char *const *vars, char **out,
    char *err, size_t errlen);

/* topology.c: this node's interfaces, addresses and routes via libnl. */
int topology_init(struct hvd *hvd);
void topology_shutdown(void);
const char *topology_boot_address(void);
json_t *topology_json(void);

/* boot.c: iPXE scripts and boot files over HTTP, the boot root. */
int boot_init(struct hvd *hvd);
void boot_shutdown(void);
void boot_handle(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep);
json_t *boot_status_json(void);
const char *boot_url(void);

/* metrics.c */
void metrics_count_request(const char *route, const char *method,
    unsigned status);
int metrics_render(struct hvd *hvd, char **out, size_t *len);
void metrics_shutdown(void);

#endif
