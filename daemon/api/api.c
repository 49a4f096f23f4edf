/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The REST API's router: a route table mapping method and path to a handler
 * and the role it needs, plus the small endpoints (health, version, status,
 * metrics, events).  Resources with CRUD live in api_<resource>.c.
 *
 * Invariant: every reply has a status and, on error, a JSON body
 * {"error": "..."} that names what was wrong.  Must never put a secret in an
 * error message or a log line.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "rest.h"
#include "escape.h"
#include "numparse.h"

#define API_KEY_MAX	64

struct api_route {
	const char *method;
	const char *path;	/* a trailing "{}" matches one path segment */
	enum api_role need;
	void (*handle)(struct hvd *, const struct http_request *,
	    struct http_reply *);
	void (*handle_key)(struct hvd *, const struct http_request *,
	    struct http_reply *, const char *key);
};

static void
api_healthz(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	(void)req;
	if (db_ping(hvd->db) < 0) {
		http_error(rep, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable");
		return;
	}
	rep->status = MHD_HTTP_OK;
	rep->json = json_pack("{s:s}", "status", "ok");
}

static void
api_version(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	(void)req;
	rep->status = MHD_HTTP_OK;
	rep->json = json_pack("{s:s, s:s, s:i}", "version", HV_VERSION,
	    "api", "v1", "schema", db_user_version(hvd->db));
}

/* A listener as it is bound: its address and the port it got. */
static void
api_listen_add(json_t *listen, const char *key, const char *host,
    uint16_t port)
{
	char addr[ADDR_STRLEN];

	addr_join(host, port, addr, sizeof(addr));
	json_object_set_new(listen, key, json_string(addr));
}

static void
api_status(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	int64_t hosts = 0, nets = 0, vms = 0;
	const struct hvd_config *c = hvd->conf;
	json_t *listen;

	if (db_count(hvd->db, "hosts", &hosts) < 0 ||
	    db_count(hvd->db, "networks", &nets) < 0 ||
	    db_count(hvd->db, "vms", &vms) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "database error while counting the inventory");
		return;
	}
	listen = json_object();
	if (c->agent_listen) {
		char pub[65];

		api_listen_add(listen, "agents", c->agent_listen_host, agents_port());
		sodium_bin2hex(pub, sizeof(pub), keys_link_public(), 32);
		json_object_set_new(listen, "agent_key", json_string(pub));
	}
	if (c->api_socket[0])
		json_object_set_new(listen, "socket", json_string(c->api_socket));
	if (c->api_tcp) {
		api_listen_add(listen, "tcp", c->api_listen_host, http_tcp_port());
		json_object_set_new(listen, "tcp_tls", json_boolean(
		    http_tls_pin() != NULL));
		if (http_tls_pin() != NULL)
			json_object_set_new(listen, "tcp_pin",
			    json_string(http_tls_pin()));
	}
	if (c->tftp)
		api_listen_add(listen, "tftp", c->tftp_host, tftp_port());
	if (c->boot_http)
		api_listen_add(listen, "boot_http", c->boot_http_host,
		    http_boot_port());
	rep->status = MHD_HTTP_OK;
	rep->json = json_pack("{s:s, s:I, s:I, s:s, s:s, s:o, s:{s:I, s:I, s:I}}",
	    "version", HV_VERSION,
	    "pid", (json_int_t)getpid(),
	    "uptime_seconds", (json_int_t)(hvd_now_mono() -
	    hvd->started_mono.tv_sec),
	    "state_dir", c->state_dir,
	    "your_role", api_role_name(req->role),
	    "listen", listen,
	    "inventory", "hosts", (json_int_t)hosts, "networks", (json_int_t)nets,
	    "vms", (json_int_t)vms);
	json_object_set_new(rep->json, "agent_sessions",
	    json_integer((json_int_t)fleet_sessions()));
	json_object_set_new(rep->json, "boot", boot_status_json());
	json_object_set_new(rep->json, "topology", topology_json());
}

static void
api_metrics(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	char *text = NULL;
	size_t len = 0;

	(void)req;
	if (metrics_render(hvd, &text, &len) < 0 ||
	    (rep->blob = blob_new(text, len)) == NULL) {
		free(text);
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "could not render metrics");
		return;
	}
	free(text);
	rep->status = MHD_HTTP_OK;
	rep->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void
api_events(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	const char *subject = req->query(req, "subject");
	const char *lim = req->query(req, "limit");
	struct event_row *rows = NULL;
	uint32_t limit = 100;
	size_t n = 0;
	json_t *arr;

	if (lim && parse_u32(lim, 1, 10000, &limit) < 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST,
		    "query 'limit' must be an integer in 1..10000");
		return;
	}
	if (db_event_list(hvd->db, subject, limit, &rows, &n) < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "database error while listing events");
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:I, s:o, s:s, s:s, s:s, s:s}",
		    "id", (json_int_t)rows[i].id, "time", api_time_json(rows[i].time),
		    "kind", rows[i].kind, "subject", rows[i].subject,
		    "actor", rows[i].actor, "detail", rows[i].detail));
	free(rows);
	rep->status = MHD_HTTP_OK;
	rep->json = json_pack("{s:o}", "events", arr);
}

/*
 * The AGPL's offer of the Corresponding Source to everyone who uses hvd
 * over the network: this build's source archive (source-archive), to
 * anyone, opened by the one rule for served files (net/served.c).
 */
static void
api_source(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	const char *path = hvd->conf->source_archive, *base;
	char dir[PATH_MAX];
	struct stat st;
	int dfd, fd = -ENOENT;

	(void)req;
	base = strrchr(path, '/');
	if (base != NULL && base != path && (size_t)(base - path) < sizeof(dir)) {
		memcpy(dir, path, (size_t)(base - path));
		dir[base - path] = '\0';
		if ((dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) >= 0) {
			fd = served_open(dfd, base + 1, &st);
			close(dfd);
		}
	}
	if (fd < 0) {
		http_error(rep, MHD_HTTP_NOT_FOUND, "this hvd has no source archive "
		    "at %s (source-archive); hypervisor is AGPL-3.0-or-later and "
		    "its source comes with the tree it was built from", path);
		return;
	}
	rep->status = MHD_HTTP_OK;
	rep->content_type = "application/gzip";
	rep->file_fd = fd;
	rep->file_off = 0;
	rep->file_len = (uint64_t)st.st_size;
	snprintf(rep->header[0], sizeof(rep->header[0]), "Content-Disposition: "
	    "attachment; filename=\"hypervisor-%s-source.tar.gz\"", HV_VERSION);
}

static const struct api_route api_routes[] = {
	{ "GET", "/", API_ROLE_NONE, api_dashboard_page, NULL },
	{ "GET", "/ui/{}", API_ROLE_NONE, NULL, api_dashboard_asset },
	{ "GET", "/healthz", API_ROLE_NONE, api_healthz, NULL },
	{ "GET", "/source.tar.gz", API_ROLE_NONE, api_source, NULL },
	{ "GET", "/metrics", API_ROLE_READ, api_metrics, NULL },
	{ "GET", "/api/v1/version", API_ROLE_READ, api_version, NULL },
	{ "GET", "/api/v1/status", API_ROLE_READ, api_status, NULL },
	{ "GET", "/api/v1/events", API_ROLE_READ, api_events, NULL },
	{ "GET", "/api/v1/feed", API_ROLE_READ, api_feed, NULL },
	{ "POST", "/api/v1/session", API_ROLE_NONE, api_session_create, NULL },
	{ "GET", "/api/v1/session", API_ROLE_READ, api_session_show, NULL },
	{ "DELETE", "/api/v1/session", API_ROLE_READ, api_session_delete, NULL },
	{ "GET", "/api/v1/backup", API_ROLE_ADMIN, api_backup, NULL },
	{ "GET", "/api/v1/vms", API_ROLE_READ, api_vms_list, NULL },
	{ "POST", "/api/v1/vms", API_ROLE_ADMIN, api_vms_create, NULL },
	{ "GET", "/api/v1/vms/{}", API_ROLE_READ, NULL, api_vm_show },
	{ "DELETE", "/api/v1/vms/{}", API_ROLE_ADMIN, NULL, api_vm_destroy },
	{ "POST", "/api/v1/vms/{}/stop", API_ROLE_ADMIN, NULL, api_vm_stop },
	{ "POST", "/api/v1/vms/{}/start", API_ROLE_ADMIN, NULL, api_vm_start },
	{ "POST", "/api/v1/vms/{}/reboot", API_ROLE_ADMIN, NULL,
	    api_vm_reboot },
	{ "GET", "/api/v1/vms/{}/console", API_ROLE_READ, NULL, api_vm_console },
	{ "POST", "/api/v1/vms/{}/console/attach", API_ROLE_ADMIN, NULL,
	    api_vm_console_attach },
	{ "GET", "/api/v1/consoles", API_ROLE_ADMIN, api_consoles_list, NULL },
	{ "GET", "/api/v1/consoles/{}", API_ROLE_ADMIN, NULL, api_console_read },
	{ "POST", "/api/v1/consoles/{}/input", API_ROLE_ADMIN, NULL,
	    api_console_input },
	{ "DELETE", "/api/v1/consoles/{}", API_ROLE_ADMIN, NULL,
	    api_console_detach },
	{ "POST", "/api/v1/vms/{}/migrate", API_ROLE_ADMIN, NULL,
	    api_vm_migrate },
	{ "GET", "/api/v1/operations/{}", API_ROLE_READ, NULL,
	    api_operation_show },
	{ "GET", "/api/v1/images", API_ROLE_READ, api_images_list, NULL },
	{ "POST", "/api/v1/images/{}", API_ROLE_ADMIN, NULL, api_image_add },
	{ "DELETE", "/api/v1/images/{}", API_ROLE_ADMIN, NULL, api_image_delete },
	{ "GET", "/api/v1/networks", API_ROLE_READ, api_networks_list, NULL },
	{ "POST", "/api/v1/networks", API_ROLE_ADMIN, api_networks_create, NULL },
	{ "GET", "/api/v1/networks/{}", API_ROLE_READ, NULL, api_network_show },
	{ "PATCH", "/api/v1/networks/{}", API_ROLE_ADMIN, NULL, api_network_patch },
	{ "DELETE", "/api/v1/networks/{}", API_ROLE_ADMIN, NULL, api_network_delete },
	{ "GET", "/api/v1/hosts", API_ROLE_READ, api_hosts_list, NULL },
	{ "POST", "/api/v1/hosts", API_ROLE_ADMIN, api_hosts_create, NULL },
	{ "GET", "/api/v1/hosts/{}", API_ROLE_READ, NULL, api_host_show },
	{ "GET", "/api/v1/hosts/{}/telemetry", API_ROLE_READ, NULL,
	    api_host_telemetry },
	{ "POST", "/api/v1/hosts/{}/command", API_ROLE_ADMIN, NULL,
	    api_host_command },
	{ "PATCH", "/api/v1/hosts/{}", API_ROLE_ADMIN, NULL, api_host_edit },
	{ "DELETE", "/api/v1/hosts/{}", API_ROLE_ADMIN, NULL, api_host_delete },
	{ "POST", "/api/v1/hosts/{}/adopt", API_ROLE_ADMIN, NULL, api_host_adopt },
	{ "POST", "/api/v1/hosts/{}/replace", API_ROLE_ADMIN, NULL,
	    api_host_replace },
	{ "POST", "/api/v1/hosts/{}/drain", API_ROLE_ADMIN, NULL,
	    api_host_drain },
	{ "GET", "/api/v1/hosts/{}/drain", API_ROLE_READ, NULL,
	    api_host_drain_show },
	{ "POST", "/api/v1/hosts/{}/undrain", API_ROLE_ADMIN, NULL,
	    api_host_undrain },
	{ "POST", "/api/v1/hosts/{}/retire", API_ROLE_ADMIN, NULL,
	    api_host_retire },
	{ "GET", "/api/v1/tokens", API_ROLE_ADMIN, api_tokens_list, NULL },
	{ "POST", "/api/v1/tokens", API_ROLE_ADMIN, api_tokens_create, NULL },
	{ "DELETE", "/api/v1/tokens/{}", API_ROLE_ADMIN, NULL, api_token_delete },
};

/*
 * Matches url against a route path.  A "{}" matches one non-empty path
 * segment, which is copied to key (the key buffer is static: one request is
 * handled at a time); a fixed suffix may follow it.
 */
static bool
api_match(const char *path, const char *url, const char **key)
{
	static char keybuf[API_KEY_MAX + 1];
	const char *brace = strstr(path, "{}"), *k, *end;
	size_t prefix, klen;

	*key = NULL;
	if (brace == NULL)
		return strcmp(path, url) == 0;
	prefix = (size_t)(brace - path);
	if (strncmp(path, url, prefix) != 0)
		return false;
	k = url + prefix;
	end = strchr(k, '/');
	klen = end ? (size_t)(end - k) : strlen(k);
	if (klen == 0 || klen > API_KEY_MAX)
		return false;
	if (strcmp(brace + 2, end ? end : "") != 0)
		return false;
	memcpy(keybuf, k, klen);
	keybuf[klen] = '\0';
	*key = keybuf;
	return true;
}

static bool
api_key_printable(const char *key)
{
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return false;
	return true;
}

/*
 * 403 names the path refused as the client sent it, not the route's
 * template, and the role the route needs.  The path is the client's text
 * (its key is checked only after this), so it is escaped and bounded.
 */
static void
api_forbidden(const struct http_request *req, const struct api_route *r,
    struct http_reply *rep)
{
	char path[160];
	size_t need = escape_text(path, sizeof(path), req->url);

	http_error(rep, MHD_HTTP_FORBIDDEN, "role '%s' may not %s %s%s (it needs "
	    "role '%s')", api_role_name(req->role), req->method, path,
	    need >= sizeof(path) ? "..." : "", api_role_name(r->need));
}

void
api_handle(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	static char allow[64];
	const struct api_route *hit = NULL;
	const char *key = NULL, *k;
	bool path_known = false;

	allow[0] = '\0';
	for (size_t i = 0; i < sizeof(api_routes) / sizeof(*api_routes); i++) {
		const struct api_route *r = &api_routes[i];

		if (!api_match(r->path, req->url, &k))
			continue;
		if (!path_known)
			rep->route = r->path;
		path_known = true;
		if (strlen(allow) + strlen(r->method) + 3 < sizeof(allow)) {
			if (allow[0])
				strcat(allow, ", ");
			strcat(allow, r->method);
		}
		if (strcmp(r->method, req->method) == 0 ||
		    (strcmp(req->method, "HEAD") == 0 &&
		    strcmp(r->method, "GET") == 0)) {
			hit = r;
			key = k;
			rep->route = r->path;
		}
	}
	if (!path_known) {
		http_error(rep, MHD_HTTP_NOT_FOUND, "no such resource");
		return;
	}
	if (hit == NULL) {
		rep->allow = allow;
		http_error(rep, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "method %s not allowed here; allowed: %s", req->method, allow);
		return;
	}
	if (!auth_role_allows(req->role, hit->need)) {
		if (req->anonymous)
			http_error(rep, MHD_HTTP_UNAUTHORIZED, "%s",
			    req->auth_refused ? req->auth_refused :
			    "missing or invalid bearer token");
		else
			api_forbidden(req, hit, rep);
		return;
	}
	if (key != NULL && !api_key_printable(key)) {
		http_error(rep, MHD_HTTP_NOT_FOUND, "no such resource");
		return;
	}
	if (hit->handle_key)
		hit->handle_key(hvd, req, rep, key);
	else
		hit->handle(hvd, req, rep);
	if (rep->status == 0 && !rep->deferred)
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "handler gave no reply");
}

void
api_shutdown(void)
{
	api_network_shutdown();
}
