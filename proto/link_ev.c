/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Transport frames on libevent buffers (link_ev.h): cutting one frame out
 * of a received evbuffer, and sealing one straight into a bufferevent's
 * output.
 *
 * Invariants: a frame is consumed whole or not at all, so a caller may
 * stop reading at any point and resume on the next callback; the length
 * rule is link_frame_peek()'s, never restated here.
 *
 * Must never: allocate on its own (libevent's chains aside), log, block,
 * or queue part of a frame.
 */
#include <errno.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "link_ev.h"

int
link_ev_frame(struct evbuffer *in, uint8_t *body, size_t cap, size_t *len)
{
	uint8_t hdr[LINK_FRAME_HDR];
	size_t have = evbuffer_get_length(in), blen = 0;
	int r;

	if (have < LINK_FRAME_HDR)
		return 0;
	if (evbuffer_copyout(in, hdr, sizeof(hdr)) != (ev_ssize_t)sizeof(hdr))
		return -EIO;
	/* peek reads only the header; have tells it whether the body is in. */
	r = link_frame_peek(hdr, have, &blen);
	if (r == -EAGAIN)
		return 0;
	if (r < 0)
		return r;
	if (blen > cap)
		return -EMSGSIZE;
	if (evbuffer_drain(in, LINK_FRAME_HDR) != 0 ||
	    evbuffer_remove(in, body, blen) != (int)blen)
		return -EIO;
	*len = blen;
	return 1;
}

int
link_ev_send(struct link *l, struct bufferevent *bev, const char *text,
    size_t len)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	struct evbuffer_iovec v;
	size_t n = 0;
	int r;

	/* Checked before reserving, so a bad length never sizes a chain. */
	if (len > LINK_PLAINTEXT_MAX)
		return -EMSGSIZE;
	if (evbuffer_reserve_space(out, (ev_ssize_t)(LINK_FRAME_HDR + len +
	    NOISE_TAG_LEN), &v, 1) != 1)
		return -ENOMEM;
	/* Space reserved but not committed is simply unused. */
	if ((r = link_seal(l, (const uint8_t *)text, len, v.iov_base,
	    v.iov_len, &n)) < 0)
		return r;
	v.iov_len = n;
	return evbuffer_commit_space(out, &v, 1) == 0 ? 0 : -EIO;
}
