#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Topology over netlink in a real namespace: hvd finds the boot interface
# from the default route and tells hosts its address; when the address
# changes, the stage-1 script follows without a restart.
. "$(dirname "$0")/lib.sh"
: "${HVD:?}" "${HVCTL:?}"

mkns hvns t
mkns peer p
link_ns "$hvns" 10.66.0.1/24 "$peer" 10.66.0.2/24
# A second, unrelated interface (this kernel has no dummy driver: a veth).
ip -n "$hvns" link add side0 type veth peer name side1
ip -n "$hvns" addr add 192.168.77.1/24 dev side0
ip -n "$hvns" link set side0 up
ip -n "$hvns" link set side1 up
ip -n "$hvns" route add default via 10.66.0.2
cat > "$T/hvd.conf" <<CONF
state-dir $T/state
api-socket $T/hvd.sock
api-socket-mode 0600
boot-http-listen 0.0.0.0:8080
CONF
export HVCTL_SOCKET=$T/hvd.sock
start_hvd_in "$hvns" 10
dev=$(ip -n "$hvns" -o -4 addr show | awk '$4 == "10.66.0.1/24" {print $2}')
expect "status names the default route's interface" "$("$HVCTL" status | grep '^network:')" \
	"network:   boot interface $dev, 10.66.0.1/24"
stage1() { ip netns exec "$hvns" curl -s http://127.0.0.1:8080/boot/ipxe | grep -m1 '^chain'; }
expect "stage 1 points hosts at that address" "$(stage1)" 'chain http://10.66.0.1:8080/boot/ipxe?*'
expect "status lists every interface" "$(curl -s --unix-socket "$T/hvd.sock" http://localhost/api/v1/status | grep -o '"name":"side0"[^}]*')" '"name":"side0","up":true,"mtu":1500,"addresses":\["192.168.77.1/24"*'

# The address changes under a running hvd (the new one is promoted when
# the old primary goes, so the default route stays).
ip netns exec "$hvns" sysctl -qw net.ipv4.conf.all.promote_secondaries=1
ip netns exec "$hvns" sysctl -qw "net.ipv4.conf.$dev.promote_secondaries=1"
ip -n "$hvns" addr add 10.66.0.9/24 dev "$dev"
ip -n "$hvns" addr del 10.66.0.1/24 dev "$dev"
follows() { stage1 | grep -q 'http://10.66.0.9:8080/'; }
expect "address change picked up without a restart (s)" "$(wait_for 5 follows || true)" '[0-9]*.[0-9]'
expect "logged" "$(grep -c 'topology: boot interface .*10.66.0.9/24' "$T/hvd.log")" 1
finish
