# SPDX-License-Identifier: AGPL-3.0-or-later
# The rack's VM tests' shared setup and probes (sourced by vms.sh and
# migrate.sh after netns/lib.sh): the lab's environment in a fresh
# namespace named $lab_ns$SUFFIX, and functions that read hvctl, hvd's
# records, the anchor's FDB and the dom0s.
: "${lab_ns:?set lab_ns before sourcing vmlib.sh}"
e2e=${HV_E2E_DIR:-$top/build/e2e}
export HV_LAB_DIR=$T/lab HV_LAB_NS=$lab_ns$SUFFIX HVD HVCTL HV_AGENT
export HV_NODE_IMAGE=$e2e/node-image
export HVCTL_SOCKET=$HV_LAB_DIR/hvd.sock
lab() { bash "$top/packaging/lab/lab.sh" "$@"; }
trap 'lab down >/dev/null 2>&1 || true; netns_cleanup' EXIT
L=$HV_LAB_DIR
XL=/usr/lib/xen-4.17/bin/xl

mac_of() { printf '52:54:00:77:00:%02x' "$1"; }
serial() { tr -d '\r' 2>/dev/null < "$L/node$1.serial"; }
nsx() { ip netns exec "$HV_LAB_NS" "$@"; }
lease_of() { sqlite3 "$L/state/hvd.db" "SELECT ip FROM dhcp_leases WHERE mac = '$(mac_of "$1")'" 2>/dev/null; }
# run I CMD: lab.sh run's output, then "rc=N".
run() { local o r=0; o=$(lab run "$1" "$2" 90 2>&1) || r=$?; printf '%s\nrc=%s\n' "$o" "$r"; }
field() { "$HVCTL" --json vm show "$1" 2>/dev/null | python3 -c "import json,sys; v=json.load(sys.stdin); print(v.get('$2', ''))" 2>/dev/null; }
vm_mac() { "$HVCTL" --json vm show "$1" 2>/dev/null | python3 -c "import json,sys; print(json.load(sys.stdin)['nics'][0]['mac'])" 2>/dev/null; }
vm_count() { "$HVCTL" vm list 2>/dev/null | awk 'NR > 1' | wc -l; }
# The outcome line of the guest's newest boot on its console.
ping_line() {
	"$HVCTL" vm console "$1" 2>/dev/null | tr -d '\r' |
	    awk '/hv-guest: up / {r = ""} /hv-guest: ping / {r = substr($0, index($0, "hv-guest: ping"))} END {print r}'
}
pinged() { [ -n "$(ping_line "$1")" ]; }
anchor_fdb() { bridge -n "$HV_LAB_NS" fdb show dev vxlan100 2>/dev/null; }
fdb_dst() { anchor_fdb | awk -v m="$1" '$1 == m {for (f = 2; f < NF; f++) if ($f == "dst") print $(f + 1)}'; }
no_fdb() { [ -z "$(fdb_dst "$1")" ]; }
# The domains (as "name=domid ...", dom0 left out) machine I runs, from
# xl list typed into its dom0 console.
host_doms() {
	local o
	o=$(lab run "$1" "$XL list" 60 2>/dev/null) || { echo "(xl list failed)"; return 0; }
	echo "$o" | awk '$1 != "Name" && $1 != "Domain-0" && NF >= 6 {print $1 "=" $2}' | sort | tr '\n' ' ' | sed 's/ $//'
}
no_doms() { [ -z "$(host_doms "$1")" ]; }
vm_state() { "$HVCTL" vm list 2>/dev/null | awk -v n="$1" 'NR > 1 && $1 == n {print $3}'; }
state_is() { [ "$(vm_state "$1")" = "$2" ]; }

# The rack: two hosts up and adopted (h[i], ip[i]), network "prod" (VNI
# 100) synced everywhere, and the test guest's kernel and initramfs added
# as images guest-kernel and guest-initrd.
rack_up() {
	mkdir -p "$L"
	lab up 2 > "$T/lab.log" 2>&1 || { cat "$T/lab.log"; exit 1; }
	t=$(wait_for 600 lab wait-up 2 0 || true)
	expect "both hosts up in hvctl host list (s)" "$t" '[0-9]*.[0-9]'
	for i in 1 2; do
		h[$i]=$(sqlite3 "$L/state/hvd.db" "SELECT name FROM hosts WHERE boot_mac = '$(mac_of "$i")'" 2>/dev/null)
		ip[$i]=$(lease_of "$i")
		expect "node$i: adopted as a host with an address" "${h[$i]} ${ip[$i]}" '?* 10.77.0.1[0-9][0-9]'
	done
	"$HVCTL" net create prod --vni 100 >/dev/null
	synced() { [ "$("$HVCTL" net show prod | awk '$NF == "synced"' | wc -l)" -eq 3 ]; }
	t=$(wait_for 60 synced || true)
	expect "network 100 synced on the anchor and both hosts (s)" "$t" '[0-9]*.[0-9]'

	HV_DEB_CACHE=$HV_NODE_IMAGE/cache bash "$top/packaging/node-image/guest.sh" "$e2e/guest" > "$T/guest.log" 2>&1 ||
	    { cat "$T/guest.log"; exit 1; }
	expect "image add: the guest kernel" \
	    "$("$HVCTL" image add guest-kernel "$e2e/guest/vmlinuz" --kind kernel 2>&1)" 'image guest-kernel: kernel*'
	expect "image add: the guest initramfs" \
	    "$("$HVCTL" image add guest-initrd "$e2e/guest/initramfs" --kind initramfs 2>&1)" 'image guest-initrd: initramfs*'
}
