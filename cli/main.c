/*
 * hvctl: the command-line client of hvd's REST API.
 *
 * A command table maps "family verb" to a function in cmd_<family>.c.
 * Global options come before the command; each command parses its own.
 * Talks to the unix socket by default, or to --url with a bearer token
 * (taken from $HVCTL_TOKEN rather than argv, where ps would show it).
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvctl.h"

struct hvctl_cmd {
	const char *family;
	const char *verb;	/* NULL: the family is the whole command */
	const char *args;
	const char *help;
	int (*run)(struct hvctl *h, int argc, char **argv);
};

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
	    "[--net VNI[=MAC]]... [--host H] [--label K=V] [--anti-affinity G] "
	    "[--no-wait]", "create a VM where it fits and wait until it runs",
	    cmd_vm_create },
	{ "vm", "list", "", "list VMs with host and state", cmd_vm_list },
	{ "vm", "show", "NAME", "a VM's spec, NICs, host and state", cmd_vm_show },
	{ "vm", "stop", "NAME [--no-wait]", "shut a VM down (destroyed after "
	    "30 s)", cmd_vm_stop },
	{ "vm", "start", "NAME [--no-wait]", "start a stopped VM again",
	    cmd_vm_start },
	{ "vm", "destroy", "NAME [--no-wait]", "destroy a VM and forget it",
	    cmd_vm_destroy },
	{ "vm", "console", "NAME", "the VM's console log", cmd_vm_console },
	{ "vm", "migrate", "NAME [--to HOST] [--no-wait]", "move a running VM "
	    "to another host (live, or stop-copy)", cmd_vm_migrate },
	{ "image", "add", "NAME FILE [--kind kernel|initramfs|disk]",
	    "add a kernel, initramfs or disk image to hvd's image store",
	    cmd_image_add },
	{ "image", "list", "", "list the image store", cmd_image_list },
	{ "image", "rm", "NAME", "remove an image no VM uses", cmd_image_rm },
	{ "backup", NULL, "FILE", "write the inventory and master key to FILE "
	    "(mode 0600) for hvd --restore", cmd_backup },
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
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: hvctl [--socket PATH | --url URL] [--json] COMMAND ...\n\n"
	    "commands:\n");
	for (size_t i = 0; i < sizeof(hvctl_cmds) / sizeof(*hvctl_cmds); i++) {
		const struct hvctl_cmd *c = &hvctl_cmds[i];
		char name[64];

		snprintf(name, sizeof(name), "%s%s%s %s", c->family,
		    c->verb ? " " : "", c->verb ? c->verb : "", c->args);
		fprintf(f, "  %-58s %s\n", name, c->help);
	}
	fprintf(f, "\noptions:\n"
	    "  --socket PATH  hvd's unix socket (default $HVCTL_SOCKET or %s)\n"
	    "  --url URL      talk TCP to URL (default $HVCTL_URL), with the\n"
	    "                 bearer token in $HVCTL_TOKEN\n"
	    "  --json         print the API's JSON instead of a table\n\n"
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

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "url", required_argument, NULL, 'u' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hvctl h = { 0 };
	const struct hvctl_cmd *cmd = NULL;
	int ch, r, skip;

	h.socket = getenv("HVCTL_SOCKET");
	h.url = getenv("HVCTL_URL");
	h.token = getenv("HVCTL_TOKEN");
	while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			h.socket = optarg;
			h.url = NULL;
			break;
		case 'u':
			h.url = optarg;
			break;
		case 'j':
			h.json = true;
			break;
		case 'h':
			usage(stdout);
			return HVCTL_OK;
		default:
			usage(stderr);
			return HVCTL_USAGE;
		}
	}
	if (h.socket == NULL)
		h.socket = HVCTL_SOCKET_DEFAULT;
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		usage(stderr);
		return HVCTL_USAGE;
	}
	for (size_t i = 0; i < sizeof(hvctl_cmds) / sizeof(*hvctl_cmds); i++) {
		const struct hvctl_cmd *c = &hvctl_cmds[i];

		if (strcmp(c->family, argv[0]) != 0)
			continue;
		if (c->verb == NULL || (argc > 1 && strcmp(c->verb, argv[1]) == 0)) {
			cmd = c;
			break;
		}
	}
	if (cmd == NULL) {
		fprintf(stderr, "hvctl: unknown command '%s%s%s'; try hvctl --help\n",
		    argv[0], argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
		return HVCTL_USAGE;
	}
	skip = cmd->verb ? 1 : 0;
	client_global_init();
	optind = 0;	/* getopt_long restarts for the command's own options */
	r = cmd->run(&h, argc - skip, argv + skip);
	client_global_cleanup();
	return r;
}
