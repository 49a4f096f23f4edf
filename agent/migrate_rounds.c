/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * migrate_rounds.c: the pre-copy round counter (migrate_rounds.h).
 *
 * A small state machine over the stream: it gathers one fixed-size header
 * at a time in acc[], and passes over bodies it does not need by counting
 * (skip), so a 128 MiB record costs nothing but the count.  The only
 * bodies it reads are PAGE_DATA's count and page numbers.
 *
 * Invariants: at most sizeof(acc) bytes are ever copied; every length is
 * checked against libxc's own limit before it is used; once broken or
 * complete, feeding is a no-op and the round never changes again; the
 * round only ever grows.
 */
#include <endian.h>
#include <string.h>

#include "migrate_rounds.h"

/* libxl_sr_stream_format.h */
#define LIBXL_IDENT		0x4c6962786c466d74ULL	/* "LibxlFmt" */
#define LIBXL_VERSION_2		2U
#define LIBXL_REC_END		0U
#define LIBXL_REC_LIBXC_CONTEXT	1U
/* xg_sr_stream_format.h */
#define XC_MARKER		0xffffffffffffffffULL
#define XC_ID			0x58454e46U		/* "XENF" */
#define XC_REC_END		0U
#define XC_REC_PAGE_DATA	1U
#define XC_REC_OPTIONAL		0x80000000U
#define XC_REC_LENGTH_MAX	(128U << 20)
#define XC_PFN_MASK		0x000fffffffffffffULL

enum {
	ST_LIBXL_HDR,		/* 16 bytes */
	ST_LIBXL_REC,		/* 8: type, length */
	ST_XC_IHDR,		/* 24 */
	ST_XC_DHDR,		/* 16 */
	ST_XC_REC,		/* 8 */
	ST_PAGE_HDR,		/* 8: count, reserved */
	ST_PAGE_PFN,		/* 8 each */
	ST_DONE,
	ST_BROKEN,
};

static void
expect(struct mig_rounds *r, int state, size_t need, uint64_t skip)
{
	r->state = state;
	r->need = need;
	r->have = 0;
	r->skip = skip;
}

static void
broken(struct mig_rounds *r, const char *why)
{
	r->state = ST_BROKEN;
	r->broken = why;
}

static uint32_t
le32_at(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static uint64_t
le64_at(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static uint32_t
be32_at(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return be32toh(v);
}

static uint64_t
be64_at(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return be64toh(v);
}

/* A record body's bytes on the stream: padded to 8. */
static uint64_t
padded(uint32_t len)
{
	return ((uint64_t)len + 7) & ~(uint64_t)7;
}

static void
on_pfn(struct mig_rounds *r, uint64_t pfn)
{
	if (!r->any_pfn || pfn <= r->last_pfn)
		r->round++;
	r->any_pfn = true;
	r->last_pfn = pfn;
	r->pages++;
}

static void
on_page_hdr(struct mig_rounds *r, uint32_t len)
{
	uint32_t count = le32_at(r->acc);
	uint64_t body = padded(len);

	if (count == 0 || 8 + 8 * (uint64_t)count > len) {
		broken(r, "PAGE_DATA count does not fit its record");
		return;
	}
	r->pfns_left = count;
	r->after_pfns = body - 8 - 8 * (uint64_t)count;
	expect(r, ST_PAGE_PFN, 8, 0);
}

/* acc holds the header r->state wanted. */
static void
step(struct mig_rounds *r)
{
	uint32_t type, len;

	switch (r->state) {
	case ST_LIBXL_HDR:
		if (be64_at(r->acc) != LIBXL_IDENT ||
		    be32_at(r->acc + 8) != LIBXL_VERSION_2)
			broken(r, "not a libxl v2 stream");
		else
			expect(r, ST_LIBXL_REC, 8, 0);
		return;
	case ST_LIBXL_REC:
		type = le32_at(r->acc);
		len = le32_at(r->acc + 4);
		if (len > XC_REC_LENGTH_MAX)
			broken(r, "libxl record too long");
		else if (type == LIBXL_REC_END)
			r->state = ST_DONE;
		else if (type == LIBXL_REC_LIBXC_CONTEXT && len == 0)
			expect(r, ST_XC_IHDR, 24, 0);
		else if (type == LIBXL_REC_LIBXC_CONTEXT)
			broken(r, "LIBXC_CONTEXT with a body");
		else
			expect(r, ST_LIBXL_REC, 8, padded(len));
		return;
	case ST_XC_IHDR:
		if (be64_at(r->acc) != XC_MARKER || be32_at(r->acc + 8) != XC_ID ||
		    (be32_at(r->acc + 12) != 2 && be32_at(r->acc + 12) != 3))
			broken(r, "not a libxc v2/v3 image header");
		else
			expect(r, ST_XC_DHDR, 16, 0);
		return;
	case ST_XC_DHDR:
		expect(r, ST_XC_REC, 8, 0);
		return;
	case ST_XC_REC:
		type = le32_at(r->acc) & ~XC_REC_OPTIONAL;
		len = le32_at(r->acc + 4);
		r->rec_len = len;
		if (len > XC_REC_LENGTH_MAX)
			broken(r, "libxc record too long");
		else if (type == XC_REC_END)
			expect(r, ST_LIBXL_REC, 8, padded(len));
		else if (type == XC_REC_PAGE_DATA && len < 8)
			broken(r, "PAGE_DATA shorter than its header");
		else if (type == XC_REC_PAGE_DATA)
			expect(r, ST_PAGE_HDR, 8, 0);
		else
			expect(r, ST_XC_REC, 8, padded(len));
		return;
	case ST_PAGE_HDR:
		on_page_hdr(r, r->rec_len);
		return;
	case ST_PAGE_PFN:
		on_pfn(r, le64_at(r->acc) & XC_PFN_MASK);
		if (--r->pfns_left > 0)
			expect(r, ST_PAGE_PFN, 8, 0);
		else
			expect(r, ST_XC_REC, 8, r->after_pfns);
		return;
	default:
		return;
	}
}

void
mig_rounds_init(struct mig_rounds *r)
{
	memset(r, 0, sizeof(*r));
	expect(r, ST_LIBXL_HDR, 16, 0);
}

void
mig_rounds_feed(struct mig_rounds *r, const uint8_t *p, size_t len)
{
	size_t n;

	while (len > 0 && r->state != ST_DONE && r->state != ST_BROKEN) {
		if (r->skip > 0) {
			n = r->skip < len ? (size_t)r->skip : len;
			r->skip -= n;
		} else {
			n = r->need - r->have < len ? r->need - r->have : len;
			memcpy(r->acc + r->have, p, n);
			r->have += n;
		}
		p += n;
		len -= n;
		if (r->skip == 0 && r->have == r->need)
			step(r);
	}
}

unsigned
mig_rounds_round(const struct mig_rounds *r)
{
	return r->round;
}

const char *
mig_rounds_broken(const struct mig_rounds *r)
{
	return r->broken;
}

bool
mig_rounds_complete(const struct mig_rounds *r)
{
	return r->state == ST_DONE;
}
