/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * A socket address as text, one rule for every listener: IPv4 as dotted
 * quad, IPv6 in its compressed form, and a v4-mapped IPv6 address (a
 * dual-stack socket's IPv4 peer) as the IPv4 address it carries.
 *
 * sa_addr_str writes the address alone; sa_endpoint_str adds the port,
 * with brackets around IPv6 ("[fd00::1]:69").  Both always terminate buf
 * and write "?" for a family they do not know.  sa_port is 0 then too.
 */
#ifndef HV_SOCKADDR_H
#define HV_SOCKADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Large enough for any address sa_endpoint_str writes. */
#define SA_STRLEN	(INET6_ADDRSTRLEN + 8)

void sa_addr_str(const struct sockaddr *sa, char *buf, size_t len);
void sa_endpoint_str(const struct sockaddr *sa, char *buf, size_t len);
uint16_t sa_port(const struct sockaddr *sa);

#endif
