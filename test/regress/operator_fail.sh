#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Failures that explain themselves and one time format (issue 20), against
# the real hvd over loopback with one emulated agent (test/tools/agent_emu):
#  (a) a TCP request without a token, with one hvd does not know, or with
#      a role too small: hvctl exits 4 and says to set HVCTL_TOKEN (the
#      socket needs none);
#  (b) a 403 names the path as it was sent (/api/v1/vms/web1/stop, not
#      /api/v1/vms/{}/stop) and the role needed; a path with control and
#      non-ASCII bytes comes back escaped (\xNN), a long one cut with
#      "...", the body valid JSON either way;
#  (c) every time in GET hosts, images, tokens, events, networks, status
#      and a host's telemetry is RFC 3339 in UTC or null, never a number;
#  (d) hvctl top lives through an hvd restart: one line says hvd is
#      unreachable and that it retries (once, however many retries), and
#      after hvd is back it shows what only the new hvd has (a host added
#      after the restart); SIGINT ends it (exit 0), also while it waits
#      for hvd; a one-shot command (host list, top --once) and the POST
#      of a following command (host drain) fail at once when hvd is down;
#  (e) operation ids never repeat across an hvd restart: hvctl vm create
#      following its operation through a restart says hvd no longer knows
#      it (exit 1) instead of following a newer one; the old id is 404 and
#      the next operation's id is larger.
# Its own network namespace: a fixed agent port, so the emulated agent
# finds hvd again after a restart.
if [ -z "${HV_IN_NETNS:-}" ]; then
	exec unshare --net env HV_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/emu_lib.sh"

mkdir -p "$T/boot"
for f in xen vmlinuz initramfs; do head -c 4096 /dev/urandom > "$T/boot/$f"; done
write_conf "boot-root $T/boot" "boot-http-listen 127.0.0.1:0" \
	"boot-server 127.0.0.1" "agent-listen 127.0.0.1:7700" "agent-heartbeat-ms 500" \
	"telemetry-step 1"
start_hvd
B="http://127.0.0.1:$(curl -s --unix-socket "$T/hvd.sock" http://localhost/api/v1/status |
	sed -n 's/.*"boot_http":"127.0.0.1:\([0-9]*\)".*/\1/p')"

# run CMD...: hvctl's exit status and stderr, one line each joined by |.
run() {
	local rc=0
	"$HVCTL" "$@" >"$T/stdout" 2>"$T/stderr" || rc=$?
	echo "$rc $(tr '\n' '|' < "$T/stderr")"
}
# over_tcp TOKEN CMD...: run over --url with HVCTL_TOKEN set to TOKEN, or
# unset if TOKEN is empty.
over_tcp() {
	local tok=$1; shift
	if [ -n "$tok" ]; then
		HVCTL_TOKEN=$tok run --url "$URL" "$@"
	else
		(unset HVCTL_TOKEN; run --url "$URL" "$@")
	fi
}
host_field() { sock GET "/api/v1/hosts/$1" | cut -d' ' -f2- | field "d.get('$2')"; }
host_up() { [ "$(host_field "$1" state)" = up ]; }
has_history() { sock GET "/api/v1/hosts/$1/telemetry" | cut -d' ' -f2- | field "len(d['history']) > 0" | grep -q True; }

READ=$("$HVCTL" token create --role read --name ro 2>/dev/null)
"$HVCTL" token create --role admin --name unused >/dev/null 2>&1
expect "a read token" "$READ" "hvt_*"

# --- (a) the token hint
expect_eq "(a) the socket needs no token" "$(env -u HVCTL_TOKEN "$HVCTL" host list >/dev/null; echo $?)" 0
expect_eq "(a) TCP without a token: 401, and what to set" "$(over_tcp '' host list)" \
	"4 hvctl: host list: missing or invalid bearer token (HTTP 401)|hvctl: no token was sent: set HVCTL_TOKEN to an API token (hvctl token create, on hvd's host)|"
expect_eq "(a) TCP with an empty HVCTL_TOKEN: the same" "$(HVCTL_TOKEN='' run --url "$URL" host list)" \
	"4 hvctl: host list: missing or invalid bearer token (HTTP 401)|hvctl: no token was sent: set HVCTL_TOKEN to an API token (hvctl token create, on hvd's host)|"
BOGUS=hvt_0123456789abcdef_$(printf '%064d' 0)
expect_eq "(a) TCP with a token hvd does not know: 401, and what to set" "$(over_tcp "$BOGUS" host list)" \
	"4 hvctl: host list: missing or invalid bearer token (HTTP 401)|hvctl: hvd did not accept the token in HVCTL_TOKEN (revoked, or mistyped?): set HVCTL_TOKEN to a valid one (hvctl token list, on hvd's host)|"
expect_eq "(a) TCP with a read token, a change: 403, and what to set" "$(over_tcp "$READ" net create n1 --vni 7)" \
	"4 hvctl: net create: role 'read' may not POST /api/v1/networks (it needs role 'admin') (HTTP 403)|hvctl: set HVCTL_TOKEN to a token whose role may do this (hvctl token create --role admin, on hvd's host)|"
expect_eq "(a) TCP with the read token, a read: works" "$(over_tcp "$READ" host list)" "0 "

# --- (b) a 403 names the real path
expect_eq "(b) 403: the path sent, not the route's template" \
	"$(tcp "$READ" POST /api/v1/vms/web1/stop)" \
	"403 {\"error\":\"role 'read' may not POST /api/v1/vms/web1/stop (it needs role 'admin')\"}"
expect_eq "(b) ... through hvctl" "$(over_tcp "$READ" host drain h7)" \
	"4 hvctl: host drain: role 'read' may not POST /api/v1/hosts/h7/drain (it needs role 'admin') (HTTP 403)|hvctl: set HVCTL_TOKEN to a token whose role may do this (hvctl token create --role admin, on hvd's host)|"
expect_eq "(b) control and non-ASCII bytes in the path come back escaped" \
	"$(tcp "$READ" POST '/api/v1/vms/a%1b%5b31mb%ffc%22/stop')" \
	"403 {\"error\":\"role 'read' may not POST /api/v1/vms/a\\\\x1b[31mb\\\\xffc\\\"/stop (it needs role 'admin')\"}"
long=$(printf '%%ff%.0s' $(seq 1 64))
r=$(tcp "$READ" POST "/api/v1/vms/$long/stop")
expect "(b) a long path: 403" "$r" "403 *"
expect_eq "(b) ... valid JSON, printable ASCII, cut with '...', bounded" \
	"$(cut -d' ' -f2- <<<"$r" | field "(d['error'].startswith('role \'read\' may not POST /api/v1/vms/\\\\xff'), d['error'].endswith('\\\\xff... (it needs role \'admin\')'), all(0x20 <= ord(c) < 0x7f for c in d['error']), len(d['error']) < 256)")" \
	"(True, True, True, True)"

# --- (c) one time format: RFC 3339 in UTC, or null
head -c 10000 /dev/urandom > "$T/img"
"$HVCTL" image add img1 "$T/img" >/dev/null
"$HVCTL" net create prod --vni 100 >/dev/null
"$HVCTL" host add h1 --out "$T/h1" >/dev/null
emu h1 127.0.0.1
expect "(c) h1 is up with telemetry history" "$(wait_for 15 host_up h1) $(wait_for 10 has_history h1)" "[0-9]* [0-9]*"
expect "(c) m1 boots: discovered" \
	"$(get "$B/boot/ipxe?mac=52-54-00-cc-00-01&uuid=3F2C64B4-2D57-4F0D-9A57-2B1B7C3D4E09&buildarch=x86_64")" 200
# times PATH: each time field in GET PATH's JSON (a key ending in _at, or
# time, at, t, mtime, started, ended, at any depth) with the kinds of its
# values: rfc3339, null, or BAD and the value.
times() {
	sock GET "$1" | cut -d' ' -f2- | python3 -c 'import json, re, sys
rfc = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")
seen = {}
def walk(v):
    if isinstance(v, dict):
        for k, x in v.items():
            if k.endswith("_at") or k in ("time", "at", "t", "mtime", "started", "ended"):
                kind = "null" if x is None else "rfc3339" if isinstance(x, str) and rfc.match(x) else "BAD " + repr(x)
                seen.setdefault(k, set()).add(kind)
            walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)
walk(json.load(sys.stdin))
print(" ".join(k + "=" + ",".join(sorted(seen[k])) for k in sorted(seen)))'
}
expect_eq "(c) hosts: boot, session and telemetry times" "$(times /api/v1/hosts)" \
	"boot_at=null,rfc3339 last_seen_at=null,rfc3339 telemetry_at=rfc3339"
expect_eq "(c) one host" "$(times /api/v1/hosts/h1)" "boot_at=null last_seen_at=rfc3339 telemetry_at=rfc3339"
expect_eq "(c) a host's telemetry and its history" "$(times /api/v1/hosts/h1/telemetry)" "at=rfc3339 t=rfc3339"
expect_eq "(c) images" "$(times /api/v1/images)" "created_at=rfc3339"
expect_eq "(c) tokens: the read token used, the other never" "$(times /api/v1/tokens)" \
	"created_at=rfc3339 last_used_at=null,rfc3339"
expect_eq "(c) events" "$(times /api/v1/events)" "time=rfc3339"
expect_eq "(c) networks" "$(times /api/v1/networks)" "created_at=rfc3339 updated_at=rfc3339"
expect_eq "(c) status: the boot files' mtime" "$(times /api/v1/status)" "mtime=rfc3339"
expect_eq "(c) the times are now, in UTC" "$(sock GET /api/v1/events | python3 -c 'import calendar, re, sys, time
ts = re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sys.stdin.read())
print(len(ts) > 0 and all(abs(calendar.timegm(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ")) - time.time()) < 300 for t in ts))')" True
expect "(c) hvctl host show reads them" "$("$HVCTL" host show h1)" \
	"*session: *connected since [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9:]*Z*telemetry at [0-9-]*T[0-9:]*Z*"

# --- (d) hvctl top through an hvd restart
"$HVCTL" top --interval 1 >"$T/top.out" 2>"$T/top.err" &
TOP=$!
track_pid "$TOP"
frames() { grep -c '^hvctl top ' "$T/top.out" || true; }
has_frames() { [ "$(frames)" -ge "$1" ]; }
unreachable() { grep -c '^hvctl: hvd is unreachable at ' "$T/top.err" || true; }
has_unreachable() { [ "$(unreachable)" -ge "$1" ]; }
expect "(d) top draws frames" "$(wait_for 10 has_frames 2)" "[0-9]*"
expect "(d) ... each stamped with the time in RFC 3339 UTC" "$(grep '^hvctl top ' "$T/top.out" | tail -n 1)" \
	"hvctl top  [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z  2 hosts  (every 1s, Ctrl-C quits)"
stop_hvd
expect "(d) hvd stopped: top says so" "$(wait_for 10 has_unreachable 1)" "[0-9]*"
expect "(d) ... in one line: unreachable, why, retrying" "$(cat "$T/top.err")" \
	"hvctl: hvd is unreachable at $T/hvd.sock ([A-Z]*); retrying until it is back (Ctrl-C quits)"
t0=$(date +%s.%N)
r=$(run host list)
t1=$(date +%s.%N)
expect "(d) a one-shot command fails at once: exit 3, not running" "$r" "3 hvctl: hvd is not running (cannot connect to $T/hvd.sock: *"
expect_eq "(d) ... without waiting" "$(echo "$t1 - $t0 < 2" | bc)" 1
t0=$(date +%s.%N)
r=$(run top --once)
t1=$(date +%s.%N)
expect_eq "(d) top --once too, at once" "${r%% *} $(echo "$t1 - $t0 < 2" | bc)" "3 1"
r=$(run host drain h1)
expect_eq "(d) host drain's POST is not retried: exit 3, one line" \
	"$(cut -d'(' -f1 <<<"$r") $(tr -cd '|' <<<"$r")" "3 hvctl: hvd is not running  |"
sleep 3	# top retries in the meantime: 0.5, 1 and 2 s apart
expect_eq "(d) top is still running" "$(kill -0 "$TOP" 2>/dev/null && echo yes)" yes
start_hvd
"$HVCTL" host add h9 --pubkey "$(printf '%064d' 9)" >/dev/null
shows_h9() { tail -n 6 "$T/top.out" | grep -q '^h9 '; }
expect "(d) hvd is back: top shows what only the new hvd has (h9)" "$(wait_for 15 shows_h9)" "[0-9]*"
expect "(d) ... in a fresh frame" "$(grep '^hvctl top ' "$T/top.out" | tail -n 1)" "hvctl top  *  3 hosts  *"
expect_eq "(d) one line for the whole outage, however many retries" "$(unreachable)" 1
kill -INT "$TOP"
ended() { ! kill -0 "$TOP" 2>/dev/null; }
expect "(d) SIGINT ends top" "$(wait_for 5 ended)" "[0-9]*"
rc=0; wait "$TOP" || rc=$?
expect_eq "(d) ... with exit 0" "$rc" 0

# SIGINT while top waits for hvd.
"$HVCTL" top --interval 1 >"$T/top.out" 2>"$T/top.err" &
TOP=$!
track_pid "$TOP"
expect "(d) a second top draws" "$(wait_for 10 has_frames 1)" "[0-9]*"
stop_hvd
expect "(d) hvd stopped again: top waits" "$(wait_for 10 has_unreachable 1)" "[0-9]*"
sleep 1
kill -INT "$TOP"
expect "(d) SIGINT ends top while it waits for hvd" "$(wait_for 3 ended)" "[0-9]*"
rc=0; wait "$TOP" || rc=$?
expect_eq "(d) ... with exit 0, and nothing more said" "$rc $(unreachable) $(wc -l < "$T/top.err")" "0 1 1"
start_hvd

# --- (e) operation ids across a restart
has_xen() { sock GET /api/v1/hosts/h1/telemetry | grep -q '"xen_version":"4.17"'; }
expect "(e) h1 is back, with Xen" "$(wait_for 20 has_xen)" "[0-9]*"
head -c 4096 /dev/urandom > "$T/vmlinuz"
"$HVCTL" image add kern1 "$T/vmlinuz" --kind kernel >/dev/null
r=$(sock POST /api/v1/vms '{"name":"web1","vcpus":1,"memory_mib":64,"kernel":"kern1"}')
expect "(e) web1: 202 with an operation (the agent never says running)" "$r" '202 {"operation":*'
OP1=$(jget "${r#* }" "d['operation']")
"$HVCTL" vm create web2 --vcpus 1 --memory 64 --kernel kern1 >"$T/create.out" 2>"$T/create.err" &
CR=$!
track_pid "$CR"
following() { grep -q '^create web2: operation ' "$T/create.out"; }
expect "(e) hvctl vm create web2 follows its operation" "$(wait_for 10 following)" "[0-9]*"
OP2=$(sed -n 's/^create web2: operation \([0-9]*\)$/\1/p' "$T/create.out")
stop_hvd
start_hvd
rc=0; wait "$CR" || rc=$?
expect "(e) ... after the restart: hvd no longer knows it, exit 1" "$rc $(grep -v unreachable "$T/create.err")" \
	"1 hvctl: hvd no longer knows operation $OP2 (it restarted since); where it got: hvctl vm show web2"
expect "(e) the old id is 404 now" "$(sock GET "/api/v1/operations/$OP1")" "404 *"
expect "(e) h1 is back again" "$(wait_for 20 has_xen)" "[0-9]*"
r=$(sock POST /api/v1/vms '{"name":"web3","vcpus":1,"memory_mib":64,"kernel":"kern1"}')
OP3=$(jget "${r#* }" "d['operation']")
expect "(e) an operation's times are RFC 3339 too (ended: null while pending)" \
	"$(sock GET "/api/v1/operations/$OP3" | cut -d' ' -f2- | field "(d['started'], d['ended'])")" \
	"('[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z', None)"
expect_eq "(e) the next operation's id is larger than any before the restart" \
	"$([ -n "$OP3" ] && [ "$OP3" -gt "$OP2" ] && [ "$OP2" -gt "$OP1" ] && echo yes || echo "no: $OP1 $OP2 $OP3")" yes
finish
