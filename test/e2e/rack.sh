#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The virtual rack end to end: packaging/lab/lab.sh starts hvd in its own
# namespace and two QEMU machines (TCG) that netboot from it through iPXE
# into Xen with the node image (packaging/node-image) as dom0.
#
# Checked for every machine, from its serial log and hvd's records: Xen
# booted, dom0 is the control domain, the Xen daemons started, DHCP gave
# the address hvd leased, and the overlay fetch went to the URL with the
# machine's own {UUID} and {MAC} filled in.
#
# HV_RACK_OVERLAY picks where overlays come from:
#   hvd (default): both machines get hvd's own overlays; lab-auto-adopt
#       adopts them.  Then a VXLAN network spans both hosts and hvd's
#       anchor, and a killed host comes back as the same host.
#   handmade: machine 2 gets a hand-made overlay built by "lab.sh overlay"
#       from hvctl host add's credentials (tests the image without hvd's
#       overlays); machine 1's overlay is not judged.
# For every machine with an overlay: it is applied (hostname), hv-agent
# registers and the host is up in hvctl host list, its telemetry shows
# Xen; killed, it goes down; booted again, it gets the same address.
# Mesh traffic (hvd mode): br100 in each dom0 gets an address typed on its
# serial console (lab.sh run), hvd's anchor br100 one in the namespace;
# node1 pings node2 over VXLAN (the output and status read back from the
# serial log), the anchor pings both, nft counters on br-lab see UDP/4789
# forwarded between the machines and delivered to the anchor, and an
# address nobody holds does not answer.  After the reboot the anchor
# reaches the rebuilt vxlan100 again.
# shellcheck source=../netns/lib.sh
. "$(dirname "$0")/../netns/lib.sh"
: "${HVD:?}" "${HVCTL:?}" "${HV_AGENT:?}"
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
need_cmd qemu-system-x86_64 sqlite3 python3 nft -- the lab, its records, typing into consoles, counting VXLAN
mode=${HV_RACK_OVERLAY:-hvd}
case $mode in handmade | hvd) ;; *) echo "HV_RACK_OVERLAY must be handmade or hvd"; exit 2 ;; esac

export HV_LAB_DIR=$T/lab HV_LAB_NS=hvrack$SUFFIX HVD HVCTL HV_AGENT
export HV_NODE_IMAGE=${HV_E2E_DIR:-$top/build/e2e}/node-image
export HVCTL_SOCKET=$HV_LAB_DIR/hvd.sock
lab() { bash "$top/packaging/lab/lab.sh" "$@"; }
trap 'lab down >/dev/null 2>&1 || true; netns_cleanup' EXIT
L=$HV_LAB_DIR

mac_of() { printf '52:54:00:77:00:%02x' "$1"; }
uuid_of() { printf '00000000-0000-4000-8000-0000007700%02x' "$1"; }
serial() { tr -d '\r' 2>/dev/null < "$L/node$1.serial"; }
has() { serial "$1" | grep -aq -- "$2"; }
# since_start I: seconds since machine I's QEMU started.
since_start() { printf '%.1f' "$(echo "$(date +%s.%N) - $(cat "$L/node$1.started")" | bc)"; }
# wait_marker I TEXT SECS: prints the seconds from QEMU start, or "timeout".
wait_marker() {
	local end=$(( $(date +%s) + $3 ))
	until has "$1" "$2"; do
		[ "$(date +%s)" -ge "$end" ] && { echo timeout; return 0; }
		sleep 0.2
	done
	since_start "$1"
}
lease_of() { sqlite3 "$L/state/hvd.db" "SELECT ip FROM dhcp_leases WHERE mac = '$(mac_of "$1")'" 2>/dev/null; }
state_of() { "$HVCTL" host list 2>/dev/null | awk -v n="$1" 'NR > 1 && $1 == n {print $2}'; }

# --- up --------------------------------------------------------------
handmade=
[ "$mode" = handmade ] && handmade=2
mkdir -p "$L"
HV_LAB_HANDMADE=$handmade lab up 0 > "$T/lab.log" 2>&1 || { cat "$T/lab.log"; exit 1; }
if [ "$mode" = handmade ]; then
	lab overlay 2 rack2 >> "$T/lab.log" 2>&1 || { cat "$T/lab.log"; exit 1; }
	names=([2]=rack2)
fi
# UDP/4789 on the underlay: forwarded from machine to machine, and
# delivered to hvd's anchor (br-lab's own address).
nsx() { ip netns exec "$HV_LAB_NS" "$@"; }
nsx nft add table bridge hvrack
nsx nft add chain bridge hvrack vxfwd '{ type filter hook forward priority 0; }'
nsx nft add rule bridge hvrack vxfwd udp dport 4789 counter
nsx nft add chain bridge hvrack vxin '{ type filter hook input priority 0; }'
nsx nft add rule bridge hvrack vxin udp dport 4789 counter
vxlan_pkts() { nsx nft list chain bridge hvrack "$1" | sed -n 's/.*counter packets \([0-9]*\).*/\1/p'; }
lab start 1 >> "$T/lab.log"
lab start 2 >> "$T/lab.log"

for i in 1 2; do
	t=$(wait_marker "$i" 'hv-node: dom0 up' 300)
	echo "node$i: dom0 up after $t s (QEMU start to init's marker, 2 machines at once, $(cat "$L/accel"))"
	expect "node$i: dom0 up" "$t" '[0-9]*.[0-9]'
done
for i in 1 2; do
	t=$(wait_marker "$i" 'hv-node: boot complete' 120)
	expect "node$i: init completed its boot" "$t" '[0-9]*.[0-9]'
	expect "node$i: iPXE loaded Xen from hvd" "$(serial "$i" | grep -ac '(XEN) Xen version 4.17')" '[1-9]*'
	expect "node$i: dom0 is Xen's control domain" "$(serial "$i" | grep -a 'hv-node: xen capabilities:')" \
	    'hv-node: xen capabilities: control_d'
	expect "node$i: no dom0 failure" "$(serial "$i" | grep -ac 'hv-node: dom0 failed')" 0
	ip=$(lease_of "$i")
	expect "node$i: hvd leased an address" "$ip" '10.77.0.1[0-9][0-9]'
	expect "node$i: DHCP on the boot NIC got hvd's lease" \
	    "$(serial "$i" | grep -a -o "hv-node: dhcp on eth0 ($(mac_of "$i")): [0-9.]*" | tail -n 1)" \
	    "hv-node: dhcp on eth0 ($(mac_of "$i")): $ip"
	base=http://10.77.0.1:80
	[ "$i" = "$handmade" ] && base=http://10.77.0.1:8080
	expect "node$i: fetched the overlay at its own {UUID}/{MAC}" \
	    "$(serial "$i" | grep -a -o 'hv-node: overlay [a-z]*: [^ ]*\.gz' | head -n 1)" \
	    "hv-node: overlay @(fetched|failed): $base/ovl/$(uuid_of "$i")/$(mac_of "$i").apkovl.tar.gz"
done
if [ "$mode" = handmade ]; then
	agents=(2)
else
	agents=(1 2)
	expect "hvd accepted lab-auto-adopt" "$(grep -c '^lab-auto-adopt yes' "$L/hvd.conf")" 1
	# hvd names auto-adopted hosts itself: find them by boot MAC.
	for i in 1 2; do
		names[$i]=$(sqlite3 "$L/state/hvd.db" "SELECT name FROM hosts WHERE boot_mac = '$(mac_of "$i")'" 2>/dev/null)
		expect "node$i: hvd adopted the machine" "${names[$i]}" '?*'
		expect "node$i: hvd served the overlay" "$(serial "$i" | grep -ac 'hv-node: overlay fetched: http://10.77.0.1:80/')" 1
	done
fi

# --- the agents ------------------------------------------------------
for i in "${agents[@]}"; do
	n=${names[$i]}
	expect "node$i: overlay applied" "$(serial "$i" | grep -ac 'hv-node: overlay applied')" 1
	expect "node$i: hostname from the overlay" "$(serial "$i" | grep -a 'hv-node: hostname' | tail -n 1)" \
	    "hv-node: hostname $n"
	expect "node$i: networking and hv-agent started" \
	    "$(serial "$i" | grep -a 'hv-node: services started:' | tail -n 1)" '*networking*hv-agent*'
done
t=$(wait_for 120 lab wait-up "${#agents[@]}" 0 || true)
expect "${#agents[@]} host(s) up in hvctl host list (s)" "$t" '[0-9]*.[0-9]'
for i in "${agents[@]}"; do
	n=${names[$i]}
	expect "node$i: $n is up" "$(state_of "$n")" up
	expect "node$i: $n's telemetry shows Xen 4.17" \
	    "$("$HVCTL" --json host telemetry "$n" | grep -o '"xen_version": "[0-9.]*"')" '"xen_version": "4.17*"'
	expect "node$i: $n's facts carry the SMBIOS UUID" \
	    "$("$HVCTL" --json host call "$n" facts.refresh | grep -o '"product_uuid": "[^"]*"')" \
	    "\"product_uuid\": \"$(uuid_of "$i")\""
done

# --- the mesh --------------------------------------------------------
# A network on every host: each agent and hvd's anchor (in the lab's
# namespace) build vxlan100; the anchor floods to every host's VTEP.
vteps() { bridge -n "$HV_LAB_NS" fdb show dev vxlan100 2>/dev/null | awk '$1 == "00:00:00:00:00:00" {for (f = 2; f < NF; f++) if ($f == "dst") print $(f + 1)}' | sort | tr '\n' ' '; }
if [ "$mode" = hvd ]; then
	"$HVCTL" net create lab --vni 100 >/dev/null
	synced() { [ "$("$HVCTL" net show lab | awk '$NF == "synced"' | wc -l)" -eq 3 ]; }
	t=$(wait_for 60 synced || true)
	expect "mesh: hvd's anchor and both hosts synced network 100 (s)" "$t" '[0-9]*.[0-9]'
	want="$(for i in 1 2; do lease_of "$i"; done | sort | tr '\n' ' ')"
	expect "mesh: the anchor's vxlan100 floods to both hosts' VTEPs" "$(vteps)" "$want"
	# The agent's log reaches the console through a tail -F (about 1 s
	# behind), so hvd may see the network synced before the line shows.
	for i in 1 2; do
		t=$(wait_for 30 has "$i" 'hv-agent: mesh: creating vxlan100' || true)
		expect "node$i: the agent built vxlan100 (s)" "$t" '[0-9]*.[0-9]'
	done

	# Traffic: addresses on the bridges, typed into the dom0 consoles.
	# run I CMD: lab.sh run's output, then "rc=N".
	run() { local o r=0; o=$(lab run "$1" "$2" 90 2>&1) || r=$?; printf '%s\nrc=%s\n' "$o" "$r"; }
	for i in 1 2; do
		expect "node$i: br100 got 192.168.100.1$i/24 through the serial console" \
		    "$(run "$i" "ip addr add 192.168.100.1$i/24 dev br100 && ip -4 -o addr show dev br100")" \
		    "*inet 192.168.100.1$i/24 *rc=0"
	done
	nsx ip addr add 192.168.100.254/24 dev br100
	fwd0=$(vxlan_pkts vxfwd) in0=$(vxlan_pkts vxin)
	out=$(run 1 "ping -c 3 -W 3 192.168.100.12")
	echo "$out" | grep 'packets\|rc=' | sed 's/^/     node1: /'
	expect "mesh: node1's br100 pings node2's (192.168.100.12) over VXLAN" "$out" \
	    "*3 packets transmitted, [123] packets received*rc=0"
	fwd1=$(vxlan_pkts vxfwd)
	expect "mesh: UDP/4789 forwarded between the machines on br-lab (packets)" \
	    "$(( fwd1 - fwd0 ))" '[1-9]*'
	for i in 1 2; do
		expect "mesh: hvd's anchor (192.168.100.254) pings node$i's br100" \
		    "$(nsx ping -c 3 -W 3 "192.168.100.1$i" 2>&1 | grep -o '[0-9]* received')" '[123] received'
	done
	expect "mesh: UDP/4789 delivered to the anchor on br-lab (packets)" \
	    "$(( $(vxlan_pkts vxin) - in0 ))" '[1-9]*'
	expect "mesh: an address nobody holds does not answer node1" \
	    "$(run 1 "ping -c 2 -W 2 192.168.100.99")" "*2 packets transmitted, 0 packets received*rc=1"
fi

# --- failure and return ----------------------------------------------
i=${agents[-1]}
n=${names[$i]}
ip=$(lease_of "$i")
lab kill "$i" >> "$T/lab.log"
down() { [ "$(state_of "$n")" = down ]; }
t=$(wait_for 60 down || true)
expect "node$i: $n is down after its machine was killed (s)" "$t" '[0-9]*.[0-9]'
lab start "$i" >> "$T/lab.log"
t=$(wait_marker "$i" 'hv-node: boot complete' 300)
expect "node$i: booted again" "$t" '[0-9]*.[0-9]'
expect "node$i: the same address after the reboot" \
    "$(serial "$i" | grep -a -o "hv-node: dhcp on eth0 ($(mac_of "$i")): [0-9.]*" | tail -n 1)" \
    "hv-node: dhcp on eth0 ($(mac_of "$i")): $ip"
if [ "$mode" = hvd ]; then
	up() { [ "$(state_of "$n")" = up ]; }
	t=$(wait_for 120 up || true)
	expect "node$i: $n is up again under the same name (s)" "$t" '[0-9]*.[0-9]'
	expect "node$i: a second overlay with fresh credentials for $n" \
	    "$(grep -c "ovl: $n: overlay with fresh credentials" "$L/hvd.log")" 2
	t=$(wait_for 30 has "$i" 'hv-agent: mesh: creating vxlan100' || true)
	expect "node$i: the agent rebuilt vxlan100 after the reboot (s)" "$t" '[0-9]*.[0-9]'
	expect "mesh: the anchor still floods to both VTEPs" "$(vteps)" "$want"
	expect "node$i: br100 got its address again (serial console)" \
	    "$(run "$i" "ip addr add 192.168.100.1$i/24 dev br100 && ip -4 -o addr show dev br100")" \
	    "*inet 192.168.100.1$i/24 *rc=0"
	# The rebooted dom0's br100 has a new MAC: drop the anchor's stale
	# neighbour entry rather than wait out its probes.
	nsx ip neigh flush to "192.168.100.1$i" dev br100
	expect "mesh: the anchor reaches node$i's rebuilt br100" \
	    "$(nsx ping -c 3 -W 3 "192.168.100.1$i" 2>&1 | grep -o '[0-9]* received')" '[123] received'
else
	# The hand-made overlay's boot token was spent by the first boot.
	expect "node$i: fetched its overlay again" "$(serial "$i" | grep -ac 'hv-node: overlay fetched')" 1
fi

echo "hvd log (tail):"; tail -n 12 "$L/hvd.log" | sed 's/^/  | /'
if [ "$failures" -ne 0 ]; then
	for i in 1 2; do echo "--- node$i serial (hv-node lines)"; serial "$i" | grep -a 'hv-node\|hv-agent\|XEN.*[Pp]anic'; done
fi
finish
