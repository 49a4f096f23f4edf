/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libFuzzer target: handshake message processing on both sides.  hvd (the
 * responder) reads arbitrary bytes as message 1; an agent that has sent a
 * real message 1 reads arbitrary bytes as message 2; a transport cipher
 * opens arbitrary frames.  Nothing may crash, and forged input must never
 * authenticate (that would take breaking ChaCha20-Poly1305).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t hvd_priv[32], hvd_pub[32], agent_priv[32], agent_pub[32];
static uint8_t out[LINK_FRAME_MAX + LINK_FRAME_HDR + LINK_PREAMBLE_LEN];

static void
keys_once(void)
{
	static int done;

	if (done)
		return;
	if (sodium_init() < 0)
		abort();
	/* Fixed keys keep runs reproducible. */
	memset(hvd_priv, 1, sizeof(hvd_priv));
	memset(agent_priv, 2, sizeof(agent_priv));
	crypto_scalarmult_base(hvd_pub, hvd_priv);
	crypto_scalarmult_base(agent_pub, agent_priv);
	done = 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct link resp, init;
	uint8_t plain[LINK_FRAME_MAX];
	size_t n = 0;

	keys_once();
	if (size > LINK_FRAME_MAX)
		return 0;
	/* hvd reading message 1. */
	if (link_init_responder(&resp, hvd_priv) < 0)
		abort();
	if (link_responder_read(&resp, data, size) == 0)
		abort();	/* forged msg1 authenticated */
	link_dispose(&resp);

	/* An agent reading message 2 after a genuine message 1. */
	if (link_init_initiator(&init, agent_priv, hvd_pub, 1, out, sizeof(out),
	    &n) < 0)
		abort();
	if (link_initiator_finish(&init, data, size) == 0)
		abort();	/* forged msg2 authenticated */
	link_dispose(&init);

	/* Arbitrary bytes on a live session: must fail authentication. */
	if (link_init_initiator(&init, agent_priv, hvd_pub, 2, out, sizeof(out),
	    &n) < 0 || link_init_responder(&resp, hvd_priv) < 0 ||
	    link_responder_read(&resp, out + LINK_PREAMBLE_LEN + LINK_FRAME_HDR,
	    n - LINK_PREAMBLE_LEN - LINK_FRAME_HDR) < 0 ||
	    link_responder_finish(&resp, out, sizeof(out), &n) < 0 ||
	    link_initiator_finish(&init, out + LINK_FRAME_HDR,
	    n - LINK_FRAME_HDR) < 0)
		abort();
	if (link_open(&resp, data, size, plain, sizeof(plain), &n) == 0)
		abort();
	link_dispose(&init);
	link_dispose(&resp);
	return 0;
}
