/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvd.conf: parse into a new struct, validate it whole, then the caller
 * swaps it in (CONVENTIONS 16).
 *
 * Grammar: one "keyword value..." per line; '#' starts a comment; tokens are
 * separated by blanks; a value may be "double quoted" (no escapes).  Every
 * keyword may appear once.  Errors read "FILE:LINE: message".
 *
 * Invariant: config_parse() is a pure function over a buffer (it has a fuzz
 * target).  It must never touch the filesystem or the network: a host name
 * in api-listen is refused rather than resolved, so start-up cannot block on
 * DNS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wire.h"
#include "hostport.h"
#include "numparse.h"

#define CONFIG_MAX_ARGS		8
#define CONFIG_LINE_MAX		1024

struct config_ctx {
	struct hvd_config *conf;
	const char *fname;
	unsigned line;
	char *err;
	size_t errlen;
	unsigned seen[64];	/* line each keyword was first set on */
};

struct config_keyword {
	const char *name;
	int nargs;
	int (*set)(struct config_ctx *ctx, char **argv);
};

static int config_error(struct config_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
config_error(struct config_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(ctx->err, ctx->errlen, "%s:%u: ", ctx->fname, ctx->line);
	if (n < 0 || (size_t)n >= ctx->errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(ctx->err + n, ctx->errlen - n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int
config_copy(struct config_ctx *ctx, const char *key, char *dst, size_t dstlen,
    const char *src)
{
	if (strlen(src) >= dstlen)
		return config_error(ctx, "%s: value longer than %zu bytes", key,
		    dstlen - 1);
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

static int
set_state_dir(struct config_ctx *ctx, char **argv)
{
	if (argv[0][0] != '/')
		return config_error(ctx, "state-dir: '%s' is not an absolute path",
		    argv[0]);
	return config_copy(ctx, "state-dir", ctx->conf->state_dir,
	    sizeof(ctx->conf->state_dir), argv[0]);
}

static int
set_api_socket(struct config_ctx *ctx, char **argv)
{
	if (strcmp(argv[0], "none") == 0) {
		ctx->conf->api_socket[0] = '\0';
		return 0;
	}
	if (argv[0][0] != '/')
		return config_error(ctx, "api-socket: '%s' is not an absolute path",
		    argv[0]);
	return config_copy(ctx, "api-socket", ctx->conf->api_socket,
	    sizeof(ctx->conf->api_socket), argv[0]);
}

static int
set_api_socket_mode(struct config_ctx *ctx, char **argv)
{
	if (parse_mode(argv[0], &ctx->conf->api_socket_mode) < 0)
		return config_error(ctx, "api-socket-mode: '%s' is not an octal "
		    "mode between 0000 and 0777", argv[0]);
	if ((ctx->conf->api_socket_mode & 0600) != 0600)
		return config_error(ctx, "api-socket-mode: %04o locks hvd's own "
		    "user out; the owner needs read and write",
		    ctx->conf->api_socket_mode);
	return 0;
}

static int
set_api_socket_peer_role(struct config_ctx *ctx, char **argv)
{
	if (strcmp(argv[0], "none") == 0) {
		ctx->conf->api_socket_peer_role = API_ROLE_NONE;
		return 0;
	}
	if (api_role_parse(argv[0], &ctx->conf->api_socket_peer_role) < 0)
		return config_error(ctx, "api-socket-peer-role: '%s' is not one "
		    "of admin, read, none", argv[0]);
	return 0;
}

/* ADDR:PORT with a numeric IPv4 address, or [IPv6]:PORT; port 0 allowed. */
static int
config_hostport(struct config_ctx *ctx, const char *key, const char *arg,
    char *host, size_t hostlen, uint16_t *port_out)
{
	char why[CONFIG_LINE_MAX];

	if (hostport_parse(arg, true, host, hostlen, port_out, why,
	    sizeof(why)) < 0)
		return config_error(ctx, "%s: %s", key, why);
	return 0;
}

static int
set_api_listen(struct config_ctx *ctx, char **argv)
{
	struct hvd_config *c = ctx->conf;
	char host[sizeof(c->api_listen_host)];
	uint16_t port;
	int r;

	if (strcmp(argv[0], "none") == 0) {
		c->api_tcp = false;
		return 0;
	}
	if ((r = config_hostport(ctx, "api-listen", argv[0], host, sizeof(host),
	    &port)) < 0)
		return r;
	memcpy(c->api_listen_host, host, sizeof(host));
	c->api_listen_port = port;
	c->api_tcp = true;
	return 0;
}

static int
set_agent_listen(struct config_ctx *ctx, char **argv)
{
	struct hvd_config *c = ctx->conf;
	char host[sizeof(c->agent_listen_host)];
	uint16_t port;
	int r;

	if (strcmp(argv[0], "none") == 0) {
		c->agent_listen = false;
		return 0;
	}
	if ((r = config_hostport(ctx, "agent-listen", argv[0], host,
	    sizeof(host), &port)) < 0)
		return r;
	memcpy(c->agent_listen_host, host, sizeof(host));
	c->agent_listen_port = port;
	c->agent_listen = true;
	return 0;
}

static int
config_seconds(struct config_ctx *ctx, const char *key, const char *s,
    uint64_t min, uint64_t max, unsigned *out)
{
	uint64_t v;

	if (parse_u64(s, min, max, &v) < 0)
		return config_error(ctx, "%s: '%s' is not a number of seconds in "
		    "%llu..%llu", key, s, (unsigned long long)min,
		    (unsigned long long)max);
	*out = (unsigned)v;
	return 0;
}

static int
set_agent_heartbeat(struct config_ctx *ctx, char **argv)
{
	uint64_t v;

	if (parse_u64(argv[0], 100, 3600000, &v) < 0)
		return config_error(ctx, "agent-heartbeat-ms: '%s' is not a number "
		    "of milliseconds in 100..3600000", argv[0]);
	ctx->conf->heartbeat_ms = (unsigned)v;
	return 0;
}

static int
set_telemetry_step(struct config_ctx *ctx, char **argv)
{
	return config_seconds(ctx, "telemetry-step", argv[0], 1, 3600,
	    &ctx->conf->telemetry_step_s);
}

static int
set_telemetry_retention(struct config_ctx *ctx, char **argv)
{
	return config_seconds(ctx, "telemetry-retention", argv[0], 60,
	    30 * 86400, &ctx->conf->telemetry_retention_s);
}

static int
set_events_max_age(struct config_ctx *ctx, char **argv)
{
	return config_seconds(ctx, "events-max-age", argv[0], 3600,
	    3650ull * 86400, &ctx->conf->events_max_age_s);
}

static int
set_events_max_rows(struct config_ctx *ctx, char **argv)
{
	uint64_t v;

	if (parse_u64(argv[0], 100, 100000000, &v) < 0)
		return config_error(ctx, "events-max-rows: '%s' is not an "
		    "integer in 100..100000000", argv[0]);
	ctx->conf->events_max_rows = (unsigned)v;
	return 0;
}

static int
config_listen(struct config_ctx *ctx, const char *key, const char *arg,
    bool *on, char *host, size_t hostlen, uint16_t *port)
{
	char h[64];
	int r;

	if (strcmp(arg, "none") == 0) {
		*on = false;
		return 0;
	}
	if ((r = config_hostport(ctx, key, arg, h, sizeof(h), port)) < 0)
		return r;
	snprintf(host, hostlen, "%s", h);
	*on = true;
	return 0;
}

static int
config_uint(struct config_ctx *ctx, const char *key, const char *s,
    uint64_t min, uint64_t max, unsigned *out)
{
	uint64_t v;

	if (parse_u64(s, min, max, &v) < 0)
		return config_error(ctx, "%s: '%s' is not an integer in "
		    "%llu..%llu", key, s, (unsigned long long)min,
		    (unsigned long long)max);
	*out = (unsigned)v;
	return 0;
}

static int
config_ipv4(struct config_ctx *ctx, const char *key, const char *s, char *out,
    size_t outlen)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return config_error(ctx, "%s: '%s' is not an IPv4 address", key, s);
	snprintf(out, outlen, "%s", s);
	return 0;
}

static int
set_boot_root(struct config_ctx *ctx, char **argv)
{
	if (argv[0][0] != '/')
		return config_error(ctx, "boot-root: '%s' is not an absolute path",
		    argv[0]);
	return config_copy(ctx, "boot-root", ctx->conf->boot_root,
	    sizeof(ctx->conf->boot_root), argv[0]);
}

static int
set_boot_templates(struct config_ctx *ctx, char **argv)
{
	if (argv[0][0] != '/')
		return config_error(ctx, "boot-templates: '%s' is not an "
		    "absolute path", argv[0]);
	return config_copy(ctx, "boot-templates", ctx->conf->boot_templates,
	    sizeof(ctx->conf->boot_templates), argv[0]);
}

static int
set_source_archive(struct config_ctx *ctx, char **argv)
{
	if (argv[0][0] != '/')
		return config_error(ctx, "source-archive: '%s' is not an "
		    "absolute path", argv[0]);
	return config_copy(ctx, "source-archive", ctx->conf->source_archive,
	    sizeof(ctx->conf->source_archive), argv[0]);
}

static int
set_alpine_mirror(struct config_ctx *ctx, char **argv)
{
	if (argv[0][0] != '/')
		return config_error(ctx, "alpine-mirror: '%s' is not an absolute "
		    "path", argv[0]);
	return config_copy(ctx, "alpine-mirror", ctx->conf->alpine_mirror,
	    sizeof(ctx->conf->alpine_mirror), argv[0]);
}

static int
set_boot_server(struct config_ctx *ctx, char **argv)
{
	return config_ipv4(ctx, "boot-server", argv[0], ctx->conf->boot_server,
	    sizeof(ctx->conf->boot_server));
}

static int
set_boot_http_listen(struct config_ctx *ctx, char **argv)
{
	struct hvd_config *c = ctx->conf;

	return config_listen(ctx, "boot-http-listen", argv[0], &c->boot_http,
	    c->boot_http_host, sizeof(c->boot_http_host), &c->boot_http_port);
}

static int
set_tftp_listen(struct config_ctx *ctx, char **argv)
{
	struct hvd_config *c = ctx->conf;

	return config_listen(ctx, "tftp-listen", argv[0], &c->tftp, c->tftp_host,
	    sizeof(c->tftp_host), &c->tftp_port);
}

static int
set_tftp_blksize_max(struct config_ctx *ctx, char **argv)
{
	/* RFC 2348 bounds. */
	return config_uint(ctx, "tftp-blksize-max", argv[0], 512, 65464,
	    &ctx->conf->tftp_blksize_max);
}

static int
set_tftp_windowsize_max(struct config_ctx *ctx, char **argv)
{
	return config_uint(ctx, "tftp-windowsize-max", argv[0], 1, 64,
	    &ctx->conf->tftp_windowsize_max);
}

static int
set_tftp_timeout_ms(struct config_ctx *ctx, char **argv)
{
	return config_uint(ctx, "tftp-timeout-ms", argv[0], 100, 255000,
	    &ctx->conf->tftp_timeout_ms);
}

static int
set_tftp_retries(struct config_ctx *ctx, char **argv)
{
	return config_uint(ctx, "tftp-retries", argv[0], 1, 20,
	    &ctx->conf->tftp_retries);
}

static int
set_http_conn_max(struct config_ctx *ctx, char **argv)
{
	return config_uint(ctx, "http-conn-max", argv[0], 16, 60000,
	    &ctx->conf->http_conn_max);
}

static int
set_http_conn_per_ip(struct config_ctx *ctx, char **argv)
{
	return config_uint(ctx, "http-conn-per-ip", argv[0], 1, 60000,
	    &ctx->conf->http_conn_per_ip);
}

static int
set_http_conn_reserve(struct config_ctx *ctx, char **argv)
{
	return config_uint(ctx, "http-conn-reserve", argv[0], 0, 60000,
	    &ctx->conf->http_conn_reserve);
}

static int
set_http_header_timeout(struct config_ctx *ctx, char **argv)
{
	return config_uint(ctx, "http-header-timeout", argv[0], 1, 3600,
	    &ctx->conf->http_header_timeout_s);
}

static int
set_http_idle_timeout(struct config_ctx *ctx, char **argv)
{
	return config_uint(ctx, "http-idle-timeout", argv[0], 1, 3600,
	    &ctx->conf->http_idle_timeout_s);
}

static int
set_dhcp_mode(struct config_ctx *ctx, char **argv)
{
	static const char *const modes[] = { "off", "proxy", "full" };

	for (size_t i = 0; i < 3; i++) {
		if (strcmp(argv[0], modes[i]) == 0) {
			ctx->conf->dhcp_mode = (enum dhcp_mode)i;
			return 0;
		}
	}
	return config_error(ctx, "dhcp-mode: '%s' is not one of off, proxy, "
	    "full", argv[0]);
}

static int
set_dhcp_interface(struct config_ctx *ctx, char **argv)
{
	size_t n = strlen(argv[0]);

	if (n == 0 || n >= sizeof(ctx->conf->dhcp_interface) ||
	    strchr(argv[0], '/') != NULL)
		return config_error(ctx, "dhcp-interface: '%s' is not an "
		    "interface name", argv[0]);
	memcpy(ctx->conf->dhcp_interface, argv[0], n + 1);
	return 0;
}

static int
set_dhcp_range(struct config_ctx *ctx, char **argv)
{
	struct hvd_config *c = ctx->conf;
	struct in_addr a, b;
	int r;

	if ((r = config_ipv4(ctx, "dhcp-range", argv[0], c->dhcp_range_start,
	    sizeof(c->dhcp_range_start))) < 0 ||
	    (r = config_ipv4(ctx, "dhcp-range", argv[1], c->dhcp_range_end,
	    sizeof(c->dhcp_range_end))) < 0)
		return r;
	inet_pton(AF_INET, argv[0], &a);
	inet_pton(AF_INET, argv[1], &b);
	if (ntohl(a.s_addr) > ntohl(b.s_addr))
		return config_error(ctx, "dhcp-range: %s is after %s", argv[0],
		    argv[1]);
	return 0;
}

static int
set_dhcp_router(struct config_ctx *ctx, char **argv)
{
	return config_ipv4(ctx, "dhcp-router", argv[0], ctx->conf->dhcp_router,
	    sizeof(ctx->conf->dhcp_router));
}

static int
set_dhcp_dns(struct config_ctx *ctx, char **argv)
{
	return config_ipv4(ctx, "dhcp-dns", argv[0], ctx->conf->dhcp_dns,
	    sizeof(ctx->conf->dhcp_dns));
}

static int
set_dhcp_lease_time(struct config_ctx *ctx, char **argv)
{
	return config_uint(ctx, "dhcp-lease-time", argv[0], 60, 7 * 86400,
	    &ctx->conf->dhcp_lease_s);
}

/* N addresses, or P% of dhcp-range. */
static int
set_dhcp_offer_max(struct config_ctx *ctx, char **argv)
{
	char num[16];
	size_t n = strlen(argv[0]);
	bool pct = n > 0 && argv[0][n - 1] == '%';
	uint64_t v;

	if (pct)
		n--;
	if (n == 0 || n >= sizeof(num))
		goto bad;
	memcpy(num, argv[0], n);
	num[n] = '\0';
	if (parse_u64(num, 0, pct ? 100 : 65536, &v) < 0)
		goto bad;
	ctx->conf->dhcp_offer_max = (unsigned)v;
	ctx->conf->dhcp_offer_max_pct = pct;
	return 0;
bad:
	return config_error(ctx, "dhcp-offer-max: '%s' is not a number of "
	    "addresses in 0..65536 or a percentage in 0%%..100%%", argv[0]);
}

static int
set_dhcp_offer_rate(struct config_ctx *ctx, char **argv)
{
	return config_uint(ctx, "dhcp-offer-rate", argv[0], 1, 10000,
	    &ctx->conf->dhcp_offer_rate);
}

static int
set_api_body_max(struct config_ctx *ctx, char **argv)
{
	uint64_t v;

	if (parse_u64(argv[0], 1024, 16 * 1024 * 1024, &v) < 0)
		return config_error(ctx, "api-body-max: '%s' is not a byte count "
		    "in 1024..16777216", argv[0]);
	ctx->conf->api_body_max = (size_t)v;
	return 0;
}

static int
set_lab_auto_adopt(struct config_ctx *ctx, char **argv)
{
	if (strcmp(argv[0], "yes") == 0)
		ctx->conf->lab_auto_adopt = true;
	else if (strcmp(argv[0], "no") == 0)
		ctx->conf->lab_auto_adopt = false;
	else
		return config_error(ctx, "lab-auto-adopt: '%s' is not yes or no",
		    argv[0]);
	return 0;
}

static int
set_mesh_anchor(struct config_ctx *ctx, char **argv)
{
	if (strcmp(argv[0], "on") == 0)
		ctx->conf->mesh_anchor = true;
	else if (strcmp(argv[0], "off") == 0)
		ctx->conf->mesh_anchor = false;
	else
		return config_error(ctx, "mesh-anchor: '%s' is not on or off",
		    argv[0]);
	return 0;
}

static int
set_image_max_bytes(struct config_ctx *ctx, char **argv)
{
	if (parse_u64(argv[0], 1024 * 1024, 1ull << 40,
	    &ctx->conf->image_max_bytes) < 0)
		return config_error(ctx, "image-max-bytes: '%s' is not a byte "
		    "count in 1048576..1099511627776", argv[0]);
	return 0;
}

static int
set_log_level(struct config_ctx *ctx, char **argv)
{
	if (log_level_parse(argv[0], &ctx->conf->log_level) < 0)
		return config_error(ctx, "log-level: '%s' is not one of error, "
		    "warn, info, debug", argv[0]);
	return 0;
}

static int
set_api_tls(struct config_ctx *ctx, char **argv)
{
	if (strcmp(argv[0], "on") == 0)
		ctx->conf->api_tls = true;
	else if (strcmp(argv[0], "off") == 0)
		ctx->conf->api_tls = false;
	else
		return config_error(ctx, "api-tls: '%s' is not on or off",
		    argv[0]);
	return 0;
}

static int
set_tls_path(struct config_ctx *ctx, const char *key, const char *v,
    char *dst, size_t dstlen)
{
	if (v[0] != '/')
		return config_error(ctx, "%s: '%s' is not an absolute path", key,
		    v);
	if (strlen(v) >= dstlen)
		return config_error(ctx, "%s: path too long", key);
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int
set_api_tls_cert(struct config_ctx *ctx, char **argv)
{
	return set_tls_path(ctx, "api-tls-cert", argv[0],
	    ctx->conf->api_tls_cert, sizeof(ctx->conf->api_tls_cert));
}

static int
set_api_tls_key(struct config_ctx *ctx, char **argv)
{
	return set_tls_path(ctx, "api-tls-key", argv[0],
	    ctx->conf->api_tls_key, sizeof(ctx->conf->api_tls_key));
}

static int
set_api_plaintext_tokens(struct config_ctx *ctx, char **argv)
{
	if (strcmp(argv[0], "loopback") == 0)
		ctx->conf->api_plaintext_tokens_loopback = true;
	else if (strcmp(argv[0], "none") == 0)
		ctx->conf->api_plaintext_tokens_loopback = false;
	else
		return config_error(ctx, "api-plaintext-tokens: '%s' is not none "
		    "or loopback", argv[0]);
	return 0;
}

static const struct config_keyword config_keywords[] = {
	{ "state-dir", 1, set_state_dir },
	{ "api-socket", 1, set_api_socket },
	{ "api-socket-mode", 1, set_api_socket_mode },
	{ "api-socket-peer-role", 1, set_api_socket_peer_role },
	{ "api-listen", 1, set_api_listen },
	{ "api-body-max", 1, set_api_body_max },
	{ "api-tls", 1, set_api_tls },
	{ "api-tls-cert", 1, set_api_tls_cert },
	{ "api-tls-key", 1, set_api_tls_key },
	{ "api-plaintext-tokens", 1, set_api_plaintext_tokens },
	{ "log-level", 1, set_log_level },
	{ "agent-listen", 1, set_agent_listen },
	{ "agent-heartbeat-ms", 1, set_agent_heartbeat },
	{ "telemetry-step", 1, set_telemetry_step },
	{ "telemetry-retention", 1, set_telemetry_retention },
	{ "events-max-age", 1, set_events_max_age },
	{ "events-max-rows", 1, set_events_max_rows },
	{ "boot-root", 1, set_boot_root },
	{ "boot-server", 1, set_boot_server },
	{ "boot-templates", 1, set_boot_templates },
	{ "source-archive", 1, set_source_archive },
	{ "alpine-mirror", 1, set_alpine_mirror },
	{ "boot-http-listen", 1, set_boot_http_listen },
	{ "tftp-listen", 1, set_tftp_listen },
	{ "tftp-blksize-max", 1, set_tftp_blksize_max },
	{ "tftp-windowsize-max", 1, set_tftp_windowsize_max },
	{ "tftp-timeout-ms", 1, set_tftp_timeout_ms },
	{ "tftp-retries", 1, set_tftp_retries },
	{ "dhcp-mode", 1, set_dhcp_mode },
	{ "dhcp-interface", 1, set_dhcp_interface },
	{ "dhcp-range", 2, set_dhcp_range },
	{ "dhcp-router", 1, set_dhcp_router },
	{ "dhcp-dns", 1, set_dhcp_dns },
	{ "dhcp-lease-time", 1, set_dhcp_lease_time },
	{ "dhcp-offer-max", 1, set_dhcp_offer_max },
	{ "dhcp-offer-rate", 1, set_dhcp_offer_rate },
	{ "lab-auto-adopt", 1, set_lab_auto_adopt },
	{ "mesh-anchor", 1, set_mesh_anchor },
	{ "image-max-bytes", 1, set_image_max_bytes },
	{ "http-conn-max", 1, set_http_conn_max },
	{ "http-conn-per-ip", 1, set_http_conn_per_ip },
	{ "http-conn-reserve", 1, set_http_conn_reserve },
	{ "http-header-timeout", 1, set_http_header_timeout },
	{ "http-idle-timeout", 1, set_http_idle_timeout },
};

struct hvd_config *
config_new(void)
{
	struct hvd_config *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/hypervisor");
	snprintf(c->api_socket, sizeof(c->api_socket), "/run/hypervisor/hvd.sock");
	c->api_socket_mode = 0660;
	c->api_socket_peer_role = API_ROLE_READ;
	c->api_body_max = 64 * 1024;
	c->api_tls = true;
	c->log_level = LOG_LEVEL_INFO;
	c->heartbeat_ms = 5000;
	c->mesh_anchor = true;
	c->image_max_bytes = 8ull << 30;
	c->telemetry_step_s = 60;
	c->telemetry_retention_s = 6 * 3600;
	c->events_max_age_s = 90 * 86400;
	c->events_max_rows = 100000;
	snprintf(c->boot_root, sizeof(c->boot_root), "/var/lib/hypervisor/boot");
	snprintf(c->boot_templates, sizeof(c->boot_templates),
	    "/etc/hypervisor/ipxe");
	/* The Debian package puts this build's source there (debian/rules). */
	snprintf(c->source_archive, sizeof(c->source_archive),
	    "/usr/share/hypervisor/hypervisor-source.tar.gz");
	snprintf(c->alpine_mirror, sizeof(c->alpine_mirror),
	    "/var/lib/hypervisor/alpine");
	/* 1468 = a 1500-byte MTU minus IPv4, UDP and TFTP headers. */
	c->tftp_blksize_max = 1468;
	c->tftp_windowsize_max = 16;
	c->tftp_timeout_ms = 1000;
	c->tftp_retries = 5;
	c->dhcp_lease_s = 3600;
	c->dhcp_offer_max = 50;
	c->dhcp_offer_max_pct = true;
	c->dhcp_offer_rate = 10;
	c->http_conn_max = 1024;
	c->http_conn_per_ip = 32;
	c->http_conn_reserve = 64;
	c->http_header_timeout_s = 10;
	c->http_idle_timeout_s = 60;
	return c;
}

void
config_free(struct hvd_config *conf)
{
	free(conf);
}

/* The embedded local configuration behind "hvd -L DIR" (the demo). */
void
config_local(struct hvd_config *conf, const char *dir)
{
	snprintf(conf->state_dir, sizeof(conf->state_dir), "%s/state", dir);
	snprintf(conf->api_socket, sizeof(conf->api_socket), "%s/hvd.sock", dir);
	conf->api_tcp = true;
	snprintf(conf->api_listen_host, sizeof(conf->api_listen_host),
	    "127.0.0.1");
	conf->api_listen_port = 8470;
	conf->agent_listen = true;
	snprintf(conf->agent_listen_host, sizeof(conf->agent_listen_host),
	    "127.0.0.1");
	conf->agent_listen_port = 8471;
	snprintf(conf->boot_root, sizeof(conf->boot_root), "%s/boot", dir);
	snprintf(conf->alpine_mirror, sizeof(conf->alpine_mirror), "%s/alpine",
	    dir);
	/* Local mode runs on a workstation: it programs no VXLAN devices. */
	conf->mesh_anchor = false;
}

/* Splits one line in place; returns the token count or -EINVAL. */
static int
config_tokenize(struct config_ctx *ctx, char *s, char **argv, int max)
{
	int argc = 0;

	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '#')
			return argc;
		if (argc == max)
			return config_error(ctx, "too many words on one line");
		if (*s == '"') {
			argv[argc++] = ++s;
			while (*s && *s != '"')
				s++;
			if (*s != '"')
				return config_error(ctx, "unterminated quote");
			*s++ = '\0';
			if (*s != '\0' && *s != ' ' && *s != '\t')
				return config_error(ctx, "text after closing quote");
			continue;
		}
		argv[argc++] = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
		if (*s)
			*s++ = '\0';
	}
}

static int
config_line(struct config_ctx *ctx, char *line)
{
	char *argv[CONFIG_MAX_ARGS];
	const struct config_keyword *kw = NULL;
	size_t k;
	int argc;

	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t')
			return config_error(ctx, "control character in line");
	if ((argc = config_tokenize(ctx, line, argv, CONFIG_MAX_ARGS)) <= 0)
		return argc;
	for (k = 0; k < sizeof(config_keywords) / sizeof(*config_keywords); k++) {
		if (strcmp(argv[0], config_keywords[k].name) == 0) {
			kw = &config_keywords[k];
			break;
		}
	}
	if (kw == NULL)
		return config_error(ctx, "unknown keyword '%.64s'", argv[0]);
	if (ctx->seen[k])
		return config_error(ctx, "%s: already set on line %u", kw->name,
		    ctx->seen[k]);
	if (argc - 1 != kw->nargs)
		return config_error(ctx, "%s: expects %d value%s, got %d",
		    kw->name, kw->nargs, kw->nargs == 1 ? "" : "s", argc - 1);
	ctx->seen[k] = ctx->line;
	return kw->set(ctx, argv + 1);
}

int
config_parse(struct hvd_config *conf, const char *buf, size_t len,
    const char *fname, char *err, size_t errlen)
{
	struct config_ctx ctx = { conf, fname, 0, err, errlen, { 0 } };
	char line[CONFIG_LINE_MAX + 1];
	size_t pos = 0;
	int r;

	_Static_assert(sizeof(ctx.seen) / sizeof(*ctx.seen) >=
	    sizeof(config_keywords) / sizeof(*config_keywords),
	    "config_ctx.seen too small");
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		size_t next = pos + n + (nl ? 1 : 0);

		ctx.line++;
		if (n > CONFIG_LINE_MAX)
			return config_error(&ctx, "line longer than %d bytes",
			    CONFIG_LINE_MAX);
		memcpy(line, buf + pos, n);
		line[n] = '\0';
		if (strlen(line) != n)
			return config_error(&ctx, "NUL byte in line");
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = '\0';
		if ((r = config_line(&ctx, line)) < 0)
			return r;
		pos = next;
	}
	for (size_t k = 0; k < sizeof(config_keywords) / sizeof(*config_keywords); k++)
		if (strcmp(config_keywords[k].name, "alpine-mirror") == 0 &&
		    ctx.seen[k] == 0 &&
		    snprintf(conf->alpine_mirror, sizeof(conf->alpine_mirror),
		    "%s/alpine", conf->state_dir) >= (int)sizeof(conf->alpine_mirror))
			return config_error(&ctx, "state-dir: too long to hold "
			    "alpine/");
	/* The boot root lives in the state dir unless named, so backing up
	 * state-dir backs up everything hvd serves. */
	for (size_t k = 0; k < sizeof(config_keywords) / sizeof(*config_keywords); k++)
		if (strcmp(config_keywords[k].name, "boot-root") == 0 &&
		    ctx.seen[k] == 0 &&
		    snprintf(conf->boot_root, sizeof(conf->boot_root), "%s/boot",
		    conf->state_dir) >= (int)sizeof(conf->boot_root))
			return config_error(&ctx, "state-dir: too long to hold "
			    "boot/");
	return 0;
}

int
config_validate(const struct hvd_config *conf, const char *fname, char *err,
    size_t errlen)
{
	if (conf->api_socket[0] == '\0' && !conf->api_tcp) {
		snprintf(err, errlen, "%s: no API listener: set api-socket or "
		    "api-listen", fname);
		return -EINVAL;
	}
	if ((conf->api_tls_cert[0] == '\0') != (conf->api_tls_key[0] == '\0')) {
		snprintf(err, errlen, "%s: api-tls-cert and api-tls-key go "
		    "together: set both or neither", fname);
		return -EINVAL;
	}
	if (!conf->api_tls && conf->api_tls_cert[0] != '\0') {
		snprintf(err, errlen, "%s: api-tls-cert is set but api-tls is "
		    "off", fname);
		return -EINVAL;
	}
	if (conf->dhcp_mode != DHCP_OFF && conf->dhcp_interface[0] == '\0') {
		snprintf(err, errlen, "%s: dhcp-mode %s needs dhcp-interface",
		    fname, conf->dhcp_mode == DHCP_PROXY ? "proxy" : "full");
		return -EINVAL;
	}
	if (conf->dhcp_mode == DHCP_FULL && conf->dhcp_range_start[0] == '\0') {
		snprintf(err, errlen, "%s: dhcp-mode full needs dhcp-range",
		    fname);
		return -EINVAL;
	}
	if (conf->http_conn_reserve >= conf->http_conn_max) {
		snprintf(err, errlen, "%s: http-conn-reserve (%u) must be below "
		    "http-conn-max (%u)", fname, conf->http_conn_reserve,
		    conf->http_conn_max);
		return -EINVAL;
	}
	if (conf->telemetry_retention_s < conf->telemetry_step_s) {
		snprintf(err, errlen, "%s: telemetry-retention (%us) is shorter "
		    "than telemetry-step (%us)", fname, conf->telemetry_retention_s,
		    conf->telemetry_step_s);
		return -EINVAL;
	}
	if (conf->api_socket[0] != '\0' &&
	    strncmp(conf->api_socket, conf->state_dir, strlen(conf->state_dir)) == 0 &&
	    conf->api_socket[strlen(conf->state_dir)] == '/') {
		/* The state dir is 0700 and backed up; a socket there is
		 * unreachable by the group the socket mode means to admit. */
		if ((conf->api_socket_mode & 0077) != 0) {
			snprintf(err, errlen, "%s: api-socket %s is inside "
			    "state-dir, where api-socket-mode %04o cannot admit "
			    "anyone but hvd's user", fname, conf->api_socket,
			    conf->api_socket_mode);
			return -EINVAL;
		}
	}
	return 0;
}

struct hvd_config *
config_load(const char *path, char *err, size_t errlen)
{
	struct hvd_config *conf = NULL;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if ((buf = malloc(HVD_CONF_MAX_BYTES + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	while ((n = read(fd, buf + len, HVD_CONF_MAX_BYTES + 1 - len)) > 0) {
		len += (size_t)n;
		if (len > HVD_CONF_MAX_BYTES) {
			snprintf(err, errlen, "%s: larger than %d bytes", path,
			    HVD_CONF_MAX_BYTES);
			goto fail;
		}
	}
	if (n < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if ((conf = config_new()) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	if (config_parse(conf, buf, len, path, err, errlen) < 0 ||
	    config_validate(conf, path, err, errlen) < 0)
		goto fail;
	free(buf);
	close(fd);
	return conf;
fail:
	config_free(conf);
	free(buf);
	if (fd != -1)
		close(fd);
	errno = EINVAL;
	return NULL;
}

const char *
config_restart_needed(const struct hvd_config *old, const struct hvd_config *new)
{
	if (strcmp(old->state_dir, new->state_dir) != 0)
		return "state-dir";
	if (strcmp(old->api_socket, new->api_socket) != 0)
		return "api-socket";
	if (old->api_socket_mode != new->api_socket_mode)
		return "api-socket-mode";
	if (old->api_tcp != new->api_tcp ||
	    strcmp(old->api_listen_host, new->api_listen_host) != 0 ||
	    old->api_listen_port != new->api_listen_port)
		return "api-listen";
	if (old->api_tls != new->api_tls ||
	    strcmp(old->api_tls_cert, new->api_tls_cert) != 0 ||
	    strcmp(old->api_tls_key, new->api_tls_key) != 0)
		return "api-tls, api-tls-cert or api-tls-key";
	if (old->agent_listen != new->agent_listen ||
	    strcmp(old->agent_listen_host, new->agent_listen_host) != 0 ||
	    old->agent_listen_port != new->agent_listen_port)
		return "agent-listen";
	if (old->heartbeat_ms != new->heartbeat_ms)
		return "agent-heartbeat-ms";
	if (old->http_conn_max != new->http_conn_max ||
	    old->http_conn_per_ip != new->http_conn_per_ip ||
	    old->http_conn_reserve != new->http_conn_reserve ||
	    old->http_header_timeout_s != new->http_header_timeout_s ||
	    old->http_idle_timeout_s != new->http_idle_timeout_s)
		return "http-conn-max, http-conn-per-ip, http-conn-reserve, "
		    "http-header-timeout or http-idle-timeout";
	if (old->telemetry_step_s != new->telemetry_step_s ||
	    old->telemetry_retention_s != new->telemetry_retention_s)
		return "telemetry-step or telemetry-retention";
	if (old->tftp != new->tftp || old->tftp_port != new->tftp_port ||
	    strcmp(old->tftp_host, new->tftp_host) != 0)
		return "tftp-listen";
	if (old->boot_http != new->boot_http ||
	    old->boot_http_port != new->boot_http_port ||
	    strcmp(old->boot_http_host, new->boot_http_host) != 0)
		return "boot-http-listen";
	if (old->dhcp_mode != new->dhcp_mode ||
	    strcmp(old->dhcp_interface, new->dhcp_interface) != 0)
		return "dhcp-mode or dhcp-interface";
	if (strcmp(old->boot_root, new->boot_root) != 0)
		return "boot-root";
	if (old->mesh_anchor != new->mesh_anchor)
		return "mesh-anchor";
	return NULL;
}
