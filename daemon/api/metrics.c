/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Prometheus text exposition: request counters by route, method and status,
 * inventory gauges and the standard process_* figures.
 *
 * Invariant: label values come from the route table and the method MHD
 * parsed, never raw client paths, so a scanner cannot grow the series set
 * without bound (methods are capped too).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "rest.h"

#define METRICS_SERIES_MAX	256

struct metrics_series {
	const char *route;	/* points into the static route table */
	char method[8];
	unsigned status;
	uint64_t count;
};

static struct metrics_series metrics_series[METRICS_SERIES_MAX];
static size_t metrics_nseries;
static uint64_t metrics_dropped;

void
metrics_count_request(const char *route, const char *method, unsigned status)
{
	static const char *const known[] = { "GET", "HEAD", "POST", "PUT",
	    "PATCH", "DELETE", "OPTIONS" };
	const char *m = "other";

	for (size_t i = 0; i < sizeof(known) / sizeof(*known); i++)
		if (strcmp(method, known[i]) == 0)
			m = known[i];
	for (size_t i = 0; i < metrics_nseries; i++) {
		struct metrics_series *s = &metrics_series[i];

		if (s->route == route && s->status == status &&
		    strcmp(s->method, m) == 0) {
			s->count++;
			return;
		}
	}
	if (metrics_nseries == METRICS_SERIES_MAX) {
		metrics_dropped++;
		return;
	}
	metrics_series[metrics_nseries].route = route;
	snprintf(metrics_series[metrics_nseries].method,
	    sizeof(metrics_series[0].method), "%s", m);
	metrics_series[metrics_nseries].status = status;
	metrics_series[metrics_nseries].count = 1;
	metrics_nseries++;
}

static void
metrics_process(FILE *f)
{
	unsigned long utime = 0, stime = 0, vsize = 0;
	long rss = 0, ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	char buf[1024], *p;
	size_t n;
	FILE *sf;
	DIR *d;
	int fds = 0;

	if ((sf = fopen("/proc/self/stat", "re")) != NULL) {
		n = fread(buf, 1, sizeof(buf) - 1, sf);
		buf[n] = '\0';
		fclose(sf);
		/* Fields after the command name, which may contain spaces. */
		if ((p = strrchr(buf, ')')) != NULL)
			sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			    "%lu %lu %*d %*d %*d %*d %*d %*d %*u %lu %ld",
			    &utime, &stime, &vsize, &rss);
	}
	if ((d = opendir("/proc/self/fd")) != NULL) {
		while (readdir(d) != NULL)
			fds++;
		closedir(d);
		fds -= 3;	/* ".", ".." and the directory's own fd */
	}
	fprintf(f, "# HELP process_cpu_seconds_total User and system CPU time.\n"
	    "# TYPE process_cpu_seconds_total counter\n"
	    "process_cpu_seconds_total %.2f\n",
	    ticks > 0 ? (double)(utime + stime) / (double)ticks : 0.0);
	fprintf(f, "# HELP process_resident_memory_bytes Resident set size.\n"
	    "# TYPE process_resident_memory_bytes gauge\n"
	    "process_resident_memory_bytes %ld\n", rss * page);
	fprintf(f, "# HELP process_virtual_memory_bytes Virtual memory size.\n"
	    "# TYPE process_virtual_memory_bytes gauge\n"
	    "process_virtual_memory_bytes %lu\n", vsize);
	fprintf(f, "# HELP process_open_fds Open file descriptors.\n"
	    "# TYPE process_open_fds gauge\nprocess_open_fds %d\n", fds);
}

int
metrics_render(struct hvd *hvd, char **out, size_t *len)
{
	const char *tables[] = { "hosts", "networks", "vms" };
	char *buf = NULL;
	size_t n = 0;
	int64_t count;
	FILE *f;

	if ((f = open_memstream(&buf, &n)) == NULL)
		return -errno;
	fprintf(f, "# HELP hvd_http_requests_total REST API requests by route, "
	    "method and status.\n# TYPE hvd_http_requests_total counter\n");
	for (size_t i = 0; i < metrics_nseries; i++)
		fprintf(f, "hvd_http_requests_total{route=\"%s\",method=\"%s\","
		    "code=\"%u\"} %llu\n", metrics_series[i].route,
		    metrics_series[i].method, metrics_series[i].status,
		    (unsigned long long)metrics_series[i].count);
	fprintf(f, "# HELP hvd_http_requests_unlabelled_total Requests counted "
	    "after the series limit was reached.\n"
	    "# TYPE hvd_http_requests_unlabelled_total counter\n"
	    "hvd_http_requests_unlabelled_total %llu\n",
	    (unsigned long long)metrics_dropped);
	fprintf(f, "# HELP hvd_inventory_objects Objects in the inventory.\n"
	    "# TYPE hvd_inventory_objects gauge\n");
	for (size_t i = 0; i < sizeof(tables) / sizeof(*tables); i++)
		if (db_count(hvd->db, tables[i], &count) == 0)
			fprintf(f, "hvd_inventory_objects{kind=\"%s\"} %lld\n",
			    tables[i], (long long)count);
	fprintf(f, "# HELP hvd_build_info Version of this hvd.\n"
	    "# TYPE hvd_build_info gauge\nhvd_build_info{version=\"%s\"} 1\n",
	    HV_VERSION);
	fprintf(f, "# HELP process_start_time_seconds Start time, unix seconds.\n"
	    "# TYPE process_start_time_seconds gauge\n"
	    "process_start_time_seconds %lld\n", (long long)hvd->started_wall);
	fleet_metrics(f);
	migrate_metrics(f);
	fprintf(f, "# HELP hvd_agent_accept_pauses_total Times the agent listener "
	    "paused accepting because hvd was out of descriptors.\n"
	    "# TYPE hvd_agent_accept_pauses_total counter\n"
	    "hvd_agent_accept_pauses_total %llu\n",
	    (unsigned long long)agents_accept_pauses());
	agents_metrics(f);
	http_metrics(f);
	feed_metrics(f);
	dash_session_metrics(f);
	dhcp_metrics(f);
	tftp_metrics(f);
	metrics_process(f);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	*len = n;
	return 0;
}

void
metrics_shutdown(void)
{
	metrics_nseries = 0;
	metrics_dropped = 0;
}
