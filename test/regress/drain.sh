#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Host drain (hvctl host drain|undrain), against the real hvd and a real
# SQLite inventory, with two emulated agents (test/tools/agent_emu) on
# their own underlay addresses.  h1 holds web1, web2, web3 (running), idle1
# (stopped) and pin1 (running, placement.host h1); h2 comes up empty.
#  (a) POST .../drain: 202, the host is draining in its JSON and in
#      hosts.draining; idle1 and pin1 are not moved at once, each with its
#      reason; web1 and web2 move to h2 and web3 waits: no more than two
#      vm.migrate_in before one of them ends;
#  (b) while draining the scheduler places nothing on h1: a create lands
#      on h2 although h1 has more memory free, and one pinned to h1 is 409
#      saying h1 is draining;
#  (c) web1 done starts web3; web2's target fails; web3 done: the drain
#      ends, 2 moved, 3 not moved, web2's reason the migration's failure;
#      the VMs are where the drain says;
#  (d) hvctl host drain again takes what is still on h1 (idle1, pin1,
#      web2): web2's new move is refused by h2, and hvctl exits 1 with the
#      tally on stdout and the VMs that stay, with reasons, on stderr;
#  (e) hvd restarted: h1 is still draining (host JSON, hvctl host list
#      "up,draining") and the scheduler still avoids it;
#  (f) h1's agent replaced by a new process (a reboot): still draining;
#  (g) undrain: 200 draining false, the column 0, hvctl host list "up", a
#      create pinned to h1 lands there;
#  (h) refusals: unknown host 404, a body with a key 400; the events of h1:
#      one host.draining, one host.undrained, two host.drain-ended;
#  (i) h2 undrained mid-drain: its two moves finish, its two waiting VMs
#      never start ("the host was undrained first"), and the end says so.
if [ -z "${HV_IN_NETNS:-}" ]; then
	exec unshare --net env HV_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
ip addr add 10.0.0.5/32 dev lo
ip addr add 10.0.0.6/32 dev lo
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/emu_lib.sh"

emu_hvd_up
for h in h1 h2; do "$HVCTL" host add $h --out "$T/$h" >/dev/null; done

# sessions HOST: how many agent sessions HOST's emulators have had.
sessions() { grep -c '^{"up":' "$T/$1.log" || true; }
has_sessions() { [ "$(sessions "$1")" -ge "$2" ]; }
uuid_of() { vm_field "$1" uuid; }
host_field() { sock GET "/api/v1/hosts/$1" | cut -d' ' -f2- | field "d.get('$2')"; }
host_up() { [ "$(host_field "$1" state)" = up ]; }
has_xen() { sock GET "/api/v1/hosts/$1/telemetry" | grep -q '"xen_version":"4.17"'; }
db_draining() { sqlite3 "$T/state/hvd.db" "SELECT draining FROM hosts WHERE name = '$1'"; }
drain_json() { sock GET /api/v1/hosts/h1/drain | cut -d' ' -f2-; }
# dvm NAME EXPR: Python EXPR over VM NAME's entry (as v) in h1's drain.
dvm() { drain_json | field "(lambda v: $2)([v for v in d['vms'] if v['name'] == '$1'][0])"; }
dvm_is() { [ "$(dvm "$1" "v['state']")" = "$2" ]; }
drain_is() { [ "$(drain_json | field "d.get('state')")" = "$1" ]; }
# mig_id NAME: the id of the newest vm.migrate_in h2 got for VM NAME.
mig_id() {
	reqs h2 vm.migrate_in | python3 -c 'import json,sys
ids = [d["id"] for d in map(json.loads, sys.stdin) if d["vm"]["name"] == sys.argv[1]]
print(ids[-1] if ids else "")' "$1"
}
# in_names: the VMs h2 was sent vm.migrate_in for, in order.
in_names() { reqs h2 vm.migrate_in | python3 -c 'import json,sys; print(" ".join(json.loads(l)["vm"]["name"] for l in sys.stdin))'; }
# mknew NAME [PLACEMENT_JSON]: POST /api/v1/vms, one vCPU, 64 MiB.
mknew() {
	sock POST /api/v1/vms "{\"name\":\"$1\",\"vcpus\":1,\"memory_mib\":64,\"kernel\":\"vmlinuz-guest\",\"networks\":[{\"vni\":100}]${2:+,\"placement\":$2}}"
}
# runs HOST NAME: HOST reports VM NAME running.
runs() { notify "$1" vm.state "{\"uuid\":\"$(uuid_of "$2")\",\"name\":\"$2\",\"state\":\"running\",\"domid\":5}"; }
# vms_entry NAME: NAME as a vm.list entry, running.
vms_entry() { printf '{"name":"%s","uuid":"%s","domid":5,"state":"running","memory_mib":64,"vcpus":1}' "$1" "$(uuid_of "$1")"; }
host_row() { "$HVCTL" host list | awk -v h="$1" '$1 == h { print $2 }'; }

# Only h1 is up: every VM lands there.
emu h1 10.0.0.5
expect "h1 is up with Xen" "$(wait_for 15 host_up h1) $(wait_for 10 has_xen h1)" "[0-9]* [0-9]*"
for v in idle1 pin1 web1 web2 web3; do
	if [ $v = pin1 ]; then r=$(mknew $v '{"host":"h1"}'); else r=$(mknew $v); fi
	expect "$v created" "$r" "202 *"
done
expect_eq "all five are placed on h1" "$(for v in idle1 pin1 web1 web2 web3; do vm_field $v host; done | sort -u)" h1
expect "h1 got five vm.create" "$(wait_for 10 has_reqs h1 vm.create 5)" "[0-9]*"
for v in pin1 web1 web2 web3; do runs h1 $v; done
# idle1 is stopped: asked to, and h1 says it did.
expect "idle1: stop 202" "$(sock POST /api/v1/vms/idle1/stop)" "202 *"
expect "h1 got vm.shutdown" "$(wait_for 10 has_reqs h1 vm.shutdown 1)" "[0-9]*"
notify h1 vm.state "{\"uuid\":\"$(uuid_of idle1)\",\"name\":\"idle1\",\"state\":\"stopped\"}"
for v in pin1 web1 web2 web3; do wait_for 10 vm_is $v state running >/dev/null || true; done
expect_eq "pin1 web1 web2 web3 run, idle1 is stopped" \
	"$(for v in idle1 pin1 web1 web2 web3; do vm_field $v state; done | tr '\n' ' ')" \
	"stopped running running running running "
emu h2 10.0.0.6
expect "h2 is up with Xen" "$(wait_for 15 host_up h2) $(wait_for 10 has_xen h2)" "[0-9]* [0-9]*"
expect_eq "before: h1 not draining (JSON, column)" "$(host_field h1 draining) $(db_draining h1)" "False 0"
expect_eq "before: no drain to show" "$(sock GET /api/v1/hosts/h1/drain | cut -d' ' -f2- | field "sorted(d.items())")" \
	"[('draining', False), ('host', 'h1')]"

# (a) The drain starts.
r=$(sock POST /api/v1/hosts/h1/drain)
expect "(a) drain: 202" "$r" "202 *"
D=${r#* }
expect_eq "(a) the drain: running, draining, parallel 2" \
	"$(field "(d['host'], d['state'], d['draining'], d['undrained'], d['parallel'], d['ended'])" <<<"$D")" \
	"('h1', 'running', True, False, 2, None)"
expect_eq "(a) the drain lists h1's VMs, each with its state" \
	"$(field "[(v['name'], v['state'], v.get('target')) for v in d['vms']]" <<<"$D")" \
	"[('idle1', 'not moved', None), ('pin1', 'not moved', None), ('web1', 'moving', 'h2'), ('web2', 'moving', 'h2'), ('web3', 'waiting', None)]"
expect_eq "(a) idle1: not running" "$(field "d['vms'][0]['reason']" <<<"$D")" "VM idle1 is not running (state stopped); only a running VM migrates"
expect_eq "(a) pin1: pinned" "$(field "d['vms'][1]['reason']" <<<"$D")" "VM pin1 is pinned to host h1 (placement.host); no other host satisfies it"
expect_eq "(a) web1 and web2 have operations" "$(field "[type(v.get('operation')).__name__ for v in d['vms'][2:4]]" <<<"$D")" "['int', 'int']"
expect_eq "(a) h1 is draining (JSON, column)" "$(host_field h1 draining) $(db_draining h1)" "True 1"
expect "(a) h2 got two vm.migrate_in" "$(wait_for 10 has_reqs h2 vm.migrate_in 2)" "[0-9]*"
expect "(a) h1 got two vm.migrate_out" "$(wait_for 10 has_reqs h1 vm.migrate_out 2)" "[0-9]*"
sleep 1
expect_eq "(a) no more than two in flight: web1 and web2, not web3" \
	"$(in_names)" "web1 web2"
expect_eq "(a) web3 still waits" "$(dvm web3 "v['state']")" waiting
expect_eq "(a) GET drain: the same operations as the 202" "$(drain_json | field "[v.get('operation') for v in d['vms']]")" \
	"$(field "[v.get('operation') for v in d['vms']]" <<<"$D")"
expect_eq "(a) hvctl host list: up,draining" "$(host_row h1) $(host_row h2)" "up,draining up"

# (b) The scheduler and a draining host.  h1 has more memory free (h2
# holds two migrations' worth), so only the drain keeps new1 off it.
r=$(mknew new1)
expect "(b) a create while h1 drains: 202" "$r" "202 *"
expect_eq "(b) ... it lands on h2" "$(vm_field new1 host)" h2
wait_for 10 has_reqs h2 vm.create 1 >/dev/null || true
runs h2 new1
expect "(b) a create pinned to h1: 409, h1 is draining" "$(mknew pinb '{"host":"h1"}')" "409 *no host fits 1 vCPU and 64 MiB on host h1; h1 is draining*"
expect "(b) ... nothing was created" "$(sock GET /api/v1/vms/pinb)" "404 *"

# (c) web1 done: web3 starts; web2's target fails; web3 done.
U1=$(uuid_of web1); U2=$(uuid_of web2); U3=$(uuid_of web3)
ID1=$(mig_id web1); ID2=$(mig_id web2)
notify h2 vm.migration "{\"uuid\":\"$U1\",\"id\":\"$ID1\",\"role\":\"target\",\"phase\":\"done\",\"domid\":7}"
notify h1 vm.migration "{\"uuid\":\"$U1\",\"id\":\"$ID1\",\"role\":\"source\",\"phase\":\"done\"}"
expect "(c) web1: moved" "$(wait_for 10 dvm_is web1 moved)" "[0-9]*"
expect "(c) ... and web3 starts: a third vm.migrate_in" "$(wait_for 10 has_reqs h2 vm.migrate_in 3)" "[0-9]*"
expect_eq "(c) ... for web3" "$(in_names)" "web1 web2 web3"
expect_eq "(c) web3: moving to h2" "$(dvm web3 "(v['state'], v.get('target'))")" "('moving', 'h2')"
expect_eq "(c) web1 is on h2" "$(vm_field web1 host) $(vm_field web1 state)" "h2 running"
expect "(c) h1 got vm.migrate_out for web3" "$(wait_for 10 has_reqs h1 vm.migrate_out 3)" "[0-9]*"
ID3=$(mig_id web3)
notify h2 vm.migration "{\"uuid\":\"$U2\",\"id\":\"$ID2\",\"role\":\"target\",\"phase\":\"failed\",\"reason\":\"restore failed: libxl error -3\"}"
expect "(c) web2: not moved" "$(wait_for 10 dvm_is web2 'not moved')" "[0-9]*"
expect_eq "(c) ... the reason is the migration's failure" "$(dvm web2 "v['reason']")" "target h2 failed: restore failed: libxl error -3"
expect_eq "(c) ... the drain still runs (web3)" "$(drain_json | field "d['state']")" running
notify h2 vm.migration "{\"uuid\":\"$U3\",\"id\":\"$ID3\",\"role\":\"target\",\"phase\":\"done\",\"domid\":8}"
notify h1 vm.migration "{\"uuid\":\"$U3\",\"id\":\"$ID3\",\"role\":\"source\",\"phase\":\"done\"}"
expect "(c) the drain ends" "$(wait_for 10 drain_is ended)" "[0-9]*"
expect_eq "(c) ... 2 moved, 3 not moved, still draining" \
	"$(drain_json | field "(d['moved'], d['not_moved'], d['draining'], bool(__import__('re').fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', d['started'])) and d['ended'] >= d['started'])")" "(2, 3, True, True)"
expect_eq "(c) ... VM by VM" "$(drain_json | field "[(v['name'], v['state']) for v in d['vms']]")" \
	"[('idle1', 'not moved'), ('pin1', 'not moved'), ('web1', 'moved'), ('web2', 'not moved'), ('web3', 'moved')]"
expect_eq "(c) the VMs are where the drain says" \
	"$(for v in idle1 pin1 web1 web2 web3; do printf '%s:%s ' $v "$(vm_field $v host)"; done)" \
	"idle1:h1 pin1:h1 web1:h2 web2:h1 web3:h2 "
expect_eq "(c) web2 still runs on h1" "$(vm_field web2 state)" running
expect "(c) an event: drain ended" "$(sock GET '/api/v1/events?subject=h1')" "*host.drain-ended*2 VM(s) moved, 3 not moved*"
expect_eq "(c) h1 still draining after the drain ended" "$(host_field h1 draining) $(db_draining h1)" "True 1"

# (d) Drain again: what is still on h1; h2 now refuses web2.
ctl h2 'error vm.migrate_in no room for web2 today'
rc=0; "$HVCTL" host drain h1 > "$T/cli.out" 2> "$T/cli.err" || rc=$?
expect_eq "(d) hvctl host drain: exit 1" "$rc" 1
expect "(d) stdout: the tally" "$(cat "$T/cli.out")" "*host h1: drain ended: 0 VM(s) moved, 3 not moved*"
expect "(d) stdout: the start" "$(head -1 "$T/cli.out")" "host h1: draining: * 3 VM(s) to move, 2 at a time"
expect_eq "(d) h2 was asked again for web2, only" "$(in_names)" "web1 web2 web3 web2"
expect_eq "(d) stderr: the VMs that stay, with reasons" "$(cat "$T/cli.err")" "hvctl: host drain h1: these VMs stay on it:
  idle1: VM idle1 is not running (state stopped); only a running VM migrates
  pin1: VM pin1 is pinned to host h1 (placement.host); no other host satisfies it
  web2: target h2 refused: no room for web2 today"
expect_eq "(d) the drain: ended, 0 moved, 3 not moved" "$(drain_json | field "(d['state'], d['moved'], d['not_moved'], [v['name'] for v in d['vms']])")" \
	"('ended', 0, 3, ['idle1', 'pin1', 'web2'])"
expect_eq "(d) web2 still on h1, running" "$(vm_field web2 host) $(vm_field web2 state)" "h1 running"

# (e) hvd restarts; the agents list what they run.
ctl h1 "vms [$(vms_entry pin1),$(vms_entry web2)]"
ctl h2 "vms [$(vms_entry new1),$(vms_entry web1),$(vms_entry web3)]"
s1=$(sessions h1); s2=$(sessions h2)
stop_hvd
start_hvd
expect "(e) after the restart both agents are back" \
	"$(wait_for 15 has_sessions h1 $((s1 + 1))) $(wait_for 15 has_sessions h2 $((s2 + 1)))" "[0-9]* [0-9]*"
expect "(e) ... up with Xen" "$(wait_for 10 host_up h1) $(wait_for 10 has_xen h1) $(wait_for 10 has_xen h2)" "[0-9]* [0-9]* [0-9]*"
expect_eq "(e) h1 still draining (JSON, column)" "$(host_field h1 draining) $(db_draining h1)" "True 1"
expect_eq "(e) GET drain: the mark, no drain since hvd started" \
	"$(sock GET /api/v1/hosts/h1/drain | cut -d' ' -f2- | field "sorted(d.items())")" "[('draining', True), ('host', 'h1')]"
expect_eq "(e) hvctl host list: h1 up,draining, h2 up" "$(host_row h1) $(host_row h2)" "up,draining up"
expect_eq "(e) nothing was lost in the restart" \
	"$(for v in pin1 web1 web2 web3 new1; do vm_field $v state; done | sort -u)" running
r=$(mknew new2)
expect "(e) a create: 202" "$r" "202 *"
expect_eq "(e) ... on h2" "$(vm_field new2 host)" h2
expect "(e) a create pinned to h1: 409, draining" "$(mknew pine '{"host":"h1"}')" "409 *on host h1; h1 is draining*"

# (f) h1 reboots: its agent goes, a new one comes.  The boot token was
# spent by the first session, so the new one presents none.
grep -v '^boot-token ' "$T/h1/agent.conf" > "$T/h1/agent2.conf"
s1=$(sessions h1)
kill "${EMU[h1]}"
wait "${EMU[h1]}" 2>/dev/null || true
emu h1 10.0.0.5 "$T/h1/agent2.conf"
expect "(f) the new agent of h1 is up" "$(wait_for 15 has_sessions h1 $((s1 + 1))) $(wait_for 10 host_up h1)" "[0-9]* [0-9]*"
expect_eq "(f) h1 still draining (JSON, column, hvctl)" "$(host_field h1 draining) $(db_draining h1) $(host_row h1)" "True 1 up,draining"
expect "(f) a create pinned to h1: 409, draining" "$(mknew pinf '{"host":"h1"}')" "409 *on host h1; h1 is draining*"

# (g) Undrain.
r=$(sock POST /api/v1/hosts/h1/undrain)
expect "(g) undrain: 200" "$r" "200 *"
expect_eq "(g) ... draining false" "$(field "(d['host'], d['draining'])" <<<"${r#* }")" "('h1', False)"
expect_eq "(g) h1 not draining (JSON, column, hvctl)" "$(host_field h1 draining) $(db_draining h1) $(host_row h1)" "False 0 up"
rc=0; out=$("$HVCTL" host undrain h1 2>&1) || rc=$?
expect_eq "(g) hvctl host undrain again: exit 0" "$rc $out" "0 host h1: undrained: the scheduler may place VMs there again"
r=$(mknew ping '{"host":"h1"}')
expect "(g) a create pinned to h1: 202" "$r" "202 *"
expect_eq "(g) ... on h1" "$(vm_field ping host)" h1

# (h) Refusals and events.
expect_eq "(h) drain an unknown host: 404" "$(sock POST /api/v1/hosts/h9/drain)" "404 {\"error\":\"no host named 'h9'\"}"
expect_eq "(h) GET drain of an unknown host: 404" "$(sock GET /api/v1/hosts/h9/drain)" "404 {\"error\":\"no host named 'h9'\"}"
expect_eq "(h) undrain an unknown host: 404" "$(sock POST /api/v1/hosts/h9/undrain)" "404 {\"error\":\"no host named 'h9'\"}"
expect_eq "(h) drain with a parameter: 400" "$(sock POST /api/v1/hosts/h2/drain '{"x":1}')" \
	'400 {"error":"this request takes no parameters: send no body, or {}"}'
expect "(h) undrain with a body that is not JSON: 400" "$(sock POST /api/v1/hosts/h2/undrain 'nope')" "400 *no parameters*"
expect "(h) undrain with {}: 200" "$(sock POST /api/v1/hosts/h2/undrain '{}')" "200 *"
expect_eq "(h) h2 never drained" "$(host_field h2 draining) $(db_draining h2)" "False 0"
ev=$(sock GET '/api/v1/events?subject=h1&limit=1000' | cut -d' ' -f2-)
expect_eq "(h) h1's events: draining once, undrained once, drain ended twice" \
	"$(field "[sum(1 for e in d['events'] if e['kind'] == k) for k in ('host.draining', 'host.undrained', 'host.drain-ended')]" <<<"$ev")" "[1, 1, 2]"
expect "(h) the second drain's end" "$ev" "*0 VM(s) moved, 3 not moved*"
expect_eq "(h) h2 has no drain event" "$(sock GET '/api/v1/events?subject=h2&limit=1000' | grep -c 'host.drain')" 0

# (i) h2 undrained while its drain runs: the moves under way finish, the
# VMs still waiting never start.
d2() { sock GET /api/v1/hosts/h2/drain | cut -d' ' -f2-; }
runs h2 new2
wait_for 10 vm_is new2 state running >/dev/null || true
expect_eq "(i) h2 runs four VMs" "$(for v in new1 web1 web3 new2; do printf '%s:%s ' "$(vm_field $v host)" "$(vm_field $v state)"; done)" \
	"h2:running h2:running h2:running h2:running "
n_in=$(nreqs h1 vm.migrate_in)
expect "(i) drain h2: 202" "$(sock POST /api/v1/hosts/h2/drain)" "202 *"
expect "(i) h1 got two vm.migrate_in" "$(wait_for 10 has_reqs h1 vm.migrate_in $((n_in + 2)))" "[0-9]*"
expect_eq "(i) two move, two wait" "$(d2 | field "sorted(v['state'] for v in d['vms'])")" \
	"['moving', 'moving', 'waiting', 'waiting']"
expect "(i) undrain h2 mid-drain: 200" "$(sock POST /api/v1/hosts/h2/undrain)" "200 *"
expect_eq "(i) the waiting ones are not moved, saying why; two still move" \
	"$(d2 | field "sorted((v['state'], v.get('reason')) for v in d['vms'])")" \
	"[('moving', None), ('moving', None), ('not moved', 'the host was undrained first'), ('not moved', 'the host was undrained first')]"
expect_eq "(i) the drain runs on, undrained" "$(d2 | field "(d['state'], d['undrained'], d['draining'])")" "('running', True, False)"
sleep 0.5
expect_eq "(i) no third move started" "$(nreqs h1 vm.migrate_in)" "$((n_in + 2))"
for v in $(d2 | field "' '.join(v['name'] for v in d['vms'] if v['state'] == 'moving')"); do
	id=$(reqs h1 vm.migrate_in | python3 -c 'import json,sys
ids = [d["id"] for d in map(json.loads, sys.stdin) if d["vm"]["name"] == sys.argv[1]]
print(ids[-1] if ids else "")' "$v")
	notify h1 vm.migration "{\"uuid\":\"$(uuid_of "$v")\",\"id\":\"$id\",\"role\":\"target\",\"phase\":\"failed\",\"reason\":\"no\"}"
done
d2_ended() { [ "$(d2 | field "d['state']")" = ended ]; }
expect "(i) the drain ends once both moves do" "$(wait_for 10 d2_ended)" "[0-9]*"
expect_eq "(i) ... 0 moved, 4 not moved" "$(d2 | field "(d['moved'], d['not_moved'])")" "(0, 4)"
expect "(i) the event says it was undrained" "$(sock GET '/api/v1/events?subject=h2')" "*host.drain-ended*0 VM(s) moved, 4 not moved (undrained)*"

finish
