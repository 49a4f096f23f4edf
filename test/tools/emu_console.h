/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * agent_emu's interactive consoles (emu_console.c): the agent's own relay
 * (agent/vm_console_attach.c) over ptys whose far side is a child that
 * answers.  A test tool, never installed.
 */
#ifndef HV_EMU_CONSOLE_H
#define HV_EMU_CONSOLE_H

#include <stdbool.h>

#include <jansson.h>

#include "msg.h"

struct emu_console;
/* SEND gets a message to send (malloc'd JSON text, SEND's to free). */
typedef void emu_send_fn(void *arg, char *json);
struct emu_console *emu_console_new(emu_send_fn *send, void *arg);
void emu_console_free(struct emu_console *ec);
/* The link is up (true) or gone (false: every session ends). */
void emu_console_link(struct emu_console *ec, bool up);
/* Runs what is ready on the relay's loop; returns at once. */
void emu_console_pump(struct emu_console *ec);
/* M is a vm.console_* request: answered through SEND (true), or not one
 * (false). */
bool emu_console_request(struct emu_console *ec, const struct msg *m);
/* "console_gone UUID": that VM's domain is gone from now on. */
void emu_console_gone(struct emu_console *ec, const char *uuid);
unsigned emu_console_sessions(const struct emu_console *ec);

#endif
