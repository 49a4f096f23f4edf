#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The VXLAN mesh end to end (issue 6): the real hvd in one namespace, three
# "machines" in others, all on one underlay bridge in a fifth.  Each
# machine asks for its stage 2 (lab-auto-adopt names it), fetches its
# overlay from the address that asked, and runs the real hv-agent with the
# overlay's agent.conf.  Then: a network for all hosts carries pings
# between guests and from hvd's own bridge (the anchor), VXLAN counted on
# the underlay; `net show` reports members, VTEPs and sync; a network with
# explicit members reaches only them; a dead agent's host leaves the
# others' flood lists and comes back; a hand-deleted entry is repaired
# within mesh-interval; operators' vxlan devices are left alone; and an
# hvd restart neither deletes nor re-creates anything.
. "$(dirname "$0")/lib.sh"
: "${HVD:?}" "${HVCTL:?}" "${HV_AGENT:?}"
need_cmd nft bridge curl python3 bc

# --- underlay: a bridge in U, hvd at .1, the machines at .11-.13
mkns U u
ip netns exec "$U" nft add table bridge hvm 2>/dev/null ||
	need "the nftables bridge family (nft add table bridge failed)"
ip -n "$U" link add ubr type bridge
ip -n "$U" link set ubr up
ip netns exec "$U" nft add chain bridge hvm vxfwd '{ type filter hook forward priority 0; }'
ip netns exec "$U" nft add rule bridge hvm vxfwd udp dport 4789 counter
# underlay NS IP/PFX TAG: NS's ul0 on the underlay bridge.
underlay() {
	ip link add "ul$SUFFIX" type veth peer name "up$3$SUFFIX"
	ip link set "ul$SUFFIX" netns "$1" name ul0
	ip link set "up$3$SUFFIX" netns "$U"
	ip -n "$U" link set "up$3$SUFFIX" master ubr up
	ip -n "$1" addr add "$2" dev ul0
	ip -n "$1" link set ul0 up
}
mkns D d
underlay "$D" 10.88.0.1/24 0
H=(); G=()
# shellcheck disable=SC2154 # mkns assigns h and g
for i in 1 2 3; do
	mkns h "h$i"; H[i]=$h
	mkns g "g$i"; G[i]=$g
	underlay "$h" "10.88.0.1$i/24" "$i"
	# The guest: eth0 in G, its peer vm0 in H (put on br100 later).
	ip link add "vm$SUFFIX" type veth peer name "gn$SUFFIX"
	ip link set "vm$SUFFIX" netns "$h" name vm0
	ip link set "gn$SUFFIX" netns "$g" name eth0
	ip -n "$g" link set eth0 address "02:00:00:00:01:0$i" mtu 1450
	ip -n "$g" addr add "192.168.100.$i/24" dev eth0
	ip -n "$g" link set eth0 up
done

# --- operators' devices, before any network: a vxlan999 with its own FDB,
# and a vxlan300 that looks like ours but carries no marker.
opdev() {
	ip -n "$1" link add vxlan999 type vxlan id 999 dstport 4789 local "$2" dev ul0 nolearning
	ip netns exec "$1" bridge fdb append 00:00:00:00:00:00 dev vxlan999 dst 10.88.0.99
	ip -n "$1" link add vxlan300 type vxlan id 300 dstport 4789 local "$2" dev ul0 nolearning
}
opdev "$D" 10.88.0.1
opdev "${H[1]}" 10.88.0.11
opstate() {
	local d
	for d in vxlan999 vxlan300; do
		ip -n "$1" -d -o link show "$d" | sed 's/ *\\ *$//'
		ip netns exec "$1" bridge fdb show dev "$d" | sort
	done
}
op_before_D=$(opstate "$D"); op_before_H1=$(opstate "${H[1]}")

# --- hvd in D
mkdir -p "$T/boot"
for f in xen vmlinuz initramfs; do head -c 4096 /dev/urandom > "$T/boot/$f"; done
cat > "$T/hvd.conf" <<CONF
state-dir $T/state
api-socket $T/hvd.sock
api-socket-mode 0600
agent-listen 10.88.0.1:8471
agent-heartbeat-ms 500
boot-root $T/boot
boot-http-listen 10.88.0.1:8080
boot-server 10.88.0.1
lab-auto-adopt yes
mesh-anchor on
log-level debug
CONF
export HVCTL_SOCKET=$T/hvd.sock
start_hvd() {
	start_hvd_in "$D" 15 || { cat "$T/hvd.log"; echo "hvd did not start"; exit 1; }
}
start_hvd
expect "hvd's privileged helper is up (anchor not disabled)" "$(grep -c 'anchor is disabled' "$T/hvd.log" || true)" 0

# --- each machine boots: stage 2 (auto-adopted), overlay, real agent
B=http://10.88.0.1:8080
NAME=(); AGENT=()
start_agent() {
	bg "${H[$1]}" "$T/agent$1.log" "$HV_AGENT" -d -v -f "$T/m$1/root/etc/hv/agent.conf"
	AGENT[$1]=$LAST_PID
}
for i in 1 2 3; do
	mac=52:54:00:88:00:0$i uuid=6b1d7c3e-0a5f-4e2b-9c1d-00000000000$i
	ip netns exec "${H[i]}" curl -s -o "$T/stage2.$i" \
		"$B/boot/ipxe?mac=${mac//:/-}&uuid=${uuid^^}&buildarch=x86_64"
	NAME[i]=$(hosts_json | field '[h["name"] for h in d["hosts"] if h["boot_mac"] == "'$mac'"][0]')
	expect "m$i auto-adopted at stage 2 as node-<6 hex>" "${NAME[i]}" 'node-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
	url=$(grep '^module' "$T/stage2.$i" | grep -o 'apkovl=[^ ]*' | head -1 | cut -d= -f2- | sed -e "s/{MAC}/$mac/" -e "s/{UUID}/$uuid/")
	mkdir -p "$T/m$i/root"
	ip netns exec "${H[i]}" curl -sf -o "$T/m$i/ovl.tar.gz" "$url" || { cat "$T/stage2.$i"; echo "m$i: overlay fetch failed: $url"; exit 1; }
	tar -zxf "$T/m$i/ovl.tar.gz" -C "$T/m$i/root"
	c=$T/m$i/root/etc/hv/agent.conf
	expect "m$i: overlay names hvd's agent address" "$(grep '^hvd ' "$c")" 'hvd 10.88.0.1:8471'
	sed -i -e '/^\(key-file\|session-file\|mesh-file\|mesh-interval\) /d' "$c"
	{
		echo "key-file $T/m$i/root/etc/hv/agent.key"
		echo "session-file $T/m$i/session"
		echo "mesh-file $T/m$i/root/etc/hv/mesh.json"
		echo "mesh-interval 2"
	} >> "$c"
	start_agent "$i"
done
all_up() { [ "$(hosts_json | field 'sorted(h["state"] for h in d["hosts"])')" = "['up', 'up', 'up']" ]; }
expect "all 3 hosts up (s)" "$(wait_for 20 all_up || true)" '[0-9]*.[0-9]'
expect_underlay() {
	expect_eq "underlay IPs are the stage-2 addresses" \
		"$(hosts_json | field 'sorted(h["underlay_ip"] for h in d["hosts"])')" \
		"['10.88.0.11', '10.88.0.12', '10.88.0.13']"
}
expect_underlay

# zero_dsts NS VNI: the all-zero (flood) entries' destinations, sorted.
zero_dsts() {
	ip netns exec "$1" bridge fdb show dev "vxlan$2" 2>/dev/null |
		awk '$1 == "00:00:00:00:00:00" { for (i = 2; i < NF; i++) if ($i == "dst") print $(i + 1) }' |
		sort | tr '\n' ' '
}
# flood_is NS VNI WANT: for wait_for.
flood_is() { [ "$(zero_dsts "$1" "$2")" = "$3" ]; }
ALL3="10.88.0.11 10.88.0.12 10.88.0.13 "
# others I: what host I floods to in prod (the other two and the anchor).
others() {
	local j out="10.88.0.1 "
	for j in 1 2 3; do [ "$j" = "$1" ] || out+="10.88.0.1$j "; done
	echo "$out"
}

# --- prod: every host
t0=$(date +%s.%N)
"$HVCTL" net create prod --vni 100 >/dev/null
for i in 1 2 3; do
	expect "m$i: vxlan100 floods to the other two and the anchor (s)" \
		"$(wait_for 10 flood_is "${H[i]}" 100 "$(others "$i")" || true)" '[0-9]*.[0-9]'
done
expect "anchor: vxlan100 floods to the 3 hosts (s)" "$(wait_for 10 flood_is "$D" 100 "$ALL3" || true)" '[0-9]*.[0-9]'
printf 'figure: net create to all 4 meshes programmed: %.2f s\n' "$(echo "$(date +%s.%N) - $t0" | bc)"
d=$(ip -n "${H[2]}" -d link show vxlan100)
expect "m2 vxlan100: VNI, local, dstport, nolearning, marker" "$d" "*vxlan id 100 local 10.88.0.12 dev ul0 *dstport 4789 nolearning*alias hv-mesh*"
expect "anchor vxlan100: local is hvd's boot address" "$(ip -n "$D" -d link show vxlan100)" "*vxlan id 100 local 10.88.0.1 *alias hv-mesh*"
for i in 1 2 3; do ip -n "${H[i]}" link set vm0 master br100 up; done

for p in "1 2" "1 3" "2 3" "3 1"; do
	read -r a b <<<"$p"
	expect "guest $a pings guest $b over the mesh" \
		"$(ip netns exec "${G[a]}" ping -c 2 -W 2 -q "192.168.100.$b" >/dev/null 2>&1 && echo ok)" ok
done
pk=$(ip netns exec "$U" nft list chain bridge hvm vxfwd | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
expect "UDP/4789 crossed the underlay bridge (packets)" "$pk" '[1-9]*'

# The anchor's bridge reaches every host.
ip -n "$D" addr add 192.168.100.254/24 dev br100
ip -n "$D" link set br100 up
for i in 1 2 3; do
	expect "hvd's br100 pings guest $i" \
		"$(ip netns exec "$D" ping -c 2 -W 2 -q "192.168.100.$i" >/dev/null 2>&1 && echo ok)" ok
done

net_json() { "$HVCTL" --json net show "$1"; }
synced3() { [ "$(net_json prod | field 'sorted(m["sync"]["state"] for m in d["members"])')" = "['synced', 'synced', 'synced']" ]; }
wait_for 10 synced3 >/dev/null || true
expect_eq "net show prod: 3 members, VTEPs, up, synced" \
	"$(net_json prod | field 'sorted((m["host"], m["vtep"], m["state"], m["sync"]["state"]) for m in d["members"])')" \
	"$(python3 -c 'import sys; print(sorted(zip(sys.argv[1:4], ["10.88.0.11", "10.88.0.12", "10.88.0.13"], ["up"] * 3, ["synced"] * 3)))' "${NAME[1]}" "${NAME[2]}" "${NAME[3]}")"
expect_eq "net show prod: the anchor, synced at 10.88.0.1" \
	"$(net_json prod | field '(d["anchor"]["state"], d["anchor"]["ip"])')" "('synced', '10.88.0.1')"
expect "hvctl net show (text) names the anchor" "$("$HVCTL" net show prod)" '*hvd anchor)*10.88.0.1*synced*'

# --- ops: two explicit members
"$HVCTL" net create ops --vni 200 --member "${NAME[1]}" --member "${NAME[2]}" >/dev/null
expect "m1: vxlan200 floods to m2 and the anchor (s)" "$(wait_for 10 flood_is "${H[1]}" 200 "10.88.0.1 10.88.0.12 " || true)" '[0-9]*.[0-9]'
expect "m2: vxlan200 floods to m1 and the anchor (s)" "$(wait_for 10 flood_is "${H[2]}" 200 "10.88.0.1 10.88.0.11 " || true)" '[0-9]*.[0-9]'
expect "anchor: vxlan200 floods to m1 and m2 (s)" "$(wait_for 10 flood_is "$D" 200 "10.88.0.11 10.88.0.12 " || true)" '[0-9]*.[0-9]'
synced_ops() { [ "$(net_json ops | field '[m["sync"]["state"] for m in d["members"]]')" = "['synced', 'synced']" ]; }
wait_for 10 synced_ops >/dev/null || true
expect_eq "net show ops: exactly m1 and m2" "$(net_json ops | field 'sorted(m["host"] for m in d["members"])')" \
	"$(python3 -c 'import sys; print(sorted(sys.argv[1:3]))' "${NAME[1]}" "${NAME[2]}")"
# m3 applied the pass that followed ops (it is synced), and got no VNI 200.
expect "after ops: m3 synced again (s)" "$(wait_for 10 synced3 || true)" '[0-9]*.[0-9]'
expect "m3 has no vxlan200/br200" "$(ip -n "${H[3]}" -o link show | grep -cE ' (vxlan200|br200)[:@]' || true)" 0
expect "m3's vxlan100 still floods to all" "$(zero_dsts "${H[3]}" 100)" "$(others 3)"

# --- a host leaves: m3's agent dies; hvd marks it down after 3 heartbeats
t0=$(date +%s.%N)
kill -9 "${AGENT[3]}"; wait "${AGENT[3]}" 2>/dev/null || true
expect "m3 gone from m1's flood list (s)" "$(wait_for 10 flood_is "${H[1]}" 100 "10.88.0.1 10.88.0.12 " || true)" '[0-9]*.[0-9]'
t=$(echo "$(date +%s.%N) - $t0" | bc)
printf 'figure: agent killed to m3 leaving m1'"'"'s flood list: %.2f s\n' "$t"
# The last frame came up to one heartbeat before the kill: 1.0-1.5 s.
expect "not before 3 missed heartbeats (>= 1.0 s)" "$(echo "$t >= 1.0" | bc)" 1
expect "soon after them (< 3 s)" "$(echo "$t < 3" | bc)" 1
expect "m3 gone from m2's flood list (s)" "$(wait_for 5 flood_is "${H[2]}" 100 "10.88.0.1 10.88.0.11 " || true)" '[0-9]*.[0-9]'
expect "m3 gone from the anchor's flood list (s)" "$(wait_for 5 flood_is "$D" 100 "10.88.0.11 10.88.0.12 " || true)" '[0-9]*.[0-9]'
expect "hvd lists m3 down" "$(hosts_json | field '[h["state"] for h in d["hosts"] if h["name"] == "'"${NAME[3]}"'"][0]')" down
expect "net show prod: m3 offline" "$(net_json prod | field '[m["sync"]["state"] for m in d["members"] if m["host"] == "'"${NAME[3]}"'"][0]')" offline
expect "guest 1 still pings guest 2" "$(ip netns exec "${G[1]}" ping -c 1 -W 2 -q 192.168.100.2 >/dev/null 2>&1 && echo ok)" ok
# m3 comes back: a new agent with the same key (its token is spent).
start_agent 3
expect "m3 back in m1's flood list (s)" "$(wait_for 15 flood_is "${H[1]}" 100 "$(others 1)" || true)" '[0-9]*.[0-9]'
expect "m3 back in the anchor's flood list (s)" "$(wait_for 5 flood_is "$D" 100 "$ALL3" || true)" '[0-9]*.[0-9]'
expect "all 3 up again" "$(all_up && echo yes)" yes

# --- drift: an entry deleted by hand on m2 comes back within mesh-interval
wait_for 10 synced3 >/dev/null || true
ip netns exec "${H[2]}" bridge fdb del 00:00:00:00:00:00 dev vxlan100 dst 10.88.0.11
expect "hand-deleted entry is gone" "$(zero_dsts "${H[2]}" 100)" "10.88.0.1 10.88.0.13 "
t=$(wait_for 6 flood_is "${H[2]}" 100 "$(others 2)" || true)
expect "m2's agent restored it (s)" "$t" '[0-9]*.[0-9]'
expect "within one mesh-interval (<= 2.5 s)" "$(echo "${t/timeout/99} <= 2.5" | bc)" 1
expect "m2's agent logged the repair" "$(grep -c 'repaired drift' "$T/agent2.log" || true)" '[1-9]*'

# --- hvd restarts: nothing is deleted, re-created or flapped
ifx() {
	local d
	for d in vxlan100 br100 vxlan200 br200; do
		printf '%s=%s ' "$d" "$(ip -n "$1" -o link show "$d" 2>/dev/null | cut -d: -f1)"
	done
}
fdbset() { ip netns exec "$1" bridge fdb show | grep -E 'dev (vxlan100|vxlan200) ' | sort; }
NSS=("$D" "${H[1]}" "${H[2]}" "${H[3]}")
declare -A IFX FDB
for ns in "${NSS[@]}"; do
	IFX[$ns]=$(ifx "$ns"); FDB[$ns]=$(fdbset "$ns")
	bg "$ns" "$T/mon-fdb-$ns.txt" bridge monitor fdb
	bg "$ns" "$T/mon-link-$ns.txt" ip monitor link
done
expect "m1 before the restart: vxlan200 present" "${IFX[${H[1]}]}" '*vxlan200=[0-9]*'
sleep 0.5
lines=$(wc -l < "$T/hvd.log")
kill "$HVD_PID"; wait "$HVD_PID" 2>/dev/null || true
t0=$(date +%s.%N)
start_hvd
connected3() { [ "$(hosts_json | field 'sorted(h.get("live", {}).get("connected") for h in d["hosts"])')" = "[True, True, True]" ]; }
t=$(wait_for 25 connected3 || true)
expect "agents reconnected after the restart (s)" "$t" '[0-9]*.[0-9]'
printf 'figure: hvd restart to 3 agents reconnected: %.2f s\n' "$(echo "$(date +%s.%N) - $t0" | bc)"
expect "after the restart: 3 members synced (s)" "$(wait_for 10 synced3 || true)" '[0-9]*.[0-9]'
expect "after the restart: the anchor synced" "$(net_json prod | field 'd["anchor"]["state"]')" synced
# One more reconcile round on every agent.
sleep 2.5
for ns in "${NSS[@]}"; do
	expect_eq "$ns: ifindexes unchanged" "$(ifx "$ns")" "${IFX[$ns]}"
	expect_eq "$ns: FDB of vxlan100/vxlan200 unchanged" "$(fdbset "$ns")" "${FDB[$ns]}"
	expect "$ns: no FDB entry deleted during the restart" "$(grep -c '^Deleted' "$T/mon-fdb-$ns.txt" || true)" 0
	expect "$ns: no link deleted during the restart" "$(grep -c '^Deleted' "$T/mon-link-$ns.txt" || true)" 0
done
expect "no host went down during the restart" "$(tail -n +"$((lines + 1))" "$T/hvd.log" | grep -c 'down: missed' || true)" 0
expect "hvd's br100 still pings guest 2" "$(ip netns exec "$D" ping -c 1 -W 2 -q 192.168.100.2 >/dev/null 2>&1 && echo ok)" ok

# --- operators' devices: untouched throughout
expect_eq "hvd's namespace: vxlan999 and vxlan300 unchanged (ifindex, config, FDB)" "$(opstate "$D")" "$op_before_D"
expect_eq "m1: vxlan999 and vxlan300 unchanged (ifindex, config, FDB)" "$(opstate "${H[1]}")" "$op_before_H1"
expect "m1: the operator's vxlan300 got no marker, no master" "$(ip -n "${H[1]}" -d link show vxlan300 | grep -cE 'alias|master' || true)" 0

expect "no sanitizer report from hvd or the agents" \
	"$(sanitizer_reports "$T"/hvd.log "$T"/agent*.log)" 0
finish
