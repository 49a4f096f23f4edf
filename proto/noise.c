/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * noise.c: Noise protocol framework, revision 34, for the agent link.
 *
 * CipherState, SymmetricState and HandshakeState as in the spec, with
 * DH = X25519 (crypto_scalarmult), cipher = ChaCha20-Poly1305 IETF (nonce:
 * 4 zero bytes, then the 64-bit counter little-endian), hash = BLAKE2b
 * (HASHLEN 64, BLOCKLEN 128) with HMAC and HKDF built on top of it here.
 * Patterns are rows of the table below; the engine only interprets tokens.
 *
 * Invariants:
 * - A nonce is never used twice with one key: counters only go up, 2^64-1 is
 *   never used for a message, and split hands out keys once.
 * - A handshake either advances by a whole message or fails for good; size
 *   and argument checks happen before the first byte of state changes.
 * - Every secret on the stack or in a struct is wiped with sodium_memzero
 *   before it goes out of scope or the struct is disposed.
 *
 * Must never: log or print anything (callers translate errors and log once),
 * allocate memory, block, release plaintext that failed authentication, or
 * encrypt without a key in transport mode.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "noise.h"

#define BLAKE2B_BLOCK_LEN	128
#define NONCE_MAX		UINT64_MAX
#define PATTERN_MAX_MSGS	4
#define PATTERN_MAX_TOKENS	6

enum token {
	TOK_END = 0,
	TOK_E,
	TOK_S,
	TOK_EE,
	TOK_ES,
	TOK_SE,
	TOK_SS,
};

/*
 * Messages alternate initiator -> responder -> initiator, so only the token
 * lists are stored. pre_s[0]/[1]: the initiator's / responder's static key is
 * known to the peer before the first message (the spec's pre-messages).
 */
struct pattern_def {
	const char	*name;
	bool		 pre_s[2];
	unsigned int	 nmsgs;
	enum token	 msgs[PATTERN_MAX_MSGS][PATTERN_MAX_TOKENS];
};

static const struct pattern_def patterns[] = {
	[NOISE_PATTERN_NN] = {
		.name = "Noise_NN_25519_ChaChaPoly_BLAKE2b",
		.nmsgs = 2,
		.msgs = {
			{ TOK_E },
			{ TOK_E, TOK_EE },
		},
	},
	[NOISE_PATTERN_XX] = {
		.name = "Noise_XX_25519_ChaChaPoly_BLAKE2b",
		.nmsgs = 3,
		.msgs = {
			{ TOK_E },
			{ TOK_E, TOK_EE, TOK_S, TOK_ES },
			{ TOK_S, TOK_SE },
		},
	},
	[NOISE_PATTERN_IK] = {
		.name = "Noise_IK_25519_ChaChaPoly_BLAKE2b",
		.pre_s = { false, true },
		.nmsgs = 2,
		.msgs = {
			{ TOK_E, TOK_ES, TOK_S, TOK_SS },
			{ TOK_E, TOK_EE, TOK_SE },
		},
	},
};

static const struct pattern_def *
pattern_get(enum noise_pattern p)
{
	if ((unsigned int)p >= sizeof(patterns) / sizeof(patterns[0]))
		return NULL;
	return &patterns[p];
}

const char *
noise_protocol_name(enum noise_pattern p)
{
	const struct pattern_def *def = pattern_get(p);

	if (def == NULL) {
		errno = EINVAL;
		return NULL;
	}
	return def->name;
}

/* BLAKE2b and HMAC-BLAKE2b (RFC 2104), HKDF (Noise spec 4.3) */

static void
hash_update(crypto_generichash_blake2b_state *st, const uint8_t *d, size_t len)
{
	if (len > 0)
		crypto_generichash_blake2b_update(st, d, len);
}

/*
 * Noise only ever keys HMAC with a HASHLEN value, which is shorter than a
 * block, so RFC 2104's step of hashing an over-long key is not needed.
 */
static void
hmac_blake2b(uint8_t out[NOISE_HASH_LEN], const uint8_t key[NOISE_HASH_LEN],
    const uint8_t *d1, size_t len1, const uint8_t *d2, size_t len2)
{
	crypto_generichash_blake2b_state st;
	uint8_t k[BLAKE2B_BLOCK_LEN] = { 0 };
	uint8_t pad[BLAKE2B_BLOCK_LEN];
	uint8_t inner[NOISE_HASH_LEN];
	size_t i;

	memcpy(k, key, NOISE_HASH_LEN);

	for (i = 0; i < sizeof(pad); i++)
		pad[i] = k[i] ^ 0x36;
	crypto_generichash_blake2b_init(&st, NULL, 0, NOISE_HASH_LEN);
	hash_update(&st, pad, sizeof(pad));
	hash_update(&st, d1, len1);
	hash_update(&st, d2, len2);
	crypto_generichash_blake2b_final(&st, inner, sizeof(inner));

	for (i = 0; i < sizeof(pad); i++)
		pad[i] = k[i] ^ 0x5c;
	crypto_generichash_blake2b_init(&st, NULL, 0, NOISE_HASH_LEN);
	hash_update(&st, pad, sizeof(pad));
	hash_update(&st, inner, sizeof(inner));
	crypto_generichash_blake2b_final(&st, out, NOISE_HASH_LEN);

	sodium_memzero(&st, sizeof(st));
	sodium_memzero(k, sizeof(k));
	sodium_memzero(pad, sizeof(pad));
	sodium_memzero(inner, sizeof(inner));
}

/* Two-output HKDF; the third output exists only for psk modes. */
static void
hkdf2(const uint8_t ck[NOISE_HASH_LEN], const uint8_t *ikm, size_t ikmlen,
    uint8_t out1[NOISE_HASH_LEN], uint8_t out2[NOISE_HASH_LEN])
{
	static const uint8_t one = 0x01, two = 0x02;
	uint8_t temp_key[NOISE_HASH_LEN];

	hmac_blake2b(temp_key, ck, ikm, ikmlen, NULL, 0);
	hmac_blake2b(out1, temp_key, &one, 1, NULL, 0);
	hmac_blake2b(out2, temp_key, out1, NOISE_HASH_LEN, &two, 1);
	sodium_memzero(temp_key, sizeof(temp_key));
}

/* CipherState (Noise spec 5.1) */

static void
nonce_encode(uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES],
    uint64_t n)
{
	size_t i;

	memset(nonce, 0, 4);
	for (i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

static void
cipher_set_key(struct noise_cipher *c, const uint8_t k[NOISE_KEY_LEN])
{
	memcpy(c->k, k, NOISE_KEY_LEN);
	c->n = 0;
	c->has_key = true;
}

/*
 * EncryptWithAd for a cipher that has a key: out gets ptlen + tag bytes.
 * Lengths were checked by the caller.
 */
static int
cipher_seal(struct noise_cipher *c, const uint8_t *ad, size_t adlen,
    const uint8_t *pt, size_t ptlen, uint8_t *out)
{
	uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];

	if (c->n == NONCE_MAX)
		return -EOVERFLOW;
	nonce_encode(nonce, c->n);
	crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, pt, ptlen,
	    ad, adlen, NULL, nonce, c->k);
	c->n++;
	return 0;
}

/* DecryptWithAd for a cipher that has a key; ctlen >= tag was checked. */
static int
cipher_open(struct noise_cipher *c, const uint8_t *ad, size_t adlen,
    const uint8_t *ct, size_t ctlen, uint8_t *out)
{
	uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];

	if (c->n == NONCE_MAX)
		return -EOVERFLOW;
	nonce_encode(nonce, c->n);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, ct,
	    ctlen, ad, adlen, nonce, c->k) != 0)
		return -EBADMSG;
	c->n++;
	return 0;
}

static bool
buf_ok(const void *p, size_t len)
{
	return p != NULL || len == 0;
}

/* libsodium wants real pointers even for empty inputs. */
static const uint8_t *
nonnull(const uint8_t *p)
{
	static const uint8_t empty;

	return p != NULL ? p : &empty;
}

int
noise_cipher_encrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen,
    const uint8_t *pt, size_t ptlen, uint8_t *out, size_t outcap,
    size_t *outlen)
{
	int rc;

	if (c == NULL || !c->has_key || !buf_ok(ad, adlen) ||
	    !buf_ok(pt, ptlen) || out == NULL || outlen == NULL)
		return -EINVAL;
	if (ptlen > NOISE_MAX_PAYLOAD_LEN || outcap < ptlen + NOISE_TAG_LEN)
		return -EMSGSIZE;
	if ((rc = cipher_seal(c, nonnull(ad), adlen, nonnull(pt), ptlen,
	    out)) != 0)
		return rc;
	*outlen = ptlen + NOISE_TAG_LEN;
	return 0;
}

int
noise_cipher_decrypt(struct noise_cipher *c, const uint8_t *ad, size_t adlen,
    const uint8_t *ct, size_t ctlen, uint8_t *out, size_t outcap,
    size_t *outlen)
{
	uint8_t empty[1];
	int rc;

	if (c == NULL || !c->has_key || !buf_ok(ad, adlen) || ct == NULL ||
	    outlen == NULL || (out == NULL && outcap > 0))
		return -EINVAL;
	if (ctlen > NOISE_MAX_MSG_LEN)
		return -EMSGSIZE;
	if (ctlen < NOISE_TAG_LEN)
		return -EBADMSG;
	if (outcap < ctlen - NOISE_TAG_LEN)
		return -EMSGSIZE;
	if ((rc = cipher_open(c, nonnull(ad), adlen, ct, ctlen,
	    out != NULL ? out : empty)) != 0)
		return rc;
	*outlen = ctlen - NOISE_TAG_LEN;
	return 0;
}

int
noise_cipher_rekey(struct noise_cipher *c)
{
	static const uint8_t zeros[NOISE_KEY_LEN];
	uint8_t nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];
	uint8_t tmp[NOISE_KEY_LEN + NOISE_TAG_LEN];

	if (c == NULL || !c->has_key)
		return -EINVAL;
	/* The spec's REKEY: encrypt zeros under the reserved nonce 2^64-1. */
	nonce_encode(nonce, NONCE_MAX);
	crypto_aead_chacha20poly1305_ietf_encrypt(tmp, NULL, zeros,
	    sizeof(zeros), NULL, 0, NULL, nonce, c->k);
	memcpy(c->k, tmp, NOISE_KEY_LEN);
	sodium_memzero(tmp, sizeof(tmp));
	return 0;
}

uint64_t
noise_cipher_nonce(const struct noise_cipher *c)
{
	return c != NULL ? c->n : 0;
}

void
noise_cipher_dispose(struct noise_cipher *c)
{
	if (c == NULL)
		return;
	sodium_memzero(c, sizeof(*c));
}

/* SymmetricState (Noise spec 5.2), embedded in the handshake */

static void
mix_hash(struct noise_handshake *hs, const uint8_t *d, size_t len)
{
	crypto_generichash_blake2b_state st;

	crypto_generichash_blake2b_init(&st, NULL, 0, NOISE_HASH_LEN);
	hash_update(&st, hs->h, sizeof(hs->h));
	hash_update(&st, d, len);
	crypto_generichash_blake2b_final(&st, hs->h, sizeof(hs->h));
	sodium_memzero(&st, sizeof(st));
}

static void
mix_key(struct noise_handshake *hs, const uint8_t *ikm, size_t ikmlen)
{
	uint8_t ck[NOISE_HASH_LEN], temp_k[NOISE_HASH_LEN];

	hkdf2(hs->ck, ikm, ikmlen, ck, temp_k);
	memcpy(hs->ck, ck, sizeof(ck));
	/* HASHLEN is 64: the cipher key is the first 32 bytes. */
	cipher_set_key(&hs->cs, temp_k);
	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(temp_k, sizeof(temp_k));
}

/* Bytes EncryptAndHash adds to a plaintext in the current key state. */
static size_t
overhead(bool has_key)
{
	return has_key ? NOISE_TAG_LEN : 0;
}

/* out gets len + overhead bytes; lengths were checked by the caller. */
static int
encrypt_and_hash(struct noise_handshake *hs, const uint8_t *pt, size_t len,
    uint8_t *out)
{
	int rc;

	if (hs->cs.has_key) {
		if ((rc = cipher_seal(&hs->cs, hs->h, sizeof(hs->h),
		    nonnull(pt), len, out)) != 0)
			return rc;
	} else if (len > 0) {
		memcpy(out, pt, len);
	}
	mix_hash(hs, out, len + overhead(hs->cs.has_key));
	return 0;
}

/* ctlen includes the tag when there is a key; out gets the plaintext. */
static int
decrypt_and_hash(struct noise_handshake *hs, const uint8_t *ct, size_t ctlen,
    uint8_t *out)
{
	int rc;

	if (hs->cs.has_key) {
		if ((rc = cipher_open(&hs->cs, hs->h, sizeof(hs->h), ct, ctlen,
		    out)) != 0)
			return rc;
	} else if (ctlen > 0) {
		memcpy(out, ct, ctlen);
	}
	mix_hash(hs, ct, ctlen);
	return 0;
}

/* HandshakeState (Noise spec 5.3) */

/* Only init sets hs->pattern, and only after pattern_get accepted it. */
static const struct pattern_def *
hs_pattern(const struct noise_handshake *hs)
{
	return &patterns[hs->pattern];
}

/* Does role (0 initiator, 1 responder) ever reveal a static key? */
static bool
role_sends_s(const struct pattern_def *def, unsigned int role)
{
	unsigned int m, t;

	if (def->pre_s[role])
		return true;
	for (m = role; m < def->nmsgs; m += 2)
		for (t = 0; t < PATTERN_MAX_TOKENS; t++)
			if (def->msgs[m][t] == TOK_S)
				return true;
	return false;
}

static void
hs_fail(struct noise_handshake *hs)
{
	enum noise_pattern p = hs->pattern;
	bool initiator = hs->initiator;

	sodium_memzero(hs, sizeof(*hs));
	hs->pattern = p;
	hs->initiator = initiator;
	hs->state = NOISE_HS_FAILED;
}

/* Any DH of this suite, chosen by token and role; 0 or -1 on a bad key. */
static int
mix_dh(struct noise_handshake *hs, enum token tok)
{
	const uint8_t *priv, *pub;
	bool local_s, remote_s, ok;
	uint8_t shared[crypto_scalarmult_BYTES];
	int rc = -1;

	switch (tok) {
	case TOK_EE:
		local_s = false;
		remote_s = false;
		break;
	case TOK_ES:
		/* "es" is DH(initiator's e, responder's s), seen from both. */
		local_s = !hs->initiator;
		remote_s = hs->initiator;
		break;
	case TOK_SE:
		local_s = hs->initiator;
		remote_s = !hs->initiator;
		break;
	case TOK_SS:
		local_s = true;
		remote_s = true;
		break;
	default:
		goto out;
	}
	ok = (local_s ? hs->has_s : hs->has_e) &&
	    (remote_s ? hs->has_rs : hs->has_re);
	if (!ok)
		goto out;
	priv = local_s ? hs->s_priv : hs->e_priv;
	pub = remote_s ? hs->rs : hs->re;
	/* libsodium refuses an all-zero result, i.e. a low-order point. */
	if (crypto_scalarmult(shared, priv, pub) != 0)
		goto out;
	mix_key(hs, shared, sizeof(shared));
	rc = 0;
out:
	sodium_memzero(shared, sizeof(shared));
	return rc;
}

static int
set_keypair(uint8_t priv[NOISE_KEY_LEN], uint8_t pub[NOISE_KEY_LEN],
    const uint8_t *src)
{
	memcpy(priv, src, NOISE_KEY_LEN);
	if (crypto_scalarmult_base(pub, priv) != 0) {
		sodium_memzero(priv, NOISE_KEY_LEN);
		return -EINVAL;
	}
	return 0;
}

int
noise_handshake_init(struct noise_handshake *hs, enum noise_pattern p,
    bool initiator, const uint8_t *prologue, size_t prologue_len,
    const uint8_t *local_static_priv, const uint8_t *remote_static_pub)
{
	const struct pattern_def *def = pattern_get(p);
	unsigned int me = initiator ? 0 : 1, peer = initiator ? 1 : 0;
	size_t namelen;
	int rc = -EINVAL;

	if (hs == NULL)
		return -EINVAL;
	memset(hs, 0, sizeof(*hs));
	if (def == NULL || !buf_ok(prologue, prologue_len))
		goto out;
	/* A key the pattern does not use is a configuration mistake. */
	if ((local_static_priv != NULL) != role_sends_s(def, me) ||
	    (remote_static_pub != NULL) != def->pre_s[peer])
		goto out;

	hs->pattern = p;
	hs->initiator = initiator;
	if (local_static_priv != NULL) {
		if ((rc = set_keypair(hs->s_priv, hs->s_pub,
		    local_static_priv)) != 0)
			goto out;
		hs->has_s = true;
	}
	if (remote_static_pub != NULL) {
		memcpy(hs->rs, remote_static_pub, NOISE_KEY_LEN);
		hs->has_rs = true;
	}

	namelen = strlen(def->name);
	if (namelen <= NOISE_HASH_LEN)
		memcpy(hs->h, def->name, namelen);
	else
		crypto_generichash_blake2b(hs->h, NOISE_HASH_LEN,
		    (const uint8_t *)def->name, namelen, NULL, 0);
	memcpy(hs->ck, hs->h, NOISE_HASH_LEN);
	mix_hash(hs, prologue, prologue_len);
	/* Pre-messages: the initiator's keys are hashed first. */
	if (def->pre_s[0])
		mix_hash(hs, initiator ? hs->s_pub : hs->rs, NOISE_KEY_LEN);
	if (def->pre_s[1])
		mix_hash(hs, initiator ? hs->rs : hs->s_pub, NOISE_KEY_LEN);

	hs->state = NOISE_HS_RUNNING;
	rc = 0;
out:
	if (rc != 0)
		noise_handshake_dispose(hs);
	return rc;
}

int
noise_handshake_set_ephemeral(struct noise_handshake *hs,
    const uint8_t ephemeral_priv[NOISE_KEY_LEN])
{
	int rc;

	if (hs == NULL || ephemeral_priv == NULL ||
	    hs->state != NOISE_HS_RUNNING || hs->has_e)
		return -EINVAL;
	if ((rc = set_keypair(hs->e_priv, hs->e_pub, ephemeral_priv)) != 0)
		return rc;
	hs->has_e = true;
	return 0;
}

/*
 * Length of message m without its payload; *key_after says whether the
 * payload will be encrypted. Walks the tokens without touching state so a
 * size error can be reported before anything changes.
 */
static size_t
msg_fixed_len(const struct noise_handshake *hs, unsigned int m,
    bool *key_after)
{
	const enum token *toks = hs_pattern(hs)->msgs[m];
	bool has_key = hs->cs.has_key;
	size_t len = 0;
	unsigned int t;

	for (t = 0; t < PATTERN_MAX_TOKENS && toks[t] != TOK_END; t++) {
		if (toks[t] == TOK_E)
			len += NOISE_KEY_LEN;
		else if (toks[t] == TOK_S)
			len += NOISE_KEY_LEN + overhead(has_key);
		else
			has_key = true;
	}
	*key_after = has_key;
	return len;
}

static bool
my_turn(const struct noise_handshake *hs)
{
	return hs->state == NOISE_HS_RUNNING &&
	    (hs->msg_index % 2 == 0) == hs->initiator;
}

/* After the last message nothing needs the private keys any more. */
static void
hs_advance(struct noise_handshake *hs)
{
	hs->msg_index++;
	if (hs->msg_index < hs_pattern(hs)->nmsgs)
		return;
	sodium_memzero(hs->s_priv, sizeof(hs->s_priv));
	sodium_memzero(hs->e_priv, sizeof(hs->e_priv));
	noise_cipher_dispose(&hs->cs);
	hs->state = NOISE_HS_DONE;
}

int
noise_handshake_write(struct noise_handshake *hs, const uint8_t *payload,
    size_t plen, uint8_t *out, size_t outcap, size_t *outlen)
{
	const enum token *toks;
	size_t len, off = 0;
	unsigned int t;
	bool key_after;
	int rc;

	if (hs == NULL || !my_turn(hs) || !buf_ok(payload, plen) ||
	    out == NULL || outlen == NULL)
		return -EINVAL;
	len = msg_fixed_len(hs, hs->msg_index, &key_after);
	if (plen > NOISE_MAX_MSG_LEN)
		return -EMSGSIZE;
	len += plen + overhead(key_after);
	if (len > NOISE_MAX_MSG_LEN || len > outcap)
		return -EMSGSIZE;

	toks = hs_pattern(hs)->msgs[hs->msg_index];
	for (t = 0; t < PATTERN_MAX_TOKENS && toks[t] != TOK_END; t++) {
		switch (toks[t]) {
		case TOK_E:
			if (!hs->has_e) {
				crypto_box_keypair(hs->e_pub, hs->e_priv);
				hs->has_e = true;
			}
			memcpy(out + off, hs->e_pub, NOISE_KEY_LEN);
			mix_hash(hs, hs->e_pub, NOISE_KEY_LEN);
			off += NOISE_KEY_LEN;
			break;
		case TOK_S:
			if (!hs->has_s) {
				rc = -EINVAL;
				goto out;
			}
			if ((rc = encrypt_and_hash(hs, hs->s_pub,
			    NOISE_KEY_LEN, out + off)) != 0)
				goto out;
			off += NOISE_KEY_LEN + overhead(hs->cs.has_key);
			break;
		default:
			/* Our own keys or a pre-shared peer key: config. */
			if (mix_dh(hs, toks[t]) != 0) {
				rc = -EINVAL;
				goto out;
			}
			break;
		}
	}
	if ((rc = encrypt_and_hash(hs, payload, plen, out + off)) != 0)
		goto out;
	off += plen + overhead(hs->cs.has_key);
	*outlen = off;
	hs_advance(hs);
	rc = 0;
out:
	if (rc != 0) {
		sodium_memzero(out, len);
		hs_fail(hs);
	}
	return rc;
}

int
noise_handshake_read(struct noise_handshake *hs, const uint8_t *msg,
    size_t mlen, uint8_t *payload_out, size_t cap, size_t *plen)
{
	const enum token *toks;
	size_t fixed, body = 0, off = 0;
	uint8_t empty[1];
	unsigned int t;
	bool key_after;
	int rc;

	if (hs == NULL || hs->state != NOISE_HS_RUNNING || my_turn(hs) ||
	    msg == NULL || (payload_out == NULL && cap > 0) || plen == NULL)
		return -EINVAL;
	if (mlen > NOISE_MAX_MSG_LEN)
		return -EMSGSIZE;
	fixed = msg_fixed_len(hs, hs->msg_index, &key_after);
	if (mlen < fixed + overhead(key_after)) {
		rc = -EBADMSG;
		goto out;
	}
	body = mlen - fixed - overhead(key_after);
	if (body > cap)
		return -EMSGSIZE;

	toks = hs_pattern(hs)->msgs[hs->msg_index];
	for (t = 0; t < PATTERN_MAX_TOKENS && toks[t] != TOK_END; t++) {
		switch (toks[t]) {
		case TOK_E:
			if (hs->has_re) {
				rc = -EINVAL;
				goto out;
			}
			memcpy(hs->re, msg + off, NOISE_KEY_LEN);
			hs->has_re = true;
			mix_hash(hs, hs->re, NOISE_KEY_LEN);
			off += NOISE_KEY_LEN;
			break;
		case TOK_S: {
			size_t n = NOISE_KEY_LEN + overhead(hs->cs.has_key);

			if (hs->has_rs) {
				rc = -EINVAL;
				goto out;
			}
			if ((rc = decrypt_and_hash(hs, msg + off, n,
			    hs->rs)) != 0)
				goto out;
			hs->has_rs = true;
			off += n;
			break;
		}
		default:
			if (mix_dh(hs, toks[t]) != 0) {
				rc = -EBADMSG;
				goto out;
			}
			break;
		}
	}
	if ((rc = decrypt_and_hash(hs, msg + off, mlen - off,
	    payload_out != NULL ? payload_out : empty)) != 0)
		goto out;
	*plen = body;
	hs_advance(hs);
	rc = 0;
out:
	if (rc != 0) {
		if (payload_out != NULL)
			sodium_memzero(payload_out, cap < body ? cap : body);
		hs_fail(hs);
	}
	return rc;
}

bool
noise_handshake_done(const struct noise_handshake *hs)
{
	return hs != NULL &&
	    (hs->state == NOISE_HS_DONE || hs->state == NOISE_HS_SPLIT);
}

int
noise_handshake_hash(const struct noise_handshake *hs,
    uint8_t out[NOISE_HASH_LEN])
{
	if (!noise_handshake_done(hs) || out == NULL)
		return -EINVAL;
	memcpy(out, hs->h, NOISE_HASH_LEN);
	return 0;
}

int
noise_handshake_remote_static(const struct noise_handshake *hs,
    uint8_t out[NOISE_KEY_LEN])
{
	if (hs == NULL || out == NULL || !hs->has_rs ||
	    hs->state == NOISE_HS_UNSET || hs->state == NOISE_HS_FAILED)
		return -EINVAL;
	memcpy(out, hs->rs, NOISE_KEY_LEN);
	return 0;
}

int
noise_handshake_split(struct noise_handshake *hs, struct noise_cipher *send,
    struct noise_cipher *recv)
{
	uint8_t k1[NOISE_HASH_LEN], k2[NOISE_HASH_LEN];

	if (hs == NULL || hs->state != NOISE_HS_DONE || send == NULL ||
	    recv == NULL || send == recv)
		return -EINVAL;
	hkdf2(hs->ck, NULL, 0, k1, k2);
	/* The initiator sends with the first key, the responder with the second. */
	cipher_set_key(send, hs->initiator ? k1 : k2);
	cipher_set_key(recv, hs->initiator ? k2 : k1);
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));
	sodium_memzero(hs->ck, sizeof(hs->ck));
	hs->state = NOISE_HS_SPLIT;
	return 0;
}

void
noise_handshake_dispose(struct noise_handshake *hs)
{
	if (hs == NULL)
		return;
	sodium_memzero(hs, sizeof(*hs));
}
