/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * migrate_lz4.c: DATA_LZ4 blocks (migrate_lz4.h), over liblz4's block API.
 *
 * A libxl save stream is mostly zero or nearly empty 4 KiB pages, which
 * LZ4 shrinks many times over at a few GB/s, so compressing before
 * sealing cuts both the bytes on the wire and the XChaCha20-Poly1305 work.
 * Pages of random-looking data do not shrink; a chunk whose block is not
 * clearly smaller (below 7/8) goes raw, so such data costs one failed
 * compression attempt, never more wire bytes.
 *
 * Invariants: the decoder's capacity is MIGCHAN_PAYLOAD_MAX whatever the
 * caller's buffer, so "decodes to more than 65536" is refused in one
 * place; LZ4_decompress_safe never reads past SRC or writes past its
 * capacity on hostile input (liblz4's contract for it).
 * Must never: use LZ4_decompress_fast or any decoder that trusts the
 * block, or report a size it did not decode.
 */
#include <errno.h>
#include <limits.h>

#include <lz4.h>

#include "migrate_lz4.h"

_Static_assert(MIGCHAN_PAYLOAD_MAX <= LZ4_MAX_INPUT_SIZE &&
    MIGCHAN_PAYLOAD_MAX <= INT_MAX, "a payload is one LZ4 block");

/* LZ4's default: the best ratio of its fast mode. */
#define PACK_ACCELERATION	1

size_t
mig_lz4_pack(const uint8_t *src, size_t len, uint8_t dst[MIGCHAN_PAYLOAD_MAX])
{
	int cap, n;

	if (src == NULL || dst == NULL || len == 0 || len > MIGCHAN_PAYLOAD_MAX)
		return 0;
	/* The largest block worth sending: 8 * n < 7 * len.  LZ4 gives up
	 * (0) as soon as its output would pass it. */
	cap = (int)((7 * len - 1) / 8);
	if (cap <= 0)
		return 0;
	n = LZ4_compress_fast((const char *)src, (char *)dst, (int)len, cap,
	    PACK_ACCELERATION);
	return n > 0 ? (size_t)n : 0;
}

ssize_t
mig_lz4_unpack(const uint8_t *src, size_t len,
    uint8_t dst[MIGCHAN_PAYLOAD_MAX])
{
	int n;

	if (src == NULL || dst == NULL)
		return -EINVAL;
	if (len == 0 || len > MIGCHAN_PAYLOAD_MAX)
		return -EBADMSG;
	/* Negative: malformed, or it would write past the capacity. */
	n = LZ4_decompress_safe((const char *)src, (char *)dst, (int)len,
	    MIGCHAN_PAYLOAD_MAX);
	if (n <= 0)
		return -EBADMSG;
	return (ssize_t)n;
}
