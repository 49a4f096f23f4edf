#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# hvd's life cycle: -n config check, SIGHUP reload (good and bad configs),
# SIGTERM shutdown, stale-socket recovery and refusing a second instance.
. "$(dirname "$0")/lib.sh"

# --- hvd -n -f FILE
printf 'log-level info\nbogus 1\n' > "$T/bad.conf"
set +e
out=$("$HVD" -n -f "$T/bad.conf" 2>&1); rc=$?
set -e
expect "-n rejects, exit code" "$rc" 1
expect "-n prints FILE:LINE: message" "$out" "$T/bad.conf:2: unknown keyword 'bogus'"
write_conf
expect "-n accepts a good file" "$("$HVD" -n -f "$T/hvd.conf" 2>&1)" "$T/hvd.conf: configuration OK"
set +e
out=$("$HVD" -n -f "$T/missing.conf" 2>&1); rc=$?
set -e
expect "-n on a missing file" "$rc/$out" "1/$T/missing.conf: No such file or directory"
expect "-n on the shipped example" "$("$HVD" -n -f "$(dirname "$0")/../../packaging/hvd.conf" 2>&1)" "*: configuration OK"

# --- sd_notify: READY at start, RELOADING/READY on SIGHUP, STOPPING on exit
python3 - "$T/notify.sock" > "$T/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
try:
    while True:
        msg = s.recv(4096).decode()
        print(msg.replace("\n", " "), flush=True)
        if "STOPPING=1" in msg:
            break
except socket.timeout:
    pass
PY
NOTIFY_PID=$!
for _ in $(seq 1 50); do [ -S "$T/notify.sock" ] && break; sleep 0.1; done
write_conf
NOTIFY_SOCKET=$T/notify.sock "$HVD" -d -f "$T/hvd.conf" >> "$T/hvd.log" 2>&1 &
npid=$!
for _ in $(seq 1 50); do grep -q READY "$T/notify.log" && break; sleep 0.1; done
kill -HUP "$npid"
for _ in $(seq 1 50); do [ "$(grep -c READY "$T/notify.log")" -ge 2 ] && break; sleep 0.1; done
kill -TERM "$npid"; wait "$npid" || true
wait "$NOTIFY_PID" || true
expect "sd_notify READY" "$(sed -n 1p "$T/notify.log")" 'READY=1 STATUS=serving'
expect "sd_notify RELOADING then READY" "$(sed -n '2,3p' "$T/notify.log" | tr '\n' '|')" 'RELOADING=1|READY=1|'
expect "sd_notify STOPPING" "$(tail -1 "$T/notify.log")" 'STOPPING=1'
expect "inventory in WAL mode" "$(sqlite3 "$T/state/hvd.db" 'PRAGMA journal_mode')" wal
expect "state dir is private" "$(stat -c %a "$T/state")" 700
expect "master key is private" "$(stat -c %a "$T/state/master.key")" 600

# --- SIGHUP: a good reload swaps, a bad one keeps the old config
write_conf "api-body-max 2048"
start_hvd
big=$(head -c 3000 /dev/zero | tr '\0' x)
expect "limit before reload" "$(sock POST /api/v1/networks "{\"name\":\"$big\"}" | cut -c1-3)" 413
write_conf "api-body-max 65536"
kill -HUP "$HVD_PID"
for _ in $(seq 1 50); do grep -q "reload: .* applied" "$T/hvd.log" && break; sleep 0.1; done
expect "good reload applied" "$(sock POST /api/v1/networks "{\"name\":\"$big\"}" | cut -c1-3)" 400
write_conf "api-body-max tiny"
kill -HUP "$HVD_PID"
for _ in $(seq 1 50); do grep -q "keeping the running configuration" "$T/hvd.log" && break; sleep 0.1; done
expect "bad reload logged with line" "$(grep 'reload:' "$T/hvd.log" | tail -1)" \
	"reload: $T/hvd.conf:6: api-body-max: 'tiny' is not a byte count in 1024..16777216; keeping the running configuration"
expect "still serving after bad reload" "$(sock GET /healthz)" '200 *'
write_conf "api-listen 127.0.0.1:1"
sed -i '/api-listen 127.0.0.1:0/d' "$T/hvd.conf"
kill -HUP "$HVD_PID"
for _ in $(seq 1 50); do grep -q "needs a restart" "$T/hvd.log" && break; sleep 0.1; done
expect "listener change needs restart" "$(grep 'needs a restart' "$T/hvd.log" | tail -1)" \
	"reload: api-listen changed, which needs a restart; keeping the running configuration"
write_conf

# --- a second hvd on the same state is refused by its lock, naming the
# first's PID; the first keeps serving
set +e
timeout 10 "$HVD" -d -f "$T/hvd.conf" > "$T/second.log" 2>&1; rc=$?
set -e
expect "second instance refused" "$rc" 1
expect "second instance says why" "$(tail -1 "$T/second.log")" "*state directory $T/state is in use by hvd pid $HVD_PID"
expect "first still serves" "$(sock GET /healthz)" '200 *'

# --- SIGTERM: clean exit, socket removed
kill -TERM "$HVD_PID"
set +e
wait "$HVD_PID"; rc=$?
set -e
HVD_PID=
expect "SIGTERM exits 0" "$rc" 0
expect "socket removed" "$([ -e "$T/hvd.sock" ] && echo present || echo gone)" gone
expect "shutdown logged" "$(tail -1 "$T/hvd.log")" "hvd stopped"

# --- a stale socket left by kill -9 does not block a restart
start_hvd
kill -9 "$HVD_PID"; wait "$HVD_PID" 2>/dev/null || true; HVD_PID=
expect "stale socket left behind" "$([ -S "$T/hvd.sock" ] && echo yes)" yes
start_hvd
expect "restart over a stale socket" "$(sock GET /healthz)" '200 *'
finish
