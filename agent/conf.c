/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * /etc/hv/agent.conf and the agent key file.
 *
 * The same grammar as hvd.conf: "keyword value" lines, '#' comments, each
 * keyword once, errors as "FILE:LINE: message".  agent_conf_parse() is a
 * pure function over a buffer (fuzzed); agent_conf_load() and
 * agent_key_load() do the file I/O.
 *
 * Must never: log the boot token or the key; accept a key file that others
 * can read.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "agent_link.h"
#include "hostport.h"
#include "numparse.h"

struct conf_ctx {
	struct agent_conf *c;
	const char *fname;
	unsigned line;
	char *err;
	size_t errlen;
	unsigned seen[16];
};

static int conf_error(struct conf_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
conf_error(struct conf_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(ctx->err, ctx->errlen, "%s:%u: ", ctx->fname, ctx->line);
	if (n >= 0 && (size_t)n < ctx->errlen) {
		va_start(ap, fmt);
		vsnprintf(ctx->err + n, ctx->errlen - n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Port 0 cannot be dialled.  The messages predate hostport_parse. */
static int
set_hvd(struct conf_ctx *ctx, const char *v)
{
	char host[sizeof(ctx->c->hvd_host)], why[256];
	enum hostport_fault fault;
	uint16_t port;

	if (hostport_parse_fault(v, false, host, sizeof(host), &port, &fault,
	    why, sizeof(why)) < 0) {
		switch (fault) {
		case HOSTPORT_EMPTY:
		case HOSTPORT_NO_PORT:
			return conf_error(ctx, "hvd: '%s' is not ADDR:PORT", v);
		case HOSTPORT_ADDRESS:
			return conf_error(ctx, "hvd: '%s' is not a numeric "
			    "address", host);
		default:
			return conf_error(ctx, "hvd: %s", why);
		}
	}
	memcpy(ctx->c->hvd_host, host, sizeof(host));
	ctx->c->hvd_family = strchr(host, ':') != NULL ? AF_INET6 : AF_INET;
	ctx->c->hvd_port = port;
	return 0;
}

static int
set_hvd_key(struct conf_ctx *ctx, const char *v)
{
	size_t n = 0;

	if (strlen(v) != 64 || strspn(v, "0123456789abcdef") != 64 ||
	    sodium_hex2bin(ctx->c->hvd_key, 32, v, 64, NULL, &n, NULL) != 0 ||
	    n != 32)
		return conf_error(ctx, "hvd-key: not 64 lowercase hex digits");
	return 0;
}

static int
set_host(struct conf_ctx *ctx, const char *v)
{
	if (strlen(v) >= sizeof(ctx->c->host) || v[0] < 'a' || v[0] > 'z' ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(v))
		return conf_error(ctx, "host: '%.64s' is not a host name", v);
	memcpy(ctx->c->host, v, strlen(v) + 1);
	return 0;
}

static int
set_boot_token(struct conf_ctx *ctx, const char *v)
{
	if (strlen(v) != 68 || strncmp(v, "hvb_", 4) != 0 ||
	    strspn(v + 4, "0123456789abcdef") != 64)
		return conf_error(ctx, "boot-token: not a boot token (hvb_ and "
		    "64 hex digits)");
	memcpy(ctx->c->boot_token, v, 69);
	return 0;
}

static int
set_path(struct conf_ctx *ctx, const char *key, char *dst, size_t len,
    const char *v)
{
	if (v[0] != '/' || strlen(v) >= len)
		return conf_error(ctx, "%s: '%.64s' is not an absolute path", key, v);
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int
set_key_file(struct conf_ctx *ctx, const char *v)
{
	return set_path(ctx, "key-file", ctx->c->key_file,
	    sizeof(ctx->c->key_file), v);
}

static int
set_session_file(struct conf_ctx *ctx, const char *v)
{
	return set_path(ctx, "session-file", ctx->c->session_file,
	    sizeof(ctx->c->session_file), v);
}

static int
set_mesh_file(struct conf_ctx *ctx, const char *v)
{
	return set_path(ctx, "mesh-file", ctx->c->mesh_file,
	    sizeof(ctx->c->mesh_file), v);
}

static int
set_mesh_interval(struct conf_ctx *ctx, const char *v)
{
	if (parse_u32(v, 1, 3600, &ctx->c->mesh_interval_s) < 0)
		return conf_error(ctx, "mesh-interval: '%.32s' is not a number "
		    "of seconds in 1..3600", v);
	return 0;
}

/* http://ADDR[:PORT]/PATH with a numeric address: the discovery agent
 * resolves no names. */
static int
set_discovery_url(struct conf_ctx *ctx, const char *v)
{
	size_t n = strlen(v);

	if (strncmp(v, "http://", 7) != 0 || n >= sizeof(ctx->c->discovery_url) ||
	    strchr(v + 7, '/') == NULL || strspn(v, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:/.-_[]?=&") != n)
		return conf_error(ctx, "discovery-url: '%.64s' is not "
		    "http://ADDR[:PORT]/PATH[?QUERY]", v);
	memcpy(ctx->c->discovery_url, v, n + 1);
	return 0;
}

static int
set_discovery_reboot(struct conf_ctx *ctx, const char *v)
{
	if (strcmp(v, "yes") == 0)
		ctx->c->discovery_reboot = true;
	else if (strcmp(v, "no") == 0)
		ctx->c->discovery_reboot = false;
	else
		return conf_error(ctx, "discovery-reboot: '%.16s' is not yes or "
		    "no", v);
	return 0;
}

static int
set_fstab(struct conf_ctx *ctx, const char *v)
{
	return set_path(ctx, "fstab", ctx->c->fstab, sizeof(ctx->c->fstab), v);
}

static const struct {
	const char *name;
	int (*set)(struct conf_ctx *, const char *);
} conf_keywords[] = {
	{ "hvd", set_hvd },
	{ "hvd-key", set_hvd_key },
	{ "host", set_host },
	{ "boot-token", set_boot_token },
	{ "key-file", set_key_file },
	{ "session-file", set_session_file },
	{ "mesh-file", set_mesh_file },
	{ "mesh-interval", set_mesh_interval },
	{ "discovery-url", set_discovery_url },
	{ "discovery-reboot", set_discovery_reboot },
	{ "fstab", set_fstab },
};

void
agent_conf_defaults(struct agent_conf *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->key_file, sizeof(c->key_file), "/etc/hv/agent.key");
	snprintf(c->session_file, sizeof(c->session_file), "/run/hv/session");
	snprintf(c->mesh_file, sizeof(c->mesh_file), "/etc/hv/mesh.json");
	c->mesh_interval_s = 30;
	snprintf(c->fstab, sizeof(c->fstab), "/etc/fstab");
}

int
agent_conf_parse(struct agent_conf *c, const char *buf, size_t len,
    const char *fname, char *err, size_t errlen)
{
	struct conf_ctx ctx = { c, fname, 0, err, errlen, { 0 } };
	char line[512], *w[3], *p;
	size_t pos = 0;
	int nw, r;

	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		size_t k;

		ctx.line++;
		if (n >= sizeof(line))
			return conf_error(&ctx, "line longer than %zu bytes",
			    sizeof(line) - 1);
		memcpy(line, buf + pos, n);
		line[n] = '\0';
		pos += n + (nl ? 1 : 0);
		if (strlen(line) != n)
			return conf_error(&ctx, "NUL byte in line");
		for (p = line; *p; p++)
			if ((unsigned char)*p < 0x20 && *p != '\t' && *p != '\r')
				return conf_error(&ctx, "control character in line");
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		nw = 0;
		for (p = strtok(line, " \t\r"); p; p = strtok(NULL, " \t\r")) {
			if (nw == 3)
				return conf_error(&ctx, "too many words");
			w[nw++] = p;
		}
		if (nw == 0)
			continue;
		for (k = 0; k < sizeof(conf_keywords) / sizeof(*conf_keywords); k++)
			if (strcmp(w[0], conf_keywords[k].name) == 0)
				break;
		if (k == sizeof(conf_keywords) / sizeof(*conf_keywords))
			return conf_error(&ctx, "unknown keyword '%.32s'", w[0]);
		if (nw != 2)
			return conf_error(&ctx, "%s: expects one value", w[0]);
		if (ctx.seen[k])
			return conf_error(&ctx, "%s: already set on line %u", w[0],
			    ctx.seen[k]);
		ctx.seen[k] = ctx.line;
		if ((r = conf_keywords[k].set(&ctx, w[1])) < 0)
			return r;
	}
	if (!ctx.seen[0] || !ctx.seen[1] || !ctx.seen[2]) {
		snprintf(err, errlen, "%s: needs hvd, hvd-key and host", fname);
		return -EINVAL;
	}
	return 0;
}

static int
agent_read_file(const char *path, char *buf, size_t cap, size_t *len,
    bool secret)
{
	struct stat st;
	ssize_t n;
	int fd, r = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		return -errno;
	if (fstat(fd, &st) == -1)
		r = -errno;
	else if (secret && (st.st_mode & 077) != 0)
		r = -EPERM;
	else if ((size_t)st.st_size >= cap)
		r = -EFBIG;
	else if ((n = read(fd, buf, cap - 1)) < 0)
		r = -errno;
	else
		*len = (size_t)n;
	close(fd);
	return r;
}

int
agent_conf_load(struct agent_conf *c, const char *path, char *err,
    size_t errlen)
{
	char buf[8192];
	size_t len = 0;
	int r;

	agent_conf_defaults(c);
	if ((r = agent_read_file(path, buf, sizeof(buf), &len, false)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	r = agent_conf_parse(c, buf, len, path, err, errlen);
	sodium_memzero(buf, sizeof(buf));
	return r;
}

int
agent_key_load(const char *path, uint8_t key[32], char *err, size_t errlen)
{
	char buf[128];
	size_t len = 0, n = 0;
	int r;

	if ((r = agent_read_file(path, buf, sizeof(buf), &len, true)) < 0) {
		snprintf(err, errlen, "%s: %s", path, r == -EPERM ?
		    "readable by group or others; chmod 0600 it" : strerror(-r));
		return r;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	r = 0;
	if (len != 64 || sodium_hex2bin(key, 32, buf, 64, NULL, &n, NULL) != 0 ||
	    n != 32) {
		snprintf(err, errlen, "%s: not a key (64 hex digits)", path);
		r = -EINVAL;
	}
	sodium_memzero(buf, sizeof(buf));
	return r;
}
