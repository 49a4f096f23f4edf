/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * migchan.c: the migration channel between two agents (PROTOCOL.md section
 * 11), as pure functions over byte buffers.
 *
 * Key schedule.  Each direction D in { "i2r", "r2i" } gets its own
 * crypto_secretstream_xchacha20poly1305 key
 *
 *   key_D = BLAKE2b-256(key = K, message = "hv migrate v1" || D || kx_D ||
 *                       ss || id || HELLO_I || HELLO_R)
 *
 * (crypto_generichash with a 32-byte output and K as its 32-byte key) over
 * 208 bytes, every field of fixed length and with no separators:
 *   "hv migrate v1"  13 ASCII bytes, no terminator;
 *   D                3 ASCII bytes, "i2r" or "r2i";
 *   kx_D             32 bytes: the crypto_kx session key of the ephemeral
 *                    pair for that direction, the initiator (e_i) being the
 *                    kx client: i2r is the client's tx key (the server's
 *                    rx), r2i the client's rx key (the server's tx);
 *   ss               32 bytes: crypto_scalarmult(my_sk, peer_pk), the same
 *                    X25519 value on both sides;
 *   id               16 bytes; HELLO_I 56 bytes; HELLO_R 56 bytes, as sent.
 * The initiator's stream header (sent after HELLO_R) is not an input: a
 * changed header makes the responder's first open (the AUTH frame) fail.
 *
 * The responder's header is part of HELLO_R, and so of the key it starts
 * the r2i stream with: it draws the 24 header bytes itself and sets up its
 * push state with crypto_secretstream_xchacha20poly1305_init_pull().  That
 * is what init_push() does after drawing its header (the state is HChaCha20
 * of the key and the first 16 header bytes, the nonce counter 1 and the
 * last 8 header bytes); the round-trip tests fail if that ever changes.
 *
 * Frames: u32 big-endian N, then N bytes of secretstream push output over
 * (type byte || payload), tag MESSAGE or, for a side's last frame, FINAL.
 * N counts the ciphertext only (17 + 1 + payload bytes), never the prefix.
 *
 * Invariants:
 * - Calls follow init -> hello_i -> finish (initiator) or init -> accept ->
 *   header (responder), then seal/open; anything else is -EINVAL and
 *   changes nothing.
 * - K, the static and the ephemeral secrets live only as long as they are
 *   needed: the initiator wipes them in finish(); the responder wipes them
 *   in accept() and keeps only the i2r key, in the k field, until header().
 *   Once ready, k, my_sk and e_sk are zero.
 * - -EBADMSG and -EPROTO kill the channel: every secret is wiped at once
 *   and only dispose is left.  -EINVAL and -EMSGSIZE change nothing.
 * - The first frame each side seals and opens is AUTH carrying the id, and
 *   AUTH appears only once; seal refuses what the peer's open would refuse.
 * - DATA_LZ4 goes only from the initiator to a responder whose first READY
 *   (as the responder sealed it, as the initiator opened it: the same
 *   frame) carried MIGCHAN_CAP_LZ4; so it never precedes that READY.
 *
 * Must never: allocate, log, release plaintext of a frame that failed a
 * check, or seal after this side's FINAL.  seal and open each use one
 * stack buffer of MIGCHAN_PAYLOAD_MAX + 1 bytes for the plaintext.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "migchan.h"

#define HELLO_I_MAGIC		"HVMG"
#define HELLO_I_VERSION_OFF	4
#define HELLO_I_ID_OFF		8
#define HELLO_I_E_OFF		(HELLO_I_ID_OFF + MIGCHAN_ID_LEN)
#define HELLO_R_HDR_OFF		32
#define KDF_LABEL		"hv migrate v1"
#define KDF_LABEL_LEN		(sizeof(KDF_LABEL) - 1)
#define KDF_DIR_LEN		3
#define KDF_IN_LEN		(KDF_LABEL_LEN + KDF_DIR_LEN + 32 + 32 + \
    MIGCHAN_ID_LEN + MIGCHAN_HELLO_I_LEN + MIGCHAN_HELLO_R_LEN)
#define SS_ABYTES	crypto_secretstream_xchacha20poly1305_ABYTES
#define SS_TAG_MESSAGE	crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define SS_TAG_FINAL	crypto_secretstream_xchacha20poly1305_TAG_FINAL

_Static_assert(MIGCHAN_HEADER_LEN ==
    crypto_secretstream_xchacha20poly1305_HEADERBYTES, "header size");
_Static_assert(
    MIGCHAN_KEY_LEN == crypto_secretstream_xchacha20poly1305_KEYBYTES &&
    MIGCHAN_KEY_LEN == crypto_generichash_KEYBYTES &&
    MIGCHAN_KEY_LEN == crypto_kx_SESSIONKEYBYTES &&
    MIGCHAN_KEY_LEN == crypto_scalarmult_BYTES &&
    MIGCHAN_KEY_LEN == crypto_kx_PUBLICKEYBYTES, "key sizes");
_Static_assert(MIGCHAN_HELLO_R_LEN == HELLO_R_HDR_OFF + MIGCHAN_HEADER_LEN,
    "HELLO_R layout");
_Static_assert(MIGCHAN_HELLO_I_LEN == HELLO_I_E_OFF + 32, "HELLO_I layout");
_Static_assert(KDF_IN_LEN == 208, "KDF input is 208 bytes");

/* The version bytes of HELLO_I: major 1, minor 0, two reserved zeros. */
static const uint8_t hello_i_version[4] = { 1, 0, 0, 0 };

/*
 * ch->state: a phase, and once READY two flags.  A zeroed struct is
 * PH_UNSET and refuses everything.
 */
enum mc_phase {
	PH_UNSET = 0,
	PH_I_INIT,		/* initiator: HELLO_I not yet written */
	PH_I_HELLO,		/* initiator: waiting for HELLO_R */
	PH_R_INIT,		/* responder: waiting for HELLO_I */
	PH_R_ACCEPTED,		/* responder: waiting for the header */
	PH_READY,
	PH_DEAD,
};
#define PH_MASK		0xff
#define ST_TX_AUTH	0x100	/* this side has sealed its AUTH */
#define ST_RX_AUTH	0x200	/* the peer's AUTH has opened */
#define ST_READY	0x400	/* the responder's first READY: sealed by the
				 * responder, opened by the initiator */
#define ST_LZ4		0x800	/* ... and it offered MIGCHAN_CAP_LZ4 */

static enum mc_phase
phase(const struct migchan *ch)
{
	return (enum mc_phase)(ch->state & PH_MASK);
}

/* After -EBADMSG or -EPROTO: nothing secret survives, nothing works. */
static int
ch_fail(struct migchan *ch, int rc)
{
	enum migchan_role role = ch->role;

	sodium_memzero(ch, sizeof(*ch));
	ch->role = role;
	ch->state = PH_DEAD;
	return rc;
}

static void
be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* key_D as in the header comment; K is ch->k, HELLO_I is ch->hello_i. */
static void
derive(const struct migchan *ch, const char dir[KDF_DIR_LEN],
    const uint8_t kx[32], const uint8_t ss[32],
    const uint8_t hello_r[MIGCHAN_HELLO_R_LEN], uint8_t key[32])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, ch->k, MIGCHAN_KEY_LEN, 32);
	crypto_generichash_update(&st, (const uint8_t *)KDF_LABEL,
	    KDF_LABEL_LEN);
	crypto_generichash_update(&st, (const uint8_t *)dir, KDF_DIR_LEN);
	crypto_generichash_update(&st, kx, 32);
	crypto_generichash_update(&st, ss, 32);
	crypto_generichash_update(&st, ch->id, MIGCHAN_ID_LEN);
	crypto_generichash_update(&st, ch->hello_i, MIGCHAN_HELLO_I_LEN);
	crypto_generichash_update(&st, hello_r, MIGCHAN_HELLO_R_LEN);
	crypto_generichash_final(&st, key, 32);
	sodium_memzero(&st, sizeof(st));
}

int
migchan_init(struct migchan *ch, enum migchan_role role,
    const uint8_t id[MIGCHAN_ID_LEN], const uint8_t k[MIGCHAN_KEY_LEN],
    const uint8_t my_sk[32], const uint8_t peer_pk[32])
{
	uint8_t ss[32];
	int rc = -EINVAL;

	if (ch == NULL)
		return -EINVAL;
	sodium_memzero(ch, sizeof(*ch));
	if (id == NULL || k == NULL || my_sk == NULL || peer_pk == NULL ||
	    (role != MIGCHAN_INITIATOR && role != MIGCHAN_RESPONDER))
		goto out;
	/* An all-zero K is a key hvd never sent, not a random one. */
	if (sodium_is_zero(k, MIGCHAN_KEY_LEN))
		goto out;
	if (crypto_scalarmult_base(ch->my_pk, my_sk) != 0)
		goto out;
	/* A low-order peer key would make ss all zero: refuse it now. */
	if (crypto_scalarmult(ss, my_sk, peer_pk) != 0)
		goto out;
	ch->role = role;
	memcpy(ch->id, id, MIGCHAN_ID_LEN);
	memcpy(ch->k, k, MIGCHAN_KEY_LEN);
	memcpy(ch->my_sk, my_sk, 32);
	memcpy(ch->peer_pk, peer_pk, 32);
	ch->state = role == MIGCHAN_INITIATOR ? PH_I_INIT : PH_R_INIT;
	rc = 0;
out:
	sodium_memzero(ss, sizeof(ss));
	if (rc != 0)
		migchan_dispose(ch);
	return rc;
}

void
migchan_dispose(struct migchan *ch)
{
	if (ch == NULL)
		return;
	sodium_memzero(ch, sizeof(*ch));
}

int
migchan_hello_i(struct migchan *ch, uint8_t out[MIGCHAN_HELLO_I_LEN])
{
	if (ch == NULL || out == NULL || ch->state != PH_I_INIT)
		return -EINVAL;
	crypto_kx_keypair(ch->e_pk, ch->e_sk);
	memcpy(ch->hello_i, HELLO_I_MAGIC, 4);
	memcpy(ch->hello_i + HELLO_I_VERSION_OFF, hello_i_version, 4);
	memcpy(ch->hello_i + HELLO_I_ID_OFF, ch->id, MIGCHAN_ID_LEN);
	memcpy(ch->hello_i + HELLO_I_E_OFF, ch->e_pk, 32);
	memcpy(out, ch->hello_i, MIGCHAN_HELLO_I_LEN);
	ch->state = PH_I_HELLO;
	return 0;
}

int
migchan_peek_id(const uint8_t in[MIGCHAN_HELLO_I_LEN],
    uint8_t id[MIGCHAN_ID_LEN])
{
	if (in == NULL || id == NULL)
		return -EINVAL;
	/* No negotiation: any other magic or version bytes are refused. */
	if (memcmp(in, HELLO_I_MAGIC, 4) != 0 ||
	    memcmp(in + HELLO_I_VERSION_OFF, hello_i_version, 4) != 0)
		return -EPROTO;
	memcpy(id, in + HELLO_I_ID_OFF, MIGCHAN_ID_LEN);
	return 0;
}

/* What accept and finish derive on the way to the two stream keys, wiped in
 * one go whatever happens. */
struct keys {
	uint8_t kx_rx[32], kx_tx[32], ss[32], k_i2r[32], k_r2i[32];
};

int
migchan_accept(struct migchan *ch, const uint8_t in[MIGCHAN_HELLO_I_LEN],
    uint8_t out[MIGCHAN_HELLO_R_LEN])
{
	uint8_t id[MIGCHAN_ID_LEN], hello_r[MIGCHAN_HELLO_R_LEN];
	struct keys t;
	int rc;

	if (ch == NULL || in == NULL || out == NULL ||
	    ch->state != PH_R_INIT)
		return -EINVAL;
	if ((rc = migchan_peek_id(in, id)) != 0)
		return ch_fail(ch, rc);
	if (sodium_memcmp(id, ch->id, MIGCHAN_ID_LEN) != 0)
		return ch_fail(ch, -EBADMSG);
	/* Copied first: IN may be the same buffer as OUT. */
	memcpy(ch->hello_i, in, MIGCHAN_HELLO_I_LEN);

	crypto_kx_keypair(ch->e_pk, ch->e_sk);
	rc = -EBADMSG;
	/* Fails on a low-order e_i. */
	if (crypto_kx_server_session_keys(t.kx_rx, t.kx_tx, ch->e_pk, ch->e_sk,
	    ch->hello_i + HELLO_I_E_OFF) != 0)
		goto out;
	if (crypto_scalarmult(t.ss, ch->my_sk, ch->peer_pk) != 0)
		goto out;
	/* The header is drawn before the key that commits to it. */
	memcpy(hello_r, ch->e_pk, 32);
	randombytes_buf(hello_r + HELLO_R_HDR_OFF, MIGCHAN_HEADER_LEN);
	derive(ch, "i2r", t.kx_rx, t.ss, hello_r, t.k_i2r);
	derive(ch, "r2i", t.kx_tx, t.ss, hello_r, t.k_r2i);
	/* init_pull on a push state: init_push minus its randombytes. */
	crypto_secretstream_xchacha20poly1305_init_pull(&ch->tx,
	    hello_r + HELLO_R_HDR_OFF, t.k_r2i);
	/* K is spent; the i2r key waits in its place for the header. */
	memcpy(ch->k, t.k_i2r, MIGCHAN_KEY_LEN);
	sodium_memzero(ch->e_sk, sizeof(ch->e_sk));
	sodium_memzero(ch->my_sk, sizeof(ch->my_sk));
	memcpy(out, hello_r, MIGCHAN_HELLO_R_LEN);
	ch->state = PH_R_ACCEPTED;
	rc = 0;
out:
	sodium_memzero(&t, sizeof(t));
	return rc != 0 ? ch_fail(ch, rc) : 0;
}

int
migchan_finish(struct migchan *ch, const uint8_t in[MIGCHAN_HELLO_R_LEN],
    uint8_t out[MIGCHAN_HEADER_LEN])
{
	uint8_t hello_r[MIGCHAN_HELLO_R_LEN], hdr[MIGCHAN_HEADER_LEN];
	struct keys t;
	int rc = -EBADMSG;

	if (ch == NULL || in == NULL || out == NULL ||
	    ch->state != PH_I_HELLO)
		return -EINVAL;
	/* Copied first: IN and OUT may overlap. */
	memcpy(hello_r, in, MIGCHAN_HELLO_R_LEN);
	/* Fails on a low-order e_r. */
	if (crypto_kx_client_session_keys(t.kx_rx, t.kx_tx, ch->e_pk, ch->e_sk,
	    hello_r) != 0)
		goto out;
	if (crypto_scalarmult(t.ss, ch->my_sk, ch->peer_pk) != 0)
		goto out;
	derive(ch, "i2r", t.kx_tx, t.ss, hello_r, t.k_i2r);
	derive(ch, "r2i", t.kx_rx, t.ss, hello_r, t.k_r2i);
	crypto_secretstream_xchacha20poly1305_init_push(&ch->tx, hdr, t.k_i2r);
	crypto_secretstream_xchacha20poly1305_init_pull(&ch->rx,
	    hello_r + HELLO_R_HDR_OFF, t.k_r2i);
	sodium_memzero(ch->k, sizeof(ch->k));
	sodium_memzero(ch->e_sk, sizeof(ch->e_sk));
	sodium_memzero(ch->my_sk, sizeof(ch->my_sk));
	memcpy(out, hdr, MIGCHAN_HEADER_LEN);
	ch->state = PH_READY;
	rc = 0;
out:
	sodium_memzero(&t, sizeof(t));
	return rc != 0 ? ch_fail(ch, rc) : 0;
}

int
migchan_header(struct migchan *ch, const uint8_t in[MIGCHAN_HEADER_LEN])
{
	if (ch == NULL || in == NULL || ch->state != PH_R_ACCEPTED)
		return -EINVAL;
	/* Any 24 bytes make a state; a wrong header fails the AUTH frame. */
	crypto_secretstream_xchacha20poly1305_init_pull(&ch->rx, in, ch->k);
	sodium_memzero(ch->k, sizeof(ch->k));
	ch->state = PH_READY;
	return 0;
}

bool
migchan_ready(const struct migchan *ch)
{
	return ch != NULL && phase(ch) == PH_READY;
}

/* Would the peer's open accept a frame of TYPE with this payload now? */
static int
seal_check(const struct migchan *ch, enum migchan_type type,
    const uint8_t *payload, size_t len)
{
	bool authed = (ch->state & ST_TX_AUTH) != 0;

	if ((int)type < MIGCHAN_AUTH || (int)type > MIGCHAN_TYPE_MAX)
		return -EINVAL;
	if (authed == (type == MIGCHAN_AUTH))
		return -EINVAL;
	if (type == MIGCHAN_AUTH && (len != MIGCHAN_ID_LEN ||
	    sodium_memcmp(payload, ch->id, MIGCHAN_ID_LEN) != 0))
		return -EINVAL;
	if ((type == MIGCHAN_DATA || type == MIGCHAN_DATA_LZ4) && len == 0)
		return -EINVAL;
	if (type == MIGCHAN_READY && len > MIGCHAN_READY_MAX)
		return -EINVAL;
	if (type == MIGCHAN_DATA_LZ4 && (ch->role != MIGCHAN_INITIATOR ||
	    !migchan_lz4(ch)))
		return -EINVAL;
	return 0;
}

/* The capabilities of the responder's first READY, seen from either end. */
static void
ready_caps(struct migchan *ch, const uint8_t *payload, size_t len)
{
	if ((ch->state & ST_READY) != 0)
		return;
	ch->state |= ST_READY;
	if (len > 0 && (payload[0] & MIGCHAN_CAP_LZ4) != 0)
		ch->state |= ST_LZ4;
}

bool
migchan_lz4(const struct migchan *ch)
{
	return migchan_ready(ch) && (ch->state & ST_LZ4) != 0;
}

ssize_t
migchan_seal(struct migchan *ch, enum migchan_type type,
    const uint8_t *payload, size_t len, bool final, uint8_t *out,
    size_t outcap)
{
	uint8_t pt[1 + MIGCHAN_PAYLOAD_MAX];
	unsigned long long clen = 0;
	int rc;

	if (ch == NULL || !migchan_ready(ch) || ch->tx_final ||
	    (payload == NULL && len > 0) || out == NULL)
		return -EINVAL;
	if (len > MIGCHAN_PAYLOAD_MAX)
		return -EMSGSIZE;
	if ((rc = seal_check(ch, type, payload, len)) != 0)
		return rc;
	if (outcap < len + MIGCHAN_OVERHEAD)
		return -EMSGSIZE;

	pt[0] = (uint8_t)type;
	if (len > 0)
		memcpy(pt + 1, payload, len);
	crypto_secretstream_xchacha20poly1305_push(&ch->tx,
	    out + MIGCHAN_LEN_LEN, &clen, pt, 1 + len, NULL, 0,
	    final ? SS_TAG_FINAL : SS_TAG_MESSAGE);
	sodium_memzero(pt, 1 + len);
	be32_put(out, (uint32_t)clen);
	if (type == MIGCHAN_AUTH)
		ch->state |= ST_TX_AUTH;
	if (type == MIGCHAN_READY && ch->role == MIGCHAN_RESPONDER)
		ready_caps(ch, payload, len);
	if (final)
		ch->tx_final = true;
	return (ssize_t)(MIGCHAN_LEN_LEN + clen);
}

ssize_t
migchan_frame_len(const uint8_t in[MIGCHAN_LEN_LEN])
{
	uint32_t n;

	if (in == NULL)
		return -EINVAL;
	n = be32_get(in);
	/* N covers the ciphertext: ABYTES, the type byte and the payload. */
	if (n < SS_ABYTES + 1 || n > SS_ABYTES + 1 + MIGCHAN_PAYLOAD_MAX)
		return -EBADMSG;
	return (ssize_t)(MIGCHAN_LEN_LEN + n);
}

/* The rules on an authenticated plaintext of MLEN bytes (type included). */
static bool
open_check(const struct migchan *ch, const uint8_t *pt, size_t mlen,
    unsigned char tag)
{
	bool authed = (ch->state & ST_RX_AUTH) != 0;
	uint8_t t = pt[0];

	if (tag != SS_TAG_MESSAGE && tag != SS_TAG_FINAL)
		return false;
	if (t < MIGCHAN_AUTH || t > MIGCHAN_TYPE_MAX)
		return false;
	/* First frame AUTH, and AUTH only first. */
	if (authed == (t == MIGCHAN_AUTH))
		return false;
	if (t == MIGCHAN_AUTH && (mlen - 1 != MIGCHAN_ID_LEN ||
	    sodium_memcmp(pt + 1, ch->id, MIGCHAN_ID_LEN) != 0))
		return false;
	if ((t == MIGCHAN_DATA || t == MIGCHAN_DATA_LZ4) && mlen == 1)
		return false;
	if (t == MIGCHAN_READY && mlen - 1 > MIGCHAN_READY_MAX)
		return false;
	/* Only what this responder's own READY offered, never before it. */
	if (t == MIGCHAN_DATA_LZ4 && (ch->role != MIGCHAN_RESPONDER ||
	    (ch->state & ST_LZ4) == 0))
		return false;
	return true;
}

int
migchan_open(struct migchan *ch, const uint8_t *in, size_t len,
    enum migchan_type *type, uint8_t *payload, size_t *plen, bool *final)
{
	uint8_t pt[1 + MIGCHAN_PAYLOAD_MAX];
	unsigned long long mlen = 0;
	unsigned char tag = 0;
	ssize_t flen;
	int rc = -EBADMSG;

	if (ch == NULL || !migchan_ready(ch) || in == NULL || type == NULL ||
	    payload == NULL || plen == NULL || final == NULL ||
	    len < MIGCHAN_LEN_LEN)
		return -EINVAL;
	/* Nothing follows the peer's FINAL. */
	if (ch->rx_final)
		return ch_fail(ch, -EBADMSG);
	if ((flen = migchan_frame_len(in)) < 0)
		return ch_fail(ch, (int)flen);
	/* The caller must hand over exactly the frame the prefix announced. */
	if ((size_t)flen != len)
		return -EINVAL;
	if (crypto_secretstream_xchacha20poly1305_pull(&ch->rx, pt, &mlen,
	    &tag, in + MIGCHAN_LEN_LEN, len - MIGCHAN_LEN_LEN, NULL, 0) != 0)
		goto out;
	if (!open_check(ch, pt, (size_t)mlen, tag))
		goto out;
	*type = (enum migchan_type)pt[0];
	*plen = (size_t)mlen - 1;
	if (*plen > 0)
		memcpy(payload, pt + 1, *plen);
	*final = tag == SS_TAG_FINAL;
	if (*type == MIGCHAN_AUTH)
		ch->state |= ST_RX_AUTH;
	if (*type == MIGCHAN_READY && ch->role == MIGCHAN_INITIATOR)
		ready_caps(ch, payload, *plen);
	if (*final)
		ch->rx_final = true;
	rc = 0;
out:
	sodium_memzero(pt, (size_t)mlen);
	return rc != 0 ? ch_fail(ch, rc) : 0;
}
