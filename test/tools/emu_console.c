/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * agent_emu's interactive consoles: the real relay (agent/vm_console_attach.c,
 * the code hv-agent runs) on a libevent loop that agent_emu's poll loop
 * pumps, so hvd is tested against the agent's own relay and schema checks.
 * The Xen side is emulated: each VM's console is a pty made on its first
 * attach (this process keeps the slave open, as xenconsoled does), whose
 * master a child process serves as the "guest":
 *   - each line it gets (ended by CR or LF) is answered "answer: LINE\r\n";
 *   - the line "flood N" is answered with N bytes of 'x' and then
 *     "\r\nflood done\r\n", for the ring's lost-bytes accounting.
 * Domains never go away unless a test says "console_gone UUID".
 * A test tool, never installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <event2/event.h>

#include "emu_console.h"
#include "vm_console_attach.h"

#define EMU_CONSOLE_VMS		16

struct emu_vm {
	char uuid[37];
	char path[64];
	int slave;			/* kept open, as xenconsoled does */
	pid_t child;
	bool gone;
};

struct emu_console {
	struct event_base *base;
	struct vca *relay;
	emu_send_fn *send;
	void *arg;
	bool up;
	struct emu_vm vms[EMU_CONSOLE_VMS];
	unsigned nvms;
};

static void
emu_guest_write(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			_exit(0);
		p += w;
		n -= (size_t)w;
	}
}

/* The "guest": answers each line on the pty's master side. */
static void __attribute__((noreturn))
emu_guest(int master)
{
	char line[4096], out[4200], chunk[512];
	size_t len = 0;
	ssize_t n;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (int fd = 3; fd < 1024; fd++)
		if (fd != master)
			close(fd);
	while ((n = read(master, chunk, sizeof(chunk))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			unsigned long flood;
			char *end;

			if (chunk[i] != '\n' && chunk[i] != '\r') {
				if (len < sizeof(line) - 1)
					line[len++] = chunk[i];
				continue;
			}
			if (len == 0)
				continue;
			line[len] = '\0';
			len = 0;
			if (strncmp(line, "flood ", 6) == 0 &&
			    (flood = strtoul(line + 6, &end, 10)) > 0 &&
			    *end == '\0') {
				memset(out, 'x', sizeof(out));
				while (flood > 0) {
					size_t k = flood < sizeof(out) ? flood :
					    sizeof(out);

					emu_guest_write(master, out, k);
					flood -= k;
				}
				emu_guest_write(master, "\r\nflood done\r\n", 14);
				continue;
			}
			snprintf(out, sizeof(out), "answer: %s\r\n", line);
			emu_guest_write(master, out, strlen(out));
		}
	}
	_exit(0);
}

static struct emu_vm *
emu_vm_of(struct emu_console *ec, const char *uuid)
{
	for (unsigned i = 0; i < ec->nvms; i++)
		if (strcmp(ec->vms[i].uuid, uuid) == 0)
			return &ec->vms[i];
	return NULL;
}

static int
emu_tty(void *arg, const char *uuid, char *path, size_t pathlen,
    uint32_t *domid, char *err, size_t errlen)
{
	struct emu_console *ec = arg;
	struct emu_vm *v = emu_vm_of(ec, uuid);
	int master = -1, slave = -1;
	char name[64];
	pid_t pid;

	if (v != NULL && v->gone) {
		snprintf(err, errlen, "%s is not running here", uuid);
		return -ESRCH;
	}
	if (v == NULL) {
		if (ec->nvms == EMU_CONSOLE_VMS) {
			snprintf(err, errlen, "agent_emu: too many consoles");
			return -ENOSPC;
		}
		if (openpty(&master, &slave, name, NULL, NULL) < 0) {
			snprintf(err, errlen, "openpty: %s", strerror(errno));
			return -errno;
		}
		if ((pid = fork()) < 0) {
			close(master);
			close(slave);
			snprintf(err, errlen, "fork: %s", strerror(errno));
			return -EAGAIN;
		}
		if (pid == 0)
			emu_guest(master);
		close(master);
		v = &ec->vms[ec->nvms++];
		snprintf(v->uuid, sizeof(v->uuid), "%s", uuid);
		snprintf(v->path, sizeof(v->path), "%s", name);
		v->slave = slave;
		v->child = pid;
	}
	snprintf(path, pathlen, "%s", v->path);
	*domid = 7;
	return 0;
}

static bool
emu_alive(void *arg, const char *uuid, uint32_t domid)
{
	struct emu_vm *v = emu_vm_of(arg, uuid);

	return v != NULL && !v->gone && domid == 7;
}

static void
emu_notify(void *arg, const char *method, json_t *params)
{
	struct emu_console *ec = arg;

	if (!ec->up) {
		json_decref(params);
		return;
	}
	ec->send(ec->arg, msg_encode_notify(method, params));
}

static size_t
emu_backlog(void *arg)
{
	(void)arg;
	return 0;		/* agent_emu writes synchronously */
}

static const struct vca_ops emu_ops = {
	.tty = emu_tty,
	.alive = emu_alive,
	.notify = emu_notify,
	.backlog = emu_backlog,
};

struct emu_console *
emu_console_new(emu_send_fn *send, void *arg)
{
	struct emu_console *ec = calloc(1, sizeof(*ec));

	if (ec == NULL || (ec->base = event_base_new()) == NULL ||
	    (ec->relay = vca_new(ec->base, &emu_ops, ec)) == NULL) {
		if (ec && ec->base)
			event_base_free(ec->base);
		free(ec);
		return NULL;
	}
	ec->send = send;
	ec->arg = arg;
	return ec;
}

void
emu_console_free(struct emu_console *ec)
{
	if (ec == NULL)
		return;
	vca_free(ec->relay);
	for (unsigned i = 0; i < ec->nvms; i++) {
		kill(ec->vms[i].child, SIGKILL);
		close(ec->vms[i].slave);
	}
	event_base_free(ec->base);
	free(ec);
}

void
emu_console_link(struct emu_console *ec, bool up)
{
	ec->up = up;
	if (!up)
		vca_drop_all(ec->relay);
}

void
emu_console_pump(struct emu_console *ec)
{
	event_base_loop(ec->base, EVLOOP_NONBLOCK);
}

bool
emu_console_request(struct emu_console *ec, const struct msg *m)
{
	static const struct {
		const char *method;
		enum msg_schema schema;
		json_t *(*run)(struct vca *, const json_t *, char *, size_t);
	} cmds[] = {
		{ "vm.console_attach", MSG_S_VM_CONSOLE_SESSION, vca_attach },
		{ "vm.console_input", MSG_S_VM_CONSOLE_INPUT, vca_input },
		{ "vm.console_detach", MSG_S_VM_CONSOLE_SESSION, vca_detach },
	};
	char err[256] = "";
	json_t *res;

	for (size_t i = 0; i < sizeof(cmds) / sizeof(*cmds); i++) {
		if (strcmp(cmds[i].method, m->method) != 0)
			continue;
		/* As hv-agent's dispatch does (agent/link.c). */
		if (msg_check(cmds[i].schema, m->params, err, sizeof(err)) < 0)
			ec->send(ec->arg, msg_encode_error(m->id, "invalid", "%s",
			    err));
		else if ((res = cmds[i].run(ec->relay, m->params, err,
		    sizeof(err))) == NULL)
			ec->send(ec->arg, msg_encode_error(m->id, "failed", "%s",
			    err[0] ? err : "out of memory"));
		else
			ec->send(ec->arg, msg_encode_result(m->id, res));
		return true;
	}
	return false;
}

void
emu_console_gone(struct emu_console *ec, const char *uuid)
{
	struct emu_vm *v = emu_vm_of(ec, uuid);

	if (v != NULL)
		v->gone = true;
}

unsigned
emu_console_sessions(const struct emu_console *ec)
{
	return vca_sessions(ec->relay);
}
