/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * Discovery mode.  A machine hvd does not know boots a discovery overlay:
 * no key, no token, only `discovery-url`.  Its agent holds no session; it
 * posts the machine's hardware facts to hvd's boot HTTP port (POST
 * /boot/discover?mac=...&uuid=... {"facts"}) at start and every 30 s, and
 * waits.  When hvd answers that the machine was adopted, the agent says so
 * and, with `discovery-reboot yes`, reboots: the next boot fetches the
 * host's own overlay with its credentials.
 *
 * hvd wrote the machine's boot MAC and UUID into the URL's query when it
 * built the overlay, so the report lands on the record that boot made.
 * Nothing here is secret, as nothing on the boot LAN is before adoption.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/reboot.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "agent.h"
#include "agent_link.h"
#include "log.h"

#define DISCOVER_PERIOD_S	30
#define DISCOVER_REPLY_MAX	4096

struct agent_discover {
	struct event_base *base;
	struct evhttp_connection *conn;
	struct event *ev_timer;
	char host[64], path[192];
	uint16_t port;
	bool reboot;
	bool adopted;
};

static void
discover_reply(struct evhttp_request *req, void *arg)
{
	struct agent_discover *ad = arg;
	struct evbuffer *in;
	char buf[DISCOVER_REPLY_MAX + 1];
	const char *state, *name;
	json_t *j;
	int n;

	if (req == NULL || evhttp_request_get_response_code(req) != 200) {
		log_warnx("discover: hvd at %s:%u did not take the facts (%d); "
		    "retrying in %d s", ad->host, ad->port, req ?
		    evhttp_request_get_response_code(req) : 0, DISCOVER_PERIOD_S);
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	n = evbuffer_remove(in, buf, DISCOVER_REPLY_MAX);
	buf[n > 0 ? n : 0] = '\0';
	j = json_loads(buf, JSON_REJECT_DUPLICATES, NULL);
	state = json_string_value(json_object_get(j, "state"));
	name = json_string_value(json_object_get(j, "name"));
	if (state && strcmp(state, "discovered") == 0) {
		log_info("discover: facts reported; waiting to be adopted "
		    "(hvctl host adopt <fingerprint|mac> --name NAME)");
	} else if (state && !ad->adopted) {
		ad->adopted = true;
		log_info("discover: this machine is now host %s (%s)%s",
		    name ? name : "?", state, ad->reboot ? "; rebooting to "
		    "fetch its own overlay" : "; reboot it to take its identity");
		if (ad->reboot) {
			sync();
			if (reboot(RB_AUTOBOOT) == -1)
				log_warn("discover: reboot");
		}
	}
	json_decref(j);
}

static void
discover_post(evutil_socket_t fd, short what, void *arg)
{
	struct agent_discover *ad = arg;
	struct timeval tv = { DISCOVER_PERIOD_S, 0 };
	struct evhttp_request *req;
	json_t *body, *facts;
	char *text = NULL;

	(void)fd;
	(void)what;
	evtimer_add(ad->ev_timer, &tv);
	if ((facts = facts_collect()) == NULL)
		return;
	body = json_pack("{s:o}", "facts", facts);
	if (body == NULL || (text = json_dumps(body, JSON_COMPACT)) == NULL ||
	    (req = evhttp_request_new(discover_reply, ad)) == NULL) {
		json_decref(body);
		free(text);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host",
	    ad->host);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	evbuffer_add(evhttp_request_get_output_buffer(req), text, strlen(text));
	if (evhttp_make_request(ad->conn, req, EVHTTP_REQ_POST, ad->path) != 0)
		log_warnx("discover: cannot send to %s:%u", ad->host, ad->port);
	json_decref(body);
	free(text);
}

struct agent_discover *
agent_discover_new(struct event_base *base, const struct agent_conf *conf)
{
	struct agent_discover *ad = calloc(1, sizeof(*ad));
	struct evhttp_uri *uri;
	const char *h, *p, *q;
	int port;

	if (ad == NULL)
		return NULL;
	ad->base = base;
	ad->reboot = conf->discovery_reboot;
	if ((uri = evhttp_uri_parse(conf->discovery_url)) == NULL ||
	    (h = evhttp_uri_get_host(uri)) == NULL) {
		log_warnx("discover: cannot parse %s", conf->discovery_url);
		evhttp_uri_free(uri);
		free(ad);
		return NULL;
	}
	port = evhttp_uri_get_port(uri);
	p = evhttp_uri_get_path(uri);
	q = evhttp_uri_get_query(uri);
	snprintf(ad->host, sizeof(ad->host), "%s", h);
	snprintf(ad->path, sizeof(ad->path), "%s%s%s", p && p[0] ? p : "/",
	    q ? "?" : "", q ? q : "");
	ad->port = (uint16_t)(port > 0 ? port : 80);
	evhttp_uri_free(uri);
	if ((ad->conn = evhttp_connection_base_new(base, NULL, ad->host,
	    ad->port)) == NULL ||
	    (ad->ev_timer = evtimer_new(base, discover_post, ad)) == NULL) {
		agent_discover_free(ad);
		return NULL;
	}
	evhttp_connection_set_timeout(ad->conn, 10);
	log_info("discover: discovery mode: reporting to %s:%u%s", ad->host,
	    ad->port, ad->path);
	event_active(ad->ev_timer, EV_TIMEOUT, 0);
	return ad;
}

void
agent_discover_free(struct agent_discover *ad)
{
	if (ad == NULL)
		return;
	if (ad->ev_timer)
		event_free(ad->ev_timer);
	if (ad->conn)
		evhttp_connection_free(ad->conn);
	free(ad);
}
