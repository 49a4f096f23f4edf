/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * libFuzzer target: DHCP requests over arbitrary bytes.  A rejection must
 * say why; an accepted request's options must lie inside the input; every
 * answer hvd could give to it (proxy on both ports, full OFFER, ACK, NAK)
 * must fit the reply buffer and parse back as a reply with its type.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
roundtrip(const struct dhcp_msg *m, const struct dhcp_answer *a)
{
	uint8_t out[DHCP_REPLY_MAX];
	struct dhcp_msg back;
	char err[160];
	size_t n;

	if (dhcp_build(m, a, out, sizeof(out), &n) < 0)
		abort();	/* hvd's answers always fit 576 bytes */
	if (n < 300 || n > sizeof(out) ||
	    dhcp_parse(out, n, 2, &back, err, sizeof(err)) < 0 ||
	    back.type != a->type || back.xid != m->xid ||
	    memcmp(back.chaddr, m->chaddr, 6) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t ports[] = { DHCP_SERVER_PORT, DHCP_PROXY_PORT };
	struct dhcp_site s = {
		.mode = DHCP_PROXY, .addr = htonl(0x0a000001),
		.mask = htonl(0xffffff00), .boot_server = htonl(0x0a000002),
		.url = "http://10.0.0.2:80/boot/ipxe", .lease_s = 3600,
	};
	struct dhcp_answer a;
	struct dhcp_msg m;
	const char *why;
	char err[160];
	uint16_t arch;

	err[0] = '\0';
	if (dhcp_parse(data, size, 1, &m, err, sizeof(err)) < 0) {
		if (err[0] == '\0')
			abort();
		/* The same bytes as a reply exercise the op=2 path. */
		(void)dhcp_parse(data, size, 2, &m, err, sizeof(err));
		return 0;
	}
	for (unsigned c = 0; c < 256; c++)
		if (m.opt[c].present && (size_t)m.opt[c].off + m.opt[c].len > size)
			abort();
	for (size_t i = 0; i < sizeof(ports) / sizeof(*ports); i++) {
		why = NULL;
		if (dhcp_proxy_answer(&s, &m, ports[i], &a, &why) == 0)
			roundtrip(&m, &a);
		else if (why == NULL)
			abort();
	}
	memset(&a, 0, sizeof(a));
	a.type = DHCP_OFFER;
	a.yiaddr = htonl(0x0a000064);
	a.server_id = s.addr;
	a.lease_s = s.lease_s;
	a.mask = s.mask;
	a.router = s.addr;
	a.dns = s.addr;
	(void)dhcp_boot_answer(&s, dhcp_classify(&m, &arch), &a);
	roundtrip(&m, &a);
	a.type = DHCP_ACK;
	roundtrip(&m, &a);
	a.type = DHCP_NAK;
	a.message = "requested address not available";
	roundtrip(&m, &a);
	return 0;
}
