/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * migrate_lz4.h: the DATA_LZ4 frames of the migration channel (PROTOCOL.md
 * 11.4): one LZ4 block (liblz4's block format, LZ4_compress_fast and
 * LZ4_decompress_safe) of 1..MIGCHAN_PAYLOAD_MAX raw stream bytes.  Pure
 * functions over buffers: no allocation, no I/O, no logging.
 * agent/migrate_io.c calls them; proto/migchan.c enforces when the frame
 * may be sent at all.
 *
 * The rules live here and only here: what the source compresses (a chunk
 * whose block is below 7/8 of its size; anything else goes as plain DATA)
 * and what the target accepts (a block that decodes, to 1..65536 bytes).
 */
#ifndef HV_AGENT_MIGRATE_LZ4_H
#define HV_AGENT_MIGRATE_LZ4_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>		/* ssize_t */

#include "migchan.h"

/*
 * Compresses LEN (1..MIGCHAN_PAYLOAD_MAX) bytes of SRC into DST (room for
 * MIGCHAN_PAYLOAD_MAX bytes).  Returns the block's size when it is below
 * 7/8 of LEN, else 0: the chunk is sent as plain DATA, and DST holds
 * nothing of use.  0 also for a LEN out of range or a NULL buffer.
 */
size_t mig_lz4_pack(const uint8_t *src, size_t len,
    uint8_t dst[MIGCHAN_PAYLOAD_MAX]);
/*
 * Decodes one DATA_LZ4 payload, LEN bytes of the peer's SRC, into DST
 * (MIGCHAN_PAYLOAD_MAX bytes; never written beyond, whatever SRC holds).
 * Returns the raw size, 1..MIGCHAN_PAYLOAD_MAX, or -EBADMSG for an empty
 * or over-long payload, a block that does not decode, one that decodes to
 * nothing, or one that would decode to more than MIGCHAN_PAYLOAD_MAX;
 * -EINVAL for a NULL buffer.
 */
ssize_t mig_lz4_unpack(const uint8_t *src, size_t len,
    uint8_t dst[MIGCHAN_PAYLOAD_MAX]);

#endif
