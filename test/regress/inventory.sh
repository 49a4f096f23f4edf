#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The inventory an operator expects (issue 20, point 6), against the real
# hvd over loopback, with one emulated agent (test/tools/agent_emu):
#  (a) net show names every member, also those without an underlay address
#      yet, each with hvd's reason: h2 enrolled by hand and never
#      connected; m1, a machine adopted from 127.0.0.1, which h1 already
#      has as its underlay address;
#  (b) host show: a "key: value" block (identity, state, draining,
#      underlay, boot, session and telemetry, networks, labels, mounts,
#      facts), --json the API's object; host list and show print times as
#      RFC 3339 in UTC whatever TZ says, and so does token list;
#  (c) host delete: 409 naming the state of a host that is not retired
#      (up, adopted), 409 listing the VM that still names a retired host,
#      404 for an unknown one; once the VM is gone, 204: the host leaves
#      the list, a host.deleted event is written, its fingerprint stays in
#      retired_fingerprints, and a deleted machine that boots again is
#      refused at stage 2 (403) instead of being discovered afresh; a host
#      that later gets the deleted one's id or name starts afresh;
#  (d) boot import from a Debian-like /boot with three kernels takes the
#      newest by version (6.1.0-57, not 6.1.0-10 nor 6.1.0-9) and the
#      initramfs of that kernel, and says which it took and why.
. "$(dirname "$0")/lib.sh"
: "${AGENT_EMU:?AGENT_EMU must point at the agent_emu binary}"

mkdir -p "$T/boot"
for f in xen vmlinuz initramfs; do head -c 4096 /dev/urandom > "$T/boot/$f"; done
write_conf "boot-root $T/boot" "boot-http-listen 127.0.0.1:0" \
	"boot-server 127.0.0.1" "agent-listen 127.0.0.1:0" "agent-heartbeat-ms 500"
start_hvd
status=$(curl -s --unix-socket "$T/hvd.sock" http://localhost/api/v1/status)
BP=$(echo "$status" | sed -n 's/.*"boot_http":"127.0.0.1:\([0-9]*\)".*/\1/p')
B="http://127.0.0.1:$BP"

MAC1=52:54:00:bb:00:01 UUID1=3f2c64b4-2d57-4f0d-9a57-2b1b7c3d4e01
stage2() { get "$B/boot/ipxe?mac=${1//:/-}&uuid=${2^^}&serial=S1&product=Lab%20PC&buildarch=x86_64"; }
host_field() { sock GET "/api/v1/hosts/$1" | cut -d' ' -f2- | field "d.get('$2')"; }
host_up() { [ "$(host_field "$1" state)" = up ]; }
has_xen() { sock GET "/api/v1/hosts/$1/telemetry" | grep -q '"xen_version":"4.17"'; }
vm_field() { sock GET "/api/v1/vms/$1" | cut -d' ' -f2- | field "d.get('$2')"; }
# err CMD...: hvctl's exit status and stderr, for a command that fails.
err() {
	local rc=0
	"$HVCTL" "$@" >"$T/stdout" 2>"$T/stderr" || rc=$?
	echo "$rc $(cat "$T/stderr")"
}
RFC3339='[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]Z'
# near_now TEXT: the RFC 3339 times in TEXT are UTC within 5 minutes of now.
near_now() {
	python3 -c 'import re, sys, time, calendar
ts = re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sys.argv[1])
print(len(ts) > 0 and all(abs(calendar.timegm(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ")) - time.time()) < 300 for t in ts))' "$1"
}

head -c 100000 /dev/urandom > "$T/vmlinuz-guest"
"$HVCTL" image add vmlinuz-guest "$T/vmlinuz-guest" >/dev/null
"$HVCTL" net create prod --vni 100 >/dev/null
"$HVCTL" host add h1 --out "$T/h1" >/dev/null
"$HVCTL" host add h2 --pubkey "$(printf '%064d' 2)" >/dev/null
mkfifo "$T/h1.ctl"
touch "$T/h1.log"
"$AGENT_EMU" "$T/h1/agent.conf" 127.0.0.1 "$T/h1.log" "$T/h1.ctl" 2>>"$T/emu.err" &
track_pid $!
expect "h1 is up with Xen" "$(wait_for 15 host_up h1) $(wait_for 10 has_xen h1)" "[0-9]* [0-9]*"
expect_eq "h1's underlay is its session's address" "$(host_field h1 underlay_ip)" 127.0.0.1

# m1 boots from the address h1 already holds as its underlay.
expect "m1 boots: discovery" "$(stage2 $MAC1 $UUID1)" 200
FP1=$(hosts_json | field '[h["fingerprint"] for h in d["hosts"] if h["boot_mac"] == "'$MAC1'"][0]')
"$HVCTL" host adopt $MAC1 --name m1 --label rack=r1 --label zone=a \
	--mount LABEL=scratch:/var/lib/hv:ext4 >/dev/null
expect_eq "m1 adopted without an underlay address (127.0.0.1 is h1's)" "$(host_field m1 underlay_ip)" None

# --- (a) net show: members without an underlay address, and why
expect_eq "(a) API: prod's members, m1 and h2 with no VTEP" \
	"$("$HVCTL" --json net show prod | field 'sorted((m["host"], m["vtep"], m["sync"]["state"]) for m in d["members"])')" \
	"[('h1', '127.0.0.1', 'synced'), ('h2', None, 'none'), ('m1', None, 'none')]"
expect_eq "(a) API: h2's reason" \
	"$("$HVCTL" --json net show prod | field '[m["why"] for m in d["members"] if m["host"] == "h2"][0]')" \
	"no underlay address yet: the host never booted from hvd, so hvd takes the address its agent's first session comes from, and its agent has not connected"
out=$("$HVCTL" net show prod)
expect "(a) net show: h2 in the table, VTEP -" "$(echo "$out" | grep -E '^h2 +- +adopted')" "h2 *"
expect "(a) net show: m1 in the table, VTEP -" "$(echo "$out" | grep -E '^m1 +- +adopted')" "m1 *"
expect_eq "(a) net show: m1's reason under the table" "$(echo "$out" | grep '^m1: ')" \
	"m1: no underlay address: 127.0.0.1, the address it booted from, is already the underlay address of host h1 (each host needs its own)"
expect "(a) net show: h2's reason under the table" "$(echo "$out" | grep '^h2: ')" \
	"h2: no underlay address yet: *its agent has not connected"
expect "(a) net show: h1 still ends its line with its sync state" "$(echo "$out" | awk '$1 == "h1" {print $NF}')" synced
"$HVCTL" net create ops --vni 200 --member h1 >/dev/null
expect_eq "(a) a members-only network lists only its members" \
	"$("$HVCTL" --json net show ops | field 'sorted(m["host"] for m in d["members"])')" "['h1']"

# --- (b) host show and the time format
out=$(TZ=America/New_York "$HVCTL" host show h1)
for line in "name: *h1" "state: *up" "draining: *no" "fingerprint: *manual:h1" \
	"underlay: *127.0.0.1" "boot: *never booted from hvd" \
	"session: *connected since $RFC3339" \
	"live: *up, cpu 1.5%, memory 2.4 GiB of 8.0 GiB, load 0.10, telemetry at $RFC3339" \
	"networks: *prod (VNI 100, all hosts), ops (VNI 200)" "labels: *none" \
	"ssh keys: *none" "mounts: *none" "facts: *8 CPUs, 0 NICs, 0 disks"; do
	expect "(b) host show h1: '$line'" "$(echo "$out" | grep -c "^${line}\$")" 1
done
expect_eq "(b) host show h1: the times are UTC, now (TZ set elsewhere)" "$(near_now "$out")" True
out=$("$HVCTL" host show m1)
for line in "name: *m1" "state: *adopted" "fingerprint: *$FP1" "boot mac: *$MAC1" \
	"uuid: *$UUID1" "serial: *S1" "product: *Lab PC" "underlay: *none yet" \
	"boot: *$RFC3339 from 127.0.0.1, overlay not fetched yet" "session: *never connected" \
	"live: *not up, no telemetry" "networks: *prod (VNI 100, all hosts)" \
	"labels: *rack=r1, zone=a" "mounts: *LABEL=scratch on /var/lib/hv (ext4.*)" \
	"facts: *none reported (no agent has connected)"; do
	expect "(b) host show m1: '$line'" "$(echo "$out" | grep -c "^${line}\$")" 1
done
expect_eq "(b) host show --json: valid JSON, the raw object" \
	"$("$HVCTL" host show m1 --json | field '(d["name"], d["state"], d["labels"], type(d["boot_at"]).__name__)')" \
	"('m1', 'adopted', {'rack': 'r1', 'zone': 'a'}, 'str')"
expect_eq "(b) hvctl --json host show: the same" "$("$HVCTL" --json host show m1 | field 'd["fingerprint"]')" "$FP1"
list=$(TZ=Asia/Tokyo "$HVCTL" host list)
expect "(b) host list: a LAST SEEN column before SESSION" "$(echo "$list" | head -1)" "NAME *STATE *FINGERPRINT *BOOT MAC *UNDERLAY *CPU *MEMORY *LOAD *LAST SEEN *SESSION"
expect "(b) host list: h1 last seen, RFC 3339, then connected" "$(echo "$list" | awk '$1 == "h1" {print $(NF-1), $NF}')" "$RFC3339 connected"
expect "(b) host list: m1 last seen when it booted" "$(echo "$list" | awk '$1 == "m1" {print $(NF-1)}')" "$RFC3339"
expect "(b) host list: h2 never seen" "$(echo "$list" | awk '$1 == "h2" {print $(NF-1), $NF}')" "- -"
expect_eq "(b) host list: the times are UTC, now (TZ set elsewhere)" "$(near_now "$list")" True
"$HVCTL" token create --role read --name ro >/dev/null
tokens=$(TZ=Asia/Tokyo "$HVCTL" token list)
expect "(b) token list: created at, RFC 3339" "$(echo "$tokens" | grep -c " ro .*$RFC3339" || true)" 1
expect_eq "(b) token list: UTC, now" "$(near_now "$tokens")" True

# --- (c) host delete
expect_eq "(c) an up host: 409 naming its state" "$(err host delete h1)" \
	"5 hvctl: host delete: host h1 is up; retire it first (hvctl host retire h1) (HTTP 409)"
expect "(c) an adopted host: 409 naming its state" "$(err host delete h2)" \
	"5 *host h2 is adopted; retire it first (hvctl host retire h2) (HTTP 409)"
expect "(c) an unknown host: 404" "$(err host delete h9)" "5 *no host 'h9'*"
expect "(c) not a name: usage" "$(err host delete 'a/b')" "2 *"
expect "(c) over REST, a body: 400" "$(sock DELETE /api/v1/hosts/h1 '{"x":1}')" '400 *takes no body*'
expect "(c) over TCP with a read token: refused" \
	"$(tcp "$("$HVCTL" --json token create --role read | field 'd["token"]')" DELETE /api/v1/hosts/h1 | cut -c1-3)" 403
expect "(c) web1 created" "$(sock POST /api/v1/vms '{"name":"web1","vcpus":1,"memory_mib":64,"kernel":"vmlinuz-guest","networks":[{"vni":100}]}')" "202 *"
expect_eq "(c) web1 is placed on h1" "$(vm_field web1 host)" h1
expect "(c) retire h1" "$("$HVCTL" host retire h1)" "retired h1: retired*"
expect "(c) a retired host a VM names: 409 listing it" "$(err host delete h1)" \
	"5 *host h1 is still the host of 1 VM: web1; destroy it first*"
expect_eq "(c) h1 is still in the inventory" "$(hosts_json | field '[h["state"] for h in d["hosts"] if h["name"] == "h1"]')" "['retired']"
expect "(c) web1 destroyed (its host has no session: forgotten)" "$(sock DELETE /api/v1/vms/web1 | cut -c1-3)" 200
expect_eq "(c) host delete h1" "$("$HVCTL" host delete h1)" \
	"deleted host h1; its fingerprint stays retired, so the machine is still refused if it boots"
expect_eq "(c) h1 is gone from host list" "$(hosts_json | field 'sorted(h["name"] for h in d["hosts"])')" "['h2', 'm1']"
expect "(c) host show h1: 404" "$(err host show h1)" "5 *no host 'h1'*"
expect "(c) host delete h1 again: 404" "$(err host delete h1)" "5 *no host 'h1'*"
expect "(c) a host.deleted event" "$(curl -s --unix-socket "$T/hvd.sock" 'http://localhost/api/v1/events?subject=h1' | grep -o '"host.deleted"[^}]*')" \
	'*fingerprint manual:h1..., mac none, underlay 127.0.0.1, by *; the fingerprint stays retired*'
expect_eq "(c) h1's fingerprint stays retired" "$(sqlite3 "$T/state/hvd.db" "SELECT host_name, cause FROM retired_fingerprints WHERE fingerprint = 'manual:h1'")" \
	"h1|retired by uid:$(id -u)"
expect_eq "(c) its explicit membership of ops went with it" "$(sqlite3 "$T/state/hvd.db" 'SELECT count(*) FROM network_members')" 0
# A deleted machine that boots again is refused, not discovered afresh.
"$HVCTL" host retire m1 >/dev/null
expect "(c) host delete m1 (by fingerprint)" "$("$HVCTL" host delete "$FP1")" "deleted host $FP1;*"
expect "(c) m1's machine boots again: refused at stage 2" "$(stage2 $MAC1 $UUID1)" 403
expect_eq "(c) and not discovered again" "$(hosts_json | field 'sorted(h["name"] or h["state"] for h in d["hosts"])')" "['h2']"
expect "(c) the refusal is an event" "$(curl -s --unix-socket "$T/hvd.sock" "http://localhost/api/v1/events?subject=$MAC1" | grep -c 'boot.refused')" "[1-9]*"
expect "(c) m1's host.deleted event" "$(curl -s --unix-socket "$T/hvd.sock" 'http://localhost/api/v1/events?subject=m1' | grep -c '"host.deleted"')" 1
# SQLite hands a deleted row's id out again: a host given it, or the
# deleted host's name, must start afresh, not inherit the old live state.
expect "(c) m2 enrolled (it may get m1's old id)" "$("$HVCTL" host add m2 --pubkey "$(printf '%064d' 4)")" "enrolled host m2"
expect "(c) the name m1 is free again" "$("$HVCTL" host add m1 --pubkey "$(printf '%064d' 3)")" "enrolled host m1"
expect_eq "(c) m2 has live state of its own" "$("$HVCTL" host telemetry m2 | field 'd["host"]')" m2
expect_eq "(c) /metrics: one hvd_host_up per host, by its name" \
	"$(curl -s --unix-socket "$T/hvd.sock" http://localhost/metrics | grep -o '^hvd_host_up{host="[a-z0-9-]*"}' | sort | tr '\n' ' ')" \
	'hvd_host_up{host="h2"} hvd_host_up{host="m1"} hvd_host_up{host="m2"} '

# --- (d) boot import: the newest kernel by version, and its initramfs
D=$T/debian-boot
mkdir -p "$D"
for v in 6.1.0-9-amd64 6.1.0-10-amd64 6.1.0-57-amd64; do
	echo "kernel $v" > "$D/vmlinuz-$v"
	echo "initrd $v" > "$D/initrd.img-$v"
	echo "config $v" > "$D/config-$v"
done
echo "xen" | gzip -c > "$D/xen-4.17-amd64.gz"
out=$("$HVCTL" boot import "$D")
expect "(d) import reports each file, one line each" "$(echo "$out" | awk '{print $1}' | tr '\n' ' ')" 'xen vmlinuz initramfs modloop '
expect_eq "(d) the newest kernel by version" "$(cat "$T/boot/vmlinuz")" "kernel 6.1.0-57-amd64"
expect_eq "(d) and its initramfs" "$(cat "$T/boot/initramfs")" "initrd 6.1.0-57-amd64"
expect_eq "(d) it says which kernel it took, and why" "$(echo "$out" | grep '^vmlinuz ' | sed 's/.*from //')" \
	"$D/vmlinuz-6.1.0-57-amd64 (the newest by version of 3; not vmlinuz-6.1.0-9-amd64, vmlinuz-6.1.0-10-amd64)"
expect_eq "(d) and which initramfs" "$(echo "$out" | grep '^initramfs ' | sed 's/.*from //')" \
	"$D/initrd.img-6.1.0-57-amd64 (the one for kernel 6.1.0-57-amd64; not initrd.img-6.1.0-9-amd64, initrd.img-6.1.0-10-amd64)"
expect "(d) boot list: the source's time is RFC 3339" "$("$HVCTL" boot list | grep '^vmlinuz ')" \
	"*$D/vmlinuz-6.1.0-57-amd64 sha256:* bytes, imported $RFC3339"

finish
