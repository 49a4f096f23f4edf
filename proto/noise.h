/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * noise.h: the Noise protocol core (revision 34) used by the agent link.
 *
 * Suite: Noise_{NN,XX,IK}_25519_ChaChaPoly_BLAKE2b, built only from libsodium
 * primitives. The agent link itself uses IK (DESIGN.md section 5); NN and XX
 * exist because the published test vectors exercise them and cost only a
 * table row each.
 *
 * Preconditions: the caller must have called sodium_init() successfully
 * before calling anything here. This module never calls it.
 *
 * Ownership: both structs below are embedded in the caller's objects and set
 * up with *_init / torn down with *_dispose. They own no heap memory and no
 * file descriptors; they do hold secrets, so *_dispose must run before the
 * memory is released or reused. Every *_dispose is NULL-safe and leaves the
 * struct zeroed, so a disposed struct refuses every further call (-EINVAL).
 * The fields are private: read them only through the functions below.
 *
 * Errors: every int function returns 0 or a negative errno:
 *   -EINVAL    bad argument, a key the pattern does not expect or lacks,
 *              or a call made in the wrong state (out of turn, before the
 *              handshake is done, after a failure, split twice, ...);
 *   -EMSGSIZE  a message above NOISE_MAX_MSG_LEN, or an output buffer too
 *              small for the result;
 *   -EBADMSG   a peer's message failed authentication or is malformed;
 *   -EOVERFLOW the nonce counter is exhausted; the session must be ended.
 * Argument and size errors are detected before any state changes, so the
 * call may be retried with a bigger buffer. Any other handshake error leaves
 * the handshake failed: its secrets are wiped and only dispose is useful.
 *
 * Buffers: input and output buffers must not overlap, with one exception:
 * noise_cipher_encrypt/decrypt accept out == in (in-place).
 */
#ifndef HV_NOISE_H
#define HV_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NOISE_KEY_LEN		32	/* X25519 keys and ChaChaPoly keys */
#define NOISE_HASH_LEN		64	/* BLAKE2b: handshake hash length */
#define NOISE_TAG_LEN		16	/* Poly1305 tag added by encryption */
#define NOISE_MAX_MSG_LEN	65535	/* any Noise message, tag included */
#define NOISE_MAX_PAYLOAD_LEN	(NOISE_MAX_MSG_LEN - NOISE_TAG_LEN)

enum noise_pattern {
	NOISE_PATTERN_NN,
	NOISE_PATTERN_XX,
	NOISE_PATTERN_IK,
};

/* One direction of a transport session (Noise "CipherState"). */
struct noise_cipher {
	uint8_t		 k[NOISE_KEY_LEN];
	uint64_t	 n;
	bool		 has_key;
};

enum noise_hs_state {
	NOISE_HS_UNSET = 0,	/* zeroed, disposed: refuses everything */
	NOISE_HS_RUNNING,
	NOISE_HS_DONE,		/* all messages exchanged, split pending */
	NOISE_HS_SPLIT,		/* transport keys handed out */
	NOISE_HS_FAILED,
};

/* A handshake in progress (Noise "HandshakeState" + "SymmetricState"). */
struct noise_handshake {
	struct noise_cipher	 cs;
	uint8_t			 ck[NOISE_HASH_LEN];
	uint8_t			 h[NOISE_HASH_LEN];
	uint8_t			 s_priv[NOISE_KEY_LEN];
	uint8_t			 s_pub[NOISE_KEY_LEN];
	uint8_t			 e_priv[NOISE_KEY_LEN];
	uint8_t			 e_pub[NOISE_KEY_LEN];
	uint8_t			 rs[NOISE_KEY_LEN];
	uint8_t			 re[NOISE_KEY_LEN];
	bool			 has_s, has_e, has_rs, has_re;
	bool			 initiator;
	enum noise_pattern	 pattern;
	enum noise_hs_state	 state;
	unsigned int		 msg_index;
};

/*
 * Full protocol name of a pattern, e.g. "Noise_IK_25519_ChaChaPoly_BLAKE2b".
 * Returns a static string, or NULL with errno = EINVAL for an unknown pattern.
 */
const char	*noise_protocol_name(enum noise_pattern p);

/*
 * Start a handshake. local_static_priv is this side's X25519 private key and
 * remote_static_pub the peer's public key known in advance; each must be
 * given exactly when the pattern and role need it (IK initiator: both; IK
 * responder: local only; XX: local only; NN: neither), otherwise -EINVAL.
 * The keys are copied; the caller keeps ownership of its buffers. prologue
 * may be NULL when prologue_len is 0. On error hs is left disposed.
 */
int		 noise_handshake_init(struct noise_handshake *hs,
		    enum noise_pattern p, bool initiator,
		    const uint8_t *prologue, size_t prologue_len,
		    const uint8_t *local_static_priv,
		    const uint8_t *remote_static_pub);

/*
 * Fix this side's ephemeral private key instead of drawing a fresh one from
 * randombytes. Only for test vectors: reusing an ephemeral destroys the
 * handshake's security. Must be called before the message that sends "e";
 * -EINVAL afterwards.
 */
int		 noise_handshake_set_ephemeral(struct noise_handshake *hs,
		    const uint8_t ephemeral_priv[NOISE_KEY_LEN]);

/*
 * Write the next handshake message, carrying payload (NULL when plen is 0),
 * into out. -EINVAL when it is the peer's turn. *outlen gets the length.
 */
int		 noise_handshake_write(struct noise_handshake *hs,
		    const uint8_t *payload, size_t plen,
		    uint8_t *out, size_t outcap, size_t *outlen);

/*
 * Read the peer's next handshake message and write its payload into
 * payload_out (may be NULL when cap is 0). -EBADMSG when the message is
 * short or fails authentication; the handshake is then failed.
 */
int		 noise_handshake_read(struct noise_handshake *hs,
		    const uint8_t *msg, size_t mlen,
		    uint8_t *payload_out, size_t cap, size_t *plen);

/* True once every message of the pattern was written or read. */
bool		 noise_handshake_done(const struct noise_handshake *hs);

/*
 * Copy the handshake hash for channel binding. Only once done; -EINVAL
 * before.
 */
int		 noise_handshake_hash(const struct noise_handshake *hs,
		    uint8_t out[NOISE_HASH_LEN]);

/*
 * Copy the peer's static public key: the one given to init, or the one
 * learned from an authenticated message (available as soon as the read that
 * carried it returned 0, so a responder can look the peer up before
 * answering). -EINVAL while unknown.
 */
int		 noise_handshake_remote_static(const struct noise_handshake *hs,
		    uint8_t out[NOISE_KEY_LEN]);

/*
 * Hand out the transport ciphers: send for this side's messages, recv for
 * the peer's. Only once done, and only once (a second pair would reuse
 * nonces); the handshake keeps just its hash and the remote static key.
 * The caller owns send and recv and must noise_cipher_dispose them.
 */
int		 noise_handshake_split(struct noise_handshake *hs,
		    struct noise_cipher *send, struct noise_cipher *recv);

/* Wipe every secret and zero hs. NULL-safe. */
void		 noise_handshake_dispose(struct noise_handshake *hs);

/*
 * Encrypt pt with associated data ad (NULL when adlen is 0) into out, which
 * needs ptlen + NOISE_TAG_LEN bytes; the nonce is the cipher's counter,
 * which then advances. ptlen above NOISE_MAX_PAYLOAD_LEN is -EMSGSIZE; a
 * cipher without a key is -EINVAL (it never sends plaintext); when the
 * counter reached 2^64-1, -EOVERFLOW.
 */
int		 noise_cipher_encrypt(struct noise_cipher *c,
		    const uint8_t *ad, size_t adlen,
		    const uint8_t *pt, size_t ptlen,
		    uint8_t *out, size_t outcap, size_t *outlen);

/*
 * Decrypt the next message in order. -EBADMSG when it fails authentication:
 * tampered, replayed, reordered or from another session. A failure leaves
 * the counter unchanged (Noise spec 5.1), but on a stream transport the
 * caller should end the session. Errors as for encrypt.
 */
int		 noise_cipher_decrypt(struct noise_cipher *c,
		    const uint8_t *ad, size_t adlen,
		    const uint8_t *ct, size_t ctlen,
		    uint8_t *out, size_t outcap, size_t *outlen);

/*
 * Noise Rekey(): replace the key by a one-way function of itself. The
 * counter is kept. Both sides must rekey at the same message.
 */
int		 noise_cipher_rekey(struct noise_cipher *c);

/* Next nonce to be used: the number of messages this cipher has handled. */
uint64_t	 noise_cipher_nonce(const struct noise_cipher *c);

/* Wipe the key and zero c. NULL-safe. */
void		 noise_cipher_dispose(struct noise_cipher *c);

#endif /* HV_NOISE_H */
