#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Hosts enrolled by hand (hvctl host add NAME --out DIR) take their underlay
# from the source address of their agent session, and join their networks.
#
# hvd listens on a dual-stack socket ([::]:8471) in one namespace; four
# "hosts" in others share an underlay bridge: h1 and h2 reach hvd over IPv4
# (a v4-mapped peer on that socket, which must be recorded as IPv4), h3 and
# h4 over IPv6 only.  None of them is loopback and no DHCP lease names
# them.  Checked: each host's underlay_ip is its whole source address; on
# an IPv4 network h1 and h2 flood to each other and to hvd's anchor, and
# ping across VXLAN; on an IPv6 network h3 and h4 build vxlan devices with
# their IPv6 local and ping across VXLAN over IPv6; on a network with all
# four, each host floods only to members of its own address family.
. "$(dirname "$0")/lib.sh"
: "${HVD:?}" "${HVCTL:?}" "${HV_AGENT:?}"
need_cmd bridge curl python3 bc sqlite3 ping

mkns U u
ip -n "$U" link add ubr type bridge
ip -n "$U" link set ubr up
# underlay NS TAG ADDR...: NS's ul0 on the underlay bridge with ADDRs.
underlay() {
	local ns=$1 tag=$2 a; shift 2
	ip link add "ul$SUFFIX" type veth peer name "up$tag$SUFFIX"
	ip link set "ul$SUFFIX" netns "$ns" name ul0
	ip link set "up$tag$SUFFIX" netns "$U"
	ip -n "$U" link set "up$tag$SUFFIX" master ubr up
	# nodad: an IPv6 address usable at once, not after duplicate detection
	for a; do
		case $a in *:*) ip -n "$ns" addr add "$a" dev ul0 nodad ;; *) ip -n "$ns" addr add "$a" dev ul0 ;; esac
	done
	ip -n "$ns" link set ul0 up
}
mkns D d
underlay "$D" 0 10.89.0.1/24 fd89::1/64
H=()
# shellcheck disable=SC2154 # mkns assigns h
for i in 1 2 3 4; do
	mkns h "h$i"; H[i]=$h
done
underlay "${H[1]}" 1 10.89.0.11/24
underlay "${H[2]}" 2 10.89.0.12/24
underlay "${H[3]}" 3 fd89::13/64
underlay "${H[4]}" 4 fd89::14/64

cat > "$T/hvd.conf" <<CONF
state-dir $T/state
api-socket $T/hvd.sock
api-socket-mode 0600
agent-listen [::]:8471
agent-heartbeat-ms 500
boot-server 10.89.0.1
mesh-anchor on
log-level debug
CONF
export HVCTL_SOCKET=$T/hvd.sock
start_hvd_in "$D" 15 || { cat "$T/hvd.log"; echo "hvd did not start"; exit 1; }

underlay_of() { "$HVCTL" --json host show "$1" | field 'd.get("underlay_ip") or ""'; }
state_of() { "$HVCTL" --json host show "$1" | field 'd["state"]'; }

# --- four hosts enrolled by hand, each agent pointed at hvd by family
HVDADDR=([1]=10.89.0.1 [2]=10.89.0.1 [3]=[fd89::1] [4]=[fd89::1])
WANT=([1]=10.89.0.11 [2]=10.89.0.12 [3]=fd89::13 [4]=fd89::14)
for i in 1 2 3 4; do
	"$HVCTL" host add "h$i" --out "$T/h$i" >/dev/null
	expect "h$i: no underlay before its agent speaks" "$(underlay_of "h$i")" ""
	c=$T/h$i/agent.conf
	sed -i "s/^hvd .*/hvd ${HVDADDR[i]}:8471/" "$c"
	{
		echo "session-file $T/h$i/session"
		echo "mesh-file $T/h$i/mesh.json"
		echo "mesh-interval 2"
	} >> "$c"
	bg "${H[i]}" "$T/agent$i.log" "$HV_AGENT" -d -v -f "$c"
done
up() { [ "$(state_of "$1")" = up ]; }
for i in 1 2 3 4; do
	expect "h$i registers (s)" "$(wait_for 15 up "h$i" || true)" '[0-9]*.[0-9]'
	expect "h$i: underlay is its session's source address" "$(underlay_of "h$i")" "${WANT[i]}"
done
expect "the IPv4 peer on the dual-stack socket is recorded as IPv4 (no ::ffff:)" \
	"$(sqlite3 "$T/state/hvd.db" "SELECT count(*) FROM hosts WHERE underlay_ip LIKE '::ffff:%'")" 0

# --- networks: IPv4 only, IPv6 only, and one that spans both families
"$HVCTL" net create v4net --vni 100 --member h1 --member h2 >/dev/null
"$HVCTL" net create v6net --vni 200 --member h3 --member h4 >/dev/null
"$HVCTL" net create mixed --vni 300 --member h1 --member h2 --member h3 --member h4 >/dev/null
flood() { ip netns exec "$1" bridge fdb show dev "$2" 2>/dev/null | awk '$1 == "00:00:00:00:00:00" {print $3}' | sort | tr '\n' ' '; }
flood_is() { [ "$(flood "$1" "$2")" = "$3" ]; }
expect "h1 floods vxlan100 to h2 and the anchor (s)" "$(wait_for 15 flood_is "${H[1]}" vxlan100 '10.89.0.1 10.89.0.12 ' || true)" '[0-9]*.[0-9]'
expect "h2 floods vxlan100 to h1 and the anchor (s)" "$(wait_for 15 flood_is "${H[2]}" vxlan100 '10.89.0.1 10.89.0.11 ' || true)" '[0-9]*.[0-9]'
expect "h3 floods vxlan200 to h4 over IPv6 (s)" "$(wait_for 15 flood_is "${H[3]}" vxlan200 'fd89::14 ' || true)" '[0-9]*.[0-9]'
expect "h4 floods vxlan200 to h3 over IPv6 (s)" "$(wait_for 15 flood_is "${H[4]}" vxlan200 'fd89::13 ' || true)" '[0-9]*.[0-9]'
expect "h3's vxlan200 has its IPv6 local" "$(ip -n "${H[3]}" -d -o link show vxlan200)" '*local fd89::13 *'
expect "mixed: h1 floods only to IPv4 members (s)" "$(wait_for 15 flood_is "${H[1]}" vxlan300 '10.89.0.1 10.89.0.12 ' || true)" '[0-9]*.[0-9]'
expect "mixed: h3 floods only to IPv6 members (s)" "$(wait_for 15 flood_is "${H[3]}" vxlan300 'fd89::14 ' || true)" '[0-9]*.[0-9]'
expect "the anchor floods vxlan100 to h1 and h2" "$(flood "$D" vxlan100)" '10.89.0.11 10.89.0.12 '

# --- traffic across both meshes
for i in 1 2; do ip -n "${H[i]}" addr add "192.168.100.$i/24" dev br100; done
for i in 3 4; do ip -n "${H[i]}" addr add "192.168.200.$i/24" dev br200; done
ip -n "$D" addr add 192.168.100.254/24 dev br100
expect "h1 pings h2 over the IPv4 VXLAN" "$(ip netns exec "${H[1]}" ping -c 3 -W 2 -q 192.168.100.2 | grep -o '[0-9]* received')" '[1-9] received'
expect "the anchor pings h2" "$(ip netns exec "$D" ping -c 2 -W 2 -q 192.168.100.2 | grep -o '[0-9]* received')" '[1-9] received'
expect "h3 pings h4 over the IPv6 VXLAN" "$(ip netns exec "${H[3]}" ping -c 3 -W 2 -q 192.168.200.4 | grep -o '[0-9]* received')" '[1-9] received'
synced4() { [ "$("$HVCTL" --json net show mixed | field 'sorted((m["host"], m["vtep"], m["sync"]["state"]) for m in d["members"])')" = "[('h1', '10.89.0.11', 'synced'), ('h2', '10.89.0.12', 'synced'), ('h3', 'fd89::13', 'synced'), ('h4', 'fd89::14', 'synced')]" ]; }
expect "hvctl net show mixed: each member at its VTEP, synced (s)" "$(wait_for 10 synced4 || true)" '[0-9]*.[0-9]'
expect "no sanitizer report from hvd" "$(sanitizer_reports "$T/hvd.log")" 0
finish
