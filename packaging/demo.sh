#!/usr/bin/env bash
# The README's main command: install dependencies, build, then run hvd on
# its built-in local configuration (state, unix socket, TCP API on
# 127.0.0.1:8470 and agent link on 127.0.0.1:8471, all under ./run) with one
# hv-agent on this machine enrolled as host "local".  Ctrl-C stops both.
#
# Until the virtual rack lands (QEMU Xen hosts netbooting from hvd), this
# is the demo: the orchestrator with its inventory, API and a live agent.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash packaging/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j2 >/dev/null
echo "demo: built build/release (hvd, hvctl, hv-agent)"

run="$top/run"
bin="$top/build/release"
hvctl="$bin/cli/hvctl"
mkdir -p "$run"
export HVCTL_SOCKET=$run/hvd.sock

hvd_pid= agent_pid=
stop() {
	trap - EXIT INT TERM
	[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
	[ -n "$hvd_pid" ] && kill "$hvd_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	echo "demo: stopped; state kept in $run"
}
trap stop EXIT INT TERM

"$bin/daemon/hvd" -d -L "$run" 2> >(sed 's/^/hvd: /' >&2) &
hvd_pid=$!
for _ in $(seq 1 50); do "$hvctl" status >/dev/null 2>&1 && break; sleep 0.1; done
"$hvctl" status

if [ ! -f "$run/local/agent.conf" ]; then
	"$hvctl" host add local --out "$run/local"
	echo "session-file $run/local/session" >> "$run/local/agent.conf"
fi
"$bin/agent/hv-agent" -d -f "$run/local/agent.conf" 2> >(sed 's/^/hv-agent: /' >&2) &
agent_pid=$!
for _ in $(seq 1 50); do
	"$hvctl" host list 2>/dev/null | grep -q '^local .*connected' && break
	sleep 0.1
done
sleep 1
"$hvctl" host list

cat <<TXT

  hvd and one agent are running.  In another shell:

    export HVCTL_SOCKET=$run/hvd.sock
    $hvctl top                         # live view of the hosts
    $hvctl host call local ping        # a command through the agent
    $hvctl net create prod --vni 100 --description "production"
    $hvctl net list
    $hvctl token create --role read    # a token for the TCP API
    curl -H "Authorization: Bearer <token>" http://127.0.0.1:8470/api/v1/hosts
    curl --unix-socket $run/hvd.sock http://localhost/metrics

  State lives in $run (delete it to start afresh).  Ctrl-C stops the demo.

TXT
wait "$hvd_pid"
