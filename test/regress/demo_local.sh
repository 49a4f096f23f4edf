#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# packaging/demo.sh --local (issue 20, point 8) with this build's hvd,
# hvctl and hv-agent (HVD, HVCTL, HV_AGENT: no deps.sh, no release build)
# in a scratch HV_DEMO_DIR:
#  - one of its default ports held by a listener of this test (the agent
#    link, 8471): the demo names the port and its holder, hvd takes a free
#    port instead, the agent reaches hvd there, and hvctl status answers
#    through the TCP API with a token;
#  - the closing hints are printed, with the real socket and TCP address;
#  - SIGTERM to the demo stops it: nothing it started is left (its session,
#    by PID), and hvd and the agent logged no sanitizer report;
#  - 8471 bound without a listener (invisible to ss, so the demo keeps the
#    port): hvd fails, and the demo's last word names the port and hvd's
#    error, not "hvd is not running".
# The demo runs in its own session (setsid), so that "nothing left" is
# every process of that session.
. "$(dirname "$0")/lib.sh"
shopt -s extglob
need_cmd ss setsid
: "${HV_AGENT:?HV_AGENT must point at the hv-agent binary}"
top=$(cd "$(dirname "$0")/../.." && pwd)
export HVD HVCTL HV_AGENT

# hold PORT MODE: a python3 socket on 127.0.0.1:PORT (MODE listen, or bind
# only) until killed; sets holder to its PID, or to "" if PORT is taken.
hold() {
	rm -f "$T/held"
	python3 -c '
import signal, socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(3)
if sys.argv[2] == "listen":
    s.listen()
open(sys.argv[3], "w").close()
signal.pause()' "$1" "$2" "$T/held" &
	holder=$!
	track_pid "$holder"
	held() { [ -e "$T/held" ] || ! kill -0 "$holder" 2>/dev/null; }
	wait_for 10 held >/dev/null || true
	[ -e "$T/held" ] || holder=
}

# session_procs SID: the processes left in session SID (PID and command).
session_procs() { ps -e -o pid=,sid=,args= | awk -v s="$1" '$2 == s {$2 = ""; print}'; }

# --- a busy default port: the demo picks another -------------------------
hold 8471 listen
[ -n "$holder" ] || echo "     (8471 is already taken on this machine: the demo must step aside anyway)"
HV_DEMO_DIR=$T/run setsid bash "$top/packaging/demo.sh" --local > "$T/demo.out" 2>&1 &
demo=$!
track_pid "$demo"
expect_eq "the demo leads its own session" "$(ps -o sid= -p "$demo" | tr -d ' ')" "$demo"
ready() { grep -q 'Ctrl-C stops the demo' "$T/demo.out" || ! kill -0 "$demo" 2>/dev/null; }
t=$(wait_for 120 ready || true)
expect "the demo comes up and prints its closing hints (s)" \
    "$(grep -q 'Ctrl-C stops the demo' "$T/demo.out" && echo "$t")" '[0-9]*.[0-9]'

out=$(cat "$T/demo.out")
expect "the demo names the busy port and what it is for" "$out" \
    "*demo: port 8471 (agent link) is in use by *: hvd takes a free port instead*"
if [ -n "$holder" ]; then
	expect "... and who holds it" "$out" "*port 8471 (agent link) is in use by pid $holder (python3)*"
fi
export HVCTL_SOCKET=$T/run/hvd.sock
st=$("$HVCTL" status 2>&1 || true)
agents=$(echo "$st" | awk '$1 == "agents:" {print $2}')
tcp=$(echo "$st" | awk '$1 == "tcp:" {print $2}')
expect "hvd's agent link is on another port" "$agents" '127.0.0.1:[0-9]*'
expect "... not on 8471" "${agents##*:}" '!(8471)'
expect "the demo says where hvd listens" "$out" "*demo: hvd runs: pid *, API on $T/run/hvd.sock and $tcp, agent link on $agents*"
expect "the agent follows hvd to that port" "$(grep '^hvd ' "$T/run/local/agent.conf")" "hvd $agents"
expect "host local is connected through it" \
    "$("$HVCTL" host list | awk '$1 == "local" {print $2, $NF}')" 'up connected'
tok=$("$HVCTL" token create --role read --name demo-test 2>/dev/null || true)
set +e
tst=$(HVCTL_TOKEN=$tok HVCTL_KNOWN_HOSTS=$T/known_hosts "$HVCTL" --url "https://$tcp" --ca "$T/run/state/tls/api.crt" status 2>&1); rc=$?
set -e
expect "hvctl status through the TCP API over TLS (--url https://$tcp --ca, a read token)" "$rc $tst" "0 hvd *tcp:*$tcp*your role: read*"

# --- the closing hints -----------------------------------------------------
hints=$(sed -n '/Try next/,/Ctrl-C stops/p' "$T/demo.out")
for h in "export HVCTL_SOCKET=$T/run/hvd.sock" "$HVCTL host list" "$HVCTL host call local ping" \
    "$HVCTL net create prod --vni 100" "$HVCTL token create --role read" \
    "curl --cacert $T/run/state/tls/api.crt -H \"Authorization: Bearer <token>\" https://$tcp/api/v1/hosts" \
    "curl --unix-socket $T/run/hvd.sock http://localhost/metrics" "Ctrl-C stops the demo (or: kill $demo)"; do
	expect "hint: $h" "$hints" "*$h*"
done

# --- stopping it: nothing left ----------------------------------------------
hvd_pid=$(sed -n 's/^demo: hvd runs: pid \([0-9]*\),.*/\1/p' "$T/demo.out")
agent_pid=$(sed -n 's/^demo: hv-agent runs: pid \([0-9]*\),.*/\1/p' "$T/demo.out")
expect "the demo named hvd's and the agent's PIDs" "$hvd_pid $agent_pid" '[0-9]* [0-9]*'
in_session=" $(session_procs "$demo" | awk '{print $1}' | tr '\n' ' ')"
expect "... hvd is in its session" "$in_session" "* $hvd_pid *"
expect "... the agent too" "$in_session" "* $agent_pid *"
kill -TERM "$demo"
rc=0
wait "$demo" || rc=$?
expect_eq "SIGTERM: the demo exits 143" "$rc" 143
expect "it says it stopped" "$(tail -n 1 "$T/demo.out")" "demo: stopped; state kept in $T/run"
gone() { [ -z "$(session_procs "$demo")" ]; }
t=$(wait_for 10 gone || true)
expect "nothing of the demo's session is left (s)" "$t" '[0-9]*.[0-9]'
session_procs "$demo" | sed 's/^/     left: /'
for p in "$hvd_pid" "$agent_pid"; do
	expect "pid $p is gone" "$([ -d "/proc/$p" ] && echo running || echo gone)" gone
done
expect "hvd stopped cleanly" "$(tail -n 1 "$T/run/hvd.log")" 'hvd stopped'
[ -z "$holder" ] || { kill "$holder"; wait "$holder" 2>/dev/null || true; }

# --- a port bound without a listener: hvd fails, naming it ----------------
hold 8471 bind
if [ -z "$holder" ]; then
	echo "     (8471 is taken by another program: the bind-only case cannot be set up)"
else
	set +e
	HV_DEMO_DIR=$T/run3 timeout 60 bash "$top/packaging/demo.sh" --local > "$T/demo3.out" 2>&1; rc=$?
	set -e
	expect_eq "bound, not listening: the demo fails" "$rc" 1
	expect "its last word names the port and hvd's bind error" "$(tail -n 2 "$T/demo3.out" | head -n 1)" \
	    "demo: port 8471 (agent link) is in use; hvd: agents: listen 127.0.0.1:8471: Address already in use"
	expect "hvd said it, naming the address and port" "$(cat "$T/demo3.out")" \
	    "*hvd: agents: listen 127.0.0.1:8471: Address already in use*"
	expect "not the misleading 'hvd is not running'" "$(cat "$T/demo3.out")" '!(*not running*)'
	kill "$holder"; wait "$holder" 2>/dev/null || true
fi

# finish checks $T/hvd.log for sanitizer reports: every log the demos wrote.
cat "$T"/run*/hvd.log "$T/run/agent.log" > "$T/hvd.log"
finish
