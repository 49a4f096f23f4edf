/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvd: the orchestration daemon's entry point and event loop.
 *
 * Start-up: parse flags, load and validate the config, check it against
 * this host (hvd -n stops here), lock the state directory, open the
 * inventory, start listeners, tell systemd READY.  Then one libevent loop
 * runs until SIGTERM or SIGINT; SIGHUP reloads the config (parse, validate
 * whole, swap).
 *
 * Nothing is created, in the state directory or elsewhere, before the
 * configuration has been checked whole; and nothing in the state directory
 * is touched before its lock is held, so a second hvd (or hvd --restore)
 * on the same state fails at once, naming the hvd that holds it.
 *
 * fatal() is allowed here, during start-up only.  Never fork: systemd (or
 * the operator's shell) supervises hvd directly.
 *
 * Under WatchdogSec= the loop itself pings systemd (WATCHDOG=1) from a
 * timer, never from a thread: the pings must stop when the loop stops.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <net/if.h>
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

#include "licence.h"
#include "rest.h"

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr,
	    "usage: hvd [-dnv] [-f file]\n"
	    "       hvd [-dv] -L dir\n"
	    "       hvd [-f file | -L dir] --restore backup-file\n"
	    "       hvd --version\n"
	    "  -d        stay in the foreground and log to stderr\n"
	    "  -f file   configuration file (default %s)\n"
	    "  -L dir    local mode: the built-in config, with state, socket\n"
	    "            and TCP port 127.0.0.1:8470 under dir (the demo)\n"
	    "  -n        check the configuration (and the interface it names)\n"
	    "            and exit\n"
	    "  --restore backup-file\n"
	    "            unpack a backup (hvctl backup) into the state directory,\n"
	    "            which must hold no inventory yet, check it, and exit\n"
	    "  -v        verbose: log debug messages\n"
	    "  --version print hvd's version and exit\n", HVD_CONF_DEFAULT);
	exit(2);
}

static bool hvd_verbose;		/* -v: debug whatever the file says */

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
	/* -v on the command line outlives any reload. */
	if (!hvd_verbose)
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

/*
 * What the config parser, a pure function, cannot know: whether this host
 * has what the configuration names.  Run by hvd -n too, and before
 * anything is created.
 */
static int
hvd_preflight(const struct hvd_config *c, const char *fname, char *err,
    size_t errlen)
{
	if (c->dhcp_interface[0] != '\0' &&
	    if_nametoindex(c->dhcp_interface) == 0) {
		int e = errno;

		snprintf(err, errlen, "%s: dhcp-interface %s: %s", fname,
		    c->dhcp_interface, e == ENODEV ?
		    "no such network interface on this host" : strerror(e));
		return -e;
	}
	return 0;
}

/*
 * The state directory's lock: state-dir/hvd.lock, a POSIX record lock held
 * for hvd's whole life, with hvd's PID in it as text for the operator.  The
 * kernel names the holder (F_GETLK), so a refusal names the right PID even
 * while the holder is still writing its own.  The file is removed at exit
 * (atexit, so after fatal() too); a locker checks that the file it locked
 * is still the one at the path, so that removal never lets two hvds in.
 * POSIX locks are not inherited, so the forked mesh helper holds none, and
 * the owner check keeps a child from removing the file.
 */
static struct {
	int fd;
	pid_t owner;
	char path[PATH_MAX + 16];
} hvd_lockfile = { .fd = -1 };

static void
hvd_unlock(void)
{
	if (hvd_lockfile.fd == -1 || getpid() != hvd_lockfile.owner)
		return;
	unlink(hvd_lockfile.path);
	close(hvd_lockfile.fd);
	hvd_lockfile.fd = -1;
}

/* The PID holding FD's lock: from the kernel, else the text in the file
 * (a holder in another PID namespace shows as 0); 0 if neither says. */
static long
hvd_lock_holder(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char buf[32];
	ssize_t n;
	long pid;

	if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK &&
	    fl.l_pid > 0)
		return (long)fl.l_pid;
	if ((n = pread(fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, NULL, 10);
	return pid > 0 ? pid : 0;
}

/* Creates the state directory if need be and takes its lock, or exits
 * saying why: the errno of an unwritable directory, or who holds it. */
static void
hvd_lock(const char *dir)
{
	struct flock fl;
	struct stat a, b;
	char pid[32];
	long holder;
	int fd = -1, n, r;

	if ((r = hvd_mkdir(dir, 0700)) < 0) {
		errno = -r;
		fatal("state directory %s", dir);
	}
	snprintf(hvd_lockfile.path, sizeof(hvd_lockfile.path), "%s/hvd.lock",
	    dir);
	for (int tries = 0; tries < 10 && fd == -1; tries++) {
		if ((fd = open(hvd_lockfile.path, O_RDWR | O_CREAT | O_CLOEXEC |
		    O_NOFOLLOW, 0600)) == -1)
			fatal("state directory %s", dir);
		fl = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET };
		if (fcntl(fd, F_SETLK, &fl) == -1) {
			if (errno != EAGAIN && errno != EACCES)
				fatal("state directory %s: locking %s", dir,
				    hvd_lockfile.path);
			if ((holder = hvd_lock_holder(fd)) > 0)
				fatalx("state directory %s is in use by hvd pid "
				    "%ld", dir, holder);
			fatalx("state directory %s is in use by another hvd "
			    "(%s is locked)", dir, hvd_lockfile.path);
		}
		/* Locked a file its last holder removed on the way out? */
		if (fstat(fd, &a) == -1 || stat(hvd_lockfile.path, &b) == -1 ||
		    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
			close(fd);
			fd = -1;
		}
	}
	if (fd == -1)
		fatalx("state directory %s: %s keeps being replaced; is "
		    "another hvd starting?", dir, hvd_lockfile.path);
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, pid, (size_t)n, 0) != n)
		fatal("state directory %s: %s", dir, hvd_lockfile.path);
	hvd_lockfile.fd = fd;
	hvd_lockfile.owner = getpid();
	atexit(hvd_unlock);
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
	.session = dash_session_check,
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
		{ "version", no_argument, NULL, 'V' },
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
		case 'V':
			printf("hvd %s\n%s\n", HV_VERSION, HV_LICENCE_LINE);
			return 0;
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
	if (optind != argc || (local_dir && (conf_path || check_only)) ||
	    (check_only && restore))
		usage();
	hvd_verbose = verbose;

	/* Until the configuration is checked, errors go to the terminal. */
	log_init(true, verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, "hvd");
	if (local_dir) {
		if (local_dir[0] != '/')
			fatalx("-L %s: give an absolute directory", local_dir);
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
	}
	if (hvd_preflight(hvd.conf, hvd.conf_path ? hvd.conf_path : "built-in",
	    err, sizeof(err)) < 0) {
		if (check_only) {
			fprintf(stderr, "%s\n", err);
			config_free(hvd.conf);
			return 1;
		}
		fatalx("%s", err);
	}
	if (check_only) {
		fprintf(stderr, "%s: configuration OK\n", hvd.conf_path);
		config_free(hvd.conf);
		return 0;
	}
	/* A restore is a command run by hand: it answers on the terminal. */
	log_init(foreground || restore, verbose ? LOG_LEVEL_DEBUG :
	    hvd.conf->log_level, "hvd");
	if (sodium_init() < 0)
		fatalx("libsodium failed to initialise");
	/* The configuration is checked: from here on things are created. */
	if (local_dir && (r = hvd_mkdir(local_dir, 0700)) < 0) {
		errno = -r;
		fatal("-L %s", local_dir);
	}
	hvd_lock(hvd.conf->state_dir);
	if (restore) {
		r = hvd_restore(&hvd, restore);
		config_free(hvd.conf);
		return r;
	}
	signal(SIGPIPE, SIG_IGN);

	hvd.started_wall = time(NULL);
	clock_gettime(CLOCK_MONOTONIC, &hvd.started_mono);
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
	if ((r = vm_ops_init(&hvd)) < 0)
		fatalx("cannot reserve VM operation ids");
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
	if ((r = feed_init(&hvd)) < 0)
		fatalx("cannot start the dashboard's live feed");
	if ((r = mesh_init(&hvd)) < 0)
		fatalx("cannot start the mesh");
	if ((r = migrate_init(&hvd)) < 0)
		fatalx("cannot load the unfinished migrations");
	if ((r = console_init(&hvd)) < 0)
		fatalx("cannot start the console broker");
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
	console_shutdown();
	backup_shutdown();
	feed_shutdown();
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
	dash_session_shutdown();
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
