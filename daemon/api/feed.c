/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The dashboard's live feed: GET /api/v1/feed, Server-Sent Events.
 *
 * What happens is written once into a ring of messages, each already in
 * wire form ("id: N\nevent: TYPE\ndata: JSON\n\n"), and every client reads
 * the ring from its own cursor, so a hundred clients cost one
 * serialisation per message.  Messages:
 *   telemetry  {"hosts": [...]}: hosts whose telemetry arrived, batched
 *              every FEED_FLUSH_MS (at_ms: when hvd received it);
 *   host       {"name", "up"}: a host came up or went down;
 *   event      an audit-log row, as GET /api/v1/events shows it, once
 *              committed;
 *   changed    {"generation"}: the inventory changed (reload lists);
 *   reset      the client's Last-Event-ID is older than the ring: reload
 *              everything, then follow on.
 * A client resumes with Last-Event-ID (EventSource sends it on reconnect).
 *
 * Invariants: memory is bounded by the ring (FEED_RING messages) and
 * FEED_CLIENTS_MAX clients; a slow client falls behind in the ring, never
 * makes hvd buffer for it.  Must never block: a client with nothing to
 * read is suspended (http_stream), woken when a message is published.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <microhttpd.h>

#include "rest.h"

#define FEED_RING		4096
#define FEED_CLIENTS_MAX	512
#define FEED_FLUSH_MS		100	/* telemetry batching */
#define FEED_COMMIT_MS		200	/* events and "changed" after a commit */
#define FEED_KEEPALIVE_S	20
#define FEED_DIRTY_MAX		4096	/* hosts per telemetry batch */
#define FEED_EVENTS_BATCH	256

struct feed_client {
	TAILQ_ENTRY(feed_client) entry;
	struct http_stream *stream;
	uint64_t next;		/* the id of the next message to take */
	struct blob *cur;	/* the message being sent (a reference) */
	size_t off;		/* bytes of it already sent */
	bool hello, keepalive, orphan;
};
TAILQ_HEAD(feed_clients, feed_client);

struct feed_dirty {
	int64_t host_id;
	int64_t at_ms;		/* wall ms its first unsent sample arrived */
};

static struct {
	struct hvd *hvd;
	struct blob *ring[FEED_RING];
	uint64_t next_id;	/* the id the next message gets (from 1) */
	struct feed_clients clients;
	unsigned nclients;
	struct event *ev_flush, *ev_commit, *ev_keepalive;
	struct feed_dirty dirty[FEED_DIRTY_MAX];
	size_t ndirty;
	int64_t last_event;	/* the newest audit row published */
	uint64_t published, refused_full, resets;
} feed;

static uint64_t
feed_oldest(void)
{
	return feed.next_id > FEED_RING ? feed.next_id - FEED_RING : 1;
}

static struct blob *
feed_msg(uint64_t id)
{
	return feed.ring[id % FEED_RING];
}

static void
feed_wake_all(void)
{
	struct feed_client *c;

	TAILQ_FOREACH(c, &feed.clients, entry)
		http_stream_wake(c->stream);
}

/* Takes j (a compact one-line JSON document) and publishes it. */
static void
feed_publish(const char *type, json_t *j)
{
	char *data = j ? json_dumps(j, JSON_COMPACT) : NULL;
	uint64_t id = feed.next_id;
	struct blob *b = NULL;
	char *text;
	int n;

	json_decref(j);
	if (data == NULL)
		return;
	n = asprintf(&text, "id: %llu\nevent: %s\ndata: %s\n\n",
	    (unsigned long long)id, type, data);
	free(data);
	if (n < 0)
		return;
	b = blob_new(text, (size_t)n);
	free(text);
	if (b == NULL)
		return;
	blob_unref(feed.ring[id % FEED_RING]);
	feed.ring[id % FEED_RING] = b;
	feed.next_id++;
	feed.published++;
	feed_wake_all();
}

/* --- what is published ------------------------------------------------ */

static void
feed_news(void *arg, const struct fleet_host *fh, enum fleet_news what)
{
	int64_t id = fleet_host_id(fh);
	struct timeval tv = { 0, FEED_FLUSH_MS * 1000 };

	(void)arg;
	if (what != FLEET_NEWS_TELEMETRY) {
		feed_publish("host", json_pack("{s:s, s:b}", "name",
		    fleet_name(fh), "up", what == FLEET_NEWS_UP));
		return;
	}
	for (size_t i = 0; i < feed.ndirty; i++)
		if (feed.dirty[i].host_id == id)
			return;
	if (feed.ndirty == FEED_DIRTY_MAX)
		return;		/* flushed within FEED_FLUSH_MS anyway */
	feed.dirty[feed.ndirty++] = (struct feed_dirty){ id, hvd_now_wall_ms() };
	if (!evtimer_pending(feed.ev_flush, NULL))
		evtimer_add(feed.ev_flush, &tv);
}

static void
feed_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	json_t *hosts = json_array();

	(void)fd;
	(void)what;
	(void)arg;
	for (size_t i = 0; i < feed.ndirty; i++) {
		struct fleet_host *fh = fleet_by_id(feed.dirty[i].host_id);
		json_t *h;

		if (fh == NULL || (h = fleet_host_json(fh)) == NULL)
			continue;
		json_object_set_new(h, "name", json_string(fleet_name(fh)));
		json_object_set_new(h, "at_ms",
		    json_integer((json_int_t)feed.dirty[i].at_ms));
		json_array_append_new(hosts, h);
	}
	feed.ndirty = 0;
	if (json_array_size(hosts) == 0) {
		json_decref(hosts);
		return;
	}
	feed_publish("telemetry", json_pack("{s:o}", "hosts", hosts));
}

/* Runs inside SQLite's commit: only schedules. */
static void
feed_committed(void *arg)
{
	struct timeval tv = { 0, FEED_COMMIT_MS * 1000 };

	(void)arg;
	if (feed.ev_commit && !evtimer_pending(feed.ev_commit, NULL))
		evtimer_add(feed.ev_commit, &tv);
}

static json_t *
feed_event_json(const struct event_row *e)
{
	return json_pack("{s:I, s:o, s:s, s:s, s:s, s:s}", "id",
	    (json_int_t)e->id, "time", api_time_json(e->time), "kind", e->kind,
	    "subject", e->subject, "actor", e->actor, "detail", e->detail);
}

static void
feed_commit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct event_row *rows = NULL;
	size_t n = 0;

	(void)fd;
	(void)what;
	(void)arg;
	if (db_event_since(feed.hvd->db, feed.last_event, FEED_EVENTS_BATCH,
	    &rows, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			feed_publish("event", feed_event_json(&rows[i]));
			feed.last_event = rows[i].id;
		}
		free(rows);
	}
	feed_publish("changed", json_pack("{s:I}", "generation",
	    (json_int_t)db_generation(feed.hvd->db)));
	/* More than a batch committed: the rest on the next turn. */
	if (n == FEED_EVENTS_BATCH)
		feed_committed(NULL);
}

static void
feed_keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
	struct feed_client *c;

	(void)fd;
	(void)what;
	(void)arg;
	TAILQ_FOREACH(c, &feed.clients, entry) {
		c->keepalive = true;
		http_stream_wake(c->stream);
	}
}

/* --- the stream --------------------------------------------------------- */

static size_t
feed_put(char *buf, size_t max, size_t n, const char *s)
{
	size_t len = strlen(s);

	if (n + len > max)
		return n;
	memcpy(buf + n, s, len);
	return n + len;
}

static ssize_t
feed_read(void *arg, char *buf, size_t max)
{
	struct feed_client *c = arg;
	size_t n = 0;

	if (c->orphan)
		return -1;
	if (c->hello) {
		/* EventSource waits this long before reconnecting. */
		n = feed_put(buf, max, n, "retry: 2000\n\n");
		c->hello = false;
	}
	while (n < max) {
		size_t left, take;

		if (c->cur == NULL && c->next < feed_oldest()) {
			size_t was = n;

			/* Overwritten before this client read it. */
			if ((n = feed_put(buf, max, n, "event: reset\ndata: {}\n\n"))
			    == was)
				break;
			c->next = feed.next_id;
			feed.resets++;
		}
		if (c->cur == NULL) {
			if (c->next >= feed.next_id)
				break;
			c->cur = blob_ref(feed_msg(c->next++));
			c->off = 0;
		}
		left = blob_len(c->cur) - c->off;
		take = max - n < left ? max - n : left;
		memcpy(buf + n, blob_data(c->cur) + c->off, take);
		n += take;
		c->off += take;
		if (c->off == blob_len(c->cur)) {
			blob_unref(c->cur);
			c->cur = NULL;
		}
	}
	if (n == 0 && c->keepalive)
		n = feed_put(buf, max, n, ": keepalive\n\n");
	c->keepalive = false;
	return (ssize_t)n;
}

static void
feed_done(void *arg)
{
	struct feed_client *c = arg;

	if (!c->orphan) {
		TAILQ_REMOVE(&feed.clients, c, entry);
		feed.nclients--;
	}
	blob_unref(c->cur);
	free(c);
}

static const struct http_stream_ops feed_ops = { feed_read, feed_done };

void
api_feed(struct hvd *hvd, const struct http_request *req,
    struct http_reply *rep)
{
	const char *last = req->header(req, "Last-Event-ID");
	struct feed_client *c;
	uint64_t id;

	(void)hvd;
	if (feed.ev_flush == NULL) {
		http_error(rep, MHD_HTTP_SERVICE_UNAVAILABLE, "the feed is not "
		    "running");
		return;
	}
	if (last != NULL && session_last_event_id(last, &id) < 0) {
		http_error(rep, MHD_HTTP_BAD_REQUEST, "header 'Last-Event-ID' "
		    "must be a decimal event id");
		return;
	}
	if (feed.nclients >= FEED_CLIENTS_MAX) {
		feed.refused_full++;
		http_error(rep, MHD_HTTP_SERVICE_UNAVAILABLE, "%u feed clients "
		    "already (the most hvd serves)", FEED_CLIENTS_MAX);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	/* Resume after the last id seen; a new client gets only what is new,
	 * as it has just loaded the lists. */
	c->next = last != NULL && id < feed.next_id ? id + 1 : feed.next_id;
	c->hello = true;
	if ((c->stream = http_stream(req, rep, &feed_ops, c)) == NULL) {
		free(c);
		http_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		return;
	}
	TAILQ_INSERT_TAIL(&feed.clients, c, entry);
	feed.nclients++;
	rep->status = MHD_HTTP_OK;
	rep->content_type = "text/event-stream";
}

int
feed_init(struct hvd *hvd)
{
	struct event_row *rows = NULL;
	struct timeval ka = { FEED_KEEPALIVE_S, 0 };
	size_t n = 0;

	feed.hvd = hvd;
	feed.next_id = 1;
	TAILQ_INIT(&feed.clients);
	if (db_event_list(hvd->db, NULL, 1, &rows, &n) == 0 && n == 1)
		feed.last_event = rows[0].id;
	free(rows);
	feed.ev_flush = evtimer_new(hvd->base, feed_flush_cb, NULL);
	feed.ev_commit = evtimer_new(hvd->base, feed_commit_cb, NULL);
	feed.ev_keepalive = event_new(hvd->base, -1, EV_PERSIST,
	    feed_keepalive_cb, NULL);
	if (feed.ev_flush == NULL || feed.ev_commit == NULL ||
	    feed.ev_keepalive == NULL || event_add(feed.ev_keepalive, &ka) < 0 ||
	    db_on_commit(hvd->db, feed_committed, NULL) < 0) {
		feed_shutdown();
		return -ENOMEM;
	}
	fleet_on_news(feed_news, NULL);
	return 0;
}

/* Before http_shutdown(): the clients' streams end when libmicrohttpd
 * closes their connections, and find the feed gone (orphans). */
void
feed_shutdown(void)
{
	struct feed_client *c;

	fleet_on_news(NULL, NULL);
	if (feed.hvd)
		db_off_commit(feed.hvd->db, feed_committed, NULL);
	while ((c = TAILQ_FIRST(&feed.clients)) != NULL) {
		TAILQ_REMOVE(&feed.clients, c, entry);
		c->orphan = true;
		http_stream_wake(c->stream);
	}
	feed.nclients = 0;
	if (feed.ev_flush)
		event_free(feed.ev_flush);
	if (feed.ev_commit)
		event_free(feed.ev_commit);
	if (feed.ev_keepalive)
		event_free(feed.ev_keepalive);
	feed.ev_flush = feed.ev_commit = feed.ev_keepalive = NULL;
	for (size_t i = 0; i < FEED_RING; i++) {
		blob_unref(feed.ring[i]);
		feed.ring[i] = NULL;
	}
}

void
feed_metrics(FILE *f)
{
	fprintf(f, "# HELP hvd_feed_clients Dashboard live-feed clients.\n"
	    "# TYPE hvd_feed_clients gauge\nhvd_feed_clients %u\n"
	    "# HELP hvd_feed_messages_total Messages published to the live "
	    "feed.\n# TYPE hvd_feed_messages_total counter\n"
	    "hvd_feed_messages_total %llu\n"
	    "# HELP hvd_feed_resets_total Feed clients told to reload (fell "
	    "behind the ring).\n# TYPE hvd_feed_resets_total counter\n"
	    "hvd_feed_resets_total %llu\n"
	    "# HELP hvd_feed_refused_total Feed clients refused (too many).\n"
	    "# TYPE hvd_feed_refused_total counter\nhvd_feed_refused_total %llu\n",
	    feed.nclients, (unsigned long long)feed.published,
	    (unsigned long long)feed.resets,
	    (unsigned long long)feed.refused_full);
}
