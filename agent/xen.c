/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The agent's libxl boundary: opening a libxl context in dom0 and reading
 * the hypervisor's physinfo for telemetry.
 *
 * Invariants: xen_open() touches libxl only after /proc/xen/capabilities
 * says "control_d", so on a host without Xen (or in a domU) it returns
 * -ENODEV without a word on stderr.  libxl's own messages go to log_debug;
 * the last error among them is kept and logged once, here, as part of the
 * one warning for a failed call (CONVENTIONS 5).  libxl ERROR_* codes never
 * leave this file.
 *
 * physinfo, the domain list and the version are synchronous hypercalls that
 * return in microseconds, so they are called straight from the agent's
 * loop.  VM operations (create, destroy, migrate) are long-running: when
 * they arrive, libxl must join the libevent loop through
 * libxl_osevent_register_hooks() and child processes through
 * libxl_childproc_setmode(), never through a thread (CONVENTIONS 10).
 *
 * Must never: call libxl outside dom0, let libxl write to stderr, or block
 * the loop on a libxl asynchronous operation.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libxl.h>
#include <xentoollog.h>

#include "agent.h"
#include "log.h"

/* Xen's page size on x86 and Arm, whatever dom0's kernel uses. */
#define XEN_PAGE_DEFAULT	4096
#define XEN_MSG_MAX		512

struct xen {
	xentoollog_logger lg;		/* first: libxl hands it back to us */
	libxl_ctx *ctx;
	char lasterr[XEN_MSG_MAX];	/* libxl's last error-level message */
	bool failing;			/* physinfo failure already logged */
};

static void xen_vmessage(xentoollog_logger *lg, xentoollog_level level,
    int errnoval, const char *context, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

static void
xen_vmessage(xentoollog_logger *lg, xentoollog_level level, int errnoval,
    const char *context, const char *fmt, va_list ap)
{
	struct xen *x = (struct xen *)(void *)lg;
	char msg[XEN_MSG_MAX];
	int n;

	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n >= 0 && errnoval > 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s",
		    strerror(errnoval));
	log_debug("xen: %s: %s", context ? context : "libxl", msg);
	if (level >= XTL_ERROR)
		memcpy(x->lasterr, msg, strlen(msg) + 1);
}

static void
xen_progress(xentoollog_logger *lg, const char *context,
    const char *doing_what, int percent, unsigned long done,
    unsigned long total)
{
	(void)lg;
	(void)context;
	(void)doing_what;
	(void)percent;
	(void)done;
	(void)total;
}

/* The logger is embedded in struct xen, which xen_close() frees. */
static void
xen_lg_destroy(xentoollog_logger *lg)
{
	(void)lg;
}

/* libxl's ERROR_* as a negative errno. */
static int
xen_errno(int rc)
{
	switch (rc) {
	case ERROR_NOMEM:
		return -ENOMEM;
	case ERROR_INVAL:
		return -EINVAL;
	case ERROR_NOTFOUND:
	case ERROR_DOMAIN_NOTFOUND:
		return -ENOENT;
	case ERROR_TIMEDOUT:
		return -ETIMEDOUT;
	default:
		return -EIO;
	}
}

static const char *
xen_why(const struct xen *x, int rc)
{
	static char buf[32];

	if (x->lasterr[0] != '\0')
		return x->lasterr;
	snprintf(buf, sizeof(buf), "libxl error %d", rc);
	return buf;
}

int
xen_open_at(int procfd, struct xen **out)
{
	struct xen *x = NULL;
	char caps[256];
	size_t len = 0;
	int r, rc;

	*out = NULL;
	/* xenfs lists "control_d" only in dom0; no file means no Xen. */
	r = procfs_read(procfd, "xen/capabilities", caps, sizeof(caps), &len);
	if ((r < 0 && r != -EFBIG) ||
	    memmem(caps, len, "control_d", 9) == NULL) {
		log_debug("xen: not a dom0 (/proc/xen/capabilities: %s)",
		    r < 0 ? strerror(-r) : "no control_d");
		r = -ENODEV;
		goto out;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	x->lg.vmessage = xen_vmessage;
	x->lg.progress = xen_progress;
	x->lg.destroy = xen_lg_destroy;
	if ((rc = libxl_ctx_alloc(&x->ctx, LIBXL_VERSION, 0, &x->lg)) != 0) {
		log_warnx("xen: cannot open libxl: %s", xen_why(x, rc));
		x->ctx = NULL;
		r = xen_errno(rc);
		goto out;
	}
	x->lasterr[0] = '\0';
	*out = x;
	x = NULL;
	r = 0;
out:
	xen_close(x);
	return r;
}

int
xen_open(struct xen **out)
{
	int procfd, r;

	if ((procfd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1) {
		*out = NULL;
		return -ENODEV;
	}
	r = xen_open_at(procfd, out);
	close(procfd);
	return r;
}

static void
xen_fail(struct xen *x, const char *what, int rc)
{
	if (!x->failing)
		log_warnx("xen: %s: %s; not reported until it recovers", what,
		    xen_why(x, rc));
	x->failing = true;
}

int
xen_physinfo(struct xen *x, json_t **out)
{
	const libxl_version_info *vi;
	libxl_dominfo *doms = NULL;
	libxl_physinfo pi;
	json_t *o = NULL;
	char version[64];
	uint64_t page;
	int ndoms = 0, rc, r;

	*out = NULL;
	libxl_physinfo_init(&pi);
	x->lasterr[0] = '\0';
	if ((rc = libxl_get_physinfo(x->ctx, &pi)) != 0) {
		xen_fail(x, "physinfo", rc);
		r = xen_errno(rc);
		goto out;
	}
	if ((doms = libxl_list_domain(x->ctx, &ndoms)) == NULL) {
		xen_fail(x, "list domains", ERROR_FAIL);
		r = -EIO;
		goto out;
	}
	/* Cached by libxl after the first call: no hypercall each sample. */
	if ((vi = libxl_get_version_info(x->ctx)) == NULL) {
		xen_fail(x, "version", ERROR_FAIL);
		r = -EIO;
		goto out;
	}
	page = vi->pagesize > 0 ? (uint64_t)vi->pagesize : XEN_PAGE_DEFAULT;
	/* xen_version_extra carries its own separator: ".2", "-rc". */
	snprintf(version, sizeof(version), "%d.%d%s", vi->xen_version_major,
	    vi->xen_version_minor, vi->xen_version_extra ?
	    vi->xen_version_extra : "");
	o = json_pack("{s:I, s:I, s:I, s:i, s:s}",
	    "total_memory_bytes", (json_int_t)(pi.total_pages * page),
	    "free_memory_bytes", (json_int_t)(pi.free_pages * page),
	    "nr_cpus", (json_int_t)pi.nr_cpus,
	    "nr_domains", ndoms,
	    "xen_version", version);
	if (o == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if (x->failing)
		log_info("xen: physinfo readable again");
	x->failing = false;
	*out = o;
	r = 0;
out:
	if (doms != NULL)
		libxl_dominfo_list_free(doms, ndoms);
	libxl_physinfo_dispose(&pi);
	return r;
}

libxl_ctx *
xen_ctx(struct xen *x)
{
	return x->ctx;
}

const char *
xen_lasterr(const struct xen *x)
{
	return x->lasterr;
}

void
xen_clear_err(struct xen *x)
{
	x->lasterr[0] = '\0';
}

void
xen_close(struct xen *x)
{
	if (x == NULL)
		return;
	libxl_ctx_free(x->ctx);
	free(x);
}
