/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * TFTP packets and the send window of a read transfer, as pure functions:
 * no system calls, no globals, time passed in.  tftp.c owns the sockets,
 * files and timers; everything it decides about bytes from the network is
 * decided here, where the unit tests and the fuzzer reach it.
 *
 * The request parser is strict: it rejects unterminated strings, unknown
 * modes, malformed or out-of-range values of the options it knows,
 * duplicate, over-long or too many options, and requests over 512 bytes,
 * each with the TFTP error code to answer and a message naming the token
 * (escaped and bounded, so it is safe to log and to send back).  Unknown
 * option names are ignored, as RFC 2347 requires.
 *
 * Must never: read past len, trust a length or NUL from the peer, or write
 * past a caller's capacity.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "wire.h"

#define TFTP_DIGITS_MAX	20	/* UINT64_MAX has 20 digits */

static size_t
tftp_escaped_len(uint8_t c)
{
	return (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;
}

void
tftp_escape(const uint8_t *src, size_t len, char *dst, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, total = 0, room;

	if (cap == 0)
		return;
	for (size_t i = 0; i < len; i++)
		total += tftp_escaped_len(src[i]);
	/* Cut: keep room for "..." and the NUL. */
	room = total < cap ? cap - 1 : cap > 4 ? cap - 4 : 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = src[i];

		if (o + tftp_escaped_len(c) > room)
			break;
		if (tftp_escaped_len(c) == 1) {
			dst[o++] = (char)c;
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	if (total >= cap && cap > 4) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
}

static int __attribute__((format(printf, 4, 5)))
tftp_reject(uint16_t *code, uint16_t value, char *err, const char *fmt, ...)
{
	va_list ap;

	*code = value;
	va_start(ap, fmt);
	/* err is the parser's own TFTP_ERRMSG_MAX buffer. */
	vsnprintf(err, TFTP_ERRMSG_MAX, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Finds the NUL ending the string at buf[off]; returns its index or len. */
static size_t
tftp_strend(const uint8_t *buf, size_t len, size_t off)
{
	const uint8_t *z = memchr(buf + off, '\0', len - off);

	return z ? (size_t)(z - buf) : len;
}

/* Decimal digits only, no sign or blank, at most 20 digits, no overflow. */
static int
tftp_number(const uint8_t *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > TFTP_DIGITS_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

enum tftp_opt { TFTP_OPT_BLKSIZE, TFTP_OPT_TSIZE, TFTP_OPT_TIMEOUT,
    TFTP_OPT_WINDOWSIZE };

struct tftp_known {
	const char *name;
	enum tftp_opt opt;
	uint64_t min, max;
};

static const struct tftp_known tftp_known[] = {
	{ "blksize", TFTP_OPT_BLKSIZE, TFTP_BLKSIZE_MIN, TFTP_BLKSIZE_MAX },
	{ "tsize", TFTP_OPT_TSIZE, 0, UINT64_MAX },
	{ "timeout", TFTP_OPT_TIMEOUT, 1, TFTP_TIMEOUT_MAX_S },
	{ "windowsize", TFTP_OPT_WINDOWSIZE, 1, TFTP_WINDOWSIZE_MAX },
};

static int
tftp_option(struct tftp_request *req, const uint8_t *name, size_t nlen,
    const uint8_t *val, size_t vlen, uint16_t *code, char *err)
{
	char ename[TFTP_OPTNAME_MAX + 8], evalue[TFTP_OPTVALUE_MAX + 8];
	const struct tftp_known *k = NULL;
	uint64_t v;
	size_t i;
	int r;

	tftp_escape(name, nlen, ename, sizeof(ename));
	for (i = 0; i < sizeof(tftp_known) / sizeof(*tftp_known); i++)
		if (strlen(tftp_known[i].name) == nlen &&
		    strncasecmp(tftp_known[i].name, (const char *)name, nlen) == 0)
			k = &tftp_known[i];
	if (k == NULL) {
		req->ignored++;
		return 0;
	}
	/* RFC 2349: a read request's tsize carries no information (the OACK
	 * brings the size), and atftp sends "enable"; its value is ignored. */
	if (k->opt == TFTP_OPT_TSIZE) {
		req->tsize = true;
		return 0;
	}
	tftp_escape(val, vlen, evalue, sizeof(evalue));
	if ((r = tftp_number(val, vlen, &v)) < 0 || v < k->min || v > k->max)
		return tftp_reject(code, TFTP_EOPTION, err,
		    "option %s: '%s' is not an integer in %llu..%llu", k->name,
		    evalue, (unsigned long long)k->min,
		    (unsigned long long)k->max);
	switch (k->opt) {
	case TFTP_OPT_BLKSIZE:
		req->blksize = (unsigned)v;
		break;
	case TFTP_OPT_TIMEOUT:
		req->timeout_s = (unsigned)v;
		break;
	case TFTP_OPT_WINDOWSIZE:
		req->windowsize = (unsigned)v;
		break;
	case TFTP_OPT_TSIZE:
		break;
	}
	return 0;
}

int
tftp_request_parse(const uint8_t *buf, size_t len, struct tftp_request *req,
    uint16_t *code, char *err, size_t errlen)
{
	struct { size_t off, len; } seen[TFTP_OPTIONS_MAX];
	char tmp[TFTP_ERRMSG_MAX], e[TFTP_OPTNAME_MAX + 8];
	size_t off, end, nseen = 0;
	unsigned op;
	int r = -EINVAL;

	memset(req, 0, sizeof(*req));
	tmp[0] = '\0';
	if (len < 2) {
		tftp_reject(code, TFTP_EILLEGAL, tmp, "truncated packet (%zu "
		    "byte%s)", len, len == 1 ? "" : "s");
		goto out;
	}
	if (len > TFTP_REQUEST_MAX) {
		tftp_reject(code, TFTP_EILLEGAL, tmp, "request longer than %d "
		    "bytes", TFTP_REQUEST_MAX);
		goto out;
	}
	op = (unsigned)buf[0] << 8 | buf[1];
	if (op != TFTP_RRQ && op != TFTP_WRQ) {
		tftp_reject(code, TFTP_EILLEGAL, tmp, op >= TFTP_DATA &&
		    op <= TFTP_OACK ? "opcode %u is not a request" :
		    "unknown opcode %u", op);
		goto out;
	}
	req->op = (enum tftp_op)op;

	off = 2;
	if ((end = tftp_strend(buf, len, off)) == len) {
		tftp_reject(code, TFTP_EILLEGAL, tmp, "unterminated file name");
		goto out;
	}
	if (end == off) {
		tftp_reject(code, TFTP_EILLEGAL, tmp, "empty file name");
		goto out;
	}
	if (end - off > TFTP_FILENAME_MAX) {
		tftp_reject(code, TFTP_EILLEGAL, tmp, "file name longer than %d "
		    "bytes", TFTP_FILENAME_MAX);
		goto out;
	}
	memcpy(req->filename, buf + off, end - off);
	req->filename[end - off] = '\0';

	off = end + 1;
	if (off == len) {
		tftp_reject(code, TFTP_EILLEGAL, tmp, "no transfer mode");
		goto out;
	}
	if ((end = tftp_strend(buf, len, off)) == len) {
		tftp_reject(code, TFTP_EILLEGAL, tmp, "unterminated transfer mode");
		goto out;
	}
	if (end - off == 5 && strncasecmp((const char *)buf + off, "octet", 5) == 0) {
		req->mode = TFTP_MODE_OCTET;
	} else if (end - off == 8 &&
	    strncasecmp((const char *)buf + off, "netascii", 8) == 0) {
		req->mode = TFTP_MODE_NETASCII;
	} else {
		char m[40];

		tftp_escape(buf + off, end - off, m, sizeof(m));
		tftp_reject(code, TFTP_EILLEGAL, tmp, "unknown transfer mode '%s'",
		    m);
		goto out;
	}

	/* Options: name NUL value NUL, until the packet ends. */
	for (off = end + 1; off < len; ) {
		size_t noff = off, nlen, voff, vlen;

		end = tftp_strend(buf, len, noff);
		nlen = end - noff;
		tftp_escape(buf + noff, nlen, e, sizeof(e));
		if (end == len) {
			tftp_reject(code, TFTP_EILLEGAL, tmp, "unterminated option "
			    "name '%s'", e);
			goto out;
		}
		if (nlen == 0) {
			tftp_reject(code, TFTP_EOPTION, tmp, "empty option name");
			goto out;
		}
		if (nlen > TFTP_OPTNAME_MAX) {
			tftp_reject(code, TFTP_EOPTION, tmp, "option name '%s' is "
			    "longer than %d bytes", e, TFTP_OPTNAME_MAX);
			goto out;
		}
		voff = end + 1;
		if (voff == len) {
			tftp_reject(code, TFTP_EILLEGAL, tmp, "option %s has no "
			    "value", e);
			goto out;
		}
		if ((end = tftp_strend(buf, len, voff)) == len) {
			tftp_reject(code, TFTP_EILLEGAL, tmp, "unterminated value "
			    "of option %s", e);
			goto out;
		}
		vlen = end - voff;
		if (vlen > TFTP_OPTVALUE_MAX) {
			tftp_reject(code, TFTP_EOPTION, tmp, "value of option %s "
			    "is longer than %d bytes", e, TFTP_OPTVALUE_MAX);
			goto out;
		}
		if (nseen == TFTP_OPTIONS_MAX) {
			tftp_reject(code, TFTP_EOPTION, tmp, "more than %d options",
			    TFTP_OPTIONS_MAX);
			goto out;
		}
		for (size_t i = 0; i < nseen; i++)
			if (seen[i].len == nlen && strncasecmp((const char *)buf +
			    seen[i].off, (const char *)buf + noff, nlen) == 0) {
				tftp_reject(code, TFTP_EOPTION, tmp, "option %s is "
				    "given twice", e);
				goto out;
			}
		seen[nseen].off = noff;
		seen[nseen].len = nlen;
		nseen++;
		if (tftp_option(req, buf + noff, nlen, buf + voff, vlen, code,
		    tmp) < 0)
			goto out;
		off = end + 1;
	}
	r = 0;
out:
	if (errlen > 0)
		snprintf(err, errlen, "%s", r == 0 ? "" : tmp);
	return r;
}

int
tftp_request_check(const struct tftp_request *req, uint16_t *code, char *err,
    size_t errlen)
{
	const char *s = req->filename, *why = NULL;
	uint16_t c = TFTP_EACCESS;
	size_t n = strlen(s);

	if (req->op == TFTP_WRQ) {
		why = "write requests are refused: hvd serves files read-only";
	} else if (req->mode == TFTP_MODE_NETASCII) {
		/* Boot clients use octet; converting would break pread at
		 * block offsets and tsize, serving raw bytes would corrupt. */
		c = TFTP_EILLEGAL;
		why = "mode netascii is not supported: use octet";
	} else if (s[0] == '/') {
		why = "absolute paths are refused: names are relative to the "
		    "boot root";
	} else {
		for (size_t i = 0; i < n; i++) {
			if ((uint8_t)s[i] < 0x20 || (uint8_t)s[i] >= 0x7f) {
				why = "file names are printable ASCII";
				break;
			}
			/* A ".." component: at the start or after '/', and
			 * followed by '/' or the end. */
			if (s[i] == '.' && s[i + 1] == '.' &&
			    (i == 0 || s[i - 1] == '/') &&
			    (s[i + 2] == '/' || s[i + 2] == '\0')) {
				why = "'..' in a path is refused";
				break;
			}
		}
	}
	if (why == NULL) {
		if (errlen > 0)
			err[0] = '\0';
		return 0;
	}
	*code = c;
	if (errlen > 0)
		snprintf(err, errlen, "%s", why);
	return -EACCES;
}

void
tftp_negotiate(const struct tftp_request *req, const struct tftp_limits *lim,
    uint64_t size, struct tftp_params *p)
{
	memset(p, 0, sizeof(*p));
	p->blksize = 512;
	p->windowsize = 1;
	p->timeout_ms = lim->timeout_ms;
	if (req->blksize) {
		/* RFC 2348: the server may answer with a smaller size. */
		p->blksize = req->blksize < lim->blksize_max ? req->blksize :
		    lim->blksize_max;
		p->ack_blksize = true;
	}
	if (req->windowsize) {
		p->windowsize = req->windowsize < lim->windowsize_max ?
		    req->windowsize : lim->windowsize_max;
		p->ack_windowsize = true;
	}
	/* RFC 2349: the timeout is echoed exactly or not at all. */
	if (req->timeout_s && req->timeout_s <= TFTP_CLIENT_TIMEOUT_MAX_S) {
		p->timeout_s = req->timeout_s;
		p->timeout_ms = req->timeout_s * 1000;
		p->ack_timeout = true;
	}
	/* Not for an empty file: curl (7.88 at least) aborts on "tsize 0",
	 * and leaving an option out is always allowed (RFC 2347). */
	if (req->tsize && size > 0) {
		p->tsize = size;
		p->ack_tsize = true;
	}
	p->oack = p->ack_blksize || p->ack_windowsize || p->ack_timeout ||
	    p->ack_tsize;
}

static size_t
tftp_put_option(uint8_t *buf, size_t cap, size_t off, const char *name,
    uint64_t v)
{
	char val[TFTP_DIGITS_MAX + 1];
	size_t nl = strlen(name), vl;

	if (off == 0)
		return 0;
	vl = (size_t)snprintf(val, sizeof(val), "%llu", (unsigned long long)v);
	if (off + nl + 1 + vl + 1 > cap)
		return 0;
	memcpy(buf + off, name, nl + 1);
	off += nl + 1;
	memcpy(buf + off, val, vl + 1);
	return off + vl + 1;
}

size_t
tftp_oack_build(const struct tftp_params *p, uint8_t *buf, size_t cap)
{
	size_t off;

	if (cap < 2)
		return 0;
	buf[0] = 0;
	buf[1] = TFTP_OACK;
	off = 2;
	if (p->ack_blksize)
		off = tftp_put_option(buf, cap, off, "blksize", p->blksize);
	if (p->ack_tsize)
		off = tftp_put_option(buf, cap, off, "tsize", p->tsize);
	if (p->ack_timeout)
		off = tftp_put_option(buf, cap, off, "timeout", p->timeout_s);
	if (p->ack_windowsize)
		off = tftp_put_option(buf, cap, off, "windowsize", p->windowsize);
	return off;
}

size_t
tftp_error_build(uint16_t code, const char *msg, uint8_t *buf, size_t cap)
{
	size_t n = strlen(msg);

	if (cap < TFTP_HDR_LEN + 1)
		return 0;
	if (n > TFTP_ERRMSG_MAX - 1)
		n = TFTP_ERRMSG_MAX - 1;
	if (n > cap - TFTP_HDR_LEN - 1)
		n = cap - TFTP_HDR_LEN - 1;
	buf[0] = 0;
	buf[1] = TFTP_ERROR;
	buf[2] = (uint8_t)(code >> 8);
	buf[3] = (uint8_t)code;
	memcpy(buf + TFTP_HDR_LEN, msg, n);
	buf[TFTP_HDR_LEN + n] = '\0';
	return TFTP_HDR_LEN + n + 1;
}

void
tftp_data_header(uint64_t block, uint8_t hdr[TFTP_HDR_LEN])
{
	/* Past 65535 the wire number rolls over to 0, as tftp-hpa, atftp,
	 * curl and iPXE expect. */
	hdr[0] = 0;
	hdr[1] = TFTP_DATA;
	hdr[2] = (uint8_t)(block >> 8);
	hdr[3] = (uint8_t)block;
}

int
tftp_reply_parse(const uint8_t *buf, size_t len, struct tftp_reply *r,
    char *err, size_t errlen)
{
	unsigned op;
	uint16_t code;

	memset(r, 0, sizeof(*r));
	if (errlen > 0)
		err[0] = '\0';
	if (len < TFTP_HDR_LEN) {
		if (errlen > 0)
			snprintf(err, errlen, "truncated packet (%zu bytes)", len);
		return -EINVAL;
	}
	op = (unsigned)buf[0] << 8 | buf[1];
	if (op == TFTP_ACK) {
		if (len != TFTP_HDR_LEN) {
			if (errlen > 0)
				snprintf(err, errlen, "ACK of %zu bytes (not 4)",
				    len);
			return -EINVAL;
		}
		r->op = TFTP_ACK;
		r->block = (uint16_t)(buf[2] << 8 | buf[3]);
		return 0;
	}
	if (op == TFTP_ERROR) {
		if (buf[len - 1] != '\0' || len == TFTP_HDR_LEN ||
		    memchr(buf + TFTP_HDR_LEN, '\0', len - TFTP_HDR_LEN) !=
		    buf + len - 1) {
			if (errlen > 0)
				snprintf(err, errlen, "ERROR without a single "
				    "terminated message");
			return -EINVAL;
		}
		r->op = TFTP_ERROR;
		r->code = code = (uint16_t)(buf[2] << 8 | buf[3]);
		tftp_escape(buf + TFTP_HDR_LEN, len - TFTP_HDR_LEN - 1, r->msg,
		    sizeof(r->msg));
		return 0;
	}
	if (errlen > 0)
		snprintf(err, errlen, "unexpected opcode %u during a transfer", op);
	return -EINVAL;
}

/* --- the send window ---------------------------------------------------- */

/*
 * Two rules here come from clients rather than RFCs.  atftp (0.8) aborts on
 * a second OACK, so the OACK is never resent on a timer, only in answer to
 * a repeated request; a client that lost it repeats its request, one whose
 * ACK 0 was lost repeats that.  atftp also acknowledges only the first
 * duplicate block after progress (counting its window from its own last
 * ACK), and restarts its own timer on every packet: if that one ACK is lost
 * too, resending the same blocks never gets an answer.  So each timer-driven
 * resend of a negotiated window reaches one block further than the last
 * (up to twice the window): news to a client that has everything sent so
 * far, which clears its duplicate flag and so earns another ACK.
 */

static void
tftp_window_rto(struct tftp_window *w)
{
	int64_t rto = w->srtt8 / 8 + w->rttvar4;

	if (rto < TFTP_RTO_MIN_MS)
		rto = TFTP_RTO_MIN_MS;
	if (rto > (int64_t)w->timeout_ms)
		rto = w->timeout_ms;
	w->rto_ms = (unsigned)rto;
}

/* RFC 6298 in Jacobson's fixed point: srtt x8, rttvar x4, in ms. */
static void
tftp_window_sample(struct tftp_window *w, int64_t now)
{
	int64_t r = now - w->sent_at, e;

	if (w->resent)
		return;		/* Karn: which copy was acknowledged? */
	if (r < 0)
		r = 0;
	if (!w->have_rtt) {
		w->srtt8 = r * 8;
		w->rttvar4 = r * 2;
		w->have_rtt = true;
	} else {
		e = r - w->srtt8 / 8;
		w->srtt8 += e;
		if (e < 0)
			e = -e;
		w->rttvar4 += e - w->rttvar4 / 4;
	}
	tftp_window_rto(w);
}

void
tftp_window_init(struct tftp_window *w, uint64_t size,
    const struct tftp_params *p, unsigned retries, int64_t now)
{
	memset(w, 0, sizeof(*w));
	w->nblocks = size / p->blksize + 1;
	w->windowsize = p->windowsize ? p->windowsize : 1;
	w->oack = p->oack;
	w->probe_ok = p->ack_windowsize;
	w->timeout_ms = p->timeout_ms;
	w->retries = retries;
	/* No sample yet: start at the ceiling, as a classic server would. */
	w->rto_ms = p->timeout_ms;
	w->sent_at = w->progress_at = now;
}

void
tftp_window_span(const struct tftp_window *w, uint64_t *first, unsigned *count)
{
	uint64_t left = w->nblocks - w->acked;
	uint64_t n = (uint64_t)w->windowsize + w->extra;

	if (w->oack) {
		*first = 0;
		*count = 0;
		return;
	}
	*first = w->acked + 1;
	*count = (unsigned)(left < n ? left : n);
}

unsigned
tftp_window_deadline(const struct tftp_window *w, int64_t now)
{
	int64_t left = w->progress_at + (int64_t)w->timeout_ms *
	    (w->retries + 1) - now;

	return left < 1 ? 1 : (unsigned)left;
}

unsigned
tftp_window_sent(struct tftp_window *w, bool retransmit, int64_t now)
{
	uint64_t first;
	unsigned count, left;

	tftp_window_span(w, &first, &count);
	w->sent = w->acked + count;
	w->sent_at = now;
	w->resent = retransmit;
	/* Never sleep past the deadline: the last timer gives up on time.
	 * The OACK waits for the client (see above). */
	left = tftp_window_deadline(w, now);
	/* Less than half a timer would be left after the next one: sleep to
	 * the deadline instead of resending once more just before it. */
	w->at_deadline = !w->oack &&
	    (uint64_t)left * 2 < (uint64_t)w->rto_ms * 3;
	return w->oack || w->at_deadline ? left : w->rto_ms;
}

bool
tftp_window_repeat(const struct tftp_window *w, int64_t now)
{
	return !w->answered && now - w->sent_at >= TFTP_REPEAT_MIN_MS;
}

enum tftp_win_event
tftp_window_ack(struct tftp_window *w, uint16_t block, int64_t now)
{
	uint16_t delta;

	if (w->oack) {
		if (block != 0)
			return TFTP_WIN_IGNORE;
		w->oack = false;
		w->answered = true;
		tftp_window_sample(w, now);
		w->progress_at = now;
	w->at_deadline = false;
		w->at_deadline = false;
		return TFTP_WIN_MORE;
	}
	/* The flight is at most 65536 blocks, so the low 16 bits of an ACK
	 * name one block in (acked, sent] or none. */
	delta = (uint16_t)(block - (uint16_t)w->acked);
	if (delta == 0 || delta > w->sent - w->acked)
		return TFTP_WIN_IGNORE;
	w->acked += delta;
	w->answered = true;
	tftp_window_sample(w, now);
	w->progress_at = now;
	w->at_deadline = false;
	w->extra = 0;
	return w->acked == w->nblocks ? TFTP_WIN_DONE : TFTP_WIN_MORE;
}

enum tftp_win_timer
tftp_window_expired(struct tftp_window *w, int64_t now)
{
	/* A timer armed for the deadline gives up even when it fires a little
	 * early: libevent counts from the loop's cached time, which is behind
	 * the clock read when the timer was armed by however long the
	 * callback ran, and one more resend then would be one too many. */
	if (w->at_deadline ||
	    now - w->progress_at >= (int64_t)w->timeout_ms * (w->retries + 1))
		return TFTP_TIMER_GIVEUP;
	if (w->oack)
		return TFTP_TIMER_WAIT;
	w->rto_ms = w->rto_ms * 2 < w->timeout_ms ? w->rto_ms * 2 :
	    w->timeout_ms;
	w->retransmits++;
	if (w->probe_ok && w->extra < w->windowsize)
		w->extra++;
	return TFTP_TIMER_RESEND;
}
