#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# hvd's DHCP against real clients on a real bridge.  Namespaces: "lan"
# holds the bridge; hvd (boot0 10.78.0.1), a site DHCP server (dnsmasq,
# 10.78.0.2), two client machines running busybox udhcpc, and a prober
# (10.78.0.9) with python3 for what udhcpc cannot send.
#
# udhcpc takes the first OFFER it hears, where a PXE ROM weighs them all;
# so in proxy mode a bridge filter lets only one server's replies reach the
# client at a time: first dnsmasq's (the address), then hvd's (the boot
# file).  hvd's counters in /metrics show what it answered either way.
#
# 1. proxy: PXE clients lease from dnsmasq and get their boot file from
#    hvd (BIOS undionly.kpxe, UEFI ipxe.efi, iPXE the stage-1 URL), also
#    on port 4011; a non-PXE client gets nothing from hvd.
# 2. malformed datagrams (bad lengths, option overflow, truncated header,
#    random bytes): counted and dropped; hvd keeps answering.
# 3. full: addresses from dhcp-range, the lease in SQLite, the same address
#    again, NAK for a wrong one, RELEASE, and an adopted host's underlay_ip.
. "$(dirname "$0")/lib.sh"
: "${HVD:?}" "${HVCTL:?}"
here=$(cd "$(dirname "$0")" && pwd)
need_cmd dnsmasq busybox python3 sqlite3 nft curl ss

mkns lan l
mkns hvns d
mkns site s
mkns c1 c
mkns c2 e
mkns prober p
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
MAC1=52:54:00:78:00:01
MAC2=52:54:00:78:00:02
lan_port "$hvns" boot0 hvd "" 10.78.0.1/24
lan_port "$site" eth0 site "" 10.78.0.2/24
lan_port "$c1" eth0 c1 "$MAC1"
lan_port "$c2" eth0 c2 "$MAC2"
lan_port "$prober" eth0 prober "" 10.78.0.9/24

# gate TAG: drop DHCP server replies entering the bridge from port TAG.
gate() {
	ip netns exec "$lan" nft flush ruleset
	[ -n "$1" ] || return 0
	ip netns exec "$lan" nft -f - <<NFT
table bridge gate {
	chain replies {
		type filter hook forward priority 0;
		iifname "p-$1" udp sport 67 drop
	}
}
NFT
}

# The client's script: configures what it was given, records the rest.
cat > "$T/record.sh" <<'SCRIPT'
#!/bin/sh
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface" ;;
bound)
	[ "$ip" = 0.0.0.0 ] || ip addr add "$ip/${mask:-24}" dev "$interface"
	{
		echo "ip=$ip"; echo "siaddr=${siaddr:-}"; echo "boot_file=${boot_file:-}"
		echo "serverid=${serverid:-}"; echo "subnet=${subnet:-}"
		echo "router=${router:-}"; echo "dns=${dns:-}"; echo "lease=${lease:-}"
	} > "$OUT" ;;
esac
SCRIPT
chmod +x "$T/record.sh"
# dhcpc NS [udhcpc options]: one real DHCP exchange; the result in $T/NS.out.
dhcpc() {
	local ns=$1; shift
	: > "$T/$ns.out"
	OUT="$T/$ns.out" ip netns exec "$ns" busybox udhcpc -f -q -n -t 4 -T 1 \
		-A 1 -i eth0 -s "$T/record.sh" "$@" >> "$T/udhcpc.log" 2>&1 || true
}
got() { sed -n "s/^$2=//p" "$T/$1.out"; }
PXE_BIOS=(-V PXEClient:Arch:00000:UNDI:002001 -x 0x5d:0000)
PXE_UEFI=(-V PXEClient:Arch:00007:UNDI:003016 -x 0x5d:0007)
PXE_IPXE=(-V PXEClient:Arch:00000:UNDI:002001 -x 0x5d:0000 -x 0x4d:69505845)
metric() {
	curl -s --unix-socket "$T/hvd.sock" http://localhost/metrics |
		sed -n "s/^hvd_dhcp_$1_total //p"
}
probe() { ip netns exec "$prober" python3 "$here/dhcp_probe.py" "$@"; }
export HVCTL_SOCKET=$T/hvd.sock
start_hvd() { start_hvd_in "$hvns" 10; }
malformed_then_alive() {	# MODE: hvd drops them all and stays up
	local before n
	before=$(metric malformed)
	n=$(probe malformed 10.78.0.1)
	malformed_seen() { [ "$(metric malformed)" -ge $((before + n)) ]; }
	wait_for 5 malformed_seen >/dev/null || true
	expect "$1: each malformed datagram counted and dropped" "$(( $(metric malformed) - before ))" "$n"
	probe flood 10.78.0.1 400 >/dev/null
	expect "$1: hvd survived the flood" "$(kill -0 "$HVD_PID" && echo alive)" alive
	expect "$1: dropped datagrams named in the log" "$(grep -c 'dropped: option 60: length 200 overruns the options field' "$T/hvd.log")" '[1-9]*'
}

# ---------------------------------------------------------------- proxy
cat > "$T/hvd.conf" <<CONF
state-dir $T/state
api-socket $T/hvd.sock
api-socket-mode 0600
boot-http-listen 0.0.0.0:8080
dhcp-mode proxy
dhcp-interface boot0
log-level debug
CONF
start_hvd
bg "$site" "$T/dnsmasq.log" dnsmasq --no-daemon --port=0 --conf-file=/dev/null \
	--interface=eth0 --bind-interfaces --no-ping --log-dhcp --log-facility=- \
	--dhcp-range=10.78.0.100,10.78.0.120,255.255.255.0,1h \
	--dhcp-leasefile="$T/dnsmasq.leases" --pid-file="$T/dnsmasq.pid" --user=root
DNSMASQ=$LAST_PID
dnsmasq_up() { grep -q 'DHCP, IP range' "$T/dnsmasq.log"; }
wait_for 10 dnsmasq_up >/dev/null
expect "hvd listens on 67 and 4011 in proxy mode" "$(ip netns exec "$hvns" ss -Hlun | grep -cE '%boot0:(67|4011) ')" 2

# A PXE ROM hears both offers; udhcpc is let hear only dnsmasq's.
gate hvd
offers=$(metric offers) ignored=$(metric ignored) acks=$(metric acks)
dhcpc "$c1" "${PXE_BIOS[@]}"
expect "PXE client leased its address from dnsmasq" "$(got "$c1" ip) $(got "$c1" serverid)" '10.78.0.1[0-2][0-9] 10.78.0.2'
expect "hvd offered to the PXE client as well" "$(( $(metric offers) - offers ))" '[1-9]*'
expect "hvd left the REQUEST for dnsmasq alone" "$(( $(metric acks) - acks )) $(( $(metric ignored) > ignored ))" '0 1'
expect "the client's address is in dnsmasq's lease file" "$(grep -ci "$MAC1" "$T/dnsmasq.leases")" 1

# A non-PXE client: dnsmasq answers, hvd stays silent.
gate ""
offers=$(metric offers) ignored=$(metric ignored)
dhcpc "$c2"
expect "non-PXE client leased from dnsmasq" "$(got "$c2" ip) $(got "$c2" serverid) [$(got "$c2" boot_file)]" '10.78.0.1[0-2][0-9] 10.78.0.2 []'
expect "hvd sent a non-PXE client nothing" "$(( $(metric offers) - offers ))" 0
expect "hvd counted it as ignored" "$(( $(metric ignored) - ignored ))" '[1-9]*'
expect "hvd logged why" "$(grep -c "$MAC2: type 1 on port 67 ignored: not a PXE client" "$T/hvd.log")" '[1-9]*'

# Now only hvd's replies get through: the boot file per client kind.
gate site
dhcpc "$c1" "${PXE_BIOS[@]}"
expect "BIOS PXE client: boot file from hvd" "$(got "$c1" boot_file) $(got "$c1" siaddr) $(got "$c1" serverid) $(got "$c1" ip)" 'undionly.kpxe 10.78.0.1 10.78.0.1 0.0.0.0'
dhcpc "$c1" "${PXE_UEFI[@]}"
expect "UEFI PXE client (arch 7): ipxe.efi" "$(got "$c1" boot_file) $(got "$c1" siaddr)" 'ipxe.efi 10.78.0.1'
dhcpc "$c1" -V PXEClient:Arch:00009:UNDI:003016 -x 0x5d:0009
expect "UEFI PXE client (arch 9): ipxe.efi" "$(got "$c1" boot_file)" 'ipxe.efi'
dhcpc "$c1" "${PXE_IPXE[@]}"
expect "iPXE client: the stage-1 URL" "$(got "$c1" boot_file)" 'http://10.78.0.1:8080/boot/ipxe'
acks=$(metric acks)
expect "port 4011: REQUEST from a configured PXE client gets the ACK" \
	"$(probe proxy-request eth0 10.78.0.1 10.78.0.9 52:54:00:78:00:09 7)" \
	'ack yiaddr=0.0.0.0 siaddr=10.78.0.1 file=ipxe.efi opt60=PXEClient'
expect "port 4011 ACK counted" "$(( $(metric acks) - acks ))" 1
gate ""
malformed_then_alive proxy
dhcpc "$c1" "${PXE_UEFI[@]}"
gate site
dhcpc "$c1" "${PXE_UEFI[@]}"
expect "proxy: the real client is still served afterwards" "$(got "$c1" boot_file)" 'ipxe.efi'
gate ""
kill "$DNSMASQ"; wait "$DNSMASQ" || true
stop_hvd

# ----------------------------------------------------------------- full
cat > "$T/hvd.conf" <<CONF
state-dir $T/state
api-socket $T/hvd.sock
api-socket-mode 0600
boot-server 10.78.0.1
dhcp-mode full
dhcp-interface boot0
dhcp-range 10.78.0.150 10.78.0.160
dhcp-router 10.78.0.1
dhcp-dns 10.78.0.53
dhcp-lease-time 600
log-level debug
CONF
start_hvd
expect "hvd listens on 67 only in full mode" "$(ip netns exec "$hvns" ss -Hlun | grep -cE '%boot0:(67|4011) ')" 1
lease_of() { sqlite3 "$T/state/hvd.db" "SELECT ip, state FROM dhcp_leases WHERE mac = '$1'"; }
dhcpc "$c1" "${PXE_BIOS[@]}"
expect "full: PXE client gets an address from dhcp-range" "$(got "$c1" ip) $(got "$c1" serverid)" '10.78.0.150 10.78.0.1'
expect "full: mask, router, DNS, lease time" "$(got "$c1" subnet) $(got "$c1" router) $(got "$c1" dns) $(got "$c1" lease)" '255.255.255.0 10.78.0.1 10.78.0.53 600'
expect "full: and its boot file" "$(got "$c1" boot_file) $(got "$c1" siaddr)" 'undionly.kpxe 10.78.0.1'
expect "full: the lease is in SQLite" "$(lease_of "$MAC1")" '10.78.0.150|bound'
expect "full: the lease is in the audit log" "$(sqlite3 "$T/state/hvd.db" "SELECT detail FROM events WHERE kind = 'dhcp.lease' AND subject = '$MAC1'")" '10.78.0.150 bound until *'
dhcpc "$c1" "${PXE_BIOS[@]}"
expect "full: a second run gets the same address" "$(got "$c1" ip)" '10.78.0.150'
dhcpc "$c2"
expect "full: a non-PXE client gets the next address and no boot file" "$(got "$c2" ip) [$(got "$c2" boot_file)]" '10.78.0.151 []'
dhcpc "$c2" -r 10.78.0.150
expect "full: nobody takes another client's address" "$(got "$c2" ip)" '10.78.0.151'
naks=$(metric naks)
expect "full: a REQUEST for an address hvd cannot give is NAKed" "$(probe reboot-request eth0 52:54:00:78:00:99 10.78.0.140)" 'nak requested address not available'
expect "full: NAK counted" "$(( $(metric naks) - naks ))" 1
expect "full: INIT-REBOOT for a free address in the range is granted" "$(probe reboot-request eth0 52:54:00:78:00:98 10.78.0.155)" 'ack 10.78.0.155'

# An adopted host: the adopt API comes later, so the inventory row is
# written with sqlite3 directly, as `hvctl host adopt` will write it.
sqlite3 "$T/state/hvd.db" "INSERT INTO hosts (name, fingerprint, state, boot_mac, underlay_ip, created_at, updated_at) VALUES ('h1', 'test:h1', 'adopted', '$MAC1', '10.78.0.20', 0, 0)"
dhcpc "$c1" "${PXE_BIOS[@]}"
expect "full: an adopted host gets its underlay IP" "$(got "$c1" ip) $(got "$c1" boot_file)" '10.78.0.20 undionly.kpxe'
dhcpc "$c1" "${PXE_BIOS[@]}"
expect "full: ... every time" "$(got "$c1" ip)" '10.78.0.20'
expect "full: ... and its lease row says so" "$(lease_of "$MAC1")" '10.78.0.20|bound'
dhcpc "$c2" -r 10.78.0.20
expect "full: nobody else gets the host's IP, even asking for it" "$(got "$c2" ip)" '10.78.0.151'
# The flood's mutated DISCOVERs carry random MACs and get offers of their
# own, as from any DHCP server; c2's bound lease is untouched by them.
malformed_then_alive full
dhcpc "$c2"
expect "full: the real client is still served afterwards" "$(got "$c2" ip)" '10.78.0.151'
# RELEASE from a running client (SIGUSR2: release the lease).
releases=$(metric releases)
: > "$T/$c2.out"
export OUT="$T/$c2.out"
bg "$c2" "$T/udhcpc.log" busybox udhcpc -f -t 4 -T 1 -i eth0 -s "$T/record.sh"
UDHCPC=$LAST_PID
unset OUT
bound() { [ -s "$T/$c2.out" ]; }
wait_for 10 bound >/dev/null || true
kill -USR2 "$UDHCPC"
released() { [ "$(lease_of "$MAC2")" = '10.78.0.151|released' ]; }
wait_for 5 released >/dev/null || true
kill "$UDHCPC"; wait "$UDHCPC" || true
expect "full: RELEASE recorded" "$(lease_of "$MAC2") $(( $(metric releases) - releases ))" '10.78.0.151|released 1'
expect "hvd never crashed (same process throughout)" "$(kill -0 "$HVD_PID" && echo alive)" alive
stop_hvd
expect "no sanitizer report from hvd" "$(sanitizer_reports "$T/hvd.log")" 0
finish
