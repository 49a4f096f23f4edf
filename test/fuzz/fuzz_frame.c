/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libFuzzer target: the agent link's framing layer as hvd runs it over a
 * byte stream: preamble check, then frame after frame through
 * link_frame_peek().  A frame the peek accepts must lie inside the input
 * and within the size limit.
 */
#include <stdint.h>
#include <stdlib.h>

#include "link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned major, minor;
	size_t pos, blen;

	if (size < LINK_PREAMBLE_LEN)
		return 0;
	if (link_preamble_check(data, &major, &minor) == 0 &&
	    major != LINK_VERSION_MAJOR)
		abort();
	for (pos = LINK_PREAMBLE_LEN; pos < size; pos += LINK_FRAME_HDR + blen) {
		if (link_frame_peek(data + pos, size - pos, &blen) < 0)
			break;
		if (blen == 0 || blen > LINK_FRAME_MAX ||
		    blen > size - pos - LINK_FRAME_HDR)
			abort();
	}
	return 0;
}
