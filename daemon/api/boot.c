/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * HTTP boot: the stage-1 and stage-2 iPXE scripts and the boot files
 * (iPXE binaries, xen, vmlinuz, initramfs, modloop) from the boot root.
 *
 * Stage 1 (GET /boot/ipxe) is the same for every machine.  Stage 2 (the
 * same path with ?mac=...&uuid=...) is rendered per machine from the
 * templates in ipxe/, which an operator may override in boot-templates;
 * an unknown machine gets the discovery profile, and a missing boot file
 * gets a script that says so on the machine's console.
 *
 * Files are opened by the one rule for served files (net/served.c:
 * beneath the root, non-blocking, regular files only, symlinks only inside
 * the root), and sent zero-copy with HEAD, Range, ETag
 * and Last-Modified.  Must never: serve a path that resolves outside the
 * boot root, put an unvalidated client value into a script, or block
 * (files go out by sendfile from libmicrohttpd).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "rest.h"

struct ipxe_template {
	const char *name;
	const char *text;
};
extern const struct ipxe_template ipxe_templates[];

/* Boot files hvd knows about, in boot order. */
static const char *const boot_files[] = { "undionly.kpxe", "ipxe.efi",
    "snponly.efi", "xen", "vmlinuz", "initramfs", "modloop" };
/* The ones stage 2 cannot boot without. */
static const char *const boot_required[] = { "xen", "vmlinuz", "initramfs" };

enum { TPL_STAGE1, TPL_STAGE2, TPL_DISCOVERY, TPL_MISSING, TPL__MAX };
static const char *const boot_tpl_names[] = { "stage1", "stage2", "discovery",
    "missing" };

static int boot_rootfd = -1;
static int boot_mirrorfd = -1;		/* -1: no Alpine mirror */
static int boot_imagesfd = -1;		/* state-dir/images: VM images */
static char *boot_tpl[TPL__MAX];	/* owned copies */
static struct hvd *boot_hvd;

/* Reads an override template if the operator put one in boot-templates. */
static char *
boot_template_load(const char *dir, const char *name)
{
	char path[PATH_MAX], *buf = NULL;
	struct stat st;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.ipxe", dir, name);
	if ((f = fopen(path, "re")) == NULL)
		return NULL;
	if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size > 0 && st.st_size < 65536 &&
	    (buf = calloc(1, (size_t)st.st_size + 1)) != NULL &&
	    fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf)
		log_info("boot: using the operator's template %s", path);
	return buf;
}

static int
boot_templates_load(const char *dir)
{
	static const char *const probe[] = { "hvd", "http://x", "host", "h",
	    "mac", "m", "uuid", "u", "missing", "f", NULL };
	char err[128], *out;

	for (int t = 0; t < TPL__MAX; t++) {
		const struct ipxe_template *e;

		free(boot_tpl[t]);
		if ((boot_tpl[t] = boot_template_load(dir, boot_tpl_names[t])) ==
		    NULL) {
			for (e = ipxe_templates; e->name; e++)
				if (strcmp(e->name, boot_tpl_names[t]) == 0)
					break;
			if (e->name == NULL || (boot_tpl[t] = strdup(e->text)) == NULL)
				return -ENOENT;
		}
		if (boot_render(boot_tpl[t], probe, &out, err, sizeof(err)) < 0) {
			log_warnx("boot: template %s: %s", boot_tpl_names[t], err);
			return -EINVAL;
		}
		free(out);
	}
	return 0;
}

/* Copies Debian's iPXE binaries into the boot root when missing there.
 * Start-up only: a few hundred KiB of blocking I/O before the loop runs. */
static void
boot_install_ipxe(const char *from)
{
	static const char *const names[] = { "undionly.kpxe", "ipxe.efi",
	    "snponly.efi" };
	char buf[65536], src[PATH_MAX], tmp[64];
	ssize_t n;

	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		int in, out;

		if (faccessat(boot_rootfd, names[i], F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			continue;
		snprintf(src, sizeof(src), "%s/%s", from, names[i]);
		if ((in = open(src, O_RDONLY | O_CLOEXEC)) == -1)
			continue;
		snprintf(tmp, sizeof(tmp), ".%s.tmp", names[i]);
		out = openat(boot_rootfd, tmp, O_WRONLY | O_CREAT | O_TRUNC |
		    O_CLOEXEC | O_NOFOLLOW, 0644);
		while (out != -1 && (n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)n) != n)
				break;
		if (out != -1 && close(out) == 0 &&
		    renameat(boot_rootfd, tmp, boot_rootfd, names[i]) == 0)
			log_info("boot: installed %s from %s", names[i], src);
		else
			unlinkat(boot_rootfd, tmp, 0);
		close(in);
	}
}

int
boot_init(struct hvd *hvd)
{
	const struct hvd_config *c = hvd->conf;
	int r;

	boot_hvd = hvd;
	if (mkdir(c->boot_root, 0755) == -1 && errno != EEXIST) {
		log_warn("boot: %s", c->boot_root);
		return -errno;
	}
	if ((boot_rootfd = open(c->boot_root, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1) {
		log_warn("boot: %s", c->boot_root);
		return -errno;
	}
	boot_install_ipxe(HVD_IPXE_DIR);
	/* The image store, served to agents by content hash. */
	{
		char images[PATH_MAX];

		snprintf(images, sizeof(images), "%s/images", c->state_dir);
		(void)mkdir(images, 0700);
		boot_imagesfd = open(images, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	/* The mirror is optional: served only when the directory exists. */
	if ((boot_mirrorfd = open(c->alpine_mirror, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) != -1)
		log_info("boot: serving the Alpine mirror %s at /alpine/",
		    c->alpine_mirror);
	if ((r = boot_templates_load(c->boot_templates)) < 0)
		return r;
	return 0;
}

void
boot_shutdown(void)
{
	for (int t = 0; t < TPL__MAX; t++) {
		free(boot_tpl[t]);
		boot_tpl[t] = NULL;
	}
	if (boot_rootfd != -1)
		close(boot_rootfd);
	if (boot_mirrorfd != -1)
		close(boot_mirrorfd);
	if (boot_imagesfd != -1)
		close(boot_imagesfd);
	boot_rootfd = boot_mirrorfd = boot_imagesfd = -1;
	boot_hvd = NULL;
}

/* Where a boot file came from: the .NAME.source line hvctl boot import
 * wrote, or the iPXE package for the binaries hvd installed itself. */
static const char *
boot_source(const char *name, char *text, size_t len)
{
	struct stat st;
	char path[80];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), ".%s.source", name);
	if ((fd = served_open(boot_rootfd, path, &st)) < 0)
		return strstr(name, "pxe") || strstr(name, ".efi") ?
		    "Debian ipxe package (" HVD_IPXE_DIR ")" : NULL;
	n = read(fd, text, len - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	text[n] = '\0';
	text[strcspn(text, "\n")] = '\0';
	return text;
}

json_t *
boot_status_json(void)
{
	json_t *files = json_array(), *missing = json_array();
	char source[512];
	struct stat st;

	for (size_t i = 0; i < sizeof(boot_files) / sizeof(*boot_files); i++) {
		/* Present means servable: the same rule as serving it. */
		int fd = served_open(boot_rootfd, boot_files[i], &st);
		bool present = fd >= 0;

		if (fd >= 0)
			close(fd);
		json_array_append_new(files, present ?
		    json_pack("{s:s, s:b, s:I, s:o, s:s?}", "name", boot_files[i],
		    "present", 1, "size", (json_int_t)st.st_size,
		    "mtime", api_time_json(st.st_mtime), "source",
		    boot_source(boot_files[i], source, sizeof(source))) :
		    json_pack("{s:s, s:b}", "name", boot_files[i], "present", 0));
		if (!present)
			json_array_append_new(missing, json_string(boot_files[i]));
	}
	char url[ADDR_STRLEN];

	if (boot_hvd && boot_hvd->conf->boot_http)
		addr_boot_url(boot_hvd, url, sizeof(url));
	return json_pack("{s:s, s:s?, s:o, s:o, s:s?}", "root",
	    boot_hvd ? boot_hvd->conf->boot_root : "", "url",
	    boot_hvd && boot_hvd->conf->boot_http ? url : NULL,
	    "files", files, "missing", missing, "alpine_mirror",
	    boot_mirrorfd != -1 ? boot_hvd->conf->alpine_mirror : NULL);
}

static void
boot_script(struct http_reply *rep, int tpl, const char *const *vars)
{
	char err[128], *text = NULL;

	if (boot_render(boot_tpl[tpl], vars, &text, err, sizeof(err)) < 0 ||
	    (rep->blob = blob_new(text, strlen(text))) == NULL) {
		free(text);
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "template %s: %s",
		    boot_tpl_names[tpl], err);
		return;
	}
	free(text);
	rep->status = MHD_HTTP_OK;
	rep->content_type = "text/plain; charset=utf-8";
}

struct boot_query_ctx {
	struct boot_query q;
	char err[160];
	int r;
};

static void
boot_query_cb(void *arg, const char *key, const char *value)
{
	struct boot_query_ctx *c = arg;

	if (c->r == 0)
		c->r = boot_query_set(&c->q, key, value, c->err, sizeof(c->err));
}

static void
boot_stage2(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	struct boot_query_ctx c = { 0 };
	struct host_row h;
	char url[ADDR_STRLEN];
	const char *name;
	const char *vars[] = { "hvd", url, "host", NULL, "mac", NULL, "uuid",
	    NULL, "missing", "", NULL };
	struct stat st;
	bool known;
	int r;

	addr_boot_url(hvd, url, sizeof(url));
	req->query_each(req, boot_query_cb, &c);
	if (c.r == 0)
		c.r = boot_query_check(&c.q, c.err, sizeof(c.err));
	if (c.r < 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "%s", c.err);
		return;
	}
	if ((r = ident_boot(hvd, &c.q, req->peer, true, &h)) == -EPERM) {
		log_warnx("boot: %s (uuid %s): refused: its fingerprint was "
		    "retired or replaced", c.q.mac, c.q.uuid[0] ? c.q.uuid : "none");
		db_event_record(hvd->db, "boot.refused", c.q.mac, "boot",
		    "stage 2 refused: retired fingerprint", hvd_now_wall());
		http_error(rep, MHD_HTTP_FORBIDDEN, "this machine was retired or "
		    "replaced; ask the operator");
		return;
	}
	if (r < 0) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "database error");
		return;
	}
	known = h.name[0] && strcmp(h.state, "retired") != 0;
	name = known ? h.name : "discovery";
	vars[3] = name;
	vars[5] = c.q.mac;
	vars[7] = c.q.uuid;
	for (size_t i = 0; i < sizeof(boot_required) / sizeof(*boot_required); i++) {
		int fd = served_open(boot_rootfd, boot_required[i], &st);

		if (fd >= 0)
			close(fd);
		if (fd < 0) {
			vars[9] = boot_required[i];
			log_warnx("boot: %s (%s): cannot boot: %s is missing in %s",
			    name, c.q.mac, boot_required[i], hvd->conf->boot_root);
			boot_script(rep, TPL_MISSING, vars);
			return;
		}
	}
	log_info("boot: stage 2 for %s (%s, uuid %s, %s)", name, c.q.mac,
	    c.q.uuid[0] ? c.q.uuid : "none", c.q.buildarch[0] ?
	    c.q.buildarch : "arch unknown");
	boot_script(rep, known ? TPL_STAGE2 : TPL_DISCOVERY, vars);
}

static bool
boot_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || s[0] == '.')
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._+-") == n;
}

/* A mirror path: names as above joined by single '/', nothing hidden. */
static bool
boot_path_valid(const char *s)
{
	char part[65];
	size_t n;

	if (strlen(s) > 512)
		return false;
	while (*s) {
		n = strcspn(s, "/");
		if (n == 0 || n >= sizeof(part))
			return false;
		memcpy(part, s, n);
		part[n] = '\0';
		if (!boot_name_valid(part))
			return false;
		s += n;
		if (*s == '/' && *++s == '\0')
			return false;
	}
	return true;
}

static void
boot_header(struct http_reply *rep, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
boot_header(struct http_reply *rep, const char *fmt, ...)
{
	va_list ap;

	for (size_t i = 0; i < HTTP_EXTRA_HEADERS; i++) {
		if (rep->header[i][0])
			continue;
		va_start(ap, fmt);
		vsnprintf(rep->header[i], sizeof(rep->header[i]), fmt, ap);
		va_end(ap);
		return;
	}
}

static void
boot_file(const struct http_request *req, struct http_reply *rep, int dirfd,
    const char *name)
{
	const char *inm, *ims, *range;
	char etag[64], lm[40];
	uint64_t off = 0, len;
	struct stat st;
	struct tm tm;
	int fd, r;

	if (dirfd == boot_rootfd ? !boot_name_valid(name) :
	    !boot_path_valid(name)) {
		http_error(rep, MHD_HTTP_NOT_FOUND, "no such boot file");
		return;
	}
	if ((fd = served_open(dirfd, name, &st)) < 0) {
		if (fd == -EXDEV || fd == -ELOOP)
			log_warnx("boot: refused %s: it leads out of the boot root",
			    name);
		else if (fd == -EINVAL)
			log_warnx("boot: refused %s: not a regular file", name);
		http_error(rep, MHD_HTTP_NOT_FOUND, "no boot file '%s'", name);
		return;
	}
	snprintf(etag, sizeof(etag), "\"%llx-%llx-%llx\"",
	    (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
	    (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
	    (unsigned long long)st.st_mtim.tv_nsec);
	gmtime_r(&st.st_mtime, &tm);
	strftime(lm, sizeof(lm), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	boot_header(rep, "ETag: %s", etag);
	boot_header(rep, "Last-Modified: %s", lm);
	boot_header(rep, "Accept-Ranges: bytes");
	rep->content_type = "application/octet-stream";
	inm = req->header(req, MHD_HTTP_HEADER_IF_NONE_MATCH);
	ims = req->header(req, MHD_HTTP_HEADER_IF_MODIFIED_SINCE);
	if ((inm && (strcmp(inm, etag) == 0 || strcmp(inm, "*") == 0)) ||
	    (inm == NULL && ims && strcmp(ims, lm) == 0)) {
		close(fd);
		rep->status = MHD_HTTP_NOT_MODIFIED;
		return;
	}
	len = (uint64_t)st.st_size;
	rep->status = MHD_HTTP_OK;
	if ((range = req->header(req, MHD_HTTP_HEADER_RANGE)) != NULL) {
		r = boot_range_parse(range, (uint64_t)st.st_size, &off, &len);
		if (r == -ERANGE) {
			close(fd);
			boot_header(rep, "Content-Range: bytes */%llu",
			    (unsigned long long)st.st_size);
			http_error(rep, MHD_HTTP_RANGE_NOT_SATISFIABLE,
			    "range not satisfiable for %s", name);
			return;
		}
		if (r == 0) {
			rep->status = MHD_HTTP_PARTIAL_CONTENT;
			boot_header(rep, "Content-Range: bytes %llu-%llu/%llu",
			    (unsigned long long)off,
			    (unsigned long long)(off + len - 1),
			    (unsigned long long)st.st_size);
		} else {
			off = 0;
			len = (uint64_t)st.st_size;
		}
	}
	rep->file_fd = fd;
	rep->file_off = off;
	rep->file_len = len;
}

void
boot_handle(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	const char *url = req->url;
	bool get = strcmp(req->method, "GET") == 0 ||
	    strcmp(req->method, "HEAD") == 0;

	if (strcmp(url, "/boot/ipxe") == 0) {
		rep->route = "/boot/ipxe";
		if (!get) {
			rep->allow = "GET, HEAD";
			http_error(rep, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only");
		} else if (req->query_each(req, NULL, NULL) == 0) {
			char base[ADDR_STRLEN];
			const char *vars[] = { "hvd", base, NULL };

			addr_boot_url(hvd, base, sizeof(base));

			boot_script(rep, TPL_STAGE1, vars);
		} else {
			boot_stage2(hvd, req, rep);
		}
		return;
	}
	if (strncmp(url, "/boot/files/", 12) == 0) {
		rep->route = "/boot/files/{}";
		if (!get) {
			rep->allow = "GET, HEAD";
			http_error(rep, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only");
			return;
		}
		boot_file(req, rep, boot_rootfd, url + 12);
		return;
	}
	if (strcmp(url, "/boot/discover") == 0) {
		boot_discover_handle(hvd, req, rep);
		return;
	}
	if (strncmp(url, "/ovl/", 5) == 0) {
		boot_ovl_handle(hvd, req, rep);
		return;
	}
	if (strncmp(url, "/images/", 8) == 0) {
		rep->route = "/images/{}";
		if (!get) {
			rep->allow = "GET, HEAD";
			http_error(rep, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only");
		} else if (boot_imagesfd == -1 || strlen(url + 8) != 64 ||
		    strspn(url + 8, "0123456789abcdef") != 64) {
			http_error(rep, MHD_HTTP_NOT_FOUND, "no such image");
		} else {
			boot_file(req, rep, boot_imagesfd, url + 8);
		}
		return;
	}
	if (strncmp(url, "/alpine/", 8) == 0) {
		rep->route = "/alpine/{}";
		if (!get) {
			rep->allow = "GET, HEAD";
			http_error(rep, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only");
		} else if (boot_mirrorfd == -1) {
			http_error(rep, MHD_HTTP_NOT_FOUND, "hvd serves no Alpine "
			    "mirror (create %s)", hvd->conf->alpine_mirror);
		} else {
			boot_file(req, rep, boot_mirrorfd, url + 8);
		}
		return;
	}
	http_error(rep, MHD_HTTP_NOT_FOUND, "no such resource");
}
