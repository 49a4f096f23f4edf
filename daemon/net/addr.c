/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvd's own addresses, one rule for all of them: where hosts and iPXE
 * reach hvd (the boot URL, the agent address written into overlays, the
 * VTEP the mesh is anchored on) and how a host and port are written
 * ("[fd00::1]:8471" for IPv6, "10.0.0.1:8471" for IPv4).
 *
 * The address others use is, in order: `boot-server` (the operator says
 * so), else the listener's own address when it is bound to one, else the
 * boot interface's address (topology.c), else 127.0.0.1.  Ports are the
 * ones the listeners actually bound (an ephemeral port included).
 *
 * Must never: resolve a name, or return a pointer into a static buffer.
 */
#include <stdio.h>
#include <string.h>

#include "net.h"

/* Bound to every address: the listener itself says nothing about which. */
static bool
addr_is_wildcard(const char *host)
{
	return host == NULL || host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 ||
	    strcmp(host, "::") == 0;
}

void
addr_join(const char *host, uint16_t port, char *buf, size_t len)
{
	snprintf(buf, len, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
}

const char *
addr_self(const struct hvd *hvd, const char *listen_host, char *buf,
    size_t len)
{
	const char *c = hvd->conf->boot_server;

	if (c[0] == '\0')
		c = !addr_is_wildcard(listen_host) ? listen_host :
		    topology_boot_address() ? topology_boot_address() : "127.0.0.1";
	snprintf(buf, len, "%s", c);
	return buf;
}

void
addr_boot_url(const struct hvd *hvd, char *buf, size_t len)
{
	const struct hvd_config *c = hvd->conf;
	char host[64], hp[96];

	/* Without hvd's HTTP boot, iPXE is sent to port 80 of the same
	 * address: an operator's own web server there may serve the scripts. */
	addr_self(hvd, c->boot_http ? c->boot_http_host : NULL, host,
	    sizeof(host));
	addr_join(host, c->boot_http ? http_boot_port() : 80, hp, sizeof(hp));
	snprintf(buf, len, "http://%s", hp);
}

void
addr_agents(const struct hvd *hvd, char *buf, size_t len)
{
	char host[64];

	addr_self(hvd, hvd->conf->agent_listen_host, host, sizeof(host));
	addr_join(host, agents_port(), buf, len);
}

const char *
addr_anchor(const struct hvd *hvd, char *buf, size_t len)
{
	if (hvd->conf->boot_server[0] == '\0' && topology_boot_address() == NULL)
		return NULL;
	return addr_self(hvd, NULL, buf, len);
}
