#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# hvctl vm reboot, hvd's side (PROTOCOL.md 6.2 vm.reboot), against the
# real hvd and a real SQLite inventory, with emulated agents
# (test/tools/agent_emu) and one real hv-agent without Xen:
#  (a) POST /api/v1/vms/NAME/reboot: 202 with an operation; the VM's host
#      gets vm.reboot with exactly the VM's uuid; the operation stays
#      pending (a second reboot meanwhile is 409, and sends nothing) until
#      the agent reports running again, then it is done and names the new
#      domain; an event records who asked;
#  (b) hvctl vm reboot waits and prints the operation's end: done, with
#      the agent's reason when it was a reset; --no-wait returns at once;
#      a session lost while a reboot is pending: the vm.list after the
#      reconnect ends it (a new domain: done; the same one: failed), so
#      the next reboot is not refused for ever;
#  (c) the agent's error fails the operation with its message (hvctl exit
#      1); a guest that powers off instead fails it too, saying so;
#  (d) refusals, 409 naming why and nothing sent: a VM that is not running
#      (naming its state), one that is migrating, one whose host has no
#      session; 404 for an unknown VM; 403 for a read token;
#  (e) a real hv-agent (no Xen) takes hvd's vm.reboot params (its strict
#      schema) and refuses with "no Xen on this host".
# The agent's own side (the guest asked, the domain created again, the
# reset after its bound) needs Xen: test/e2e.
if [ -z "${HV_IN_NETNS:-}" ]; then
	exec unshare --net env HV_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
ip addr add 10.0.0.5/32 dev lo
ip addr add 10.0.0.6/32 dev lo
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/emu_lib.sh"
: "${HV_AGENT:?HV_AGENT must point at the hv-agent binary}"

emu_hvd_up
for h in h1 h2 h3; do "$HVCTL" host add $h --out "$T/$h" >/dev/null; done

host_up() { sock GET "/api/v1/hosts/$1" | grep -q '"state":"up"'; }
host_down() { ! host_up "$1"; }
has_xen() { sock GET "/api/v1/hosts/$1/telemetry" | grep -q '"xen_version":"4.17"'; }
reboot() { sock POST "/api/v1/vms/$1/reboot"; }
state() { notify h1 vm.state "{\"uuid\":\"$U\",\"name\":\"web1\",\"state\":\"$1\"$2}"; }

emu h1 10.0.0.5
emu h2 10.0.0.6
expect "h1 and h2 are up, with Xen" "$(wait_for 15 has_xen h1) $(wait_for 15 has_xen h2)" "[0-9]* [0-9]*"

r=$(sock POST /api/v1/vms '{"name":"web1","vcpus":1,"memory_mib":64,"kernel":"vmlinuz-guest","networks":[{"vni":100}]}')
expect "web1 created on h1 (equal hosts: the name decides)" "$r" "202 *\"host\":\"h1\"*"
U=$(vm_field web1 uuid)
wait_for 10 has_reqs h1 vm.create 1 >/dev/null

# (d) Not running yet (creating): refused, naming the state.
expect_eq "(d) a VM not running: 409 naming its state" "$(reboot web1)" \
	'409 {"error":"VM web1 is not running (state creating); only a running VM can be rebooted"}'
state running ',"domid":5'
expect "web1 runs on h1" "$(wait_for 10 vm_is web1 state running)" "[0-9]*"
expect_eq "(d) unknown VM: 404" "$(reboot nosuch)" "404 {\"error\":\"no VM 'nosuch'\"}"
READ=$("$HVCTL" token create --role read --name ro 2>/dev/null)
expect "(d) a read token may not reboot: 403" "$(tcp "$READ" POST /api/v1/vms/web1/reboot)" "403 *"
expect_eq "(d) nothing was sent" "$(nreqs h1 vm.reboot)" 0

# (a) The request, the pending operation, the VM back.
r=$(reboot web1)
expect "(a) reboot: 202 with an operation" "$r" '202 {"operation":*,"vm":"web1","host":"h1"}'
OP=$(jget "${r#* }" "d['operation']")
expect "(a) h1 got vm.reboot" "$(wait_for 10 has_reqs h1 vm.reboot 1)" "[0-9]*"
expect_eq "(a) ... with exactly web1's uuid" "$(reqs h1 vm.reboot)" "{\"uuid\": \"$U\"}"
sleep 0.5
expect_eq "(a) accepted, the operation waits for the VM" \
	"$(op_json "$OP" | field "(d['action'], d['vm'], d['state'], d['message'])")" \
	"('reboot', 'web1', 'pending', '')"
expect_eq "(a) web1 is still running, desired running" \
	"$(sock GET /api/v1/vms/web1 | cut -d' ' -f2- | field "(d['state'], d['desired'])")" \
	"('running', 'running')"
expect_eq "(a) a second reboot meanwhile: 409" "$(reboot web1)" \
	"409 {\"error\":\"a reboot of VM web1 is already under way (operation $OP)\"}"
expect_eq "(a) ... and nothing more was sent" "$(nreqs h1 vm.reboot)" 1
state running ',"domid":6,"reason":"reboot"'
expect "(a) running again: the operation is done" "$(wait_for 10 op_is "$OP" done)" "[0-9]*"
expect_eq "(a) ... naming the new domain" "$(op_field "$OP" message)" "running again (domain 6)"
expect_eq "(a) web1 runs as domain 6" "$(sock GET /api/v1/vms/web1 | cut -d' ' -f2- | field "(d['state'], d['domid'])")" "('running', 6)"
expect "(a) an event says who asked" "$(sock GET '/api/v1/events?subject=web1')" \
	"*\"vm.reboot\"*operation $OP*"
expect "(a) hvd's log says so" "$(grep -c "vm web1: reboot on h1 asked by .* (operation $OP)" "$T/hvd.log")" "[1-9]*"

# (b) hvctl waits; a reset is reported with the agent's reason.
set +e
"$HVCTL" vm reboot web1 > "$T/cli.out" 2> "$T/cli.err" &
CLI=$!
wait_for 10 has_reqs h1 vm.reboot 2 >/dev/null
sleep 0.7
expect "(b) hvctl still waits" "$(kill -0 $CLI 2>/dev/null && echo waiting)" waiting
state running ',"domid":7,"reason":"reboot timed out; reset (destroyed and created again)"'
wait "$CLI"; rc=$?
expect "(b) hvctl vm reboot: exit 0, the operation" "$rc $(head -1 "$T/cli.out")" "0 reboot web1: operation [0-9]*"
expect "(b) ... and its end, with the reset said" "$(tail -1 "$T/cli.out")" \
	"operation [0-9]* (reboot web1): done: running again (domain 7): reboot timed out; reset (destroyed and created again)"
"$HVCTL" vm reboot web1 --no-wait > "$T/cli.out" 2>&1; rc=$?
expect "(b) --no-wait: exit 0 at once, the operation named" "$rc $(cat "$T/cli.out")" "0 reboot web1: operation [0-9]*"
OPNW=$(sed -n 's/.*operation \([0-9]*\)$/\1/p' "$T/cli.out")
expect_eq "(b) ... still pending" "$(op_field "$OPNW" state)" pending
state running ',"domid":8,"reason":"reboot"'
expect "(b) ... and done when web1 runs again" "$(wait_for 10 op_is "$OPNW" done)" "[0-9]*"
"$HVCTL" vm reboot > /dev/null 2>&1; rc=$?
expect "(b) no NAME: usage error" "$rc" 2

# (b) The session is lost while a reboot is pending: the vm.state went
# with it, so the vm.list after reconnecting decides.
vmlist() { ctl h1 "vms [{\"name\":\"web1\",\"uuid\":\"$U\",\"domid\":$1,\"state\":\"running\",\"memory_mib\":64,\"vcpus\":1}]"; }
up_again() { [ "$(grep -c '"up"' "$T/h1.log")" -ge "$1" ]; }
r=$(reboot web1); OPL=$(jget "${r#* }" "d['operation']")
vmlist 12
ctl h1 drop
expect "(b) h1 reconnects" "$(wait_for 15 up_again 2)" "[0-9]*"
expect "(b) a new domain in vm.list: done" "$(wait_for 10 op_is "$OPL" done)" "[0-9]*"
expect_eq "(b) ... saying how it knows" "$(op_field "$OPL" message)" \
	"running again (domain 12), seen after the session to h1 came back"
expect_eq "(b) ... and the new domain is recorded" "$(vm_field web1 domid)" 12
r=$(reboot web1); OPL=$(jget "${r#* }" "d['operation']")
ctl h1 drop
expect "(b) h1 reconnects again" "$(wait_for 15 up_again 3)" "[0-9]*"
expect "(b) the same domain: failed" "$(wait_for 10 op_is "$OPL" failed)" "[0-9]*"
expect_eq "(b) ... saying what runs" "$(op_field "$OPL" message)" \
	"the session to h1 was lost before the reboot was reported; web1 still runs as domain 12 (not rebooted?)"
expect "(b) so the next reboot is not refused" "$(reboot web1)" "202 *"
state running ',"domid":13,"reason":"reboot"'
wait_for 10 vm_is web1 domid 13 >/dev/null

# (c) The agent refuses: the operation fails with its message.
ctl h1 "error vm.reboot web1 is stopping; not rebooted"
sleep 0.3
"$HVCTL" vm reboot web1 > "$T/cli.out" 2> "$T/cli.err"; rc=$?
expect "(c) the agent's error: exit 1, its message" "$rc $(tail -1 "$T/cli.out")" \
	"1 operation [0-9]* (reboot web1): failed: the agent refused reboot: web1 is stopping; not rebooted"
expect_eq "(c) web1 is still running" "$(vm_field web1 state)" running
ctl h1 'reply vm.reboot {"accepted":true}'
sleep 0.3
# The guest powers off instead of rebooting.
n=$(nreqs h1 vm.reboot)
"$HVCTL" vm reboot web1 > "$T/cli.out" 2> "$T/cli.err" &
CLI=$!
wait_for 10 has_reqs h1 vm.reboot $((n + 1)) >/dev/null
state stopped ',"reason":"poweroff"'
wait "$CLI"; rc=$?
expect "(c) powered off instead: exit 1, said so" "$rc $(tail -1 "$T/cli.out")" \
	"1 operation [0-9]* (reboot web1): failed: stopped instead of running again: poweroff"

# (d) Not running (stopped): 409 naming the state, hvctl exit 5.
n=$(nreqs h1 vm.reboot)
"$HVCTL" vm reboot web1 > "$T/cli.out" 2> "$T/cli.err"; rc=$?
expect "(d) hvctl vm reboot of a stopped VM: exit 5, the state named" "$rc $(cat "$T/cli.err")" \
	"5 *VM web1 is not running (state stopped); only a running VM can be rebooted*"
state running ',"domid":9'
wait_for 10 vm_is web1 state running >/dev/null

# (d) Migrating: refused until the migration ends.
ctl h2 'reply vm.migrate_in {"accepted":true,"port":47123}'
r=$(sock POST /api/v1/vms/web1/migrate '{"to":"h2"}')
expect "(d) a migration of web1 to h2 starts" "$r" "202 *"
MOP=$(jget "${r#* }" "d['operation']")
wait_for 10 has_reqs h2 vm.migrate_in 1 >/dev/null
expect_eq "(d) a migrating VM: 409" "$(reboot web1)" \
	'409 {"error":"VM web1 is migrating; reboot it when the migration has ended"}'
ID=$(reqs h2 vm.migrate_in | tail -1 | field "d['id']")
notify h2 vm.migration "{\"uuid\":\"$U\",\"id\":\"$ID\",\"role\":\"target\",\"phase\":\"failed\",\"reason\":\"test\"}"
wait_for 10 op_is "$MOP" failed >/dev/null
expect_eq "(d) ... web1 stays on h1" "$(vm_field web1 host)" h1

# (d) The host has no session.
kill "${EMU[h1]}"
expect "h1 is down" "$(wait_for 15 host_down h1)" "[0-9]*"
expect_eq "(d) the host without a session: 409" "$(reboot web1)" \
	'409 {"error":"host h1 has no agent session"}'
expect_eq "(d) nothing was sent by any refusal" "$(nreqs h1 vm.reboot)" "$n"
set -e

# (e) A real hv-agent (no Xen) as h3, with web1's row moved onto it.
echo "session-file $T/h3/session" >> "$T/h3/agent.conf"
echo "mesh-file $T/h3/mesh.json" >> "$T/h3/agent.conf"
"$HV_AGENT" -d -f "$T/h3/agent.conf" >> "$T/agent.log" 2>&1 &
track_pid $!
expect "h3 (a real agent) is up" "$(wait_for 15 host_up h3)" "[0-9]*"
sqlite3 -cmd ".timeout 5000" "$T/state/hvd.db" \
	"UPDATE vms SET host_id = (SELECT id FROM hosts WHERE name = 'h3') WHERE name = 'web1'"
expect_eq "web1 now on h3, running" "$(sock GET /api/v1/vms/web1 | cut -d' ' -f2- | field "(d['host'], d['state'])")" "('h3', 'running')"
r=$(reboot web1)
expect "(e) reboot on h3: 202" "$r" '202 {"operation":*,"host":"h3"}'
OP=$(jget "${r#* }" "d['operation']")
expect "(e) the real agent answered" "$(wait_for 10 bash -c "! curl -s --unix-socket $T/hvd.sock http://localhost/api/v1/operations/$OP | grep -q pending")" "[0-9]*"
expect_eq "(e) its schema took the params; it has no Xen" "$(op_json "$OP" | field "(d['state'], d['message'])")" \
	"('failed', 'the agent refused reboot: no Xen on this host')"

finish
