/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * tftp_proto.c: request parsing and policy (every rejection's code and
 * message), negotiation, packet builders, reply parsing, log escaping and
 * the send window (go-back-N, block-number rollover, the adaptive timer and
 * the deadline), all with time passed in.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wire.h"

/* Packets are written as C strings with explicit lengths: "\0" inside. */
#define PKT(s)	(const uint8_t *)(s), sizeof(s) - 1

struct parse_case {
	const uint8_t *buf;
	size_t len;
	int rc;
	uint16_t code;
	const char *err;
	/* on success */
	const char *filename;
	enum tftp_mode mode;
	unsigned blksize, windowsize, timeout_s, ignored;
	bool tsize;
};

#define BAD(pkt, c, e) { .buf = (const uint8_t *)(pkt), .len = sizeof(pkt) - 1, \
	.rc = -EINVAL, .code = (c), .err = (e) }

static const struct parse_case parse_cases[] = {
	{ PKT("\0\1pxelinux.0\0octet\0"), 0, 0, "", "pxelinux.0",
	    TFTP_MODE_OCTET, 0, 0, 0, 0, false },
	{ PKT("\0\1a/b\0OcTeT\0"), 0, 0, "", "a/b", TFTP_MODE_OCTET, 0, 0, 0, 0,
	    false },
	{ PKT("\0\1f\0netascii\0"), 0, 0, "", "f", TFTP_MODE_NETASCII, 0, 0, 0,
	    0, false },
	{ PKT("\0\2f\0octet\0"), 0, 0, "", "f", TFTP_MODE_OCTET, 0, 0, 0, 0,
	    false },
	{ PKT("\0\1f\0octet\0blksize\0001428\0tsize\0000\0windowsize\0008\0"
	    "timeout\0003\0"), 0, 0, "", "f", TFTP_MODE_OCTET, 1428, 8, 3, 0,
	    true },
	/* Names are case-insensitive; unknown options are ignored. */
	{ PKT("\0\1f\0octet\0BLKSIZE\00065464\0multicast\0\0msftwindow\00031416\0"),
	    0, 0, "", "f", TFTP_MODE_OCTET, 65464, 0, 0, 2, false },
	/* atftp's documented "tsize enable": the value is ignored. */
	{ PKT("\0\1f\0octet\0tsize\0enable\0"), 0, 0, "", "f", TFTP_MODE_OCTET,
	    0, 0, 0, 0, true },
	{ PKT("\0\1f\0octet\0blksize\0008\0windowsize\00065535\0timeout\000255\0"),
	    0, 0, "", "f", TFTP_MODE_OCTET, 8, 65535, 255, 0, false },

	BAD("", TFTP_EILLEGAL,
	    "truncated packet (0 bytes)"),
	BAD("\0", TFTP_EILLEGAL,
	    "truncated packet (1 byte)"),
	BAD("\0\3\0\1", TFTP_EILLEGAL,
	    "opcode 3 is not a request"),
	BAD("\0\4\0\1", TFTP_EILLEGAL,
	    "opcode 4 is not a request"),
	BAD("\0\11f\0octet\0", TFTP_EILLEGAL,
	    "unknown opcode 9"),
	BAD("\xff\xff", TFTP_EILLEGAL,
	    "unknown opcode 65535"),
	BAD("\0\1", TFTP_EILLEGAL,
	    "unterminated file name"),
	BAD("\0\1pxelinux.0", TFTP_EILLEGAL,
	    "unterminated file name"),
	BAD("\0\1\0octet\0", TFTP_EILLEGAL,
	    "empty file name"),
	BAD("\0\1f\0", TFTP_EILLEGAL,
	    "no transfer mode"),
	BAD("\0\1f\0octet", TFTP_EILLEGAL,
	    "unterminated transfer mode"),
	BAD("\0\1f\0mail\0", TFTP_EILLEGAL,
	    "unknown transfer mode 'mail'"),
	BAD("\0\1f\0oc\x01t\0", TFTP_EILLEGAL,
	    "unknown transfer mode 'oc\\x01t'"),
	BAD("\0\1f\0octet\0blksize", TFTP_EILLEGAL,
	    "unterminated option name 'blksize'"),
	BAD("\0\1f\0octet\0blksize\0", TFTP_EILLEGAL,
	    "option blksize has no value"),
	BAD("\0\1f\0octet\0blksize\0001428", TFTP_EILLEGAL,
	    "unterminated value of option blksize"),
	BAD("\0\1f\0octet\0\0", TFTP_EOPTION,
	    "empty option name"),
	BAD("\0\1f\0octet\0blksize\0007\0", TFTP_EOPTION,
	    "option blksize: '7' is not an integer in 8..65464"),
	BAD("\0\1f\0octet\0blksize\00065465\0", TFTP_EOPTION,
	    "option blksize: '65465' is not an integer in 8..65464"),
	BAD("\0\1f\0octet\0blksize\0 512\0", TFTP_EOPTION,
	    "option blksize: ' 512' is not an integer in 8..65464"),
	BAD("\0\1f\0octet\0blksize\0+512\0", TFTP_EOPTION,
	    "option blksize: '+512' is not an integer in 8..65464"),
	BAD("\0\1f\0octet\0blksize\0\0", TFTP_EOPTION,
	    "option blksize: '' is not an integer in 8..65464"),
	BAD("\0\1f\0octet\0blksize\000999999999999999999999\0", TFTP_EOPTION,
	    "option blksize: '999999999999999999999' is not an "
	    "integer in 8..65464"),
	BAD("\0\1f\0octet\0timeout\0000\0", TFTP_EOPTION,
	    "option timeout: '0' is not an integer in 1..255"),
	BAD("\0\1f\0octet\0timeout\000256\0", TFTP_EOPTION,
	    "option timeout: '256' is not an integer in 1..255"),
	BAD("\0\1f\0octet\0windowsize\0000\0", TFTP_EOPTION,
	    "option windowsize: '0' is not an integer in 1..65535"),
	BAD("\0\1f\0octet\0blksize\000512\0BlkSize\000512\0", TFTP_EOPTION,
	    "option BlkSize is given twice"),
	BAD("\0\1f\0octet\0x\0\0x\0\0", TFTP_EOPTION,
	    "option x is given twice"),
	BAD("\0\1f\0octet\0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\0001\0",
	    TFTP_EOPTION,
	    "option name 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' is "
	    "longer than 32 bytes"),
	BAD("\0\1f\0octet\0x\0"
	    "00000000000000000000000000000000000000000000000000000000000000000\0",
	    TFTP_EOPTION,
	    "value of option x is longer than 64 bytes"),
	BAD("\0\1f\0octet\0a\0\0b\0\0c\0\0d\0\0e\0\0f\0\0g\0\0h\0\0i\0\0j\0\0"
	    "k\0\0l\0\0m\0\0n\0\0o\0\0p\0\0q\0\0", TFTP_EOPTION,
	    "more than 16 options"),
	{ PKT("\0\1f\0octet\0bl\xffksize\0\0"), 0, 0, "", "f", TFTP_MODE_OCTET,
	    0, 0, 0, 1, false },
};

static void
test_request_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(*parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct tftp_request req;
		uint16_t code = 99;
		char err[TFTP_ERRMSG_MAX];
		int rc;

		rc = tftp_request_parse(c->buf, c->len, &req, &code, err,
		    sizeof(err));
		if (rc != c->rc || strcmp(err, c->err) != 0)
			fail_msg("case %zu: rc %d err '%s', want %d '%s'", i, rc,
			    err, c->rc, c->err);
		if (rc < 0) {
			assert_int_equal(code, c->code);
			continue;
		}
		assert_int_equal(code, 99);	/* untouched on success */
		assert_string_equal(req.filename, c->filename);
		assert_int_equal(req.mode, c->mode);
		assert_int_equal(req.blksize, c->blksize);
		assert_int_equal(req.windowsize, c->windowsize);
		assert_int_equal(req.timeout_s, c->timeout_s);
		assert_int_equal(req.ignored, c->ignored);
		assert_int_equal(req.tsize, c->tsize);
	}
}

static void
test_request_limits(void **state)
{
	uint8_t buf[TFTP_REQUEST_MAX + 16];
	struct tftp_request req;
	char err[TFTP_ERRMSG_MAX];
	uint16_t code;
	size_t n;

	(void)state;
	/* A 255-byte name is fine; 256 is not. */
	memset(buf, 0, sizeof(buf));
	buf[1] = TFTP_RRQ;
	memset(buf + 2, 'a', 255);
	memcpy(buf + 2 + 255 + 1, "octet", 6);
	n = 2 + 255 + 1 + 6;
	assert_int_equal(tftp_request_parse(buf, n, &req, &code, err,
	    sizeof(err)), 0);
	assert_int_equal(strlen(req.filename), 255);
	memset(buf + 2, 'a', 256);
	memcpy(buf + 2 + 256 + 1, "octet", 6);
	assert_int_equal(tftp_request_parse(buf, n + 1, &req, &code, err,
	    sizeof(err)), -EINVAL);
	assert_string_equal(err, "file name longer than 255 bytes");
	/* Exactly 512 bytes parse; 513 do not, whatever they hold. */
	memset(buf, 0, sizeof(buf));
	buf[1] = TFTP_RRQ;
	buf[2] = 'f';
	memcpy(buf + 4, "octet", 6);
	n = 10;
	memcpy(buf + n, "x", 2);
	n += 2;
	memset(buf + n, '1', TFTP_REQUEST_MAX - n - 1);
	assert_int_equal(tftp_request_parse(buf, TFTP_REQUEST_MAX, &req, &code,
	    err, sizeof(err)), -EINVAL);
	/* ...that one has a 500-byte value: refused as oversize. */
	assert_string_equal(err, "value of option x is longer than 64 bytes");
	assert_int_equal(code, TFTP_EOPTION);
	assert_int_equal(tftp_request_parse(buf, TFTP_REQUEST_MAX + 1, &req,
	    &code, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "request longer than 512 bytes");
	assert_int_equal(code, TFTP_EILLEGAL);
	/* A short err buffer is truncated, never overrun. */
	assert_int_equal(tftp_request_parse(PKT("\0\11x"), &req, &code, err, 8),
	    -EINVAL);
	assert_string_equal(err, "unknown");
}

struct check_case {
	enum tftp_op op;
	enum tftp_mode mode;
	const char *name;
	uint16_t code;		/* 0xffff: accepted */
	const char *err;
};

static const struct check_case check_cases[] = {
	{ TFTP_RRQ, TFTP_MODE_OCTET, "undionly.kpxe", 0xffff, "" },
	{ TFTP_RRQ, TFTP_MODE_OCTET, "efi/x86_64/ipxe.efi", 0xffff, "" },
	{ TFTP_RRQ, TFTP_MODE_OCTET, "a..b", 0xffff, "" },
	{ TFTP_RRQ, TFTP_MODE_OCTET, "...", 0xffff, "" },
	{ TFTP_RRQ, TFTP_MODE_OCTET, "a/..b/c", 0xffff, "" },
	{ TFTP_RRQ, TFTP_MODE_OCTET, "./x", 0xffff, "" },
	{ TFTP_WRQ, TFTP_MODE_OCTET, "x", TFTP_EACCESS,
	    "write requests are refused: hvd serves files read-only" },
	{ TFTP_RRQ, TFTP_MODE_NETASCII, "x", TFTP_EILLEGAL,
	    "mode netascii is not supported: use octet" },
	{ TFTP_RRQ, TFTP_MODE_OCTET, "/etc/passwd", TFTP_EACCESS,
	    "absolute paths are refused: names are relative to the boot root" },
	{ TFTP_RRQ, TFTP_MODE_OCTET, "..", TFTP_EACCESS,
	    "'..' in a path is refused" },
	{ TFTP_RRQ, TFTP_MODE_OCTET, "../etc/passwd", TFTP_EACCESS,
	    "'..' in a path is refused" },
	{ TFTP_RRQ, TFTP_MODE_OCTET, "a/../../x", TFTP_EACCESS,
	    "'..' in a path is refused" },
	{ TFTP_RRQ, TFTP_MODE_OCTET, "a/..", TFTP_EACCESS,
	    "'..' in a path is refused" },
	{ TFTP_RRQ, TFTP_MODE_OCTET, "a\tb", TFTP_EACCESS,
	    "file names are printable ASCII" },
	{ TFTP_RRQ, TFTP_MODE_OCTET, "caf\xc3\xa9", TFTP_EACCESS,
	    "file names are printable ASCII" },
};

static void
test_request_check(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(check_cases) / sizeof(*check_cases); i++) {
		const struct check_case *c = &check_cases[i];
		struct tftp_request req = { .op = c->op, .mode = c->mode };
		char err[TFTP_ERRMSG_MAX];
		uint16_t code = 0xffff;
		int rc;

		snprintf(req.filename, sizeof(req.filename), "%s", c->name);
		rc = tftp_request_check(&req, &code, err, sizeof(err));
		if (code != c->code || strcmp(err, c->err) != 0 ||
		    (rc == 0) != (c->code == 0xffff))
			fail_msg("case %zu (%s): rc %d code %u '%s'", i, c->name,
			    rc, code, err);
	}
}

static void
test_negotiate(void **state)
{
	const struct tftp_limits lim = { 1468, 16, 1000 };
	struct tftp_request req = { .op = TFTP_RRQ };
	struct tftp_params p;
	uint8_t buf[128];
	size_t n;

	(void)state;
	/* No options: RFC 1350, no OACK. */
	tftp_negotiate(&req, &lim, 100, &p);
	assert_false(p.oack);
	assert_int_equal(p.blksize, 512);
	assert_int_equal(p.windowsize, 1);
	assert_int_equal(p.timeout_ms, 1000);
	/* Only unknown options: still no OACK (RFC 2347). */
	req.ignored = 3;
	tftp_negotiate(&req, &lim, 100, &p);
	assert_false(p.oack);
	/* Everything, capped by the limits; the timeout is echoed exactly. */
	req.blksize = 65464;
	req.windowsize = 64;
	req.timeout_s = 3;
	req.tsize = true;
	tftp_negotiate(&req, &lim, 33554432, &p);
	assert_true(p.oack);
	assert_int_equal(p.blksize, 1468);
	assert_int_equal(p.windowsize, 16);
	assert_int_equal(p.timeout_ms, 3000);
	n = tftp_oack_build(&p, buf, sizeof(buf));
	assert_int_equal(n, sizeof("\0\6blksize\0001468\0tsize\00033554432\0"
	    "timeout\0003\0windowsize\00016\0") - 1);
	assert_memory_equal(buf, "\0\6blksize\0001468\0tsize\00033554432\0"
	    "timeout\0003\0windowsize\00016\0", n);
	/* Below the caps a request is granted as asked. */
	req.blksize = 1024;
	req.windowsize = 4;
	req.tsize = false;
	req.timeout_s = 0;
	tftp_negotiate(&req, &lim, 1, &p);
	assert_int_equal(p.blksize, 1024);
	assert_int_equal(p.windowsize, 4);
	assert_false(p.ack_tsize);
	assert_false(p.ack_timeout);
	n = tftp_oack_build(&p, buf, sizeof(buf));
	assert_memory_equal(buf, "\0\6blksize\0001024\0windowsize\0004\0", n);
	/* A timeout beyond hvd's bound is left out, not changed (RFC 2349). */
	req.timeout_s = TFTP_CLIENT_TIMEOUT_MAX_S + 1;
	tftp_negotiate(&req, &lim, 1, &p);
	assert_false(p.ack_timeout);
	assert_int_equal(p.timeout_ms, 1000);
	/* An empty file's tsize is left out (curl refuses "tsize 0"). */
	memset(&req, 0, sizeof(req));
	req.tsize = true;
	tftp_negotiate(&req, &lim, 0, &p);
	assert_false(p.oack);
	tftp_negotiate(&req, &lim, 1, &p);
	assert_true(p.oack);
	n = tftp_oack_build(&p, buf, sizeof(buf));
	assert_memory_equal(buf, "\0\6tsize\0001\0", n);
	/* Too small a buffer: 0, not an overrun. */
	assert_int_equal(tftp_oack_build(&p, buf, 9), 0);
	assert_int_equal(tftp_oack_build(&p, buf, 10), 10);
}

static void
test_builders(void **state)
{
	uint8_t buf[TFTP_HDR_LEN + TFTP_ERRMSG_MAX], hdr[TFTP_HDR_LEN];
	char longmsg[300];
	size_t n;

	(void)state;
	n = tftp_error_build(TFTP_ENOTFOUND, "file not found", buf, sizeof(buf));
	assert_int_equal(n, 4 + 14 + 1);
	assert_memory_equal(buf, "\0\5\0\1file not found\0", n);
	memset(longmsg, 'm', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	n = tftp_error_build(TFTP_EOPTION, longmsg, buf, sizeof(buf));
	assert_int_equal(n, TFTP_HDR_LEN + TFTP_ERRMSG_MAX);
	assert_int_equal(buf[3], 8);
	assert_int_equal(buf[n - 1], 0);
	assert_int_equal(tftp_error_build(0, "x", buf, 4), 0);
	assert_int_equal(tftp_error_build(0, "xyz", buf, 6), 6);
	assert_memory_equal(buf, "\0\5\0\0x\0", 6);
	tftp_data_header(1, hdr);
	assert_memory_equal(hdr, "\0\3\0\1", 4);
	tftp_data_header(65535, hdr);
	assert_memory_equal(hdr, "\0\3\xff\xff", 4);
	/* Rollover: block 65536 is 0 on the wire, 65537 is 1. */
	tftp_data_header(65536, hdr);
	assert_memory_equal(hdr, "\0\3\0\0", 4);
	tftp_data_header(65537, hdr);
	assert_memory_equal(hdr, "\0\3\0\1", 4);
}

struct reply_case {
	const uint8_t *buf;
	size_t len;
	int rc;
	enum tftp_op op;
	uint16_t block, code;
	const char *msg;	/* or the error */
};

static const struct reply_case reply_cases[] = {
	{ PKT("\0\4\0\0"), 0, TFTP_ACK, 0, 0, "" },
	{ PKT("\0\4\xff\xfe"), 0, TFTP_ACK, 65534, 0, "" },
	{ PKT("\0\5\0\3disk full\0"), 0, TFTP_ERROR, 0, 3, "disk full" },
	{ PKT("\0\5\0\10\0"), 0, TFTP_ERROR, 0, 8, "" },
	{ PKT("\0\5\0\0bad\nline\0"), 0, TFTP_ERROR, 0, 0, "bad\\x0aline" },
	{ PKT("\0\4\0"), -EINVAL, 0, 0, 0, "truncated packet (3 bytes)" },
	{ PKT("\0\4\0\1\0"), -EINVAL, 0, 0, 0, "ACK of 5 bytes (not 4)" },
	{ PKT("\0\5\0\1"), -EINVAL, 0, 0, 0,
	    "ERROR without a single terminated message" },
	{ PKT("\0\5\0\1abc"), -EINVAL, 0, 0, 0,
	    "ERROR without a single terminated message" },
	{ PKT("\0\5\0\1a\0b\0"), -EINVAL, 0, 0, 0,
	    "ERROR without a single terminated message" },
	{ PKT("\0\3\0\1data"), -EINVAL, 0, 0, 0,
	    "unexpected opcode 3 during a transfer" },
	{ PKT("\0\1f\0octet\0"), -EINVAL, 0, 0, 0,
	    "unexpected opcode 1 during a transfer" },
};

static void
test_reply_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(reply_cases) / sizeof(*reply_cases); i++) {
		const struct reply_case *c = &reply_cases[i];
		struct tftp_reply r;
		char err[TFTP_ERRMSG_MAX];
		int rc;

		rc = tftp_reply_parse(c->buf, c->len, &r, err, sizeof(err));
		if (rc != c->rc)
			fail_msg("case %zu: rc %d (%s)", i, rc, err);
		if (rc < 0) {
			assert_string_equal(err, c->msg);
			continue;
		}
		assert_int_equal(r.op, c->op);
		assert_int_equal(r.block, c->block);
		assert_int_equal(r.code, c->code);
		assert_string_equal(r.msg, c->msg);
	}
}

static void
test_escape(void **state)
{
	char out[16];

	(void)state;
	tftp_escape(PKT("plain.txt"), out, sizeof(out));
	assert_string_equal(out, "plain.txt");
	tftp_escape(PKT("a\\b\x1b[2J"), out, sizeof(out));
	assert_string_equal(out, "a\\x5cb\\x1b[2J");
	tftp_escape(PKT("0123456789abcdefghij"), out, sizeof(out));
	assert_string_equal(out, "0123456789ab...");
	assert_int_equal(strlen(out), 15);
	tftp_escape(PKT("0123456789abcde"), out, sizeof(out));
	assert_string_equal(out, "0123456789abcde");
	tftp_escape(PKT("\xff\xff\xff\xff"), out, sizeof(out));
	assert_string_equal(out, "\\xff\\xff\\xff...");
	tftp_escape(PKT("abc"), out, 1);
	assert_string_equal(out, "");
}

static struct tftp_params
params(unsigned blksize, unsigned windowsize, bool oack, unsigned timeout_ms)
{
	struct tftp_params p = { .blksize = blksize, .windowsize = windowsize,
	    .oack = oack, .timeout_ms = timeout_ms };

	return p;
}

static void
test_window_lockstep(void **state)
{
	struct tftp_params p = params(512, 1, false, 1000);
	struct tftp_window w;
	uint64_t first;
	unsigned count;

	(void)state;
	/* 1024 bytes: two full blocks and an empty third one. */
	tftp_window_init(&w, 1024, &p, 5, 0);
	assert_int_equal(w.nblocks, 3);
	tftp_window_span(&w, &first, &count);
	assert_int_equal(first, 1);
	assert_int_equal(count, 1);
	assert_int_equal(tftp_window_sent(&w, false, 0), 1000);
	/* ACK 0 before an RFC 1350 first block means nothing. */
	assert_int_equal(tftp_window_ack(&w, 0, 1), TFTP_WIN_IGNORE);
	assert_int_equal(tftp_window_ack(&w, 2, 1), TFTP_WIN_IGNORE);
	assert_int_equal(tftp_window_ack(&w, 1, 1), TFTP_WIN_MORE);
	assert_int_equal(tftp_window_ack(&w, 1, 1), TFTP_WIN_IGNORE);
	tftp_window_span(&w, &first, &count);
	assert_int_equal(first, 2);
	tftp_window_sent(&w, false, 2);
	assert_int_equal(tftp_window_ack(&w, 2, 3), TFTP_WIN_MORE);
	tftp_window_span(&w, &first, &count);
	assert_int_equal(first, 3);
	assert_int_equal(count, 1);
	tftp_window_sent(&w, false, 3);
	assert_int_equal(tftp_window_ack(&w, 3, 4), TFTP_WIN_DONE);

	/* An empty file is one empty block. */
	tftp_window_init(&w, 0, &p, 5, 0);
	assert_int_equal(w.nblocks, 1);
	tftp_window_sent(&w, false, 0);
	assert_int_equal(tftp_window_ack(&w, 1, 0), TFTP_WIN_DONE);
}

static void
test_window_oack_and_go_back(void **state)
{
	struct tftp_params p = params(1000, 4, true, 1000);
	struct tftp_window w;
	uint64_t first;
	unsigned count;

	(void)state;
	tftp_window_init(&w, 9500, &p, 5, 0);	/* 10 blocks, the last short */
	assert_int_equal(w.nblocks, 10);
	tftp_window_span(&w, &first, &count);
	assert_int_equal(count, 0);		/* the OACK */
	tftp_window_sent(&w, false, 0);
	assert_int_equal(tftp_window_ack(&w, 1, 1), TFTP_WIN_IGNORE);
	assert_int_equal(tftp_window_ack(&w, 0, 1), TFTP_WIN_MORE);
	tftp_window_span(&w, &first, &count);
	assert_int_equal(first, 1);
	assert_int_equal(count, 4);
	tftp_window_sent(&w, false, 2);
	/* Block 3 was lost: the client acknowledges 2; go back to 3. */
	assert_int_equal(tftp_window_ack(&w, 2, 3), TFTP_WIN_MORE);
	tftp_window_span(&w, &first, &count);
	assert_int_equal(first, 3);
	assert_int_equal(count, 4);
	/* Before the resend, a late ACK 4 is still inside the flight. */
	assert_int_equal(tftp_window_ack(&w, 4, 3), TFTP_WIN_MORE);
	tftp_window_sent(&w, false, 3);
	assert_int_equal(w.sent, 8);
	/* Duplicates and ACKs beyond the flight are ignored. */
	assert_int_equal(tftp_window_ack(&w, 4, 4), TFTP_WIN_IGNORE);
	assert_int_equal(tftp_window_ack(&w, 9, 4), TFTP_WIN_IGNORE);
	assert_int_equal(tftp_window_ack(&w, 8, 4), TFTP_WIN_MORE);
	tftp_window_span(&w, &first, &count);
	assert_int_equal(first, 9);
	assert_int_equal(count, 2);		/* only two blocks remain */
	tftp_window_sent(&w, false, 5);
	assert_int_equal(tftp_window_ack(&w, 10, 6), TFTP_WIN_DONE);
}

static void
test_window_rollover(void **state)
{
	struct tftp_params p = params(512, 8, true, 1000);
	struct tftp_window w;
	uint64_t first;
	unsigned count;
	int64_t t = 0;

	(void)state;
	/* 32 MiB at 512 bytes: 65537 blocks, the last one empty. */
	tftp_window_init(&w, 32 << 20, &p, 5, t);
	assert_int_equal(w.nblocks, 65537);
	tftp_window_sent(&w, false, t);
	assert_int_equal(tftp_window_ack(&w, 0, ++t), TFTP_WIN_MORE);
	for (;;) {
		enum tftp_win_event ev;

		tftp_window_span(&w, &first, &count);
		tftp_window_sent(&w, false, t);
		ev = tftp_window_ack(&w, (uint16_t)(first + count - 1), ++t);
		if (ev == TFTP_WIN_DONE)
			break;
		assert_int_equal(ev, TFTP_WIN_MORE);
		assert_true(t < 10000);
	}
	assert_int_equal(w.acked, 65537);
	/* Across the wrap: blocks 65530..65537 are 65530..65535, 0, 1. */
	tftp_window_init(&w, 32 << 20, &p, 5, 0);
	w.oack = false;
	w.acked = 65529;
	tftp_window_sent(&w, false, 0);
	assert_int_equal(w.sent, 65537);
	assert_int_equal(tftp_window_ack(&w, 65529, 1), TFTP_WIN_IGNORE);
	assert_int_equal(tftp_window_ack(&w, 0, 1), TFTP_WIN_MORE);
	assert_int_equal(w.acked, 65536);
	assert_int_equal(tftp_window_ack(&w, 65535, 1), TFTP_WIN_IGNORE);
	assert_int_equal(tftp_window_ack(&w, 1, 2), TFTP_WIN_DONE);
}

static void
test_window_timer(void **state)
{
	struct tftp_params p = params(512, 4, true, 1000);
	struct tftp_window w;
	enum tftp_win_timer ev;
	unsigned ms, n;
	int64_t t = 0;

	(void)state;
	/* The OACK is never resent on a timer (atftp aborts on a second
	 * one): the timer waits for the deadline, a repeated request is
	 * answered, but not twice within TFTP_REPEAT_MIN_MS. */
	tftp_window_init(&w, 1 << 20, &p, 5, t);
	assert_int_equal(tftp_window_sent(&w, false, t), 6000);
	assert_int_equal(tftp_window_expired(&w, 3000), TFTP_TIMER_WAIT);
	assert_int_equal(tftp_window_deadline(&w, 3000), 3000);
	assert_false(tftp_window_repeat(&w, TFTP_REPEAT_MIN_MS - 1));
	assert_true(tftp_window_repeat(&w, TFTP_REPEAT_MIN_MS));
	assert_int_equal(tftp_window_expired(&w, 6000), TFTP_TIMER_GIVEUP);
	assert_int_equal(w.retransmits, 0);

	/* A 2 ms round trip for the OACK: the timer drops to its floor. */
	tftp_window_init(&w, 1 << 20, &p, 5, 0);
	tftp_window_sent(&w, false, 0);
	t = 2;
	assert_int_equal(tftp_window_ack(&w, 0, t), TFTP_WIN_MORE);
	assert_true(w.have_rtt);
	assert_int_equal(w.rto_ms, TFTP_RTO_MIN_MS);
	ms = tftp_window_sent(&w, false, t);
	assert_int_equal(ms, TFTP_RTO_MIN_MS);
	assert_false(tftp_window_repeat(&w, 10000));	/* it answered */
	/* Timeouts back off to the ceiling and give up at the deadline:
	 * timeout * (retries + 1) after the last progress. */
	n = 0;
	for (;;) {
		t += ms;
		if ((ev = tftp_window_expired(&w, t)) != TFTP_TIMER_RESEND)
			break;
		n++;
		ms = tftp_window_sent(&w, true, t);
		assert_true(ms >= 1 && ms <= 1000);
		assert_true(t + ms <= 2 + 6000);
	}
	assert_int_equal(ev, TFTP_TIMER_GIVEUP);
	assert_int_equal(t, 2 + 6000);
	assert_int_equal(w.retransmits, n);
	assert_true(n >= 5 && n <= 10);

	/* The timer armed for the deadline gives up even when libevent fires
	 * it a few ms early (its clock is the loop's cached time): three
	 * retries are three resends, never a fourth. */
	p = params(512, 1, false, 300);
	tftp_window_init(&w, 1 << 20, &p, 3, 0);
	assert_int_equal(tftp_window_sent(&w, false, 0), 300);
	for (n = 1; n <= 3; n++) {
		assert_int_equal(tftp_window_expired(&w, 300 * n - 2),
		    TFTP_TIMER_RESEND);
		ms = tftp_window_sent(&w, true, 300 * n - 2);
	}
	assert_int_equal(ms, 302);
	assert_int_equal(tftp_window_expired(&w, 1200 - 3), TFTP_TIMER_GIVEUP);
	assert_int_equal(w.retransmits, 3);

	/* Karn: an ACK for a resent flight gives no sample. */
	p = params(512, 4, false, 1000);
	tftp_window_init(&w, 1 << 20, &p, 5, 0);
	assert_int_equal(tftp_window_sent(&w, false, 0), 1000);
	assert_int_equal(tftp_window_expired(&w, 1000), TFTP_TIMER_RESEND);
	tftp_window_sent(&w, true, 1000);
	assert_int_equal(tftp_window_ack(&w, 4, 1001), TFTP_WIN_MORE);
	assert_false(w.have_rtt);
	assert_int_equal(w.rto_ms, 1000);
	/* Progress moves the deadline. */
	tftp_window_sent(&w, false, 1001);
	assert_int_equal(tftp_window_ack(&w, 8, 5000), TFTP_WIN_MORE);
	assert_true(w.have_rtt);
	assert_int_equal(tftp_window_expired(&w, 10000), TFTP_TIMER_RESEND);
	assert_int_equal(tftp_window_expired(&w, 11000), TFTP_TIMER_GIVEUP);

	/* A slow client: the estimate follows it up to the ceiling. */
	p = params(512, 4, true, 1000);
	tftp_window_init(&w, 1 << 20, &p, 5, 0);
	tftp_window_sent(&w, false, 0);
	tftp_window_ack(&w, 0, 300);
	assert_int_equal(w.rto_ms, 900);	/* 300 + 4 * 150 */
}

static void
test_window_probe(void **state)
{
	struct tftp_params p = params(512, 4, false, 1000);
	struct tftp_window w;
	uint64_t first;
	unsigned count;

	(void)state;
	/* A negotiated window: each timer-driven resend reaches one block
	 * further, up to twice the window; progress ends the probing. */
	p.ack_windowsize = true;
	tftp_window_init(&w, 512 * 20, &p, 5, 0);	/* 21 blocks */
	tftp_window_sent(&w, false, 0);
	assert_int_equal(w.sent, 4);
	for (unsigned i = 1; i <= 6; i++) {
		assert_int_equal(tftp_window_expired(&w, 100 * i),
		    TFTP_TIMER_RESEND);
		tftp_window_span(&w, &first, &count);
		assert_int_equal(first, 1);
		assert_int_equal(count, 4 + (i < 4 ? i : 4));
		tftp_window_sent(&w, true, 100 * i);
	}
	assert_int_equal(w.sent, 8);
	/* The client answers for a probe block: accepted. */
	assert_int_equal(tftp_window_ack(&w, 6, 1001), TFTP_WIN_MORE);
	tftp_window_span(&w, &first, &count);
	assert_int_equal(first, 7);
	assert_int_equal(count, 4);		/* back to the window */
	/* Near the end the probe is bounded by the file. */
	w.acked = 19;
	assert_int_equal(tftp_window_expired(&w, 1100), TFTP_TIMER_RESEND);
	tftp_window_span(&w, &first, &count);
	assert_int_equal(count, 2);
	/* Lockstep (no windowsize option): never more than one block. */
	p.ack_windowsize = false;
	p.windowsize = 1;
	tftp_window_init(&w, 512 * 20, &p, 5, 0);
	tftp_window_sent(&w, false, 0);
	assert_int_equal(tftp_window_expired(&w, 1000), TFTP_TIMER_RESEND);
	tftp_window_span(&w, &first, &count);
	assert_int_equal(count, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_parse),
		cmocka_unit_test(test_request_limits),
		cmocka_unit_test(test_request_check),
		cmocka_unit_test(test_negotiate),
		cmocka_unit_test(test_builders),
		cmocka_unit_test(test_reply_parse),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_window_lockstep),
		cmocka_unit_test(test_window_oack_and_go_back),
		cmocka_unit_test(test_window_rollover),
		cmocka_unit_test(test_window_timer),
		cmocka_unit_test(test_window_probe),
	};

	log_init(true, LOG_LEVEL_ERROR, "test");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
