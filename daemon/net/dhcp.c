/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * DHCP on the boot interface (dhcp-mode proxy or full), step 1 of the boot
 * flow (DESIGN.md section 2).
 *
 * proxy: beside the site's DHCP server, hvd answers PXE clients only, with
 * no address: a DISCOVER on port 67 gets an OFFER naming the boot server
 * and file, a REQUEST on port 4011 an ACK with the same.  A REQUEST on
 * port 67 gets that ACK only when its server identifier is hvd's own, i.e.
 * the client chose hvd's offer (busybox udhcpc and some embedded clients
 * do; PXE ROMs ask on 4011).  A REQUEST naming another server, and any
 * client that is not PXE, get nothing.
 *
 * full: hvd also leases addresses from dhcp-range (db_lease.c decides and
 * records, committed before the reply goes out), with mask, router, DNS
 * and lease time.  Clients that are not PXE get an address only.  MACs
 * hvd does not know get offers within dhcp-offer-rate and dhcp-offer-max
 * (struct lease_limit); the rest go unanswered, counted in
 * hvd_dhcp_offers_refused_total and logged once per flood, then once a
 * minute while it lasts.
 *
 * Boot file by client: BIOS undionly.kpxe, x86-64 UEFI ipxe.efi (both over
 * TFTP from siaddr), a client already running iPXE the stage-1 URL.
 *
 * Invariants: at most DHCP_BATCH datagrams are handled per wakeup; a
 * malformed datagram is counted and dropped, never fatal; replies are
 * built in a fixed buffer.  Must never: answer a non-PXE client in proxy
 * mode, answer a REQUEST meant for another server, block, log a client's
 * bytes other than its MAC and addresses, or log per refused packet.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "net.h"

#define DHCP_BATCH		32	/* datagrams read per wakeup */
#define DHCP_OFFER_HOLD_S	60	/* an offered address waits this long */
#define DHCP_RANGE_MAX		65536	/* addresses in dhcp-range */
#define DHCP_IFADDR_TTL_S	10	/* re-read the interface address */
#define DHCP_WARN_EVERY_S	60
#define DHCP_FLOOD_REPORT_S	60	/* a flood's count, once a minute */

struct dhcp_sock {
	int fd;
	uint16_t port;
	struct event *ev;
};

static struct hvd *dhcp_hvd;
static struct dhcp_sock dhcp_socks[2] = { { -1, 0, NULL }, { -1, 0, NULL } };
static uint8_t dhcp_rx[DHCP_PACKET_MAX + 1];
static struct {
	uint32_t addr, mask;		/* network order; 0: none */
	int64_t read_at;
} dhcp_if;
static int64_t dhcp_warned_at = -DHCP_WARN_EVERY_S;
static uint64_t dhcp_n_offers, dhcp_n_acks, dhcp_n_naks, dhcp_n_ignored,
    dhcp_n_malformed, dhcp_n_releases, dhcp_n_declines;
/* Strangers' bounds (full mode); about 1 MiB, hence static. */
static struct lease_limit dhcp_limit;
static uint64_t dhcp_n_refused_rate, dhcp_n_refused_held;
/* A flood: logged when it starts, then counted once a minute. */
static struct dhcp_flood {
	struct event *ev;		/* the minute's report; pending = a flood */
	uint64_t rate, held;		/* refused since the last line */
} dhcp_flood;

/*
 * The interface's first IPv4 address and mask.  One small function so the
 * topology module can take its place.
 */
static int
dhcp_iface_addr(const char *ifname, uint32_t *addr, uint32_t *mask)
{
	struct ifaddrs *ifa = NULL, *i;
	int r = -EADDRNOTAVAIL;

	if (getifaddrs(&ifa) == -1)
		return -errno;
	for (i = ifa; i; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_netmask == NULL ||
		    i->ifa_addr->sa_family != AF_INET ||
		    strcmp(i->ifa_name, ifname) != 0)
			continue;
		*addr = ((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr.s_addr;
		*mask = ((struct sockaddr_in *)(void *)i->ifa_netmask)->sin_addr.s_addr;
		r = 0;
		break;
	}
	freeifaddrs(ifa);
	return r;
}

static uint32_t
dhcp_conf_ip(const char *s)
{
	struct in_addr a;

	return s[0] && inet_pton(AF_INET, s, &a) == 1 ? a.s_addr : 0;
}

/* Rate-limits a warning that every packet would repeat. */
static bool
dhcp_warn_due(void)
{
	int64_t now = hvd_now_mono();

	if (now - dhcp_warned_at < DHCP_WARN_EVERY_S)
		return false;
	dhcp_warned_at = now;
	return true;
}

/* The settings a reply needs, from the live config and interface. */
static int
dhcp_site_load(struct dhcp_site *s)
{
	const struct hvd_config *c = dhcp_hvd->conf;
	char base[ADDR_STRLEN];
	int64_t now = hvd_now_mono();
	int r;

	if (now - dhcp_if.read_at >= DHCP_IFADDR_TTL_S || dhcp_if.addr == 0) {
		if ((r = dhcp_iface_addr(c->dhcp_interface, &dhcp_if.addr,
		    &dhcp_if.mask)) < 0) {
			dhcp_if.addr = 0;
			return r;
		}
		dhcp_if.read_at = now;
	}
	memset(s, 0, sizeof(*s));
	s->mode = c->dhcp_mode;
	s->addr = dhcp_if.addr;
	s->mask = dhcp_if.mask;
	s->boot_server = dhcp_conf_ip(c->boot_server);
	if (s->boot_server == 0)
		s->boot_server = s->addr;
	s->router = dhcp_conf_ip(c->dhcp_router);
	s->dns = dhcp_conf_ip(c->dhcp_dns);
	s->lease_s = c->dhcp_lease_s;
	/* The same base URL the HTTP boot scripts use. */
	addr_boot_url(dhcp_hvd, base, sizeof(base));
	snprintf(s->url, sizeof(s->url), "%s/boot/ipxe", base);
	return 0;
}

static void
dhcp_fmt_mac(const uint8_t *m, char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2],
	    m[3], m[4], m[5]);
}

/* Option 12 if it is a plausible host name, else "". */
static void
dhcp_hostname(const struct dhcp_msg *m, char *out, size_t outlen)
{
	const uint8_t *p;
	size_t n;

	out[0] = '\0';
	if ((p = dhcp_opt_data(m, 12, &n)) == NULL || n >= outlen)
		return;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
		    (p[i] >= '0' && p[i] <= '9') || p[i] == '-' || p[i] == '.' ||
		    p[i] == '_'))
			return;
	memcpy(out, p, n);
	out[n] = '\0';
}

static void
dhcp_client_id(const struct dhcp_msg *m, char *out, size_t outlen)
{
	const uint8_t *p;
	size_t n, o = 0;

	out[0] = '\0';
	if ((p = dhcp_opt_data(m, 61, &n)) == NULL)
		return;
	for (size_t i = 0; i < n && o + 3 <= outlen; i++, o += 2)
		snprintf(out + o, 3, "%02x", p[i]);
}

/* dhcp-range as a pool on the interface's subnet; -EINVAL if it is not. */
static int
dhcp_pool(const struct dhcp_site *s, struct lease_pool *p)
{
	const struct hvd_config *c = dhcp_hvd->conf;

	p->first = ntohl(dhcp_conf_ip(c->dhcp_range_start));
	p->last = ntohl(dhcp_conf_ip(c->dhcp_range_end));
	p->mask = ntohl(s->mask);
	p->net = ntohl(s->addr) & p->mask;
	p->server = ntohl(s->addr);
	if (p->first == 0 || p->last < p->first ||
	    (p->first & p->mask) != p->net || (p->last & p->mask) != p->net ||
	    p->last - p->first >= DHCP_RANGE_MAX)
		return -EINVAL;
	return 0;
}

/* The live config's bounds on strangers, for this pool. */
static struct lease_limit *
dhcp_limits(const struct lease_pool *p)
{
	const struct hvd_config *c = dhcp_hvd->conf;
	uint64_t size = (uint64_t)p->last - p->first + 1, n;

	n = c->dhcp_offer_max;
	if (c->dhcp_offer_max_pct) {
		n = size * c->dhcp_offer_max / 100;
		if (n == 0 && c->dhcp_offer_max > 0)
			n = 1;
	}
	dhcp_limit.held_max = (unsigned)n;
	dhcp_limit.rate = c->dhcp_offer_rate;
	return &dhcp_limit;
}

static void
dhcp_flood_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dhcp_flood *f = arg;
	const struct hvd_config *c = dhcp_hvd->conf;
	struct timeval tv = { DHCP_FLOOD_REPORT_S, 0 };

	(void)fd;
	(void)what;
	/* A quiet minute ends the flood: the next refusal starts a new one. */
	if (f->rate + f->held == 0)
		return;
	log_warnx("dhcp: refused %llu offers to MACs hvd does not know in the "
	    "last %d s: %llu over dhcp-offer-rate %u/s, %llu with "
	    "dhcp-offer-max %u addresses held",
	    (unsigned long long)(f->rate + f->held), DHCP_FLOOD_REPORT_S,
	    (unsigned long long)f->rate, c->dhcp_offer_rate,
	    (unsigned long long)f->held, dhcp_limit.held_max);
	f->rate = f->held = 0;
	evtimer_add(f->ev, &tv);
}

/* Counts a refusal (-EAGAIN rate, -EBUSY held); one line per flood. */
static void
dhcp_refused(const char *mac, int r)
{
	struct dhcp_flood *f = &dhcp_flood;
	struct timeval tv = { DHCP_FLOOD_REPORT_S, 0 };

	if (r == -EAGAIN) {
		dhcp_n_refused_rate++;
		f->rate++;
	} else {
		dhcp_n_refused_held++;
		f->held++;
	}
	if (f->ev == NULL || evtimer_pending(f->ev, NULL))
		return;
	if (r == -EAGAIN)
		log_warnx("dhcp: %s: refusing offers to MACs hvd does not know: "
		    "over dhcp-offer-rate %u/s; adopted hosts and bound leases "
		    "are still served; counted each minute while it lasts", mac,
		    dhcp_hvd->conf->dhcp_offer_rate);
	else
		log_warnx("dhcp: %s: refusing offers to MACs hvd does not know: "
		    "dhcp-offer-max %u addresses held by unconfirmed offers; "
		    "adopted hosts and bound leases are still served; counted "
		    "each minute while it lasts", mac, dhcp_limit.held_max);
	evtimer_add(f->ev, &tv);
}

/*
 * Full mode.  Returns 0 with an answer to send, 1 when the message was
 * handled and needs no reply (RELEASE, DECLINE, a refused stranger),
 * -ENOENT with *why when it is ignored.
 */
static int
dhcp_full(const struct dhcp_site *s, const struct dhcp_msg *m,
    const char *mac, struct dhcp_answer *a, const char **why)
{
	char host[64], cid[80], ipstr[INET_ADDRSTRLEN];
	struct db *db = dhcp_hvd->db;
	struct lease_pool pool;
	int64_t now = hvd_now_wall();
	uint32_t sid = 0, want = 0, ip;
	enum dhcp_client c;
	uint16_t arch;
	int r;

	memset(a, 0, sizeof(*a));
	if (dhcp_pool(s, &pool) < 0) {
		if (dhcp_warn_due())
			log_warnx("dhcp: dhcp-range %s %s is not inside %s's subnet "
			    "or spans more than %d addresses; not leasing",
			    dhcp_hvd->conf->dhcp_range_start,
			    dhcp_hvd->conf->dhcp_range_end,
			    dhcp_hvd->conf->dhcp_interface, DHCP_RANGE_MAX);
		*why = "dhcp-range unusable";
		return -ENOENT;
	}
	(void)dhcp_opt_addr(m, 50, &want);
	want = ntohl(want);
	if (dhcp_opt_addr(m, 54, &sid) && sid != s->addr) {
		*why = "addressed to another server";
		return -ENOENT;
	}
	switch (m->type) {
	case DHCP_DISCOVER:
		if ((r = db_lease_offer(db, mac, &pool, want,
		    dhcp_limits(&pool), now + DHCP_OFFER_HOLD_S, now,
		    &ip)) < 0) {
			if (r == -EAGAIN || r == -EBUSY) {
				dhcp_refused(mac, r);
				return 1;
			}
			if (r == -ENOSPC && dhcp_warn_due())
				log_warnx("dhcp: %s: no free address in dhcp-range",
				    mac);
			*why = r == -ENOSPC ? "dhcp-range exhausted" :
			    "database error";
			return -ENOENT;
		}
		a->type = DHCP_OFFER;
		a->yiaddr = htonl(ip);
		break;
	case DHCP_REQUEST:
		/* SELECTING and INIT-REBOOT name the address in option 50;
		 * RENEWING and REBINDING in ciaddr. */
		if (want == 0)
			want = ntohl(m->ciaddr);
		if (want == 0) {
			*why = "REQUEST names no address";
			return -ENOENT;
		}
		dhcp_hostname(m, host, sizeof(host));
		dhcp_client_id(m, cid, sizeof(cid));
		r = db_lease_request(db, mac, &pool, want, dhcp_limits(&pool),
		    host, cid, now + (int64_t)s->lease_s, now);
		if (r == -EAGAIN) {
			dhcp_refused(mac, r);
			return 1;
		}
		if (r == -EADDRNOTAVAIL) {
			a->type = DHCP_NAK;
			a->server_id = s->addr;
			a->message = "requested address not available";
			return 0;
		}
		if (r < 0) {
			*why = "database error";
			return -ENOENT;
		}
		a->type = DHCP_ACK;
		a->yiaddr = htonl(want);
		break;
	case DHCP_RELEASE:
	case DHCP_DECLINE:
		if (sid == 0) {
			*why = "no server identifier";
			return -ENOENT;
		}
		ip = m->type == DHCP_RELEASE ? ntohl(m->ciaddr) : want;
		r = m->type == DHCP_RELEASE ? db_lease_release(db, mac, ip, now) :
		    db_lease_decline(db, mac, ip, now + (int64_t)s->lease_s, now);
		if (r < 0) {
			*why = r == -ENOENT ? "no such lease" : "database error";
			return -ENOENT;
		}
		ip = htonl(ip);
		inet_ntop(AF_INET, &ip, ipstr, sizeof(ipstr));
		if (m->type == DHCP_RELEASE) {
			dhcp_n_releases++;
			log_info("dhcp: %s released %s", mac, ipstr);
		} else {
			dhcp_n_declines++;
			log_warnx("dhcp: %s declined %s: another station uses it; "
			    "withheld for %u s", mac, ipstr, s->lease_s);
		}
		return 1;
	default:
		*why = "message type not served";
		return -ENOENT;
	}
	a->server_id = s->addr;
	a->lease_s = s->lease_s;
	a->mask = s->mask;
	a->router = s->router;
	a->dns = s->dns;
	c = dhcp_classify(m, &arch);
	(void)dhcp_boot_answer(s, c, a);
	return 0;
}

static void
dhcp_send(struct dhcp_sock *ds, const struct dhcp_site *s,
    const struct dhcp_msg *m, const struct dhcp_answer *a,
    const struct sockaddr_in *from, const char *mac)
{
	struct sockaddr_in to = { .sin_family = AF_INET };
	uint8_t out[DHCP_REPLY_MAX];
	char dst[INET_ADDRSTRLEN], yi[INET_ADDRSTRLEN];
	size_t len;

	if (dhcp_build(m, a, out, sizeof(out), &len) < 0) {
		log_warnx("dhcp: %s: reply does not fit %d bytes", mac,
		    DHCP_REPLY_MAX);
		dhcp_n_ignored++;
		return;
	}
	/* Port 4011 answers where the request came from; port 67 answers a
	 * configured client at its address if that is on the boot subnet
	 * (hvd sends nowhere else), anyone else by broadcast. */
	if (ds->port == DHCP_PROXY_PORT && from->sin_addr.s_addr != 0) {
		to = *from;
	} else if (a->type != DHCP_NAK && m->ciaddr != 0 &&
	    (m->ciaddr & s->mask) == (s->addr & s->mask)) {
		to.sin_addr.s_addr = m->ciaddr;
		to.sin_port = htons(DHCP_CLIENT_PORT);
	} else {
		to.sin_addr.s_addr = htonl(INADDR_BROADCAST);
		to.sin_port = htons(DHCP_CLIENT_PORT);
	}
	inet_ntop(AF_INET, &to.sin_addr, dst, sizeof(dst));
	inet_ntop(AF_INET, &a->yiaddr, yi, sizeof(yi));
	if (sendto(ds->fd, out, len, MSG_DONTWAIT, (struct sockaddr *)&to,
	    sizeof(to)) == -1) {
		if (dhcp_warn_due())
			log_warn("dhcp: %s: reply to %s:%u", mac, dst,
			    ntohs(to.sin_port));
		dhcp_n_ignored++;
		return;
	}
	switch (a->type) {
	case DHCP_OFFER:
		dhcp_n_offers++;
		log_debug("dhcp: %s: offer %s, boot %s, to %s", mac, yi,
		    a->file ? a->file : "-", dst);
		break;
	case DHCP_ACK:
		dhcp_n_acks++;
		log_info("dhcp: %s: ack %s%s%s", mac, yi,
		    a->file ? ", boot " : "", a->file ? a->file : "");
		break;
	default:
		dhcp_n_naks++;
		log_info("dhcp: %s: nak (%s)", mac, a->message);
		break;
	}
}

static void
dhcp_packet(struct dhcp_sock *ds, const uint8_t *buf, size_t len,
    const struct sockaddr_in *from)
{
	struct dhcp_msg m;
	struct dhcp_site s;
	struct dhcp_answer a;
	char err[160], src[INET_ADDRSTRLEN], mac[18];
	const char *why = NULL;
	int r;

	inet_ntop(AF_INET, &from->sin_addr, src, sizeof(src));
	if (dhcp_parse(buf, len, 1, &m, err, sizeof(err)) < 0) {
		dhcp_n_malformed++;
		log_debug("dhcp: %s:%u to port %u: dropped: %s", src,
		    ntohs(from->sin_port), ds->port, err);
		return;
	}
	dhcp_fmt_mac(m.chaddr, mac);
	if (m.giaddr != 0) {
		why = "relayed (giaddr set); relays are not served";
		r = -ENOENT;
	} else if ((r = dhcp_site_load(&s)) < 0) {
		if (dhcp_warn_due())
			log_warnx("dhcp: %s has no IPv4 address; not answering",
			    dhcp_hvd->conf->dhcp_interface);
		why = "no address on the interface";
	} else if (s.mode == DHCP_PROXY) {
		r = dhcp_proxy_answer(&s, &m, ds->port, &a, &why);
	} else {
		r = dhcp_full(&s, &m, mac, &a, &why);
	}
	if (r < 0) {
		dhcp_n_ignored++;
		log_debug("dhcp: %s: type %u on port %u ignored: %s", mac, m.type,
		    ds->port, why);
		return;
	}
	if (r == 0)
		dhcp_send(ds, &s, &m, &a, from, mac);
}

static void
dhcp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dhcp_sock *ds = arg;
	struct sockaddr_in from;
	socklen_t fromlen;
	ssize_t n;

	(void)what;
	for (int i = 0; i < DHCP_BATCH; i++) {
		fromlen = sizeof(from);
		memset(&from, 0, sizeof(from));
		n = recvfrom(fd, dhcp_rx, sizeof(dhcp_rx), MSG_DONTWAIT | MSG_TRUNC,
		    (struct sockaddr *)&from, &fromlen);
		if (n == -1) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				log_warn("dhcp: port %u: receive", ds->port);
			return;
		}
		if ((size_t)n > DHCP_PACKET_MAX) {
			dhcp_n_malformed++;
			log_debug("dhcp: port %u: dropped a %zd-byte datagram: "
			    "larger than %d", ds->port, n, DHCP_PACKET_MAX);
			continue;
		}
		dhcp_packet(ds, dhcp_rx, (size_t)n, &from);
	}
}

static int
dhcp_listen(struct hvd *hvd, struct dhcp_sock *ds, uint16_t port)
{
	const char *ifname = hvd->conf->dhcp_interface;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int one = 1, r;

	ds->port = port;
	if ((ds->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		goto fail;
	/* Bound to the device, not an address: broadcasts from clients
	 * without one must arrive, and only from the boot interface. */
	if (setsockopt(ds->fd, SOL_SOCKET, SO_BINDTODEVICE, ifname,
	    (socklen_t)strlen(ifname) + 1) == -1 ||
	    setsockopt(ds->fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) == -1)
		goto fail;
	sin.sin_port = htons(port);
	if (bind(ds->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		goto fail;
	ds->ev = event_new(hvd->base, ds->fd, EV_READ | EV_PERSIST, dhcp_read_cb,
	    ds);
	if (ds->ev == NULL || event_add(ds->ev, NULL) == -1) {
		errno = ENOMEM;
		goto fail;
	}
	return 0;
fail:
	r = -errno;
	log_warn("dhcp: UDP port %u on %s", port, ifname);
	return r;
}

int
dhcp_init(struct hvd *hvd)
{
	const struct hvd_config *c = hvd->conf;
	struct dhcp_site s;
	struct lease_pool pool;
	char addr[INET_ADDRSTRLEN];
	int r;

	if (c->dhcp_mode == DHCP_OFF)
		return 0;
	dhcp_hvd = hvd;
	memset(&dhcp_if, 0, sizeof(dhcp_if));
	if ((r = dhcp_site_load(&s)) < 0) {
		log_warnx("dhcp: %s: no IPv4 address (%s)", c->dhcp_interface,
		    strerror(-r));
		goto fail;
	}
	if (c->dhcp_mode == DHCP_FULL && dhcp_pool(&s, &pool) < 0) {
		log_warnx("dhcp: dhcp-range %s %s must lie inside %s's subnet and "
		    "span at most %d addresses", c->dhcp_range_start,
		    c->dhcp_range_end, c->dhcp_interface, DHCP_RANGE_MAX);
		r = -EINVAL;
		goto fail;
	}
	if (c->dhcp_mode == DHCP_FULL) {
		db_lease_limit_init(&dhcp_limit);
		memset(&dhcp_flood, 0, sizeof(dhcp_flood));
		if ((dhcp_flood.ev = evtimer_new(hvd->base, dhcp_flood_cb,
		    &dhcp_flood)) == NULL) {
			r = -ENOMEM;
			goto fail;
		}
	}
	if ((r = dhcp_listen(hvd, &dhcp_socks[0], DHCP_SERVER_PORT)) < 0 ||
	    (c->dhcp_mode == DHCP_PROXY &&
	    (r = dhcp_listen(hvd, &dhcp_socks[1], DHCP_PROXY_PORT)) < 0))
		goto fail;
	inet_ntop(AF_INET, &s.addr, addr, sizeof(addr));
	log_info("dhcp: %s mode on %s (%s/%d)", c->dhcp_mode == DHCP_PROXY ?
	    "proxy" : "full", c->dhcp_interface, addr,
	    __builtin_popcount(s.mask));
	return 0;
fail:
	dhcp_shutdown();
	return r;
}

void
dhcp_shutdown(void)
{
	for (size_t i = 0; i < 2; i++) {
		if (dhcp_socks[i].ev)
			event_free(dhcp_socks[i].ev);
		if (dhcp_socks[i].fd != -1)
			close(dhcp_socks[i].fd);
		dhcp_socks[i].ev = NULL;
		dhcp_socks[i].fd = -1;
	}
	if (dhcp_flood.ev)
		event_free(dhcp_flood.ev);
	dhcp_flood.ev = NULL;
	dhcp_hvd = NULL;
}

void
dhcp_metrics(FILE *f)
{
	static const struct {
		const char *name, *help;
		const uint64_t *v;
	} m[] = {
		{ "offers", "DHCPOFFERs sent.", &dhcp_n_offers },
		{ "acks", "DHCPACKs sent.", &dhcp_n_acks },
		{ "naks", "DHCPNAKs sent.", &dhcp_n_naks },
		{ "ignored", "Well-formed DHCP messages not answered (not PXE "
		    "in proxy mode, for another server, relayed, ...).",
		    &dhcp_n_ignored },
		{ "malformed", "DHCP datagrams dropped by the parser.",
		    &dhcp_n_malformed },
		{ "releases", "DHCPRELEASEs applied.", &dhcp_n_releases },
		{ "declines", "DHCPDECLINEs applied.", &dhcp_n_declines },
	};

	for (size_t i = 0; i < sizeof(m) / sizeof(*m); i++)
		fprintf(f, "# HELP hvd_dhcp_%s_total %s\n"
		    "# TYPE hvd_dhcp_%s_total counter\nhvd_dhcp_%s_total %llu\n",
		    m[i].name, m[i].help, m[i].name, m[i].name,
		    (unsigned long long)*m[i].v);
	fprintf(f, "# HELP hvd_dhcp_offers_refused_total DISCOVERs (and "
	    "INIT-REBOOT REQUESTs) from MACs hvd does not know left "
	    "unanswered: over dhcp-offer-rate (rate), or with dhcp-offer-max "
	    "addresses held by unconfirmed offers (held).\n"
	    "# TYPE hvd_dhcp_offers_refused_total counter\n"
	    "hvd_dhcp_offers_refused_total{reason=\"rate\"} %llu\n"
	    "hvd_dhcp_offers_refused_total{reason=\"held\"} %llu\n",
	    (unsigned long long)dhcp_n_refused_rate,
	    (unsigned long long)dhcp_n_refused_held);
}
