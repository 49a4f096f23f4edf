/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The live state of every host: its agent session, its liveness timer, and
 * its telemetry (the latest sample plus a bounded, downsampled history).
 *
 * Liveness belongs to the host, not to the connection: a host is marked
 * down when no valid frame arrived for 3 heartbeat intervals, whether its
 * connection closed or hung.  After an hvd restart, hosts the inventory
 * says are up get the same grace to come back.
 *
 * Invariants: memory per host is bounded (history ring sized from the
 * retention); telemetry is never written to the database, so a thousand
 * agents reporting every second cost no disk I/O.  Must never block: all
 * timers share one libevent common timeout queue (O(1) re-arm).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "fleet.h"

#define FLEET_MISSED_MAX	3
/* The longest an agent waits between reconnect attempts (PROTOCOL.md
 * section 10: 1.5 x 15 s), added to the grace after an hvd restart. */
#define FLEET_RECONNECT_MAX_MS	22500

struct fleet_host {
	struct hvd *hvd;
	struct fleet_host *next_by_id;	/* hash chain */
	int64_t id;
	char name[API_NAME_MAX + 1];
	struct agent_conn *session;
	uint64_t session_serial;	/* counts sessions that came up */
	struct event *ev_liveness;
	bool up;
	uint64_t last_msg1_ts;
	json_t *latest;
	int64_t latest_at;
	/* History: a ring of per-step averages, plus the step being filled. */
	struct fleet_sample *hist;
	size_t hist_cap, hist_len, hist_next;
	struct fleet_sample acc;
	double acc_cpu, acc_load;
	unsigned acc_n;
};

static struct fleet_host **fleet_hosts;
static size_t fleet_n, fleet_cap;
/* Index by host id: the API joins every inventory row with its live
 * state, which must not cost a scan per row. */
static struct fleet_host **fleet_by_id_tab;
static size_t fleet_buckets;	/* power of two */
static const struct timeval *fleet_timeout;	/* 3 heartbeats, common queue */
static fleet_news_cb *fleet_news;
static void *fleet_news_arg;

void
fleet_on_news(fleet_news_cb *cb, void *arg)
{
	fleet_news = cb;
	fleet_news_arg = arg;
}

static void
fleet_tell(const struct fleet_host *fh, enum fleet_news what)
{
	if (fleet_news)
		fleet_news(fleet_news_arg, fh, what);
}

static void
fleet_liveness_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fleet_host *fh = arg;
	char cause[96];

	(void)fd;
	(void)what;
	snprintf(cause, sizeof(cause), "missed %d heartbeats (%u ms)",
	    FLEET_MISSED_MAX, FLEET_MISSED_MAX * fh->hvd->conf->heartbeat_ms);
	log_warnx("host %s: down: %s", fh->name, cause);
	fh->up = false;
	if (fh->session)
		agent_conn_close(fh->session, "heartbeat timeout");
	(void)db_host_set_state(fh->hvd->db, fh->id, fh->name, "down", cause,
	    "hvd", hvd_now_wall());
	fleet_tell(fh, FLEET_NEWS_DOWN);
}

static void
fleet_host_free(struct fleet_host *fh)
{
	if (fh == NULL)
		return;
	if (fh->ev_liveness)
		event_free(fh->ev_liveness);
	json_decref(fh->latest);
	free(fh->hist);
	free(fh);
}

static size_t
fleet_bucket(int64_t id, size_t n)
{
	uint64_t x = (uint64_t)id * 0x9e3779b97f4a7c15ull;

	return (size_t)(x >> 32) & (n - 1);
}

static int
fleet_index_grow(void)
{
	size_t n = fleet_buckets ? fleet_buckets * 2 : 256;
	struct fleet_host **tab = calloc(n, sizeof(*tab));

	if (tab == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < fleet_n; i++) {
		size_t b = fleet_bucket(fleet_hosts[i]->id, n);

		fleet_hosts[i]->next_by_id = tab[b];
		tab[b] = fleet_hosts[i];
	}
	free(fleet_by_id_tab);
	fleet_by_id_tab = tab;
	fleet_buckets = n;
	return 0;
}

struct fleet_host *
fleet_by_id(int64_t id)
{
	struct fleet_host *fh;

	if (fleet_buckets == 0)
		return NULL;
	for (fh = fleet_by_id_tab[fleet_bucket(id, fleet_buckets)]; fh;
	    fh = fh->next_by_id)
		if (fh->id == id)
			return fh;
	return NULL;
}

static struct fleet_host *
fleet_add(struct hvd *hvd, const struct host_row *h)
{
	size_t b;

	struct fleet_host *fh, **tmp;
	unsigned step = hvd->conf->telemetry_step_s;

	if (fleet_n == fleet_cap) {
		size_t cap = fleet_cap ? fleet_cap * 2 : 64;

		if ((tmp = reallocarray(fleet_hosts, cap, sizeof(*tmp))) == NULL)
			return NULL;
		fleet_hosts = tmp;
		fleet_cap = cap;
	}
	if ((fh = calloc(1, sizeof(*fh))) == NULL)
		return NULL;
	fh->hvd = hvd;
	fh->id = h->id;
	snprintf(fh->name, sizeof(fh->name), "%s", h->name);
	fh->hist_cap = step ? hvd->conf->telemetry_retention_s / step : 0;
	if (fh->hist_cap == 0)
		fh->hist_cap = 1;
	fh->hist = calloc(fh->hist_cap, sizeof(*fh->hist));
	fh->ev_liveness = evtimer_new(hvd->base, fleet_liveness_cb, fh);
	if (fh->hist == NULL || fh->ev_liveness == NULL) {
		fleet_host_free(fh);
		return NULL;
	}
	if (fleet_n + 1 > fleet_buckets && fleet_index_grow() < 0) {
		fleet_host_free(fh);
		return NULL;
	}
	fleet_hosts[fleet_n++] = fh;
	b = fleet_bucket(fh->id, fleet_buckets);
	fh->next_by_id = fleet_by_id_tab[b];
	fleet_by_id_tab[b] = fh;
	return fh;
}

int
fleet_init(struct hvd *hvd)
{
	struct host_row *rows = NULL;
	struct timeval tv;
	size_t n = 0;
	int r;

	tv.tv_sec = FLEET_MISSED_MAX * hvd->conf->heartbeat_ms / 1000;
	tv.tv_usec = (FLEET_MISSED_MAX * hvd->conf->heartbeat_ms % 1000) * 1000;
	if ((fleet_timeout = event_base_init_common_timeout(hvd->base, &tv)) == NULL)
		return -ENOMEM;
	if ((r = db_host_list(hvd->db, &rows, &n)) < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct fleet_host *fh;

		if (rows[i].name[0] == '\0' || strcmp(rows[i].state, "retired") == 0)
			continue;
		if ((fh = fleet_add(hvd, &rows[i])) == NULL) {
			free(rows);
			return -ENOMEM;
		}
		/* Up before the restart: it may be deep in its backoff while
		 * hvd was away, so it gets 3 heartbeats plus the longest
		 * reconnect delay before it is marked down (and leaves the
		 * others' flood lists). */
		if (strcmp(rows[i].state, "up") == 0) {
			struct timeval grace;
			unsigned ms = FLEET_MISSED_MAX * hvd->conf->heartbeat_ms +
			    FLEET_RECONNECT_MAX_MS;

			grace.tv_sec = ms / 1000;
			grace.tv_usec = (suseconds_t)(ms % 1000) * 1000;
			fh->up = true;
			evtimer_add(fh->ev_liveness, &grace);
		}
	}
	free(rows);
	return 0;
}

void
fleet_shutdown(void)
{
	for (size_t i = 0; i < fleet_n; i++)
		fleet_host_free(fleet_hosts[i]);
	free(fleet_hosts);
	free(fleet_by_id_tab);
	fleet_hosts = NULL;
	fleet_by_id_tab = NULL;
	fleet_n = fleet_cap = fleet_buckets = 0;
}

struct fleet_host *
fleet_find(const char *name)
{
	for (size_t i = 0; i < fleet_n; i++)
		if (strcmp(fleet_hosts[i]->name, name) == 0)
			return fleet_hosts[i];
	return NULL;
}

/* The identity left its hardware (replaced or retired): no liveness is
 * tracked until a new session comes. */
void
fleet_reset(struct fleet_host *fh)
{
	evtimer_del(fh->ev_liveness);
	fh->up = false;
	fleet_tell(fh, FLEET_NEWS_DOWN);
}

/* The host's record was deleted: its live state goes too (and its session,
 * if any), so that a host given its id or its name later starts afresh. */
void
fleet_forget(struct fleet_host *fh)
{
	struct fleet_host **pp;

	if (fh->session)
		agent_conn_close(fh->session, "host deleted");
	for (pp = &fleet_by_id_tab[fleet_bucket(fh->id, fleet_buckets)]; *pp;
	    pp = &(*pp)->next_by_id)
		if (*pp == fh) {
			*pp = fh->next_by_id;
			break;
		}
	for (size_t i = 0; i < fleet_n; i++)
		if (fleet_hosts[i] == fh) {
			memmove(&fleet_hosts[i], &fleet_hosts[i + 1],
			    (fleet_n - i - 1) * sizeof(*fleet_hosts));
			fleet_n--;
			break;
		}
	fleet_host_free(fh);
}

struct fleet_host *
fleet_get(struct hvd *hvd, const struct host_row *h)
{
	struct fleet_host *fh = fleet_by_id(h->id);

	return fh ? fh : fleet_add(hvd, h);
}

struct agent_conn *
fleet_session(const struct fleet_host *fh)
{
	return fh->session;
}

const char *
fleet_name(const struct fleet_host *fh)
{
	return fh->name;
}

int64_t
fleet_host_id(const struct fleet_host *fh)
{
	return fh->id;
}

bool
fleet_is_up(const struct fleet_host *fh)
{
	return fh->up;
}

bool
fleet_accept_timestamp(struct fleet_host *fh, uint64_t ts)
{
	if (ts <= fh->last_msg1_ts)
		return false;
	fh->last_msg1_ts = ts;
	return true;
}

void
fleet_session_up(struct fleet_host *fh, struct agent_conn *ac)
{
	if (fh->session && fh->session != ac)
		agent_conn_close(fh->session, "replaced by a newer session");
	fh->session = ac;
	fh->session_serial++;
	fh->up = true;
	evtimer_add(fh->ev_liveness, fleet_timeout);
	fleet_tell(fh, FLEET_NEWS_UP);
}

uint64_t
fleet_session_serial(const struct fleet_host *fh)
{
	return fh->session_serial;
}

void
fleet_session_gone(struct fleet_host *fh, struct agent_conn *ac)
{
	if (fh->session == ac)
		fh->session = NULL;
}

void
fleet_heartbeat(struct fleet_host *fh)
{
	evtimer_add(fh->ev_liveness, fleet_timeout);
}

static uint64_t
fleet_u64(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_integer(v) && json_integer_value(v) > 0 ?
	    (uint64_t)json_integer_value(v) : 0;
}

static void
fleet_push_history(struct fleet_host *fh)
{
	struct fleet_sample *s = &fh->hist[fh->hist_next];

	*s = fh->acc;
	s->cpu_percent = (float)(fh->acc_cpu / fh->acc_n);
	s->load1 = (float)(fh->acc_load / fh->acc_n);
	fh->hist_next = (fh->hist_next + 1) % fh->hist_cap;
	if (fh->hist_len < fh->hist_cap)
		fh->hist_len++;
	fh->acc_n = 0;
	fh->acc_cpu = fh->acc_load = 0;
}

/* Takes a reference to sample, which msg_check() validated. */
void
fleet_telemetry(struct fleet_host *fh, json_t *sample, int64_t now)
{
	unsigned step = fh->hvd->conf->telemetry_step_s;
	json_t *mem = json_object_get(sample, "memory");
	json_t *nics = json_object_get(sample, "nics"), *nic;
	int64_t bucket = step ? now - now % step : now;
	uint64_t rx = 0, tx = 0;
	size_t i;

	json_decref(fh->latest);
	fh->latest = json_incref(sample);
	fh->latest_at = now;
	json_array_foreach(nics, i, nic) {
		rx += (uint64_t)json_number_value(json_object_get(nic, "rx_bps"));
		tx += (uint64_t)json_number_value(json_object_get(nic, "tx_bps"));
	}
	if (fh->acc_n > 0 && fh->acc.t != bucket)
		fleet_push_history(fh);
	fh->acc.t = bucket;
	fh->acc_cpu += json_number_value(json_object_get(
	    json_object_get(sample, "cpu"), "percent"));
	fh->acc_load += json_number_value(json_array_get(
	    json_object_get(sample, "load"), 0));
	fh->acc.mem_used = fleet_u64(mem, "used_bytes");
	fh->acc.mem_total = fleet_u64(mem, "total_bytes");
	fh->acc.rx_bps = rx;
	fh->acc.tx_bps = tx;
	fh->acc_n++;
	fleet_tell(fh, FLEET_NEWS_TELEMETRY);
}

json_t *
fleet_host_json(const struct fleet_host *fh)
{
	const json_t *t = fh->latest;
	json_t *cpu = json_object_get(t, "cpu"), *mem = json_object_get(t, "memory");

	return json_pack("{s:b, s:b, s:O?, s:O?, s:O?, s:O?, s:o}",
	    "up", fh->up, "connected", fh->session != NULL,
	    "cpu_percent", json_object_get(cpu, "percent"),
	    "memory_used_bytes", json_object_get(mem, "used_bytes"),
	    "memory_total_bytes", json_object_get(mem, "total_bytes"),
	    "load1", json_array_get(json_object_get(t, "load"), 0),
	    "telemetry_at", api_time_json(fh->latest_at));
}

json_t *
fleet_telemetry_json(const struct fleet_host *fh)
{
	json_t *hist = json_array();

	for (size_t k = 0; k < fh->hist_len; k++) {
		size_t idx = (fh->hist_next + fh->hist_cap - fh->hist_len + k) %
		    fh->hist_cap;
		const struct fleet_sample *s = &fh->hist[idx];

		json_array_append_new(hist, json_pack("{s:o, s:f, s:f, s:I, s:I, "
		    "s:I, s:I}", "t", api_time_json(s->t), "cpu_percent",
		    (double)s->cpu_percent, "load1", (double)s->load1,
		    "memory_used_bytes", (json_int_t)s->mem_used,
		    "memory_total_bytes", (json_int_t)s->mem_total,
		    "rx_bps", (json_int_t)s->rx_bps, "tx_bps", (json_int_t)s->tx_bps));
	}
	return json_pack("{s:s, s:b, s:o, s:O?, s:I, s:o}", "host", fh->name,
	    "up", fh->up, "at", api_time_json(fh->latest_at), "latest", fh->latest,
	    "step_seconds", (json_int_t)fh->hvd->conf->telemetry_step_s,
	    "history", hist);
}

/* Per-host gauges; host names are [a-z0-9-], safe as label values. */
void
fleet_metrics(FILE *f)
{
	static const struct {
		const char *name, *help;
	} g[] = {
		{ "hvd_host_up", "1 if the host's agent is live." },
		{ "hvd_host_cpu_percent", "Host CPU busy percent, latest sample." },
		{ "hvd_host_load1", "Host 1-minute load average." },
		{ "hvd_host_memory_used_bytes", "Host memory in use." },
		{ "hvd_host_memory_total_bytes", "Host memory." },
	};

	for (size_t k = 0; k < sizeof(g) / sizeof(*g); k++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", g[k].name, g[k].help,
		    g[k].name);
		for (size_t i = 0; i < fleet_n; i++) {
			const struct fleet_host *fh = fleet_hosts[i];
			json_t *t = fh->latest;
			double v;

			switch (k) {
			case 0:
				v = fh->up;
				break;
			case 1:
				v = json_number_value(json_object_get(
				    json_object_get(t, "cpu"), "percent"));
				break;
			case 2:
				v = json_number_value(json_array_get(
				    json_object_get(t, "load"), 0));
				break;
			case 3:
				v = json_number_value(json_object_get(
				    json_object_get(t, "memory"), "used_bytes"));
				break;
			default:
				v = json_number_value(json_object_get(
				    json_object_get(t, "memory"), "total_bytes"));
				break;
			}
			if (k > 0 && t == NULL)
				continue;
			fprintf(f, "%s{host=\"%s\"} %.6g\n", g[k].name, fh->name, v);
		}
	}
	fprintf(f, "# HELP hvd_agent_sessions Agent sessions established.\n"
	    "# TYPE hvd_agent_sessions gauge\nhvd_agent_sessions %zu\n",
	    fleet_sessions());
}

size_t
fleet_sessions(void)
{
	size_t n = 0;

	for (size_t i = 0; i < fleet_n; i++)
		n += fleet_hosts[i]->session != NULL;
	return n;
}
