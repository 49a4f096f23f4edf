/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * migchan.h: the migration channel between two agents (PROTOCOL.md,
 * "Migration channel"), as pure functions over byte buffers: no sockets, no
 * clock, no allocation.  agent/migrate_*.c does the I/O.
 *
 * A migration moves one VM's memory from the source agent (the initiator,
 * which connects) to the target agent (the responder, which listens).  hvd
 * hands both agents, over their own authenticated links, the migration's
 * id (16 random bytes), a one-time key K (32 random bytes) and the other
 * agent's static X25519 public key.  The channel is:
 *
 *   initiator -> responder  HELLO_I: "HVMG" 1 0 0 0 | id[16] | e_i[32]
 *   responder -> initiator  HELLO_R: e_r[32] | secretstream header[24]
 *   initiator -> responder  secretstream header[24]
 *   then both ways          frames: u32 length N | N bytes of
 *                           crypto_secretstream_xchacha20poly1305 output
 *
 * "1 0 0 0" is version major 1, minor 0 and two zero bytes; anything else
 * there is refused (-EPROTO), there is no negotiation.  N is big-endian and
 * counts the ciphertext only, not its own 4 bytes.
 *
 * Keys: each direction's secretstream key is BLAKE2b keyed with K over a
 * label, the direction, the crypto_kx session key of the ephemeral pair
 * (e_i is the kx client), the X25519 of the two static keys, the id and
 * both hellos (the exact input is in migchan.c and PROTOCOL.md section
 * 11).  So only the two agents hvd chose (the static keys), in
 * this migration (K, id), in this connection (both ephemerals: a recorded
 * connection replayed to a new responder derives other keys) can produce a
 * frame that opens.  The responder refuses an id it does not expect, and
 * an id already used by an authenticated connection; the first frame each
 * side opens is the AUTH frame carrying the id again, so a stranger is
 * refused before any VM work starts.
 *
 * Every frame's plaintext is one type byte and its payload; its
 * secretstream tag is MESSAGE, or FINAL on the last frame each side sends
 * (any other tag is refused).  A frame after the FINAL one, a reordered,
 * replayed or altered frame fails to open; a stream cut short before FINAL
 * is the caller's to notice (EOF with !rx_final).
 *
 * Errors: 0 or a negative errno: -EINVAL (bad argument or state), -EBADMSG
 * (the peer's bytes are malformed or fail authentication), -EMSGSIZE (a
 * buffer too small or a frame too large), -EPROTO (wrong magic or version).
 * After -EBADMSG or -EPROTO the channel is dead: its secrets are wiped and
 * every call but migchan_dispose() is -EINVAL.  -EINVAL and -EMSGSIZE
 * change nothing, so the call may be retried (e.g. with a bigger buffer).
 *
 * Ownership: struct migchan is embedded by the caller, holds secrets and
 * no heap memory; migchan_dispose() wipes it (NULL-safe).
 * Precondition: sodium_init() has succeeded.
 */
#ifndef HV_MIGCHAN_H
#define HV_MIGCHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>		/* ssize_t */

#include <sodium.h>

#define MIGCHAN_ID_LEN		16
#define MIGCHAN_KEY_LEN		32	/* K, static and ephemeral X25519 keys */
#define MIGCHAN_HELLO_I_LEN	(8 + MIGCHAN_ID_LEN + 32)	/* 56 */
#define MIGCHAN_HELLO_R_LEN	(32 + 24)			/* 56 */
#define MIGCHAN_HEADER_LEN	24	/* the initiator's stream header */
#define MIGCHAN_PAYLOAD_MAX	65536	/* per frame, type byte excluded */
#define MIGCHAN_LEN_LEN		4	/* the frame's length prefix */
/* The bytes a frame adds to its payload: length, secretstream ABYTES
 * (17, which includes its tag byte) and the type byte. */
#define MIGCHAN_OVERHEAD	(MIGCHAN_LEN_LEN + \
    crypto_secretstream_xchacha20poly1305_ABYTES + 1)
#define MIGCHAN_FRAME_MAX	(MIGCHAN_PAYLOAD_MAX + MIGCHAN_OVERHEAD)

/* Frame types.  Which side sends which, and when, is agent/migrate_fsm.h's
 * business; the channel only carries them, except DATA_LZ4 (below). */
enum migchan_type {
	MIGCHAN_AUTH = 1,	/* payload: the id (16 bytes), first frame */
	MIGCHAN_READY,		/* target: the restore runs, send the stream;
				 * payload: capabilities, 0..16 bytes */
	MIGCHAN_DATA,		/* source: libxl stream bytes, 1..65536 */
	MIGCHAN_END,		/* source: the stream is complete */
	MIGCHAN_RECEIVED,	/* target: the domain is restored, paused */
	MIGCHAN_GO,		/* source: its copy is suspended for good */
	MIGCHAN_DONE,		/* target: its copy runs; payload: domid u32 */
	MIGCHAN_ABORT,		/* either: payload: a reason, printable ASCII */
	MIGCHAN_DATA_LZ4,	/* source: one LZ4 block of 1..65536 stream
				 * bytes, to a responder that offered it */
	MIGCHAN_TYPE_MAX = MIGCHAN_DATA_LZ4
};

/*
 * READY's payload: capability bytes, at most MIGCHAN_READY_MAX (an empty
 * READY, what agents before them send, offers nothing).  Byte 0's bit
 * MIGCHAN_CAP_LZ4: "send me DATA_LZ4".  Other bits and bytes are sent as
 * zero and ignored by a receiver that does not know them, so a newer
 * responder may offer more.  The channel reads only the first READY the
 * responder seals (responder) or the initiator opens (initiator): DATA_LZ4
 * is sealed only by an initiator that opened a READY offering it, and
 * opened only by a responder that sealed one (migchan_lz4()).  What a
 * DATA_LZ4 block decodes to is agent/migrate_lz4.h's to check.
 */
#define MIGCHAN_READY_MAX	16
#define MIGCHAN_CAP_LZ4		0x01

enum migchan_role { MIGCHAN_INITIATOR, MIGCHAN_RESPONDER };

struct migchan {
	enum migchan_role role;
	int state;				/* private */
	uint8_t id[MIGCHAN_ID_LEN];
	/* K until the keys are derived; on the responder, from accept() to
	 * header(), the derived i2r key instead.  Zero once ready. */
	uint8_t k[MIGCHAN_KEY_LEN];
	uint8_t my_pk[32], my_sk[32];		/* static; sk: zero when ready */
	uint8_t peer_pk[32];			/* static */
	uint8_t e_pk[32], e_sk[32];		/* ephemeral; sk: ditto */
	uint8_t hello_i[MIGCHAN_HELLO_I_LEN];
	crypto_secretstream_xchacha20poly1305_state tx, rx;
	bool tx_final, rx_final;
};

/*
 * Sets up one end.  K and ID come from hvd; MY_SK is the agent's static
 * X25519 secret (its public key is derived), PEER_PK the other agent's.
 * All are copied.  -EINVAL for a NULL argument, an unknown role, an
 * all-zero K or a low-order PEER_PK; CH is then left disposed.
 * The initiator then calls migchan_hello_i(); the responder waits for
 * HELLO_I and calls migchan_accept().
 */
int migchan_init(struct migchan *ch, enum migchan_role role,
    const uint8_t id[MIGCHAN_ID_LEN], const uint8_t k[MIGCHAN_KEY_LEN],
    const uint8_t my_sk[32], const uint8_t peer_pk[32]);
void migchan_dispose(struct migchan *ch);

/* Initiator: writes HELLO_I (MIGCHAN_HELLO_I_LEN bytes) to OUT. */
int migchan_hello_i(struct migchan *ch, uint8_t out[MIGCHAN_HELLO_I_LEN]);
/*
 * Responder, before any state: the id a HELLO_I names, so the caller can
 * find the migration (and its K) or refuse.  -EPROTO on a wrong magic or
 * version.
 */
int migchan_peek_id(const uint8_t in[MIGCHAN_HELLO_I_LEN],
    uint8_t id[MIGCHAN_ID_LEN]);
/*
 * Responder: reads HELLO_I, writes HELLO_R (MIGCHAN_HELLO_R_LEN bytes).
 * -EPROTO as for peek_id; -EBADMSG when it names another id than CH's or
 * its e_i is a low-order point.  IN and OUT may be the same buffer.
 */
int migchan_accept(struct migchan *ch, const uint8_t in[MIGCHAN_HELLO_I_LEN],
    uint8_t out[MIGCHAN_HELLO_R_LEN]);
/*
 * Initiator: reads HELLO_R, writes its stream header (MIGCHAN_HEADER_LEN).
 * -EBADMSG when e_r is a low-order point; a forged HELLO_R otherwise shows
 * at the first frame opened.
 */
int migchan_finish(struct migchan *ch, const uint8_t in[MIGCHAN_HELLO_R_LEN],
    uint8_t out[MIGCHAN_HEADER_LEN]);
/* Responder: reads the initiator's stream header. */
int migchan_header(struct migchan *ch, const uint8_t in[MIGCHAN_HEADER_LEN]);
/* Both ends can now seal and open. */
bool migchan_ready(const struct migchan *ch);

/*
 * Seals one frame (length prefix included) of TYPE with LEN payload bytes
 * (0..MIGCHAN_PAYLOAD_MAX) into OUT (at least LEN + MIGCHAN_OVERHEAD
 * bytes); FINAL marks the last frame this side sends.  Returns the frame's
 * size, LEN + MIGCHAN_OVERHEAD, or a negative errno: -EMSGSIZE for LEN or
 * OUTCAP, -EINVAL for a frame the peer would refuse (the first frame not
 * AUTH with the id, a second AUTH, an unknown type, DATA or DATA_LZ4
 * without payload, READY with more than MIGCHAN_READY_MAX, DATA_LZ4 while
 * migchan_lz4() is false) or any frame after this side's FINAL.
 */
ssize_t migchan_seal(struct migchan *ch, enum migchan_type type,
    const uint8_t *payload, size_t len, bool final, uint8_t *out,
    size_t outcap);
/*
 * The length of the frame that starts IN (at least MIGCHAN_LEN_LEN bytes):
 * its total size with the prefix, or -EBADMSG when the prefix is out of
 * range (a frame is at least the overhead and at most MIGCHAN_FRAME_MAX).
 */
ssize_t migchan_frame_len(const uint8_t in[MIGCHAN_LEN_LEN]);
/*
 * Opens one whole frame of LEN bytes (as migchan_frame_len() said) into
 * PAYLOAD (at least MIGCHAN_PAYLOAD_MAX bytes): *TYPE, *PLEN, and *FINAL
 * when it was the peer's last.  -EBADMSG for a prefix out of range, a frame
 * that fails authentication, a tag other than MESSAGE or FINAL, an unknown
 * type, a first frame that is not AUTH, a second AUTH, an AUTH whose
 * payload is not the id, DATA or DATA_LZ4 without payload, READY with
 * more than MIGCHAN_READY_MAX, DATA_LZ4 while migchan_lz4() is false, or
 * any frame after the FINAL one.  LEN other than what the prefix says is
 * -EINVAL.
 */
int migchan_open(struct migchan *ch, const uint8_t *in, size_t len,
    enum migchan_type *type, uint8_t *payload, size_t *plen, bool *final);
/*
 * DATA_LZ4 is allowed on CH: an initiator opened, or a responder sealed,
 * a first READY carrying MIGCHAN_CAP_LZ4.  False for NULL, before that
 * READY and on a dead channel.
 */
bool migchan_lz4(const struct migchan *ch);

#endif
