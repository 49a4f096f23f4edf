/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The orchestration node's own network, read through libnl: interfaces,
 * IPv4 addresses and the default route.  From them hvd picks the boot
 * interface (dhcp-interface if named, else the default route's, else the
 * first interface that is up with an IPv4 address) and the address hosts
 * use to reach it (boot-server if named).  Netlink change notifications
 * keep the caches current, so an address change needs no restart.
 *
 * Invariants: the libnl socket is non-blocking and read from the libevent
 * loop; the initial dump at start-up is the only blocking call.  Must
 * never change the kernel's state: this module only reads.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <netlink/cache.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>

#include "net.h"

static struct nl_cache_mngr *topo_mngr;
static struct nl_cache *topo_links, *topo_addrs, *topo_routes;
static struct event *topo_ev;
static struct hvd *topo_hvd;
static char topo_iface[IF_NAMESIZE];
static char topo_addr[INET_ADDRSTRLEN];
static unsigned topo_prefix;

/* The interface index of the IPv4 default route in the main table. */
static int
topo_default_ifindex(void)
{
	struct nl_object *o;
	int ifindex = 0;

	for (o = nl_cache_get_first(topo_routes); o; o = nl_cache_get_next(o)) {
		struct rtnl_route *rt = (struct rtnl_route *)o;
		struct nl_addr *dst = rtnl_route_get_dst(rt);
		struct rtnl_nexthop *nh;

		if (rtnl_route_get_family(rt) != AF_INET ||
		    rtnl_route_get_table(rt) != RT_TABLE_MAIN ||
		    (dst && nl_addr_get_prefixlen(dst) != 0) ||
		    rtnl_route_get_nnexthops(rt) < 1)
			continue;
		nh = rtnl_route_nexthop_n(rt, 0);
		ifindex = rtnl_route_nh_get_ifindex(nh);
		break;
	}
	return ifindex;
}

/* First IPv4 address on ifindex (any if 0 and the link is up, not lo). */
static bool
topo_first_addr(int ifindex, char *name, char *addr, unsigned *prefix)
{
	struct nl_object *o;

	for (o = nl_cache_get_first(topo_addrs); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		struct rtnl_link *link;
		struct nl_addr *local = rtnl_addr_get_local(a);
		int idx = rtnl_addr_get_ifindex(a);
		bool ok;

		if (rtnl_addr_get_family(a) != AF_INET || local == NULL ||
		    (ifindex && idx != ifindex))
			continue;
		if ((link = rtnl_link_get(topo_links, idx)) == NULL)
			continue;
		ok = ifindex || ((rtnl_link_get_flags(link) & IFF_UP) &&
		    !(rtnl_link_get_flags(link) & IFF_LOOPBACK));
		if (ok) {
			snprintf(name, IF_NAMESIZE, "%s", rtnl_link_get_name(link));
			inet_ntop(AF_INET, nl_addr_get_binary_addr(local), addr,
			    INET_ADDRSTRLEN);
			*prefix = (unsigned)rtnl_addr_get_prefixlen(a);
		}
		rtnl_link_put(link);
		if (ok)
			return true;
	}
	return false;
}

static void
topo_pick(void)
{
	const char *want = topo_hvd->conf->dhcp_interface;
	char name[IF_NAMESIZE] = "", addr[INET_ADDRSTRLEN] = "";
	unsigned prefix = 0;
	int ifindex = 0;

	if (want[0])
		ifindex = rtnl_link_name2i(topo_links, want);
	else
		ifindex = topo_default_ifindex();
	if (!(ifindex && topo_first_addr(ifindex, name, addr, &prefix)) &&
	    !want[0])
		topo_first_addr(0, name, addr, &prefix);
	if (want[0] && name[0] == '\0')
		snprintf(name, sizeof(name), "%s", want);
	if (strcmp(name, topo_iface) != 0 || strcmp(addr, topo_addr) != 0 ||
	    prefix != topo_prefix) {
		if (addr[0])
			log_info("topology: boot interface %s, %s/%u", name, addr,
			    prefix);
		else
			log_warnx("topology: no IPv4 address on %s; hosts cannot "
			    "be told where hvd is", name[0] ? name :
			    "any interface");
		snprintf(topo_iface, sizeof(topo_iface), "%s", name);
		snprintf(topo_addr, sizeof(topo_addr), "%s", addr);
		topo_prefix = prefix;
	}
}

static void
topo_change_cb(struct nl_cache *cache, struct nl_object *obj, int action,
    void *arg)
{
	(void)cache;
	(void)obj;
	(void)action;
	(void)arg;
	topo_pick();
}

static void
topo_read_cb(evutil_socket_t fd, short what, void *arg)
{
	int r;

	(void)fd;
	(void)what;
	(void)arg;
	/* Non-blocking: processes what the kernel has queued, then returns. */
	if ((r = nl_cache_mngr_data_ready(topo_mngr)) < 0)
		log_warnx("topology: netlink: %s", nl_geterror(r));
}

int
topology_init(struct hvd *hvd)
{
	int r;

	topo_hvd = hvd;
	if ((r = nl_cache_mngr_alloc(NULL, NETLINK_ROUTE, NL_AUTO_PROVIDE,
	    &topo_mngr)) < 0 ||
	    (r = nl_cache_mngr_add(topo_mngr, "route/link", topo_change_cb, NULL,
	    &topo_links)) < 0 ||
	    (r = nl_cache_mngr_add(topo_mngr, "route/addr", topo_change_cb, NULL,
	    &topo_addrs)) < 0 ||
	    (r = nl_cache_mngr_add(topo_mngr, "route/route", topo_change_cb, NULL,
	    &topo_routes)) < 0) {
		log_warnx("topology: netlink: %s", nl_geterror(r));
		return -EIO;
	}
	topo_ev = event_new(hvd->base, nl_cache_mngr_get_fd(topo_mngr),
	    EV_READ | EV_PERSIST, topo_read_cb, NULL);
	if (topo_ev == NULL || event_add(topo_ev, NULL) == -1)
		return -ENOMEM;
	topo_pick();
	return 0;
}

void
topology_shutdown(void)
{
	if (topo_ev)
		event_free(topo_ev);
	topo_ev = NULL;
	/* Freeing the manager frees the caches it owns. */
	if (topo_mngr)
		nl_cache_mngr_free(topo_mngr);
	topo_mngr = NULL;
	topo_links = topo_addrs = topo_routes = NULL;
	topo_iface[0] = topo_addr[0] = '\0';
}

const char *
topology_boot_address(void)
{
	return topo_addr[0] ? topo_addr : NULL;
}

json_t *
topology_json(void)
{
	json_t *ifs = json_array();
	struct nl_object *o;

	for (o = nl_cache_get_first(topo_links); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		json_t *addrs = json_array();
		struct nl_object *ao;

		for (ao = nl_cache_get_first(topo_addrs); ao;
		    ao = nl_cache_get_next(ao)) {
			struct rtnl_addr *a = (struct rtnl_addr *)ao;
			char buf[INET6_ADDRSTRLEN + 8];

			if (rtnl_addr_get_ifindex(a) != rtnl_link_get_ifindex(l) ||
			    rtnl_addr_get_local(a) == NULL)
				continue;
			nl_addr2str(rtnl_addr_get_local(a), buf, sizeof(buf));
			json_array_append_new(addrs, json_string(buf));
		}
		json_array_append_new(ifs, json_pack("{s:s, s:b, s:i, s:o}",
		    "name", rtnl_link_get_name(l), "up",
		    (rtnl_link_get_flags(l) & IFF_UP) != 0, "mtu",
		    (int)rtnl_link_get_mtu(l), "addresses", addrs));
	}
	return json_pack("{s:s, s:s?, s:i, s:o}", "boot_interface", topo_iface,
	    "boot_address", topo_addr[0] ? topo_addr : NULL, "boot_prefix",
	    (int)topo_prefix, "interfaces", ifs);
}
