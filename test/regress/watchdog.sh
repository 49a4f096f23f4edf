#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# hvd's own watchdog: a stuck loop is killed and restarted.  systemd is not
# PID 1 here (a chroot, CI), so test/tools/watchdog_supervisor.py stands in
# for its watchdog logic: NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID set to
# the PID it forks, SIGABRT (then SIGKILL) on a missed ping, and
# Restart=on-failure.  hvd is frozen from outside with kill -STOP, so its
# loop stops turning exactly as a wedged callback would stop it.
. "$(dirname "$0")/lib.sh"
need_cmd bc
SUP=$(dirname "$0")/../tools/watchdog_supervisor.py
# SIGABRT dumps core by default; this test wants no core files.
ulimit -c 0
write_conf

# The supervisor logs "SECONDS EVENT pid=PID ..." lines.
# nth_start LOG N: the PID of the Nth service it started.
nth_start() { awk -v n="$2" '$2 == "start" && ++i == n { sub("pid=", "", $3); print $3 }' "$1"; }
# pings LOG PID: how many WATCHDOG=1 came from PID.
pings() { grep -c " notify pid=$2 msg=WATCHDOG=1$" "$1" || true; }
pings_ge() { [ "$(pings "$1" "$2")" -ge "$3" ]; }
started() { [ -n "$(nth_start "$1" "$2")" ]; }
# ping_gaps LOG PID: seconds between consecutive pings from PID.
ping_gaps() {
	awk -v p="pid=$2" '$2 == "notify" && $3 == p && $4 == "msg=WATCHDOG=1" {
		if (n++) printf "%.3f\n", $1 - last; last = $1 }' "$1"
}
# when LOG PATTERN: the time of the last line matching PATTERN.
when() { grep -E "$2" "$1" | tail -1 | cut -d' ' -f1; }
# events LOG PID: what the supervisor did to PID, with the times cut off.
events() { grep -E " (watchdog-timeout|kill|exit) pid=$2 " "$1" | cut -d' ' -f2- | tr '\n' '|'; }
gone() { ! kill -0 "$1" 2>/dev/null; }

# --- without WATCHDOG_USEC: READY=1, and not a single WATCHDOG=1
python3 "$SUP" --notify-socket "$T/plain.sock" --stop-timeout 10 \
	-- "$HVD" -d -f "$T/hvd.conf" > "$T/plain.log" 2>> "$T/hvd.log" &
HVD_PID=$!
t=$(wait_for 20 grep -q " msg=READY=1" "$T/plain.log") || true
expect "plain: READY=1 arrives (${t}s)" "$t" "[0-9]*"
# Three seconds: three pings' worth at the 1 s cadence used below.
sleep 3
p0=$(nth_start "$T/plain.log" 1)
expect "plain: no WATCHDOG=1 without WATCHDOG_USEC" "$(pings "$T/plain.log" "$p0")" 0
expect "plain: no watchdog timer" "$(grep -c 'watchdog:' "$T/hvd.log" || true)" 0
kill -TERM "$HVD_PID"
set +e; wait "$HVD_PID"; rc=$?; set -e
HVD_PID=
expect "plain: hvd exits 0 on SIGTERM through the supervisor" "$rc" 0

# --- WATCHDOG_USEC=2 s: READY=1, then WATCHDOG=1 every second
python3 "$SUP" --notify-socket "$T/notify.sock" --watchdog-usec 2000000 \
	--abort-timeout 2 --stop-timeout 10 --restart-sec 0.2 \
	-- "$HVD" -d -f "$T/hvd.conf" > "$T/sup.log" 2>> "$T/hvd.log" &
HVD_PID=$!
t=$(wait_for 20 grep -q " msg=READY=1" "$T/sup.log") || true
expect "READY=1 arrives (${t}s)" "$t" "[0-9]*"
p1=$(nth_start "$T/sup.log" 1)
expect "WATCHDOG_PID is hvd's own PID" \
	"$(tr '\0' '\n' < "/proc/$p1/environ" | sed -n 's/^WATCHDOG_PID=//p')" "$p1"
# kill -STOP freezes every thread, so it alone cannot tell a loop timer
# from a pinging thread; hvd has no thread at all (CONVENTIONS 10).
expect "hvd runs one thread: the pings come from its loop" \
	"$(find "/proc/$p1/task" -mindepth 1 -maxdepth 1 | wc -l)" 1
expect "hvd pings at half of WATCHDOG_USEC" \
	"$(grep -c 'watchdog: systemd expects a ping every 2000 ms; pinging every 1000 ms' "$T/hvd.log")" 1
t=$(wait_for 15 pings_ge "$T/sup.log" "$p1" 4) || true
expect "4 WATCHDOG=1 from hvd (${t}s)" "$t" "[0-9]*"
gaps=$(ping_gaps "$T/sup.log" "$p1")
echo "seconds between pings: $(echo "$gaps" | tr '\n' ' ')"
expect "pings every ~1 s (none under 0.7 s or over 1.5 s)" \
	"$(echo "$gaps" | awk '$1 < 0.7 || $1 > 1.5' | wc -l)" 0
expect "no notification refused (all from the main PID)" \
	"$(grep -c notify-refused "$T/sup.log" || true)" 0
expect "hvctl status answers, hvd $p1" \
	"$("$HVCTL" --socket "$T/hvd.sock" status | head -1)" "hvd * pid $p1, *"

# --- freeze the loop: the pings stop, the supervisor kills and restarts hvd
kill -STOP "$p1" || echo "hvd $p1 was gone before SIGSTOP"
t=$(wait_for 15 grep -q " exit pid=$p1 " "$T/sup.log") || true
expect "frozen hvd killed (${t}s after SIGSTOP)" "$t" "[0-9]*"
expect "SIGABRT for the missed ping, and it sufficed" "$(events "$T/sup.log" "$p1")" \
	"watchdog-timeout pid=$p1 limit_ms=2000|kill pid=$p1 signal=SIGABRT|exit pid=$p1 signal=SIGABRT result=watchdog|"
late=$(echo "$(when "$T/sup.log" "watchdog-timeout pid=$p1 ") - $(when "$T/sup.log" " notify pid=$p1 msg=WATCHDOG=1$")" | bc)
expect "timeout fired 2 s after the last ping (${late}s)" \
	"$(echo "$late >= 1.95 && $late < 2.5" | bc)" 1
expect "the frozen hvd is gone" "$(gone "$p1" && echo yes)" yes
t=$(wait_for 20 started "$T/sup.log" 2) || true
p2=$(nth_start "$T/sup.log" 2)
expect "a new hvd is started (${t}s)" "$p2" "[0-9]*"
expect "with a different PID" "$([ "$p2" != "$p1" ] && echo yes)" yes
t=$(wait_for 20 grep -q " notify pid=$p2 msg=READY=1" "$T/sup.log") || true
expect "the new hvd sends READY=1 (${t}s)" "$t" "[0-9]*"
expect "hvctl status answers on the same socket, hvd $p2" \
	"$("$HVCTL" --socket "$T/hvd.sock" status | head -1)" "hvd * pid $p2, *"
t=$(wait_for 15 pings_ge "$T/sup.log" "$p2" 2) || true
expect "the new hvd pings too (${t}s)" "$t" "[0-9]*"
expect "one restart, no start limit" "$(grep -c ' start ' "$T/sup.log")/$(grep -c start-limit "$T/sup.log" || true)" "2/0"
kill -TERM "$HVD_PID"
set +e; wait "$HVD_PID"; rc=$?; set -e
HVD_PID=
expect "the restarted hvd exits 0 on SIGTERM through the supervisor" "$rc" 0
expect "every hvd is gone" "$(gone "$p1" && gone "$p2" && echo yes)" yes

# --- the stand-in's grace period: a service that survives SIGABRT gets
# SIGKILL after --abort-timeout (TimeoutAbortSec=), as under systemd.
python3 "$SUP" --notify-socket "$T/fake.sock" --watchdog-usec 1000000 \
	--abort-timeout 1 --stop-timeout 5 -- python3 -c '
import os, signal, socket, time
signal.signal(signal.SIGABRT, signal.SIG_IGN)
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
time.sleep(600)' > "$T/fake.log" 2>&1 &
HVD_PID=$!
t=$(wait_for 20 started "$T/fake.log" 2) || true
f1=$(nth_start "$T/fake.log" 1)
expect "SIGABRT ignored: SIGKILL after the grace period, then a restart (${t}s)" \
	"$(events "$T/fake.log" "$f1")" \
	"watchdog-timeout pid=$f1 limit_ms=1000|kill pid=$f1 signal=SIGABRT|kill pid=$f1 signal=SIGKILL reason=timed-out|exit pid=$f1 signal=SIGKILL result=watchdog|"
grace=$(echo "$(when "$T/fake.log" "kill pid=$f1 signal=SIGKILL") - $(when "$T/fake.log" "kill pid=$f1 signal=SIGABRT")" | bc)
expect "SIGKILL 1 s after SIGABRT (${grace}s)" "$(echo "$grace >= 0.95 && $grace < 1.5" | bc)" 1
f2=$(nth_start "$T/fake.log" 2)
kill -TERM "$HVD_PID"
set +e; wait "$HVD_PID"; rc=$?; set -e
HVD_PID=
expect "the supervisor passes on its service's SIGTERM death" "$rc" 143
expect "every fake service is gone" "$(gone "$f1" && gone "$f2" && echo yes)" yes

show_logs() {
	show_hvd_log
	for f in plain sup fake; do echo "--- supervisor $f"; cat "$T/$f.log"; done
}
expect "no sanitizer report in hvd's log" "$(sanitizer_reports "$T/hvd.log")" 0
report_checks show_logs
