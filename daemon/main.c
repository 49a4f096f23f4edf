/*
 * hvd: the orchestration daemon's entry point and event loop.
 *
 * Start-up: parse flags, load and validate the config, open the inventory,
 * start listeners, tell systemd READY.  Then one libevent loop runs until
 * SIGTERM or SIGINT; SIGHUP reloads the config (parse, validate whole, swap).
 *
 * fatal() is allowed here, during start-up only.  Never fork: systemd (or
 * the operator's shell) supervises hvd directly.
 *
 * Under WatchdogSec= the loop itself pings systemd (WATCHDOG=1) from a
 * timer, never from a thread: the pings must stop when the loop stops.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>
#include <systemd/sd-daemon.h>

#include "rest.h"

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: hvd [-dnv] [-f file]\n"
	    "       hvd [-dv] -L dir\n"
	    "       hvd [-f file | -L dir] --restore backup-file\n"
	    "  -d        stay in the foreground and log to stderr\n"
	    "  -f file   configuration file (default %s)\n"
	    "  -L dir    local mode: the built-in config, with state, socket\n"
	    "            and TCP port 127.0.0.1:8470 under dir (the demo)\n"
	    "  -n        check the configuration and exit\n"
	    "  --restore backup-file\n"
	    "            unpack a backup (hvctl backup) into the state directory,\n"
	    "            which must hold no inventory yet, check it, and exit\n"
	    "  -v        verbose: log debug messages\n", HVD_CONF_DEFAULT);
	exit(2);
}

static void
hvd_reload(struct hvd *hvd)
{
	struct hvd_config *conf;
	const char *which;
	char err[512];

	if (hvd->conf_path == NULL) {
		log_info("reload: running on the built-in config; nothing to reload");
		return;
	}
	sd_notify(0, "RELOADING=1");
	if ((conf = config_load(hvd->conf_path, err, sizeof(err))) == NULL) {
		log_warnx("reload: %s; keeping the running configuration", err);
		goto out;
	}
	if ((which = config_restart_needed(hvd->conf, conf)) != NULL) {
		log_warnx("reload: %s changed, which needs a restart; keeping the "
		    "running configuration", which);
		config_free(conf);
		goto out;
	}
	config_free(hvd->conf);
	hvd->conf = conf;
	log_setlevel(conf->log_level);
	log_info("reload: %s applied", hvd->conf_path);
out:
	sd_notify(0, "READY=1");
}

static void
hvd_signal(evutil_socket_t sig, short what, void *arg)
{
	struct hvd *hvd = arg;

	(void)what;
	switch (sig) {
	case SIGHUP:
		hvd_reload(hvd);
		break;
	default:
		log_info("received %s, shutting down", strsignal((int)sig));
		sd_notify(0, "STOPPING=1");
		event_base_loopbreak(hvd->base);
		break;
	}
}

static void
hvd_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sd_notify(0, "WATCHDOG=1");
}

/*
 * The watchdog timer, or NULL when systemd expects no pings (no
 * WATCHDOG_USEC, or WATCHDOG_PID names another process).  It fires at half
 * the interval, as sd_watchdog_enabled(3) recommends, and only when the
 * loop runs: a callback that blocks or spins, or a stopped process, lets
 * the interval lapse and systemd restarts hvd.
 */
static struct event *
hvd_watchdog_new(struct event_base *base)
{
	struct event *ev;
	struct timeval tv;
	uint64_t usec;
	int r;

	if ((r = sd_watchdog_enabled(0, &usec)) < 0) {
		errno = -r;
		fatal("watchdog: WATCHDOG_USEC or WATCHDOG_PID is malformed");
	}
	if (r == 0)
		return NULL;
	tv.tv_sec = (time_t)(usec / 2 / 1000000);
	tv.tv_usec = (suseconds_t)(usec / 2 % 1000000);
	if ((ev = event_new(base, -1, EV_PERSIST, hvd_watchdog_cb, NULL)) == NULL ||
	    event_add(ev, &tv) == -1)
		fatalx("watchdog: cannot arm the timer");
	log_info("watchdog: systemd expects a ping every %" PRIu64 " ms; "
	    "pinging every %" PRIu64 " ms", usec / 1000, usec / 2000);
	return ev;
}

static int
hvd_mkdir(const char *path, mode_t mode)
{
	struct stat st;

	if (mkdir(path, mode) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (stat(path, &st) == -1)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* --restore: unpack, then prove the result opens: the inventory migrates
 * and integrity-checks, and the master key opens the sealed keys. */
static int
hvd_restore(struct hvd *hvd, const char *file)
{
	char err[512], dbpath[PATH_MAX + 16];
	int64_t hosts = 0;
	int r;

	if ((r = backup_restore(hvd->conf, file, err, sizeof(err))) < 0) {
		fprintf(stderr, "hvd: restore: %s\n", err);
		return 1;
	}
	snprintf(dbpath, sizeof(dbpath), "%s/hvd.db", hvd->conf->state_dir);
	if (db_open(dbpath, &hvd->db) < 0 || db_ping(hvd->db) < 0) {
		fprintf(stderr, "hvd: restore: %s does not open as an inventory\n",
		    dbpath);
		return 1;
	}
	if (keys_init(hvd) < 0) {
		fprintf(stderr, "hvd: restore: the master key does not open the "
		    "inventory's keys\n");
		return 1;
	}
	db_count(hvd->db, "hosts", &hosts);
	db_event_record(hvd->db, "hvd.restored", "hvd", "hvd", file,
	    hvd_now_wall());
	keys_shutdown();
	db_close(hvd->db);
	printf("hvd: restored %s into %s (%lld hosts); start hvd normally\n",
	    file, hvd->conf->state_dir, (long long)hosts);
	return 0;
}

/*
 * Every TCP connection is a descriptor: take the hard limit systemd (or
 * the shell) allows, so http-conn-max, not the default soft 1,024, is what
 * bounds the listeners.
 */
static void
hvd_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("setrlimit NOFILE");
	}
}

/*
 * The wiring: each layer gets what it calls up through as a table, so the
 * whole graph reads here.  net/http.c hands finished requests to the api
 * layer; net/agents.c hands sessions to the fleet.
 */
static const struct http_routes hvd_routes = {
	.api = api_handle,
	.boot = boot_handle,
	.upload = api_image_is_upload,
	.served = metrics_count_request,
};

static const struct agent_ops hvd_agent_ops = {
	.authorize = session_authorize,
	.hello = session_hello,
	.up = session_up,
	.heartbeat = session_heartbeat,
	.notify = session_notify,
	.gone = session_gone,
};

int
main(int argc, char **argv)
{
	struct hvd hvd = { 0 };
	struct event *ev_sig[3] = { NULL }, *ev_watchdog = NULL;
	const int sigs[3] = { SIGTERM, SIGINT, SIGHUP };
	static const struct option longopts[] = {
		{ "restore", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf_path = NULL, *local_dir = NULL, *restore = NULL;
	bool foreground = false, check_only = false, verbose = false;
	char err[512], dbpath[PATH_MAX + 16];
	int ch, r;

	while ((ch = getopt_long(argc, argv, "df:L:nv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'R':
			restore = optarg;
			break;
		case 'd':
			foreground = true;
			break;
		case 'f':
			conf_path = optarg;
			break;
		case 'L':
			local_dir = optarg;
			break;
		case 'n':
			check_only = true;
			break;
		case 'v':
			verbose = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || (local_dir && (conf_path || check_only)))
		usage();

	log_init(true, verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, "hvd");
	if (local_dir) {
		if (local_dir[0] != '/')
			fatalx("-L %s: give an absolute directory", local_dir);
		if ((r = hvd_mkdir(local_dir, 0700)) < 0) {
			errno = -r;
			fatal("%s", local_dir);
		}
		if ((hvd.conf = config_new()) == NULL)
			fatal("config");
		config_local(hvd.conf, local_dir);
		if (config_validate(hvd.conf, "built-in", err, sizeof(err)) < 0)
			fatalx("%s", err);
	} else {
		hvd.conf_path = conf_path ? conf_path : HVD_CONF_DEFAULT;
		if ((hvd.conf = config_load(hvd.conf_path, err, sizeof(err))) == NULL) {
			if (check_only) {
				fprintf(stderr, "%s\n", err);
				return 1;
			}
			fatalx("%s", err);
		}
		if (check_only) {
			fprintf(stderr, "%s: configuration OK\n", hvd.conf_path);
			config_free(hvd.conf);
			return 0;
		}
	}
	log_init(foreground, verbose ? LOG_LEVEL_DEBUG : hvd.conf->log_level,
	    "hvd");
	if (sodium_init() < 0)
		fatalx("libsodium failed to initialise");
	if (restore) {
		r = hvd_restore(&hvd, restore);
		config_free(hvd.conf);
		return r;
	}
	signal(SIGPIPE, SIG_IGN);

	hvd.started_wall = time(NULL);
	clock_gettime(CLOCK_MONOTONIC, &hvd.started_mono);
	if ((r = hvd_mkdir(hvd.conf->state_dir, 0700)) < 0) {
		errno = -r;
		fatal("state-dir %s", hvd.conf->state_dir);
	}
	snprintf(dbpath, sizeof(dbpath), "%s/hvd.db", hvd.conf->state_dir);
	if ((r = db_open(dbpath, &hvd.db)) < 0)
		fatalx("cannot open the inventory %s", dbpath);
	if ((hvd.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	hvd_raise_nofile();
	/* Before any key is loaded: the privileged helper inherits nothing
	 * secret. */
	if (hvd.conf->mesh_anchor && (r = mesh_priv_init(&hvd)) < 0)
		fatalx("cannot start the mesh helper");
	for (size_t i = 0; i < 3; i++) {
		ev_sig[i] = evsignal_new(hvd.base, sigs[i], hvd_signal, &hvd);
		if (ev_sig[i] == NULL || event_add(ev_sig[i], NULL) == -1)
			fatalx("cannot watch signal %d", sigs[i]);
	}
	if ((r = keys_init(&hvd)) < 0)
		fatalx("cannot load hvd's keys from %s", hvd.conf->state_dir);
	if ((r = fleet_init(&hvd)) < 0)
		fatalx("cannot load the hosts");
	if ((r = agents_init(&hvd, &hvd_agent_ops)) < 0)
		fatalx("cannot start the agent listener");
	if ((r = dhcp_init(&hvd)) < 0)
		fatalx("cannot start DHCP on %s", hvd.conf->dhcp_interface);
	if ((r = topology_init(&hvd)) < 0)
		fatalx("cannot read the network topology");
	if ((r = boot_init(&hvd)) < 0)
		fatalx("cannot set up the boot root %s", hvd.conf->boot_root);
	/* After boot_init, which creates the boot root on first start. */
	if ((r = tftp_init(&hvd)) < 0)
		fatalx("cannot start TFTP on %s:%u", hvd.conf->tftp_host,
		    hvd.conf->tftp_port);
	if ((r = http_init(&hvd, &hvd_routes)) < 0)
		fatalx("cannot start the REST API");
	if ((r = mesh_init(&hvd)) < 0)
		fatalx("cannot start the mesh");
	if ((r = migrate_init(&hvd)) < 0)
		fatalx("cannot load the unfinished migrations");
	/* Armed just before READY=1: systemd starts watching at start-up's
	 * end, and the first ping is half an interval later. */
	ev_watchdog = hvd_watchdog_new(hvd.base);
	log_info("hvd %s ready: inventory %s", HV_VERSION, dbpath);
	sd_notify(0, "READY=1\nSTATUS=serving");

	event_base_dispatch(hvd.base);

	/* Agents first: their pending commands finish deferred HTTP replies,
	 * which must be resumed before libmicrohttpd stops.  Migrations
	 * before them: what is open stays open in the database. */
	drain_shutdown();
	migrate_shutdown();
	agents_shutdown();
	mesh_shutdown();
	mesh_priv_shutdown();
	tftp_shutdown();
	dhcp_shutdown();
	http_shutdown();
	boot_shutdown();
	topology_shutdown();
	fleet_shutdown();
	keys_shutdown();
	api_shutdown();
	metrics_shutdown();
	for (size_t i = 0; i < 3; i++)
		if (ev_sig[i])
			event_free(ev_sig[i]);
	if (ev_watchdog)
		event_free(ev_watchdog);
	event_base_free(hvd.base);
	db_close(hvd.db);
	config_free(hvd.conf);
	log_info("hvd stopped");
	return 0;
}
