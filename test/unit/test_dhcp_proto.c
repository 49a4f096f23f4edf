/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * dhcp_proto.c and dhcp.c's proxy decision, table-driven: requests that
 * parse and the exact message of every one that does not (truncated
 * header, bad lengths, option overflow, overload); the client classes from
 * options 60, 77, 93 and 175; replies built and parsed back; and which
 * proxyDHCP answer each request gets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wire.h"

#define O(s)	(const uint8_t *)(s), sizeof(s) - 1

/* A request: the fixed header with one changed byte at most, areas. */
struct req_case {
	const char *name;
	const uint8_t *opts;		/* after the cookie */
	size_t optlen;
	int patch_off;			/* header byte to change to patch */
	uint8_t patch;
	const uint8_t *file;		/* bytes for the file field */
	size_t filelen;
	const uint8_t *sname;		/* bytes for the sname field */
	size_t snamelen;
	size_t len;			/* total length if not natural */
	const char *error;		/* NULL: must parse */
};

static size_t
req_make(uint8_t *buf, size_t cap, const struct req_case *c)
{
	static const uint8_t cookie[4] = { 99, 130, 83, 99 };
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	size_t n = 240 + c->optlen;

	assert_true(n <= cap);
	memset(buf, 0, cap);
	buf[0] = 1;
	buf[1] = 1;
	buf[2] = 6;
	buf[4] = 0xde, buf[5] = 0xad, buf[6] = 0xbe, buf[7] = 0xef;
	memcpy(buf + 28, mac, 6);
	memcpy(buf + 236, cookie, 4);
	if (c->optlen)
		memcpy(buf + 240, c->opts, c->optlen);
	if (c->file)
		memcpy(buf + 108, c->file, c->filelen);
	if (c->sname)
		memcpy(buf + 44, c->sname, c->snamelen);
	if (c->patch_off || c->patch)
		buf[c->patch_off] = c->patch;
	return c->len ? c->len : n;
}

static const struct req_case parse_cases[] = {
	{ "minimal discover", O("\x35\x01\x01\xff"), 0, 0, NULL, 0, NULL, 0, 0, NULL },
	{ "pads before and after", O("\x00\x00\x35\x01\x03\xff\x00\x00"), 0, 0, NULL, 0, NULL, 0, 0, NULL },
	{ "bytes after the end are not read", O("\x35\x01\x01\xff\x12\x34"), 0, 0, NULL, 0, NULL, 0, 0, NULL },
	{ "unknown option repeated", O("\x35\x01\x01\xe0\x01\xaa\xe0\x01\xbb\xff"), 0, 0, NULL, 0, NULL, 0, 0, NULL },
	{ "empty unknown option", O("\x35\x01\x01\xaf\x00\xff"), 0, 0, NULL, 0, NULL, 0, 0, NULL },
	{ "PXE discover", O("\x35\x01\x01\x3c\x20PXEClient:Arch:00000:UNDI:002001"
	    "\x5d\x02\x00\x00\x61\x11\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b"
	    "\x0c\x0d\x0e\x0f\x10\x37\x03\x01\x03\x43\xff"), 0, 0, NULL, 0, NULL, 0, 0, NULL },
	{ "overload 3: file then sname", O("\x34\x01\x03\xff"), 0, 0,
	    O("\x35\x01\x01\xff"), O("\x0c\x04host\xff"), 0, NULL },
	{ "truncated header", O(""), 0, 0, NULL, 0, NULL, 0, 100,
	    "truncated: 100 bytes, the BOOTP header and cookie need 240" },
	{ "oversize datagram", O("\x35\x01\x01\xff"), 0, 0, NULL, 0, NULL, 0, 1473,
	    "1473 bytes: larger than 1472" },
	{ "a reply, not a request", O("\x35\x01\x01\xff"), 0, 2, NULL, 0, NULL, 0, 0,
	    "op 2: expected 1 (BOOTREQUEST)" },
	{ "not Ethernet", O("\x35\x01\x01\xff"), 1, 6, NULL, 0, NULL, 0, 0,
	    "htype 6: only Ethernet (1) is served" },
	{ "hlen 16", O("\x35\x01\x01\xff"), 2, 16, NULL, 0, NULL, 0, 0,
	    "hlen 16: an Ethernet address has 6 bytes" },
	{ "hops 17", O("\x35\x01\x01\xff"), 3, 17, NULL, 0, NULL, 0, 0,
	    "hops 17: more than 16 relays" },
	{ "bad cookie", O("\x35\x01\x01\xff"), 239, 0, NULL, 0, NULL, 0, 0,
	    "no DHCP magic cookie (plain BOOTP is not served)" },
	{ "multicast chaddr", O("\x35\x01\x01\xff"), 28, 0x01, NULL, 0, NULL, 0, 0,
	    "chaddr: not a unicast MAC" },
	{ "header and cookie only", O(""), 0, 0, NULL, 0, NULL, 0, 0,
	    "no end option in the options field" },
	{ "no end option", O("\x35\x01\x01"), 0, 0, NULL, 0, NULL, 0, 0,
	    "no end option in the options field" },
	{ "option overflows the packet", O("\x35\x01\x01\x3c\xc8PXE"), 0, 0, NULL, 0, NULL, 0, 0,
	    "option 60: length 200 overruns the options field (3 bytes left)" },
	{ "length byte missing", O("\x35\x01\x01\x3c"), 0, 0, NULL, 0, NULL, 0, 0,
	    "option 60: no length byte before the end of the options field" },
	{ "option 53 repeated", O("\x35\x01\x01\x35\x01\x03\xff"), 0, 0, NULL, 0, NULL, 0, 0,
	    "option 53: repeated" },
	{ "option 53 too long", O("\x35\x02\x01\x01\xff"), 0, 0, NULL, 0, NULL, 0, 0,
	    "option 53: bad length 2" },
	{ "option 93 odd length", O("\x35\x01\x01\x5d\x03\x00\x00\x00\xff"), 0, 0, NULL, 0, NULL, 0, 0,
	    "option 93: bad length 3" },
	{ "option 97 short", O("\x35\x01\x01\x61\x10" "0123456789abcdef\xff"), 0, 0, NULL, 0, NULL, 0, 0,
	    "option 97: bad length 16" },
	{ "option 50 short", O("\x35\x01\x03\x32\x03\x0a\x00\x00\xff"), 0, 0, NULL, 0, NULL, 0, 0,
	    "option 50: bad length 3" },
	{ "message type 0", O("\x35\x01\x00\xff"), 0, 0, NULL, 0, NULL, 0, 0,
	    "option 53: message type 0 is not one of 1..8" },
	{ "message type 13", O("\x35\x01\x0d\xff"), 0, 0, NULL, 0, NULL, 0, 0,
	    "option 53: message type 13 is not one of 1..8" },
	{ "plain BOOTP", O("\xff"), 0, 0, NULL, 0, NULL, 0, 0,
	    "no option 53 (plain BOOTP is not served)" },
	{ "overload 4", O("\x34\x01\x04\x35\x01\x01\xff"), 0, 0, NULL, 0, NULL, 0, 0,
	    "option 52: overload 4 is not 1, 2 or 3" },
	{ "overloaded file without end", O("\x34\x01\x01\x35\x01\x01\xff"), 0, 0, NULL, 0, NULL, 0, 0,
	    "no end option in the file field" },
	{ "overflow inside sname", O("\x34\x01\x02\x35\x01\x01\xff"), 0, 0, NULL, 0,
	    O("\x0c\x50host"), 0, "option 12: length 80 overruns the sname field (62 bytes left)" },
	{ "option 52 inside the file field", O("\x34\x01\x01\x35\x01\x01\xff"), 0, 0,
	    O("\x34\x01\x01\xff"), NULL, 0, 0, "option 52: inside the overloaded file field" },
	{ "option 53 only in overloaded file, repeated", O("\x34\x01\x01\x35\x01\x01\xff"), 0, 0,
	    O("\x35\x01\x03\xff"), NULL, 0, 0, "option 53: repeated" },
};

static void
test_parse_table(void **state)
{
	uint8_t buf[1600];
	struct dhcp_msg m;
	char err[160];

	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(*parse_cases); i++) {
		const struct req_case *c = &parse_cases[i];
		size_t n = req_make(buf, sizeof(buf), c);
		int r;

		err[0] = '\0';
		r = dhcp_parse(buf, n, 1, &m, err, sizeof(err));
		if (c->error == NULL && r != 0)
			fail_msg("%s: rejected: %s", c->name, err);
		if (c->error && (r != -EINVAL || strcmp(err, c->error) != 0))
			fail_msg("%s: got %d \"%s\", want \"%s\"", c->name, r, err,
			    c->error);
	}
}

static void
test_parse_fields(void **state)
{
	uint8_t buf[600];
	struct dhcp_msg m;
	const uint8_t *p;
	size_t n;
	char err[160];

	(void)state;
	/* Overloaded areas are walked, and the file field is not a name. */
	n = req_make(buf, sizeof(buf), &parse_cases[6]);
	assert_int_equal(dhcp_parse(buf, n, 1, &m, err, sizeof(err)), 0);
	assert_int_equal(m.type, DHCP_DISCOVER);
	assert_string_equal(m.file, "");
	assert_non_null(p = dhcp_opt_data(&m, 12, &n));
	assert_int_equal(n, 4);
	assert_memory_equal(p, "host", 4);
	assert_int_equal(ntohl(m.xid), 0xdeadbeef);
	/* Every option's value lies inside the buffer it came from. */
	n = req_make(buf, sizeof(buf), &parse_cases[5]);
	assert_int_equal(dhcp_parse(buf, n, 1, &m, err, sizeof(err)), 0);
	for (unsigned c = 0; c < 256; c++)
		if (m.opt[c].present)
			assert_true(m.opt[c].off + m.opt[c].len <= n);
	assert_non_null(p = dhcp_opt_data(&m, 97, &n));
	assert_int_equal(n, 17);
}

struct class_case {
	const uint8_t *opts;
	size_t optlen;
	enum dhcp_client want;
	uint16_t arch;
};

static const struct class_case class_cases[] = {
	{ O("\x35\x01\x01\xff"), DHCP_CLIENT_OTHER, 0 },
	{ O("\x35\x01\x01\x3c\x0cudhcp 1.35.0\xff"), DHCP_CLIENT_OTHER, 0 },
	{ O("\x35\x01\x01\x3c\x08PXEClien\xff"), DHCP_CLIENT_OTHER, 0 },
	{ O("\x35\x01\x01\x3c\x09PXEClient\xff"), DHCP_CLIENT_BIOS, 0 },
	{ O("\x35\x01\x01\x3c\x09PXEClient\x5d\x02\x00\x00\xff"), DHCP_CLIENT_BIOS, 0 },
	{ O("\x35\x01\x01\x3c\x09PXEClient\x5d\x02\x00\x07\xff"), DHCP_CLIENT_EFI64, 7 },
	{ O("\x35\x01\x01\x3c\x09PXEClient\x5d\x02\x00\x09\xff"), DHCP_CLIENT_EFI64, 9 },
	{ O("\x35\x01\x01\x3c\x09PXEClient\x5d\x04\x00\x07\x00\x00\xff"), DHCP_CLIENT_EFI64, 7 },
	{ O("\x35\x01\x01\x3c\x09PXEClient\x5d\x02\x00\x06\xff"), DHCP_CLIENT_UNSUPPORTED, 6 },
	{ O("\x35\x01\x01\x3c\x09PXEClient\x5d\x02\x00\x0b\xff"), DHCP_CLIENT_UNSUPPORTED, 11 },
	{ O("\x35\x01\x01\x3c\x20PXEClient:Arch:00007:UNDI:003016\xff"), DHCP_CLIENT_EFI64, 7 },
	{ O("\x35\x01\x01\x3c\x20PXEClient:Arch:0000x:UNDI:003016\xff"), DHCP_CLIENT_BIOS, 0 },
	{ O("\x35\x01\x01\x3c\x09PXEClient\x4d\x04iPXE\xff"), DHCP_CLIENT_IPXE, 0 },
	{ O("\x35\x01\x01\x3c\x09PXEClient\x4d\x05\x04iPXE\x5d\x02\x00\x07\xff"), DHCP_CLIENT_IPXE, 7 },
	{ O("\x35\x01\x01\x3c\x09PXEClient\xaf\x03\x01\x01\x01\xff"), DHCP_CLIENT_IPXE, 0 },
	{ O("\x35\x01\x01\x3c\x09PXEClient\x4d\x04gPXE\xff"), DHCP_CLIENT_BIOS, 0 },
	/* iPXE markers without PXEClient: not a PXE client at all. */
	{ O("\x35\x01\x01\x4d\x04iPXE\xff"), DHCP_CLIENT_OTHER, 0 },
};

static void
test_classify_table(void **state)
{
	uint8_t buf[600];
	struct dhcp_msg m;
	char err[160];
	uint16_t arch;

	(void)state;
	for (size_t i = 0; i < sizeof(class_cases) / sizeof(*class_cases); i++) {
		struct req_case rc = { "class", class_cases[i].opts,
		    class_cases[i].optlen, 0, 0, NULL, 0, NULL, 0, 0, NULL };
		size_t n = req_make(buf, sizeof(buf), &rc);
		enum dhcp_client c;

		if (dhcp_parse(buf, n, 1, &m, err, sizeof(err)) != 0)
			fail_msg("case %zu: %s", i, err);
		c = dhcp_classify(&m, &arch);
		if (c != class_cases[i].want || arch != class_cases[i].arch)
			fail_msg("case %zu: got %s arch %u, want %s arch %u", i,
			    dhcp_client_name(c), arch,
			    dhcp_client_name(class_cases[i].want),
			    class_cases[i].arch);
	}
}

static uint32_t
ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

/* hvd on 10.0.0.1/24, boot server 10.0.0.2; filled in by setup(). */
static struct dhcp_site site = {
	.mode = DHCP_PROXY,
	.url = "http://10.0.0.2:8080/boot/ipxe",
	.lease_s = 600,
};

static int
setup(void **state)
{
	(void)state;
	site.addr = ip("10.0.0.1");
	site.mask = ip("255.255.255.0");
	site.boot_server = ip("10.0.0.2");
	return 0;
}

/* Builds a reply to the request in rc and parses it back. */
static void
reply_of(const struct req_case *rc, const struct dhcp_answer *a,
    uint8_t *req, uint8_t *out, struct dhcp_msg *back, size_t *outlen)
{
	struct dhcp_msg m;
	char err[160];
	size_t n = req_make(req, 600, rc);

	assert_int_equal(dhcp_parse(req, n, 1, &m, err, sizeof(err)), 0);
	assert_int_equal(dhcp_build(&m, a, out, DHCP_REPLY_MAX, outlen), 0);
	assert_true(*outlen >= 300 && *outlen <= DHCP_REPLY_MAX);
	if (dhcp_parse(out, *outlen, 2, back, err, sizeof(err)) != 0)
		fail_msg("reply does not parse: %s", err);
	assert_int_equal(back->xid, m.xid);
	assert_memory_equal(back->chaddr, m.chaddr, 6);
}

static void
assert_opt(const struct dhcp_msg *m, uint8_t code, const void *want,
    size_t wantlen)
{
	const uint8_t *p;
	size_t n;

	if ((p = dhcp_opt_data(m, code, &n)) == NULL)
		fail_msg("option %u missing", code);
	assert_int_equal(n, wantlen);
	assert_memory_equal(p, want, n);
}

static void
test_build_proxy(void **state)
{
	static const struct req_case rc = { "bios", O("\x35\x01\x01\x3c\x09PXEClient"
	    "\x5d\x02\x00\x00\x61\x11\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a"
	    "\x0b\x0c\x0d\x0e\x0f\x10\xff"), 0, 0, NULL, 0, NULL, 0, 0, NULL };
	static const uint8_t pxe43[] = { 6, 1, 8, 255 };
	uint8_t req[600], out[DHCP_REPLY_MAX];
	struct dhcp_msg m, back;
	struct dhcp_answer a;
	const char *why = NULL;
	char err[160];
	size_t n;

	(void)state;
	n = req_make(req, sizeof(req), &rc);
	assert_int_equal(dhcp_parse(req, n, 1, &m, err, sizeof(err)), 0);
	assert_int_equal(dhcp_proxy_answer(&site, &m, 67, &a, &why), 0);
	reply_of(&rc, &a, req, out, &back, &n);
	assert_int_equal(back.type, DHCP_OFFER);
	assert_int_equal(back.yiaddr, 0);
	assert_int_equal(back.siaddr, ip("10.0.0.2"));
	assert_string_equal(back.file, "undionly.kpxe");
	assert_opt(&back, 54, &site.addr, 4);
	assert_opt(&back, 60, "PXEClient", 9);
	assert_opt(&back, 43, pxe43, sizeof(pxe43));
	assert_opt(&back, 66, "10.0.0.2", 8);
	assert_opt(&back, 67, "undionly.kpxe", 13);
	assert_opt(&back, 97, req + 240 + 3 + 11 + 4 + 2, 17);
	assert_false(back.opt[51].present);
	assert_false(back.opt[1].present);
}

static void
test_build_full_and_nak(void **state)
{
	static const struct req_case rc = { "req", O("\x35\x01\x03\x32\x04\x0a\x00"
	    "\x00\x64\xff"), 0, 0, NULL, 0, NULL, 0, 0, NULL };
	uint8_t req[600], out[DHCP_REPLY_MAX];
	struct dhcp_msg back;
	struct dhcp_answer a = {
		.type = DHCP_ACK, .yiaddr = ip("10.0.0.100"),
		.server_id = site.addr, .mask = site.mask,
		.router = ip("10.0.0.1"), .dns = ip("10.0.0.53"), .lease_s = 600,
	};
	uint32_t v;
	size_t n;

	(void)state;
	reply_of(&rc, &a, req, out, &back, &n);
	assert_int_equal(back.type, DHCP_ACK);
	assert_int_equal(back.yiaddr, ip("10.0.0.100"));
	v = htonl(600);
	assert_opt(&back, 51, &v, 4);
	v = htonl(300);
	assert_opt(&back, 58, &v, 4);
	v = htonl(525);
	assert_opt(&back, 59, &v, 4);
	assert_opt(&back, 1, &site.mask, 4);
	v = ip("10.0.0.1");
	assert_opt(&back, 3, &v, 4);
	v = ip("10.0.0.53");
	assert_opt(&back, 6, &v, 4);
	assert_false(back.opt[60].present);
	assert_false(back.opt[67].present);
	assert_string_equal(back.file, "");

	memset(&a, 0, sizeof(a));
	a.type = DHCP_NAK;
	a.server_id = site.addr;
	a.yiaddr = ip("10.0.0.100");
	a.file = "ignored.kpxe";
	a.message = "requested address not available";
	reply_of(&rc, &a, req, out, &back, &n);
	assert_int_equal(back.type, DHCP_NAK);
	assert_int_equal(back.yiaddr, 0);
	assert_string_equal(back.file, "");
	assert_opt(&back, 56, a.message, strlen(a.message));
	assert_false(back.opt[51].present);
}

static void
test_build_bounds(void **state)
{
	static const struct req_case rc = { "req", O("\x35\x01\x01\xff"), 0, 0,
	    NULL, 0, NULL, 0, 0, NULL };
	char longfile[DHCP_FILE_MAX + 2];
	uint8_t req[600], out[DHCP_REPLY_MAX];
	struct dhcp_msg m;
	struct dhcp_answer a = { .type = DHCP_OFFER, .proxy = true,
	    .pxe_bypass = true, .lease_s = 60, .mask = 1, .router = 1, .dns = 1 };
	char err[160];
	size_t n;

	(void)state;
	n = req_make(req, sizeof(req), &rc);
	assert_int_equal(dhcp_parse(req, n, 1, &m, err, sizeof(err)), 0);
	memset(longfile, 'a', sizeof(longfile) - 1);
	longfile[sizeof(longfile) - 1] = '\0';
	a.file = longfile;
	assert_int_equal(dhcp_build(&m, &a, out, sizeof(out), &n), -EMSGSIZE);
	longfile[DHCP_FILE_MAX] = '\0';
	assert_int_equal(dhcp_build(&m, &a, out, sizeof(out), &n), 0);
	/* The same reply cannot fit the BOOTP minimum: refused, not cut. */
	assert_int_equal(dhcp_build(&m, &a, out, 300, &n), -EMSGSIZE);
	assert_int_equal(n, 0);
	assert_int_equal(dhcp_build(&m, &a, out, 200, &n), -EMSGSIZE);
}

struct proxy_case {
	const char *name;
	const uint8_t *opts;
	size_t optlen;
	uint16_t port;
	int want;			/* answer type, or -ENOENT */
	const char *file;
	bool bypass;
	const char *why;
};

#define PXE_BIOS "\x3c\x09PXEClient\x5d\x02\x00\x00"
#define PXE_EFI "\x3c\x09PXEClient\x5d\x02\x00\x07"
#define SID_OURS "\x36\x04\x0a\x00\x00\x01"
#define SID_OTHER "\x36\x04\x0a\x00\x00\x09"

static const struct proxy_case proxy_cases[] = {
	{ "BIOS discover", O("\x35\x01\x01" PXE_BIOS "\xff"), 67, DHCP_OFFER,
	    "undionly.kpxe", true, NULL },
	{ "UEFI discover", O("\x35\x01\x01" PXE_EFI "\xff"), 67, DHCP_OFFER,
	    "ipxe.efi", false, NULL },
	{ "UEFI arch 9", O("\x35\x01\x01\x3c\x09PXEClient\x5d\x02\x00\x09\xff"), 67,
	    DHCP_OFFER, "ipxe.efi", false, NULL },
	{ "iPXE discover", O("\x35\x01\x01" PXE_BIOS "\x4d\x04iPXE\xff"), 67,
	    DHCP_OFFER, "http://10.0.0.2:8080/boot/ipxe", false, NULL },
	{ "iPXE on UEFI (175)", O("\x35\x01\x01" PXE_EFI "\xaf\x01\x00\xff"), 67,
	    DHCP_OFFER, "http://10.0.0.2:8080/boot/ipxe", false, NULL },
	{ "non-PXE discover", O("\x35\x01\x01\x3c\x0cudhcp 1.35.0\xff"), 67, -ENOENT,
	    NULL, false, "not a PXE client" },
	{ "no vendor class", O("\x35\x01\x01\xff"), 67, -ENOENT, NULL, false,
	    "not a PXE client" },
	{ "IA32 UEFI", O("\x35\x01\x01\x3c\x09PXEClient\x5d\x02\x00\x06\xff"), 67,
	    -ENOENT, NULL, false, "no loader for this PXE architecture" },
	{ "request to port 4011", O("\x35\x01\x03" PXE_EFI "\xff"), 4011, DHCP_ACK,
	    "ipxe.efi", false, NULL },
	{ "discover to port 4011", O("\x35\x01\x01" PXE_EFI "\xff"), 4011, -ENOENT,
	    NULL, false, "only REQUEST is served on port 4011" },
	{ "request for hvd on 67", O("\x35\x01\x03" PXE_BIOS SID_OURS "\xff"), 67,
	    DHCP_ACK, "undionly.kpxe", true, NULL },
	{ "request for another server", O("\x35\x01\x03" PXE_BIOS SID_OTHER "\xff"),
	    67, -ENOENT, NULL, false, "REQUEST for another server" },
	{ "request naming no server", O("\x35\x01\x03" PXE_BIOS "\xff"), 67,
	    -ENOENT, NULL, false, "REQUEST for another server" },
	{ "non-PXE request for hvd", O("\x35\x01\x03" SID_OURS "\xff"), 67, -ENOENT,
	    NULL, false, "not a PXE client" },
	{ "inform", O("\x35\x01\x08" PXE_BIOS "\xff"), 67, -ENOENT, NULL, false,
	    "message type not served in proxy mode" },
	{ "release", O("\x35\x01\x07" PXE_BIOS SID_OURS "\xff"), 67, -ENOENT, NULL,
	    false, "message type not served in proxy mode" },
};

static void
test_proxy_table(void **state)
{
	uint8_t buf[600];
	struct dhcp_msg m;
	struct dhcp_answer a;
	char err[160];

	(void)state;
	for (size_t i = 0; i < sizeof(proxy_cases) / sizeof(*proxy_cases); i++) {
		const struct proxy_case *c = &proxy_cases[i];
		struct req_case rc = { c->name, c->opts, c->optlen, 0, 0, NULL, 0,
		    NULL, 0, 0, NULL };
		const char *why = NULL;
		size_t n = req_make(buf, sizeof(buf), &rc);
		int r;

		if (dhcp_parse(buf, n, 1, &m, err, sizeof(err)) != 0)
			fail_msg("%s: %s", c->name, err);
		r = dhcp_proxy_answer(&site, &m, c->port, &a, &why);
		if (c->want < 0) {
			if (r != c->want || why == NULL || strcmp(why, c->why) != 0)
				fail_msg("%s: got %d (%s), want ignored: %s", c->name,
				    r, why ? why : "-", c->why);
			continue;
		}
		if (r != 0)
			fail_msg("%s: ignored: %s", c->name, why);
		assert_int_equal(a.type, c->want);
		assert_string_equal(a.file, c->file);
		assert_int_equal(a.pxe_bypass, c->bypass);
		assert_true(a.proxy);
		assert_int_equal(a.yiaddr, 0);
		assert_int_equal(a.siaddr, site.boot_server);
		assert_int_equal(a.server_id, site.addr);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_fields),
		cmocka_unit_test(test_classify_table),
		cmocka_unit_test(test_build_proxy),
		cmocka_unit_test(test_build_full_and_nak),
		cmocka_unit_test(test_build_bounds),
		cmocka_unit_test(test_proxy_table),
	};

	log_init(true, LOG_LEVEL_ERROR, "test");
	return cmocka_run_group_tests(tests, setup, NULL);
}
