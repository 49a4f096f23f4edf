/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The mesh applier: makes the kernel's vxlan<VNI>/br<VNI> devices and the
 * vxlan FDB match a mesh_state, over one NETLINK_ROUTE socket.
 *
 * The underlay is IPv4 or IPv6, one family per state (lib/mesh.h): the
 * vxlan device's local, the FDB remotes (4- or 16-byte NDA_DST) and the
 * MTU overhead (MESH_OVERHEAD or MESH_OVERHEAD6) follow the state's
 * family, and a device or remote of the other family is replaced.
 *
 * Each mesh_apply() dumps the links (libnl's link cache), the addresses of
 * the state's family (to find the underlay) and, per owned vxlan device,
 * its FDB; diffs them against the desired state, and sends only the
 * difference.
 * Requests are built with libnl-route (rtnl_link_vxlan_*, rtnl_neigh_*),
 * then queued into one buffer and sent many to a sendmsg; the kernel's
 * ACK for every one of them is read back and checked by sequence number.
 * Link changes go one at a time (each depends on the previous); FDB
 * changes go in batches of MA_BATCH, deletions first.
 *
 * FDB rules: the all-zero MAC holds one remote per VTEP, each added with
 * NLM_F_APPEND (NLM_F_REPLACE would keep one); a VM NIC's MAC holds
 * exactly one remote, set with NLM_F_REPLACE.  An entry with attributes
 * this module never sets (another port, VNI or ifindex, a non-permanent
 * state, several remotes on a unicast MAC) is deleted and re-added.
 *
 * Invariants: a device is owned only if its name is vxlan<VNI> or br<VNI>
 * (canonical decimal) AND its IFLA_IFALIAS is MESH_MARKER; nothing else is
 * ever changed or deleted.  A new device gets its alias right after its
 * creation (the kernel ignores IFLA_IFALIAS in a create request), and is
 * deleted again if that fails.  An unchanged state sends only dumps.
 *
 * Must never: touch a device it does not own, block without a bound (the
 * socket has a receive timeout), or leave ACKs unread on the socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_bridge.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/vxlan.h>
#include <netlink/route/neighbour.h>
#include <netlink/socket.h>

#include "log.h"
#include "mesh.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK		11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK		10
#endif

#define MA_BATCH	256		/* requests per sendmsg */
#define MA_SBUF		(64 * 1024)	/* batch bytes */
#define MA_RBUF		(64 * 1024)	/* one recv: a dump part or ACKs */
#define MA_RCVBUF	(4 * 1024 * 1024)	/* room for a batch of ACKs */
#define MA_TIMEOUT_S	5
#define MA_DUMP_TRIES	3
#define MA_LOG_FAILURES	8		/* logged per mesh_apply() */

enum ma_kind { MA_LINK_ADD, MA_LINK_CHANGE, MA_LINK_DEL, MA_FDB_ADD,
    MA_FDB_DEL };

/* What one queued request was, to count its ACK and name it on error. */
struct ma_pending {
	enum ma_kind kind;
	char dev[IFNAMSIZ];
	uint8_t mac[6];
	bool has_dst;
	struct in6_addr dst;		/* IPv4-mapped for IPv4 */
	bool quiet;			/* part of a creation: not counted */
	bool acked;
	int error;
};

struct mesh_applier {
	struct nl_sock *sk;
	int fd;
	uint8_t *sbuf, *rbuf;
	size_t slen;
	unsigned n;			/* queued requests */
	uint32_t seq0;			/* seq of pending[0] */
	struct ma_pending pending[MA_BATCH];
	/* Per mesh_apply() call. */
	struct mesh_stats *stats;
	char *err;
	size_t errlen;
	int r;				/* first failure */
	unsigned nfail;			/* failures this call */
	struct nl_cache *links;
};

/* One vxlan FDB remote as dumped. */
struct ma_fdb {
	uint8_t mac[6];
	bool has_dst, dst4;		/* an NDA_DST; it is 4 bytes */
	struct in6_addr dst;		/* IPv4-mapped when dst4 */
	bool odd;			/* something we never set */
	bool has_port, has_vni, has_ifindex;
	uint16_t port;			/* network order */
	uint32_t vni, ifindex;
};

struct ma_fdbvec {
	struct ma_fdb *v;
	size_t n, cap;
	int ifindex;
};

static int ma_fail(struct mesh_applier *ma, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* NLMSG_OK without its signed/unsigned mix. */
static bool
ma_nlmsg_ok(const struct nlmsghdr *h, int rem)
{
	return rem >= (int)NLMSG_HDRLEN && h->nlmsg_len >= NLMSG_HDRLEN &&
	    h->nlmsg_len <= (unsigned)rem;
}

/* Records the first failure of this apply (logged always). */
static int
ma_fail(struct mesh_applier *ma, int r, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* A broken batch would repeat one cause thousands of times. */
	if (ma->nfail++ < MA_LOG_FAILURES)
		log_warnx("mesh: %s", buf);
	if (ma->r == 0) {
		ma->r = r;
		if (ma->err && ma->errlen)
			snprintf(ma->err, ma->errlen, "%s", buf);
	}
	return r;
}

/* libnl's NLE_* to an errno, once, at the boundary. */
static int
ma_nlerr(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_PERM:
	case NLE_NOACCESS:
		return -EPERM;
	case NLE_EXIST:
		return -EEXIST;
	case NLE_NODEV:
	case NLE_OBJ_NOTFOUND:
		return -ENODEV;
	case NLE_INVAL:
	case NLE_MISSING_ATTR:
		return -EINVAL;
	case NLE_OPNOTSUPP:
		return -EOPNOTSUPP;
	case NLE_DUMP_INTR:
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_BUSY:
		return -EBUSY;
	default:
		return -EIO;
	}
}

int
mesh_applier_new(struct mesh_applier **out, char *err, size_t errlen)
{
	struct mesh_applier *ma;
	struct timeval tv = { MA_TIMEOUT_S, 0 };
	int one = 1, sz = MA_RCVBUF, r;

	*out = NULL;
	if ((ma = calloc(1, sizeof(*ma))) == NULL ||
	    (ma->sbuf = malloc(MA_SBUF)) == NULL ||
	    (ma->rbuf = malloc(MA_RBUF)) == NULL ||
	    (ma->sk = nl_socket_alloc()) == NULL) {
		snprintf(err, errlen, "mesh: out of memory");
		mesh_applier_free(ma);
		return -ENOMEM;
	}
	if ((r = nl_connect(ma->sk, NETLINK_ROUTE)) < 0) {
		snprintf(err, errlen, "mesh: netlink socket: %s",
		    nl_geterror(r));
		mesh_applier_free(ma);
		return ma_nlerr(r);
	}
	ma->fd = nl_socket_get_fd(ma->sk);
	/* Requests here take seqs of their own; libnl's count would differ. */
	nl_socket_disable_seq_check(ma->sk);
	/* Bigger than the ACKs of one batch; FORCE works with CAP_NET_ADMIN. */
	if (setsockopt(ma->fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		(void)setsockopt(ma->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	(void)setsockopt(ma->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(ma->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one,
	    sizeof(one));
	(void)setsockopt(ma->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one,
	    sizeof(one));
	*out = ma;
	return 0;
}

void
mesh_applier_free(struct mesh_applier *ma)
{
	if (ma == NULL)
		return;
	if (ma->sk)
		nl_socket_free(ma->sk);
	free(ma->sbuf);
	free(ma->rbuf);
	free(ma);
}

static const char *
ma_kind_str(enum ma_kind k)
{
	switch (k) {
	case MA_LINK_ADD:
		return "create";
	case MA_LINK_CHANGE:
		return "change";
	case MA_LINK_DEL:
		return "delete";
	case MA_FDB_ADD:
		return "fdb add";
	case MA_FDB_DEL:
		return "fdb delete";
	}
	return "?";
}

/* The kernel's extended-ACK message, if the reply carries one. */
static const char *
ma_extack(const struct nlmsghdr *h)
{
	const struct nlmsgerr *e = NLMSG_DATA(h);
	size_t off, len = h->nlmsg_len;
	const struct nlattr *a;
	int rem;

	if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
		return NULL;
	off = NLMSG_HDRLEN + sizeof(*e);
	if (!(h->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - NLMSG_HDRLEN;
	if (off >= len)
		return NULL;
	a = (const struct nlattr *)((const char *)h + NLMSG_ALIGN(off));
	rem = (int)(len - NLMSG_ALIGN(off));
	for (; nla_ok(a, rem); a = nla_next(a, &rem))
		if (nla_type(a) == NLMSGERR_ATTR_MSG && nla_len(a) > 0 &&
		    ((const char *)nla_data(a))[nla_len(a) - 1] == '\0')
			return nla_data(a);
	return NULL;
}

static void
ma_count(struct mesh_applier *ma, enum ma_kind k)
{
	if (ma->stats == NULL)
		return;
	switch (k) {
	case MA_LINK_ADD:
		ma->stats->links_added++;
		break;
	case MA_LINK_CHANGE:
		ma->stats->links_changed++;
		break;
	case MA_LINK_DEL:
		ma->stats->links_deleted++;
		break;
	case MA_FDB_ADD:
		ma->stats->fdb_added++;
		break;
	case MA_FDB_DEL:
		ma->stats->fdb_deleted++;
		break;
	}
}

/*
 * Sends the queued requests in one sendmsg and reads an ACK for each.
 * Returns 0 when every one succeeded, else the first request's error (each
 * failure is logged and recorded with ma_fail()).
 */
static int
ma_flush(struct mesh_applier *ma)
{
	unsigned acked = 0, n = ma->n;
	int first = 0;
	ssize_t len;

	if (n == 0)
		return 0;
	ma->n = 0;
	for (;;) {
		len = send(ma->fd, ma->sbuf, ma->slen, 0);
		if (len >= 0 || errno != EINTR)
			break;
	}
	ma->slen = 0;
	if (len < 0)
		return ma_fail(ma, -errno, "netlink send: %s", strerror(errno));
	while (acked < n) {
		const struct nlmsghdr *h;
		int rem;

		len = recv(ma->fd, ma->rbuf, MA_RBUF, 0);
		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0) {
			int e = errno == EAGAIN ? ETIMEDOUT : errno;

			return ma_fail(ma, -e, "netlink: %u of %u ACKs missing: "
			    "%s", n - acked, n, strerror(e));
		}
		rem = (int)len;
		for (h = (const struct nlmsghdr *)ma->rbuf; ma_nlmsg_ok(h, rem);
		    h = NLMSG_NEXT(h, rem)) {
			const struct nlmsgerr *e = NLMSG_DATA(h);
			struct ma_pending *p;
			uint32_t i = h->nlmsg_seq - ma->seq0;
			const char *why;

			if (h->nlmsg_type != NLMSG_ERROR || i >= n ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(int)))
				continue;
			p = &ma->pending[i];
			if (p->acked)
				continue;
			p->acked = true;
			acked++;
			if (e->error == 0) {
				if (!p->quiet)
					ma_count(ma, p->kind);
				continue;
			}
			p->error = e->error;
			if (first == 0)
				first = e->error;
			why = ma_extack(h);
			if (p->kind == MA_FDB_ADD || p->kind == MA_FDB_DEL) {
				char a[MESH_IP_STRLEN] = "-";

				if (p->has_dst)
					mesh_ip_str(&p->dst, a, sizeof(a));
				ma_fail(ma, e->error, "%s: %s %02x:%02x:%02x:%02x:"
				    "%02x:%02x dst %s: %s%s%s", p->dev,
				    ma_kind_str(p->kind), p->mac[0], p->mac[1],
				    p->mac[2], p->mac[3], p->mac[4], p->mac[5], a,
				    strerror(-e->error), why ? ": " : "",
				    why ? why : "");
			} else {
				ma_fail(ma, e->error, "%s: %s: %s%s%s", p->dev,
				    ma_kind_str(p->kind), strerror(-e->error),
				    why ? ": " : "", why ? why : "");
			}
		}
	}
	return first;
}

/*
 * Queues MSG (freed here) as the next request of the batch, flushing
 * first when it is full.  Returns what a flush returned, or -ENOMEM.
 */
static int
ma_queue(struct mesh_applier *ma, struct nl_msg *msg,
    const struct ma_pending *what)
{
	struct nlmsghdr *h = nlmsg_hdr(msg);
	int r = 0;

	if (ma->n == MA_BATCH || ma->slen + NLMSG_ALIGN(h->nlmsg_len) >
	    MA_SBUF)
		r = ma_flush(ma);
	if (NLMSG_ALIGN(h->nlmsg_len) > MA_SBUF) {
		nlmsg_free(msg);
		return ma_fail(ma, -EMSGSIZE, "%s: request too large",
		    what->dev);
	}
	h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	h->nlmsg_seq = nl_socket_use_seq(ma->sk);
	h->nlmsg_pid = 0;
	if (ma->n == 0)
		ma->seq0 = h->nlmsg_seq;
	else if (h->nlmsg_seq != ma->seq0 + ma->n) {
		/* Someone took a seq in between: start a new batch. */
		int f = ma_flush(ma);

		r = r ? r : f;
		ma->seq0 = h->nlmsg_seq;
	}
	memcpy(ma->sbuf + ma->slen, h, h->nlmsg_len);
	memset(ma->sbuf + ma->slen + h->nlmsg_len, 0,
	    NLMSG_ALIGN(h->nlmsg_len) - h->nlmsg_len);
	ma->slen += NLMSG_ALIGN(h->nlmsg_len);
	ma->pending[ma->n] = *what;
	ma->pending[ma->n].acked = false;
	ma->pending[ma->n].error = 0;
	ma->n++;
	nlmsg_free(msg);
	return r;
}

/* One request, sent and acknowledged now. */
static int
ma_talk(struct mesh_applier *ma, struct nl_msg *msg, enum ma_kind kind,
    const char *dev, bool quiet)
{
	struct ma_pending p = { .kind = kind, .quiet = quiet };
	int r;

	snprintf(p.dev, sizeof(p.dev), "%s", dev);
	if ((r = ma_queue(ma, msg, &p)) < 0)
		return r;
	return ma_flush(ma);
}

typedef int (*ma_dump_cb)(const struct nlmsghdr *h, void *arg);

/*
 * A dump request (REQ, REQLEN bytes of family header) answered into CB,
 * message by message.  -EAGAIN when the kernel says the dump was
 * interrupted by a change; the caller starts again.
 */
static int
ma_dump_once(struct mesh_applier *ma, uint16_t type, const void *req,
    size_t reqlen, ma_dump_cb cb, void *arg)
{
	struct {
		struct nlmsghdr h;
		uint8_t body[64];
	} m;
	bool intr = false;
	uint32_t seq;
	ssize_t len;
	int r = 0;

	memset(&m, 0, sizeof(m));
	m.h.nlmsg_len = NLMSG_LENGTH(reqlen);
	m.h.nlmsg_type = type;
	m.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	m.h.nlmsg_seq = seq = nl_socket_use_seq(ma->sk);
	memcpy(m.body, req, reqlen);
	do {
		len = send(ma->fd, &m, m.h.nlmsg_len, 0);
	} while (len < 0 && errno == EINTR);
	if (len < 0)
		return -errno;
	for (;;) {
		const struct nlmsghdr *h;
		int rem;

		len = recv(ma->fd, ma->rbuf, MA_RBUF, 0);
		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		rem = (int)len;
		for (h = (const struct nlmsghdr *)ma->rbuf; ma_nlmsg_ok(h, rem);
		    h = NLMSG_NEXT(h, rem)) {
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_flags & NLM_F_DUMP_INTR)
				intr = true;
			if (h->nlmsg_type == NLMSG_DONE)
				return r < 0 ? r : intr ? -EAGAIN : 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				return e->error ? e->error : -EIO;
			}
			if (r == 0)
				r = cb(h, arg);
		}
	}
}

static int
ma_dump(struct mesh_applier *ma, uint16_t type, const void *req,
    size_t reqlen, ma_dump_cb cb, void *arg, void (*reset)(void *))
{
	int r = -EAGAIN;

	for (int i = 0; i < MA_DUMP_TRIES && r == -EAGAIN; i++) {
		if (reset)
			reset(arg);
		r = ma_dump_once(ma, type, req, reqlen, cb, arg);
	}
	return r;
}

/* Discards what a timed-out request left behind, before libnl reads. */
static void
ma_drain(struct mesh_applier *ma)
{
	while (recv(ma->fd, ma->rbuf, MA_RBUF, MSG_DONTWAIT) > 0)
		;
}

static int
ma_links_refill(struct mesh_applier *ma)
{
	int r = -NLE_DUMP_INTR;

	ma_drain(ma);

	for (int i = 0; i < MA_DUMP_TRIES && r == -NLE_DUMP_INTR; i++) {
		if (ma->links)
			r = nl_cache_refill(ma->sk, ma->links);
		else
			r = rtnl_link_alloc_cache(ma->sk, AF_UNSPEC, &ma->links);
	}
	if (r < 0)
		return ma_fail(ma, ma_nlerr(r), "link dump: %s", nl_geterror(r));
	return 0;
}

/* "vxlan<VNI>" or "br<VNI>", canonical decimal: the VNI, else 0. */
static uint32_t
ma_name_vni(const char *name, bool *is_vxlan)
{
	const char *d;
	uint32_t v = 0;

	if (strncmp(name, MESH_VXLAN_PREFIX, strlen(MESH_VXLAN_PREFIX)) == 0) {
		*is_vxlan = true;
		d = name + strlen(MESH_VXLAN_PREFIX);
	} else if (strncmp(name, MESH_BRIDGE_PREFIX,
	    strlen(MESH_BRIDGE_PREFIX)) == 0) {
		*is_vxlan = false;
		d = name + strlen(MESH_BRIDGE_PREFIX);
	} else {
		return 0;
	}
	if (*d < '1' || *d > '9' || strlen(d) > 8)
		return 0;
	for (; *d; d++) {
		if (*d < '0' || *d > '9')
			return 0;
		v = v * 10 + (uint32_t)(*d - '0');
	}
	return v <= MESH_VNI_MAX ? v : 0;
}

static bool
ma_marked(struct rtnl_link *l)
{
	const char *a = rtnl_link_get_ifalias(l);

	return a && strcmp(a, MESH_MARKER) == 0;
}

static bool
ma_kind_is(struct rtnl_link *l, const char *kind)
{
	const char *t = rtnl_link_get_type(l);

	return t && strcmp(t, kind) == 0;
}

static struct rtnl_link *
ma_link_by_name(struct mesh_applier *ma, const char *name)
{
	return rtnl_link_get_by_name(ma->links, name);
}

static int
ma_link_delete(struct mesh_applier *ma, struct rtnl_link *l)
{
	struct nl_msg *msg = NULL;
	int r;

	if ((r = rtnl_link_build_delete_request(l, &msg)) < 0)
		return ma_fail(ma, ma_nlerr(r), "%s: %s",
		    rtnl_link_get_name(l), nl_geterror(r));
	log_info("mesh: deleting %s", rtnl_link_get_name(l));
	return ma_talk(ma, msg, MA_LINK_DEL, rtnl_link_get_name(l), false);
}

/*
 * Marks a device this call just created and brings it up.  The request
 * names it: its ifindex is not known yet, and the name is ours since the
 * exclusive create succeeded.  On failure the device is deleted again, so
 * no unmarked device of ours is left behind.
 */
static int
ma_link_mark(struct mesh_applier *ma, const char *name)
{
	struct rtnl_link *orig = rtnl_link_alloc(), *ch = rtnl_link_alloc();
	struct nl_msg *msg = NULL;
	int r;

	if (orig == NULL || ch == NULL) {
		r = ma_fail(ma, -ENOMEM, "%s: out of memory", name);
		goto out;
	}
	rtnl_link_set_name(orig, name);
	rtnl_link_set_name(ch, name);
	rtnl_link_set_ifalias(ch, MESH_MARKER);
	rtnl_link_set_flags(ch, IFF_UP);
	if ((r = rtnl_link_build_change_request(orig, ch, 0, &msg)) < 0) {
		r = ma_fail(ma, ma_nlerr(r), "%s: %s", name, nl_geterror(r));
		goto undo;
	}
	/* The creation counts once it is marked. */
	if ((r = ma_talk(ma, msg, MA_LINK_ADD, name, false)) == 0)
		goto out;
undo:
	if (rtnl_link_build_delete_request(orig, &msg) == 0)
		(void)ma_talk(ma, msg, MA_LINK_DEL, name, true);
out:
	rtnl_link_put(orig);
	rtnl_link_put(ch);
	return r;
}

/* Sends NEW (a create request for NAME), then marks it. */
static int
ma_link_create(struct mesh_applier *ma, struct rtnl_link *l, const char *name)
{
	struct nl_msg *msg = NULL;
	int r;

	if ((r = rtnl_link_build_add_request(l, NLM_F_CREATE | NLM_F_EXCL,
	    &msg)) < 0)
		return ma_fail(ma, ma_nlerr(r), "%s: %s", name, nl_geterror(r));
	log_info("mesh: creating %s", name);
	if ((r = ma_talk(ma, msg, MA_LINK_ADD, name, true)) < 0)
		return r;
	return ma_link_mark(ma, name);
}

/* Sends the changes in CH to the owned device L, if CH holds any. */
static int
ma_link_change(struct mesh_applier *ma, struct rtnl_link *l,
    struct rtnl_link *ch, bool any)
{
	struct nl_msg *msg = NULL;
	int r;

	if (!any)
		return 0;
	if ((r = rtnl_link_build_change_request(l, ch, 0, &msg)) < 0)
		return ma_fail(ma, ma_nlerr(r), "%s: %s", rtnl_link_get_name(l),
		    nl_geterror(r));
	log_info("mesh: updating %s", rtnl_link_get_name(l));
	return ma_talk(ma, msg, MA_LINK_CHANGE, rtnl_link_get_name(l), false);
}

struct ma_under {
	int ifindex;
	unsigned mtu;
};

/* A as the kernel has it: its family, and 4 or 16 bytes at the result. */
static const void *
ma_ip_raw(const struct in6_addr *a, int *family, size_t *len)
{
	bool v4 = mesh_ip_is_v4(a);

	*family = v4 ? AF_INET : AF_INET6;
	*len = v4 ? 4 : 16;
	return v4 ? (const void *)&a->s6_addr[12] : (const void *)a;
}

/* The underlay's ifindex and MTU: the named device, or the local IP's. */
struct ma_addr_find {
	const struct in6_addr *want;
	int ifindex;
};

static int
ma_addr_cb(const struct nlmsghdr *h, void *arg)
{
	struct ma_addr_find *f = arg;
	const struct ifaddrmsg *ifa = NLMSG_DATA(h);
	struct nlattr *tb[IFA_MAX + 1], *a;
	int family;
	size_t len;
	const void *want = ma_ip_raw(f->want, &family, &len);

	if (h->nlmsg_type != RTM_NEWADDR || ifa->ifa_family != family ||
	    f->ifindex || nlmsg_parse((struct nlmsghdr *)h, sizeof(*ifa), tb,
	    IFA_MAX, NULL) < 0)
		return 0;
	/* IPv6 has IFA_LOCAL only beside a peer's IFA_ADDRESS. */
	a = family == AF_INET || tb[IFA_LOCAL] ? tb[IFA_LOCAL] :
	    tb[IFA_ADDRESS];
	if (a && nla_len(a) == (int)len && memcmp(nla_data(a), want, len) == 0)
		f->ifindex = (int)ifa->ifa_index;
	return 0;
}

static int
ma_underlay(struct mesh_applier *ma, const struct mesh_state *st,
    struct ma_under *u)
{
	unsigned overhead = mesh_ip_is_v4(&st->local) ? MESH_OVERHEAD :
	    MESH_OVERHEAD6;
	struct rtnl_link *l;
	char a[MESH_IP_STRLEN];
	int r;

	if (st->underlay[0]) {
		if ((l = ma_link_by_name(ma, st->underlay)) == NULL)
			return ma_fail(ma, -ENODEV, "underlay %s: no such "
			    "device", st->underlay);
	} else {
		struct ifaddrmsg req = {
			.ifa_family = mesh_ip_is_v4(&st->local) ? AF_INET :
			    AF_INET6,
		};
		struct ma_addr_find f = { &st->local, 0 };

		if ((r = ma_dump(ma, RTM_GETADDR, &req, sizeof(req),
		    ma_addr_cb, &f, NULL)) < 0)
			return ma_fail(ma, r, "address dump: %s", strerror(-r));
		mesh_ip_str(&st->local, a, sizeof(a));
		if (f.ifindex == 0 ||
		    (l = rtnl_link_get(ma->links, f.ifindex)) == NULL)
			return ma_fail(ma, -EADDRNOTAVAIL, "local %s is on no "
			    "interface; name the underlay", a);
	}
	u->ifindex = rtnl_link_get_ifindex(l);
	u->mtu = rtnl_link_get_mtu(l);
	rtnl_link_put(l);
	if (u->mtu < 68 + overhead)
		return ma_fail(ma, -EINVAL, "underlay MTU %u is too small",
		    u->mtu);
	u->mtu -= overhead;
	return 0;
}

/* Deletes every owned device whose VNI is not in ST (vxlan ones first). */
static void
ma_delete_unwanted(struct mesh_applier *ma, const struct mesh_state *st)
{
	for (int pass = 0; pass < 2; pass++) {
		struct nl_object *o;

		for (o = nl_cache_get_first(ma->links); o;
		    o = nl_cache_get_next(o)) {
			struct rtnl_link *l = (struct rtnl_link *)o;
			bool vx = false, want = false;
			uint32_t vni = ma_name_vni(rtnl_link_get_name(l), &vx);

			if (vni == 0 || vx != (pass == 0) || !ma_marked(l))
				continue;
			for (size_t i = 0; i < st->nnets && !want; i++)
				want = st->nets[i].vni == vni;
			if (!want)
				(void)ma_link_delete(ma, l);
		}
	}
}

/* An owned device NAME, or NULL; -EEXIST when it is the operator's. */
static int
ma_owned(struct mesh_applier *ma, const char *name, uint32_t vni,
    struct rtnl_link **out)
{
	struct rtnl_link *l = ma_link_by_name(ma, name);

	*out = NULL;
	if (l == NULL)
		return 0;
	if (!ma_marked(l)) {
		rtnl_link_put(l);
		return ma_fail(ma, -EEXIST, "VNI %u: %s exists and is not ours "
		    "(no alias %s); left alone", vni, name, MESH_MARKER);
	}
	*out = l;
	return 0;
}

static int
ma_ensure_bridge(struct mesh_applier *ma, uint32_t vni,
    const struct ma_under *u, bool *created)
{
	char name[IFNAMSIZ];
	struct rtnl_link *l = NULL, *ch = NULL;
	bool any = false;
	int r;

	*created = false;
	snprintf(name, sizeof(name), MESH_BRIDGE_PREFIX "%u", vni);
	if ((r = ma_owned(ma, name, vni, &l)) < 0)
		return r;
	if (l && !ma_kind_is(l, "bridge")) {
		if ((r = ma_link_delete(ma, l)) < 0)
			goto out;
		rtnl_link_put(l);
		l = NULL;
	}
	if (l == NULL) {
		if ((l = rtnl_link_alloc()) == NULL ||
		    rtnl_link_set_type(l, "bridge") < 0) {
			r = ma_fail(ma, -ENOMEM, "%s: out of memory", name);
			goto out;
		}
		rtnl_link_set_name(l, name);
		rtnl_link_set_mtu(l, u->mtu);
		r = ma_link_create(ma, l, name);
		*created = r == 0;
		goto out;
	}
	if ((ch = rtnl_link_alloc()) == NULL) {
		r = ma_fail(ma, -ENOMEM, "%s: out of memory", name);
		goto out;
	}
	if (rtnl_link_get_mtu(l) != u->mtu) {
		rtnl_link_set_mtu(ch, u->mtu);
		any = true;
	}
	if (!(rtnl_link_get_flags(l) & IFF_UP)) {
		rtnl_link_set_flags(ch, IFF_UP);
		any = true;
	}
	r = ma_link_change(ma, l, ch, any);
out:
	rtnl_link_put(l);
	rtnl_link_put(ch);
	return r;
}

/* A's nl_addr in its own family (4 bytes for IPv4), or NULL (ENOMEM). */
static struct nl_addr *
ma_nl_addr(const struct in6_addr *a)
{
	int family;
	size_t len;
	const void *raw = ma_ip_raw(a, &family, &len);

	return nl_addr_build(family, raw, len);
}

/* The vxlan parameters this module sets, all of which must hold. */
static bool
ma_vxlan_matches(struct rtnl_link *l, uint32_t vni,
    const struct mesh_state *st, const struct ma_under *u)
{
	struct nl_addr *local = NULL;
	uint32_t id = 0, port = 0, lk = 0;
	int family;
	size_t len;
	const void *want = ma_ip_raw(&st->local, &family, &len);
	bool ok;

	if (!ma_kind_is(l, "vxlan") || rtnl_link_vxlan_get_id(l, &id) < 0 ||
	    id != vni || rtnl_link_vxlan_get_port(l, &port) < 0 ||
	    port != MESH_DSTPORT || rtnl_link_vxlan_get_learning(l) != 0 ||
	    rtnl_link_vxlan_get_link(l, &lk) < 0 || lk != (uint32_t)u->ifindex ||
	    rtnl_link_vxlan_get_local(l, &local) < 0 || local == NULL)
		return false;
	/* The family too: a state moved to the other one rebuilds it. */
	ok = nl_addr_get_family(local) == family &&
	    nl_addr_get_len(local) == len &&
	    memcmp(nl_addr_get_binary_addr(local), want, len) == 0;
	nl_addr_put(local);
	return ok;
}

static int
ma_ensure_vxlan(struct mesh_applier *ma, uint32_t vni,
    const struct mesh_state *st, const struct ma_under *u, int br,
    bool *created)
{
	char name[IFNAMSIZ];
	struct rtnl_link *l = NULL, *ch = NULL;
	struct nl_addr *local = NULL;
	bool any = false;
	int r;

	*created = false;
	snprintf(name, sizeof(name), MESH_VXLAN_PREFIX "%u", vni);
	if ((r = ma_owned(ma, name, vni, &l)) < 0)
		return r;
	/* VNI, port, local and lower device: deleted and made anew. */
	if (l && !ma_vxlan_matches(l, vni, st, u)) {
		if ((r = ma_link_delete(ma, l)) < 0)
			goto out;
		rtnl_link_put(l);
		l = NULL;
	}
	if (l == NULL) {
		if ((l = rtnl_link_vxlan_alloc()) == NULL ||
		    (local = ma_nl_addr(&st->local)) == NULL) {
			r = ma_fail(ma, -ENOMEM, "%s: out of memory", name);
			goto out;
		}
		rtnl_link_set_name(l, name);
		rtnl_link_set_mtu(l, u->mtu);
		rtnl_link_set_master(l, br);
		if (rtnl_link_vxlan_set_id(l, vni) < 0 ||
		    rtnl_link_vxlan_set_local(l, local) < 0 ||
		    rtnl_link_vxlan_set_port(l, MESH_DSTPORT) < 0 ||
		    rtnl_link_vxlan_set_learning(l, 0) < 0 ||
		    rtnl_link_vxlan_set_link(l, (uint32_t)u->ifindex) < 0) {
			r = ma_fail(ma, -EINVAL, "%s: cannot build the request",
			    name);
			goto out;
		}
		r = ma_link_create(ma, l, name);
		*created = r == 0;
		goto out;
	}
	if ((ch = rtnl_link_alloc()) == NULL) {
		r = ma_fail(ma, -ENOMEM, "%s: out of memory", name);
		goto out;
	}
	if (rtnl_link_get_mtu(l) != u->mtu) {
		rtnl_link_set_mtu(ch, u->mtu);
		any = true;
	}
	if (rtnl_link_get_master(l) != br) {
		rtnl_link_set_master(ch, br);
		any = true;
	}
	if (!(rtnl_link_get_flags(l) & IFF_UP)) {
		rtnl_link_set_flags(ch, IFF_UP);
		any = true;
	}
	r = ma_link_change(ma, l, ch, any);
out:
	nl_addr_put(local);
	rtnl_link_put(l);
	rtnl_link_put(ch);
	return r;
}

static void
ma_fdbvec_reset(void *arg)
{
	((struct ma_fdbvec *)arg)->n = 0;
}

static int
ma_fdb_cb(const struct nlmsghdr *h, void *arg)
{
	struct ma_fdbvec *fv = arg;
	const struct ndmsg *nd = NLMSG_DATA(h);
	struct nlattr *tb[NDA_MAX + 1];
	struct ma_fdb *e;

	if (h->nlmsg_type != RTM_NEWNEIGH ||
	    h->nlmsg_len < NLMSG_LENGTH(sizeof(*nd)) ||
	    nd->ndm_family != AF_BRIDGE || nd->ndm_ifindex != fv->ifindex ||
	    !(nd->ndm_flags & NTF_SELF) ||
	    nlmsg_parse((struct nlmsghdr *)h, sizeof(*nd), tb, NDA_MAX,
	    NULL) < 0 || tb[NDA_LLADDR] == NULL ||
	    nla_len(tb[NDA_LLADDR]) != 6 || tb[NDA_MASTER])
		return 0;
	if (fv->n == fv->cap) {
		size_t cap = fv->cap ? fv->cap * 2 : 1024;
		struct ma_fdb *v = realloc(fv->v, cap * sizeof(*v));

		if (v == NULL)
			return -ENOMEM;
		fv->v = v;
		fv->cap = cap;
	}
	e = &fv->v[fv->n++];
	memset(e, 0, sizeof(*e));
	memcpy(e->mac, nla_data(tb[NDA_LLADDR]), 6);
	if (tb[NDA_DST] && nla_len(tb[NDA_DST]) == 4) {
		e->has_dst = e->dst4 = true;
		e->dst.s6_addr[10] = e->dst.s6_addr[11] = 0xff;
		memcpy(&e->dst.s6_addr[12], nla_data(tb[NDA_DST]), 4);
	} else if (tb[NDA_DST] && nla_len(tb[NDA_DST]) == 16) {
		e->has_dst = true;
		memcpy(&e->dst, nla_data(tb[NDA_DST]), 16);
	}
	if (tb[NDA_PORT] && nla_len(tb[NDA_PORT]) == 2) {
		e->has_port = true;
		e->port = nla_get_u16(tb[NDA_PORT]);
	}
	if (tb[NDA_VNI] && nla_len(tb[NDA_VNI]) == 4) {
		e->has_vni = true;
		e->vni = nla_get_u32(tb[NDA_VNI]);
	}
	if (tb[NDA_IFINDEX] && nla_len(tb[NDA_IFINDEX]) == 4) {
		e->has_ifindex = true;
		e->ifindex = nla_get_u32(tb[NDA_IFINDEX]);
	}
	/*
	 * The kernel dumps port, VNI and ifindex only when not the default.
	 * An IPv4-mapped 16-byte dst would read as the IPv4 one: never ours.
	 */
	e->odd = !e->has_dst || (!e->dst4 && mesh_ip_is_v4(&e->dst)) ||
	    e->has_port || e->has_vni ||
	    e->has_ifindex || tb[NDA_NH_ID] || tb[NDA_SRC_VNI] ||
	    !(nd->ndm_state & NUD_PERMANENT);
	return 0;
}

static int
ma_fdb_cmp(const void *a, const void *b)
{
	const struct ma_fdb *x = a, *y = b;
	int c = memcmp(x->mac, y->mac, 6);

	if (c)
		return c;
	if (x->has_dst != y->has_dst)
		return x->has_dst ? 1 : -1;
	return memcmp(&x->dst, &y->dst, sizeof(x->dst));
}

/*
 * Queues one FDB request on IFINDEX (named DEV).  DST NULL on a delete
 * removes the whole entry; ODD, when given, is replayed so the kernel
 * finds the exact remote to delete.
 */
static int
ma_fdb_req(struct mesh_applier *ma, int ifindex, const char *dev,
    const uint8_t mac[6], const struct in6_addr *dst, int nlflags, bool add,
    const struct ma_fdb *odd)
{
	struct ma_pending p = { .kind = add ? MA_FDB_ADD : MA_FDB_DEL };
	struct rtnl_neigh *n = rtnl_neigh_alloc();
	struct nl_addr *ll = nl_addr_build(AF_LLC, mac, 6), *ip = NULL;
	struct nl_msg *msg = NULL;
	int r;

	snprintf(p.dev, sizeof(p.dev), "%s", dev);
	memcpy(p.mac, mac, 6);
	/* A dumped remote is replayed in the length the kernel gave it. */
	if (odd && odd->has_dst)
		ip = odd->dst4 ? ma_nl_addr(&odd->dst) :
		    nl_addr_build(AF_INET6, &odd->dst, 16);
	else if (dst)
		ip = ma_nl_addr(dst);
	if (n == NULL || ll == NULL || ((dst || (odd && odd->has_dst)) &&
	    ip == NULL)) {
		r = ma_fail(ma, -ENOMEM, "%s: out of memory", dev);
		goto out;
	}
	if (dst) {
		p.has_dst = true;
		p.dst = *dst;
	}
	/* The dst first: libnl refuses one unlike a family already set. */
	if (ip && (r = rtnl_neigh_set_dst(n, ip)) < 0) {
		r = ma_fail(ma, ma_nlerr(r), "%s: fdb dst: %s", dev,
		    nl_geterror(r));
		goto out;
	}
	rtnl_neigh_set_family(n, AF_BRIDGE);
	rtnl_neigh_set_ifindex(n, ifindex);
	rtnl_neigh_set_lladdr(n, ll);
	rtnl_neigh_set_flags(n, NTF_SELF);
	rtnl_neigh_set_state(n, NUD_PERMANENT);
	r = add ? rtnl_neigh_build_add_request(n, nlflags, &msg) :
	    rtnl_neigh_build_delete_request(n, 0, &msg);
	if (r < 0) {
		r = ma_fail(ma, ma_nlerr(r), "%s: fdb request: %s", dev,
		    nl_geterror(r));
		goto out;
	}
	if (odd && ((odd->has_port && nla_put_u16(msg, NDA_PORT,
	    odd->port) < 0) || (odd->has_vni && nla_put_u32(msg, NDA_VNI,
	    odd->vni) < 0) || (odd->has_ifindex && nla_put_u32(msg,
	    NDA_IFINDEX, odd->ifindex) < 0))) {
		nlmsg_free(msg);
		r = ma_fail(ma, -ENOMEM, "%s: out of memory", dev);
		goto out;
	}
	r = ma_queue(ma, msg, &p);
out:
	rtnl_neigh_put(n);
	nl_addr_put(ll);
	nl_addr_put(ip);
	return r;
}

/* Dsts in ma_fdb_cmp()'s order (IPv4-mapped: numeric, as IPv4 sorted). */
static int
ma_cmp_ip(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct in6_addr));
}

static int
ma_cmp_mac(const void *a, const void *b)
{
	return memcmp(((const struct mesh_mac *)a)->mac,
	    ((const struct mesh_mac *)b)->mac, 6);
}

/* E is exactly the remote IP: same family, same address. */
static bool
ma_fdb_is(const struct ma_fdb *e, const struct in6_addr *ip)
{
	return !e->odd && e->dst4 == mesh_ip_is_v4(ip) &&
	    memcmp(&e->dst, ip, sizeof(*ip)) == 0;
}

/*
 * The FDB of one owned vxlan device against NET.  Deletions are queued
 * before additions, and both sets are flushed before returning.
 */
static int
ma_fdb_sync(struct mesh_applier *ma, const struct mesh_net *net,
    int ifindex, const char *dev)
{
	static const uint8_t zero[6];
	struct ifinfomsg req = { .ifi_family = AF_BRIDGE, .ifi_index = ifindex };
	struct ma_fdbvec fv = { .ifindex = ifindex };
	struct in6_addr *vteps = NULL, *add0 = NULL;
	struct mesh_mac *macs = NULL, **addm = NULL;
	size_t nadd0 = 0, naddm = 0, i, j, k;
	bool zero_whole = false;
	int r;

	/* The legacy ifinfomsg header makes the kernel dump one device. */
	if ((r = ma_dump(ma, RTM_GETNEIGH, &req, sizeof(req), ma_fdb_cb, &fv,
	    ma_fdbvec_reset)) < 0) {
		r = ma_fail(ma, r, "%s: fdb dump: %s", dev, strerror(-r));
		goto out;
	}
	if ((net->nvteps && ((vteps = malloc(net->nvteps * sizeof(*vteps))) ==
	    NULL || (add0 = malloc(net->nvteps * sizeof(*add0))) == NULL)) ||
	    (net->nmacs && ((macs = malloc(net->nmacs * sizeof(*macs))) ==
	    NULL || (addm = malloc(net->nmacs * sizeof(*addm))) == NULL))) {
		r = ma_fail(ma, -ENOMEM, "%s: out of memory", dev);
		goto out;
	}
	if (net->nvteps) {
		memcpy(vteps, net->vteps, net->nvteps * sizeof(*vteps));
		qsort(vteps, net->nvteps, sizeof(*vteps), ma_cmp_ip);
	}
	if (net->nmacs) {
		memcpy(macs, net->macs, net->nmacs * sizeof(*macs));
		qsort(macs, net->nmacs, sizeof(*macs), ma_cmp_mac);
	}
	if (fv.n)
		qsort(fv.v, fv.n, sizeof(*fv.v), ma_fdb_cmp);

	/* The all-zero entry: one remote per VTEP. */
	for (i = 0; i < fv.n && memcmp(fv.v[i].mac, zero, 6) == 0; i++)
		if (!fv.v[i].has_dst)
			zero_whole = true;
	if (zero_whole) {
		/* A remote we cannot name: drop the entry, add all anew. */
		(void)ma_fdb_req(ma, ifindex, dev, zero, NULL, 0, false, NULL);
		for (k = 0; k < net->nvteps; k++)
			add0[nadd0++] = vteps[k];
	} else {
		for (j = 0, k = 0; j < i || k < net->nvteps;) {
			int c;

			if (j == i)
				c = 1;
			else if (k == net->nvteps || fv.v[j].odd)
				c = -1;
			else
				c = ma_cmp_ip(&fv.v[j].dst, &vteps[k]);
			if (c == 0 && ma_fdb_is(&fv.v[j], &vteps[k])) {
				if (ma->stats)
					ma->stats->fdb_unchanged++;
				j++;
				k++;
			} else if (c < 0) {
				(void)ma_fdb_req(ma, ifindex, dev, zero,
				    &fv.v[j].dst, 0, false, &fv.v[j]);
				j++;
			} else {
				add0[nadd0++] = vteps[k++];
			}
		}
	}
	/* Unicast MACs: exactly one clean remote each. */
	for (k = 0; i < fv.n || k < net->nmacs;) {
		size_t g = i;
		int c;

		while (g < fv.n && memcmp(fv.v[g].mac, fv.v[i].mac, 6) == 0)
			g++;
		if (i == fv.n)
			c = 1;
		else if (k == net->nmacs)
			c = -1;
		else
			c = memcmp(fv.v[i].mac, macs[k].mac, 6);
		if (c < 0) {
			(void)ma_fdb_req(ma, ifindex, dev, fv.v[i].mac, NULL, 0,
			    false, NULL);
			i = g;
		} else if (c > 0) {
			addm[naddm++] = &macs[k++];
		} else {
			if (g - i == 1 && ma_fdb_is(&fv.v[i], &macs[k].vtep)) {
				if (ma->stats)
					ma->stats->fdb_unchanged++;
			} else {
				/* REPLACE keeps extra remotes: drop them first. */
				if (g - i > 1)
					(void)ma_fdb_req(ma, ifindex, dev,
					    fv.v[i].mac, NULL, 0, false, NULL);
				addm[naddm++] = &macs[k];
			}
			i = g;
			k++;
		}
	}
	(void)ma_flush(ma);
	for (k = 0; k < nadd0; k++)
		(void)ma_fdb_req(ma, ifindex, dev, zero, &add0[k],
		    NLM_F_CREATE | NLM_F_APPEND, true, NULL);
	for (k = 0; k < naddm; k++)
		(void)ma_fdb_req(ma, ifindex, dev, addm[k]->mac, &addm[k]->vtep,
		    NLM_F_CREATE | NLM_F_REPLACE, true, NULL);
	(void)ma_flush(ma);
	r = 0;
out:
	free(fv.v);
	free(vteps);
	free(add0);
	free(macs);
	free(addm);
	return r;
}

int
mesh_apply(struct mesh_applier *ma, const struct mesh_state *st,
    struct mesh_stats *stats, char *err, size_t errlen)
{
	struct mesh_stats dummy;
	struct ma_under u = { 0, 0 };
	int r;

	if (err && errlen)
		err[0] = '\0';
	memset(stats ? stats : &dummy, 0, sizeof(dummy));
	ma->stats = stats;
	ma->err = err;
	ma->errlen = errlen;
	ma->r = 0;
	ma->nfail = 0;
	ma->n = 0;
	ma->slen = 0;
	if ((r = mesh_state_validate(st, err, errlen)) < 0)
		return r;
	if ((r = ma_links_refill(ma)) < 0)
		goto out;
	ma_delete_unwanted(ma, st);
	if (st->nnets == 0)
		goto out;
	if ((r = ma_underlay(ma, st, &u)) < 0)
		goto out;
	for (size_t i = 0; i < st->nnets; i++) {
		const struct mesh_net *net = &st->nets[i];
		char brname[IFNAMSIZ], vxname[IFNAMSIZ];
		struct rtnl_link *br = NULL, *vx = NULL;
		bool created = false;

		snprintf(brname, sizeof(brname), MESH_BRIDGE_PREFIX "%u",
		    net->vni);
		snprintf(vxname, sizeof(vxname), MESH_VXLAN_PREFIX "%u",
		    net->vni);
		if (ma_ensure_bridge(ma, net->vni, &u, &created) < 0)
			continue;
		if (created && ma_links_refill(ma) < 0)
			break;
		if ((br = ma_link_by_name(ma, brname)) == NULL) {
			ma_fail(ma, -ENODEV, "%s vanished", brname);
			continue;
		}
		if (ma_ensure_vxlan(ma, net->vni, st, &u,
		    rtnl_link_get_ifindex(br), &created) < 0) {
			rtnl_link_put(br);
			continue;
		}
		rtnl_link_put(br);
		if (created && ma_links_refill(ma) < 0)
			break;
		if ((vx = ma_link_by_name(ma, vxname)) == NULL) {
			ma_fail(ma, -ENODEV, "%s vanished", vxname);
			continue;
		}
		(void)ma_fdb_sync(ma, net, rtnl_link_get_ifindex(vx), vxname);
		rtnl_link_put(vx);
	}
out:
	if (ma->nfail > MA_LOG_FAILURES)
		log_warnx("mesh: %u more failures not logged",
		    ma->nfail - MA_LOG_FAILURES);
	if (ma->links) {
		nl_cache_free(ma->links);
		ma->links = NULL;
	}
	ma->stats = NULL;
	ma->err = NULL;
	return ma->r;
}
