/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvd's TFTP server: read-only, files beneath boot-root, RFC 1350 with
 * option negotiation (RFC 2347, 2348, 2349) and windows (RFC 7440).
 *
 * The listen socket only takes requests.  Each accepted request becomes a
 * transfer that owns its UDP socket (an ephemeral port bound to the address
 * the client asked, connected to the client's TID, so the kernel keeps other
 * TIDs' packets away from it), its retransmit timer and a reference on a
 * shared open file.  Files are opened beneath the boot root's directory fd
 * with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), fstat()ed, must be
 * regular, and stay open once per inode (dev, ino) however many transfers
 * read them; the last transfer to end closes the file.
 *
 * Invariants: a callback reads at most TFTP_BATCH datagrams; sending a
 * window is one pread of at most blksize * windowsize bytes and sendmmsg;
 * every transfer has its timer armed and ends by its deadline.  What the
 * bytes mean is decided in tftp_proto.c (pure, fuzzed).
 * Must never: block (a FIFO is opened O_NONBLOCK and then refused), answer
 * an ERROR packet, or let a peer's bytes reach the log unescaped.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "net.h"
#include "sockaddr.h"

#define TFTP_BATCH		32	/* datagrams read per wakeup */
#define TFTP_XFER_MAX		1024	/* concurrent transfers */
#define TFTP_SEND_BATCH		64	/* DATA packets per sendmmsg */
#define TFTP_GSO_SEGS		64	/* the kernel's UDP_MAX_SEGMENTS */
#define TFTP_GSO_BYTES		65507	/* largest IPv4 UDP payload */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT		103
#endif
#define TFTP_LOG_PER_S		50	/* info lines per second */
#define TFTP_REFUSE_PER_S	1000	/* ERROR replies to requests per second */
#define TFTP_NAME_LOG		96	/* escaped file name in logs */
#define TFTP_RCVBUF		(1024 * 1024)

/* One open file, shared by every transfer of the same inode. */
struct tftp_file {
	LIST_ENTRY(tftp_file) entry;
	dev_t dev;
	ino_t ino;
	int fd;
	unsigned refs;
};

/* The address a request was sent to, from IP_PKTINFO / IPV6_PKTINFO. */
struct tftp_local {
	bool valid;
	int family;
	struct in_addr v4;
	struct in6_addr v6;
	unsigned ifindex;
};

struct tftp_xfer {
	TAILQ_ENTRY(tftp_xfer) entry;
	int fd;				/* connected to the client */
	struct event *ev_read, *ev_timer;
	struct tftp_file *file;		/* owned reference */
	struct sockaddr_storage peer;
	socklen_t peerlen;
	char who[INET6_ADDRSTRLEN + 8];
	char name[TFTP_NAME_LOG];	/* escaped, for logs */
	char rawname[TFTP_FILENAME_MAX + 1];
	struct tftp_params params;
	struct tftp_window win;
	uint64_t size;
	uint64_t bytes;			/* DATA payload sent, resends included */
	int64_t started;
	uint8_t oack[128];
	size_t oacklen;
};

struct tftp_budget {
	int64_t second;
	unsigned used;
	uint64_t dropped;
};

static struct hvd *tftp_hvd;
static int tftp_fd = -1, tftp_root = -1, tftp_family;
static struct event *tftp_ev;
static uint16_t tftp_bound_port;
static TAILQ_HEAD(, tftp_xfer) tftp_xfers = TAILQ_HEAD_INITIALIZER(tftp_xfers);
static unsigned tftp_nxfers;
static LIST_HEAD(, tftp_file) tftp_files = LIST_HEAD_INITIALIZER(tftp_files);
static unsigned tftp_nfiles;
static uint8_t *tftp_buf;		/* one window of file data */
static size_t tftp_bufcap;
static struct tftp_budget tftp_log_budget, tftp_refuse_budget;
static struct {
	uint64_t started, completed, failed, bytes, retransmits;
	uint64_t refused[TFTP_EOPTION + 1];	/* by TFTP error code */
} tftp_stats;

static int64_t
tftp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
tftp_budget_take(struct tftp_budget *b, unsigned per_s, int64_t now)
{
	if (now / 1000 != b->second) {
		b->second = now / 1000;
		b->used = 0;
	}
	if (b->used >= per_s) {
		b->dropped++;
		return false;
	}
	b->used++;
	return true;
}

/* An info line, within TFTP_LOG_PER_S: a flood of bad requests must not
 * become a flood of log lines. */
static void __attribute__((format(printf, 2, 3)))
tftp_log(int64_t now, const char *fmt, ...)
{
	static uint64_t reported;
	char line[512];
	va_list ap;

	if (!tftp_budget_take(&tftp_log_budget, TFTP_LOG_PER_S, now))
		return;
	if (tftp_log_budget.dropped != reported) {
		log_info("tftp: %llu log lines suppressed (more than %d a second)",
		    (unsigned long long)(tftp_log_budget.dropped - reported),
		    TFTP_LOG_PER_S);
		reported = tftp_log_budget.dropped;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_info("%s", line);
}

static uint16_t
tftp_sa_port(const struct sockaddr_storage *ss)
{
	return sa_port((const struct sockaddr *)ss);
}

static bool
tftp_sa_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family || tftp_sa_port(a) != tftp_sa_port(b))
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	    &((const struct sockaddr_in6 *)b)->sin6_addr,
	    sizeof(struct in6_addr)) == 0;
}

/* --- files ---------------------------------------------------------------- */

static void
tftp_file_unref(struct tftp_file *f)
{
	if (f == NULL || --f->refs > 0)
		return;
	LIST_REMOVE(f, entry);
	tftp_nfiles--;
	close(f->fd);
	free(f);
}

/* Opens name beneath the boot root; on success *out holds a reference.
 * On failure returns -errno with the TFTP code and reason to answer. */
static int
tftp_file_open(const char *name, struct tftp_file **out, uint64_t *size,
    uint16_t *code, const char **why)
{
	struct tftp_file *f;
	struct stat st;
	int fd = -1, r = 0;

	*out = NULL;
	if ((fd = served_open(tftp_root, name, &st)) < 0) {
		r = fd;
		fd = -1;
		switch (-r) {
		case ENOENT:
		case ENOTDIR:
		case ENAMETOOLONG:
			*code = TFTP_ENOTFOUND;
			*why = "file not found";
			break;
		case EXDEV:
			*code = TFTP_EACCESS;
			*why = "the path leaves the boot root";
			break;
		case ELOOP:
			*code = TFTP_EACCESS;
			*why = "symbolic link loop or magic link refused";
			break;
		case EACCES:
		case EPERM:
			*code = TFTP_EACCESS;
			*why = "permission denied";
			break;
		case EMFILE:
		case ENFILE:
		case ENOMEM:
			*code = TFTP_EUNDEF;
			*why = "server out of resources, retry later";
			break;
		case EISDIR:
		case EINVAL:
			*code = TFTP_EACCESS;
			*why = "not a regular file";
			break;
		default:
			*code = TFTP_EUNDEF;
			*why = "cannot open the file";
			break;
		}
		goto out;
	}
	*size = (uint64_t)st.st_size;
	LIST_FOREACH(f, &tftp_files, entry)
		if (f->dev == st.st_dev && f->ino == st.st_ino)
			break;
	if (f == NULL) {
		if ((f = calloc(1, sizeof(*f))) == NULL) {
			r = -ENOMEM;
			*code = TFTP_EUNDEF;
			*why = "server out of resources, retry later";
			goto out;
		}
		f->dev = st.st_dev;
		f->ino = st.st_ino;
		f->fd = fd;	/* the cache entry takes ownership */
		fd = -1;
		LIST_INSERT_HEAD(&tftp_files, f, entry);
		tftp_nfiles++;
	}
	f->refs++;
	*out = f;
out:
	if (fd != -1)
		close(fd);
	return r;
}

/* --- replies from the listen socket -------------------------------------- */

/* Sends from the address the client wrote to, even on a wildcard socket. */
static void
tftp_send_from(const uint8_t *buf, size_t len,
    const struct sockaddr_storage *peer, socklen_t plen,
    const struct tftp_local *local)
{
	union {
		struct cmsghdr align;
		uint8_t b[CMSG_SPACE(sizeof(struct in6_pktinfo))];
	} ctl;
	struct iovec iov = { (void *)buf, len };
	struct msghdr m = { 0 };
	struct cmsghdr *c;

	m.msg_name = (void *)peer;
	m.msg_namelen = plen;
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	memset(&ctl, 0, sizeof(ctl));
	if (local->valid && local->family == AF_INET && tftp_family == AF_INET) {
		struct in_pktinfo pi = { 0 };

		pi.ipi_spec_dst = local->v4;
		m.msg_control = ctl.b;
		m.msg_controllen = CMSG_SPACE(sizeof(pi));
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
	} else if (local->valid && local->family == AF_INET6) {
		struct in6_pktinfo pi = { 0 };

		pi.ipi6_addr = local->v6;
		pi.ipi6_ifindex = local->ifindex;
		m.msg_control = ctl.b;
		m.msg_controllen = CMSG_SPACE(sizeof(pi));
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = IPPROTO_IPV6;
		c->cmsg_type = IPV6_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
	}
	if (sendmsg(tftp_fd, &m, MSG_DONTWAIT) == -1)
		log_debug("tftp: error reply: %s", strerror(errno));
}

static void
tftp_refuse(const struct sockaddr_storage *peer, socklen_t plen,
    const struct tftp_local *local, const char *who, const char *name,
    uint16_t code, const char *why, int64_t now)
{
	uint8_t pkt[TFTP_HDR_LEN + TFTP_ERRMSG_MAX];
	size_t n;

	tftp_stats.refused[code <= TFTP_EOPTION ? code : TFTP_EUNDEF]++;
	if (name)
		tftp_log(now, "tftp: %s: refused '%s': %s (error %u)", who, name,
		    why, code);
	else
		tftp_log(now, "tftp: %s: refused a request: %s (error %u)", who,
		    why, code);
	/* Error replies are small (no amplification) but still capped. */
	if (!tftp_budget_take(&tftp_refuse_budget, TFTP_REFUSE_PER_S, now))
		return;
	if ((n = tftp_error_build(code, why, pkt, sizeof(pkt))) > 0)
		tftp_send_from(pkt, n, peer, plen, local);
}

/* --- transfers ------------------------------------------------------------- */

static void
tftp_xfer_free(struct tftp_xfer *x)
{
	if (x == NULL)
		return;
	TAILQ_REMOVE(&tftp_xfers, x, entry);
	tftp_nxfers--;
	if (x->ev_read)
		event_free(x->ev_read);
	if (x->ev_timer)
		event_free(x->ev_timer);
	if (x->fd != -1)
		close(x->fd);
	tftp_file_unref(x->file);
	free(x);
}

static uint64_t
tftp_xfer_acked_bytes(const struct tftp_xfer *x)
{
	uint64_t b = x->win.acked * x->params.blksize;

	return b < x->size ? b : x->size;
}

static void
tftp_xfer_fail(struct tftp_xfer *x, const char *why, int64_t now)
{
	tftp_stats.failed++;
	tftp_log(now, "tftp: %s: '%s' failed after %llu of %llu bytes in %lld "
	    "ms: %s", x->who, x->name,
	    (unsigned long long)tftp_xfer_acked_bytes(x),
	    (unsigned long long)x->size, (long long)(now - x->started), why);
	tftp_xfer_free(x);
}

/* ICMP port unreachable: the client is gone.  After the last block went
 * out, that is usually a client that got everything and whose final ACK
 * was lost (RFC 1350 asks it to linger; few do): say so. */
static void
tftp_xfer_gone(struct tftp_xfer *x, int64_t now)
{
	tftp_xfer_fail(x, !x->win.oack && x->win.sent == x->win.nblocks ?
	    "the client left after the last block was sent (its final ACK "
	    "was probably lost)" : "the client's port is closed (ICMP port "
	    "unreachable)", now);
}

/* Ends the transfer with an ERROR packet to the client. */
static void
tftp_xfer_abort(struct tftp_xfer *x, uint16_t code, const char *why,
    int64_t now)
{
	uint8_t pkt[TFTP_HDR_LEN + TFTP_ERRMSG_MAX];
	size_t n;

	if ((n = tftp_error_build(code, why, pkt, sizeof(pkt))) > 0)
		(void)send(x->fd, pkt, n, MSG_DONTWAIT);
	tftp_xfer_fail(x, why, now);
}

static void
tftp_xfer_done(struct tftp_xfer *x, int64_t now)
{
	tftp_stats.completed++;
	log_debug("tftp: %s: sent '%s': %llu bytes in %lld ms (blksize %u, "
	    "windowsize %u, %llu bytes on the wire, %llu timeouts)", x->who,
	    x->name, (unsigned long long)x->size, (long long)(now - x->started),
	    x->params.blksize, x->params.windowsize,
	    (unsigned long long)x->bytes, (unsigned long long)x->win.retransmits);
	tftp_xfer_free(x);
}

static int
tftp_buf_reserve(size_t need)
{
	uint8_t *p;

	if (need <= tftp_bufcap)
		return 0;
	if ((p = realloc(tftp_buf, need)) == NULL)
		return -ENOMEM;
	tftp_buf = p;
	tftp_bufcap = need;
	return 0;
}

/* Reads [off, off + len) of the file; -EIO if it shrank since it was
 * opened.  Bounded: pread of a regular file returns short only at EOF. */
static int
tftp_xfer_read(struct tftp_xfer *x, uint64_t off, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = pread(x->file->fd, tftp_buf + got, len - got,
		    (off_t)(off + got));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		if (n == 0)
			return -EIO;
		got += (size_t)n;
	}
	return 0;
}

/*
 * UDP generic segmentation offload: the blocks of a span go out as a few
 * large datagrams whose payload is header, data, header, data..., which
 * the kernel cuts into one TFTP packet per block (UDP_SEGMENT, segment size
 * 4 + blksize; the last block may be shorter).  One pass through the stack
 * per message instead of per block.  Returns 0 (sent, or counted lost for
 * the timer to resend), -ECONNREFUSED, or -EINVAL/-EIO when the route
 * cannot segment (the caller falls back for good).
 */
static bool tftp_gso = true;

static int
tftp_xfer_send_gso(struct tftp_xfer *x, uint64_t first, unsigned count,
    size_t len)
{
	static struct mmsghdr msgs[TFTP_SEND_BATCH];
	static struct iovec iov[TFTP_SEND_BATCH * 2];
	static uint8_t hdr[TFTP_SEND_BATCH][TFTP_HDR_LEN];
	static union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl[TFTP_SEND_BATCH];
	unsigned blksize = x->params.blksize, per, nmsg = 0;
	size_t bytes[TFTP_SEND_BATCH];
	int sent;

	per = TFTP_GSO_BYTES / (TFTP_HDR_LEN + blksize);
	if (per > TFTP_GSO_SEGS)
		per = TFTP_GSO_SEGS;
	if (per < 2)
		return -EINVAL;		/* blocks too large to batch */
	if (count > TFTP_SEND_BATCH)
		return -E2BIG;		/* the plain path chunks it */
	/* Bounded: count <= TFTP_SEND_BATCH, one iovec pair per block. */
	for (unsigned b = 0; b < count; b += per, nmsg++) {
		unsigned n = count - b < per ? count - b : per;
		struct msghdr *mh = &msgs[nmsg].msg_hdr;
		struct cmsghdr *cm;

		bytes[nmsg] = 0;
		for (unsigned i = 0; i < n; i++) {
			size_t boff = (size_t)(b + i) * blksize;
			size_t blen = boff >= len ? 0 : len - boff < blksize ?
			    len - boff : blksize;

			tftp_data_header(first + b + i, hdr[b + i]);
			iov[2 * (b + i)].iov_base = hdr[b + i];
			iov[2 * (b + i)].iov_len = TFTP_HDR_LEN;
			iov[2 * (b + i) + 1].iov_base = tftp_buf +
			    (boff < len ? boff : 0);
			iov[2 * (b + i) + 1].iov_len = blen;
			bytes[nmsg] += blen;
		}
		memset(&msgs[nmsg], 0, sizeof(msgs[nmsg]));
		mh->msg_iov = &iov[2 * b];
		mh->msg_iovlen = 2 * n;
		if (n > 1) {
			mh->msg_control = ctl[nmsg].buf;
			mh->msg_controllen = sizeof(ctl[nmsg].buf);
			cm = CMSG_FIRSTHDR(mh);
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
			*(uint16_t *)(void *)CMSG_DATA(cm) =
			    (uint16_t)(TFTP_HDR_LEN + blksize);
		}
	}
	for (unsigned i = 0; i < nmsg; ) {
		sent = sendmmsg(x->fd, msgs + i, nmsg - i, MSG_DONTWAIT);
		if (sent == -1 && errno == ECONNREFUSED)
			return -ECONNREFUSED;
		if (sent == -1 && (errno == EINVAL || errno == EIO) && i == 0)
			return -errno;
		if (sent == -1 && errno == EPERM) {
			i++;		/* a firewall dropped it: lost */
			continue;
		}
		if (sent <= 0)
			return 0;	/* EAGAIN, ENOBUFS: lost, resent later */
		for (int k = 0; k < sent; k++) {
			x->bytes += bytes[i + k];
			tftp_stats.bytes += bytes[i + k];
		}
		i += (unsigned)sent;
	}
	return 0;
}

/* Sends the window's span (the OACK, or DATA blocks) and arms the timer.
 * Returns -1 when the transfer ended (x is freed). */
static int
tftp_xfer_send(struct tftp_xfer *x, bool retransmit, int64_t now)
{
	static struct mmsghdr msgs[TFTP_SEND_BATCH];
	static struct iovec iov[TFTP_SEND_BATCH][2];
	static uint8_t hdr[TFTP_SEND_BATCH][TFTP_HDR_LEN];
	unsigned blksize = x->params.blksize, count, ms;
	uint64_t first, off;
	size_t len;
	struct timeval tv;
	int r;

	tftp_window_span(&x->win, &first, &count);
	if (count == 0) {
		if (send(x->fd, x->oack, x->oacklen, MSG_DONTWAIT) == -1 &&
		    errno == ECONNREFUSED)
			goto refused;
		goto arm;
	}
	off = (first - 1) * blksize;
	len = (size_t)(x->size - off < (uint64_t)count * blksize ?
	    x->size - off : (uint64_t)count * blksize);
	if (tftp_buf_reserve((size_t)count * blksize) < 0) {
		tftp_xfer_abort(x, TFTP_EUNDEF, "server out of memory", now);
		return -1;
	}
	if ((r = tftp_xfer_read(x, off, len)) < 0) {
		tftp_xfer_abort(x, TFTP_EUNDEF, r == -EIO ? "the file shrank "
		    "while being served" : "read error", now);
		return -1;
	}
	if (tftp_gso && (r = tftp_xfer_send_gso(x, first, count, len)) != -E2BIG) {
		if (r == -ECONNREFUSED)
			goto refused;
		if (r == 0)
			goto arm;
		/* -EINVAL or -EIO: this path (device, MTU, checksum) cannot
		 * segment; plain datagrams from now on. */
		log_info("tftp: UDP segmentation offload unavailable (%s); "
		    "sending one datagram per block", strerror(-r));
		tftp_gso = false;
	}
	/* Bounded: a span is at most twice windowsize (64 in the config). */
	for (unsigned done = 0; done < count; ) {
		unsigned n = count - done < TFTP_SEND_BATCH ? count - done :
		    TFTP_SEND_BATCH;
		int sent;

		for (unsigned i = 0; i < n; i++) {
			size_t boff = (size_t)(done + i) * blksize;
			size_t blen = boff >= len ? 0 : len - boff < blksize ?
			    len - boff : blksize;

			tftp_data_header(first + done + i, hdr[i]);
			iov[i][0].iov_base = hdr[i];
			iov[i][0].iov_len = TFTP_HDR_LEN;
			iov[i][1].iov_base = tftp_buf + (boff < len ? boff : 0);
			iov[i][1].iov_len = blen;
			memset(&msgs[i], 0, sizeof(msgs[i]));
			msgs[i].msg_hdr.msg_iov = iov[i];
			msgs[i].msg_hdr.msg_iovlen = 2;
		}
		/* Bounded: each pass sends or skips at least one packet. */
		for (unsigned i = 0; i < n; ) {
			sent = sendmmsg(x->fd, msgs + i, n - i, MSG_DONTWAIT);
			if (sent == -1 && errno == ECONNREFUSED)
				goto refused;
			if (sent == -1 && errno == EPERM) {
				/* A firewall dropped this one: it is lost,
				 * the others still go. */
				i++;
				continue;
			}
			/* EAGAIN, ENOBUFS: the rest counts as lost and the
			 * timer resends it. */
			if (sent <= 0)
				goto arm;
			for (int k = 0; k < sent; k++) {
				x->bytes += iov[i + k][1].iov_len;
				tftp_stats.bytes += iov[i + k][1].iov_len;
			}
			i += (unsigned)sent;
		}
		done += n;
	}
arm:
	ms = tftp_window_sent(&x->win, retransmit, now);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(x->ev_timer, &tv);
	return 0;
refused:
	tftp_xfer_gone(x, now);
	return -1;
}

/* What a client may send during a transfer fits here: an ACK is 4 bytes,
 * an ERROR a header and a message; anything longer is refused whole. */
#define TFTP_REPLY_BUF	(TFTP_HDR_LEN + 512)

static void
tftp_xfer_read_cb(evutil_socket_t fd, short what, void *arg)
{
	static uint8_t buf[TFTP_BATCH][TFTP_REPLY_BUF];
	static struct mmsghdr msgs[TFTP_BATCH];
	static struct iovec iov[TFTP_BATCH];
	struct tftp_xfer *x = arg;
	int64_t now = tftp_now();
	struct tftp_reply rep;
	char err[TFTP_ERRMSG_MAX], why[TFTP_ERRMSG_MAX + 64];
	bool more = false;
	int n;

	(void)what;
	for (int i = 0; i < TFTP_BATCH; i++) {
		iov[i].iov_base = buf[i];
		iov[i].iov_len = sizeof(buf[i]);
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	/* One call drains up to TFTP_BATCH datagrams: bounded. */
	if ((n = recvmmsg(fd, msgs, TFTP_BATCH, MSG_DONTWAIT, NULL)) == -1) {
		if (errno == ECONNREFUSED) {
			tftp_xfer_gone(x, now);
			return;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			log_debug("tftp: %s: recvmmsg: %s", x->who, strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
			log_debug("tftp: %s: ignored an oversize datagram", x->who);
			continue;
		}
		if (tftp_reply_parse(buf[i], msgs[i].msg_len, &rep, err,
		    sizeof(err)) < 0) {
			log_debug("tftp: %s: '%s': ignored: %s", x->who, x->name,
			    err);
			continue;
		}
		if (rep.op == TFTP_ERROR) {
			snprintf(why, sizeof(why), "the client aborted with error "
			    "%u '%s'", rep.code, rep.msg);
			tftp_xfer_fail(x, why, now);
			return;
		}
		switch (tftp_window_ack(&x->win, rep.block, now)) {
		case TFTP_WIN_DONE:
			tftp_xfer_done(x, now);
			return;
		case TFTP_WIN_MORE:
			more = true;
			break;
		case TFTP_WIN_IGNORE:
			break;
		}
	}
	/* One send for everything this wakeup acknowledged. */
	if (more)
		(void)tftp_xfer_send(x, false, now);
}

static void
tftp_xfer_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tftp_xfer *x = arg;
	int64_t now = tftp_now();
	struct timeval tv;
	char why[192];
	unsigned ms;

	(void)fd;
	(void)what;
	switch (tftp_window_expired(&x->win, now)) {
	case TFTP_TIMER_GIVEUP:
		snprintf(why, sizeof(why), "timed out: no acknowledgement for "
		    "%lld ms%s", (long long)(now - x->win.progress_at),
		    !x->win.oack && x->win.sent == x->win.nblocks ?
		    " after the last block was sent (the client probably has "
		    "it all, and its final ACK was lost)" : "");
		tftp_xfer_abort(x, TFTP_EUNDEF, why, now);
		return;
	case TFTP_TIMER_WAIT:
		ms = tftp_window_deadline(&x->win, now);
		tv.tv_sec = ms / 1000;
		tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
		evtimer_add(x->ev_timer, &tv);
		return;
	case TFTP_TIMER_RESEND:
		tftp_stats.retransmits++;
		(void)tftp_xfer_send(x, true, now);
		return;
	}
}

static struct tftp_xfer *
tftp_xfer_find(const struct sockaddr_storage *peer)
{
	struct tftp_xfer *x;

	/* Bounded by TFTP_XFER_MAX. */
	TAILQ_FOREACH(x, &tftp_xfers, entry)
		if (tftp_sa_equal(&x->peer, peer))
			return x;
	return NULL;
}

/* The transfer's socket: bound to the address the client asked, so the
 * reply comes from where it expects, on a fresh port (its TID). */
static int
tftp_xfer_socket(const struct sockaddr_storage *peer, socklen_t plen,
    const struct tftp_local *local, size_t sndbuf)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd, r = 0;

	if ((fd = socket(tftp_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		return -errno;
	ss.ss_family = (sa_family_t)tftp_family;
	if (tftp_family == AF_INET) {
		if (local->valid && local->family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_addr = local->v4;
		len = sizeof(struct sockaddr_in);
	} else {
		if (local->valid && local->family == AF_INET6)
			((struct sockaddr_in6 *)&ss)->sin6_addr = local->v6;
		len = sizeof(struct sockaddr_in6);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) == -1) {
		/* A broadcast destination cannot be bound: use any. */
		memset(&ss, 0, sizeof(ss));
		ss.ss_family = (sa_family_t)tftp_family;
		if (bind(fd, (struct sockaddr *)&ss, len) == -1) {
			r = -errno;
			goto out;
		}
	}
	if (sndbuf > 200 * 1024) {
		int v = sndbuf > INT32_MAX ? INT32_MAX : (int)sndbuf;

		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	}
	if (connect(fd, (const struct sockaddr *)peer, plen) == -1)
		r = -errno;
out:
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

static void
tftp_request(const uint8_t *buf, size_t len,
    const struct sockaddr_storage *peer, socklen_t plen,
    const struct tftp_local *local, int64_t now)
{
	const struct hvd_config *c = tftp_hvd->conf;
	struct tftp_limits lim = { c->tftp_blksize_max, c->tftp_windowsize_max,
	    c->tftp_timeout_ms };
	char err[TFTP_ERRMSG_MAX], who[INET6_ADDRSTRLEN + 8];
	char name[TFTP_NAME_LOG];
	struct tftp_request req;
	struct tftp_file *f = NULL;
	struct tftp_xfer *x;
	const char *why;
	uint16_t code;
	uint64_t size = 0;
	int fd;

	/* Nothing to answer a runt or a port-0 source with; never answer an
	 * ERROR (two servers could bounce errors forever). */
	if (len < 2 || tftp_sa_port(peer) == 0 ||
	    ((unsigned)buf[0] << 8 | buf[1]) == TFTP_ERROR)
		return;
	sa_endpoint_str((const struct sockaddr *)peer, who, sizeof(who));
	if (tftp_request_parse(buf, len, &req, &code, err, sizeof(err)) < 0) {
		tftp_refuse(peer, plen, local, who, NULL, code, err, now);
		return;
	}
	tftp_escape((const uint8_t *)req.filename, strlen(req.filename), name,
	    sizeof(name));
	if (tftp_request_check(&req, &code, err, sizeof(err)) < 0) {
		tftp_refuse(peer, plen, local, who, name, code, err, now);
		return;
	}
	if ((x = tftp_xfer_find(peer)) != NULL) {
		/* The same request again before any progress: our first
		 * packet or the client's answer to it was lost. */
		if (!x->win.answered && strcmp(x->rawname, req.filename) == 0) {
			if (tftp_window_repeat(&x->win, now))
				(void)tftp_xfer_send(x, true, now);
			return;
		}
		tftp_xfer_fail(x, "the client sent a new request from the same "
		    "port", now);
	}
	if (tftp_nxfers >= TFTP_XFER_MAX) {
		tftp_refuse(peer, plen, local, who, name, TFTP_EUNDEF,
		    "server busy, retry later", now);
		return;
	}
	if (tftp_file_open(req.filename, &f, &size, &code, &why) < 0) {
		tftp_refuse(peer, plen, local, who, name, code, why, now);
		return;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		tftp_file_unref(f);
		tftp_refuse(peer, plen, local, who, name, TFTP_EUNDEF,
		    "server out of resources, retry later", now);
		return;
	}
	x->fd = -1;
	x->file = f;		/* the transfer takes the reference */
	TAILQ_INSERT_TAIL(&tftp_xfers, x, entry);
	tftp_nxfers++;
	memcpy(&x->peer, peer, plen);
	x->peerlen = plen;
	memcpy(x->who, who, sizeof(who));
	memcpy(x->name, name, sizeof(name));
	snprintf(x->rawname, sizeof(x->rawname), "%s", req.filename);
	x->size = size;
	x->started = now;
	tftp_negotiate(&req, &lim, size, &x->params);
	if (x->params.oack)
		x->oacklen = tftp_oack_build(&x->params, x->oack, sizeof(x->oack));
	tftp_window_init(&x->win, size, &x->params, c->tftp_retries, now);
	fd = tftp_xfer_socket(peer, plen, local, (size_t)x->params.blksize *
	    x->params.windowsize * 2);
	if (fd < 0) {
		tftp_xfer_free(x);
		tftp_refuse(peer, plen, local, who, name, TFTP_EUNDEF,
		    "server out of sockets, retry later", now);
		return;
	}
	x->fd = fd;
	x->ev_read = event_new(tftp_hvd->base, fd, EV_READ | EV_PERSIST,
	    tftp_xfer_read_cb, x);
	x->ev_timer = evtimer_new(tftp_hvd->base, tftp_xfer_timer_cb, x);
	if (x->ev_read == NULL || x->ev_timer == NULL ||
	    event_add(x->ev_read, NULL) == -1) {
		tftp_xfer_free(x);
		tftp_refuse(peer, plen, local, who, name, TFTP_EUNDEF,
		    "server out of resources, retry later", now);
		return;
	}
	tftp_stats.started++;
	log_debug("tftp: %s: sending '%s' (%llu bytes, blksize %u, windowsize "
	    "%u, timeout %u ms%s)", who, name, (unsigned long long)size,
	    x->params.blksize, x->params.windowsize, x->params.timeout_ms,
	    x->params.oack ? ", OACK" : "");
	(void)tftp_xfer_send(x, false, now);
}

static void
tftp_local_from(struct msghdr *m, struct tftp_local *local)
{
	struct cmsghdr *c;

	memset(local, 0, sizeof(*local));
	for (c = CMSG_FIRSTHDR(m); c != NULL; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			local->valid = true;
			local->family = AF_INET;
			local->v4 = pi.ipi_spec_dst;
			local->ifindex = (unsigned)pi.ipi_ifindex;
		} else if (c->cmsg_level == IPPROTO_IPV6 &&
		    c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			local->valid = true;
			local->family = AF_INET6;
			local->v6 = pi.ipi6_addr;
			local->ifindex = pi.ipi6_ifindex;
		}
	}
}

static void
tftp_listen_cb(evutil_socket_t fd, short what, void *arg)
{
	/* One byte more than a request may have, to see the oversize ones. */
	uint8_t buf[TFTP_REQUEST_MAX + 1];
	union {
		struct cmsghdr align;
		uint8_t b[CMSG_SPACE(sizeof(struct in6_pktinfo)) +
		    CMSG_SPACE(sizeof(struct in_pktinfo))];
	} ctl;
	struct sockaddr_storage peer;
	struct tftp_local local;
	struct iovec iov;
	struct msghdr m;
	int64_t now = tftp_now();
	ssize_t n;

	(void)what;
	(void)arg;
	for (int i = 0; i < TFTP_BATCH; i++) {
		memset(&m, 0, sizeof(m));
		memset(&peer, 0, sizeof(peer));
		iov.iov_base = buf;
		iov.iov_len = sizeof(buf);
		m.msg_name = &peer;
		m.msg_namelen = sizeof(peer);
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = ctl.b;
		m.msg_controllen = sizeof(ctl.b);
		if ((n = recvmsg(fd, &m, MSG_DONTWAIT)) == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				log_warn("tftp: recvmsg");
			break;
		}
		tftp_local_from(&m, &local);
		tftp_request(buf, (size_t)n, &peer, m.msg_namelen, &local, now);
	}
}

int
tftp_init(struct hvd *hvd)
{
	const struct hvd_config *c = hvd->conf;
	struct open_how probe = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
	    .resolve = RESOLVE_BENEATH };
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int on = 1, rcvbuf = TFTP_RCVBUF, fd, r = 0;

	if (!c->tftp)
		return 0;
	tftp_hvd = hvd;
	if ((tftp_root = open(c->boot_root, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1) {
		r = -errno;
		log_warn("tftp: boot-root %s", c->boot_root);
		goto out;
	}
	if ((fd = (int)syscall(SYS_openat2, tftp_root, ".", &probe,
	    sizeof(probe))) == -1) {
		r = -errno;
		log_warn("tftp: openat2 (Linux 5.6 or later is needed)");
		goto out;
	}
	close(fd);
	if (inet_pton(AF_INET, c->tftp_host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(c->tftp_port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, c->tftp_host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(c->tftp_port);
		len = sizeof(*sin6);
	} else {
		r = -EINVAL;
		log_warnx("tftp: '%s' is not a numeric address", c->tftp_host);
		goto out;
	}
	tftp_family = ss.ss_family;
	if ((tftp_fd = socket(tftp_family, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		r = -errno;
		log_warn("tftp: socket");
		goto out;
	}
	if ((tftp_family == AF_INET ? setsockopt(tftp_fd, IPPROTO_IP,
	    IP_PKTINFO, &on, sizeof(on)) : setsockopt(tftp_fd, IPPROTO_IPV6,
	    IPV6_RECVPKTINFO, &on, sizeof(on))) == -1) {
		r = -errno;
		log_warn("tftp: packet info");
		goto out;
	}
	/* A mass boot sends a burst of requests: best effort. */
	(void)setsockopt(tftp_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(tftp_fd, (struct sockaddr *)&ss, len) == -1) {
		char where[ADDR_STRLEN];

		r = -errno;
		addr_join(c->tftp_host, c->tftp_port, where, sizeof(where));
		errno = -r;
		log_warn("tftp: bind %s", where);
		goto out;
	}
	if (getsockname(tftp_fd, (struct sockaddr *)&ss, &len) == 0)
		tftp_bound_port = tftp_sa_port(&ss);
	tftp_ev = event_new(hvd->base, tftp_fd, EV_READ | EV_PERSIST,
	    tftp_listen_cb, NULL);
	if (tftp_ev == NULL || event_add(tftp_ev, NULL) == -1) {
		r = -ENOMEM;
		log_warnx("tftp: cannot watch the listen socket");
		goto out;
	}
	log_info(tftp_family == AF_INET6 ? "tftp: listening on [%s]:%u, "
	    "serving %s (blksize up to %u, windowsize up to %u)" : "tftp: "
	    "listening on %s:%u, serving %s (blksize up to %u, windowsize up "
	    "to %u)", c->tftp_host, tftp_bound_port, c->boot_root,
	    c->tftp_blksize_max, c->tftp_windowsize_max);
out:
	if (r < 0)
		tftp_shutdown();
	return r;
}

void
tftp_shutdown(void)
{
	struct tftp_xfer *x;

	while ((x = TAILQ_FIRST(&tftp_xfers)) != NULL)
		tftp_xfer_free(x);
	if (tftp_ev)
		event_free(tftp_ev);
	tftp_ev = NULL;
	if (tftp_fd != -1)
		close(tftp_fd);
	tftp_fd = -1;
	if (tftp_root != -1)
		close(tftp_root);
	tftp_root = -1;
	free(tftp_buf);
	tftp_buf = NULL;
	tftp_bufcap = 0;
	tftp_bound_port = 0;
	tftp_hvd = NULL;
}

uint16_t
tftp_port(void)
{
	return tftp_bound_port;
}

void
tftp_metrics(FILE *f)
{
	static const char *const names[] = { "0", "1", "2", "3", "4", "5", "6",
	    "7", "8" };
	fprintf(f, "# HELP hvd_tftp_transfers_started_total TFTP read "
	    "transfers accepted.\n# TYPE hvd_tftp_transfers_started_total "
	    "counter\nhvd_tftp_transfers_started_total %llu\n",
	    (unsigned long long)tftp_stats.started);
	fprintf(f, "# HELP hvd_tftp_transfers_completed_total TFTP transfers "
	    "whose last block was acknowledged.\n"
	    "# TYPE hvd_tftp_transfers_completed_total counter\n"
	    "hvd_tftp_transfers_completed_total %llu\n",
	    (unsigned long long)tftp_stats.completed);
	fprintf(f, "# HELP hvd_tftp_transfers_failed_total TFTP transfers that "
	    "timed out or were aborted.\n"
	    "# TYPE hvd_tftp_transfers_failed_total counter\n"
	    "hvd_tftp_transfers_failed_total %llu\n",
	    (unsigned long long)tftp_stats.failed);
	fprintf(f, "# HELP hvd_tftp_transfers_active TFTP transfers in "
	    "progress.\n# TYPE hvd_tftp_transfers_active gauge\n"
	    "hvd_tftp_transfers_active %u\n", tftp_nxfers);
	fprintf(f, "# HELP hvd_tftp_open_files Files held open for TFTP "
	    "transfers (one per inode).\n# TYPE hvd_tftp_open_files gauge\n"
	    "hvd_tftp_open_files %u\n", tftp_nfiles);
	fprintf(f, "# HELP hvd_tftp_sent_bytes_total TFTP DATA payload sent, "
	    "retransmissions included.\n"
	    "# TYPE hvd_tftp_sent_bytes_total counter\n"
	    "hvd_tftp_sent_bytes_total %llu\n",
	    (unsigned long long)tftp_stats.bytes);
	fprintf(f, "# HELP hvd_tftp_timeouts_total Retransmissions after a "
	    "timeout.\n# TYPE hvd_tftp_timeouts_total counter\n"
	    "hvd_tftp_timeouts_total %llu\n",
	    (unsigned long long)tftp_stats.retransmits);
	fprintf(f, "# HELP hvd_tftp_requests_refused_total TFTP requests "
	    "answered with an error, by TFTP error code.\n"
	    "# TYPE hvd_tftp_requests_refused_total counter\n");
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
		if (tftp_stats.refused[i] || i == TFTP_ENOTFOUND ||
		    i == TFTP_EACCESS || i == TFTP_EILLEGAL || i == TFTP_EOPTION)
			fprintf(f, "hvd_tftp_requests_refused_total{code=\"%s\"} "
			    "%llu\n", names[i],
			    (unsigned long long)tftp_stats.refused[i]);
}
