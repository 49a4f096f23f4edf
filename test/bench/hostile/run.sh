#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
#
# Latency under attack: a normal client's p50/p99 for GET /healthz on the
# TCP API (a fresh connection per request, like a monitoring probe) and its
# p99 for a 64 MiB boot file from the HTTP boot port, with no attack and
# then while each attack runs on loopback: slowloris, a connection storm,
# idle connections up to the per-address and global limits, a flood of
# oversize and garbage requests, and strangers flooding the agent port with
# bad handshakes.  Goal (issue 22): within 2x of the quiet figures while the
# attack runs.  See README.md next to this file.
#
# usage: test/bench/hostile/run.sh [HVD_BINARY [HVCTL_BINARY]]
#        (defaults: build/release/daemon/hvd, build/release/cli/hvctl)
#
# Environment knobs (defaults in brackets):
#   BENCH_HEALTHZ_N      [200]  GET /healthz per phase, one after another
#   BENCH_HEALTHZ_GAP_MS [50]   start-to-start spacing of those requests
#   BENCH_FILE_N         [10]   boot-file downloads per phase
#   BENCH_SIZE_MIB       [64]   size of the boot file
#   BENCH_PROCS          [3]    attacker processes for storm, garbage, agent
#   BENCH_NICE           [10]   nice level of the attackers (0: none)
#   BENCH_SETTLE         [2]    seconds an attack runs before measuring
#   BENCH_TIMEOUT        [30]   the normal client's timeout per request, s
#   BENCH_BUDGET         [120]  seconds per series (healthz, file) after
#                               which the normal client stops early
#   BENCH_ATTACKS        [slowloris storm idle garbage agent]; "wide" is
#                               opt-in: one idle connection from each of
#                               more addresses than http-conn-max
#
# Exits non-zero only when something breaks (hvd fails to start or dies, an
# answer is wrong, the normal client is refused or times out, an attack
# could not be mounted or hvd did not count it, a tool is missing); never
# on a ratio.  A benchmark, not a timed test: run it by hand, not in ctest.

set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../../.." && pwd)
hvd_bin=${1:-$repo/build/release/daemon/hvd}
hvctl_bin=${2:-$repo/build/release/cli/hvctl}
healthz_n=${BENCH_HEALTHZ_N:-200}
healthz_gap=${BENCH_HEALTHZ_GAP_MS:-50}
file_n=${BENCH_FILE_N:-10}
size_mib=${BENCH_SIZE_MIB:-64}
procs=${BENCH_PROCS:-3}
nice_level=${BENCH_NICE:-10}
settle=${BENCH_SETTLE:-2}
timeout=${BENCH_TIMEOUT:-30}
budget=${BENCH_BUDGET:-120}
attacks=${BENCH_ATTACKS:-slowloris storm idle garbage agent}
file_path=/boot/files/initramfs

# hvd's limits, written into its config; these are the defaults
# (daemon/wire/config.c), so the bench measures what ships.
conn_max=1024
conn_per_ip=32
conn_reserve=64
header_timeout=10
idle_timeout=60

die() {
	echo "hostile bench: FAIL: $*" >&2
	exit 1
}

note() {
	echo "hostile bench: $*"
}

warn() {
	echo "hostile bench: WARNING: $*" >&2
}

# --- preflight --------------------------------------------------------------

[[ $# -le 2 ]] || { echo "usage: $0 [HVD_BINARY [HVCTL_BINARY]]" >&2; exit 2; }
for b in hvd_bin hvctl_bin; do
	[[ -x ${!b} ]] || die "${!b}: not an executable (build with: cmake --preset release && cmake --build --preset release)"
	printf -v "$b" '%s' "$(readlink -f -- "${!b}")"
done
for t in curl python3 awk sha256sum nice ps; do
	command -v "$t" >/dev/null || die "'$t' not found in PATH"
done
num() {
	if ! [[ ${!1} =~ ^[0-9]+$ ]] || (( ${!1} < $2 || ${!1} > $3 )); then
		die "$4 must be in $2..$3"
	fi
}
num healthz_n 10 100000 BENCH_HEALTHZ_N
num healthz_gap 0 10000 BENCH_HEALTHZ_GAP_MS
num file_n 1 1000 BENCH_FILE_N
num size_mib 1 4096 BENCH_SIZE_MIB
num procs 1 32 BENCH_PROCS
num nice_level 0 19 BENCH_NICE
num settle 0 60 BENCH_SETTLE
num timeout 1 3600 BENCH_TIMEOUT
num budget 1 36000 BENCH_BUDGET
for a in $attacks; do
	[[ $a =~ ^(slowloris|storm|idle|wide|garbage|agent)$ ]] || die "unknown attack '$a' in BENCH_ATTACKS"
done
# The idle holders alone keep about 2 x http-conn-max sockets open.
(( $(ulimit -n) >= 4 * conn_max )) || ulimit -n $((4 * conn_max)) 2>/dev/null ||
	die "ulimit -n $(ulimit -n) is too low; need $((4 * conn_max))"

# --- temp dir and cleanup -----------------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hvbench-hostile.XXXXXX")
hvd_pid=
attack_pids=()

# Stops one process we started, by its PID: TERM, then KILL after 5s.
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

stop_attack() {
	local p

	for p in "${attack_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${attack_pids[@]}"; do stop_pid "$p"; done
	attack_pids=()
}

cleanup() {
	local rc=$?

	trap - EXIT INT TERM
	stop_attack
	stop_pid "$hvd_pid"
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

# --- the normal client and the attackers, in one python program ---------------

cat >"$tmp/hostile.py" <<'PY'
"""The bench's clients.  probe-*: the normal client, from 127.0.0.1.
The rest are attackers, each from its own 127.B.P.x source addresses (the
per-address limits key on the source).  Every command prints one JSON
line when it ends (attackers on SIGTERM)."""
import hashlib, json, os, random, selectors, signal, socket, struct, sys, time

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


class Stop(Exception):
    pass


def on_term(*_):
    # Once: a second TERM must not cut the final report short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Stop()


def sources(base, n):
    return ["%s.%d" % (base, i + 1) for i in range(n)]


def sock_from(src, blocking=True, timeout=None):
    s = socket.socket()
    s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    s.bind((src, 0))
    if not blocking:
        s.setblocking(False)
    elif timeout:
        s.settimeout(timeout)
    return s


def read_head(s):
    """The status code and headers of an answer; the bytes past them."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        code = int(lines[0].split()[1])
    except (IndexError, ValueError):
        code = 0
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(b":")
        hdrs[k.strip().lower()] = v.strip()
    return code, hdrs, rest


def get(host, port, path, timeout, big=None, hasher=None):
    """One GET on a fresh connection; returns (code, body bytes or length)."""
    s = socket.create_connection((host, port), timeout)
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n"
                  % (path.encode(), host.encode(), port))
        code, hdrs, rest = read_head(s)
        if big is None:
            body = rest
            while True:
                d = s.recv(65536)
                if not d:
                    return code, body
                body += d
        want = int(hdrs.get(b"content-length", b"-1"))
        n = len(rest)
        if hasher:
            hasher.update(rest)
        mv = memoryview(big)
        while n < want:
            k = s.recv_into(mv)
            if k == 0:
                break
            if hasher:
                hasher.update(mv[:k])
            n += k
        return code, (n, want)
    finally:
        s.close()


def probe_healthz(host, port, n, gap_ms, timeout, budget):
    ms, errors = [], []
    nxt = start = time.monotonic()
    for _ in range(n):
        now = time.monotonic()
        if now - start > budget:
            break
        if nxt > now:
            time.sleep(nxt - now)
        nxt = time.monotonic() + gap_ms / 1000.0
        t0 = time.perf_counter()
        try:
            code, body = get(host, port, "/healthz", timeout)
            t = (time.perf_counter() - t0) * 1000
            if code != 200 or b'"ok"' not in body:
                errors.append("HTTP %d %r" % (code, body[:80]))
            else:
                ms.append(t)
        except OSError as e:
            errors.append("%s after %.0f ms" % (e, (time.perf_counter() - t0) * 1000))
    print(json.dumps({"ms": ms, "errors": errors, "planned": n, "done": len(ms) + len(errors)}))


def probe_file(host, port, path, n, size, timeout, budget):
    ms, errors = [], []
    big = bytearray(4 << 20)
    start = time.monotonic()
    done = 0
    for i in range(n + 1):
        if i < n and time.monotonic() - start > budget:
            continue
        done += i < n
        # The last one is not timed: it checks the bytes.
        h = hashlib.sha256() if i == n else None
        sha = ""
        t0 = time.perf_counter()
        try:
            code, (got, want) = get(host, port, path, timeout, big, h)
            t = (time.perf_counter() - t0) * 1000
            if code != 200 or got != size or want != size:
                errors.append("HTTP %d, %d of %d bytes (Content-Length %d)"
                              % (code, got, size, want))
            elif h is None:
                ms.append(t)
            else:
                sha = h.hexdigest()
        except OSError as e:
            errors.append("%s after %.0f ms" % (e, (time.perf_counter() - t0) * 1000))
    print(json.dumps({"ms": ms, "errors": errors, "sha256": sha, "planned": n, "done": done}))


def hold(host, ports, base, nsrc, per, trickle, retry, status):
    """Holds nsrc x per connections per port.  trickle > 0: slowloris (the
    request line, then one header byte every trickle seconds per
    connection); 0: idle, sending nothing.  A closed slot is reopened
    after retry seconds.  Writes its counters to status every second."""
    sel = selectors.DefaultSelector()
    slots = [{"port": p, "src": src, "s": None, "at": 0.0, "up": False, "t": 0.0}
             for p in ports for src in sources(base, nsrc) for _ in range(per)]
    # held: connections up for a second or more (hvd refuses at once).
    st = {"held": {str(p): 0 for p in ports}, "max_held": {str(p): 0 for p in ports},
          "opened": 0, "refused": 0,
          "cut": 0, "connect_errors": 0, "bytes_sent": 0}
    last = 0.0

    def close(sl, now):
        sel.unregister(sl["s"])
        sl["s"].close()
        if sl["up"]:
            # Closed within a second of connecting: refused at accept.
            st["refused" if now - sl["t"] < 1.0 else "cut"] += 1
        else:
            st["connect_errors"] += 1
        sl.update(s=None, up=False, at=now + retry)

    def write_status():
        now = time.monotonic()
        for k in st["held"]:
            st["held"][k] = 0
        for sl in slots:
            if sl["up"] and now - sl["t"] >= 1.0:
                st["held"][str(sl["port"])] += 1
        for k, v in st["held"].items():
            st["max_held"][k] = max(st["max_held"][k], v)
        with open(status + ".new", "w") as f:
            json.dump(st, f)
        os.replace(status + ".new", status)

    try:
        while True:
            now = time.monotonic()
            for sl in slots:
                if sl["s"] is None and now >= sl["at"]:
                    try:
                        s = sock_from(sl["src"], blocking=False)
                    except OSError:
                        st["connect_errors"] += 1
                        sl["at"] = now + retry
                        continue
                    s.connect_ex((host, sl["port"]))
                    sl.update(s=s, up=False, t=now)
                    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, sl)
                elif sl["up"] and trickle > 0 and now >= sl["at"]:
                    try:
                        st["bytes_sent"] += sl["s"].send(b"a")
                    except OSError:
                        close(sl, now)
                        continue
                    sl["at"] = now + trickle
            for key, ev in sel.select(0.05):
                sl, s = key.data, key.fileobj
                now = time.monotonic()
                if not sl["up"] and ev & selectors.EVENT_WRITE:
                    if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        close(sl, now)
                        continue
                    sl.update(up=True, t=now, at=now + random.uniform(0, max(trickle, 0.01)))
                    st["opened"] += 1
                    sel.modify(s, selectors.EVENT_READ, sl)
                    if trickle > 0:
                        try:
                            st["bytes_sent"] += s.send(
                                b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                        except OSError:
                            close(sl, now)
                    continue
                if ev & selectors.EVENT_READ:
                    try:
                        d = s.recv(4096)
                    except OSError:
                        d = b""
                    if not d:
                        close(sl, now)
            if now - last >= 1.0:
                write_status()
                last = now
    except Stop:
        pass
    write_status()
    print(json.dumps(st))


def storm(host, ports, base, nsrc):
    """Connect and close at once, as fast as one process can; every other
    close is an RST (SO_LINGER 0), as flood tools do."""
    srcs = sources(base, nsrc)
    st = {"connects": 0, "errors": 0}
    rst = struct.pack("ii", 1, 0)
    i = 0
    try:
        while True:
            i += 1
            try:
                s = sock_from(srcs[i % len(srcs)], timeout=2)
            except OSError:
                st["errors"] += 1
                continue
            try:
                s.connect((host, ports[i % len(ports)]))
                if i & 1:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, rst)
                s.close()
                st["connects"] += 1
            except OSError:
                st["errors"] += 1
                s.close()
    except Stop:
        pass
    print(json.dumps(st))


def garbage_kinds():
    q = "&".join("a%d=b" % i for i in range(40))
    many = "".join("X-%d: 1\r\n" % i for i in range(100))
    return [
        # (name, request, the status hvd must answer; None: any 4xx or a close)
        ("uri_too_long", "GET /healthz?%s%s HTTP/1.1\r\nHost: x\r\n\r\n" % (q, "a" * 9000), 414),
        ("headers_too_large", "GET /healthz HTTP/1.1\r\nHost: x\r\n%s\r\n" % many, 431),
        ("nul", "GET /boot/files/initramfs%00.txt HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("no_host", "GET /healthz HTTP/1.1\r\n\r\n", 400),
        ("traversal", "GET /boot/files/%2e%2e/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", None),
        ("binary", None, None),
    ]


def garbage(host, ports, base, nsrc):
    """Requests hvd must refuse at its edge, each on a fresh connection."""
    srcs = sources(base, nsrc)
    kinds = garbage_kinds()
    st = {k[0]: {} for k in kinds}
    i = 0
    try:
        while True:
            i += 1
            name, req, _ = kinds[i % len(kinds)]
            data = req.encode() if req else os.urandom(512) + b"\r\n\r\n"
            try:
                s = sock_from(srcs[i % len(srcs)], timeout=5)
            except OSError:
                continue
            try:
                s.connect((host, ports[(i // len(kinds)) % len(ports)]))
                s.sendall(data)
                code, _, _ = read_head(s)
                key = str(code) if code else "closed"
            except socket.timeout:
                key = "timeout"
            except OSError:
                key = "reset"
            finally:
                s.close()
            st[name][key] = st[name].get(key, 0) + 1
    except Stop:
        pass
    print(json.dumps(st))


def agent(host, port, base, nsrc):
    """Strangers on the agent port: no HVAG preamble, an old wire version,
    a random message 1 (hvd does the es DH before it fails), an oversize
    frame.  Each waits for hvd to close the connection."""
    srcs = sources(base, nsrc)
    pre = b"HVAG\x01\x00\x00\x00"
    kinds = [("msg1", None), ("garbage", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
             ("msg1", None), ("version", b"HVAG\x00\x09\x00\x00"),
             ("msg1", None), ("oversize", pre + struct.pack(">I", 65536))]
    st = {"sent": {}, "closed_by_hvd": 0, "timeout": 0, "errors": 0}
    i = 0
    try:
        while True:
            i += 1
            name, data = kinds[i % len(kinds)]
            if data is None:
                data = pre + struct.pack(">I", 104) + os.urandom(104)
            try:
                s = sock_from(srcs[i % len(srcs)], timeout=5)
            except OSError:
                st["errors"] += 1
                continue
            try:
                s.connect((host, port))
                s.sendall(data)
                while s.recv(4096):
                    pass
                st["closed_by_hvd"] += 1
                st["sent"][name] = st["sent"].get(name, 0) + 1
            except socket.timeout:
                st["timeout"] += 1
            except OSError:
                st["errors"] += 1
            finally:
                s.close()
    except Stop:
        pass
    print(json.dumps(st))


def main():
    signal.signal(signal.SIGTERM, on_term)
    cmd, a = sys.argv[1], sys.argv[2:]
    ports = lambda v: [int(p) for p in v.split(",")]
    if cmd == "probe-healthz":
        probe_healthz(a[0], int(a[1]), int(a[2]), float(a[3]), float(a[4]), float(a[5]))
    elif cmd == "probe-file":
        probe_file(a[0], int(a[1]), a[2], int(a[3]), int(a[4]), float(a[5]), float(a[6]))
    elif cmd == "hold":
        hold(a[0], ports(a[1]), a[2], int(a[3]), int(a[4]), float(a[5]), float(a[6]), a[7])
    elif cmd == "storm":
        storm(a[0], ports(a[1]), a[2], int(a[3]))
    elif cmd == "garbage":
        garbage(a[0], ports(a[1]), a[2], int(a[3]))
    elif cmd == "agent":
        agent(a[0], int(a[1]), a[2], int(a[3]))
    else:
        sys.exit("unknown command " + cmd)


main()
PY
py=$tmp/hostile.py

# --- the boot file and hvd ----------------------------------------------------

root=$tmp/boot
mkdir -p "$root" "$tmp/state"
head -c $((size_mib * 1048576)) /dev/urandom >"$root/initramfs" ||
	die "cannot write $size_mib MiB into $root"
size=$(stat -c %s "$root/initramfs")
sum=$(sha256sum <"$root/initramfs" | cut -d' ' -f1)

sock=$tmp/hvd.sock
cat >"$tmp/hvd.conf" <<EOF
state-dir $tmp/state
api-socket $sock
api-listen 127.0.0.1:0
# Plaintext, as the peer it is compared with serves; tokens from loopback.
api-tls off
api-plaintext-tokens loopback
boot-root $root
boot-http-listen 127.0.0.1:0
agent-listen 127.0.0.1:0
mesh-anchor off
http-conn-max $conn_max
http-conn-per-ip $conn_per_ip
http-conn-reserve $conn_reserve
http-header-timeout $header_timeout
http-idle-timeout $idle_timeout
EOF
"$hvd_bin" -d -f "$tmp/hvd.conf" >"$tmp/hvd.log" 2>&1 &
hvd_pid=$!

export HVCTL_SOCKET=$sock
for ((i = 0; ; i++)); do
	kill -0 "$hvd_pid" 2>/dev/null || { show_log "$tmp/hvd.log"; die "hvd exited during start-up"; }
	[[ -S $sock ]] && status=$("$hvctl_bin" --json status 2>/dev/null) && break
	((i < 100)) || { show_log "$tmp/hvd.log"; die "hvd did not answer hvctl on $sock within 10s"; }
	sleep 0.1
done
read -r api_port boot_port agent_port < <(python3 -c 'import json, sys
l = json.load(sys.stdin)["listen"]
print(*(l[k].rsplit(":", 1)[1] for k in ("tcp", "boot_http", "agents")))' <<<"$status") ||
	die "no listen.tcp, listen.boot_http or listen.agents in hvctl --json status"
note "hvd pid $hvd_pid: API 127.0.0.1:$api_port, boot HTTP 127.0.0.1:$boot_port, agents 127.0.0.1:$agent_port"
note "limits: http-conn-max $conn_max, http-conn-per-ip $conn_per_ip, http-conn-reserve $conn_reserve, http-header-timeout ${header_timeout}s"

metrics() {
	curl -sSf -m 10 --unix-socket "$sock" http://localhost/metrics
}
# metric FILE NAME{LABELS}: its value in a saved /metrics, 0 when absent.
metric() {
	awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }' "$1"
}
# delta NAME{LABELS}: how much it grew during the phase.
delta() {
	awk -v a="$(metric "$tmp/m0" "$1")" -v b="$(metric "$tmp/m1" "$1")" 'BEGIN { print b - a }'
}
refused() { delta "hvd_http_refused_total{reason=\"$1\"}"; }
agent_refused() { delta "hvd_agent_refused_total{reason=\"$1\"}"; }

alive() {
	kill -0 "$hvd_pid" 2>/dev/null || { show_log "$tmp/hvd.log"; die "hvd died ($1)"; }
	"$hvctl_bin" status >/dev/null 2>&1 || die "hvctl status failed ($1)"
}

# Wait until hvd holds no more than the quiet number of descriptors, so the
# next phase starts clean (refused connections close at once; held ones
# close when their attacker stops).
base_fds=
settle_fds() {
	local i n

	for ((i = 0; i < 100; i++)); do
		n=$(metrics | awk '$1 == "process_open_fds" { print $2 }')
		[[ -z $base_fds || $n -le $((base_fds + 4)) ]] && return 0
		sleep 0.2
	done
	warn "hvd still holds $n descriptors after 20 s (quiet: $base_fds)"
}

# --- attacks ---------------------------------------------------------------------

ports=$api_port,$boot_port
slow_src=16	# slowloris: 16 addresses x 32 connections on each port
idle_src=$(( (conn_max - conn_reserve) / conn_per_ip + 2 ))	# past the global limit
idle_per=$((conn_per_ip + 8))	# past the per-address limit
wide_procs=$(( (conn_max + 249) / 250 + 1 ))	# 250 addresses each

# spawn NAME ARGS...: one attacker, niced, its JSON in $tmp/att.NAME.
spawn() {
	local name=$1

	shift
	nice -n "$nice_level" python3 "$py" "$@" >"$tmp/att.$name" 2>"$tmp/err.$name" &
	attack_pids+=("$!")
}

# wait_open TARGET: until the holders report TARGET open connections.
wait_open() {
	local i n=0

	for ((i = 0; i < 100; i++)); do
		n=$(python3 -c 'import json, sys
n = 0
for f in sys.argv[1:]:
	try:
		n += sum(json.load(open(f))["held"].values())
	except (OSError, ValueError):
		pass
print(n)' "$tmp"/hold.*.status)
		((n >= $1)) && return 0
		sleep 0.2
	done
	die "the attackers hold only $n of $1 connections after 20 s"
}

start_slowloris() {
	spawn slow.0 hold 127.0.0.1 "$ports" 127.11.0 "$slow_src" "$conn_per_ip" 1 0.5 "$tmp/hold.0.status"
	wait_open $((2 * slow_src * conn_per_ip))
}
start_idle() {
	spawn idle.0 hold 127.0.0.1 "$ports" 127.12.0 "$idle_src" "$idle_per" 0 1 "$tmp/hold.0.status"
	# Strangers fill each listener up to http-conn-max - reserve, give or
	# take the first connection of each address.
	wait_open $((2 * (conn_max - conn_reserve - idle_src)))
}
# Opt-in: one idle connection from each of more addresses than
# http-conn-max, so no address ever holds a second one and the reserve
# (for addresses that hold none) is taken too.
start_wide() {
	local p

	for ((p = 0; p < wide_procs; p++)); do
		spawn "wide.$p" hold 127.0.0.1 "$ports" "127.16.$p" 250 1 0 1 "$tmp/hold.$p.status"
	done
	wait_open $((2 * (conn_max - conn_reserve)))
}
start_storm() {
	local p

	for ((p = 0; p < procs; p++)); do spawn "storm.$p" storm 127.0.0.1 "$ports" "127.13.$p" 250; done
}
start_garbage() {
	local p

	for ((p = 0; p < procs; p++)); do spawn "garbage.$p" garbage 127.0.0.1 "$ports" "127.14.$p" 250; done
}
start_agent() {
	local p

	for ((p = 0; p < procs; p++)); do spawn "agent.$p" agent 127.0.0.1 "$agent_port" "127.15.$p" 250; done
}

# jsum FIELD FILES...: the sum of a (dotted) field over attackers' JSON.
jsum() {
	local f=$1

	shift
	cat "$@" | python3 -c 'import json, sys
t = 0
for l in sys.stdin:
	if l.strip():
		v = json.loads(l)
		for k in sys.argv[1].split("."):
			v = v.get(k, 0) if isinstance(v, dict) else 0
		t += v if isinstance(v, (int, float)) else sum(v.values())
print(t)' "$f"
}

# need WHAT VALUE: the attack must have happened; VALUE must be > 0.
need() {
	awk -v v="$2" 'BEGIN { exit !(v > 0) }' ||
		failed+="${failed:+; }$1 did not move: the attack was not mounted or not counted"
}

check_slowloris() {
	local cut

	cut=$(refused header_timeout)

	counters="hvd open fds $(metric "$tmp/m1" process_open_fds) (quiet $base_fds), held at most $(python3 -c 'import json, sys; print(max(json.load(open(sys.argv[1]))["max_held"].values()))' "$tmp/att.slow.0") per port, opened $(jsum opened "$tmp"/att.slow.*), header_timeout +$cut, per_ip +$(refused per_ip), reserve +$(refused reserve)"
	need "the attackers' connections" "$(jsum opened "$tmp"/att.slow.*)"
	need "hvd_http_refused_total{reason=\"header_timeout\"}" "$cut"
}
check_idle() {
	local per_ip reserve cut

	per_ip=$(refused per_ip) reserve=$(refused reserve) cut=$(refused header_timeout)

	counters="hvd open fds $(metric "$tmp/m1" process_open_fds) (quiet $base_fds), held at most $(python3 -c 'import json, sys; print(max(json.load(open(sys.argv[1]))["max_held"].values()))' "$tmp/att.idle.0") per port, opened $(jsum opened "$tmp"/att.idle.*), per_ip +$per_ip, reserve +$reserve, header_timeout +$cut"
	need "hvd_http_refused_total{reason=\"per_ip\"}" "$per_ip"
	need "hvd_http_refused_total{reason=\"reserve\"}" "$reserve"
	need "hvd_http_refused_total{reason=\"header_timeout\"}" "$cut"
}
check_wide() {
	local held=0 p

	for p in "$tmp"/att.wide.*; do
		held=$((held + $(python3 -c 'import json, sys; print(max(json.load(open(sys.argv[1]))["max_held"].values()))' "$p")))
	done
	counters="$((wide_procs * 250)) addresses, hvd open fds $(metric "$tmp/m1" process_open_fds) (quiet $base_fds), connected at most $held per port (summed over processes; some wait in the listen backlog), opened $(jsum opened "$tmp"/att.wide.*), reserve +$(refused reserve), header_timeout +$(refused header_timeout)"
	need "hvd_http_refused_total{reason=\"header_timeout\"}" "$(refused header_timeout)"
}
check_storm() {
	local n

	n=$(jsum connects "$tmp"/att.storm.*)

	counters="connects $n ($(awk -v n="$n" -v w="$attack_wall" 'BEGIN { printf "%.0f", n / w }')/s), errors $(jsum errors "$tmp"/att.storm.*)"
	need "the attackers' connects" "$n"
}
check_garbage() {
	local r

	counters="uri_too_long +$(refused uri_too_long), headers_too_large +$(refused headers_too_large), bad_request +$(refused bad_request); answers: $(cat "$tmp"/att.garbage.* | python3 -c 'import json, sys
t = {}
for l in sys.stdin:
	if l.strip():
		for k, codes in json.loads(l).items():
			for c, n in codes.items():
				t.setdefault(k, {}).setdefault(c, 0)
				t[k][c] += n
print(" ".join("%s %s" % (k, ",".join("%s:%d" % cn for cn in sorted(v.items()))) for k, v in sorted(t.items())))')"
	for r in uri_too_long headers_too_large bad_request; do
		need "hvd_http_refused_total{reason=\"$r\"}" "$(refused "$r")"
	done
	# Wrong answers: the expected refusal never came, or anything was 2xx.
	cat "$tmp"/att.garbage.* | python3 -c 'import json, sys
want = {"uri_too_long": "414", "headers_too_large": "431", "nul": "400", "no_host": "400"}
t = {}
for l in sys.stdin:
	if l.strip():
		for k, codes in json.loads(l).items():
			for c, n in codes.items():
				t.setdefault(k, {}).setdefault(c, 0)
				t[k][c] += n
bad = [k for k, c in want.items() if t.get(k, {}).get(c, 0) == 0]
bad += ["%s answered %s" % (k, c) for k, v in t.items() for c in v if c.startswith("2")]
sys.exit(", ".join(bad) or None)' 2>"$tmp/garbage.bad" ||
		failed+="${failed:+; }hvd answered hostile requests wrongly: $(<"$tmp/garbage.bad")"
}
check_agent() {
	local r

	counters="sent $(jsum closed_by_hvd "$tmp"/att.agent.*) ($(awk -v n="$(jsum closed_by_hvd "$tmp"/att.agent.*)" -v w="$attack_wall" 'BEGIN { printf "%.0f", n / w }')/s), not closed by hvd within 5 s $(jsum timeout "$tmp"/att.agent.*)"
	for r in handshake garbage version oversize; do
		counters+=", $r +$(agent_refused "$r")"
		need "hvd_agent_refused_total{reason=\"$r\"}" "$(agent_refused "$r")"
	done
}

# --- measuring --------------------------------------------------------------------

hz=$(getconf CLK_TCK)
declare -A hz_p50 hz_p99 f_p50 f_p99 broke=() short=()
phases=()
broken=""

# pct P FILE: the nearest-rank percentile of the "ms" list in a probe's JSON.
pct() {
	python3 -c 'import json, math, sys
ms = sorted(json.load(open(sys.argv[2]))["ms"])
print("%.2f" % ms[max(0, math.ceil(float(sys.argv[1]) / 100 * len(ms)) - 1)] if ms else "nan")' "$1" "$2"
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "nan") printf "%.2f", a / b; else printf "n/a" }'
}

# ticks PID: utime + stime of a process so far, from /proc.
ticks() {
	{ sed 's/.*) //' "/proc/$1/stat" 2>/dev/null || true; } | awk '{ t = $12 + $13 } END { print t + 0 }'
}

# run_phase NAME: starts attack NAME (none for quiet), measures, stops it.
run_phase() {
	local name=$1 att=$1 a0 cpu0 cpu1 acpu=0 p k errs got line

	[[ $name != quiet* ]] || att=quiet
	rm -f "$tmp"/att.* "$tmp"/err.* "$tmp"/hold.*
	settle_fds
	metrics >"$tmp/m0"
	a0=$(date +%s.%N)
	[[ $att == quiet ]] || { "start_$att"; sleep "$settle"; }
	cpu0=$(metric "$tmp/m0" process_cpu_seconds_total)
	python3 "$py" probe-healthz 127.0.0.1 "$api_port" "$healthz_n" "$healthz_gap" "$timeout" "$budget" \
	    >"$tmp/$name.healthz" || die "$name: the healthz probe crashed"
	python3 "$py" probe-file 127.0.0.1 "$boot_port" "$file_path" "$file_n" "$size" "$timeout" "$budget" \
	    >"$tmp/$name.file" || die "$name: the file probe crashed"
	# Holders are cut at the header deadline; make sure one cut is in.
	if [[ $att == slowloris || $att == idle || $att == wide ]]; then
		while awk -v a="$a0" -v b="$(date +%s.%N)" -v t="$header_timeout" \
		    'BEGIN { exit !(b - a < t + 2.5) }'; do sleep 0.5; done
	fi
	for p in "${attack_pids[@]}"; do acpu=$((acpu + $(ticks "$p"))); done
	metrics >"$tmp/m1"
	attack_wall=$(awk -v a="$a0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
	stop_attack
	alive "after $name"
	cpu1=$(metric "$tmp/m1" process_cpu_seconds_total)

	for k in healthz file; do
		errs=$(python3 -c 'import json, sys; e = json.load(open(sys.argv[1]))["errors"]; print("%d: %s" % (len(e), "; ".join(e[:3])) if e else "")' "$tmp/$name.$k")
		[[ -z $errs ]] || { warn "$name: the normal client's $k requests failed $errs"; broke[$name]+="$k "; }
		[[ -z $errs || $broken == *" $name"* ]] || broken+=" $name"
	done
	got=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["sha256"])' "$tmp/$name.file")
	[[ -n $got ]] || die "$name: the checking download of $file_path failed"
	[[ $got == "$sum" ]] || die "$name: hvd served different bytes for $file_path (sha256 $got, file $sum)"
	for k in healthz file; do
		short[$name]+=$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print("" if d["done"] >= d["planned"] else " %s: only %d of %d in %s s;" % (sys.argv[2], d["done"], d["planned"], sys.argv[3]))' \
		    "$tmp/$name.$k" "$k" "$budget")
	done
	hz_p50[$name]=$(pct 50 "$tmp/$name.healthz") hz_p99[$name]=$(pct 99 "$tmp/$name.healthz")
	f_p50[$name]=$(pct 50 "$tmp/$name.file") f_p99[$name]=$(pct 99 "$tmp/$name.file")
	phases+=("$name")

	counters="" failed=""
	[[ $att == quiet ]] || "check_$att"
	line=$(printf '%-10s healthz p50 %s ms p99 %s ms, file p50 %s ms p99 %s ms; hvd CPU %s cores' \
	    "$name" "${hz_p50[$name]}" "${hz_p99[$name]}" "${f_p50[$name]}" "${f_p99[$name]}" \
	    "$(awk -v c="$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { print b - a }')" -v w="$attack_wall" 'BEGIN { printf "%.2f", c / w }')")
	[[ $att == quiet ]] || line+=$(awk -v t="$acpu" -v hz="$hz" -v w="$attack_wall" \
	    'BEGIN { printf ", attackers CPU %.2f cores", t / hz / w }')
	[[ -z ${short[$name]} ]] || line+=";${short[$name]%;}"
	note "$line"
	[[ -z $counters ]] || note "$(printf '%-10s' "$name") counters: $counters"
	[[ -z $failed ]] || die "$name: $failed"
}

note "normal client: $healthz_n x GET /healthz (fresh connection, ${healthz_gap} ms apart) on :$api_port, then $file_n x GET $file_path ($size bytes) on :$boot_port; attackers: $procs processes where several, nice $nice_level, $(nproc) CPUs"
base_fds=$(metrics | awk '$1 == "process_open_fds" { print $2 }')
# A quiet run before each attack and after the last: the baseline is their
# median, and their spread shows how much this machine drifts.
run_phase quiet.1
nq=1
for a in $attacks; do
	run_phase "$a"
	nq=$((nq + 1))
	run_phase "quiet.$nq"
done

median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

quiet=() attacked=()
for name in "${phases[@]}"; do
	if [[ $name == quiet* ]]; then quiet+=("$name"); else attacked+=("$name"); fi
done
list() {
	local -n arr=$1
	local n out=()

	for n in "${quiet[@]}"; do out+=("${arr[$n]}"); done
	echo "${out[@]}"
}
# shellcheck disable=SC2046 # list prints one word per quiet run
{
	q50=$(median $(list hz_p50)) q99=$(median $(list hz_p99)) qf=$(median $(list f_p99))
}

echo
printf 'hostile bench: %-10s healthz p50 %s ms p99 %s ms (1.00x quiet)  file p99 %s ms (1.00x quiet)\n' \
    quiet "$q50" "$q99" "$qf"
for name in "${attacked[@]}"; do
	printf 'hostile bench: %-10s healthz p50 %s ms p99 %s ms (%sx quiet)  file p99 %s ms (%sx quiet)\n' \
	    "$name" "${hz_p50[$name]}" "${hz_p99[$name]}" "$(ratio "${hz_p99[$name]}" "$q99")" \
	    "${f_p99[$name]}" "$(ratio "${f_p99[$name]}" "$qf")"
done
printf 'hostile bench: quiet = the median of %d quiet runs (one before each attack, one after the last); their p99s: healthz %s ms, file %s ms\n' \
    "${#quiet[@]}" "$(list hz_p99)" "$(list f_p99)"
for name in "${attacked[@]}"; do
	hr=$(ratio "${hz_p99[$name]}" "$q99") fr=$(ratio "${f_p99[$name]}" "$qf")
	if [[ -n ${broke[$name]:-} ]]; then
		verdict=${broke[$name]% }
		verdict="BROKEN: the normal client's ${verdict// / and } requests failed"
	elif awk -v a="$hr" -v b="$fr" 'BEGIN { exit !(a != "n/a" && b != "n/a" && a <= 2 && b <= 2) }'; then
		verdict="within the 2x goal"
	else
		verdict="NOT within the 2x goal"
	fi
	printf 'hostile bench: %-10s %s (healthz p99 %sx, file p99 %sx)\n' "$name:" "$verdict" "$hr" "$fr"
done
[[ -z $broken ]] || die "the normal client was not served during:$broken"
