/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The agent link's secure channel (PROTOCOL.md sections 2 to 5), without
 * sockets: callers feed received bytes in and send the bytes it produces.
 * hvd, hv-agent and the test tools share it, so all speak one protocol.
 *
 * Ownership: struct link is embedded by its owner, set up by
 * link_init_*() and torn down by link_dispose(), which wipes every key.
 * It holds no heap memory or file descriptors.
 *
 * Errors: 0 or a negative errno.
 *   -EAGAIN           more input is needed (frame not complete yet);
 *   -EMSGSIZE         a frame length of 0 or above LINK_FRAME_MAX, or an
 *                     output buffer too small;
 *   -EPROTONOSUPPORT  a preamble with another major version;
 *   -EBADMSG          a bad preamble, or a handshake or transport message
 *                     that fails authentication (tampered, replayed,
 *                     reordered, wrong key);
 *   -EINVAL           a call in the wrong state.
 * After any error but -EAGAIN the session must be closed.
 */
#ifndef HV_LINK_H
#define HV_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "noise.h"

#define LINK_PORT_DEFAULT	8471
#define LINK_VERSION_MAJOR	1
#define LINK_VERSION_MINOR	0
#define LINK_PREAMBLE_LEN	8
#define LINK_FRAME_HDR		4
#define LINK_FRAME_MAX		NOISE_MAX_MSG_LEN
#define LINK_PLAINTEXT_MAX	NOISE_MAX_PAYLOAD_LEN
#define LINK_REKEY_EVERY	65536u
#define LINK_MSG1_LEN		(32 + 32 + 16 + 8 + 16)	/* e, s+tag, ts+tag */
#define LINK_MSG2_LEN		(32 + 16)

enum link_state {
	LINK_NONE = 0,
	LINK_HANDSHAKE,		/* initiator: msg1 sent; responder: awaiting msg1 */
	LINK_READY,		/* transport keys in place */
};

struct link {
	struct noise_handshake hs;
	struct noise_cipher tx, rx;
	enum link_state state;
	bool initiator;
	uint8_t remote_static[NOISE_KEY_LEN];
	uint64_t remote_timestamp;	/* msg1 payload, ns since the epoch */
};

/* Frames: u32 length + body.  Returns 0 with *body_len when buf holds a
 * whole frame, -EAGAIN when it does not yet, -EMSGSIZE for a bad length. */
int link_frame_peek(const uint8_t *buf, size_t len, size_t *body_len);
void link_frame_header(uint8_t hdr[LINK_FRAME_HDR], size_t body_len);

void link_preamble(uint8_t out[LINK_PREAMBLE_LEN]);
/* -EBADMSG: not a preamble; -EPROTONOSUPPORT: major version differs. */
int link_preamble_check(const uint8_t in[LINK_PREAMBLE_LEN], unsigned *major,
    unsigned *minor);

/* Agent side: writes preamble + framed message 1 into out. */
int link_init_initiator(struct link *l, const uint8_t local_priv[NOISE_KEY_LEN],
    const uint8_t hvd_pub[NOISE_KEY_LEN], uint64_t now_ns, uint8_t *out,
    size_t cap, size_t *outlen);
/* Agent side: reads message 2's frame body; then the link is READY. */
int link_initiator_finish(struct link *l, const uint8_t *body, size_t len);

/* hvd side: after the preamble was checked. */
int link_init_responder(struct link *l, const uint8_t local_priv[NOISE_KEY_LEN]);
/* hvd side: reads message 1's frame body; remote_static and
 * remote_timestamp are then valid for the caller's checks. */
int link_responder_read(struct link *l, const uint8_t *body, size_t len);
/* hvd side: writes framed message 2 into out; then the link is READY. */
int link_responder_finish(struct link *l, uint8_t *out, size_t cap,
    size_t *outlen);

/* READY only.  seal writes a whole frame (header + ciphertext) into out,
 * which needs len + LINK_FRAME_HDR + NOISE_TAG_LEN bytes; open takes a frame
 * body and writes the plaintext (len - NOISE_TAG_LEN bytes). */
int link_seal(struct link *l, const uint8_t *pt, size_t len, uint8_t *out,
    size_t cap, size_t *outlen);
int link_open(struct link *l, const uint8_t *body, size_t len, uint8_t *out,
    size_t cap, size_t *outlen);

void link_dispose(struct link *l);

#endif
