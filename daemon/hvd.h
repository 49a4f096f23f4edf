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
#include "apkovl.h"
#include "vmspec.h"
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
	char alpine_mirror[PATH_MAX];		/* served at /alpine/ if present */
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
	bool lab_auto_adopt;			/* adopt unknown hosts (labs only) */
	bool mesh_anchor;			/* hvd's own VXLAN devices */
	uint64_t image_max_bytes;		/* largest image upload */
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
int db_backup_to(struct db *db, const char *path);


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
void http_upload_keep(const struct http_request *req);
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

/* backup.c: one file holds the inventory and the master key. */
void api_backup(struct hvd *, const struct http_request *, struct http_reply *);
/* Unpacks a backup into conf's state-dir, which must hold no inventory. */
int backup_restore(const struct hvd_config *conf, const char *file, char *err,
    size_t errlen);

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
	char boot_mac[18];
	char uuid[37], serial[65], product[65];
	char boot_ip[46];		/* who opened the current boot */
	int64_t boot_at;		/* when; 0: never booted */
	int64_t ovl_served_at;		/* 0: this boot's overlay not served */
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

/* db_ident.c: host identity (discovery, boots, adoption, replacement). */
struct host_seen {		/* what a boot request tells about a machine */
	char fingerprint[HOST_FP_HEX];
	char mac[18], uuid[37], serial[65], product[65];
	char ip[46];		/* the requester */
	bool stage2;		/* the stage-2 script request opens a boot */
};
struct host_config {		/* the operator's per-host settings */
	char *labels, *mounts, *ssh_keys, *facts, *macs;	/* JSON text */
	uint32_t vnis[API_HOST_NETS_MAX];	/* explicit memberships */
	size_t nvnis;
};
int db_host_by_id(struct db *db, int64_t id, struct host_row *out);
int db_host_find(struct db *db, const char *key, struct host_row *out);
/* 1 (and the identity's last name) if fp was replaced or retired. */
int db_fingerprint_retired(struct db *db, const char *fp, char *name,
    size_t namelen);
/* Records a boot request: discovers an unknown fingerprint, refreshes a
 * known one, opens a boot on stage 2.  -EPERM: a retired fingerprint. */
int db_host_seen(struct db *db, const struct host_seen *s, int64_t now,
    struct host_row *out);
/* Claims the open boot's overlay: -EALREADY if it was served already. */
int db_host_ovl_claim(struct db *db, const struct host_row *h, const char *ip,
    const char *pubhex, const uint8_t token_hash[AUTH_HASH_LEN], int64_t now);
/* -EBUSY: h is not discovered; -EEXIST: the name is taken; -ENXIO: a VNI
 * names no network. */
int db_host_adopt(struct db *db, const struct host_row *h,
    const struct api_host_spec *hs, const char *underlay_ip,
    const char *actor, int64_t now, struct host_row *out);
/* The discovered hardware hw takes over h's identity. */
int db_host_replace(struct db *db, const struct host_row *h,
    const struct host_row *hw, const char *actor, int64_t now,
    struct host_row *out);
int db_host_retire(struct db *db, const struct host_row *h, const char *actor,
    int64_t now);
int db_host_edit(struct db *db, const struct host_row *h,
    const struct api_host_spec *hs, const char *actor, int64_t now);
int db_host_config(struct db *db, int64_t id, struct host_config *c);
void host_config_free(struct host_config *c);
int db_host_set_underlay(struct db *db, int64_t id, const char *ip);
int db_host_set_facts(struct db *db, int64_t id, const char *facts,
    const char *macs, int64_t now);

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
void fleet_reset(struct fleet_host *fh);
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
void api_host_show_config(struct hvd *hvd, const struct host_row *h, json_t *j);
/* api_host_ident.c */
void api_host_adopt(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_host_replace(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_host_retire(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_host_edit(struct hvd *, const struct http_request *, struct http_reply *, const char *key);

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

/* ident.c: host identity at boot time and the overlay route. */
/* Records a boot request of the machine q names (from ip); in lab mode
 * adopts an unknown one.  -EPERM: its fingerprint was retired. */
int ident_boot(struct hvd *hvd, const struct boot_query *q, const char *ip,
    bool stage2, struct host_row *h);
/* The underlay address h gets: its lease in full DHCP mode, else the
 * address it booted from; NULL if unknown. */
const char *ident_underlay(struct hvd *hvd, const struct host_row *h);
int ident_overlay(struct hvd *hvd, const struct host_row *h,
    const char *agent_key_hex, const char *token, unsigned char **out,
    size_t *len, char *err, size_t errlen);
void ident_handle_ovl(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep);
void ident_handle_discover(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep);

/* db_mesh.c */
struct mesh_member {		/* a host in a network, with an underlay IP */
	uint32_t vni;
	int64_t host_id;
	char ip[46], state[16], name[API_NAME_MAX + 1];
};
int db_mesh_members(struct db *db, struct mesh_member **out, size_t *n);
int db_network_vnis(struct db *db, uint32_t **out, size_t *n);
int db_network_set_members(struct db *db, int64_t net_id,
    char names[][API_NAME_MAX + 1], size_t n, const char *actor, int64_t now);

/* mesh.c: the desired VXLAN mesh of each member, from the inventory. */
/* h's mesh as mesh.json text (malloc'd), NULL without an underlay IP. */
char *mesh_host_json(struct hvd *hvd, const struct host_row *h);
const char *mesh_anchor_ip(struct hvd *hvd);
/* The inventory changed in a way that may change some member's mesh:
 * recompute and push to every member (coalesced, after this event). */
void mesh_changed(struct hvd *hvd, const char *why);
json_t *mesh_sync_json(int64_t host_id);
json_t *mesh_anchor_json(struct hvd *hvd);
int mesh_init(struct hvd *hvd);
void mesh_shutdown(void);

/* db_vm.c: VMs and the image store. */
struct vm_row {
	int64_t id;
	char name[64], uuid[37];
	int64_t host_id;		/* 0: not placed */
	char host[API_NAME_MAX + 1];
	char desired[12], state[12], type[8];
	unsigned vcpus;
	uint64_t memory_mib;
	char spec[4096];		/* the accepted spec, canonical JSON */
	int64_t domid;			/* -1: none reported */
	char reason[256];
	char anti_affinity[64];
	int64_t created_at, updated_at;
};
struct vm_nic_row {
	uint32_t vni;
	char mac[18];
	char host_ip[46];		/* the VM's host's underlay address */
	int64_t host_id, vm_id;
};
struct image_row {
	char name[64], kind[12], sha256[65];
	uint64_t size;
	int64_t created_at;
};
int db_vm_list(struct db *db, int64_t host_id, struct vm_row **out, size_t *n);
int db_vm_get(struct db *db, const char *key, struct vm_row *out);
/* -EEXIST: name, uuid or a MAC taken (db_conflict says which); -ENXIO: a
 * VNI names no network. */
int db_vm_create(struct db *db, const struct vm_row *v,
    const struct vm_nic_row *nics, size_t nnics, const char *actor,
    int64_t now, int64_t *id);
int db_vm_nics(struct db *db, int64_t vm_id, struct vm_nic_row **out,
    size_t *n);
int db_vm_set_state(struct db *db, const struct vm_row *v, const char *state,
    int64_t domid, const char *reason, const char *actor, int64_t now);
int db_vm_set_desired(struct db *db, const struct vm_row *v,
    const char *desired, const char *actor, int64_t now);
int db_vm_delete(struct db *db, const struct vm_row *v, const char *actor,
    int64_t now);
int db_image_list(struct db *db, struct image_row **out, size_t *n);
int db_image_get(struct db *db, const char *name, struct image_row *out);
int db_image_add(struct db *db, const struct image_row *im, const char *actor,
    int64_t now);
int db_image_delete(struct db *db, const struct image_row *im,
    const char *actor, int64_t now, bool *last);

/* api_image.c: the image store. */
bool image_name_valid(const char *s);
void api_images_list(struct hvd *, const struct http_request *, struct http_reply *);
void api_image_add(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_image_delete(struct hvd *, const struct http_request *, struct http_reply *, const char *key);

/* vm.c: VM lifecycle (commands to hosts, operations, reports). */
uint64_t vm_start_action(struct hvd *hvd, const struct vm_row *v,
    const char *action, char *err, size_t errlen);
json_t *vm_op_json(uint64_t id);
void vm_agent_state(struct hvd *hvd, struct fleet_host *fh, json_t *params);
/* A host's session started: adopt its running VMs, report missing ones. */
void vm_host_up(struct hvd *hvd, struct fleet_host *fh, int64_t host_id);

/* api_vm.c */
void api_vms_create(struct hvd *, const struct http_request *, struct http_reply *);
void api_vms_list(struct hvd *, const struct http_request *, struct http_reply *);
void api_vm_show(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_vm_stop(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_vm_start(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_vm_destroy(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_vm_console(struct hvd *, const struct http_request *, struct http_reply *, const char *key);
void api_operation_show(struct hvd *, const struct http_request *, struct http_reply *, const char *key);

/* sched.c: VM placement, a pure function (no overcommit). */
struct sched_host {
	const char *name;
	const char *labels;	/* JSON object text */
	bool up, has_xen;
	bool holds_group;	/* runs a VM of the spec's anti-affinity group */
	uint64_t free_mib;	/* Xen's free memory less VMs not running yet */
	unsigned free_vcpus;	/* physical CPUs less placed vCPUs */
};
/* 0 and *pick, or -ENOSPC with err saying host by host why nothing fits. */
int sched_pick(const struct sched_host *hosts, size_t n,
    const struct vm_spec *s, size_t *pick, char *err, size_t errlen);

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

/* dhcp_proto.c: the DHCP wire format (RFC 2131, 2132; PXE 2.1), pure
 * functions over caller-owned buffers (fuzzed). */
#define DHCP_SERVER_PORT	67
#define DHCP_CLIENT_PORT	68
#define DHCP_PROXY_PORT		4011
#define DHCP_PACKET_MAX		1472	/* largest datagram parsed */
#define DHCP_REPLY_MAX		576	/* every client accepts this much */
#define DHCP_FILE_MAX		127	/* the BOOTP file field, less its NUL */
enum dhcp_type {
	DHCP_DISCOVER = 1, DHCP_OFFER, DHCP_REQUEST, DHCP_DECLINE, DHCP_ACK,
	DHCP_NAK, DHCP_RELEASE, DHCP_INFORM
};
struct dhcp_opt {
	uint16_t off;			/* of the value, in dhcp_msg.buf */
	uint8_t len;
	bool present;
};
struct dhcp_msg {
	const uint8_t *buf;		/* the parsed buffer, not owned */
	uint8_t op, hops, type;		/* type: option 53 */
	uint32_t xid;			/* as on the wire */
	uint16_t secs, flags;		/* as on the wire */
	uint32_t ciaddr, yiaddr, siaddr, giaddr;	/* network order */
	uint8_t chaddr[6];
	char file[DHCP_FILE_MAX + 1];	/* "" when overloaded */
	struct dhcp_opt opt[256];	/* the first of each code */
};
/* What a client boots, from options 60, 77, 93 and 175. */
enum dhcp_client {
	DHCP_CLIENT_OTHER,		/* no "PXEClient" vendor class */
	DHCP_CLIENT_BIOS,		/* PXE, architecture 0 */
	DHCP_CLIENT_EFI64,		/* PXE, architecture 7 or 9 */
	DHCP_CLIENT_IPXE,		/* already iPXE: gets the stage-1 URL */
	DHCP_CLIENT_UNSUPPORTED,	/* PXE, no loader for its architecture */
};
/* A reply in words; dhcp_build() puts it on the wire. */
struct dhcp_answer {
	uint8_t type;			/* DHCP_OFFER, DHCP_ACK or DHCP_NAK */
	uint32_t yiaddr, siaddr, server_id;	/* network order */
	bool proxy;			/* option 60 "PXEClient": proxyDHCP */
	bool pxe_bypass;		/* option 43: skip boot server discovery */
	const char *file;		/* boot file or URL, NULL: none */
	uint32_t mask, router, dns;	/* network order, 0: omitted */
	uint32_t lease_s;		/* 0: omitted, with T1 and T2 */
	const char *message;		/* option 56 of a NAK */
};
/* op: 1 for requests (what hvd serves), 2 for replies (tests). */
int dhcp_parse(const uint8_t *buf, size_t len, uint8_t op, struct dhcp_msg *m,
    char *err, size_t errlen);
const uint8_t *dhcp_opt_data(const struct dhcp_msg *m, uint8_t code,
    size_t *len);
bool dhcp_opt_addr(const struct dhcp_msg *m, uint8_t code, uint32_t *addr);
enum dhcp_client dhcp_classify(const struct dhcp_msg *m, uint16_t *arch);
const char *dhcp_client_name(enum dhcp_client c);
/* -EMSGSIZE if the answer does not fit cap (at least 300) bytes. */
int dhcp_build(const struct dhcp_msg *req, const struct dhcp_answer *a,
    uint8_t *out, size_t cap, size_t *len);

/* dhcp.c: proxy and full DHCP on dhcp-interface. */
struct dhcp_site {
	enum dhcp_mode mode;
	uint32_t addr, mask;		/* the interface's, network order */
	uint32_t boot_server;		/* siaddr, network order */
	char url[128];			/* stage-1 script, for iPXE clients */
	uint32_t router, dns;		/* network order, 0: none */
	uint32_t lease_s;
};
int dhcp_init(struct hvd *hvd);
void dhcp_shutdown(void);
void dhcp_metrics(FILE *f);
/* Fills a's boot fields for client c; false if hvd has no boot for c. */
bool dhcp_boot_answer(const struct dhcp_site *s, enum dhcp_client c,
    struct dhcp_answer *a);
/* The proxyDHCP answer to m received on port; -ENOENT with *why if none. */
int dhcp_proxy_answer(const struct dhcp_site *s, const struct dhcp_msg *m,
    uint16_t port, struct dhcp_answer *a, const char **why);

/* db_lease.c: full-mode leases.  Addresses in host byte order. */
struct lease_pool {
	uint32_t first, last;		/* dhcp-range, inclusive */
	uint32_t net, mask;		/* the interface's subnet */
	uint32_t server;		/* hvd's own address: never leased */
};
struct lease_row {
	char mac[18], ip[16], state[12];
	int64_t expires_at, updated_at;
	char hostname[64], client_id[80];
};
/* The address for mac: its host's underlay_ip, else its lease, else want
 * if free, else the lowest free; held until hold_until.  -ENOSPC: none. */
int db_lease_offer(struct db *db, const char *mac, const struct lease_pool *p,
    uint32_t want, int64_t hold_until, int64_t now, uint32_t *ip);
/* Binds want to mac until expires_at; -EADDRNOTAVAIL: NAK it. */
int db_lease_request(struct db *db, const char *mac,
    const struct lease_pool *p, uint32_t want, const char *hostname,
    const char *client_id, int64_t expires_at, int64_t now);
int db_lease_release(struct db *db, const char *mac, uint32_t ip, int64_t now);
/* The client found ip in use: it is withheld from everyone until hold_until. */
int db_lease_decline(struct db *db, const char *mac, uint32_t ip,
    int64_t hold_until, int64_t now);
int db_lease_get(struct db *db, const char *mac, struct lease_row *out);

/* tftp_proto.c: TFTP packets (RFC 1350, 2347, 2348, 2349, 7440) and the
 * send window of a read transfer, as pure functions over buffers and
 * explicit state; tftp.c does every system call. */
enum tftp_op {
	TFTP_RRQ = 1, TFTP_WRQ, TFTP_DATA, TFTP_ACK, TFTP_ERROR, TFTP_OACK,
};
enum tftp_errcode {
	TFTP_EUNDEF = 0,	/* not defined, see the message */
	TFTP_ENOTFOUND = 1,
	TFTP_EACCESS = 2,
	TFTP_EILLEGAL = 4,
	TFTP_EOPTION = 8,	/* RFC 2347: option negotiation failed */
};
enum tftp_mode { TFTP_MODE_OCTET, TFTP_MODE_NETASCII };
#define TFTP_HDR_LEN		4
#define TFTP_REQUEST_MAX	512	/* RFC 2347, options included */
#define TFTP_FILENAME_MAX	255
#define TFTP_OPTNAME_MAX	32
#define TFTP_OPTVALUE_MAX	64
#define TFTP_OPTIONS_MAX	16
#define TFTP_BLKSIZE_MIN	8	/* RFC 2348 */
#define TFTP_BLKSIZE_MAX	65464
#define TFTP_WINDOWSIZE_MAX	65535	/* RFC 7440 */
#define TFTP_TIMEOUT_MAX_S	255	/* RFC 2349 */
#define TFTP_CLIENT_TIMEOUT_MAX_S 60	/* longer requests are not acknowledged */
#define TFTP_ERRMSG_MAX		128
#define TFTP_RTO_MIN_MS		100	/* floor of the adaptive retransmit timer */
struct tftp_request {
	enum tftp_op op;			/* TFTP_RRQ or TFTP_WRQ */
	char filename[TFTP_FILENAME_MAX + 1];	/* raw bytes, NUL-free */
	enum tftp_mode mode;
	unsigned blksize;		/* 0: not requested */
	unsigned windowsize;		/* 0: not requested */
	unsigned timeout_s;		/* 0: not requested */
	bool tsize;
	unsigned ignored;		/* unknown options, ignored (RFC 2347) */
};
/* Parses a request.  0, or -EINVAL with the TFTP error code to answer in
 * *code and err naming the rejected token (escaped, bounded). */
int tftp_request_parse(const uint8_t *buf, size_t len, struct tftp_request *req,
    uint16_t *code, char *err, size_t errlen);
/* hvd's policy on a parsed request: read-only, octet only, no absolute
 * path, no "..", printable ASCII names.  Same return as the parser. */
int tftp_request_check(const struct tftp_request *req, uint16_t *code,
    char *err, size_t errlen);
struct tftp_limits {
	unsigned blksize_max, windowsize_max, timeout_ms;
};
struct tftp_params {
	unsigned blksize, windowsize, timeout_ms;
	bool oack;			/* answer with an OACK first */
	bool ack_blksize, ack_windowsize, ack_timeout, ack_tsize;
	unsigned timeout_s;		/* echoed when ack_timeout */
	uint64_t tsize;
};
void tftp_negotiate(const struct tftp_request *req, const struct tftp_limits *lim,
    uint64_t size, struct tftp_params *p);
/* Builders return the packet length, 0 if cap is too small. */
size_t tftp_oack_build(const struct tftp_params *p, uint8_t *buf, size_t cap);
size_t tftp_error_build(uint16_t code, const char *msg, uint8_t *buf, size_t cap);
void tftp_data_header(uint64_t block, uint8_t hdr[TFTP_HDR_LEN]);
struct tftp_reply {
	enum tftp_op op;		/* TFTP_ACK or TFTP_ERROR */
	uint16_t block;			/* ACK */
	uint16_t code;			/* ERROR */
	char msg[TFTP_ERRMSG_MAX];	/* ERROR, escaped */
};
/* Parses what a client sends during a transfer: ACK or ERROR only. */
int tftp_reply_parse(const uint8_t *buf, size_t len, struct tftp_reply *r,
    char *err, size_t errlen);
/* Copies len bytes for a log line: printable ASCII kept, the rest as \xNN,
 * "..." when cut; always NUL-terminated. */
void tftp_escape(const uint8_t *src, size_t len, char *dst, size_t cap);
/* The send window of one transfer: blocks are numbered from 1 without
 * wrapping (the wire carries the low 16 bits), go-back-N on a partial ACK,
 * timer-driven resends that probe up to one window further (tftp_proto.c
 * says why),
 * an adaptive retransmit timer (RFC 6298 estimator, Karn's rule) between
 * TFTP_RTO_MIN_MS and the negotiated timeout, and a deadline of
 * timeout * (retries + 1) without progress. */
#define TFTP_REPEAT_MIN_MS	500	/* between answers to a repeated request */
struct tftp_window {
	uint64_t nblocks;	/* size / blksize + 1: the last one is short */
	uint64_t acked;		/* highest block acknowledged */
	uint64_t sent;		/* last block in flight */
	unsigned windowsize;
	bool oack;		/* the OACK awaits ACK 0 */
	bool answered;		/* the client acknowledged something */
	bool resent;		/* the flight was retransmitted: no RTT sample */
	bool probe_ok;		/* windowsize negotiated: resends may probe */
	bool have_rtt;
	unsigned extra;		/* blocks past the window, one per resend */
	unsigned timeout_ms, retries, rto_ms;
	int64_t srtt8, rttvar4;	/* ms, scaled by 8 and 4 */
	int64_t sent_at, progress_at;	/* monotonic ms */
	uint64_t retransmits;	/* timer-driven resends */
};
enum tftp_win_event { TFTP_WIN_IGNORE, TFTP_WIN_MORE, TFTP_WIN_DONE };
enum tftp_win_timer { TFTP_TIMER_RESEND, TFTP_TIMER_WAIT, TFTP_TIMER_GIVEUP };
void tftp_window_init(struct tftp_window *w, uint64_t size,
    const struct tftp_params *p, unsigned retries, int64_t now);
/* What to send now: *count == 0 means the OACK. */
void tftp_window_span(const struct tftp_window *w, uint64_t *first,
    unsigned *count);
/* Records that the span went out; returns the ms until the timer fires. */
unsigned tftp_window_sent(struct tftp_window *w, bool retransmit, int64_t now);
/* Ms until the transfer gives up without progress, at least 1. */
unsigned tftp_window_deadline(const struct tftp_window *w, int64_t now);
/* The client repeated its request: true to resend the span now. */
bool tftp_window_repeat(const struct tftp_window *w, int64_t now);
enum tftp_win_event tftp_window_ack(struct tftp_window *w, uint16_t block,
    int64_t now);
/* The timer fired: resend the span, wait (until the deadline), or give up. */
enum tftp_win_timer tftp_window_expired(struct tftp_window *w, int64_t now);

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

#endif
