/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * hvctl: the command-line client of hvd's REST API.
 *
 * A command table maps "family verb" to a function in cmd_<family>.c; the
 * table's usage line and help text are all the help there is, printed by
 * hvctl help, hvctl --help and COMMAND --help.  Each command parses its own
 * options with getopt_long; main() first takes out of the line what is
 * hvctl's own, anywhere up to the first "--": the global options (--json,
 * --socket PATH, --url URL, full names only) and --help/-h.  An element that
 * is the value of the command option before it (--cmdline --json) is left
 * alone: which command options take a value is read off the usage line,
 * where such an option is followed by its metavariable (--vni N) and a
 * flag is not (--no-wait]).  So a usage line must show every option.
 *
 * main() never runs a command it was asked for help about.  Talks to the
 * unix socket by default, or to --url with a bearer token (taken from
 * $HVCTL_TOKEN rather than argv, where ps would show it).
 */
#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "licence.h"
#include "hvctl.h"

struct hvctl_cmd {
	const char *family;
	const char *verb;	/* NULL: the family is the whole command */
	const char *args;	/* every option, values as metavariables */
	const char *help;
	int (*run)(struct hvctl *h, int argc, char **argv);
};

static int cmd_help(struct hvctl *h, int argc, char **argv);
static int cmd_version(struct hvctl *h, int argc, char **argv);

static const struct hvctl_cmd hvctl_cmds[] = {
	{ "status", NULL, "", "show hvd's version, listeners and inventory",
	    cmd_status },
	{ "net", "create", "NAME --vni N [--description TEXT] [--all-hosts | "
	    "--member HOST... | --members-only]",
	    "create a VXLAN network (default: all hosts are members)",
	    cmd_net_create },
	{ "net", "list", "", "list networks", cmd_net_list },
	{ "net", "show", "NAME|VNI", "show one network with its members, their "
	    "VTEPs and mesh sync state", cmd_net_show },
	{ "net", "delete", "NAME|VNI", "delete a network", cmd_net_delete },
	{ "vm", "create", "NAME --vcpus N --memory MIB [--type pv|pvh] "
	    "[--kernel IMG] [--initramfs IMG] [--cmdline TEXT] [--disk IMG] "
	    "[--net VNI[=MAC]]... [--rate RATE] [--host H] [--label K=V] "
	    "[--anti-affinity G] "
	    "[--no-wait]", "create a VM where it fits and wait until it runs",
	    cmd_vm_create },
	{ "vm", "list", "", "list VMs with host and state", cmd_vm_list },
	{ "vm", "show", "NAME", "a VM's spec, NICs, host and state", cmd_vm_show },
	{ "vm", "stop", "NAME [--no-wait]", "shut a VM down (destroyed after "
	    "30 s)", cmd_vm_stop },
	{ "vm", "start", "NAME [--no-wait]", "start a stopped VM again",
	    cmd_vm_start },
	{ "vm", "reboot", "NAME [--no-wait]", "reboot a running VM (reset if "
	    "it has not rebooted after 30 s)", cmd_vm_reboot },
	{ "vm", "destroy", "NAME [--no-wait]", "destroy a VM and forget it",
	    cmd_vm_destroy },
	{ "vm", "console", "NAME [--attach]", "the VM's console log; with "
	    "--attach, its console read-write (Ctrl-] detaches)",
	    cmd_vm_console_main },
	{ "vm", "migrate", "NAME [--to HOST] [--no-wait]", "move a running VM "
	    "to another host (live, or stop-copy)", cmd_vm_migrate },
	{ "image", "add", "NAME FILE [--kind kernel|initramfs|disk]",
	    "add a kernel, initramfs or disk image to hvd's image store",
	    cmd_image_add },
	{ "image", "list", "", "list the image store", cmd_image_list },
	{ "image", "rm", "NAME", "remove an image no VM uses", cmd_image_rm },
	{ "backup", NULL, "[--force] FILE", "write the inventory and master key "
	    "to FILE (mode 0600) for hvd --restore; --force replaces FILE",
	    cmd_backup },
	{ "host", "add", "NAME (--out DIR | --pubkey HEX)",
	    "enrol a host: issue agent credentials, or register a key",
	    cmd_host_add },
	{ "host", "list", "", "list hosts (discovered ones too) with state, "
	    "CPU and memory", cmd_host_list },
	{ "host", "show", "NAME|FINGERPRINT|MAC", "a host's identity, settings, "
	    "facts and live state", cmd_host_show },
	{ "host", "telemetry", "NAME", "a host's latest telemetry and history",
	    cmd_host_telemetry },
	{ "host", "adopt", "FINGERPRINT|MAC --name NAME [--net VNI]... "
	    "[--label K=V]... [--ssh-keys FILE] [--mount SRC:PATH[:FS[:OPTS]]]...",
	    "adopt a discovered machine as host NAME", cmd_host_adopt },
	{ "host", "replace", "NAME --fingerprint FP", "move host NAME (its "
	    "underlay IP, networks, settings) onto new hardware",
	    cmd_host_replace },
	{ "host", "retire", "NAME", "take a host out of service for good",
	    cmd_host_retire },
	{ "host", "delete", "NAME|FINGERPRINT", "remove a retired host's record "
	    "(its fingerprint stays refused at boot)", cmd_host_delete },
	{ "host", "edit", "NAME [--net VNI]... [--no-nets] [--label K=V]... "
	    "[--no-labels] [--ssh-keys FILE] [--mount ...]... [--no-mounts]",
	    "change a host's networks, labels, SSH keys or mounts",
	    cmd_host_edit },
	{ "host", "drain", "NAME [--no-wait]", "maintenance: place nothing on "
	    "NAME and move its VMs away", cmd_host_drain },
	{ "host", "undrain", "NAME", "end maintenance: NAME takes VMs again",
	    cmd_host_undrain },
	{ "host", "call", "NAME METHOD [PARAMS-JSON]",
	    "run ping, facts.refresh or config.apply on a host's agent",
	    cmd_host_call },
	{ "boot", "list", "", "the boot files hvd serves and where they came from",
	    cmd_boot_list },
	{ "boot", "import", "DIR", "import xen, vmlinuz, initramfs, modloop from DIR",
	    cmd_boot_import },
	{ "top", NULL, "[--once] [--interval S]", "live view of all hosts",
	    cmd_top },
	{ "token", "create", "--role admin|read [--name NAME]",
	    "create an API token (printed once)", cmd_token_create },
	{ "token", "list", "", "list API tokens (never their secrets)",
	    cmd_token_list },
	{ "token", "revoke", "ID", "revoke an API token", cmd_token_revoke },
	{ "help", NULL, "[COMMAND...]", "print the usage of every command, or "
	    "of those named (a family, or family and verb)", cmd_help },
	{ "version", NULL, "", "print hvctl's version", cmd_version },
};

#define NCMDS (sizeof(hvctl_cmds) / sizeof(*hvctl_cmds))

/* "  family verb ARGS" whole on one line, the help text under it. */
static void
cmd_print(FILE *f, const char *lead, const struct hvctl_cmd *c)
{
	fprintf(f, "%s%s%s%s%s%s\n      %s\n", lead, c->family,
	    c->verb ? " " : "", c->verb ? c->verb : "", c->args[0] ? " " : "",
	    c->args, c->help);
}

/* Every command whose family is FAMILY and, unless NULL, verb is VERB. */
static size_t
cmds_print(FILE *f, const char *family, const char *verb)
{
	size_t n = 0;

	for (size_t i = 0; i < NCMDS; i++) {
		const struct hvctl_cmd *c = &hvctl_cmds[i];

		if (strcmp(c->family, family) != 0 || (verb != NULL &&
		    (c->verb == NULL || strcmp(c->verb, verb) != 0)))
			continue;
		cmd_print(f, "  ", c);
		n++;
	}
	return n;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: hvctl [--socket PATH | --url URL] [--json] COMMAND "
	    "[ARG...]\n"
	    "       hvctl help [COMMAND...] | hvctl COMMAND --help | "
	    "hvctl --version\n\n"
	    "commands:\n");
	for (size_t i = 0; i < NCMDS; i++)
		cmd_print(f, "  ", &hvctl_cmds[i]);
	fprintf(f, "\nglobal options, anywhere on the line before a \"--\":\n"
	    "  --socket PATH  hvd's unix socket (default $HVCTL_SOCKET or %s)\n"
	    "  --url URL      talk TCP to URL (default $HVCTL_URL), with the\n"
	    "                 bearer token in $HVCTL_TOKEN\n"
	    "  --ca FILE      https: a CA that signed hvd's certificate\n"
	    "                 (default $HVCTL_CA)\n"
	    "  --pin PIN      https: hvd's key, sha256//BASE64 as hvd logs it\n"
	    "                 (default $HVCTL_PIN); remembered in\n"
	    "                 ~/.config/hvctl/known_hosts once it worked\n"
	    "  --json         print the API's JSON instead of a table\n"
	    "  --help, -h     this help; with a command, that command's help\n"
	    "  --version      print hvctl's version\n\n"
	    "exit status: 0 ok, 1 failure, 2 usage, 3 hvd not running,\n"
	    "             4 permission denied, 5 request rejected by the API\n",
	    HVCTL_SOCKET_DEFAULT);
}

int
hvctl_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hvctl %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return HVCTL_USAGE;
}

/* hvctl help [FAMILY [VERB]] */
static int
cmd_help(struct hvctl *h, int argc, char **argv)
{
	(void)h;
	if (argc == 1) {
		usage(stdout);
		return HVCTL_OK;
	}
	if (argc > 3)
		return hvctl_usage_error("help", "expects at most FAMILY VERB");
	if (cmds_print(stdout, argv[1], argc == 3 ? argv[2] : NULL) == 0) {
		fprintf(stderr, "hvctl help: no command '%s%s%s'; try hvctl "
		    "help\n", argv[1], argc > 2 ? " " : "", argc > 2 ? argv[2] :
		    "");
		return HVCTL_USAGE;
	}
	return HVCTL_OK;
}

static int
cmd_version(struct hvctl *h, int argc, char **argv)
{
	(void)h;
	(void)argv;
	if (argc != 1)
		return hvctl_usage_error("version", "takes no arguments");
	printf("hvctl %s\n%s\n", HV_VERSION, HV_LICENCE_LINE);
	return HVCTL_OK;
}

/*
 * Whether the command option ARG ("--name", or an abbreviation of it that
 * getopt_long would take) needs a value, read off C's usage line: there an
 * option with a value is followed by its metavariable ("--vni N", "--type
 * pv|pvh", "--mount ...") and a flag by "]", "|", "[" or nothing.
 */
static bool
opt_takes_value(const struct hvctl_cmd *c, const char *arg)
{
	const char *p = c->args, *want = arg + 2;
	size_t wlen = strlen(want);
	int exact = -1, pvalue = 0, pflag = 0;

	while ((p = strstr(p, "--")) != NULL) {
		const char *name = p + 2, *e = name;
		bool value;

		while (islower((unsigned char)*e) || isdigit((unsigned char)*e) ||
		    *e == '-')
			e++;
		p = e;
		value = e[0] == ' ' && e[1] != '\0' && strchr("[(|-", e[1]) ==
		    NULL;
		if ((size_t)(e - name) == wlen && memcmp(name, want, wlen) == 0)
			exact = value;
		else if ((size_t)(e - name) > wlen && memcmp(name, want,
		    wlen) == 0)
			*(value ? &pvalue : &pflag) += 1;
	}
	if (exact != -1)
		return exact;
	/* Ambiguous between a flag and an option: getopt_long refuses it. */
	return pvalue > 0 && pflag == 0;
}

/*
 * If argv[*i] is a global option, apply it to H, step *i past its value
 * and return 1; return 0 if it is not one, or HVCTL_USAGE's negative when
 * its value is missing.
 */
static int
global_opt(struct hvctl *h, int argc, char **argv, int *i)
{
	static const char *const withval[] = { "--socket", "--url", "--ca",
	    "--pin" };
	const char *a = argv[*i], *val = NULL;
	size_t k, len;

	if (strcmp(a, "--json") == 0) {
		h->json = true;
		return 1;
	}
	for (k = 0; k < sizeof(withval) / sizeof(*withval); k++) {
		len = strlen(withval[k]);
		if (strncmp(a, withval[k], len) != 0)
			continue;
		if (a[len] == '=')
			val = a + len + 1;
		else if (a[len] == '\0' && *i + 1 < argc)
			val = argv[++*i];
		else if (a[len] != '\0')
			continue;
		if (val == NULL || *val == '\0') {
			fprintf(stderr, "hvctl: %s needs a value; try hvctl "
			    "help\n", withval[k]);
			return -HVCTL_USAGE;
		}
		if (k == 0) {
			h->socket = val;
			h->url = NULL;
		} else if (k == 1)
			h->url = val;
		else if (k == 2)
			h->ca = val;
		else
			h->pin = val;
		return 1;
	}
	return 0;
}

static bool
is_help(const char *a)
{
	return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

/* hvctl's own options, wherever they stand: a global option (applied to
 * H) or --help/-h (*help set).  1 if argv[*i] was one, 0 if not, or
 * HVCTL_USAGE's negative for a global option missing its value. */
static int
own_opt(struct hvctl *h, int argc, char **argv, int *i, bool *help)
{
	int r;

	if ((r = global_opt(h, argc, argv, i)) != 0)
		return r;
	if (is_help(argv[*i])) {
		*help = true;
		return 1;
	}
	return 0;
}

static const struct hvctl_cmd *
cmd_find(const char *family, const char *verb)
{
	for (size_t i = 0; i < NCMDS; i++) {
		const struct hvctl_cmd *c = &hvctl_cmds[i];

		if (strcmp(c->family, family) == 0 && (c->verb == NULL ||
		    (verb != NULL && strcmp(c->verb, verb) == 0)))
			return c;
	}
	return NULL;
}

/*
 * The commands that run on after their first answer: top, and those that
 * follow what they started.  Their GETs wait out an hvd restart
 * (client.c); every other command fails at once when hvd is away.
 */
/* Whether C talks to hvd (help and version do not). */
static bool
cmd_talks(const struct hvctl_cmd *c)
{
	return c->run != cmd_help && c->run != cmd_version;
}

static bool
cmd_follows(const struct hvctl_cmd *c)
{
	static const char *const follow[][2] = {
		{ "top", NULL }, { "host", "drain" }, { "vm", "create" },
		{ "vm", "stop" }, { "vm", "start" }, { "vm", "reboot" },
		{ "vm", "destroy" }, { "vm", "migrate" },
	};

	for (size_t i = 0; i < sizeof(follow) / sizeof(*follow); i++)
		if (strcmp(c->family, follow[i][0]) == 0 && (c->verb == NULL ?
		    follow[i][1] == NULL : follow[i][1] != NULL &&
		    strcmp(c->verb, follow[i][1]) == 0))
			return true;
	return false;
}

static bool
family_known(const char *family)
{
	for (size_t i = 0; i < NCMDS; i++)
		if (strcmp(hvctl_cmds[i].family, family) == 0)
			return true;
	return false;
}

int
main(int argc, char **argv)
{
	struct hvctl h = { 0 };
	const struct hvctl_cmd *cmd = NULL;
	const char *family = NULL;
	bool help = false, ended = false, value_next = false;
	char name[64];
	int i, r, base, n;

	h.socket = getenv("HVCTL_SOCKET");
	h.url = getenv("HVCTL_URL");
	h.token = getenv("HVCTL_TOKEN");
	h.ca = getenv("HVCTL_CA");
	h.pin = getenv("HVCTL_PIN");
	/* Up to the command's words: only hvctl's own options. */
	for (i = 1; i < argc && cmd == NULL; i++) {
		const char *a = argv[i];

		if (!ended) {
			if (strcmp(a, "--") == 0) {
				ended = true;
				continue;
			}
			if ((r = own_opt(&h, argc, argv, &i, &help)) != 0) {
				if (r < 0)
					return -r;
				continue;
			}
			if (strcmp(a, "--version") == 0)
				return cmd_version(&h, 1, argv);
			if (a[0] == '-' && a[1] != '\0') {
				fprintf(stderr, "hvctl: unknown option '%s'; "
				    "try hvctl help\n", a);
				return HVCTL_USAGE;
			}
		}
		if (family == NULL) {
			if (!family_known(a)) {
				fprintf(stderr, "hvctl: unknown command '%s'; "
				    "try hvctl help\n", a);
				return HVCTL_USAGE;
			}
			family = a;
			cmd = cmd_find(family, NULL);
		} else if ((cmd = cmd_find(family, a)) == NULL) {
			fprintf(stderr, "hvctl: unknown command '%s %s'; try "
			    "hvctl help %s\n", family, a, family);
			return HVCTL_USAGE;
		}
	}
	if (h.socket == NULL)
		h.socket = HVCTL_SOCKET_DEFAULT;
	if (cmd == NULL && family == NULL) {
		usage(help ? stdout : stderr);
		return help ? HVCTL_OK : HVCTL_USAGE;
	}
	if (cmd == NULL) {
		/* A family alone is an incomplete command, unless asked. */
		if (!help)
			fprintf(stderr, "hvctl %s: needs one of:\n", family);
		cmds_print(help ? stdout : stderr, family, NULL);
		return help ? HVCTL_OK : HVCTL_USAGE;
	}

	/*
	 * The command's arguments, compacted in place behind its last word
	 * (argv[base]) without hvctl's own options.  A "--" stays for the
	 * commands with options, whose getopt_long ends there; the others
	 * read argv positionally and would take it for an argument.
	 */
	base = i - 1;
	n = 1;
	for (; i < argc; i++) {
		char *a = argv[i];

		if (ended || value_next) {
			value_next = false;
			argv[base + n++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			ended = true;
			if (strstr(cmd->args, "--") != NULL)
				argv[base + n++] = a;
			continue;
		}
		if ((r = own_opt(&h, argc, argv, &i, &help)) != 0) {
			if (r < 0)
				return -r;
			continue;
		}
		if (strncmp(a, "--", 2) == 0 && strchr(a, '=') == NULL)
			value_next = opt_takes_value(cmd, a);
		argv[base + n++] = a;
	}
	argv[base + n] = NULL;
	if (help) {
		cmd_print(stdout, "usage: hvctl ", cmd);
		return HVCTL_OK;
	}
	/* getopt_long's messages then name the command. */
	snprintf(name, sizeof(name), "hvctl %s%s%s", cmd->family, cmd->verb ?
	    " " : "", cmd->verb ? cmd->verb : "");
	argv[base] = name;
	h.follow = cmd_follows(cmd);
	client_global_init();
	optind = 0;	/* getopt_long restarts for the command's own options */
	/* Commands that never talk to hvd (help, version, completion)
	 * need no key checked, and get none fetched. */
	if (h.url != NULL && cmd_talks(cmd) &&
	    (r = tls_trust_prepare(&h)) != HVCTL_OK) {
		client_global_cleanup();
		return r;
	}
	r = cmd->run(&h, n, argv + base);
	client_global_cleanup();
	if (r == HVCTL_USAGE && cmd->run != cmd_help)
		fprintf(stderr, "usage: %s%s%s\n", name, cmd->args[0] ? " " : "",
		    cmd->args);
	return r;
}
