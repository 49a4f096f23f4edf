#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
#
# Agent benchmarks (see README.md next to this file):
#
#   footprint  hv-agent beside prometheus-node-exporter for BENCH_SECONDS,
#              both at a 1 s interval (hvd's heartbeat; one scrape a
#              second), sampling RSS and CPU of each from /proc.  Prints the
#              hv-agent/node_exporter ratios (goals: RSS <= 0.25, CPU <= 0.5).
#   fanin      loadgen.c plays BENCH_AGENTS agents (real protocol, keys
#              registered in hvd) sending telemetry every second.  Prints
#              hvd's CPU, the p99 of GET /api/v1/hosts under that load, and
#              the time for every session to come back after an hvd restart
#              (goal < 10 s, 0 failures).
#   all        both, one after the other (the default).
#
# usage: test/bench/agent/run.sh [footprint|fanin|all]
#
# Environment knobs (defaults in brackets):
#   HVD, HVCTL, HV_AGENT  [build/release/{daemon/hvd,cli/hvctl,agent/hv-agent}]
#   NODE_EXPORTER         [/usr/bin/prometheus-node-exporter]
#   BENCH_SECONDS  [60]   footprint: measured window
#   BENCH_WARMUP   [5]    footprint: seconds before measuring
#   BENCH_AGENTS   [1000] fanin: simulated agents
#   BENCH_WINDOW   [20]   fanin: seconds over which hvd's CPU is measured
#   BENCH_WRK      [10s]  fanin: wrk -d for GET /api/v1/hosts
#   BENCH_CONNS    [4]    fanin: wrk -c (one thread)
#   BENCH_PERF     [0]    fanin: 1 = also profile hvd with perf (after the
#                         measured window, and through the restart)
#
# Exits non-zero only when something breaks (a process fails to start or
# dies, hvd gets no telemetry, a request fails, agents never come up); never
# on a goal.  Every process it starts is stopped by PID from a trap.

set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../../.." && pwd)
hvd_bin=${HVD:-$repo/build/release/daemon/hvd}
hvctl_bin=${HVCTL:-$repo/build/release/cli/hvctl}
agent_bin=${HV_AGENT:-$repo/build/release/agent/hv-agent}
ne_bin=${NODE_EXPORTER:-/usr/bin/prometheus-node-exporter}
fp_seconds=${BENCH_SECONDS:-60}
fp_warmup=${BENCH_WARMUP:-5}
agents=${BENCH_AGENTS:-1000}
window=${BENCH_WINDOW:-20}
wrk_duration=${BENCH_WRK:-10s}
wrk_conns=${BENCH_CONNS:-4}
perf_on=${BENCH_PERF:-0}
seed=bench$$
mode=${1:-all}

die() {
	echo "agent bench: FAIL: $*" >&2
	exit 1
}

note() {
	echo "agent bench: $*"
}

warn() {
	echo "agent bench: WARNING: $*" >&2
}

# --- preflight --------------------------------------------------------------

case $mode in
footprint | fanin | all) ;;
*) echo "usage: $0 [footprint|fanin|all]" >&2; exit 2 ;;
esac
[[ $# -le 1 ]] || { echo "usage: $0 [footprint|fanin|all]" >&2; exit 2; }
for b in hvd_bin hvctl_bin agent_bin; do
	[[ -x ${!b} ]] || die "${!b}: not an executable (build with: cmake --preset release && cmake --build --preset release)"
	printf -v "$b" '%s' "$(readlink -f -- "${!b}")"
done
for t in curl python3 awk jq sqlite3; do
	command -v "$t" >/dev/null || die "'$t' not found in PATH"
done
if [[ $mode != fanin ]]; then
	[[ $fp_seconds =~ ^[1-9][0-9]*$ && $fp_warmup =~ ^[0-9]+$ ]] ||
		die "BENCH_SECONDS and BENCH_WARMUP must be whole seconds"
	if [[ ! -x $ne_bin && $ne_bin == /usr/bin/prometheus-node-exporter ]]; then
		# The peer is part of the benchmark; Debian packages it.
		if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
			die "$ne_bin missing: apt-get install prometheus-node-exporter"
		fi
		note "installing prometheus-node-exporter with apt-get"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		    --no-install-recommends prometheus-node-exporter >/dev/null ||
			die "apt-get install prometheus-node-exporter failed"
	fi
	[[ -x $ne_bin ]] || die "$ne_bin: not an executable"
fi
if [[ $mode != footprint ]]; then
	for t in cc pkg-config wrk; do
		command -v "$t" >/dev/null || die "'$t' not found in PATH"
	done
	[[ $agents =~ ^[1-9][0-9]*$ && $agents -le 20000 ]] ||
		die "BENCH_AGENTS must be in 1..20000"
	[[ $window =~ ^[1-9][0-9]*$ ]] || die "BENCH_WINDOW must be whole seconds"
	if [[ $perf_on == 1 ]]; then
		command -v perf >/dev/null || die "BENCH_PERF=1 but no perf in PATH"
	fi
fi

# --- temp dir, processes, cleanup ---------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hvagentbench.XXXXXX")
pids=()

# Remembers a PID we started, for the trap.
track() {
	pids+=("$1")
}

# Stops one process we started, by its PID: TERM, then KILL after 5 s.
stop_pid() {
	local pid=$1 i

	[[ -n $pid ]] || return 0
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		warn "pid $pid ignored SIGTERM; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? i

	trap - EXIT INT TERM
	# Newest first: clients before the servers they talk to.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		stop_pid "${pids[i]}"
	done
	rm -rf -- "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() {
	[[ -s $1 ]] || return 0
	echo "---- last lines of $(basename "$1") ----" >&2
	tail -n 20 "$1" >&2
}

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

now() {
	date +%s.%N
}

# calc EXPR [VAR=VALUE...]: awk arithmetic, printed with the format in $fmt.
calc() {
	local expr=$1

	shift
	# The parentheses keep awk from reading "a > b" as a redirection.
	awk "$@" "BEGIN { printf \"${fmt:-%.2f}\", ($expr) }"
}

hz=$(getconf CLK_TCK)

# CPU ticks (utime + stime) a PID has used; the field after "(comm)" is the
# state, so utime and stime are the 12th and 13th from there.
cpu_ticks() {
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# cpu_ns PID...: CPU time (ns) each PID has used, all threads, dead ones
# included: the kernel's per-process CPU clock, whose id is (~pid << 3) | 2
# (what clock_getcpuclockid() returns).  Exact where /proc/PID/stat is
# rounded to ticks; a quiet hv-agent uses only a few ticks a minute.
cpu_ns() {
	python3 -c 'import sys, time
print(" ".join(str(time.clock_gettime_ns((~int(p) << 3) | 2)) for p in sys.argv[1:]))' "$@"
}

rss_kib() {
	awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"
}

alive() {
	kill -0 "$1" 2>/dev/null
}

# --- hvd ------------------------------------------------------------------------

# start_hvd DIR: starts hvd on DIR/hvd.conf, logging to DIR/hvd.log, and
# waits until it answers; sets hvd_pid and status (GET /api/v1/status).
start_hvd() {
	local dir=$1 i

	"$hvd_bin" -d -f "$dir/hvd.conf" >>"$dir/hvd.log" 2>&1 &
	hvd_pid=$!
	track "$hvd_pid"
	for ((i = 0; ; i++)); do
		alive "$hvd_pid" || { show_log "$dir/hvd.log"; die "hvd exited during start-up"; }
		[[ -S $dir/hvd.sock ]] &&
			status=$(curl -sf --unix-socket "$dir/hvd.sock" http://localhost/api/v1/status 2>/dev/null) &&
			break
		((i < 200)) || { show_log "$dir/hvd.log"; die "hvd did not answer within 10 s"; }
		sleep 0.05
	done
}

# stop_hvd DIR: SIGTERM, and waits for the exit (a clean shutdown).
stop_hvd() {
	local dir=$1 i

	kill -TERM "$hvd_pid" 2>/dev/null || die "hvd (pid $hvd_pid) was not running"
	for ((i = 0; i < 200; i++)); do
		alive "$hvd_pid" || break
		sleep 0.05
	done
	alive "$hvd_pid" && { show_log "$dir/hvd.log"; die "hvd did not exit within 10 s of SIGTERM"; }
	wait "$hvd_pid" 2>/dev/null || true
}

# ================================================================================
# footprint
# ================================================================================

footprint() {
	local d=$tmp/footprint sock agent_pid ne_pid scrape_pid port i
	local a_rss a_sum=0 a_max=0 n_rss n_sum=0 n_max=0 samples=0
	local a0 a1 n0 n1 ta0 ta1 tn0 tn1 t0 t1 at0 at1 tel scrapes

	mkdir -p "$d"
	sock=$d/hvd.sock
	cat >"$d/hvd.conf" <<EOF
state-dir $d/state
api-socket $sock
agent-listen 127.0.0.1:0
agent-heartbeat-ms 1000
EOF
	start_hvd "$d"
	HVCTL_SOCKET=$sock "$hvctl_bin" host add h1 --out "$d/h1" >/dev/null ||
		die "hvctl host add h1 failed"
	echo "session-file $d/h1/session" >>"$d/h1/agent.conf"

	"$agent_bin" -d -f "$d/h1/agent.conf" >"$d/agent.log" 2>&1 &
	agent_pid=$!
	track "$agent_pid"

	port=$(free_port)
	"$ne_bin" --web.listen-address="127.0.0.1:$port" >"$d/node_exporter.log" 2>&1 &
	ne_pid=$!
	track "$ne_pid"

	telemetry() {
		curl -sf --unix-socket "$sock" http://localhost/api/v1/hosts/h1/telemetry
	}
	for ((i = 0; ; i++)); do
		alive "$agent_pid" || { show_log "$d/agent.log"; die "hv-agent exited"; }
		alive "$ne_pid" || { show_log "$d/node_exporter.log"; die "node_exporter exited"; }
		tel=$(telemetry 2>/dev/null) && [[ $(jq -r '.latest != null' <<<"$tel") == true ]] &&
			curl -sf -o /dev/null "http://127.0.0.1:$port/metrics" && break
		((i < 100)) || { show_log "$d/agent.log"; show_log "$d/hvd.log"; die "no telemetry from hv-agent or no node_exporter within 10 s"; }
		sleep 0.1
	done

	# One curl process scrapes once a second for the whole run; its own cost
	# is not counted (it is neither of the measured PIDs).
	# -w goes to (unbuffered) stderr, so the file is current.
	curl -s -o /dev/null -w '%{stderr}%{http_code}\n' --rate 1/s \
	    "http://127.0.0.1:$port/metrics?n=[1-$((fp_warmup + fp_seconds + 30))]" \
	    2>"$d/scrapes" &
	scrape_pid=$!
	track "$scrape_pid"

	note "footprint: warming up ${fp_warmup} s, then measuring ${fp_seconds} s (hv-agent pid $agent_pid, node_exporter pid $ne_pid)"
	sleep "$fp_warmup"
	# hvd's times are RFC 3339 in UTC; compared here as epoch seconds.
	at0=$(telemetry | jq -r '.at | fromdateiso8601? // "none"')
	scrapes=$(grep -c '^200$' "$d/scrapes" || true)
	read -r a0 n0 < <(cpu_ns "$agent_pid" "$ne_pid")
	ta0=$(cpu_ticks "$agent_pid") tn0=$(cpu_ticks "$ne_pid") t0=$(now)
	for ((i = 0; i < fp_seconds; i++)); do
		sleep 1
		alive "$agent_pid" || { show_log "$d/agent.log"; die "hv-agent died during the run"; }
		alive "$ne_pid" || { show_log "$d/node_exporter.log"; die "node_exporter died during the run"; }
		a_rss=$(rss_kib "$agent_pid") n_rss=$(rss_kib "$ne_pid")
		a_sum=$((a_sum + a_rss)) n_sum=$((n_sum + n_rss))
		((a_rss > a_max)) && a_max=$a_rss
		((n_rss > n_max)) && n_max=$n_rss
		samples=$((samples + 1))
	done
	read -r a1 n1 < <(cpu_ns "$agent_pid" "$ne_pid")
	ta1=$(cpu_ticks "$agent_pid") tn1=$(cpu_ticks "$ne_pid") t1=$(now)
	scrapes=$(($(grep -c '^200$' "$d/scrapes" || true) - scrapes))
	grep -qv '^200$' "$d/scrapes" && warn "some scrapes of node_exporter failed: $(sort "$d/scrapes" | uniq -c | tr '\n' ' ')"

	# hvd must really have received the agent's telemetry during the window.
	tel=$(telemetry) || die "GET /api/v1/hosts/h1/telemetry failed"
	at1=$(jq -r '.at | fromdateiso8601? // "none"' <<<"$tel")
	[[ $at1 =~ ^[0-9]+$ && $at0 =~ ^[0-9]+$ ]] || die "no telemetry timestamp from hvd: $tel"
	((at1 > at0)) || { show_log "$d/agent.log"; die "hvd received no telemetry from hv-agent during the window (at stayed $at0)"; }
	(($(fmt=%d calc 't1 - a' -v t1="$t1" -v a="$at1") <= 3)) ||
		{ show_log "$d/agent.log"; die "hvd's latest telemetry from hv-agent is older than 3 s at the end of the window"; }
	[[ $(jq -r '.latest.cpu.percent != null' <<<"$tel") == true ]] ||
		die "hvd's latest telemetry has no CPU percent: $tel"
	grep -q 'session with hvd ended' "$d/agent.log" &&
		die "hv-agent's session with hvd dropped during the run: $(grep 'session with hvd ended' "$d/agent.log" | head -1)"

	local secs a_cpu n_cpu a_mean n_mean
	secs=$(calc 'b - a' -v a="$t0" -v b="$t1")
	a_cpu=$(fmt=%.3f calc 't / 1e9' -v t="$((a1 - a0))")
	n_cpu=$(fmt=%.3f calc 't / 1e9' -v t="$((n1 - n0))")
	a_mean=$(fmt=%.1f calc 's / n / 1024' -v s="$a_sum" -v n="$samples")
	n_mean=$(fmt=%.1f calc 's / n / 1024' -v s="$n_sum" -v n="$samples")
	note "footprint: ${secs} s window, $samples RSS samples, $scrapes node_exporter scrapes, hvd telemetry at $at0 -> $at1"
	printf 'agent bench: footprint hv-agent rss=%s MiB (max %s) cpu=%s s; node_exporter rss=%s MiB (max %s) cpu=%s s; ratios rss=%s (goal <=0.25) cpu=%s (goal <=0.5)\n' \
	    "$a_mean" "$(fmt=%.1f calc 'm / 1024' -v m="$a_max")" "$a_cpu" \
	    "$n_mean" "$(fmt=%.1f calc 'm / 1024' -v m="$n_max")" "$n_cpu" \
	    "$(calc 'n > 0 ? a / n : 0' -v a="$a_max" -v n="$n_max")" \
	    "$(fmt=%.3f calc 'n > 0 ? a / n : 0' -v a="$((a1 - a0))" -v n="$((n1 - n0))")"
	note "footprint: rss ratio is max/max (mean/mean $(calc 'n > 0 ? a / n : 0' -v a="$a_sum" -v n="$n_sum")); cpu per second: hv-agent $(fmt=%.3f calc '100 * c / s' -v c="$a_cpu" -v s="$secs")%, node_exporter $(fmt=%.2f calc '100 * c / s' -v c="$n_cpu" -v s="$secs")% of a core"
	note "footprint: cross-check, utime+stime from /proc/PID/stat at $hz Hz: hv-agent $((ta1 - ta0)) ticks, node_exporter $((tn1 - tn0)) ticks"

	stop_pid "$scrape_pid"
	stop_pid "$ne_pid"
	stop_pid "$agent_pid"
	stop_hvd "$d"
}

# ================================================================================
# fan-in
# ================================================================================

# lg_field NAME: NAME's value on loadgen's latest counter line.
lg_field() {
	grep '^loadgen: t=' "$lg_log" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# lg_all_up_after WALL: wall clock of loadgen's first "all-up" after WALL.
lg_all_up_after() {
	awk -v t="$1" '$2 == "all-up" {
		for (i = 3; i <= NF; i++)
			if ($i ~ /^wall=/ && substr($i, 6) + 0 >= t) { print substr($i, 6); exit }
	}' "$lg_log"
}

# wait_all_up WALL SECONDS: prints the all-up wall clock, or fails.
wait_all_up() {
	local since=$1 limit=$2 w i

	for ((i = 0; i < limit * 10; i++)); do
		alive "$lg_pid" || { show_log "$lg_log"; die "loadgen exited"; }
		w=$(lg_all_up_after "$since")
		[[ -n $w ]] && { echo "$w"; return 0; }
		sleep 0.1
	done
	show_log "$lg_log"
	show_log "$d/hvd.log"
	die "not all $agents agents came up within $limit s ($(lg_field up) up)"
}

# to_ms VALUE: wrk's "12.34ms" / "850.00us" / "1.20s" in milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) printf "%.2f", v / 1000
		else if (v ~ /ms$/) printf "%.2f", v + 0
		else if (v ~ /s$/) printf "%.2f", v * 1000
		else printf "nan"
	}'
}

# percentile P FILE: the P-th percentile (nearest rank) of a column of numbers.
percentile() {
	sort -n "$2" | awk -v p="$1" '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		i = int(p / 100 * NR + 0.999999); if (i < 1) i = 1
		printf "%.2f", v[i] * 1000
	}'
}

hvd_metric() {
	curl -sf --unix-socket "$d/hvd.sock" http://localhost/metrics | awk -v m="$1" '$1 == m { print $2 }'
}

db_count() {
	sqlite3 -readonly "$d/state/hvd.db" "SELECT count(*) FROM events WHERE $1" 2>/dev/null || echo "?"
}

# perf_profile SECONDS FILE: samples hvd for SECONDS, writes the top of the
# flat profile (self time by library and symbol) to FILE.
perf_profile() {
	perf record -q -F 999 -p "$hvd_pid" -o "$2.data" -- sleep "$1" >/dev/null 2>&1 ||
		{ warn "perf record failed"; return 0; }
	perf report -q --stdio --sort dso,sym -i "$2.data" 2>/dev/null |
		grep -E '^ +[0-9]' | head -n 20 | sed 's/  *$//' >"$2" || true
}

fanin() {
	local d=$tmp/fanin sock aport hk tcp token i lg_bin
	local start_wall up_wall cold t0 t1 c0 c1 l0 l1 s0 s1 hvd_cores lg_cores tel_rate
	local wrk_out p50 p99 rps wrk_cores p50p p99p f0 f1 down_wall ready_wall back_wall

	mkdir -p "$d"
	sock=$d/hvd.sock
	lg_bin=$d/loadgen
	lg_log=$d/loadgen.log

	# Built here rather than by CMake, against the repo's own protocol code.
	# shellcheck disable=SC2046 # pkg-config prints several words
	(cd "$repo" && cc -std=c11 -D_GNU_SOURCE -O2 -Iproto -Ilib -o "$lg_bin" \
	    proto/link.c proto/link_ev.c proto/msg.c proto/jsonfield.c proto/noise.c \
	    lib/hostport.c lib/numparse.c test/bench/agent/loadgen.c \
	    $(pkg-config --cflags --libs libevent libsodium jansson)) >"$d/cc.log" 2>&1 ||
		{ cat "$d/cc.log" >&2; die "building loadgen failed"; }

	# A fixed agent port: the agents reconnect to it after the restart.
	aport=$(free_port)
	cat >"$d/hvd.conf" <<EOF
state-dir $d/state
api-socket $sock
api-listen 127.0.0.1:0
# Plaintext, as the peer it is compared with serves; tokens from loopback.
api-tls off
api-plaintext-tokens loopback
agent-listen 127.0.0.1:$aport
agent-heartbeat-ms 1000
EOF
	# One socket per agent in hvd and in loadgen.
	if (($(ulimit -n) < agents + 200)); then
		ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
		(($(ulimit -n) >= agents + 200)) || die "ulimit -n is $(ulimit -n); $agents agents need $((agents + 200))"
	fi
	start_hvd "$d"
	hk=$(jq -r .listen.agent_key <<<"$status")
	tcp=$(jq -r .listen.tcp <<<"$status")
	[[ ${#hk} -eq 64 && $tcp == 127.0.0.1:* ]] || die "GET /api/v1/status lacks listen.agent_key or listen.tcp: $status"

	# Enrol every agent's key through one curl process (one connection).
	"$lg_bin" keys "$agents" "$seed" >"$d/keys" || die "loadgen keys failed"
	i=0
	while read -r key; do
		i=$((i + 1))
		((i == 1)) || echo next
		cat <<EOF
url = "http://localhost/api/v1/hosts"
unix-socket = "$sock"
header = "Content-Type: application/json"
data = "{\"name\":\"lg$(printf %04d "$i")\",\"agent_pubkey\":\"$key\"}"
output = "/dev/null"
write-out = "%{http_code}\\n"
EOF
	done <"$d/keys" >"$d/enrol.curl"
	curl -sS -K "$d/enrol.curl" >"$d/enrol.codes" || true
	[[ $(grep -c '^201$' "$d/enrol.codes" || true) -eq $agents ]] || {
		sort "$d/enrol.codes" | uniq -c >&2
		die "enrolled $(grep -c '^201$' "$d/enrol.codes" || true) of $agents agent keys"
	}
	token=$(HVCTL_SOCKET=$sock "$hvctl_bin" token create --role read --name agent-bench 2>/dev/null) ||
		die "hvctl token create failed"
	[[ $token == hvt_* ]] || die "hvctl token create printed no token"

	# --- all agents up
	start_wall=$(now)
	"$lg_bin" run -n "$agents" -s "$seed" -i 1000 -T 900 "127.0.0.1:$aport" "$hk" >"$lg_log" 2>&1 &
	lg_pid=$!
	track "$lg_pid"
	up_wall=$(wait_all_up "$start_wall" 60)
	cold=$(calc 'b - a' -v a="$start_wall" -v b="$up_wall")
	note "fan-in: $agents agents up in $cold s from a cold start (connects spread over 1 s)"
	sleep 3
	[[ $(hvd_metric hvd_agent_sessions) == "$agents" ]] ||
		die "hvd reports $(hvd_metric hvd_agent_sessions) agent sessions, expected $agents"

	# --- hvd's CPU with every agent reporting
	read -r c0 l0 < <(cpu_ns "$hvd_pid" "$lg_pid")
	t0=$(now) s0=$(lg_field telemetry_sent)
	sleep "$window"
	read -r c1 l1 < <(cpu_ns "$hvd_pid" "$lg_pid")
	t1=$(now) s1=$(lg_field telemetry_sent)
	alive "$hvd_pid" || { show_log "$d/hvd.log"; die "hvd died under load"; }
	hvd_cores=$(fmt=%.3f calc 't / 1e9 / (b - a)' -v t="$((c1 - c0))" -v a="$t0" -v b="$t1")
	lg_cores=$(calc 't / 1e9 / (b - a)' -v t="$((l1 - l0))" -v a="$t0" -v b="$t1")
	tel_rate=$(fmt=%.0f calc '(s1 - s0) / (b - a)' -v s0="$s0" -v s1="$s1" -v a="$t0" -v b="$t1")
	note "fan-in: ${window} s window: hvd $hvd_cores cores (RSS $(fmt=%.1f calc 'k / 1024' -v k="$(rss_kib "$hvd_pid")") MiB), loadgen $lg_cores cores, $tel_rate telemetry messages/s"
	[[ $(lg_field up) == "$agents" && $(lg_field failures) == 0 ]] ||
		warn "during the window: up=$(lg_field up) failures=$(lg_field failures)"

	if [[ $perf_on == 1 ]]; then
		perf_profile 10 "$d/perf.steady"
		note "fan-in: perf, hvd at steady state (top symbols, self time):"
		sed 's/^/    /' "$d/perf.steady"
	fi

	# --- GET /api/v1/hosts under that load
	curl -sf -H "Authorization: Bearer $token" "http://$tcp/api/v1/hosts" >"$d/hosts.json" ||
		die "GET /api/v1/hosts over TCP failed"
	[[ $(jq '[.hosts[] | select(.live.connected)] | length' "$d/hosts.json") -eq $agents ]] ||
		die "GET /api/v1/hosts does not list $agents connected hosts"
	note "fan-in: GET /api/v1/hosts body is $(stat -c %s "$d/hosts.json") bytes"
	wrk_out=$d/wrk.txt
	c0=$(cpu_ns "$hvd_pid") t0=$(now)
	wrk -t1 -c"$wrk_conns" -d"$wrk_duration" --latency -H "Authorization: Bearer $token" \
	    "http://$tcp/api/v1/hosts" >"$wrk_out" || { cat "$wrk_out" >&2; die "wrk failed"; }
	c1=$(cpu_ns "$hvd_pid") t1=$(now)
	wrk_cores=$(calc 't / 1e9 / (b - a)' -v t="$((c1 - c0))" -v a="$t0" -v b="$t1")
	echo "==== wrk -t1 -c$wrk_conns -d$wrk_duration --latency GET /api/v1/hosts"
	sed 's/^/    /' "$wrk_out"
	! grep -q 'Non-2xx or 3xx responses' "$wrk_out" || die "GET /api/v1/hosts answered non-2xx under load"
	p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$wrk_out")")
	p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$wrk_out")")
	rps=$(awk '$1 == "Requests/sec:" { printf "%.0f", $2 }' "$wrk_out")
	[[ $p99 != nan && -n $rps ]] || die "no latency distribution in wrk's report"

	if [[ $perf_on == 1 ]]; then
		wrk -t1 -c"$wrk_conns" -d7s -H "Authorization: Bearer $token" \
		    "http://$tcp/api/v1/hosts" >/dev/null &
		local wrk_pid=$!
		track "$wrk_pid"
		sleep 1
		perf_profile 5 "$d/perf.api"
		wait "$wrk_pid" || true
		note "fan-in: perf, hvd serving GET /api/v1/hosts (wrk) beside the agents:"
		sed 's/^/    /' "$d/perf.api"
	fi

	# The same request paced at 10/s, one at a time: the latency an operator
	# sees beside the agents, without wrk's own queueing.
	curl -s -o /dev/null -w '%{http_code} %{time_total}\n' --rate 10/s \
	    -H "Authorization: Bearer $token" "http://$tcp/api/v1/hosts?n=[1-100]" >"$d/paced" ||
		die "paced GET /api/v1/hosts failed"
	[[ $(grep -c '^200 ' "$d/paced") -eq 100 ]] || die "paced GET /api/v1/hosts: not every answer was 200"
	awk '{ print $2 }' "$d/paced" >"$d/paced.times"
	p50p=$(percentile 50 "$d/paced.times") p99p=$(percentile 99 "$d/paced.times")
	[[ $(lg_field up) == "$agents" ]] || warn "agents dropped during the API load: up=$(lg_field up)"

	# --- restart: the time from the new hvd's start until every agent is back
	f0=$(lg_field failures)
	down_wall=$(now)
	stop_hvd "$d"
	t0=$(now)
	start_hvd "$d"
	ready_wall=$(now)
	[[ $(jq -r .listen.agents <<<"$status") == "127.0.0.1:$aport" ]] ||
		die "hvd came back on another agent port: $(jq -r .listen.agents <<<"$status")"
	if [[ $perf_on == 1 ]]; then
		perf_profile 5 "$d/perf.restart" &
		local perf_pid=$!
		track "$perf_pid"
	fi
	back_wall=$(wait_all_up "$t0" 60)
	c1=$(cpu_ns "$hvd_pid")
	[[ -n ${perf_pid:-} ]] && wait "$perf_pid"
	sleep 2
	f1=$(lg_field failures)
	local restart outage startup
	restart=$(calc 'b - a' -v a="$t0" -v b="$back_wall")
	outage=$(calc 'b - a' -v a="$down_wall" -v b="$back_wall")
	startup=$(calc 'b - a' -v a="$t0" -v b="$ready_wall")
	[[ $(hvd_metric hvd_agent_sessions) == "$agents" ]] ||
		warn "hvd reports $(hvd_metric hvd_agent_sessions) sessions after the restart"
	if [[ $perf_on == 1 && -s $d/perf.restart ]]; then
		note "fan-in: perf, hvd during the first 5 s after the restart:"
		sed 's/^/    /' "$d/perf.restart"
	fi

	grep '^loadgen: t=' "$lg_log" | tail -n 1 | sed 's/^/    /'
	note "fan-in: restart: hvd stopped in $(calc 'a - b' -v a="$t0" -v b="$down_wall") s, answered $startup s after launch; agents back $restart s after launch ($outage s after SIGTERM); the new hvd used $(calc 'c / 1e9' -v c="$c1") CPU-s until then"
	note "fan-in: hvd events: $(db_count "kind = 'agent.rejected'") agent.rejected, $(db_count "kind = 'host.down'") host.down, $(db_count "kind = 'host.up'") host.up"
	note "fan-in: GET /api/v1/hosts: wrk $rps req/s, p50=$p50 ms, hvd $wrk_cores cores; paced 10 req/s: p50=$p50p ms p99=$p99p ms"
	printf 'agent bench: fan-in %d agents, hvd cpu=%s cores, GET /api/v1/hosts p99=%s ms, all %d back in %s s after restart, failures=%d (goal <10 s, 0 failures)\n' \
	    "$agents" "$hvd_cores" "$p99" "$agents" "$restart" "$((f1 - f0))"
	(( f0 == 0 )) || note "fan-in: $f0 failures before the restart (see the counter line above)"

	stop_pid "$lg_pid"
	stop_hvd "$d"
}

note "$(nproc) CPUs, $(uname -r), mode $mode"
[[ $mode == fanin ]] || footprint
[[ $mode == footprint ]] || fanin
