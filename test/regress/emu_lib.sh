# SPDX-License-Identifier: AGPL-3.0-or-later
# Sourced after lib.sh by the tests that drive hvd against emulated agents
# (test/tools/agent_emu, $AGENT_EMU): starting one per host, steering it
# through its control fifo, reading the requests it logged, and the REST
# reads those tests share.
: "${AGENT_EMU:?AGENT_EMU must point at the agent_emu binary}"

# emu_hvd_up: hvd for emulated agents (in the test's own namespace: the
# agent port 7700 is fixed, so an emulated agent finds hvd again after a
# restart), image vmlinuz-guest and network prod (VNI 100).
emu_hvd_up() {
	write_conf "boot-http-listen 127.0.0.1:0" "agent-listen 127.0.0.1:7700" "agent-heartbeat-ms 500"
	start_hvd
	head -c 100000 /dev/urandom > "$T/vmlinuz"
	"$HVCTL" image add vmlinuz-guest "$T/vmlinuz" >/dev/null
	"$HVCTL" net create prod --vni 100 >/dev/null
}

# emu HOST SRC_IP [CONF]: an emulated agent for HOST; its PID in EMU[HOST].
declare -A EMU=()
emu() {
	[ -p "$T/$1.ctl" ] || mkfifo "$T/$1.ctl"
	touch "$T/$1.log"
	"$AGENT_EMU" "${3:-$T/$1/agent.conf}" "$2" "$T/$1.log" "$T/$1.ctl" 2>>"$T/emu.err" &
	track_pid $!
	EMU[$1]=$!
}
ctl() { printf '%s\n' "$2" > "$T/$1.ctl"; }
notify() { ctl "$1" "notify $2 $3"; }
# reqs HOST METHOD: the params of each METHOD request HOST got, a line each.
reqs() {
	python3 -c 'import json,sys
for l in open(sys.argv[1]):
    try: d = json.loads(l)
    except ValueError: continue  # a line being written
    if d.get("method") == sys.argv[2]: print(json.dumps(d["params"], sort_keys=True))' "$T/$1.log" "$2"
}
nreqs() { reqs "$1" "$2" | wc -l; }
has_reqs() { [ "$(nreqs "$1" "$2")" -ge "$3" ]; }
jget() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }
vm_field() { sock GET "/api/v1/vms/$1" | cut -d' ' -f2- | field "d.get('$2')"; }
vm_is() { [ "$(vm_field "$1" "$2")" = "$3" ]; }
op_json() { sock GET "/api/v1/operations/$1" | cut -d' ' -f2-; }
op_field() { op_json "$1" | field "d.get('$2')"; }
op_is() { [ "$(op_field "$1" state)" = "$2" ]; }
