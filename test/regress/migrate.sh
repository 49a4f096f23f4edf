#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Live migration, hvd's side (PROTOCOL.md 6.2), against the real hvd and a
# real SQLite inventory, with two emulated agents (test/tools/agent_emu)
# on their own underlay addresses:
#  (a) hvd hands the target vm.migrate_in with the source's key and
#      underlay, then the source vm.migrate_out with the target's key,
#      underlay and port: one id (32 hex) and one key (64 hex) for both,
#      and the key is in neither hvd's log nor its database;
#  (b) target done + source done: the operation is done, the VM is on the
#      target, and the mesh follows (the source points the MAC at the
#      target's VTEP, the target holds it locally);
#  (c) the target fails (driven by hvctl vm migrate): failed, the message
#      names the side, the VM stays;
#  (d) the source in doubt, then the target done: the source is told
#      vm.migrate_end outcome target;
#  (e) --to the source, an unknown host, a host that is down, an unknown
#      body key: refused with the HTTP status and a message naming it;
#  (f) a VM that is not running: 409;
#  (g) hvd restarted after vm.migrate_out: the target's vm.list runs the
#      VM under its own name, so the inventory moves and the source hears
#      outcome target; the source's NAME--migratedaway is neither adopted,
#      reported unknown, nor makes the VM lost.
if [ -z "${HV_IN_NETNS:-}" ]; then
	exec unshare --net env HV_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
ip addr add 10.0.0.5/32 dev lo
ip addr add 10.0.0.6/32 dev lo
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/emu_lib.sh"

emu_hvd_up
for h in h1 h2 h3; do "$HVCTL" host add $h --out "$T/$h" >/dev/null; done

host_up() { sock GET "/api/v1/hosts/$1" | grep -q '"state":"up"'; }
mig() { sock POST "/api/v1/vms/$1/migrate" "${2:-}"; }

emu h1 10.0.0.5
emu h2 10.0.0.6
expect "h1 and h2 are up" "$(wait_for 15 host_up h1) $(wait_for 15 host_up h2)" "[0-9]* [0-9]*"
# Both report Xen in telemetry, so both can take VMs.
has_xen() { sock GET "/api/v1/hosts/$1/telemetry" | grep -q '"xen_version":"4.17"'; }
expect "h1 and h2 report Xen" "$(wait_for 10 has_xen h1) $(wait_for 10 has_xen h2)" "[0-9]* [0-9]*"
K1=$(sock GET /api/v1/hosts/h1 | cut -d' ' -f2- | field "d['agent_pubkey']")
K2=$(sock GET /api/v1/hosts/h2 | cut -d' ' -f2- | field "d['agent_pubkey']")

# web1 lands on h1 (equal hosts: the name decides) and runs there.
r=$(sock POST /api/v1/vms '{"name":"web1","vcpus":1,"memory_mib":64,"kernel":"vmlinuz-guest","networks":[{"vni":100}]}')
expect "web1 created" "$r" "202 *"
U=$(vm_field web1 uuid)
MAC=$(sock GET /api/v1/vms/web1 | cut -d' ' -f2- | field "d['nics'][0]['mac']")
expect_eq "web1 is placed on h1" "$(vm_field web1 host)" h1
wait_for 10 has_reqs h1 vm.create 1 >/dev/null
notify h1 vm.state "{\"uuid\":\"$U\",\"name\":\"web1\",\"state\":\"running\",\"domid\":5}"
expect "web1 runs on h1" "$(wait_for 10 vm_is web1 state running)" "[0-9]*"

# (f) A VM that is not running does not migrate.
sock POST /api/v1/vms '{"name":"idle1","vcpus":1,"memory_mib":64,"kernel":"vmlinuz-guest"}' >/dev/null
expect "(f) a VM not running: 409" "$(mig idle1)" "409 *idle1 is not running (state *"

# (e) Refusals, each with its status and what was wrong.
expect_eq "(e) unknown VM: 404" "$(mig nosuch)" "404 {\"error\":\"no VM 'nosuch'\"}"
expect "(e) unknown body key: 400 naming it" "$(mig web1 '{"to":"h2","speed":1}')" "400 *unknown field 'speed'*"
expect "(e) to: not a string: 400 naming it" "$(mig web1 '{"to":5}')" "400 *field 'to' must be a string*"
expect "(e) to: not a host name: 400 naming the rule" "$(mig web1 '{"to":"H 1"}')" "400 *field 'to' must start with a-z*"
expect_eq "(e) --to the source: 400" "$(mig web1 '{"to":"h1"}')" '400 {"error":"to: VM web1 already runs on h1"}'
expect_eq "(e) --to an unknown host: 400" "$(mig web1 '{"to":"h9"}')" "400 {\"error\":\"to: no host 'h9'\"}"
expect "(e) --to a host that is not up: 409" "$(mig web1 '{"to":"h3"}')" "409 *to: no host fits * on host h3; h3 is not up*"
expect_eq "(e) nothing was sent to any agent" "$(nreqs h1 vm.migrate_out)$(nreqs h2 vm.migrate_in)" "00"

# (a) The two requests.
ctl h2 'reply vm.migrate_in {"accepted":true,"port":47123}'
r=$(mig web1)
expect "(a) migrate: 202 with an operation, h1 -> h2" "$r" '202 {"operation":*"source":"h1","target":"h2"*'
OP=$(jget "${r#* }" "d['operation']")
expect "(a) the target got vm.migrate_in" "$(wait_for 10 has_reqs h2 vm.migrate_in 1)" "[0-9]*"
expect "(a) the source got vm.migrate_out" "$(wait_for 10 has_reqs h1 vm.migrate_out 1)" "[0-9]*"
IN=$(reqs h2 vm.migrate_in | tail -1)
OUT=$(reqs h1 vm.migrate_out | tail -1)
ID=$(jget "$IN" "d['id']")
KEY=$(jget "$IN" "d['key']")
expect "(a) id is 32 lowercase hex" "$ID" "$(printf '[0-9a-f]%.0s' $(seq 32))"
expect "(a) key is 64 lowercase hex" "$KEY" "$(printf '[0-9a-f]%.0s' $(seq 64))"
expect_eq "(a) migrate_in: the source's key, underlay, timeout, the VM" \
	"$(jget "$IN" "(d['peer_key'], d['peer'], d['timeout_s'], d['vm']['name'], d['vm']['uuid'], d['vm']['nics'][0]['mac'])")" \
	"('$K1', '10.0.0.5', 300, 'web1', '$U', '$MAC')"
expect_eq "(a) migrate_out: same id and key, the target's key, underlay and port" \
	"$(jget "$OUT" "(d['uuid'], d['id'], d['key'], d['peer_key'], d['peer'], d['port'], d['timeout_s'])")" \
	"('$U', '$ID', '$KEY', '$K2', '10.0.0.6', 47123, 300)"
expect_eq "(a) the key is not in hvd's log" "$(grep -c "$KEY" "$T/hvd.log")" 0
expect_eq "(a) the id is not in hvd's log" "$(grep -c "$ID" "$T/hvd.log")" 0
expect_eq "(a) the key is not in the database" "$(cat "$T"/state/hvd.db* | grep -c -a "$KEY")" 0
expect_eq "(a) the migration is recorded" "$(sqlite3 "$T/state/hvd.db" "SELECT vm_name, phase, ended_at IS NULL FROM migrations WHERE id = '$ID'")" "web1|preparing|1"
expect "(a) a second migration of web1: 409" "$(mig web1)" "409 *already in progress*"
expect_eq "(a) the operation: migrate, pending, preparing" "$(op_json "$OP" | field "(d['action'], d['state'], d['phase'], d['source'], d['target'])")" "('migrate', 'pending', 'preparing', 'h1', 'h2')"

# Progress reports move the operation; a report from the wrong host does not.
notify h2 vm.migration "{\"uuid\":\"$U\",\"id\":\"$ID\",\"role\":\"source\",\"phase\":\"copying\",\"bytes\":99}"
notify h1 vm.migration "{\"uuid\":\"$U\",\"id\":\"$ID\",\"role\":\"source\",\"phase\":\"copying\",\"bytes\":4096,\"mode\":\"stop-copy\"}"
wait_for 5 bash -c "curl -s --unix-socket $T/hvd.sock http://localhost/api/v1/operations/$OP | grep -q '\"bytes\":4096'" >/dev/null
expect_eq "progress: copying, stop-copy, bytes, no round yet" "$(op_json "$OP" | field "(d['phase'], d['mode'], d['bytes'], d['round'])")" "('copying', 'stop-copy', 4096, None)"
# The source's pre-copy round: it only grows; the target's is not the operation's.
notify h1 vm.migration "{\"uuid\":\"$U\",\"id\":\"$ID\",\"role\":\"source\",\"phase\":\"copying\",\"bytes\":8192,\"round\":3}"
notify h1 vm.migration "{\"uuid\":\"$U\",\"id\":\"$ID\",\"role\":\"source\",\"phase\":\"copying\",\"bytes\":9000,\"round\":2}"
notify h2 vm.migration "{\"uuid\":\"$U\",\"id\":\"$ID\",\"role\":\"target\",\"phase\":\"copying\",\"round\":9}"
wait_for 5 bash -c "curl -s --unix-socket $T/hvd.sock http://localhost/api/v1/operations/$OP | grep -q '\"bytes\":9000'" >/dev/null
expect_eq "progress: round 3 stays (a lower one and the target's are not taken)" "$(op_json "$OP" | field "(d['bytes'], d['round'])")" "(9000, 3)"
expect "a report from the wrong host is ignored" "$(grep -c 'reports as the migration.s source, which is h1; ignored' "$T/hvd.log")" "[1-9]*"

# (b) Target done, source done.
notify h2 vm.migration "{\"uuid\":\"$U\",\"id\":\"$ID\",\"role\":\"target\",\"phase\":\"done\",\"domid\":7}"
notify h1 vm.migration "{\"uuid\":\"$U\",\"id\":\"$ID\",\"role\":\"source\",\"phase\":\"done\"}"
expect "(b) the operation is done" "$(wait_for 10 op_is "$OP" done)" "[0-9]*"
expect_eq "(b) ... phase done" "$(op_field "$OP" phase)" done
expect_eq "(b) web1 is on h2 now" "$(vm_field web1 host)" h2
expect_eq "(b) and still running" "$(vm_field web1 state)" running
expect_eq "(b) the migration's record is closed: outcome target" "$(sqlite3 "$T/state/hvd.db" "SELECT phase, outcome, ended_at IS NOT NULL FROM migrations WHERE id = '$ID'")" "done|target|1"
expect "(b) an event says where it went" "$(sock GET '/api/v1/events?subject=web1')" "*vm.migrated*now on h2 (from h1)*"
# The mesh follows: h1 points web1's MAC at h2's VTEP, h2 holds it locally.
mesh_has() { reqs "$1" mesh.apply | tail -1 | grep -q "$2"; }
expect "(b) h1's mesh: web1's MAC at 10.0.0.6" "$(wait_for 10 mesh_has h1 "{\"mac\": \"$MAC\", \"vtep\": \"10.0.0.6\"}")" "[0-9]*"

expect_eq "(b) h2's mesh: web1's MAC is not remote" "$(reqs h2 mesh.apply | tail -1 | grep -c "$MAC")" 0
expect_eq "(b) neither end was sent vm.migrate_end" "$(nreqs h1 vm.migrate_end)$(nreqs h2 vm.migrate_end)" "00"

# (c) Back to h1 with hvctl, and the target fails.
"$HVCTL" vm migrate web1 --to h1 > "$T/cli.out" 2> "$T/cli.err" &
CLI=$!
wait_for 10 has_reqs h1 vm.migrate_in 1 >/dev/null
wait_for 10 has_reqs h2 vm.migrate_out 1 >/dev/null
ID2=$(reqs h1 vm.migrate_in | tail -1 | field "d['id']")
expect "(c) a fresh id" "$([ "$ID2" != "$ID" ] && echo fresh)" fresh
notify h2 vm.migration "{\"uuid\":\"$U\",\"id\":\"$ID2\",\"role\":\"source\",\"phase\":\"copying\",\"bytes\":100,\"mode\":\"live\",\"round\":1}"
sleep 0.6
notify h1 vm.migration "{\"uuid\":\"$U\",\"id\":\"$ID2\",\"role\":\"target\",\"phase\":\"failed\",\"reason\":\"restore failed: libxl error -3\"}"
rc=0; wait "$CLI" || rc=$?
expect "(c) hvctl vm migrate: exit 1, the side named" "$rc $(cat "$T/cli.err")" "1 *failed: target h1 failed: restore failed: libxl error -3*"
expect "(c) hvctl printed the phase, mode, round and bytes" "$(cat "$T/cli.out")" "*copying live, round 1, 100 bytes*"
expect_eq "(c) web1 stays on h2" "$(vm_field web1 host)" h2
expect "(c) the source was told to keep its copy" "$(wait_for 5 has_reqs h2 vm.migrate_end 1)" "[0-9]*"
expect_eq "(c) ... outcome source" "$(reqs h2 vm.migrate_end | tail -1 | field "(d['id'], d['outcome'])")" "('$ID2', 'source')"
expect_eq "(c) the record: failed, source" "$(sqlite3 "$T/state/hvd.db" "SELECT phase, outcome, reason FROM migrations WHERE id = '$ID2'")" "failed|source|target h1 failed: restore failed: libxl error -3"

# (d) Again to h1: the source is in doubt, then the target is done.
r=$(mig web1); OP3=$(jget "${r#* }" "d['operation']")
wait_for 10 has_reqs h2 vm.migrate_out 2 >/dev/null
ID3=$(reqs h1 vm.migrate_in | tail -1 | field "d['id']")
notify h2 vm.migration "{\"uuid\":\"$U\",\"id\":\"$ID3\",\"role\":\"source\",\"phase\":\"indoubt\",\"reason\":\"link lost after GO\"}"
sleep 0.5
expect_eq "(d) in doubt: the source is not told anything yet" "$(nreqs h2 vm.migrate_end)" 1
expect_eq "(d) ... and the operation waits" "$(op_field "$OP3" state)" pending
notify h1 vm.migration "{\"uuid\":\"$U\",\"id\":\"$ID3\",\"role\":\"target\",\"phase\":\"done\",\"domid\":8}"
expect "(d) the source is told outcome target" "$(wait_for 10 has_reqs h2 vm.migrate_end 2)" "[0-9]*"
expect_eq "(d) ... for this migration" "$(reqs h2 vm.migrate_end | tail -1 | field "(d['uuid'], d['id'], d['outcome'])")" "('$U', '$ID3', 'target')"
expect_eq "(d) the operation is done, web1 on h1" "$(op_field "$OP3" state) $(vm_field web1 host)" "done h1"
expect_eq "(d) the record is closed" "$(sqlite3 "$T/state/hvd.db" "SELECT outcome, ended_at IS NOT NULL FROM migrations WHERE id = '$ID3'")" "target|1"

# migration.refused: an audit event and a counter.
notify h2 migration.refused '{"peer":"10.9.9.9","reason":"no authentication"}'
expect "refused: an event names host, peer and reason" "$(wait_for 5 bash -c "curl -s --unix-socket $T/hvd.sock 'http://localhost/api/v1/events?subject=h2' | grep -q 'refused a migration connection from 10.9.9.9: no authentication'")" "[0-9]*"
expect "refused: counted in /metrics" "$(sock GET /metrics)" "*hvd_migration_refused_total 1*"

# (g) To h2 again; hvd stops after vm.migrate_out, before any outcome.
r=$(mig web1)
expect "(g) migrate: 202" "$r" "202 *"
wait_for 10 has_reqs h1 vm.migrate_out 2 >/dev/null
ID4=$(reqs h2 vm.migrate_in | tail -1 | field "d['id']")
stop_hvd
expect_eq "(g) the record is open across the restart" "$(sqlite3 "$T/state/hvd.db" "SELECT vm_name, outcome IS NULL, ended_at IS NULL FROM migrations WHERE id = '$ID4'")" "web1|1|1"
ends_h1=$(nreqs h1 vm.migrate_end)
ctl h2 "vms [{\"name\":\"web1\",\"uuid\":\"$U\",\"domid\":9,\"state\":\"running\",\"memory_mib\":64,\"vcpus\":1}]"
ctl h1 "vms [{\"name\":\"web1--migratedaway\",\"uuid\":\"$U\",\"domid\":8,\"state\":\"paused\",\"memory_mib\":64,\"vcpus\":1}]"
start_hvd
expect "(g) the source is told outcome target" "$(wait_for 20 has_reqs h1 vm.migrate_end $((ends_h1 + 1)))" "[0-9]*"
expect_eq "(g) ... for that migration" "$(reqs h1 vm.migrate_end | tail -1 | field "(d['id'], d['outcome'])")" "('$ID4', 'target')"
expect_eq "(g) web1 is on h2, running" "$(vm_field web1 host) $(vm_field web1 state)" "h2 running"
expect_eq "(g) the record: done, target, closed" "$(sqlite3 "$T/state/hvd.db" "SELECT phase, outcome, ended_at IS NOT NULL FROM migrations WHERE id = '$ID4'")" "done|target|1"
expect_eq "(g) the target was not told anything" "$(reqs h2 vm.migrate_end | grep -c "$ID4")" 0
expect_eq "(g) web1--migratedaway is not an unknown VM" "$(sock GET '/api/v1/events?limit=1000' | grep -c 'vm.unknown')" 0
expect_eq "(g) nothing was reported lost" "$(sock GET '/api/v1/events?subject=web1' | grep -c 'vm.lost')" 0
expect_eq "(g) the key never reached the database" "$(cat "$T"/state/hvd.db* | grep -c -a "$(reqs h2 vm.migrate_in | tail -1 | field "d['key']")")" 0

finish
