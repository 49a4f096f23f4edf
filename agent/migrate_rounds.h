/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * migrate_rounds.h: counts libxc's pre-copy rounds in a libxl save stream
 * as it leaves libxl, for vm.migration's "round" (PROTOCOL.md 11.3).
 *
 * libxl tells its caller nothing of rounds, and its progress callbacks
 * name no domain, so with two migrations under way they could not be told
 * apart.  The stream itself shows them: within a round libxc sends the
 * dirty pages in ascending page-frame order (it walks the dirty bitmap),
 * and every round starts again from the bottom.  So a page number that is
 * not above the one before starts a round.  A round whose pages all lie
 * above the previous round's last page is counted with that round: the
 * count can come out low, never high.
 *
 * The observer is incremental and pure: bytes in any slices, no
 * allocation, no I/O, no logging, and it never changes the stream.  What
 * it cannot read (a header it does not know, a record longer than libxc
 * allows) stops the counting for good; the migration goes on regardless.
 *
 * Layout read (xen tools/libs/light/libxl_sr_stream_format.h and
 * tools/libs/guest/xg_sr_stream_format.h): libxl's 16-byte header (ident
 * "LibxlFmt" and version 2, big-endian), then libxl records (type, length,
 * body padded to 8; little-endian).  A LIBXC_CONTEXT record (length 0) is
 * followed inline by libxc's stream: a 24-byte image header (marker of
 * all ones, "XENF", version 2 or 3, big-endian), a 16-byte domain header,
 * then libxc records in the same framing until libxc's END.  PAGE_DATA
 * (type 1) holds a count, 4 reserved bytes, COUNT 64-bit page numbers
 * (type in the top 4 bits), then page contents.
 */
#ifndef HV_AGENT_MIGRATE_ROUNDS_H
#define HV_AGENT_MIGRATE_ROUNDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mig_rounds {
	int state;			/* migrate_rounds.c's enum */
	uint8_t acc[24];		/* a header being gathered */
	size_t have, need;
	uint64_t skip;			/* bytes to pass over */
	uint32_t rec_len;		/* the libxc record being read */
	uint64_t pfns_left;		/* of the PAGE_DATA record being read */
	uint64_t after_pfns;		/* that record's bytes after them */
	uint64_t last_pfn;
	bool any_pfn;
	unsigned round;
	uint64_t pages;			/* page numbers seen, all rounds */
	const char *broken;		/* why counting stopped, or NULL */
};

void mig_rounds_init(struct mig_rounds *r);
/* Observes the next LEN bytes of the stream. */
void mig_rounds_feed(struct mig_rounds *r, const uint8_t *p, size_t len);
/* Rounds begun so far: 0 before the first page, then 1, 2, ... */
unsigned mig_rounds_round(const struct mig_rounds *r);
/* Why counting stopped (a static string), or NULL while it reads on. */
const char *mig_rounds_broken(const struct mig_rounds *r);
/* libxl's END record was read: the whole stream was understood. */
bool mig_rounds_complete(const struct mig_rounds *r);

#endif
