/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * test_migrate_rounds.c: the pre-copy round counter (agent/migrate_rounds.c)
 * on save streams built here from Xen's stream format: libxl's header and
 * records, libxc's image and domain headers, PAGE_DATA records whose page
 * numbers go back to the bottom at each round, the records libxc sends
 * around them, and the ENDs.
 *
 * - a stream of four rounds counts 4 whether it comes whole, a byte at a
 *   time or in odd slices, and reads to libxl's END;
 * - the count shows as the stream goes, and never goes down;
 * - the type bits in a page number do not count, a page number equal to the
 *   one before starts a round, optional and unknown records are passed
 *   over, and so is a large libxl record fed in pieces;
 * - each kind of stream it cannot read stops the count with its reason,
 *   and more bytes change nothing after.
 */
#include <endian.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "migrate_rounds.h"

#define PAGE		4096
#define CAP		(4 * 1024 * 1024)

struct sbuf {
	uint8_t *p;
	size_t len;
};

static void
put(struct sbuf *b, const void *p, size_t n)
{
	assert_true(b->len + n <= CAP);
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void
put_le32(struct sbuf *b, uint32_t v)
{
	v = htole32(v);
	put(b, &v, 4);
}

static void
put_le64(struct sbuf *b, uint64_t v)
{
	v = htole64(v);
	put(b, &v, 8);
}

static void
put_be32(struct sbuf *b, uint32_t v)
{
	v = htobe32(v);
	put(b, &v, 4);
}

static void
put_be64(struct sbuf *b, uint64_t v)
{
	v = htobe64(v);
	put(b, &v, 8);
}

static void
put_zeros(struct sbuf *b, size_t n)
{
	assert_true(b->len + n <= CAP);
	memset(b->p + b->len, 0, n);
	b->len += n;
}

/* A record (libxl's and libxc's share the framing): body padded to 8. */
static void
put_rec(struct sbuf *b, uint32_t type, uint32_t len)
{
	put_le32(b, type);
	put_le32(b, len);
	put_zeros(b, ((size_t)len + 7) & ~(size_t)7);
}

static void
put_libxl_hdr(struct sbuf *b, uint64_t ident, uint32_t version)
{
	put_be64(b, ident);
	put_be32(b, version);
	put_be32(b, 0);
}

/* LIBXC_CONTEXT, libxc's image header (version V) and domain header. */
static void
put_libxc_start(struct sbuf *b, uint32_t v)
{
	put_rec(b, 1, 0);
	put_be64(b, 0xffffffffffffffffULL);
	put_be32(b, 0x58454e46U);
	put_be32(b, v);
	put_zeros(b, 8);
	put_le32(b, 1);			/* x86 PV */
	put_le32(b, 12);		/* page shift, reserved */
	put_le32(b, 4);
	put_le32(b, 17);
}

static void
put_pages(struct sbuf *b, const uint64_t *pfn, uint32_t n)
{
	uint32_t len = 8 + 8 * n + PAGE * n;

	put_le32(b, 1);
	put_le32(b, len);
	put_le32(b, n);
	put_le32(b, 0);
	for (uint32_t i = 0; i < n; i++)
		put_le64(b, pfn[i]);
	put_zeros(b, (size_t)PAGE * n);
}

static struct sbuf
stream_new(void)
{
	struct sbuf b = { malloc(CAP), 0 };

	assert_non_null(b.p);
	return b;
}

/*
 * Four rounds as libxc sends them for a PV guest: everything, two records
 * of ascending pages; then fewer dirty pages each time, the last one after
 * the suspend.  *AFTER_FIRST is the stream's length after round 1's first
 * PAGE_DATA record.
 */
static struct sbuf
four_rounds(size_t *after_first)
{
	static const uint64_t r1a[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	static const uint64_t r1b[] = { 10, 11, 12, 40, 41, 99 };
	static const uint64_t r2[] = { 2, 7, 41 };
	static const uint64_t r3[] = { 1 };
	static const uint64_t r4[] = { 0, 3, 12 };
	struct sbuf b = stream_new();

	put_libxl_hdr(&b, 0x4c6962786c466d74ULL, 2);
	put_libxc_start(&b, 3);
	put_rec(&b, 0x10, 0);		/* STATIC_DATA_END */
	put_rec(&b, 0x02, 8);		/* X86_PV_INFO */
	put_rec(&b, 0x03, 8 + 8 * 3);	/* X86_PV_P2M_FRAMES */
	put_rec(&b, 0x08, 24);		/* X86_TSC_INFO */
	put_pages(&b, r1a, 10);
	if (after_first != NULL)
		*after_first = b.len;
	put_pages(&b, r1b, 6);
	put_pages(&b, r2, 3);
	put_pages(&b, r3, 1);
	put_pages(&b, r4, 3);
	put_rec(&b, 0x04, 8 + 3000);	/* X86_PV_VCPU_BASIC, unaligned */
	put_rec(&b, 0x07, PAGE);	/* SHARED_INFO */
	put_rec(&b, 0, 0);		/* libxc END */
	put_rec(&b, 2, 100);		/* EMULATOR_XENSTORE_DATA */
	put_rec(&b, 0, 0);		/* libxl END */
	return b;
}

static void
feed_sliced(struct mig_rounds *r, const struct sbuf *b, size_t slice)
{
	unsigned last = 0;

	for (size_t off = 0; off < b->len; off += slice) {
		size_t n = b->len - off < slice ? b->len - off : slice;

		mig_rounds_feed(r, b->p + off, n);
		assert_true(mig_rounds_round(r) >= last);
		last = mig_rounds_round(r);
	}
}

static void
test_four_rounds_any_slicing(void **state)
{
	static const size_t slices[] = { 1, 3, 7, 8, 4093, 65536, 1 << 22 };
	struct sbuf b = four_rounds(NULL);

	(void)state;
	for (size_t i = 0; i < sizeof(slices) / sizeof(slices[0]); i++) {
		struct mig_rounds r;

		mig_rounds_init(&r);
		feed_sliced(&r, &b, slices[i]);
		assert_int_equal(mig_rounds_round(&r), 4);
		assert_null(mig_rounds_broken(&r));
		assert_true(mig_rounds_complete(&r));
		assert_int_equal(r.pages, 23);
	}
	free(b.p);
}

static void
test_count_shows_as_it_goes(void **state)
{
	size_t first;
	struct sbuf b = four_rounds(&first);
	struct mig_rounds r;

	(void)state;
	mig_rounds_init(&r);
	mig_rounds_feed(&r, b.p, 40);	/* headers only */
	assert_int_equal(mig_rounds_round(&r), 0);
	mig_rounds_feed(&r, b.p + 40, first - 40);
	assert_int_equal(mig_rounds_round(&r), 1);
	assert_false(mig_rounds_complete(&r));
	mig_rounds_feed(&r, b.p + first, b.len - first);
	assert_int_equal(mig_rounds_round(&r), 4);
	/* Bytes after libxl's END are not the stream's. */
	mig_rounds_feed(&r, b.p, b.len);
	assert_int_equal(mig_rounds_round(&r), 4);
	assert_true(mig_rounds_complete(&r));
	free(b.p);
}

static void
test_page_numbers(void **state)
{
	/* Type bits (XTAB) above a page number do not make it larger. */
	static const uint64_t a[] = { 4, (0xfULL << 60) | 5, 6 };
	static const uint64_t same[] = { 6 };
	static const uint64_t up[] = { 7, 8 };
	struct sbuf b = stream_new();
	struct mig_rounds r;

	(void)state;
	put_libxl_hdr(&b, 0x4c6962786c466d74ULL, 2);
	put_libxc_start(&b, 2);
	put_pages(&b, a, 3);
	put_rec(&b, 0x80000000U | 0x7777, 12);	/* optional, unknown */
	put_rec(&b, 0x1234, 5);			/* unknown */
	put_pages(&b, same, 1);			/* 6 again: a round */
	put_pages(&b, up, 2);			/* above: the same round */
	mig_rounds_init(&r);
	mig_rounds_feed(&r, b.p, b.len);
	assert_int_equal(mig_rounds_round(&r), 2);
	assert_null(mig_rounds_broken(&r));
	assert_false(mig_rounds_complete(&r));
	free(b.p);
}

static void
test_large_record_passed_over(void **state)
{
	static const uint64_t one[] = { 1 };
	struct sbuf b = stream_new();
	struct mig_rounds r;

	(void)state;
	put_libxl_hdr(&b, 0x4c6962786c466d74ULL, 2);
	put_rec(&b, 3, 3 * 1024 * 1024 + 1);	/* EMULATOR_CONTEXT */
	put_libxc_start(&b, 3);
	put_pages(&b, one, 1);
	mig_rounds_init(&r);
	feed_sliced(&r, &b, 65536);
	assert_int_equal(mig_rounds_round(&r), 1);
	assert_null(mig_rounds_broken(&r));
	free(b.p);
}

/* Each stream here stops the count, with a reason; the round stays. */
static void
test_unreadable(void **state)
{
	static const uint64_t pfn[] = { 3 };
	struct {
		const char *name;
		int kind;
	} cases[] = {
		{ "not libxl", 0 }, { "libxl v1", 1 }, { "libxc v4", 2 },
		{ "libxc marker", 3 }, { "libxc record too long", 4 },
		{ "PAGE_DATA count past its record", 5 }, { "PAGE_DATA count 0", 6 },
		{ "PAGE_DATA shorter than its header", 7 },
		{ "LIBXC_CONTEXT with a body", 8 }, { "libxl record too long", 9 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sbuf b = stream_new();
		struct mig_rounds r;
		unsigned before;
		int k = cases[i].kind;

		put_libxl_hdr(&b, k == 0 ? 0x4c6962786c466d75ULL :
		    0x4c6962786c466d74ULL, k == 1 ? 1 : 2);
		if (k == 8) {
			put_rec(&b, 1, 8);
		} else if (k == 9) {
			put_le32(&b, 2);
			put_le32(&b, (128U << 20) + 1);
		} else if (k == 2 || k == 3) {
			put_rec(&b, 1, 0);
			put_be64(&b, k == 3 ? 0xfffffffffffffffeULL :
			    0xffffffffffffffffULL);
			put_be32(&b, 0x58454e46U);
			put_be32(&b, 4 - (k == 3));
			put_zeros(&b, 8 + 16);
		} else {
			put_libxc_start(&b, 3);
			put_pages(&b, pfn, 1);
		}
		if (k == 4) {
			put_le32(&b, 0x0d);
			put_le32(&b, (128U << 20) + 1);
		} else if (k == 5 || k == 6) {
			put_le32(&b, 1);
			put_le32(&b, 16);
			put_le32(&b, k == 5 ? 2 : 0);
			put_le32(&b, 0);
			put_le64(&b, 1);
		} else if (k == 7) {
			put_le32(&b, 1);
			put_le32(&b, 4);
			put_zeros(&b, 8);
		}
		mig_rounds_init(&r);
		mig_rounds_feed(&r, b.p, b.len);
		if (mig_rounds_broken(&r) == NULL)
			fail_msg("%s: not refused", cases[i].name);
		before = mig_rounds_round(&r);
		assert_int_equal(before, k <= 3 || k >= 8 ? 0 : 1);
		/* A good stream after it changes nothing. */
		{
			struct sbuf good = four_rounds(NULL);

			mig_rounds_feed(&r, good.p, good.len);
			free(good.p);
		}
		assert_int_equal(mig_rounds_round(&r), before);
		assert_false(mig_rounds_complete(&r));
		free(b.p);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_four_rounds_any_slicing),
		cmocka_unit_test(test_count_shows_as_it_goes),
		cmocka_unit_test(test_page_numbers),
		cmocka_unit_test(test_large_record_passed_over),
		cmocka_unit_test(test_unreadable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
