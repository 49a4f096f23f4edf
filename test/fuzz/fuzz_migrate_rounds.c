/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libFuzzer target: the pre-copy round counter (agent/migrate_rounds.c),
 * which reads every byte of the save stream libxl writes on a source.
 *
 * The first input byte picks a slice size (1 + its value); the rest is the
 * stream.  It is fed once whole and once in those slices, and both must
 * end in the same state: the same round, the same reason (or none), the
 * same completeness.  While it is fed in slices the round never goes down,
 * and once counting stopped, or libxl's END was read, it never changes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "migrate_rounds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mig_rounds whole, sliced;
	size_t slice, off;
	unsigned last = 0;
	bool ended = false;

	if (size < 1)
		return 0;
	slice = (size_t)data[0] + 1;
	data++;
	size--;
	mig_rounds_init(&whole);
	mig_rounds_feed(&whole, data, size);
	mig_rounds_init(&sliced);
	for (off = 0; off < size; off += slice) {
		size_t n = size - off < slice ? size - off : slice;

		mig_rounds_feed(&sliced, data + off, n);
		if (mig_rounds_round(&sliced) < last)
			abort();
		if (ended && mig_rounds_round(&sliced) != last)
			abort();
		last = mig_rounds_round(&sliced);
		ended = mig_rounds_broken(&sliced) != NULL ||
		    mig_rounds_complete(&sliced);
	}
	if (mig_rounds_round(&whole) != mig_rounds_round(&sliced) ||
	    mig_rounds_broken(&whole) != mig_rounds_broken(&sliced) ||
	    mig_rounds_complete(&whole) != mig_rounds_complete(&sliced) ||
	    whole.pages != sliced.pages)
		abort();
	if (mig_rounds_round(&whole) > whole.pages)
		abort();
	return 0;
}
