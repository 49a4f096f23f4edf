/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hv-agent: runs in dom0 of every Xen host.  Reads /etc/hv/agent.conf and
 * its key, applies the mesh file, then keeps a session with hvd on one
 * libevent loop: telemetry every heartbeat, answers to hvd's requests, the
 * mesh reconciled every mesh-interval, reconnects with backoff.
 *
 * fatal() only at start-up.  Never forks; OpenRC or systemd supervises it.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "agent.h"
#include "agent_link.h"
#include "log.h"
#include "vm.h"

#define AGENT_CONF_DEFAULT "/etc/hv/agent.conf"

/* Asked for (--help): stdout and 0; a bad command line: stderr and 2. */
static void __attribute__((noreturn))
usage(FILE *f, int status)
{
	fprintf(f, "usage: hv-agent [-dhnvV] [-f file]\n"
	    "  -d             foreground, log to stderr\n"
	    "  -f file        configuration (default %s)\n"
	    "  -n             check the configuration and key, then exit\n"
	    "  -v             verbose\n"
	    "  -V, --version  print the version\n"
	    "  -h, --help     this help\n", AGENT_CONF_DEFAULT);
	exit(status);
}

static void
agent_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	log_info("agent: received %s, exiting", strsignal((int)sig));
	event_base_loopbreak(arg);
}

/* An unadopted machine: report facts to hvd, hold no session. */
static int
agent_run_discovery(struct event_base *base, const struct agent_conf *conf,
    uint8_t *key)
{
	struct agent_discover *ad;
	struct event *ev_term, *ev_int;

	sodium_free(key);
	if ((ad = agent_discover_new(base, conf)) == NULL)
		fatalx("cannot start discovery mode");
	ev_term = evsignal_new(base, SIGTERM, agent_signal, base);
	ev_int = evsignal_new(base, SIGINT, agent_signal, base);
	if (ev_term == NULL || ev_int == NULL || event_add(ev_term, NULL) ||
	    event_add(ev_int, NULL))
		fatalx("cannot watch signals");
	event_base_dispatch(base);
	agent_discover_free(ad);
	event_free(ev_term);
	event_free(ev_int);
	event_base_free(base);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = AGENT_CONF_DEFAULT;
	bool foreground = false, check = false, verbose = false;
	struct agent_conf conf;
	struct agent_link *al;
	struct agent_mesh *am;
	struct agent_vm *av = NULL;
	struct event_base *base;
	struct event *ev_term, *ev_int;
	uint8_t *key;
	char err[512];
	int ch;

	while ((ch = getopt_long(argc, argv, "df:hnvV", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			foreground = true;
			break;
		case 'f':
			path = optarg;
			break;
		case 'n':
			check = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'V':
			printf("hv-agent %s\n", HV_VERSION);
			return 0;
		case 'h':
			usage(stdout, 0);
		default:
			usage(stderr, 2);
		}
	}
	if (optind != argc)
		usage(stderr, 2);
	log_init(true, verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, "hv-agent");
	if (sodium_init() < 0)
		fatalx("libsodium failed to initialise");
	if ((key = sodium_malloc(32)) == NULL)
		fatalx("out of memory");
	if (agent_conf_load(&conf, path, err, sizeof(err)) < 0 ||
	    (conf.discovery_url[0] == '\0' &&
	    agent_key_load(conf.key_file, key, err, sizeof(err)) < 0)) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (check) {
		fprintf(stderr, "%s: configuration OK\n", path);
		return 0;
	}
	log_init(foreground, verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO,
	    "hv-agent");
	signal(SIGPIPE, SIG_IGN);
	/* The configuration is read at start only: a HUP (a service
	 * manager's "reload") must not end the agent and its session. */
	signal(SIGHUP, SIG_IGN);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	if (conf.discovery_url[0])
		return agent_run_discovery(base, &conf, key);
	/* Local disks before anything that may use them (image cache). */
	agent_storage_mount(conf.fstab);
	/* The mesh first: VM networks come up without waiting for hvd. */
	if ((am = agent_mesh_new(base, conf.mesh_file,
	    conf.mesh_interval_s)) == NULL)
		fatalx("cannot set up the mesh");
	if ((al = agent_link_new(base, &conf, key)) == NULL)
		fatalx("cannot set up the agent");
	agent_link_set_mesh(al, am);
	/* Only in dom0: elsewhere vm.* answer "no Xen on this host". */
	if ((ch = agent_vm_new(base, NULL, &av)) < 0 && ch != -ENODEV)
		log_warnx("agent: VMs unavailable: %s", strerror(-ch));
	agent_link_set_vm(al, av);
	sodium_free(key);
	ev_term = evsignal_new(base, SIGTERM, agent_signal, base);
	ev_int = evsignal_new(base, SIGINT, agent_signal, base);
	if (ev_term == NULL || ev_int == NULL || event_add(ev_term, NULL) ||
	    event_add(ev_int, NULL))
		fatalx("cannot watch signals");
	log_info("hv-agent %s: host %s, hvd %s:%u", HV_VERSION, conf.host,
	    conf.hvd_host, conf.hvd_port);
	agent_link_start(al);
	event_base_dispatch(base);
	agent_link_free(al);
	agent_vm_free(av);
	agent_mesh_free(am);
	event_free(ev_term);
	event_free(ev_int);
	event_base_free(base);
	return 0;
}
