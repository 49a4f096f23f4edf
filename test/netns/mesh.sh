#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The VXLAN mesh on real kernels: three "hosts" (namespaces) whose underlay
# veths meet on a bridge in a fourth, each with a "guest" namespace on
# br100.  Each host applies its state with mesh_apply (lib/mesh.c, what
# hvd and hv-agent run); guests ping across; VXLAN (UDP 4789) is counted on
# the underlay; the FDB holds one appended all-zero entry per remote;
# re-applying changes nothing; a removed member's entries go; a
# hand-deleted entry comes back; operators' devices are never touched.
# The same on an IPv6 underlay: three more hosts on fd00:78::/64, the
# vxlan device's local and the FDB dsts IPv6, MTU underlay - 70, br200
# addresses ping across, and a move to IPv4 and back rebuilds vxlan200.
# Then the real hv-agent with a mesh-file: applied at start, a hand-deleted
# entry restored within mesh-interval (no hvd: the agent keeps retrying).
. "$(dirname "$0")/lib.sh"
: "${MESH_APPLY:?}" "${HV_AGENT:?}" "${MESH_PRIV_PROBE:?}"
need_cmd nft bridge -- nft counts VXLAN packets, bridge reads the FDB
[ -d /proc/sys/net/ipv6 ] || need "IPv6 in the kernel (the IPv6 underlay checks)"

mkns U u
nft_ok=1
ip netns exec "$U" nft add table bridge hvm 2>/dev/null || nft_ok=0
[ "$nft_ok" = 1 ] || need "the nftables bridge family (nft add table bridge failed)"
ip -n "$U" link add ubr type bridge
ip -n "$U" link set ubr up
ip netns exec "$U" nft add chain bridge hvm vxfwd '{ type filter hook forward priority 0; }'
ip netns exec "$U" nft add rule bridge hvm vxfwd udp dport 4789 counter

H=(); G=()
for i in 1 2 3; do
	mkns h "h$i"; H[i]=$h
	mkns g "g$i"; G[i]=$g
	ip link add "ul$SUFFIX" type veth peer name "up$i$SUFFIX"
	ip link set "ul$SUFFIX" netns "$h" name ul0
	ip link set "up$i$SUFFIX" netns "$U"
	ip -n "$U" link set "up$i$SUFFIX" master ubr up
	ip -n "$h" addr add "10.78.0.$i/24" dev ul0
	ip -n "$h" link set ul0 up
	ip link add "vm$SUFFIX" type veth peer name "gn$SUFFIX"
	ip link set "vm$SUFFIX" netns "$h" name vm0
	ip link set "gn$SUFFIX" netns "$g" name eth0
	ip -n "$g" link set eth0 address "02:00:00:00:01:0$i" mtu 1450
	ip -n "$g" addr add "192.168.100.$i/24" dev eth0
	ip -n "$g" link set eth0 up
done

# state I [VTEP...]: host I's state, flooding to the listed hosts' VTEPs
# and knowing their guests' MACs.
state() {
	local i=$1 first=1 v; shift
	printf '{"version":1,"local":"10.78.0.%s","networks":[{"vni":100,"vteps":[' "$i"
	for v in "$@"; do [ $first = 1 ] || printf ','; first=0; printf '"10.78.0.%s"' "$v"; done
	printf '],"macs":['; first=1
	for v in "$@"; do [ $first = 1 ] || printf ','; first=0; printf '{"mac":"02:00:00:00:01:0%s","vtep":"10.78.0.%s"}' "$v" "$v"; done
	printf ']}]}\n'
}
apply() { ip netns exec "${H[$1]}" "$MESH_APPLY" "$2" 2>>"$T/apply.log"; }
field() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
changes() { tr -d '{}"' | tr ',' '\n' | awk -F: '$1 ~ /^(links_added|links_changed|links_deleted|fdb_added|fdb_deleted)$/ { n += $2 } END { print n + 0 }'; }
zero_dsts() { ip netns exec "${H[$1]}" bridge fdb show dev vxlan100 | awk '$1 == "00:00:00:00:00:00" { for (i = 2; i < NF; i++) if ($i == "dst") print $(i + 1) }' | sort | tr '\n' ' '; }

state 1 2 3 > "$T/s1.json"; state 2 1 3 > "$T/s2.json"; state 3 1 2 > "$T/s3.json"
for i in 1 2 3; do
	out=$(apply "$i" "$T/s$i.json")
	expect "h$i: first apply creates br100 and vxlan100" "$(echo "$out" | field links_added)" 2
	expect "h$i: first apply adds 2 flood + 2 MAC entries" "$(echo "$out" | field fdb_added)" 4
	ip -n "${H[$i]}" link set vm0 master br100 up
done
d=$(ip -n "${H[1]}" -d link show vxlan100)
expect "vxlan100: VNI, dstport, local, nolearning" "$d" "*vxlan id 100 local 10.78.0.1 dev ul0 *dstport 4789 nolearning*"
expect "vxlan100: MTU underlay - 50, enslaved to br100" "$d" "*mtu 1450 *master br100*"
expect "vxlan100 carries the marker" "$d" "*alias hv-mesh*"
expect "br100 carries the marker, MTU 1450" "$(ip -n "${H[1]}" -d link show br100)" "*mtu 1450 *alias hv-mesh*"
expect "h1: all-zero entries appended, one per remote" "$(zero_dsts 1)" "10.78.0.2 10.78.0.3 "
expect "h1: per-MAC entry for g2" "$(ip netns exec "${H[1]}" bridge fdb show dev vxlan100 | grep -c '^02:00:00:00:01:02 dst 10.78.0.2 self permanent')" 1

for p in "1 2" "1 3" "2 3" "3 1"; do
	set -- $p
	expect "g$1 pings g$2 across the mesh" "$(ip netns exec "${G[$1]}" ping -c 2 -W 2 -q "192.168.100.$2" >/dev/null 2>&1 && echo ok)" ok
done
pk=$(ip netns exec "$U" nft list chain bridge hvm vxfwd | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
expect "UDP/4789 crossed the underlay (packets)" "$pk" '[1-9]*'

out=$(apply 1 "$T/s1.json")
expect "second apply: 0 changes" "$(echo "$out" | changes)" 0
expect "second apply: 4 entries unchanged" "$(echo "$out" | field fdb_unchanged)" 4

# h3 leaves VNI 100 in h1's view: its flood and MAC entries go.
state 1 2 > "$T/s1b.json"
out=$(apply 1 "$T/s1b.json")
expect "member removed: 2 entries deleted" "$(echo "$out" | field fdb_deleted)" 2
expect "member removed: only h2 left in the flood list" "$(zero_dsts 1)" "10.78.0.2 "
expect "member removed: g3's MAC gone" "$(ip netns exec "${H[1]}" bridge fdb show dev vxlan100 | grep -c '02:00:00:00:01:03 dst' || true)" 0
apply 1 "$T/s1.json" >/dev/null
expect "member back: both remotes" "$(zero_dsts 1)" "10.78.0.2 10.78.0.3 "

# Drift: an entry deleted and one rewritten by hand come back.
ip netns exec "${H[1]}" bridge fdb del 00:00:00:00:00:00 dev vxlan100 dst 10.78.0.3
ip netns exec "${H[1]}" bridge fdb replace 02:00:00:00:01:02 dev vxlan100 dst 10.78.0.9
expect "hand-deleted entry is gone" "$(zero_dsts 1)" "10.78.0.2 "
out=$(apply 1 "$T/s1.json")
expect "re-apply repairs 2 entries" "$(echo "$out" | field fdb_added)" 2
expect "hand-deleted entry is back" "$(zero_dsts 1)" "10.78.0.2 10.78.0.3 "
expect "rewritten MAC entry points at h2 again" "$(ip netns exec "${H[1]}" bridge fdb show dev vxlan100 | grep -c '^02:00:00:00:01:02 dst 10.78.0.2 ')" 1

# Operators' devices: vxlan999 on h1; on h2, a vxlan200 without the marker
# where the state wants VNI 200.
ip -n "${H[1]}" link add vxlan999 type vxlan id 999 dstport 4789 local 10.78.0.1 nolearning
ip netns exec "${H[1]}" bridge fdb append 00:00:00:00:00:00 dev vxlan999 dst 10.78.0.7
ip -n "${H[2]}" link add vxlan200 type vxlan id 200 dstport 4789 local 10.78.0.2 nolearning
sed 's/]}]}$/]},{"vni":200,"vteps":["10.78.0.1"]}]}/' "$T/s2.json" > "$T/s2b.json"
set +e; out=$(apply 2 "$T/s2b.json"); rc=$?; set -e
expect "name taken by an operator's device: apply fails" "$rc" 1
expect "the error names the device and the VNI" "$out" '*VNI 200: vxlan200 exists and is not ours*'
expect "the operator's vxlan200 is untouched" "$(ip -n "${H[2]}" -d link show vxlan200)" "*vxlan id 200 *"
expect "the operator's vxlan200 got no alias, no master" "$(ip -n "${H[2]}" -d link show vxlan200 | grep -cE 'alias|master' || true)" 0
expect "VNI 100 on h2 still intact" "$(zero_dsts 2)" "10.78.0.1 10.78.0.3 "
ip -n "${H[2]}" link del br200 2>/dev/null || true
ip -n "${H[2]}" link del vxlan200
apply 2 "$T/s2.json" >/dev/null || true

echo '{"version":1,"local":"10.78.0.1","networks":[]}' > "$T/empty.json"
out=$(apply 1 "$T/empty.json")
expect "empty state deletes the 2 owned devices" "$(echo "$out" | field links_deleted)" 2
expect "br100 and vxlan100 are gone" "$(ip -n "${H[1]}" link show | grep -cE ' (br100|vxlan100)[:@]' || true)" 0
expect "the operator's vxlan999 survives, FDB intact" "$(ip netns exec "${H[1]}" bridge fdb show dev vxlan999 | grep -c 'dst 10.78.0.7')" 1
expect "the underlay survives" "$(ip -n "${H[1]}" link show ul0 >/dev/null && echo ok)" ok

# Strict input: a repeated VTEP is refused before any netlink call.
echo '{"version":1,"local":"10.78.0.1","networks":[{"vni":5,"vteps":["10.78.0.2","10.78.0.2"]}]}' > "$T/bad.json"
set +e; out=$(ip netns exec "${H[1]}" "$MESH_APPLY" "$T/bad.json" 2>&1); rc=$?; set -e
expect "bad state refused with its path" "$rc:$out" '2:*networks?0?.vteps: 10.78.0.2 is listed twice*'

# --- IPv6 underlay: hosts h61..h63 on their own bridge in U (no snooping:
# no MLD querier here), ULA addresses with nodad so they are usable at
# once.  VNI 200; each br200 gets a fixed MAC (known to the others' states)
# and 192.168.200.<i>.
ip -n "$U" link add ubr6 type bridge mcast_snooping 0
ip -n "$U" link set ubr6 up
H6=()
for i in 1 2 3; do
	mkns h "h6$i"; H6[i]=$h
	ip link add "ul$SUFFIX" type veth peer name "u6p$i$SUFFIX"
	ip link set "ul$SUFFIX" netns "$h" name ul0
	ip link set "u6p$i$SUFFIX" netns "$U"
	ip -n "$U" link set "u6p$i$SUFFIX" master ubr6 up
	ip -n "$h" addr add "fd00:78::$i/64" dev ul0 nodad
	ip -n "$h" link set ul0 up
done
# state6 I [VTEP...]: host I's IPv6 state for VNI 200.
state6() {
	local i=$1 first=1 v; shift
	printf '{"version":1,"local":"fd00:78::%s","networks":[{"vni":200,"vteps":[' "$i"
	for v in "$@"; do [ $first = 1 ] || printf ','; first=0; printf '"fd00:78::%s"' "$v"; done
	printf '],"macs":['; first=1
	for v in "$@"; do [ $first = 1 ] || printf ','; first=0; printf '{"mac":"02:00:00:00:06:0%s","vtep":"fd00:78::%s"}' "$v" "$v"; done
	printf ']}]}\n'
}
apply6() { ip netns exec "${H6[$1]}" "$MESH_APPLY" "$2" 2>>"$T/apply.log"; }
fdb6() { ip netns exec "${H6[$1]}" bridge fdb show dev vxlan200; }
zero_dsts6() { fdb6 "$1" | awk '$1 == "00:00:00:00:00:00" { for (i = 2; i < NF; i++) if ($i == "dst") print $(i + 1) }' | sort | tr '\n' ' '; }
ping6ok() { ip netns exec "${H6[$1]}" ping -c 2 -W 2 -q "192.168.200.$2" >/dev/null 2>&1 && echo ok; }

state6 1 2 3 > "$T/v1.json"; state6 2 1 3 > "$T/v2.json"; state6 3 1 2 > "$T/v3.json"
for i in 1 2 3; do
	out=$(apply6 "$i" "$T/v$i.json")
	expect "h6$i: first IPv6 apply creates br200 and vxlan200" "$(echo "$out" | field links_added)" 2
	expect "h6$i: first IPv6 apply adds 2 flood + 2 MAC entries" "$(echo "$out" | field fdb_added)" 4
	ip -n "${H6[$i]}" link set br200 address "02:00:00:00:06:0$i"
	ip -n "${H6[$i]}" addr add "192.168.200.$i/24" dev br200
done
d=$(ip -n "${H6[1]}" -d link show vxlan200)
expect "vxlan200: VNI, dstport, IPv6 local, nolearning" "$d" "*vxlan id 200 local fd00:78::1 dev ul0 *dstport 4789 nolearning*"
expect "vxlan200: MTU underlay - 70, enslaved to br200" "$d" "*mtu 1430 *master br200*"
expect "br200: MTU 1430, marker" "$(ip -n "${H6[1]}" -d link show br200)" "*mtu 1430 *alias hv-mesh*"
expect "h61: all-zero entries with IPv6 dsts, one per remote" "$(zero_dsts6 1)" "fd00:78::2 fd00:78::3 "
expect "h61: per-MAC entry with an IPv6 dst" "$(fdb6 1 | grep -c '^02:00:00:00:06:02 dst fd00:78::2 self permanent')" 1
for p in "1 2" "1 3" "2 3" "3 1"; do
	set -- $p
	expect "h6$1 pings br200 of h6$2 across the IPv6 VXLAN" "$(ping6ok "$1" "$2")" ok
done
out=$(apply6 1 "$T/v1.json")
expect "IPv6: second apply: 0 changes" "$(echo "$out" | changes)" 0
expect "IPv6: second apply: 4 entries unchanged" "$(echo "$out" | field fdb_unchanged)" 4

# Drift on IPv6 remotes (one deleted, one with a port never set, one
# rewritten), and a remote left out of the state.
ip netns exec "${H6[1]}" bridge fdb del 00:00:00:00:00:00 dev vxlan200 dst fd00:78::3
ip netns exec "${H6[1]}" bridge fdb append 00:00:00:00:00:00 dev vxlan200 dst fd00:78::3 port 4790
ip netns exec "${H6[1]}" bridge fdb replace 02:00:00:00:06:02 dev vxlan200 dst fd00:78::9
out=$(apply6 1 "$T/v1.json")
expect "IPv6: re-apply repairs 2 entries" "$(echo "$out" | field fdb_added)" 2
expect "IPv6: the remote with a foreign port is deleted" "$(echo "$out" | field fdb_deleted):$(fdb6 1 | grep -c 'port 4790' || true)" 1:0
expect "IPv6: hand-deleted entry is back" "$(zero_dsts6 1)" "fd00:78::2 fd00:78::3 "
expect "IPv6: rewritten MAC entry points at h62 again" "$(fdb6 1 | grep -c '^02:00:00:00:06:02 dst fd00:78::2 ')" 1
state6 1 2 > "$T/v1b.json"
out=$(apply6 1 "$T/v1b.json")
expect "IPv6: member removed: 2 entries deleted" "$(echo "$out" | field fdb_deleted)" 2
expect "IPv6: member removed: only h62 left" "$(zero_dsts6 1)" "fd00:78::2 "

# The same VNI moved to an IPv4 underlay: vxlan200 is rebuilt with the
# IPv4 local and MTU - 50; back to IPv6, and the mesh works again.
ip -n "${H6[1]}" addr add 10.79.0.1/24 dev ul0
echo '{"version":1,"local":"10.79.0.1","networks":[{"vni":200,"vteps":["10.79.0.2"]}]}' > "$T/v1v4.json"
out=$(apply6 1 "$T/v1v4.json")
expect "IPv6 -> IPv4: vxlan200 deleted and created again" "$(echo "$out" | field links_deleted):$(echo "$out" | field links_added)" 1:1
expect "IPv6 -> IPv4: the flood list is the IPv4 VTEP alone" "$(zero_dsts6 1)" "10.79.0.2 "
expect "IPv6 -> IPv4: IPv4 local, MTU underlay - 50" "$(ip -n "${H6[1]}" -d link show vxlan200)" "*mtu 1450 *vxlan id 200 local 10.79.0.1 dev ul0 *"
out=$(apply6 1 "$T/v1.json")
expect "IPv4 -> IPv6: rebuilt, 4 entries added" "$(echo "$out" | field links_added):$(echo "$out" | field fdb_added)" 1:4
expect "IPv4 -> IPv6: IPv6 local, MTU underlay - 70" "$(ip -n "${H6[1]}" -d link show vxlan200)" "*mtu 1430 *vxlan id 200 local fd00:78::1 dev ul0 *"
expect "h61 pings br200 of h63 again" "$(ping6ok 1 3)" ok

# An IPv6 local on no interface: the error names it.
echo '{"version":1,"local":"fd00:78::77","networks":[{"vni":200,"vteps":["fd00:78::2"]}]}' > "$T/v1x.json"
set +e; out=$(apply6 1 "$T/v1x.json"); rc=$?; set -e
expect "IPv6 local on no interface: apply fails naming it" "$rc:$out" '1:*local fd00:78::77 is on no interface*'

# --- hvd's privileged path (daemon/mesh_priv.c) on h3: the helper keeps
# CAP_NET_ADMIN alone, the caller drops it; without it, the anchor is off.
out=$(ip netns exec "${H[3]}" "$MESH_PRIV_PROBE" "$T/s3.json" 2>>"$T/apply.log" || true)
expect "privileged helper applies (state unchanged: 4 kept)" "$out" 'result=0 detail=*"fdb_unchanged":4*'
self=$(echo "$out" | sed -n 's/.*self_capeff=\([0-9a-f]*\).*/\1/p')
expect "caller dropped CAP_NET_ADMIN" "$(( 0x${self:-1000} & 0x1000 ))" 0
expect "helper holds CAP_NET_ADMIN and nothing else" "$out" '*helper_capeff=0000000000001000'
ip netns exec "${H[3]}" bridge fdb del 00:00:00:00:00:00 dev vxlan100 dst 10.78.0.1
out=$(ip netns exec "${H[3]}" "$MESH_PRIV_PROBE" "$T/s3.json" 2>>"$T/apply.log" || true)
expect "privileged helper repairs a deleted entry" "$out" 'result=0 detail=*"fdb_added":1*'
if command -v setpriv >/dev/null; then
	out=$(ip netns exec "${H[3]}" setpriv --inh-caps=-all --bounding-set=-net_admin "$MESH_PRIV_PROBE" "$T/s3.json" 2>&1 || true)
	expect "without CAP_NET_ADMIN the anchor is disabled" "$out" '*anchor is disabled*result=-1 *'
fi

# --- the real agent on h1: mesh-file at start, reconcile every 2 s.
mkdir -p "$T/agent"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$T/agent/agent.key"; echo >> "$T/agent/agent.key"
chmod 600 "$T/agent/agent.key"
cp "$T/s1.json" "$T/agent/mesh.json"
cat > "$T/agent/agent.conf" <<CONF
hvd 127.0.0.1:9
hvd-key $(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
host h1
key-file $T/agent/agent.key
session-file $T/agent/session
mesh-file $T/agent/mesh.json
mesh-interval 2
CONF
bg "${H[1]}" "$T/agent.log" "$HV_AGENT" -d -v -f "$T/agent/agent.conf"
has_zero() { [ "$(zero_dsts 1)" = "10.78.0.2 10.78.0.3 " ]; }
expect "agent applied mesh-file at start (s)" "$(wait_for 10 has_zero || true)" '[0-9]*.[0-9]'
expect "agent logged the apply before connecting" "$(grep -n -e 'mesh: applied' -e 'connection to hvd' "$T/agent.log" | head -n 1)" '*mesh: applied*'
# The empty state took br100 away, and vm0 with it: attach it again.
ip -n "${H[1]}" link set vm0 master br100 up
expect "g1 pings g2 through the agent's mesh" "$(ip netns exec "${G[1]}" ping -c 2 -W 2 -q 192.168.100.2 >/dev/null 2>&1 && echo ok)" ok
ip netns exec "${H[1]}" bridge fdb del 00:00:00:00:00:00 dev vxlan100 dst 10.78.0.2
t=$(wait_for 6 has_zero || true)
expect "agent restored a hand-deleted entry (s)" "$t" '[0-9]*.[0-9]'
expect "within one mesh-interval (<= 2.5 s)" "$(echo "${t/timeout/99} <= 2.5" | bc)" 1
expect "agent logged the repair" "$(grep -c 'repaired drift' "$T/agent.log" || true)" '[1-9]*'
expect "no sanitizer report from the agent" "$(cat "$T/agent.log" "$T/apply.log" | grep -cE 'AddressSanitizer|LeakSanitizer|runtime error:' || true)" 0
finish
