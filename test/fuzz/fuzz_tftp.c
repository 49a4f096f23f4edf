/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libFuzzer target: TFTP over arbitrary bytes.  The same input is
 *  - a request: a rejection names a TFTP code hvd sends (4 or 8) and a
 *    printable message; an accepted one has a sane name, hvd's policy
 *    never passes ".." or an absolute path, and the OACK always fits the
 *    transfer's 128-byte buffer;
 *  - a packet during a transfer (ACK or ERROR);
 *  - a script for the send window: ACKs with any block number, timeouts
 *    and repeated requests, checked against the window's invariants (the
 *    OACK is never resent on a timer; the timer never passes the deadline).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			abort();
}

static void
request(const uint8_t *data, size_t size)
{
	const struct tftp_limits lim = { 1468, 16, 1000 };
	struct tftp_request req;
	struct tftp_params p;
	char err[TFTP_ERRMSG_MAX];
	uint8_t oack[128];
	uint16_t code = 0xffff;
	size_t n;

	if (tftp_request_parse(data, size, &req, &code, err, sizeof(err)) < 0) {
		if ((code != TFTP_EILLEGAL && code != TFTP_EOPTION) || !err[0])
			abort();
		printable(err);
		return;
	}
	n = strlen(req.filename);
	if (n == 0 || n > TFTP_FILENAME_MAX ||
	    (req.op != TFTP_RRQ && req.op != TFTP_WRQ))
		abort();
	if (tftp_request_check(&req, &code, err, sizeof(err)) < 0) {
		if (code != TFTP_EACCESS && code != TFTP_EILLEGAL)
			abort();
		printable(err);
		return;
	}
	if (req.filename[0] == '/' || strcmp(req.filename, "..") == 0 ||
	    strncmp(req.filename, "../", 3) == 0 ||
	    strstr(req.filename, "/../") != NULL ||
	    (n >= 3 && strcmp(req.filename + n - 3, "/..") == 0))
		abort();
	printable(req.filename);
	tftp_negotiate(&req, &lim, UINT64_MAX, &p);
	if (p.blksize < TFTP_BLKSIZE_MIN || p.blksize > lim.blksize_max ||
	    p.windowsize < 1 || p.windowsize > lim.windowsize_max ||
	    p.timeout_ms < 1000 || p.timeout_ms > TFTP_CLIENT_TIMEOUT_MAX_S * 1000)
		abort();
	n = tftp_oack_build(&p, oack, sizeof(oack));
	if (p.oack && (n <= 2 || oack[n - 1] != '\0'))
		abort();
}

static void
reply(const uint8_t *data, size_t size)
{
	struct tftp_reply r;
	char err[TFTP_ERRMSG_MAX];

	if (tftp_reply_parse(data, size, &r, err, sizeof(err)) < 0) {
		printable(err);
		return;
	}
	if (r.op == TFTP_ACK ? size != 4 : r.op != TFTP_ERROR)
		abort();
	printable(r.msg);
}

static void
window(const uint8_t *data, size_t size)
{
	struct tftp_params p = { 0 };
	struct tftp_window w;
	uint64_t fsize, first;
	unsigned count, ms;
	int64_t t = 0;
	bool done = false;

	if (size < 8)
		return;
	fsize = (uint64_t)data[0] << 16 | (uint64_t)data[1] << 8 | data[2];
	fsize <<= data[3] & 7;
	p.blksize = TFTP_BLKSIZE_MIN + ((unsigned)data[4] << 8 | data[5]) % 1461;
	p.windowsize = 1 + data[6] % 64;
	p.oack = data[7] & 1;
	p.ack_windowsize = (data[3] & 8) != 0;
	p.timeout_ms = 100 + (data[7] >> 1) * 100;
	tftp_window_init(&w, fsize, &p, 5, t);
	ms = tftp_window_sent(&w, false, t);
	for (size_t i = 8; i + 3 <= size && !done; i += 3) {
		uint16_t block = (uint16_t)(data[i + 1] << 8 | data[i + 2]);

		/* The OACK waits for the deadline; anything else is resent
		 * within the negotiated timeout, except that the last wait
		 * runs to the deadline when less than half a timeout would
		 * be left after one more. */
		if (ms < 1 || ms > p.timeout_ms * 6u ||
		    (!w.oack && ms > p.timeout_ms && !(w.at_deadline &&
		    2u * ms < 3u * p.timeout_ms)))
			abort();
		switch (data[i] % 4) {
		case 0:		/* a timeout */
			t += ms;
			switch (tftp_window_expired(&w, t)) {
			case TFTP_TIMER_GIVEUP:
				return;
			case TFTP_TIMER_WAIT:
				if (!w.oack)
					abort();
				ms = tftp_window_deadline(&w, t);
				break;
			case TFTP_TIMER_RESEND:
				ms = tftp_window_sent(&w, true, t);
				break;
			}
			break;
		case 1:		/* the ACK the window expects */
			block = (uint16_t)w.sent;
			/* fall through */
		case 2:		/* any ACK */
			t += data[i] >> 2;
			switch (tftp_window_ack(&w, block, t)) {
			case TFTP_WIN_DONE:
				done = true;
				break;
			case TFTP_WIN_MORE:
				ms = tftp_window_sent(&w, false, t);
				break;
			case TFTP_WIN_IGNORE:
				break;
			}
			break;
		default:	/* the client repeats its request */
			t += data[i] >> 2;
			if (tftp_window_repeat(&w, t))
				ms = tftp_window_sent(&w, true, t);
			break;
		}
		/* A resend may probe up to a window further. */
		if (w.acked > w.sent || w.sent > w.nblocks ||
		    w.sent - w.acked > 2u * w.windowsize ||
		    w.rto_ms < (TFTP_RTO_MIN_MS < p.timeout_ms ?
		    TFTP_RTO_MIN_MS : p.timeout_ms) || w.rto_ms > p.timeout_ms)
			abort();
		if (done != (w.acked == w.nblocks))
			abort();
		if (!done) {
			tftp_window_span(&w, &first, &count);
			if (!w.oack && (first != w.acked + 1 || count < 1 ||
			    count > 2u * w.windowsize))
				abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	request(data, size);
	reply(data, size);
	window(data, size);
	return 0;
}
