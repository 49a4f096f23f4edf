/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * VM placement: a pure function from the hosts' capacity (telemetry and the
 * VMs already placed) and a spec's constraints to one host, or a refusal
 * that says, host by host, why nothing fits.
 *
 * Capacity is not overcommitted: a host offers the memory Xen reports free
 * less the memory of VMs placed there that are not running yet (Xen does
 * not see them), and its physical CPUs less the vCPUs of every VM placed
 * there.  A draining host takes nothing.  Among the hosts that fit, the one with the most free memory wins
 * (VMs spread), then the one with the most free CPUs, then the name.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "wire.h"

/* "key=value" against a labels object; "key=" matches an empty value. */
static bool
sched_label_matches(const char *labels, const char *want)
{
	const char *eq = strchr(want, '=');
	char key[128];
	json_t *l, *v;
	bool ok;

	if (eq == NULL || (size_t)(eq - want) >= sizeof(key))
		return false;
	memcpy(key, want, (size_t)(eq - want));
	key[eq - want] = '\0';
	if ((l = json_loads(labels ? labels : "{}", 0, NULL)) == NULL)
		return false;
	v = json_object_get(l, key);
	ok = json_is_string(v) && strcmp(json_string_value(v), eq + 1) == 0;
	json_decref(l);
	return ok;
}

static void sched_why(char *err, size_t errlen, size_t *used,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Appends "; " and one host's reason to err. */
static void
sched_why(char *err, size_t errlen, size_t *used, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*used + 2 >= errlen)
		return;
	memcpy(err + *used, "; ", 3);
	*used += 2;
	va_start(ap, fmt);
	n = vsnprintf(err + *used, errlen - *used, fmt, ap);
	va_end(ap);
	if (n > 0)
		*used += (size_t)n < errlen - *used ? (size_t)n : errlen - *used - 1;
}

int
sched_pick(const struct sched_host *hosts, size_t n, const struct vm_spec *s,
    size_t *pick, char *err, size_t errlen)
{
	size_t best = n, used;
	int k;

	k = snprintf(err, errlen, "no host fits %u vCPU%s and %llu MiB%s%s%s%s",
	    s->vcpus, s->vcpus == 1 ? "" : "s",
	    (unsigned long long)s->memory_mib,
	    s->place_host[0] ? " on host " : "", s->place_host,
	    s->place_label[0] ? " with label " : "", s->place_label);
	used = k > 0 ? (size_t)k : 0;
	if (n == 0)
		sched_why(err, errlen, &used, "there are no hosts");
	for (size_t i = 0; i < n; i++) {
		const struct sched_host *h = &hosts[i];

		if (s->place_host[0] && strcmp(h->name, s->place_host) != 0)
			continue;
		if (!h->up) {
			sched_why(err, errlen, &used, "%s is not up", h->name);
			continue;
		}
		if (h->draining) {
			sched_why(err, errlen, &used, "%s is draining", h->name);
			continue;
		}
		if (!h->has_xen) {
			sched_why(err, errlen, &used, "%s reports no Xen", h->name);
			continue;
		}
		if (s->place_label[0] && !sched_label_matches(h->labels,
		    s->place_label)) {
			sched_why(err, errlen, &used, "%s lacks the label", h->name);
			continue;
		}
		if (s->anti_affinity[0] && h->holds_group) {
			sched_why(err, errlen, &used, "%s already runs a VM of group "
			    "%s", h->name, s->anti_affinity);
			continue;
		}
		if (h->free_mib < s->memory_mib) {
			sched_why(err, errlen, &used, "%s has %llu MiB free",
			    h->name, (unsigned long long)h->free_mib);
			continue;
		}
		if (h->free_vcpus < s->vcpus) {
			sched_why(err, errlen, &used, "%s has %u CPUs free",
			    h->name, h->free_vcpus);
			continue;
		}
		if (best == n || h->free_mib > hosts[best].free_mib ||
		    (h->free_mib == hosts[best].free_mib &&
		    (h->free_vcpus > hosts[best].free_vcpus ||
		    (h->free_vcpus == hosts[best].free_vcpus &&
		    strcmp(h->name, hosts[best].name) < 0))))
			best = i;
	}
	if (s->place_host[0] && best == n && used == (size_t)k)
		sched_why(err, errlen, &used, "there is no host %s",
		    s->place_host);
	if (best == n)
		return -ENOSPC;
	*pick = best;
	err[0] = '\0';
	return 0;
}
