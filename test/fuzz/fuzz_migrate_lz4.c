/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libFuzzer target: the DATA_LZ4 frames of the migration channel
 * (agent/migrate_lz4.c), the one decoder a source's bytes reach after the
 * channel's authentication.
 *
 * The first input byte picks the mode (its value mod 3); the rest is:
 *   0:  one DATA_LZ4 payload, straight to mig_lz4_unpack();
 *   1:  the same payload through the channel, as agent/migrate_io.c gets
 *       it: a responder seals a READY offering LZ4, the initiator opens it
 *       and seals the payload as DATA_LZ4, the responder opens that and
 *       decodes it;
 *   2:  raw stream bytes, at most 65536: mig_lz4_pack(), and when it packs,
 *       the block must decode back to exactly those bytes.
 * The decoder writes into a heap buffer of exactly MIGCHAN_PAYLOAD_MAX
 * bytes, so ASan sees a byte past it.  Whatever it accepts must be what
 * liblz4 itself decodes (checked with a buffer twice as big); whatever
 * liblz4 decodes to nothing or to more than 65536 bytes must be refused.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <sodium.h>

#include "migchan.h"
#include "migrate_lz4.h"

#define REF_CAP		(2 * MIGCHAN_PAYLOAD_MAX)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t id[MIGCHAN_ID_LEN], k[MIGCHAN_KEY_LEN];
static uint8_t isk[32], ipk[32], rsk[32], rpk[32];
static uint8_t frame[MIGCHAN_FRAME_MAX], payload[MIGCHAN_PAYLOAD_MAX];
static uint8_t *out, *ref;

static void
once(void)
{
	static int done;

	if (done)
		return;
	if (sodium_init() < 0 || (out = malloc(MIGCHAN_PAYLOAD_MAX)) == NULL ||
	    (ref = malloc(REF_CAP)) == NULL)
		abort();
	memset(id, 3, sizeof(id));
	memset(k, 4, sizeof(k));
	memset(isk, 1, sizeof(isk));
	memset(rsk, 2, sizeof(rsk));
	crypto_scalarmult_base(ipk, isk);
	crypto_scalarmult_base(rpk, rsk);
	done = 1;
}

/* mig_lz4_unpack() on SRC, held against liblz4's own decoder. */
static void
unpack(const uint8_t *src, size_t len)
{
	ssize_t n = mig_lz4_unpack(src, len, out);
	int r = len > 0 && len <= MIGCHAN_PAYLOAD_MAX ?
	    LZ4_decompress_safe((const char *)src, (char *)ref, (int)len,
	    REF_CAP) : -1;

	if (n != -EBADMSG && (n < 1 || n > MIGCHAN_PAYLOAD_MAX))
		abort();
	/* Accepted: exactly what liblz4 makes of it. */
	if (n > 0 && (r != n || memcmp(out, ref, (size_t)n) != 0))
		abort();
	/* Nothing, or more than a frame's worth: refused. */
	if ((r <= 0 || r > MIGCHAN_PAYLOAD_MAX) && n != -EBADMSG)
		abort();
}

static void
seal_open(struct migchan *tx, struct migchan *rx, enum migchan_type t,
    const uint8_t *p, size_t len, size_t *plen)
{
	enum migchan_type got;
	bool final;
	ssize_t n;

	if ((n = migchan_seal(tx, t, p, len, false, frame, sizeof(frame))) < 0 ||
	    migchan_open(rx, frame, (size_t)n, &got, payload, plen, &final) !=
	    0 || got != t || *plen != len)
		abort();
}

static void
through_channel(const uint8_t *data, size_t size)
{
	static const uint8_t caps[] = { MIGCHAN_CAP_LZ4 };
	uint8_t hi[MIGCHAN_HELLO_I_LEN], hr[MIGCHAN_HELLO_R_LEN];
	uint8_t hdr[MIGCHAN_HEADER_LEN];
	struct migchan ini, rsp;
	size_t plen;

	if (size == 0 || size > MIGCHAN_PAYLOAD_MAX)
		return;
	if (migchan_init(&ini, MIGCHAN_INITIATOR, id, k, isk, rpk) != 0 ||
	    migchan_init(&rsp, MIGCHAN_RESPONDER, id, k, rsk, ipk) != 0 ||
	    migchan_hello_i(&ini, hi) != 0 ||
	    migchan_accept(&rsp, hi, hr) != 0 ||
	    migchan_finish(&ini, hr, hdr) != 0 ||
	    migchan_header(&rsp, hdr) != 0)
		abort();
	seal_open(&ini, &rsp, MIGCHAN_AUTH, id, sizeof(id), &plen);
	seal_open(&rsp, &ini, MIGCHAN_AUTH, id, sizeof(id), &plen);
	seal_open(&rsp, &ini, MIGCHAN_READY, caps, sizeof(caps), &plen);
	if (!migchan_lz4(&ini) || !migchan_lz4(&rsp))
		abort();
	seal_open(&ini, &rsp, MIGCHAN_DATA_LZ4, data, size, &plen);
	unpack(payload, plen);
	migchan_dispose(&ini);
	migchan_dispose(&rsp);
}

static void
roundtrip(const uint8_t *data, size_t size)
{
	uint8_t *blk = payload;
	size_t n;

	if (size > MIGCHAN_PAYLOAD_MAX)
		size = MIGCHAN_PAYLOAD_MAX;
	n = mig_lz4_pack(data, size, blk);
	if (n == 0)
		return;
	if (size == 0 || 8 * n >= 7 * size ||
	    mig_lz4_unpack(blk, n, out) != (ssize_t)size ||
	    memcmp(out, data, size) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	once();
	if (size < 1 || size > MIGCHAN_PAYLOAD_MAX + 2)
		return 0;
	switch (data[0] % 3) {
	case 0:
		unpack(data + 1, size - 1);
		break;
	case 1:
		through_channel(data + 1, size - 1);
		break;
	default:
		roundtrip(data + 1, size - 1);
		break;
	}
	return 0;
}
