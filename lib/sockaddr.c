/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Socket addresses as text (see sockaddr.h).  Pure: no lookups, no
 * allocation; a v4-mapped peer is reported as IPv4 so that one host has one
 * spelling whatever socket it came in on.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "sockaddr.h"

/* The address part; *v6 tells whether it needs brackets beside a port. */
static bool
sa_format(const struct sockaddr *sa, char *buf, size_t len, bool *v6)
{
	*v6 = false;
	if (sa == NULL || len == 0)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		return inet_ntop(AF_INET, &in->sin_addr, buf, len) != NULL;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf,
			    len) != NULL;
		*v6 = true;
		return inet_ntop(AF_INET6, &in6->sin6_addr, buf, len) != NULL;
	}
	return false;
}

void
sa_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	bool v6;

	if (!sa_format(sa, buf, len, &v6) && len > 0)
		snprintf(buf, len, "?");
}

uint16_t
sa_port(const struct sockaddr *sa)
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
	return 0;
}

void
sa_endpoint_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];
	bool v6;

	if (!sa_format(sa, a, sizeof(a), &v6)) {
		if (len > 0)
			snprintf(buf, len, "?");
		return;
	}
	snprintf(buf, len, v6 ? "[%s]:%u" : "%s:%u", a, sa_port(sa));
}
