/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The agent link's frames on libevent buffers: the one place that cuts a
 * transport frame out of a received evbuffer and queues a sealed one on a
 * bufferevent.  hvd, hv-agent and the load generator all read and send
 * through these, so the frame rules live only in link.c.
 *
 * Ownership: nothing here allocates or keeps a pointer.  The caller owns
 * the link, the evbuffer, the bufferevent and the body buffer; a frame
 * taken out of the evbuffer is the caller's to use until its next call.
 * Size body buffers LINK_FRAME_MAX bytes (a static array, as the callers
 * keep, needs no allocation per frame).
 *
 * Errors: as link.h.  After any negative return the session must be
 * closed.
 */
#ifndef HV_LINK_EV_H
#define HV_LINK_EV_H

#include <stddef.h>
#include <stdint.h>

#include "link.h"

struct evbuffer;
struct bufferevent;

/*
 * Takes the next whole frame from in and copies its body into body.
 * Returns 1 with *len set and the frame (header and body) drained; 0 when
 * in holds only part of a frame, leaving in untouched; -EMSGSIZE for a
 * frame length of 0 or above LINK_FRAME_MAX, or for a body longer than
 * cap (nothing consumed then either); -EIO if libevent fails to copy.
 */
int link_ev_frame(struct evbuffer *in, uint8_t *body, size_t cap,
    size_t *len);

/*
 * Seals len bytes of text (READY links only) and queues the frame on
 * bev's output, sealed in place there, so no frame buffer is needed.
 * Returns 0, or link_seal()'s error (-EINVAL not READY, -EMSGSIZE above
 * LINK_PLAINTEXT_MAX), or -ENOMEM when bev's output has no room, or -EIO
 * if libevent refuses the write.  Nothing is queued on failure.  text
 * stays the caller's.
 */
int link_ev_send(struct link *l, struct bufferevent *bev, const char *text,
    size_t len);

#endif
