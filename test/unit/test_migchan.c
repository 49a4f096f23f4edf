/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * test_migchan.c: unit tests for proto/migchan.c.
 *
 * Two real ends (fresh random keys) run the handshake and exchange frames
 * both ways; the failures a migration relies on are asserted one by one:
 * wrong K, wrong static keys, a recorded connection replayed to a new
 * responder, replayed, reordered and duplicated frames, every flipped bit
 * of every message, bad magic and version, size limits and misuse of the
 * state machine.
 *
 * A "rogue" initiator written here from PROTOCOL.md section 11 alone (its
 * own KDF over one 208-byte buffer, raw secretstream calls) talks to the
 * real responder.  Its frames opening, and the responder's opening for it,
 * prove the documented key schedule is the implemented one; it also sends
 * the frames a correct migchan_seal() refuses to make (no AUTH first, a
 * second AUTH, unknown types, empty DATA, other tags, frames after FINAL).
 *
 * Invariant: every test asserts outcomes that a broken implementation
 * would change.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "migchan.h"

#define SS_ABYTES	crypto_secretstream_xchacha20poly1305_ABYTES
#define TAG_MESSAGE	crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define TAG_PUSH	crypto_secretstream_xchacha20poly1305_TAG_PUSH
#define TAG_REKEY	crypto_secretstream_xchacha20poly1305_TAG_REKEY
#define TAG_FINAL	crypto_secretstream_xchacha20poly1305_TAG_FINAL

/* Big buffers, shared by the tests (cmocka runs them one at a time). */
static uint8_t fa[MIGCHAN_FRAME_MAX], fb[MIGCHAN_FRAME_MAX];
static uint8_t fc[MIGCHAN_FRAME_MAX], scratch[MIGCHAN_FRAME_MAX];
static uint8_t pbuf[MIGCHAN_PAYLOAD_MAX], big[MIGCHAN_PAYLOAD_MAX];
static uint8_t pt_buf[1 + MIGCHAN_PAYLOAD_MAX];

struct pair {
	struct migchan	 ini, rsp;
	uint8_t		 id[MIGCHAN_ID_LEN], k[MIGCHAN_KEY_LEN];
	uint8_t		 isk[32], ipk[32], rsk[32], rpk[32];
};

struct hs_msgs {
	uint8_t		 hi[MIGCHAN_HELLO_I_LEN];
	uint8_t		 hr[MIGCHAN_HELLO_R_LEN];
	uint8_t		 hdr[MIGCHAN_HEADER_LEN];
};

static bool
all_zero(const void *p, size_t len)
{
	return sodium_is_zero(p, len) == 1;
}

static void
pair_keys(struct pair *p)
{
	memset(p, 0, sizeof(*p));
	randombytes_buf(p->id, sizeof(p->id));
	randombytes_buf(p->k, sizeof(p->k));
	crypto_box_keypair(p->ipk, p->isk);
	crypto_box_keypair(p->rpk, p->rsk);
}

static void
pair_init(struct pair *p)
{
	assert_int_equal(migchan_init(&p->ini, MIGCHAN_INITIATOR, p->id, p->k,
	    p->isk, p->rpk), 0);
	assert_int_equal(migchan_init(&p->rsp, MIGCHAN_RESPONDER, p->id, p->k,
	    p->rsk, p->ipk), 0);
}

static void
handshake(struct pair *p, struct hs_msgs *m)
{
	assert_int_equal(migchan_hello_i(&p->ini, m->hi), 0);
	assert_int_equal(migchan_accept(&p->rsp, m->hi, m->hr), 0);
	assert_false(migchan_ready(&p->rsp));
	assert_int_equal(migchan_finish(&p->ini, m->hr, m->hdr), 0);
	assert_true(migchan_ready(&p->ini));
	assert_int_equal(migchan_header(&p->rsp, m->hdr), 0);
	assert_true(migchan_ready(&p->rsp));
}

static void
session(struct pair *p)
{
	struct hs_msgs m;

	pair_keys(p);
	pair_init(p);
	handshake(p, &m);
}

static void
pair_dispose(struct pair *p)
{
	migchan_dispose(&p->ini);
	migchan_dispose(&p->rsp);
	sodium_memzero(p, sizeof(*p));
}

static size_t
seal_ok(struct migchan *ch, enum migchan_type t, const uint8_t *pl,
    size_t len, bool final, uint8_t *out)
{
	ssize_t n = migchan_seal(ch, t, pl, len, final, out, MIGCHAN_FRAME_MAX);

	assert_int_equal(n, (ssize_t)(len + MIGCHAN_OVERHEAD));
	assert_int_equal(migchan_frame_len(out), n);
	return (size_t)n;
}

static int
open_frame(struct migchan *ch, const uint8_t *in, size_t len,
    enum migchan_type *t, size_t *plen, bool *final)
{
	return migchan_open(ch, in, len, t, pbuf, plen, final);
}

static void
open_ok(struct migchan *ch, const uint8_t *in, size_t len,
    enum migchan_type want_t, const uint8_t *want, size_t want_len,
    bool want_final)
{
	enum migchan_type t = 0;
	size_t plen = 99;
	bool final = !want_final;

	assert_int_equal(open_frame(ch, in, len, &t, &plen, &final), 0);
	assert_int_equal(t, want_t);
	assert_int_equal(plen, want_len);
	assert_int_equal(final, want_final);
	if (want_len > 0)
		assert_memory_equal(pbuf, want, want_len);
}

/* The open must fail with RC and release no plaintext. */
static void
open_fails(struct migchan *ch, const uint8_t *in, size_t len, int rc)
{
	enum migchan_type t = 0;
	size_t plen = 99;
	bool final = false;

	memset(pbuf, 0xa5, 64);
	assert_int_equal(open_frame(ch, in, len, &t, &plen, &final), rc);
	assert_int_equal(t, 0);
	assert_int_equal(plen, 99);
	assert_false(final);
	assert_int_equal(pbuf[0], 0xa5);
	assert_int_equal(pbuf[63], 0xa5);
}

static void
auth_one(struct migchan *tx, struct migchan *rx, const uint8_t *id)
{
	size_t n = seal_ok(tx, MIGCHAN_AUTH, id, MIGCHAN_ID_LEN, false, fa);

	open_ok(rx, fa, n, MIGCHAN_AUTH, id, MIGCHAN_ID_LEN, false);
}

static void
auth_both(struct pair *p)
{
	auth_one(&p->ini, &p->rsp, p->id);
	auth_one(&p->rsp, &p->ini, p->id);
}

/* A dead channel: wiped, and every call refused. */
static void
assert_dead(struct migchan *ch, const uint8_t *id)
{
	uint8_t hs[MIGCHAN_HELLO_I_LEN] = { 0 };
	enum migchan_type t;
	size_t plen;
	bool final;

	assert_false(migchan_ready(ch));
	assert_true(all_zero(ch->k, sizeof(ch->k)));
	assert_true(all_zero(ch->my_sk, sizeof(ch->my_sk)));
	assert_true(all_zero(ch->e_sk, sizeof(ch->e_sk)));
	assert_true(all_zero(&ch->tx, sizeof(ch->tx)));
	assert_true(all_zero(&ch->rx, sizeof(ch->rx)));
	assert_int_equal(migchan_seal(ch, MIGCHAN_AUTH, id, MIGCHAN_ID_LEN,
	    false, fc, sizeof(fc)), -EINVAL);
	assert_int_equal(migchan_open(ch, fa, MIGCHAN_OVERHEAD, &t, pbuf,
	    &plen, &final), -EINVAL);
	assert_int_equal(migchan_hello_i(ch, hs), -EINVAL);
	assert_int_equal(migchan_accept(ch, hs, hs), -EINVAL);
	assert_int_equal(migchan_finish(ch, hs, hs), -EINVAL);
	assert_int_equal(migchan_header(ch, hs), -EINVAL);
}

/* The rogue initiator: PROTOCOL.md section 11, written out independently. */
struct rogue {
	crypto_secretstream_xchacha20poly1305_state tx, rx;
};

static void
spec_key(uint8_t key[32], const uint8_t k[32], const char *dir,
    const uint8_t kx[32], const uint8_t ss[32], const uint8_t id[16],
    const uint8_t hi[56], const uint8_t hr[56])
{
	uint8_t in[208], *p = in;

	memcpy(p, "hv migrate v1", 13), p += 13;
	memcpy(p, dir, 3), p += 3;
	memcpy(p, kx, 32), p += 32;
	memcpy(p, ss, 32), p += 32;
	memcpy(p, id, 16), p += 16;
	memcpy(p, hi, 56), p += 56;
	memcpy(p, hr, 56), p += 56;
	assert_int_equal(p - in, 208);
	assert_int_equal(crypto_generichash(key, 32, in, sizeof(in), k, 32), 0);
}

static void
rogue_connect(struct rogue *r, struct pair *p)
{
	uint8_t e_pk[32], e_sk[32], hi[56], hr[56], hdr[24];
	uint8_t kx_rx[32], kx_tx[32], ss[32], k_i2r[32], k_r2i[32];

	crypto_kx_keypair(e_pk, e_sk);
	memcpy(hi, "HVMG\x01\x00\x00\x00", 8);
	memcpy(hi + 8, p->id, 16);
	memcpy(hi + 24, e_pk, 32);
	assert_int_equal(migchan_accept(&p->rsp, hi, hr), 0);
	assert_int_equal(crypto_kx_client_session_keys(kx_rx, kx_tx, e_pk,
	    e_sk, hr), 0);
	assert_int_equal(crypto_scalarmult(ss, p->isk, p->rpk), 0);
	spec_key(k_i2r, p->k, "i2r", kx_tx, ss, p->id, hi, hr);
	spec_key(k_r2i, p->k, "r2i", kx_rx, ss, p->id, hi, hr);
	crypto_secretstream_xchacha20poly1305_init_push(&r->tx, hdr, k_i2r);
	crypto_secretstream_xchacha20poly1305_init_pull(&r->rx, hr + 32,
	    k_r2i);
	assert_int_equal(migchan_header(&p->rsp, hdr), 0);
	assert_true(migchan_ready(&p->rsp));
}

/* Any type byte, payload and tag, framed as section 11 says. */
static size_t
rogue_frame(struct rogue *r, uint8_t type, const uint8_t *pl, size_t len,
    unsigned char tag, uint8_t *out)
{
	unsigned long long clen;

	pt_buf[0] = type;
	if (len > 0)
		memcpy(pt_buf + 1, pl, len);
	assert_int_equal(crypto_secretstream_xchacha20poly1305_push(&r->tx,
	    out + 4, &clen, pt_buf, 1 + len, NULL, 0, tag), 0);
	assert_int_equal(clen, 1 + len + SS_ABYTES);
	out[0] = (uint8_t)(clen >> 24);
	out[1] = (uint8_t)(clen >> 16);
	out[2] = (uint8_t)(clen >> 8);
	out[3] = (uint8_t)clen;
	return 4 + (size_t)clen;
}

/* The rogue opens a frame of the real responder. */
static void
rogue_open(struct rogue *r, const uint8_t *in, size_t len, uint8_t want_t,
    const uint8_t *want, size_t want_len, unsigned char want_tag)
{
	unsigned long long mlen;
	unsigned char tag;

	assert_int_equal(crypto_secretstream_xchacha20poly1305_pull(&r->rx,
	    pt_buf, &mlen, &tag, in + 4, len - 4, NULL, 0), 0);
	assert_int_equal(tag, want_tag);
	assert_int_equal(mlen, 1 + want_len);
	assert_int_equal(pt_buf[0], want_t);
	if (want_len > 0)
		assert_memory_equal(pt_buf + 1, want, want_len);
}

static void
test_roundtrip(void **state)
{
	static const uint8_t domid[4] = { 0, 0, 0, 7 };
	struct pair p;
	size_t n, i;

	(void)state;
	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 31 + 7);
	session(&p);
	/* Secrets are gone once both ends are ready. */
	assert_true(all_zero(p.ini.k, sizeof(p.ini.k)));
	assert_true(all_zero(p.rsp.k, sizeof(p.rsp.k)));
	assert_true(all_zero(p.ini.my_sk, 32) && all_zero(p.rsp.my_sk, 32));
	assert_true(all_zero(p.ini.e_sk, 32) && all_zero(p.rsp.e_sk, 32));
	auth_both(&p);

	n = seal_ok(&p.rsp, MIGCHAN_READY, NULL, 0, false, fa);
	assert_int_equal(n, MIGCHAN_OVERHEAD);
	open_ok(&p.ini, fa, n, MIGCHAN_READY, NULL, 0, false);
	n = seal_ok(&p.ini, MIGCHAN_DATA, big, sizeof(big), false, fa);
	assert_int_equal(n, MIGCHAN_FRAME_MAX);
	open_ok(&p.rsp, fa, n, MIGCHAN_DATA, big, sizeof(big), false);
	n = seal_ok(&p.ini, MIGCHAN_DATA, big + 5, 1, false, fa);
	open_ok(&p.rsp, fa, n, MIGCHAN_DATA, big + 5, 1, false);
	/* The other way too: the directions are independent streams. */
	n = seal_ok(&p.rsp, MIGCHAN_DATA, big, sizeof(big), false, fa);
	open_ok(&p.ini, fa, n, MIGCHAN_DATA, big, sizeof(big), false);
	n = seal_ok(&p.ini, MIGCHAN_END, NULL, 0, false, fa);
	open_ok(&p.rsp, fa, n, MIGCHAN_END, NULL, 0, false);
	n = seal_ok(&p.rsp, MIGCHAN_RECEIVED, NULL, 0, false, fa);
	open_ok(&p.ini, fa, n, MIGCHAN_RECEIVED, NULL, 0, false);
	n = seal_ok(&p.ini, MIGCHAN_GO, NULL, 0, false, fa);
	open_ok(&p.rsp, fa, n, MIGCHAN_GO, NULL, 0, false);
	n = seal_ok(&p.rsp, MIGCHAN_DONE, domid, sizeof(domid), false, fa);
	open_ok(&p.ini, fa, n, MIGCHAN_DONE, domid, sizeof(domid), false);
	n = seal_ok(&p.rsp, MIGCHAN_ABORT, (const uint8_t *)"disk full", 9,
	    false, fa);
	open_ok(&p.ini, fa, n, MIGCHAN_ABORT, (const uint8_t *)"disk full", 9,
	    false);
	/* The same plaintext twice never gives the same bytes. */
	n = seal_ok(&p.ini, MIGCHAN_DATA, big, 32, false, fa);
	assert_int_equal(seal_ok(&p.ini, MIGCHAN_DATA, big, 32, false, fb), n);
	assert_memory_not_equal(fa, fb, n);
	pair_dispose(&p);
}

/* The wire format against an implementation written from the spec. */
static void
test_spec_conformance(void **state)
{
	struct pair p;
	struct rogue r;
	size_t n;

	(void)state;
	pair_keys(&p);
	pair_init(&p);
	rogue_connect(&r, &p);
	n = rogue_frame(&r, MIGCHAN_AUTH, p.id, 16, TAG_MESSAGE, fa);
	assert_int_equal(n, 4 + 17 + 1 + 16);
	/* The prefix counts the ciphertext only. */
	assert_int_equal(fa[0] | fa[1] | fa[2], 0);
	assert_int_equal(fa[3], 17 + 1 + 16);
	open_ok(&p.rsp, fa, n, MIGCHAN_AUTH, p.id, 16, false);
	n = rogue_frame(&r, MIGCHAN_DATA, big, 1000, TAG_MESSAGE, fa);
	open_ok(&p.rsp, fa, n, MIGCHAN_DATA, big, 1000, false);
	n = rogue_frame(&r, MIGCHAN_END, NULL, 0, TAG_FINAL, fa);
	open_ok(&p.rsp, fa, n, MIGCHAN_END, NULL, 0, true);
	/* r2i: the rogue opens what the real responder seals. */
	n = seal_ok(&p.rsp, MIGCHAN_AUTH, p.id, 16, false, fa);
	assert_int_equal(fa[3], 17 + 1 + 16);
	rogue_open(&r, fa, n, MIGCHAN_AUTH, p.id, 16, TAG_MESSAGE);
	n = seal_ok(&p.rsp, MIGCHAN_DONE, (const uint8_t *)"\0\0\0\x09", 4,
	    true, fa);
	rogue_open(&r, fa, n, MIGCHAN_DONE, (const uint8_t *)"\0\0\0\x09", 4,
	    TAG_FINAL);
	pair_dispose(&p);
}

static void
test_final(void **state)
{
	struct pair p;
	struct rogue r;
	size_t n;

	(void)state;
	session(&p);
	auth_both(&p);
	n = seal_ok(&p.ini, MIGCHAN_END, NULL, 0, true, fa);
	open_ok(&p.rsp, fa, n, MIGCHAN_END, NULL, 0, true);
	assert_true(p.ini.tx_final);
	assert_true(p.rsp.rx_final);
	/* Nothing is sealed after this side's FINAL, and that kills nothing. */
	assert_int_equal(migchan_seal(&p.ini, MIGCHAN_GO, NULL, 0, false, fb,
	    sizeof(fb)), -EINVAL);
	assert_true(migchan_ready(&p.ini));
	/* The other direction goes on until its own FINAL. */
	n = seal_ok(&p.rsp, MIGCHAN_RECEIVED, NULL, 0, false, fa);
	open_ok(&p.ini, fa, n, MIGCHAN_RECEIVED, NULL, 0, false);
	n = seal_ok(&p.rsp, MIGCHAN_DONE, (const uint8_t *)"\0\0\0\1", 4,
	    true, fa);
	open_ok(&p.ini, fa, n, MIGCHAN_DONE, (const uint8_t *)"\0\0\0\1", 4,
	    true);
	/* Any bytes offered after the peer's FINAL are refused. */
	open_fails(&p.ini, fa, n, -EBADMSG);
	assert_dead(&p.ini, p.id);
	pair_dispose(&p);

	/* A genuine frame pushed after FINAL (seal will not make one). */
	pair_keys(&p);
	pair_init(&p);
	rogue_connect(&r, &p);
	n = rogue_frame(&r, MIGCHAN_AUTH, p.id, 16, TAG_MESSAGE, fa);
	open_ok(&p.rsp, fa, n, MIGCHAN_AUTH, p.id, 16, false);
	n = rogue_frame(&r, MIGCHAN_END, NULL, 0, TAG_FINAL, fa);
	open_ok(&p.rsp, fa, n, MIGCHAN_END, NULL, 0, true);
	n = rogue_frame(&r, MIGCHAN_GO, NULL, 0, TAG_MESSAGE, fa);
	open_fails(&p.rsp, fa, n, -EBADMSG);
	assert_dead(&p.rsp, p.id);
	pair_dispose(&p);
}

/* Both AUTH frames fail: neither side accepts the other. */
static void
assert_auth_fails(struct pair *p)
{
	size_t ni, nr;

	ni = seal_ok(&p->ini, MIGCHAN_AUTH, p->id, 16, false, fa);
	nr = seal_ok(&p->rsp, MIGCHAN_AUTH, p->id, 16, false, fb);
	open_fails(&p->rsp, fa, ni, -EBADMSG);
	open_fails(&p->ini, fb, nr, -EBADMSG);
	assert_dead(&p->rsp, p->id);
	assert_dead(&p->ini, p->id);
}

static void
test_wrong_k(void **state)
{
	struct hs_msgs m;
	struct pair p;
	uint8_t k2[32];
	int side;

	(void)state;
	for (side = 0; side < 2; side++) {
		pair_keys(&p);
		randombytes_buf(k2, sizeof(k2));
		assert_int_equal(migchan_init(&p.ini, MIGCHAN_INITIATOR, p.id,
		    side == 0 ? k2 : p.k, p.isk, p.rpk), 0);
		assert_int_equal(migchan_init(&p.rsp, MIGCHAN_RESPONDER, p.id,
		    side == 1 ? k2 : p.k, p.rsk, p.ipk), 0);
		/* K is not on the wire: the handshake itself goes through. */
		handshake(&p, &m);
		assert_auth_fails(&p);
		pair_dispose(&p);
	}
}

static void
test_wrong_static(void **state)
{
	struct hs_msgs m;
	struct pair p;
	uint8_t xsk[32], xpk[32];
	int c;

	(void)state;
	crypto_box_keypair(xpk, xsk);
	/*
	 * 0: the initiator holds a third party's sk; 1: the initiator was
	 * told a wrong responder key; 2, 3: the same on the responder.
	 */
	for (c = 0; c < 4; c++) {
		pair_keys(&p);
		assert_int_equal(migchan_init(&p.ini, MIGCHAN_INITIATOR, p.id,
		    p.k, c == 0 ? xsk : p.isk, c == 1 ? xpk : p.rpk), 0);
		assert_int_equal(migchan_init(&p.rsp, MIGCHAN_RESPONDER, p.id,
		    p.k, c == 2 ? xsk : p.rsk, c == 3 ? xpk : p.ipk), 0);
		handshake(&p, &m);
		assert_auth_fails(&p);
		pair_dispose(&p);
	}
	sodium_memzero(xsk, sizeof(xsk));
}

/* A recorded connection replayed to a fresh responder derives other keys. */
static void
test_replay_connection(void **state)
{
	struct hs_msgs m;
	struct pair p;
	struct migchan fresh;
	uint8_t hr2[MIGCHAN_HELLO_R_LEN];
	size_t na, nd;

	(void)state;
	pair_keys(&p);
	pair_init(&p);
	handshake(&p, &m);
	na = seal_ok(&p.ini, MIGCHAN_AUTH, p.id, 16, false, fa);
	nd = seal_ok(&p.ini, MIGCHAN_DATA, big, 4096, false, fb);
	open_ok(&p.rsp, fa, na, MIGCHAN_AUTH, p.id, 16, false);
	open_ok(&p.rsp, fb, nd, MIGCHAN_DATA, big, 4096, false);

	/* Same id, K and static keys: only the responder's ephemeral is new. */
	assert_int_equal(migchan_init(&fresh, MIGCHAN_RESPONDER, p.id, p.k,
	    p.rsk, p.ipk), 0);
	assert_int_equal(migchan_accept(&fresh, m.hi, hr2), 0);
	assert_memory_not_equal(hr2, m.hr, sizeof(hr2));
	assert_int_equal(migchan_header(&fresh, m.hdr), 0);
	open_fails(&fresh, fa, na, -EBADMSG);
	assert_dead(&fresh, p.id);
	/* Nor does the recorded DATA frame open on its own. */
	assert_int_equal(migchan_init(&fresh, MIGCHAN_RESPONDER, p.id, p.k,
	    p.rsk, p.ipk), 0);
	assert_int_equal(migchan_accept(&fresh, m.hi, hr2), 0);
	assert_int_equal(migchan_header(&fresh, m.hdr), 0);
	open_fails(&fresh, fb, nd, -EBADMSG);
	migchan_dispose(&fresh);
	pair_dispose(&p);
}

/* Replayed, reordered, duplicated or reflected frames within a session. */
static void
test_replay_frames(void **state)
{
	struct pair p;
	size_t na, n1, n2;
	int c;

	(void)state;
	for (c = 0; c < 5; c++) {
		session(&p);
		na = seal_ok(&p.ini, MIGCHAN_AUTH, p.id, 16, false, fa);
		n1 = seal_ok(&p.ini, MIGCHAN_DATA, big, 100, false, fb);
		n2 = seal_ok(&p.ini, MIGCHAN_DATA, big + 100, 100, false, fc);
		open_ok(&p.rsp, fa, na, MIGCHAN_AUTH, p.id, 16, false);
		switch (c) {
		case 0:		/* AUTH again */
			open_fails(&p.rsp, fa, na, -EBADMSG);
			break;
		case 1:		/* duplicated */
			open_ok(&p.rsp, fb, n1, MIGCHAN_DATA, big, 100, false);
			open_fails(&p.rsp, fb, n1, -EBADMSG);
			break;
		case 2:		/* reordered */
			open_fails(&p.rsp, fc, n2, -EBADMSG);
			break;
		case 3:		/* replayed later */
			open_ok(&p.rsp, fb, n1, MIGCHAN_DATA, big, 100, false);
			open_ok(&p.rsp, fc, n2, MIGCHAN_DATA, big + 100, 100,
			    false);
			open_fails(&p.rsp, fb, n1, -EBADMSG);
			break;
		case 4:		/* reflected to its sender */
			open_fails(&p.ini, fa, na, -EBADMSG);
			assert_dead(&p.ini, p.id);
			/* The responder lives on. */
			open_ok(&p.rsp, fb, n1, MIGCHAN_DATA, big, 100, false);
			pair_dispose(&p);
			continue;
		}
		assert_dead(&p.rsp, p.id);
		pair_dispose(&p);
	}
}

/* Reads BAD like a real receiver: the prefix, then as many bytes as it says. */
static int
recv_like_peer(struct migchan *ch, const uint8_t *bad, size_t have)
{
	enum migchan_type t;
	size_t plen;
	bool final;
	ssize_t n = migchan_frame_len(bad);

	if (n < 0)
		return (int)n;
	memset(scratch, 0, (size_t)n);
	memcpy(scratch, bad, (size_t)n < have ? (size_t)n : have);
	return migchan_open(ch, scratch, (size_t)n, &t, pbuf, &plen, &final);
}

enum flip_msg { FLIP_HELLO_I, FLIP_HELLO_R, FLIP_HEADER, FLIP_FRAME };

static void
flip_one(enum flip_msg which, size_t bit)
{
	struct hs_msgs m;
	struct pair p;
	size_t byte = bit / 8, n, nr;
	uint8_t mask = (uint8_t)(1u << (bit % 8)), id[16];
	int rc;

	pair_keys(&p);
	pair_init(&p);
	assert_int_equal(migchan_hello_i(&p.ini, m.hi), 0);
	if (which == FLIP_HELLO_I) {
		m.hi[byte] ^= mask;
		rc = migchan_accept(&p.rsp, m.hi, m.hr);
		if (byte < 8) {
			assert_int_equal(rc, -EPROTO);
			assert_int_equal(migchan_peek_id(m.hi, id), -EPROTO);
			assert_dead(&p.rsp, p.id);
			goto out;
		}
		if (byte < 24) {
			assert_int_equal(rc, -EBADMSG);
			assert_dead(&p.rsp, p.id);
			goto out;
		}
		if (rc != 0) {	/* only a low-order e_i */
			assert_int_equal(rc, -EBADMSG);
			goto out;
		}
	} else {
		assert_int_equal(migchan_accept(&p.rsp, m.hi, m.hr), 0);
	}
	if (which == FLIP_HELLO_R)
		m.hr[byte] ^= mask;
	rc = migchan_finish(&p.ini, m.hr, m.hdr);
	if (rc != 0) {
		assert_int_equal(which, FLIP_HELLO_R);
		assert_int_equal(rc, -EBADMSG);
		goto out;
	}
	if (which == FLIP_HEADER)
		m.hdr[byte] ^= mask;
	assert_int_equal(migchan_header(&p.rsp, m.hdr), 0);

	/* Both keys depend on both hellos: every frame fails either way. */
	if (which == FLIP_HELLO_I || which == FLIP_HELLO_R) {
		assert_auth_fails(&p);
		goto out;
	}
	/* The header only starts the i2r stream; a frame is only itself. */
	nr = seal_ok(&p.rsp, MIGCHAN_AUTH, p.id, 16, false, fb);
	n = seal_ok(&p.ini, MIGCHAN_AUTH, p.id, 16, false, fa);
	if (which == FLIP_FRAME)
		fa[byte] ^= mask;
	assert_int_equal(recv_like_peer(&p.rsp, fa, n), -EBADMSG);
	open_ok(&p.ini, fb, nr, MIGCHAN_AUTH, p.id, 16, false);
out:
	pair_dispose(&p);
}

static void
test_bit_flips(void **state)
{
	size_t bit;

	(void)state;
	for (bit = 0; bit < MIGCHAN_HELLO_I_LEN * 8; bit++)
		flip_one(FLIP_HELLO_I, bit);
	for (bit = 0; bit < MIGCHAN_HELLO_R_LEN * 8; bit++)
		flip_one(FLIP_HELLO_R, bit);
	for (bit = 0; bit < MIGCHAN_HEADER_LEN * 8; bit++)
		flip_one(FLIP_HEADER, bit);
	for (bit = 0; bit < (MIGCHAN_OVERHEAD + 16) * 8; bit++)
		flip_one(FLIP_FRAME, bit);
}

static void
test_bad_hello(void **state)
{
	static const struct {
		size_t	 off;
		uint8_t	 val;
	} bad[] = {
		{ 0, 'h' }, { 3, 'A' }, { 4, 0 }, { 4, 2 }, { 5, 1 }, { 6, 1 },
		{ 7, 0x80 },
	};
	struct pair p;
	uint8_t hi[MIGCHAN_HELLO_I_LEN], hr[MIGCHAN_HELLO_R_LEN], id[16];
	size_t i;

	(void)state;
	pair_keys(&p);
	pair_init(&p);
	assert_int_equal(migchan_hello_i(&p.ini, hi), 0);
	assert_memory_equal(hi, "HVMG\x01\x00\x00\x00", 8);
	assert_memory_equal(hi + 8, p.id, 16);
	assert_memory_equal(hi + 24, p.ini.e_pk, 32);
	assert_int_equal(migchan_peek_id(hi, id), 0);
	assert_memory_equal(id, p.id, 16);
	assert_int_equal(migchan_peek_id(NULL, id), -EINVAL);
	assert_int_equal(migchan_peek_id(hi, NULL), -EINVAL);
	pair_dispose(&p);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pair_keys(&p);
		pair_init(&p);
		assert_int_equal(migchan_hello_i(&p.ini, hi), 0);
		hi[bad[i].off] = bad[i].val;
		memset(id, 0xee, sizeof(id));
		assert_int_equal(migchan_peek_id(hi, id), -EPROTO);
		assert_int_equal(id[0], 0xee);
		assert_int_equal(migchan_accept(&p.rsp, hi, hr), -EPROTO);
		assert_dead(&p.rsp, p.id);
		pair_dispose(&p);
	}

	/* A HELLO_I for another migration, and low-order ephemerals. */
	pair_keys(&p);
	pair_init(&p);
	assert_int_equal(migchan_hello_i(&p.ini, hi), 0);
	hi[8] ^= 1;
	assert_int_equal(migchan_accept(&p.rsp, hi, hr), -EBADMSG);
	assert_dead(&p.rsp, p.id);
	pair_dispose(&p);
	pair_keys(&p);
	pair_init(&p);
	assert_int_equal(migchan_hello_i(&p.ini, hi), 0);
	memset(hi + 24, 0, 32);
	assert_int_equal(migchan_accept(&p.rsp, hi, hr), -EBADMSG);
	assert_dead(&p.rsp, p.id);
	pair_dispose(&p);
	pair_keys(&p);
	pair_init(&p);
	assert_int_equal(migchan_hello_i(&p.ini, hi), 0);
	memset(hr, 0, 32);
	randombytes_buf(hr + 32, 24);
	assert_int_equal(migchan_finish(&p.ini, hr, id), -EBADMSG);
	assert_dead(&p.ini, p.id);
	pair_dispose(&p);
}

static void
test_auth_rules(void **state)
{
	static const uint8_t bad_types[] = { 0, MIGCHAN_TYPE_MAX + 1, 0x80,
	    0xff };
	static const unsigned char bad_tags[] = { TAG_PUSH, TAG_REKEY, 4, 0x80,
	    0xff };
	struct pair p;
	struct rogue r;
	uint8_t other[16], longer[17];
	size_t n, i;
	int c;

	(void)state;
	/* Refused as a first frame: not AUTH, or AUTH not carrying the id. */
	for (c = 0; c < 5; c++) {
		pair_keys(&p);
		pair_init(&p);
		rogue_connect(&r, &p);
		memcpy(other, p.id, 16);
		other[15] ^= 0x40;
		memcpy(longer, p.id, 16);
		longer[16] = 0;
		switch (c) {
		case 0:
			n = rogue_frame(&r, MIGCHAN_READY, NULL, 0, TAG_MESSAGE,
			    fa);
			break;
		case 1:
			n = rogue_frame(&r, MIGCHAN_DATA, big, 10, TAG_MESSAGE,
			    fa);
			break;
		case 2:
			n = rogue_frame(&r, MIGCHAN_AUTH, other, 16,
			    TAG_MESSAGE, fa);
			break;
		case 3:
			n = rogue_frame(&r, MIGCHAN_AUTH, longer, 17,
			    TAG_MESSAGE, fa);
			break;
		default:
			n = rogue_frame(&r, MIGCHAN_AUTH, p.id, 15,
			    TAG_MESSAGE, fa);
			break;
		}
		open_fails(&p.rsp, fa, n, -EBADMSG);
		assert_dead(&p.rsp, p.id);
		pair_dispose(&p);
	}

	/* Refused after a good AUTH: case 0 a second AUTH, then bad types,
	 * empty DATA and tags other than MESSAGE and FINAL. */
	for (c = 0; c < (int)(2 + sizeof(bad_types) + sizeof(bad_tags));
	    c++) {
		pair_keys(&p);
		pair_init(&p);
		rogue_connect(&r, &p);
		n = rogue_frame(&r, MIGCHAN_AUTH, p.id, 16, TAG_MESSAGE, fa);
		open_ok(&p.rsp, fa, n, MIGCHAN_AUTH, p.id, 16, false);
		if (c == 0) {
			n = rogue_frame(&r, MIGCHAN_AUTH, p.id, 16,
			    TAG_MESSAGE, fa);
		} else if (c == 1) {
			n = rogue_frame(&r, MIGCHAN_DATA, NULL, 0, TAG_MESSAGE,
			    fa);
		} else if ((size_t)c < 2 + sizeof(bad_types)) {
			i = (size_t)c - 2;
			n = rogue_frame(&r, bad_types[i], big, 3, TAG_MESSAGE,
			    fa);
		} else {
			i = (size_t)c - 2 - sizeof(bad_types);
			n = rogue_frame(&r, MIGCHAN_DATA, big, 3, bad_tags[i],
			    fa);
		}
		open_fails(&p.rsp, fa, n, -EBADMSG);
		assert_dead(&p.rsp, p.id);
		pair_dispose(&p);
	}

	/* seal refuses to make any of these, and a refusal changes nothing. */
	session(&p);
	memcpy(other, p.id, 16);
	other[0] ^= 1;
	assert_int_equal(migchan_seal(&p.ini, MIGCHAN_READY, NULL, 0, false,
	    fa, sizeof(fa)), -EINVAL);
	assert_int_equal(migchan_seal(&p.ini, MIGCHAN_AUTH, other, 16, false,
	    fa, sizeof(fa)), -EINVAL);
	assert_int_equal(migchan_seal(&p.ini, MIGCHAN_AUTH, p.id, 15, false,
	    fa, sizeof(fa)), -EINVAL);
	assert_int_equal(migchan_seal(&p.ini, MIGCHAN_AUTH, NULL, 16, false,
	    fa, sizeof(fa)), -EINVAL);
	assert_int_equal(migchan_seal(&p.ini, 0, NULL, 0, false, fa,
	    sizeof(fa)), -EINVAL);
	auth_one(&p.ini, &p.rsp, p.id);
	assert_int_equal(migchan_seal(&p.ini, MIGCHAN_AUTH, p.id, 16, false,
	    fa, sizeof(fa)), -EINVAL);
	assert_int_equal(migchan_seal(&p.ini, MIGCHAN_DATA, big, 0, false, fa,
	    sizeof(fa)), -EINVAL);
	assert_int_equal(migchan_seal(&p.ini, 0, big, 1, false, fa,
	    sizeof(fa)), -EINVAL);
	assert_int_equal(migchan_seal(&p.ini,
	    (enum migchan_type)(MIGCHAN_TYPE_MAX + 1), big, 1, false, fa,
	    sizeof(fa)), -EINVAL);
	assert_true(migchan_ready(&p.ini));
	n = seal_ok(&p.ini, MIGCHAN_DATA, big, 1, false, fa);
	open_ok(&p.rsp, fa, n, MIGCHAN_DATA, big, 1, false);
	pair_dispose(&p);
}

/* A frame from the responder that its migchan_seal() would not make. */
static size_t
rsp_forge(struct pair *p, uint8_t type, const uint8_t *pl, size_t len,
    uint8_t *out)
{
	unsigned long long clen;

	pt_buf[0] = type;
	if (len > 0)
		memcpy(pt_buf + 1, pl, len);
	assert_int_equal(crypto_secretstream_xchacha20poly1305_push(&p->rsp.tx,
	    out + 4, &clen, pt_buf, 1 + len, NULL, 0, TAG_MESSAGE), 0);
	out[0] = (uint8_t)(clen >> 24);
	out[1] = (uint8_t)(clen >> 16);
	out[2] = (uint8_t)(clen >> 8);
	out[3] = (uint8_t)clen;
	return 4 + (size_t)clen;
}

/*
 * DATA_LZ4 (PROTOCOL.md 11.4): only initiator to responder, only after
 * the responder's first READY offered MIGCHAN_CAP_LZ4, never empty; READY
 * carries at most MIGCHAN_READY_MAX capability bytes.
 */
static void
test_lz4_rules(void **state)
{
	static const uint8_t lz4[] = { MIGCHAN_CAP_LZ4 }, none[] = { 0 };
	static const uint8_t other[] = { 0x02 }, all[] = { 0xff, 0xff };
	static const struct {
		const uint8_t *caps;
		size_t len;
		bool offers;
	} readies[] = {
		{ NULL, 0, false },		/* an agent before LZ4 */
		{ none, 1, false },
		{ other, 1, false },		/* unknown bits only */
		{ lz4, 1, true },
		{ all, 2, true },		/* unknown bits ignored */
	};
	uint8_t caps17[MIGCHAN_READY_MAX + 1] = { MIGCHAN_CAP_LZ4 };
	struct pair p;
	struct rogue r;
	size_t n, i;
	int c;

	(void)state;
	for (i = 0; i < sizeof(readies) / sizeof(readies[0]); i++) {
		session(&p);
		auth_both(&p);
		/* Not before READY, on either side. */
		assert_false(migchan_lz4(&p.ini));
		assert_false(migchan_lz4(&p.rsp));
		assert_int_equal(migchan_seal(&p.ini, MIGCHAN_DATA_LZ4, big, 8,
		    false, fa, sizeof(fa)), -EINVAL);
		assert_true(migchan_ready(&p.ini));
		n = seal_ok(&p.rsp, MIGCHAN_READY, readies[i].caps,
		    readies[i].len, false, fa);
		assert_int_equal(migchan_lz4(&p.rsp), readies[i].offers);
		open_ok(&p.ini, fa, n, MIGCHAN_READY, readies[i].caps,
		    readies[i].len, false);
		assert_int_equal(migchan_lz4(&p.ini), readies[i].offers);
		/* A later READY changes nothing, either way. */
		n = seal_ok(&p.rsp, MIGCHAN_READY, readies[i].offers ? NULL :
		    lz4, readies[i].offers ? 0 : 1, false, fa);
		open_ok(&p.ini, fa, n, MIGCHAN_READY, lz4,
		    readies[i].offers ? 0 : 1, false);
		assert_int_equal(migchan_lz4(&p.ini), readies[i].offers);
		assert_int_equal(migchan_lz4(&p.rsp), readies[i].offers);
		if (!readies[i].offers) {
			assert_int_equal(migchan_seal(&p.ini, MIGCHAN_DATA_LZ4,
			    big, 8, false, fa, sizeof(fa)), -EINVAL);
			pair_dispose(&p);
			continue;
		}
		n = seal_ok(&p.ini, MIGCHAN_DATA_LZ4, big, 8, false, fa);
		open_ok(&p.rsp, fa, n, MIGCHAN_DATA_LZ4, big, 8, false);
		n = seal_ok(&p.ini, MIGCHAN_DATA_LZ4, big, MIGCHAN_PAYLOAD_MAX,
		    false, fa);
		open_ok(&p.rsp, fa, n, MIGCHAN_DATA_LZ4, big,
		    MIGCHAN_PAYLOAD_MAX, false);
		/* Never empty, never from the responder. */
		assert_int_equal(migchan_seal(&p.ini, MIGCHAN_DATA_LZ4, big, 0,
		    false, fa, sizeof(fa)), -EINVAL);
		assert_int_equal(migchan_seal(&p.rsp, MIGCHAN_DATA_LZ4, big, 8,
		    false, fa, sizeof(fa)), -EINVAL);
		/* A responder that sends one anyway is refused. */
		n = rsp_forge(&p, MIGCHAN_DATA_LZ4, big, 8, fa);
		open_fails(&p.ini, fa, n, -EBADMSG);
		assert_dead(&p.ini, p.id);
		assert_false(migchan_lz4(&p.ini));
		pair_dispose(&p);
	}

	/* READY's size: 16 bytes, not 17, both ways. */
	session(&p);
	auth_both(&p);
	assert_int_equal(migchan_seal(&p.rsp, MIGCHAN_READY, caps17,
	    sizeof(caps17), false, fa, sizeof(fa)), -EINVAL);
	assert_false(migchan_lz4(&p.rsp));
	n = rsp_forge(&p, MIGCHAN_READY, caps17, sizeof(caps17), fa);
	open_fails(&p.ini, fa, n, -EBADMSG);
	assert_dead(&p.ini, p.id);
	pair_dispose(&p);
	session(&p);
	auth_both(&p);
	n = seal_ok(&p.rsp, MIGCHAN_READY, caps17, MIGCHAN_READY_MAX, false,
	    fa);
	open_ok(&p.ini, fa, n, MIGCHAN_READY, caps17, MIGCHAN_READY_MAX, false);
	assert_true(migchan_lz4(&p.ini));
	pair_dispose(&p);

	/* A rogue source: before READY, without the flag, empty, too long a
	 * READY of its own; then what opens once the flag was offered. */
	for (c = 0; c < 5; c++) {
		pair_keys(&p);
		pair_init(&p);
		rogue_connect(&r, &p);
		n = rogue_frame(&r, MIGCHAN_AUTH, p.id, 16, TAG_MESSAGE, fa);
		open_ok(&p.rsp, fa, n, MIGCHAN_AUTH, p.id, 16, false);
		assert_int_equal(seal_ok(&p.rsp, MIGCHAN_AUTH, p.id, 16, false,
		    fa), 16 + MIGCHAN_OVERHEAD);
		if (c == 1)
			(void)seal_ok(&p.rsp, MIGCHAN_READY, none, 1, false,
			    fa);
		if (c >= 2)
			(void)seal_ok(&p.rsp, MIGCHAN_READY, lz4, 1, false, fa);
		if (c == 2)
			n = rogue_frame(&r, MIGCHAN_DATA_LZ4, NULL, 0,
			    TAG_MESSAGE, fa);
		else if (c == 3)
			n = rogue_frame(&r, MIGCHAN_READY, caps17,
			    sizeof(caps17), TAG_MESSAGE, fa);
		else
			n = rogue_frame(&r, MIGCHAN_DATA_LZ4, big, 5,
			    TAG_MESSAGE, fa);
		if (c < 4) {
			open_fails(&p.rsp, fa, n, -EBADMSG);
			assert_dead(&p.rsp, p.id);
			assert_false(migchan_lz4(&p.rsp));
		} else {
			open_ok(&p.rsp, fa, n, MIGCHAN_DATA_LZ4, big, 5, false);
		}
		pair_dispose(&p);
	}
	assert_false(migchan_lz4(NULL));
}

static void
test_frame_len(void **state)
{
	static const struct {
		uint32_t n;
		ssize_t	 want;
	} cases[] = {
		{ 0, -EBADMSG },
		{ 1, -EBADMSG },
		{ SS_ABYTES, -EBADMSG },
		{ SS_ABYTES + 1, MIGCHAN_OVERHEAD },
		{ SS_ABYTES + 17, MIGCHAN_OVERHEAD + 16 },
		{ SS_ABYTES + 1 + MIGCHAN_PAYLOAD_MAX, MIGCHAN_FRAME_MAX },
		{ SS_ABYTES + 2 + MIGCHAN_PAYLOAD_MAX, -EBADMSG },
		{ 0x01000000 + SS_ABYTES + 1, -EBADMSG },
		{ 0xffffffff, -EBADMSG },
	};
	struct pair p;
	uint8_t pre[4];
	size_t i, n;

	(void)state;
	assert_int_equal(MIGCHAN_OVERHEAD, 22);
	assert_int_equal(MIGCHAN_FRAME_MAX, 65558);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pre[0] = (uint8_t)(cases[i].n >> 24);
		pre[1] = (uint8_t)(cases[i].n >> 16);
		pre[2] = (uint8_t)(cases[i].n >> 8);
		pre[3] = (uint8_t)cases[i].n;
		assert_int_equal(migchan_frame_len(pre), cases[i].want);
	}
	assert_int_equal(migchan_frame_len(NULL), -EINVAL);

	/* The receiving side refuses a bad prefix without reading on. */
	session(&p);
	auth_both(&p);
	n = seal_ok(&p.ini, MIGCHAN_END, NULL, 0, false, fa);
	assert_int_equal(n, MIGCHAN_OVERHEAD);
	fa[3] = SS_ABYTES;
	open_fails(&p.rsp, fa, n, -EBADMSG);
	assert_dead(&p.rsp, p.id);
	pair_dispose(&p);
}

static void
test_out_of_order(void **state)
{
	static const uint8_t zero_k[32], zero_pk[32];
	uint8_t hi[MIGCHAN_HELLO_I_LEN], hr[MIGCHAN_HELLO_R_LEN];
	uint8_t hdr[MIGCHAN_HEADER_LEN], junk[MIGCHAN_HELLO_I_LEN] = { 0 };
	/* An X25519 point of order 8: the DH with it is all zero. */
	static const uint8_t order8[32] = {
		0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae,
		0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
		0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd,
		0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
	};
	struct migchan zero;
	enum migchan_type t;
	struct pair p;
	size_t plen;
	bool final;

	(void)state;
	/* A zeroed struct refuses everything. */
	memset(&zero, 0, sizeof(zero));
	assert_false(migchan_ready(&zero));
	assert_false(migchan_ready(NULL));
	assert_int_equal(migchan_hello_i(&zero, hi), -EINVAL);
	assert_int_equal(migchan_accept(&zero, junk, hr), -EINVAL);
	assert_int_equal(migchan_seal(&zero, MIGCHAN_AUTH, junk, 16, false,
	    fa, sizeof(fa)), -EINVAL);
	assert_int_equal(migchan_hello_i(NULL, hi), -EINVAL);
	assert_int_equal(migchan_seal(NULL, MIGCHAN_END, NULL, 0, false, fa,
	    sizeof(fa)), -EINVAL);

	/* init refuses bad arguments and leaves the struct disposed. */
	pair_keys(&p);
	memset(&p.ini, 0x5a, sizeof(p.ini));
	assert_int_equal(migchan_init(&p.ini, (enum migchan_role)2, p.id, p.k,
	    p.isk, p.rpk), -EINVAL);
	assert_true(all_zero(&p.ini, sizeof(p.ini)));
	assert_int_equal(migchan_init(&p.ini, MIGCHAN_INITIATOR, NULL, p.k,
	    p.isk, p.rpk), -EINVAL);
	assert_int_equal(migchan_init(&p.ini, MIGCHAN_INITIATOR, p.id, zero_k,
	    p.isk, p.rpk), -EINVAL);
	assert_int_equal(migchan_init(&p.ini, MIGCHAN_INITIATOR, p.id, p.k,
	    p.isk, zero_pk), -EINVAL);
	memset(&p.ini, 0x5a, sizeof(p.ini));
	assert_int_equal(migchan_init(&p.ini, MIGCHAN_INITIATOR, p.id, p.k,
	    p.isk, order8), -EINVAL);
	assert_true(all_zero(&p.ini, sizeof(p.ini)));
	assert_int_equal(migchan_init(NULL, MIGCHAN_INITIATOR, p.id, p.k,
	    p.isk, p.rpk), -EINVAL);

	/* Each step out of turn is -EINVAL and harms nothing. */
	pair_init(&p);
	assert_int_equal(migchan_finish(&p.ini, hr, hdr), -EINVAL);
	assert_int_equal(migchan_accept(&p.ini, junk, hr), -EINVAL);
	assert_int_equal(migchan_header(&p.ini, hdr), -EINVAL);
	assert_int_equal(migchan_hello_i(&p.rsp, hi), -EINVAL);
	assert_int_equal(migchan_header(&p.rsp, hdr), -EINVAL);
	assert_int_equal(migchan_finish(&p.rsp, hr, hdr), -EINVAL);
	assert_int_equal(migchan_seal(&p.ini, MIGCHAN_AUTH, p.id, 16, false,
	    fa, sizeof(fa)), -EINVAL);
	assert_int_equal(migchan_open(&p.rsp, fa, MIGCHAN_OVERHEAD, &t, pbuf,
	    &plen, &final), -EINVAL);
	assert_int_equal(migchan_hello_i(&p.ini, hi), 0);
	assert_int_equal(migchan_hello_i(&p.ini, junk), -EINVAL);
	assert_int_equal(migchan_accept(&p.rsp, hi, NULL), -EINVAL);
	assert_int_equal(migchan_accept(&p.rsp, hi, hr), 0);
	assert_int_equal(migchan_accept(&p.rsp, hi, hr), -EINVAL);
	assert_int_equal(migchan_hello_i(&p.rsp, junk), -EINVAL);
	assert_int_equal(migchan_seal(&p.rsp, MIGCHAN_AUTH, p.id, 16, false,
	    fa, sizeof(fa)), -EINVAL);
	assert_int_equal(migchan_finish(&p.ini, hr, hdr), 0);
	assert_int_equal(migchan_finish(&p.ini, hr, hdr), -EINVAL);
	assert_int_equal(migchan_header(&p.rsp, hdr), 0);
	assert_int_equal(migchan_header(&p.rsp, hdr), -EINVAL);
	assert_int_equal(migchan_accept(&p.rsp, hi, hr), -EINVAL);
	/* Bad open arguments do not kill the channel either. */
	assert_int_equal(migchan_seal(&p.ini, MIGCHAN_AUTH, p.id, 16, false,
	    fa, sizeof(fa)), MIGCHAN_OVERHEAD + 16);
	assert_int_equal(migchan_open(&p.rsp, fa, 3, &t, pbuf, &plen, &final),
	    -EINVAL);
	assert_int_equal(migchan_open(&p.rsp, fa, MIGCHAN_OVERHEAD + 15, &t,
	    pbuf, &plen, &final), -EINVAL);
	assert_int_equal(migchan_open(&p.rsp, fa, MIGCHAN_OVERHEAD + 16, &t,
	    NULL, &plen, &final), -EINVAL);
	assert_int_equal(migchan_open(&p.rsp, fa, MIGCHAN_OVERHEAD + 16, &t,
	    pbuf, &plen, NULL), -EINVAL);
	assert_true(migchan_ready(&p.rsp));
	open_ok(&p.rsp, fa, MIGCHAN_OVERHEAD + 16, MIGCHAN_AUTH, p.id, 16,
	    false);
	pair_dispose(&p);

	/* IN and OUT may be one buffer for accept. */
	pair_keys(&p);
	pair_init(&p);
	assert_int_equal(migchan_hello_i(&p.ini, hi), 0);
	assert_int_equal(migchan_accept(&p.rsp, hi, hi), 0);
	assert_int_equal(migchan_finish(&p.ini, hi, hdr), 0);
	assert_int_equal(migchan_header(&p.rsp, hdr), 0);
	auth_both(&p);
	pair_dispose(&p);
}

static void
test_msgsize(void **state)
{
	struct pair p;
	size_t n;

	(void)state;
	session(&p);
	assert_int_equal(migchan_seal(&p.ini, MIGCHAN_AUTH, p.id, 16, false,
	    fa, MIGCHAN_OVERHEAD + 15), -EMSGSIZE);
	assert_int_equal(migchan_seal(&p.ini, MIGCHAN_AUTH, p.id, 16, false,
	    fa, 0), -EMSGSIZE);
	/* The nonce did not move: the retried frame is the first and opens. */
	auth_both(&p);
	assert_int_equal(migchan_seal(&p.ini, MIGCHAN_DATA, big,
	    MIGCHAN_PAYLOAD_MAX + 1, false, fa, sizeof(fa)), -EMSGSIZE);
	assert_int_equal(migchan_seal(&p.ini, MIGCHAN_DATA, big,
	    MIGCHAN_PAYLOAD_MAX, false, fa, MIGCHAN_FRAME_MAX - 1), -EMSGSIZE);
	assert_int_equal(migchan_seal(&p.ini, MIGCHAN_END, NULL, 0, true, fa,
	    MIGCHAN_OVERHEAD - 1), -EMSGSIZE);
	assert_false(p.ini.tx_final);
	n = seal_ok(&p.ini, MIGCHAN_DATA, big, MIGCHAN_PAYLOAD_MAX, false, fa);
	open_ok(&p.rsp, fa, n, MIGCHAN_DATA, big, MIGCHAN_PAYLOAD_MAX, false);
	assert_int_equal(migchan_seal(&p.ini, MIGCHAN_END, NULL, 0, true, fa,
	    MIGCHAN_OVERHEAD), MIGCHAN_OVERHEAD);
	open_ok(&p.rsp, fa, MIGCHAN_OVERHEAD, MIGCHAN_END, NULL, 0, true);
	pair_dispose(&p);
}

static void
test_dispose_and_secrets(void **state)
{
	struct hs_msgs m;
	struct pair p;
	uint8_t k_pending[32];

	(void)state;
	pair_keys(&p);
	pair_init(&p);
	assert_memory_equal(p.ini.k, p.k, 32);
	assert_memory_equal(p.ini.my_sk, p.isk, 32);
	assert_memory_equal(p.rsp.my_pk, p.rpk, 32);
	assert_int_equal(migchan_hello_i(&p.ini, m.hi), 0);
	assert_false(all_zero(p.ini.e_sk, 32));
	assert_int_equal(migchan_accept(&p.rsp, m.hi, m.hr), 0);
	/* The responder keeps only the pending i2r key, not K. */
	assert_true(all_zero(p.rsp.e_sk, 32));
	assert_true(all_zero(p.rsp.my_sk, 32));
	assert_false(all_zero(p.rsp.k, 32));
	assert_memory_not_equal(p.rsp.k, p.k, 32);
	memcpy(k_pending, p.rsp.k, 32);
	assert_int_equal(migchan_finish(&p.ini, m.hr, m.hdr), 0);
	assert_true(all_zero(p.ini.k, 32));
	assert_true(all_zero(p.ini.e_sk, 32));
	assert_true(all_zero(p.ini.my_sk, 32));
	assert_int_equal(migchan_header(&p.rsp, m.hdr), 0);
	assert_true(all_zero(p.rsp.k, 32));
	/* What the responder held was no key the initiator would reuse. */
	assert_memory_not_equal(k_pending, p.ini.tx.k, 32);
	sodium_memzero(k_pending, sizeof(k_pending));
	auth_both(&p);

	migchan_dispose(&p.ini);
	assert_true(all_zero(&p.ini, sizeof(p.ini)));
	assert_false(migchan_ready(&p.ini));
	assert_int_equal(migchan_seal(&p.ini, MIGCHAN_END, NULL, 0, false, fa,
	    sizeof(fa)), -EINVAL);
	migchan_dispose(&p.ini);
	migchan_dispose(NULL);
	/* Dispose in the middle of a handshake wipes as well. */
	migchan_dispose(&p.rsp);
	assert_true(all_zero(&p.rsp, sizeof(p.rsp)));
	assert_int_equal(migchan_init(&p.rsp, MIGCHAN_RESPONDER, p.id, p.k,
	    p.rsk, p.ipk), 0);
	migchan_dispose(&p.rsp);
	assert_true(all_zero(&p.rsp, sizeof(p.rsp)));
	pair_dispose(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_spec_conformance),
		cmocka_unit_test(test_final),
		cmocka_unit_test(test_wrong_k),
		cmocka_unit_test(test_wrong_static),
		cmocka_unit_test(test_replay_connection),
		cmocka_unit_test(test_replay_frames),
		cmocka_unit_test(test_bit_flips),
		cmocka_unit_test(test_bad_hello),
		cmocka_unit_test(test_auth_rules),
		cmocka_unit_test(test_lz4_rules),
		cmocka_unit_test(test_frame_len),
		cmocka_unit_test(test_out_of_order),
		cmocka_unit_test(test_msgsize),
		cmocka_unit_test(test_dispose_and_secrets),
	};

	if (sodium_init() < 0) {
		fprintf(stderr, "sodium_init failed\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
