#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# DHCP starvation in full mode: a flood of DISCOVERs from random MACs must
# not keep real clients from their leases.  Namespaces: "lan" holds the
# bridge; hvd (boot0 10.80.0.1, dhcp-range of 100 addresses, the default
# dhcp-offer-max and dhcp-offer-rate), three machines running busybox
# udhcpc, and an attacker sending raw Ethernet frames from python3, each
# from a new random MAC, for FLOOD_S seconds.
#
# While the flood runs:
# 1. an adopted host (a hosts row with its boot MAC and underlay_ip) gets
#    its underlay address;
# 2. a client that already holds a bound lease gets it again;
# 3. a client hvd has never seen gets an address within a few seconds.
# Then: strangers never held more than dhcp-offer-max addresses, offers
# stayed within dhcp-offer-rate, /metrics counts the refusals by reason,
# hvd kept up with the flood (few datagrams dropped at its socket), and
# the log says so in one line, not one per packet.
. "$(dirname "$0")/lib.sh"
: "${HVD:?}" "${HVCTL:?}"
need_cmd busybox python3 sqlite3 curl bc

FLOOD_N=10000
FLOOD_S=20
RATE=10		# dhcp-offer-rate's default
HELD_MAX=50	# dhcp-offer-max's default: half of the 100 in dhcp-range

mkns lan l
mkns hvns d
mkns host h
mkns old o
mkns new n
mkns att a
ip -n "$lan" link add br0 type bridge
ip -n "$lan" link set br0 up
# lan_port NS IFNAME TAG [MAC] [ADDR]: NS's IFNAME, a port of the bridge.
lan_port() {
	ip -n "$lan" link add "p-$3" type veth peer name "$2" netns "$1"
	ip -n "$lan" link set "p-$3" master br0 up
	if [ -n "${4:-}" ]; then ip -n "$1" link set "$2" address "$4"; fi
	if [ -n "${5:-}" ]; then ip -n "$1" addr add "$5" dev "$2"; fi
	ip -n "$1" link set "$2" up
}
HOST_MAC=52:54:00:80:00:01
OLD_MAC=52:54:00:80:00:02
NEW_MAC=52:54:00:80:00:03
lan_port "$hvns" boot0 hvd "" 10.80.0.1/24
lan_port "$host" eth0 host "$HOST_MAC"
lan_port "$old" eth0 old "$OLD_MAC"
lan_port "$new" eth0 new "$NEW_MAC"
lan_port "$att" eth0 att

cat > "$T/record.sh" <<'SCRIPT'
#!/bin/sh
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface" ;;
bound)
	ip addr add "$ip/${mask:-24}" dev "$interface"
	echo "ip=$ip" > "$OUT" ;;
esac
SCRIPT
chmod +x "$T/record.sh"
# dhcpc NS: one DHCP exchange, up to 8 DISCOVERs a second apart; the
# address in $T/NS.out, the seconds it took in $T/NS.secs.
dhcpc() {
	local ns=$1 start end
	: > "$T/$ns.out"
	start=$(date +%s.%N)
	OUT="$T/$ns.out" ip netns exec "$ns" busybox udhcpc -f -q -n -t 8 -T 1 \
		-A 1 -i eth0 -s "$T/record.sh" >> "$T/udhcpc.log" 2>&1 || true
	end=$(date +%s.%N)
	printf '%.1f\n' "$(echo "$end - $start" | bc)" > "$T/$ns.secs"
}
got() { sed -n 's/^ip=//p' "$T/$1.out"; }
within() { [ "$(echo "$(cat "$T/$1.secs") < $2" | bc)" = 1 ] && echo yes || cat "$T/$1.secs"; }
metrics() { curl -s --unix-socket "$T/hvd.sock" http://localhost/metrics; }
metric() { metrics | sed -n "s/^hvd_dhcp_$1_total //p"; }
refused() {
	local n
	n=$(metrics | sed -n "s/^hvd_dhcp_offers_refused_total{reason=\"$1\"} //p")
	echo "${n:-0}"
}
rcvbuf_errors() {	# UDP datagrams dropped at a full socket, in hvd's netns
	ip netns exec "$hvns" awk '/^Udp:/ && ++n == 2 { print $6 }' /proc/net/snmp
}
held_offers() {		# unexpired offers to MACs that are not hosts
	sqlite3 "$T/state/hvd.db" "SELECT count(*) FROM dhcp_leases WHERE
		state = 'offered' AND expires_at > strftime('%s', 'now') AND
		mac NOT IN (SELECT boot_mac FROM hosts)"
}

# The attacker: raw frames, each from a new random (locally administered)
# MAC, as a flood tool sends them, paced evenly over SECONDS.
cat > "$T/flood.py" <<'PY'
import os, socket, struct, sys, time

def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff

def frame(mac):
    bootp = struct.pack("!BBBBIHH", 1, 1, 6, 0, int.from_bytes(os.urandom(4), "big"), 0, 0x8000)
    bootp += bytes(16) + mac.ljust(16, b"\0") + bytes(192)
    vc = b"PXEClient:Arch:00000:UNDI:002001"
    bootp += bytes([99, 130, 83, 99, 53, 1, 1, 60, len(vc)]) + vc + b"\xff"
    udp = struct.pack("!HHHH", 68, 67, 8 + len(bootp), 0) + bootp
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     bytes(4), b"\xff" * 4)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return b"\xff" * 6 + mac + b"\x08\x00" + ip + udp

iface, n, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
start = time.monotonic()
for i in range(n):
    s.send(frame(bytes([0x02]) + os.urandom(5)))
    late = start + secs * (i + 1) / n - time.monotonic()
    if late > 0:
        time.sleep(late)
print(n)
PY

cat > "$T/hvd.conf" <<CONF
state-dir $T/state
api-socket $T/hvd.sock
api-socket-mode 0600
boot-server 10.80.0.1
dhcp-mode full
dhcp-interface boot0
dhcp-range 10.80.0.100 10.80.0.199
dhcp-lease-time 600
log-level debug
CONF
export HVCTL_SOCKET=$T/hvd.sock
start_hvd_in "$hvns" 10 >/dev/null
# The adopt API comes later: the row as `hvctl host adopt` writes it.
sqlite3 "$T/state/hvd.db" "INSERT INTO hosts (name, fingerprint, state, boot_mac, underlay_ip, created_at, updated_at) VALUES ('h1', 'test:h1', 'adopted', '$HOST_MAC', '10.80.0.20', 0, 0)"
dhcpc "$old"
OLD_IP=$(got "$old")
expect "before the flood: a client leases an address" "$OLD_IP" '10.80.0.1[0-9][0-9]'

offers=$(metric offers)
drops=$(rcvbuf_errors)
lines=$(wc -l < "$T/hvd.log")
bg "$att" "$T/flood.log" python3 "$T/flood.py" eth0 "$FLOOD_N" "$FLOOD_S"
FLOOD=$LAST_PID
# Into the flood far enough that its offers fill what first sights may hold.
sleep 7
dhcpc "$host"
dhcpc "$old"
dhcpc "$new"
expect "the flood was still running meanwhile" "$(kill -0 "$FLOOD" 2>/dev/null && echo running)" running
expect "during the flood: the adopted host gets its underlay address" "$(got "$host")" 10.80.0.20
expect "... within a few seconds ($(cat "$T/$host.secs")s)" "$(within "$host" 5)" yes
expect "during the flood: a bound lease is renewed" "$(got "$old")" "$OLD_IP"
expect "... within a few seconds ($(cat "$T/$old.secs")s)" "$(within "$old" 5)" yes
expect "during the flood: an unknown client gets an address" "$(got "$new")" '10.80.0.1[0-9][0-9]'
expect "... within a few seconds ($(cat "$T/$new.secs")s)" "$(within "$new" 5)" yes
expect "strangers hold at most dhcp-offer-max addresses" "$(( $(held_offers) <= HELD_MAX ))" 1
wait "$FLOOD" || true
expect "the flood was sent whole" "$(cat "$T/flood.log")" "$FLOOD_N"

n=$(( $(metric offers) - offers ))
expect "offers stayed within dhcp-offer-rate ($n in ${FLOOD_S}s)" "$(( n <= RATE * (FLOOD_S + 10) ))" 1
rate=$(refused rate) held=$(refused held)
expect "refusals over the rate are counted ($rate)" "$(( rate >= FLOOD_N / 2 ))" 1
expect "refusals with dhcp-offer-max held are counted ($held)" "$(( held > 0 ))" 1
d=$(( $(rcvbuf_errors) - drops ))
expect "hvd kept up: few datagrams dropped at its socket ($d)" "$(( d < FLOOD_N / 10 ))" 1
n=$(grep -c 'offers to MACs hvd does not know' "$T/hvd.log" || true)
expect "the flood is logged in one line, not per packet ($n)" "$n" 1
n=$(( $(wc -l < "$T/hvd.log") - lines ))
expect "hvd's log grew by little ($n lines for $FLOOD_N DISCOVERs)" "$(( n < FLOOD_N / 20 ))" 1
expect "hvd never crashed (same process throughout)" "$(kill -0 "$HVD_PID" && echo alive)" alive
stop_hvd
expect "no sanitizer report from hvd" "$(sanitizer_reports "$T/hvd.log")" 0
grep "offers to MACs" "$T/hvd.log" >&2 || true
finish
