#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Out of descriptors: hvd runs with a small RLIMIT_NOFILE and a client
# opens agent-link connections until hvd cannot accept more.  The agent
# listener must pause accepting (one log line per pause, not a flood, and
# no busy loop), keep answering on what it already has open, and serve
# again, agents and API alike, once the connections close.
. "$(dirname "$0")/lib.sh"
need_cmd prlimit

write_conf "agent-listen 127.0.0.1:0" "agent-heartbeat-ms 500"
start_hvd
HVD_NOFILE=96
prlimit --pid "$HVD_PID" --nofile=$HVD_NOFILE:$HVD_NOFILE
AP=$("$HVCTL" --json status | field 'd["listen"]["agents"].rsplit(":", 1)[1]')
expect "hvd runs with RLIMIT_NOFILE $HVD_NOFILE" "$(awk '/Max open files/ {print $4}' /proc/$HVD_PID/limits)" "$HVD_NOFILE"

cpu() { awk '{print $14 + $15}' "/proc/$HVD_PID/stat"; }
pauses() { grep -c 'not accepting for' "$T/hvd.log" || true; }
accept_lines() { grep -c 'agents: accept' "$T/hvd.log" || true; }

# Hold 200 connections open (more than hvd can take) for HOLD seconds.
HOLD=4
python3 - "$AP" "$HOLD" > "$T/client.log" 2>&1 <<'PY' &
import socket, sys, time
port, hold = int(sys.argv[1]), float(sys.argv[2])
socks = []
for _ in range(200):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
    except OSError as e:
        print("connect:", e)
        break
    socks.append(s)
print("open", len(socks), flush=True)
time.sleep(hold)
for s in socks:
    s.close()
print("closed", flush=True)
PY
CLIENT=$!
track_pid "$CLIENT"
wait_for 5 grep -q '^open' "$T/client.log" >/dev/null || true
sleep 0.5
c0=$(cpu); p0=$(pauses); l0=$(accept_lines)
sleep 2
c1=$(cpu); p1=$(pauses); l1=$(accept_lines)
expect "hvd hit its descriptor limit and paused accepting" "$p1" '[1-9]*'
# Two seconds of pauses: a handful of lines, not one per accept attempt.
expect "one line per pause, no log flood (accept lines in 2 s)" "$(( l1 - l0 <= 4 ))" 1
# A spinning listener burns a whole core; paused, hvd is nearly idle.
expect "no busy loop while out of descriptors (CPU ticks in 2 s)" "$(( c1 - c0 < 50 ))" 1
expect "hvd still alive while exhausted" "$(kill -0 "$HVD_PID" && echo yes)" yes
wait "$CLIENT" || true
# The handshake deadline (10 s) or the close frees hvd's side.
healthy() { curl -sf --unix-socket "$T/hvd.sock" http://localhost/healthz | grep -q ok; }
expect "API answers again once the connections close (s)" "$(wait_for 15 healthy || true)" '[0-9]*.[0-9]'
agent_port_open() { python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2); s.close()' "$AP"; }
expect "agent listener accepts again (s)" "$(wait_for 5 agent_port_open || true)" '[0-9]*.[0-9]'
expect "pauses are counted in /metrics" "$(curl -s --unix-socket "$T/hvd.sock" http://localhost/metrics | awk '/^hvd_agent_accept_pauses_total/ {print ($2 >= 1)}')" 1
"$HVCTL" host add probe1 --out "$T/h1" >/dev/null
sed -i "s/^hvd .*/hvd 127.0.0.1:$AP/" "$T/h1/agent.conf"
echo "session-file $T/h1/session" >> "$T/h1/agent.conf"
"$HV_AGENT" -d -f "$T/h1/agent.conf" > "$T/agent.log" 2>&1 &
APID=$!
track_pid "$APID"
up() { "$HVCTL" --json host show probe1 | field 'd["state"]' | grep -qx up; }
expect "a real agent registers after the exhaustion (s)" "$(wait_for 15 up || true)" '[0-9]*.[0-9]'
kill "$APID" 2>/dev/null; wait "$APID" 2>/dev/null || true
finish
