/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The agent link's channel: preamble, frames, Noise IK handshake and the
 * transport with its rekey policy, as PROTOCOL.md specifies.
 *
 * Invariants: the prologue always binds the preamble this side sent or
 * received; a transport cipher never encrypts or decrypts the message that
 * crosses a LINK_REKEY_EVERY boundary before both ends have rekeyed; keys
 * are wiped by link_dispose() and on every failed handshake.
 *
 * Must never: allocate, block, log, or return plaintext that failed
 * authentication.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "link.h"

static const char link_prologue_text[] = "hypervisor agent link";
static const uint8_t link_magic[4] = { 'H', 'V', 'A', 'G' };

int
link_frame_peek(const uint8_t *buf, size_t len, size_t *body_len)
{
	uint32_t n;

	if (len < LINK_FRAME_HDR)
		return -EAGAIN;
	n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
	    (uint32_t)buf[2] << 8 | buf[3];
	if (n == 0 || n > LINK_FRAME_MAX)
		return -EMSGSIZE;
	if (len - LINK_FRAME_HDR < n)
		return -EAGAIN;
	*body_len = n;
	return 0;
}

void
link_frame_header(uint8_t hdr[LINK_FRAME_HDR], size_t body_len)
{
	hdr[0] = (uint8_t)(body_len >> 24);
	hdr[1] = (uint8_t)(body_len >> 16);
	hdr[2] = (uint8_t)(body_len >> 8);
	hdr[3] = (uint8_t)body_len;
}

void
link_preamble(uint8_t out[LINK_PREAMBLE_LEN])
{
	memcpy(out, link_magic, 4);
	out[4] = LINK_VERSION_MAJOR;
	out[5] = LINK_VERSION_MINOR;
	out[6] = out[7] = 0;
}

int
link_preamble_check(const uint8_t in[LINK_PREAMBLE_LEN], unsigned *major,
    unsigned *minor)
{
	if (memcmp(in, link_magic, 4) != 0 || in[6] != 0 || in[7] != 0)
		return -EBADMSG;
	*major = in[4];
	*minor = in[5];
	return in[4] == LINK_VERSION_MAJOR ? 0 : -EPROTONOSUPPORT;
}

static void
link_prologue(uint8_t out[sizeof(link_prologue_text) - 1 + LINK_PREAMBLE_LEN])
{
	uint8_t pre[LINK_PREAMBLE_LEN];

	link_preamble(pre);
	memcpy(out, link_prologue_text, sizeof(link_prologue_text) - 1);
	memcpy(out + sizeof(link_prologue_text) - 1, pre, LINK_PREAMBLE_LEN);
}

static void
link_be64(uint8_t out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[i] = (uint8_t)v;
}

int
link_init_initiator(struct link *l, const uint8_t local_priv[NOISE_KEY_LEN],
    const uint8_t hvd_pub[NOISE_KEY_LEN], uint64_t now_ns, uint8_t *out,
    size_t cap, size_t *outlen)
{
	uint8_t prologue[sizeof(link_prologue_text) - 1 + LINK_PREAMBLE_LEN];
	uint8_t ts[8];
	size_t n = 0;
	int r;

	memset(l, 0, sizeof(*l));
	if (cap < LINK_PREAMBLE_LEN + LINK_FRAME_HDR + LINK_MSG1_LEN)
		return -EMSGSIZE;
	link_prologue(prologue);
	if ((r = noise_handshake_init(&l->hs, NOISE_PATTERN_IK, true, prologue,
	    sizeof(prologue), local_priv, hvd_pub)) < 0)
		return r;
	link_be64(ts, now_ns);
	link_preamble(out);
	r = noise_handshake_write(&l->hs, ts, sizeof(ts),
	    out + LINK_PREAMBLE_LEN + LINK_FRAME_HDR,
	    cap - LINK_PREAMBLE_LEN - LINK_FRAME_HDR, &n);
	if (r < 0) {
		link_dispose(l);
		return r;
	}
	link_frame_header(out + LINK_PREAMBLE_LEN, n);
	*outlen = LINK_PREAMBLE_LEN + LINK_FRAME_HDR + n;
	memcpy(l->remote_static, hvd_pub, NOISE_KEY_LEN);
	l->initiator = true;
	l->state = LINK_HANDSHAKE;
	return 0;
}

static int
link_split(struct link *l)
{
	int r;

	if ((r = noise_handshake_split(&l->hs, &l->tx, &l->rx)) < 0)
		return r;
	l->state = LINK_READY;
	return 0;
}

int
link_initiator_finish(struct link *l, const uint8_t *body, size_t len)
{
	size_t plen = 0;
	int r;

	if (!l->initiator || l->state != LINK_HANDSHAKE)
		return -EINVAL;
	if (len != LINK_MSG2_LEN)
		return -EBADMSG;
	if ((r = noise_handshake_read(&l->hs, body, len, NULL, 0, &plen)) < 0)
		return r;
	if (plen != 0 || !noise_handshake_done(&l->hs))
		return -EBADMSG;
	return link_split(l);
}

int
link_init_responder(struct link *l, const uint8_t local_priv[NOISE_KEY_LEN])
{
	uint8_t prologue[sizeof(link_prologue_text) - 1 + LINK_PREAMBLE_LEN];
	int r;

	memset(l, 0, sizeof(*l));
	link_prologue(prologue);
	if ((r = noise_handshake_init(&l->hs, NOISE_PATTERN_IK, false, prologue,
	    sizeof(prologue), local_priv, NULL)) < 0)
		return r;
	l->state = LINK_HANDSHAKE;
	return 0;
}

int
link_responder_read(struct link *l, const uint8_t *body, size_t len)
{
	uint8_t ts[8];
	size_t plen = 0;
	int r;

	if (l->initiator || l->state != LINK_HANDSHAKE)
		return -EINVAL;
	/* The payload is exactly a timestamp, so msg1 has exactly one size. */
	if (len != LINK_MSG1_LEN)
		return -EBADMSG;
	if ((r = noise_handshake_read(&l->hs, body, len, ts, sizeof(ts),
	    &plen)) < 0)
		return r;
	if (plen != sizeof(ts))
		return -EBADMSG;
	if ((r = noise_handshake_remote_static(&l->hs, l->remote_static)) < 0)
		return r;
	l->remote_timestamp = 0;
	for (int i = 0; i < 8; i++)
		l->remote_timestamp = l->remote_timestamp << 8 | ts[i];
	return 0;
}

int
link_responder_finish(struct link *l, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t n = 0;
	int r;

	if (l->initiator || l->state != LINK_HANDSHAKE)
		return -EINVAL;
	if (cap < LINK_FRAME_HDR + LINK_MSG2_LEN)
		return -EMSGSIZE;
	if ((r = noise_handshake_write(&l->hs, NULL, 0, out + LINK_FRAME_HDR,
	    cap - LINK_FRAME_HDR, &n)) < 0)
		return r;
	link_frame_header(out, n);
	*outlen = LINK_FRAME_HDR + n;
	return link_split(l);
}

/* Rekey before the message whose number is a positive multiple of the
 * interval: both ends count the same messages, so no signal is needed. */
static int
link_maybe_rekey(struct noise_cipher *c)
{
	uint64_t n = noise_cipher_nonce(c);

	if (n != 0 && n % LINK_REKEY_EVERY == 0)
		return noise_cipher_rekey(c);
	return 0;
}

int
link_seal(struct link *l, const uint8_t *pt, size_t len, uint8_t *out,
    size_t cap, size_t *outlen)
{
	size_t n = 0;
	int r;

	if (l->state != LINK_READY)
		return -EINVAL;
	if (len > LINK_PLAINTEXT_MAX || cap < LINK_FRAME_HDR)
		return -EMSGSIZE;
	if ((r = link_maybe_rekey(&l->tx)) < 0 ||
	    (r = noise_cipher_encrypt(&l->tx, NULL, 0, pt, len,
	    out + LINK_FRAME_HDR, cap - LINK_FRAME_HDR, &n)) < 0)
		return r;
	link_frame_header(out, n);
	*outlen = LINK_FRAME_HDR + n;
	return 0;
}

int
link_open(struct link *l, const uint8_t *body, size_t len, uint8_t *out,
    size_t cap, size_t *outlen)
{
	int r;

	if (l->state != LINK_READY)
		return -EINVAL;
	if (len < NOISE_TAG_LEN)
		return -EBADMSG;
	if ((r = link_maybe_rekey(&l->rx)) < 0)
		return r;
	return noise_cipher_decrypt(&l->rx, NULL, 0, body, len, out, cap,
	    outlen);
}

void
link_dispose(struct link *l)
{
	if (l == NULL)
		return;
	noise_handshake_dispose(&l->hs);
	noise_cipher_dispose(&l->tx);
	noise_cipher_dispose(&l->rx);
	sodium_memzero(l, sizeof(*l));
}
