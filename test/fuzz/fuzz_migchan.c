/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libFuzzer target: the migration channel (proto/migchan.c) reading a
 * stranger's bytes on both ends.
 *
 * The first input byte picks the mode (its value mod 3); the rest is the
 * peer's stream.
 *   0:    a responder reads HELLO_I (56 bytes; peek_id then accept), the
 *         initiator's header (24) and then a frame, cut at the length its
 *         prefix announces, as agent/migrate_*.c would.
 *   1:    an initiator that sent a genuine HELLO_I reads HELLO_R (56) and
 *         then a frame the same way.
 *   2:    an insider: an initiator written here from PROTOCOL.md section
 *         11, which knows K, seals records the fuzzer describes (type byte,
 *         secretstream tag, payload) and the real responder opens them.
 *         A record may instead have the responder seal a READY with the
 *         record's payload as capabilities, which decides whether DATA_LZ4
 *         may follow.  A model of the rules says which must open; open
 *         must agree, and hand back exactly what was sealed.  (What a
 *         DATA_LZ4 block decodes to is fuzz_migrate_lz4's.)
 * In modes 0 and 1, when the input runs short, the remaining steps are run on
 * the genuine peer's bytes so the frame parser is reached.  A stranger
 * cannot make a frame open without K (that would take breaking BLAKE2b or
 * XChaCha20-Poly1305), so the first frame fails and kills the channel, as
 * it would end the connection.  Nothing may crash or read
 * out of bounds; every error must leave the channel dead or unchanged as
 * documented.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "migchan.h"

#define TAG_MESSAGE	crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define TAG_FINAL	crypto_secretstream_xchacha20poly1305_TAG_FINAL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t id[MIGCHAN_ID_LEN], k[MIGCHAN_KEY_LEN];
static uint8_t isk[32], ipk[32], rsk[32], rpk[32];
static uint8_t payload[MIGCHAN_PAYLOAD_MAX];
static uint8_t frame[MIGCHAN_FRAME_MAX], plain[1 + MIGCHAN_PAYLOAD_MAX];

static void
keys_once(void)
{
	static int done;

	if (done)
		return;
	if (sodium_init() < 0)
		abort();
	/* Fixed keys keep runs reproducible. */
	memset(id, 3, sizeof(id));
	memset(k, 4, sizeof(k));
	memset(isk, 1, sizeof(isk));
	memset(rsk, 2, sizeof(rsk));
	crypto_scalarmult_base(ipk, isk);
	crypto_scalarmult_base(rpk, rsk);
	done = 1;
}

/*
 * Reads the stranger's first frame as a receiver would: the prefix, then
 * as many bytes as it names.  It cannot open (no K), so it is the last.
 */
static void
read_frame(struct migchan *ch, const uint8_t *data, size_t size)
{
	enum migchan_type type;
	size_t plen;
	bool final;
	ssize_t n;
	int rc;

	if (size < MIGCHAN_LEN_LEN)
		return;
	if ((n = migchan_frame_len(data)) < 0) {
		if (n != -EBADMSG)
			abort();
		return;
	}
	if ((size_t)n > size)
		return;
	rc = migchan_open(ch, data, (size_t)n, &type, payload, &plen, &final);
	if (rc == 0)
		abort();	/* a forged frame authenticated */
	if (rc != -EBADMSG || migchan_ready(ch))
		abort();	/* a failure must kill the channel */
	/* Dead: even the same bytes again are refused, unread. */
	if (migchan_open(ch, data, (size_t)n, &type, payload, &plen,
	    &final) != -EINVAL)
		abort();
}

static void
fuzz_responder(const uint8_t *data, size_t size)
{
	struct migchan ini, rsp;
	uint8_t hi[MIGCHAN_HELLO_I_LEN], hr[MIGCHAN_HELLO_R_LEN];
	uint8_t hdr[MIGCHAN_HEADER_LEN], peek[MIGCHAN_ID_LEN];
	bool forged = false;
	int rc;

	if (migchan_init(&ini, MIGCHAN_INITIATOR, id, k, isk, rpk) != 0 ||
	    migchan_init(&rsp, MIGCHAN_RESPONDER, id, k, rsk, ipk) != 0 ||
	    migchan_hello_i(&ini, hi) != 0)
		abort();
	if (size >= sizeof(hi)) {
		memcpy(hi, data, sizeof(hi));
		data += sizeof(hi);
		size -= sizeof(hi);
		forged = true;
	}
	rc = migchan_peek_id(hi, peek);
	if (rc != 0 && rc != -EPROTO)
		abort();
	if (migchan_accept(&rsp, hi, hr) != 0) {
		/* Only a forged HELLO_I is refused, and that kills. */
		if (!forged || migchan_header(&rsp, hdr) != -EINVAL)
			abort();
		goto out;
	}
	if (rc != 0 || memcmp(peek, id, sizeof(id)) != 0)
		abort();	/* accepted a HELLO_I for another id */
	if (migchan_finish(&ini, hr, hdr) != 0)
		abort();	/* the genuine initiator refused our HELLO_R */
	if (size >= sizeof(hdr)) {
		memcpy(hdr, data, sizeof(hdr));
		data += sizeof(hdr);
		size -= sizeof(hdr);
	}
	if (migchan_header(&rsp, hdr) != 0 || !migchan_ready(&rsp))
		abort();
	read_frame(&rsp, data, size);
out:
	migchan_dispose(&ini);
	migchan_dispose(&rsp);
}

static void
fuzz_initiator(const uint8_t *data, size_t size)
{
	struct migchan ini, rsp;
	uint8_t hi[MIGCHAN_HELLO_I_LEN], hr[MIGCHAN_HELLO_R_LEN];
	uint8_t hdr[MIGCHAN_HEADER_LEN];
	bool forged = false;

	if (migchan_init(&ini, MIGCHAN_INITIATOR, id, k, isk, rpk) != 0 ||
	    migchan_init(&rsp, MIGCHAN_RESPONDER, id, k, rsk, ipk) != 0 ||
	    migchan_hello_i(&ini, hi) != 0 ||
	    migchan_accept(&rsp, hi, hr) != 0)
		abort();
	if (size >= sizeof(hr)) {
		memcpy(hr, data, sizeof(hr));
		data += sizeof(hr);
		size -= sizeof(hr);
		forged = true;
	}
	if (migchan_finish(&ini, hr, hdr) != 0) {
		if (!forged || migchan_ready(&ini))
			abort();
		goto out;
	}
	read_frame(&ini, data, size);
out:
	migchan_dispose(&ini);
	migchan_dispose(&rsp);
}

/* The insider: PROTOCOL.md section 11's initiator, against RSP. */
static void
insider_connect(struct migchan *rsp,
    crypto_secretstream_xchacha20poly1305_state *tx)
{
	uint8_t e_pk[32], e_sk[32], hi[56], hr[56], hdr[24];
	uint8_t kx_rx[32], kx_tx[32], ss[32], in[208], key[32];

	crypto_kx_keypair(e_pk, e_sk);
	memcpy(hi, "HVMG\x01\x00\x00\x00", 8);
	memcpy(hi + 8, id, 16);
	memcpy(hi + 24, e_pk, 32);
	if (migchan_init(rsp, MIGCHAN_RESPONDER, id, k, rsk, ipk) != 0 ||
	    migchan_accept(rsp, hi, hr) != 0 ||
	    crypto_kx_client_session_keys(kx_rx, kx_tx, e_pk, e_sk, hr) != 0 ||
	    crypto_scalarmult(ss, isk, rpk) != 0)
		abort();
	memcpy(in, "hv migrate v1i2r", 16);
	memcpy(in + 16, kx_tx, 32);
	memcpy(in + 48, ss, 32);
	memcpy(in + 80, id, 16);
	memcpy(in + 96, hi, 56);
	memcpy(in + 152, hr, 56);
	crypto_generichash(key, 32, in, sizeof(in), k, 32);
	crypto_secretstream_xchacha20poly1305_init_push(tx, hdr, key);
	if (migchan_header(rsp, hdr) != 0)
		abort();
}

/*
 * Records: type, tag, flags, length (u16 big-endian), payload.  Flag bit 0
 * replaces the payload by the channel's id, so AUTH is easy to reach; bit
 * 1 adds one to the length, so 65536 is reachable; bit 2 makes the record
 * the responder's READY (type and tag unused), sealed after its own AUTH.
 */
static void
fuzz_insider(const uint8_t *data, size_t size)
{
	crypto_secretstream_xchacha20poly1305_state tx;
	struct migchan rsp;
	bool authed = false, finaled = false, final, ok;
	bool rsp_authed = false, readied = false, lz4 = false;
	enum migchan_type type;
	unsigned long long clen;
	size_t len, plen;
	uint8_t t, tag, fl;
	ssize_t n;
	int rc;

	insider_connect(&rsp, &tx);
	while (size >= 5) {
		t = data[0];
		tag = data[1];
		fl = data[2];
		len = ((size_t)data[3] << 8 | data[4]) + (fl >> 1 & 1);
		if (fl & 1) {
			memcpy(plain + 1, id, sizeof(id));
			len = sizeof(id);
			data += 5;
			size -= 5;
		} else {
			data += 5;
			size -= 5;
			if (len > size)
				len = size;
			memcpy(plain + 1, data, len);
			data += len;
			size -= len;
		}
		if (fl & 4) {
			/* The responder's READY: refused only when too long,
			 * and then it changes nothing. */
			if (!rsp_authed && migchan_seal(&rsp, MIGCHAN_AUTH, id,
			    sizeof(id), false, frame, sizeof(frame)) < 0)
				abort();
			rsp_authed = true;
			n = migchan_seal(&rsp, MIGCHAN_READY, plain + 1, len,
			    false, frame, sizeof(frame));
			if ((n < 0) != (len > MIGCHAN_READY_MAX) ||
			    (n < 0 && n != -EINVAL) || !migchan_ready(&rsp))
				abort();
			if (n > 0 && !readied) {
				readied = true;
				lz4 = len > 0 && (plain[1] & MIGCHAN_CAP_LZ4);
			}
			if (migchan_lz4(&rsp) != lz4)
				abort();
			continue;
		}
		plain[0] = t;
		crypto_secretstream_xchacha20poly1305_push(&tx, frame + 4,
		    &clen, plain, 1 + len, NULL, 0, tag);
		frame[0] = (uint8_t)(clen >> 24);
		frame[1] = (uint8_t)(clen >> 16);
		frame[2] = (uint8_t)(clen >> 8);
		frame[3] = (uint8_t)clen;
		if (migchan_frame_len(frame) != (ssize_t)(4 + clen))
			abort();
		/* The rules, restated. */
		ok = !finaled && (tag == TAG_MESSAGE || tag == TAG_FINAL) &&
		    t >= MIGCHAN_AUTH && t <= MIGCHAN_TYPE_MAX &&
		    authed != (t == MIGCHAN_AUTH) &&
		    (t != MIGCHAN_AUTH || (len == sizeof(id) &&
		    memcmp(plain + 1, id, sizeof(id)) == 0)) &&
		    (t != MIGCHAN_DATA || len > 0) &&
		    (t != MIGCHAN_READY || len <= MIGCHAN_READY_MAX) &&
		    (t != MIGCHAN_DATA_LZ4 || (len > 0 && lz4));
		rc = migchan_open(&rsp, frame, 4 + clen, &type, payload, &plen,
		    &final);
		if (!ok) {
			if (rc != -EBADMSG || migchan_ready(&rsp))
				abort();
			break;
		}
		if (rc != 0 || type != t || plen != len ||
		    memcmp(payload, plain + 1, len) != 0 ||
		    final != (tag == TAG_FINAL))
			abort();
		authed = true;
		finaled = final;
	}
	migchan_dispose(&rsp);
	sodium_memzero(&tx, sizeof(tx));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	keys_once();
	if (size < 1 || size > 4 * MIGCHAN_FRAME_MAX)
		return 0;
	switch (data[0] % 3) {
	case 0:
		fuzz_responder(data + 1, size - 1);
		break;
	case 1:
		fuzz_initiator(data + 1, size - 1);
		break;
	default:
		fuzz_insider(data + 1, size - 1);
		break;
	}
	return 0;
}
