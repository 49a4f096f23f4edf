/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The DHCP wire format (RFC 2131, 2132) with the PXE 2.1 and iPXE options
 * hvd reads: a strict parser and a bounded reply builder, both pure
 * functions over caller-owned buffers.  dhcp.c owns the sockets and the
 * decisions; fuzz_dhcp drives everything here.
 *
 * The parser checks the fixed BOOTP header (op, htype 1, hlen 6, the magic
 * cookie), walks every option area with each length checked against the
 * area's end, follows option overload (52) into file then sname, and
 * requires an end option in every area it walks.  The options hvd
 * interprets must have their RFC length and may appear once; options it
 * does not interpret are skipped, since every client sends some.  Each
 * rejection names the field or option.
 *
 * Must never: read outside the buffer, trust a length byte, write past the
 * reply buffer, or interpret the file field as a name when it is
 * overloaded with options.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wire.h"

#define BOOTP_HDR_LEN	236
#define BOOTP_SNAME_OFF	44
#define BOOTP_SNAME_LEN	64
#define BOOTP_FILE_OFF	108
#define BOOTP_FILE_LEN	128
#define DHCP_COOKIE_OFF	236
#define DHCP_OPTS_OFF	240
#define BOOTP_MIN_REPLY	300	/* RFC 1542: some clients drop shorter */

static const uint8_t dhcp_cookie[4] = { 99, 130, 83, 99 };

/* The options hvd interprets, in requests or in its own replies: their
 * value length bounds and, for lists, the size of one element. */
static const struct {
	uint8_t code, min, max, unit;
} dhcp_known[] = {
	{ 1, 4, 4, 1 },		/* subnet mask */
	{ 3, 4, 252, 4 },	/* routers */
	{ 6, 4, 252, 4 },	/* DNS servers */
	{ 12, 1, 255, 1 },	/* host name */
	{ 43, 1, 255, 1 },	/* vendor options (PXE) */
	{ 50, 4, 4, 1 },	/* requested address */
	{ 51, 4, 4, 1 },	/* lease time */
	{ 52, 1, 1, 1 },	/* option overload */
	{ 53, 1, 1, 1 },	/* message type */
	{ 54, 4, 4, 1 },	/* server identifier */
	{ 56, 1, 255, 1 },	/* message */
	{ 57, 2, 2, 1 },	/* maximum message size */
	{ 58, 4, 4, 1 },	/* T1 */
	{ 59, 4, 4, 1 },	/* T2 */
	{ 60, 1, 255, 1 },	/* vendor class */
	{ 61, 2, 255, 1 },	/* client identifier */
	{ 66, 1, 255, 1 },	/* TFTP server name */
	{ 67, 1, 255, 1 },	/* boot file name */
	{ 77, 1, 255, 1 },	/* user class */
	{ 93, 2, 254, 2 },	/* client system architectures */
	{ 97, 17, 17, 1 },	/* client machine identifier (UUID) */
};

static int dhcp_reject(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
dhcp_reject(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int
dhcp_known_index(uint8_t code)
{
	for (size_t i = 0; i < sizeof(dhcp_known) / sizeof(*dhcp_known); i++)
		if (dhcp_known[i].code == code)
			return (int)i;
	return -1;
}

/*
 * Walks the options in buf[off, end).  Every iteration consumes at least
 * one byte, so the walk is bounded by the area's size.
 */
static int
dhcp_parse_area(struct dhcp_msg *m, size_t off, size_t end, const char *area,
    bool main_area, char *err, size_t errlen)
{
	const uint8_t *b = m->buf;
	size_t p = off;

	while (p < end) {
		uint8_t code = b[p], len;
		int k;

		if (code == 0) {
			p++;
			continue;
		}
		if (code == 255)
			return 0;
		if (p + 1 >= end)
			return dhcp_reject(err, errlen, "option %u: no length byte "
			    "before the end of the %s", code, area);
		len = b[p + 1];
		if (len > end - p - 2)
			return dhcp_reject(err, errlen, "option %u: length %u "
			    "overruns the %s (%zu bytes left)", code, len, area,
			    end - p - 2);
		if (code == 52 && !main_area)
			return dhcp_reject(err, errlen, "option 52: inside the "
			    "overloaded %s", area);
		if ((k = dhcp_known_index(code)) >= 0) {
			if (m->opt[code].present)
				return dhcp_reject(err, errlen, "option %u: "
				    "repeated", code);
			if (len < dhcp_known[k].min || len > dhcp_known[k].max ||
			    len % dhcp_known[k].unit != 0)
				return dhcp_reject(err, errlen, "option %u: bad "
				    "length %u", code, len);
		}
		if (!m->opt[code].present) {
			m->opt[code].present = true;
			m->opt[code].off = (uint16_t)(p + 2);
			m->opt[code].len = len;
		}
		p += 2 + (size_t)len;
	}
	return dhcp_reject(err, errlen, "no end option in the %s", area);
}

int
dhcp_parse(const uint8_t *buf, size_t len, uint8_t op, struct dhcp_msg *m,
    char *err, size_t errlen)
{
	uint8_t overload = 0;
	int r;

	memset(m, 0, sizeof(*m));
	m->buf = buf;
	if (len < DHCP_OPTS_OFF)
		return dhcp_reject(err, errlen, "truncated: %zu bytes, the BOOTP "
		    "header and cookie need %d", len, DHCP_OPTS_OFF);
	if (len > DHCP_PACKET_MAX)
		return dhcp_reject(err, errlen, "%zu bytes: larger than %d", len,
		    DHCP_PACKET_MAX);
	if (buf[0] != op)
		return dhcp_reject(err, errlen, "op %u: expected %s", buf[0],
		    op == 1 ? "1 (BOOTREQUEST)" : "2 (BOOTREPLY)");
	if (buf[1] != 1)
		return dhcp_reject(err, errlen, "htype %u: only Ethernet (1) is "
		    "served", buf[1]);
	if (buf[2] != 6)
		return dhcp_reject(err, errlen, "hlen %u: an Ethernet address "
		    "has 6 bytes", buf[2]);
	if (buf[3] > 16)
		return dhcp_reject(err, errlen, "hops %u: more than 16 relays",
		    buf[3]);
	if (memcmp(buf + DHCP_COOKIE_OFF, dhcp_cookie, 4) != 0)
		return dhcp_reject(err, errlen, "no DHCP magic cookie (plain "
		    "BOOTP is not served)");
	m->op = buf[0];
	m->hops = buf[3];
	memcpy(&m->xid, buf + 4, 4);
	memcpy(&m->secs, buf + 8, 2);
	memcpy(&m->flags, buf + 10, 2);
	memcpy(&m->ciaddr, buf + 12, 4);
	memcpy(&m->yiaddr, buf + 16, 4);
	memcpy(&m->siaddr, buf + 20, 4);
	memcpy(&m->giaddr, buf + 24, 4);
	memcpy(m->chaddr, buf + 28, 6);
	/* A request must come from a real station: not zero, not group. */
	if (op == 1 && ((m->chaddr[0] & 1) ||
	    !(m->chaddr[0] | m->chaddr[1] | m->chaddr[2] | m->chaddr[3] |
	    m->chaddr[4] | m->chaddr[5])))
		return dhcp_reject(err, errlen, "chaddr: not a unicast MAC");

	if ((r = dhcp_parse_area(m, DHCP_OPTS_OFF, len, "options field", true,
	    err, errlen)) < 0)
		return r;
	if (m->opt[52].present) {
		overload = buf[m->opt[52].off];
		if (overload < 1 || overload > 3)
			return dhcp_reject(err, errlen, "option 52: overload %u "
			    "is not 1, 2 or 3", overload);
		/* RFC 2131 4.1: the file field first, then sname. */
		if ((overload & 1) && (r = dhcp_parse_area(m, BOOTP_FILE_OFF,
		    BOOTP_FILE_OFF + BOOTP_FILE_LEN, "file field", false, err,
		    errlen)) < 0)
			return r;
		if ((overload & 2) && (r = dhcp_parse_area(m, BOOTP_SNAME_OFF,
		    BOOTP_SNAME_OFF + BOOTP_SNAME_LEN, "sname field", false, err,
		    errlen)) < 0)
			return r;
	}
	if (!(overload & 1)) {
		memcpy(m->file, buf + BOOTP_FILE_OFF, DHCP_FILE_MAX);
		m->file[DHCP_FILE_MAX] = '\0';
	}
	if (!m->opt[53].present)
		return dhcp_reject(err, errlen, "no option 53 (plain BOOTP is "
		    "not served)");
	m->type = buf[m->opt[53].off];
	if (m->type < DHCP_DISCOVER || m->type > DHCP_INFORM)
		return dhcp_reject(err, errlen, "option 53: message type %u is "
		    "not one of 1..8", m->type);
	return 0;
}

const uint8_t *
dhcp_opt_data(const struct dhcp_msg *m, uint8_t code, size_t *len)
{
	if (!m->opt[code].present)
		return NULL;
	*len = m->opt[code].len;
	return m->buf + m->opt[code].off;
}

bool
dhcp_opt_addr(const struct dhcp_msg *m, uint8_t code, uint32_t *addr)
{
	const uint8_t *p;
	size_t n;

	if ((p = dhcp_opt_data(m, code, &n)) == NULL || n != 4)
		return false;
	memcpy(addr, p, 4);
	return true;
}

/* "PXEClient:Arch:00007:UNDI:003016" carries the architecture too. */
static bool
dhcp_vendor_arch(const uint8_t *v, size_t n, uint16_t *arch)
{
	unsigned a = 0;

	if (n < 20 || memcmp(v + 9, ":Arch:", 6) != 0)
		return false;
	for (size_t i = 15; i < 20; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		a = a * 10 + (unsigned)(v[i] - '0');
	}
	if (a > 0xffff)
		return false;
	*arch = (uint16_t)a;
	return true;
}

enum dhcp_client
dhcp_classify(const struct dhcp_msg *m, uint16_t *arch)
{
	const uint8_t *v, *u;
	size_t vn = 0, un = 0;

	*arch = 0;
	v = dhcp_opt_data(m, 60, &vn);
	if (v == NULL || vn < 9 || memcmp(v, "PXEClient", 9) != 0)
		return DHCP_CLIENT_OTHER;
	if ((u = dhcp_opt_data(m, 93, &un)) != NULL)
		*arch = (uint16_t)(u[0] << 8 | u[1]);	/* the first listed */
	else
		(void)dhcp_vendor_arch(v, vn, arch);	/* else BIOS (0) */
	/* iPXE sends "iPXE" bare; RFC 3004 would length-prefix it. */
	u = dhcp_opt_data(m, 77, &un);
	if (m->opt[175].present || (u && ((un == 4 && memcmp(u, "iPXE", 4) == 0) ||
	    (un == 5 && u[0] == 4 && memcmp(u + 1, "iPXE", 4) == 0))))
		return DHCP_CLIENT_IPXE;
	switch (*arch) {
	case 0:
		return DHCP_CLIENT_BIOS;
	case 7:
	case 9:
		return DHCP_CLIENT_EFI64;
	default:
		return DHCP_CLIENT_UNSUPPORTED;
	}
}

const char *
dhcp_client_name(enum dhcp_client c)
{
	switch (c) {
	case DHCP_CLIENT_BIOS:
		return "pxe-bios";
	case DHCP_CLIENT_EFI64:
		return "pxe-efi64";
	case DHCP_CLIENT_IPXE:
		return "ipxe";
	case DHCP_CLIENT_UNSUPPORTED:
		return "pxe-unsupported-arch";
	default:
		return "other";
	}
}

/* The reply under construction; overflow latches, checked once at the end. */
struct dhcp_out {
	uint8_t *b;
	size_t cap, len;
	bool overflow;
};

static void
dhcp_put(struct dhcp_out *o, uint8_t code, const void *data, size_t len)
{
	/* Two header bytes, the value, and room left for the end option. */
	if (o->overflow || len > 255 || o->len + 2 + len + 1 > o->cap) {
		o->overflow = true;
		return;
	}
	o->b[o->len++] = code;
	o->b[o->len++] = (uint8_t)len;
	memcpy(o->b + o->len, data, len);
	o->len += len;
}

static void
dhcp_put_u32(struct dhcp_out *o, uint8_t code, uint32_t v_net)
{
	dhcp_put(o, code, &v_net, 4);
}

int
dhcp_build(const struct dhcp_msg *req, const struct dhcp_answer *a,
    uint8_t *out, size_t cap, size_t *len)
{
	struct dhcp_out o = { out, cap, DHCP_OPTS_OFF, false };
	uint8_t type = a->type;
	const uint8_t *uuid;
	size_t n, flen = a->file ? strlen(a->file) : 0;

	*len = 0;
	if (cap < BOOTP_MIN_REPLY || flen > DHCP_FILE_MAX)
		return -EMSGSIZE;
	memset(out, 0, cap);
	out[0] = 2;
	out[1] = 1;
	out[2] = 6;
	memcpy(out + 4, &req->xid, 4);
	memcpy(out + 10, &req->flags, 2);
	if (type != DHCP_NAK) {
		memcpy(out + 12, &req->ciaddr, 4);
		memcpy(out + 16, &a->yiaddr, 4);
		memcpy(out + 20, &a->siaddr, 4);
	}
	memcpy(out + 24, &req->giaddr, 4);
	memcpy(out + 28, req->chaddr, 6);
	if (type != DHCP_NAK && flen)
		memcpy(out + BOOTP_FILE_OFF, a->file, flen);
	memcpy(out + DHCP_COOKIE_OFF, dhcp_cookie, 4);

	dhcp_put(&o, 53, &type, 1);
	dhcp_put_u32(&o, 54, a->server_id);
	if (type == DHCP_NAK) {
		if (a->message)
			dhcp_put(&o, 56, a->message, strnlen(a->message, 255));
	} else {
		if (a->lease_s) {
			dhcp_put_u32(&o, 51, htonl(a->lease_s));
			dhcp_put_u32(&o, 58, htonl(a->lease_s / 2));
			dhcp_put_u32(&o, 59, htonl(a->lease_s / 8 * 7));
		}
		if (a->mask)
			dhcp_put_u32(&o, 1, a->mask);
		if (a->router)
			dhcp_put_u32(&o, 3, a->router);
		if (a->dns)
			dhcp_put_u32(&o, 6, a->dns);
		if (a->proxy)
			dhcp_put(&o, 60, "PXEClient", 9);
		if (a->pxe_bypass) {
			/* PXE discovery control (6) = 8: boot the file named
			 * here, no boot server discovery; then the end. */
			static const uint8_t pxe[] = { 6, 1, 8, 255 };

			dhcp_put(&o, 43, pxe, sizeof(pxe));
		}
		if (flen) {
			char server[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &a->siaddr, server, sizeof(server));
			dhcp_put(&o, 66, server, strlen(server));
			dhcp_put(&o, 67, a->file, flen);
			/* Some UEFI ROMs drop a PXE reply without their UUID. */
			if ((uuid = dhcp_opt_data(req, 97, &n)) != NULL)
				dhcp_put(&o, 97, uuid, n);
		}
	}
	if (o.overflow)
		return -EMSGSIZE;
	out[o.len++] = 255;
	*len = o.len < BOOTP_MIN_REPLY ? BOOTP_MIN_REPLY : o.len;
	return 0;
}

/*
 * The proxyDHCP policy: what hvd answers a PXE client, as pure functions
 * of the site (net/dhcp.c loads it from the interface and the config).
 */
bool
dhcp_boot_answer(const struct dhcp_site *s, enum dhcp_client c,
    struct dhcp_answer *a)
{
	switch (c) {
	case DHCP_CLIENT_BIOS:
		a->file = "undionly.kpxe";
		break;
	case DHCP_CLIENT_EFI64:
		/* To boot snponly.efi instead, install it as ipxe.efi in
		 * boot-root (README, "DHCP"). */
		a->file = "ipxe.efi";
		break;
	case DHCP_CLIENT_IPXE:
		a->file = s->url;
		break;
	default:
		return false;
	}
	a->siaddr = s->boot_server;
	return true;
}

int
dhcp_proxy_answer(const struct dhcp_site *s, const struct dhcp_msg *m,
    uint16_t port, struct dhcp_answer *a, const char **why)
{
	enum dhcp_client c;
	uint32_t sid;
	uint16_t arch;

	memset(a, 0, sizeof(*a));
	c = dhcp_classify(m, &arch);
	if (c == DHCP_CLIENT_OTHER) {
		*why = "not a PXE client";
		return -ENOENT;
	}
	if (port == DHCP_PROXY_PORT) {
		if (m->type != DHCP_REQUEST) {
			*why = "only REQUEST is served on port 4011";
			return -ENOENT;
		}
		a->type = DHCP_ACK;
	} else if (m->type == DHCP_DISCOVER) {
		a->type = DHCP_OFFER;
	} else if (m->type == DHCP_REQUEST) {
		if (!dhcp_opt_addr(m, 54, &sid) || sid != s->addr) {
			*why = "REQUEST for another server";
			return -ENOENT;
		}
		a->type = DHCP_ACK;
	} else {
		*why = "message type not served in proxy mode";
		return -ENOENT;
	}
	if (!dhcp_boot_answer(s, c, a)) {
		*why = "no loader for this PXE architecture";
		return -ENOENT;
	}
	a->server_id = s->addr;
	a->proxy = true;
	/* BIOS PXE ROMs want option 43 to accept a proxy offer; some UEFI
	 * firmware ignores a proxy offer that carries it. */
	a->pxe_bypass = c == DHCP_CLIENT_BIOS;
	return 0;
}
