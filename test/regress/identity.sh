#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Host identity end to end against the real hvd, over loopback: discovery
# by fingerprint, the discovery overlay (no secret), adoption through hvctl,
# the per-boot overlay fetched exactly as Alpine's initramfs fetches it
# (apkovl= from the stage-2 script, {MAC} and {UUID} replaced once each,
# busybox wget, tar -zxf into a root), single use and address binding with
# audit events, a real hv-agent connecting with the overlay's credentials,
# replacement onto new hardware, retirement, and the 4xx table.
# It runs in a network namespace of its own (unshare), so the agent's mesh
# devices, if any, vanish with it.
if [ -z "${HV_IN_NETNS:-}" ]; then
	exec unshare --net env HV_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
. "$(dirname "$0")/lib.sh"
: "${HV_AGENT:?HV_AGENT must point at the hv-agent binary}"

mkdir -p "$T/boot"
head -c 4096 /dev/urandom > "$T/boot/xen"
head -c 4096 /dev/urandom > "$T/boot/vmlinuz"
head -c 4096 /dev/urandom > "$T/boot/initramfs"
write_conf "boot-root $T/boot" "boot-http-listen 127.0.0.1:0" \
	"boot-server 127.0.0.1" "agent-listen 127.0.0.1:0" "agent-heartbeat-ms 500"
start_hvd
status=$(curl -s --unix-socket "$T/hvd.sock" http://localhost/api/v1/status)
BP=$(echo "$status" | sed -n 's/.*"boot_http":"127.0.0.1:\([0-9]*\)".*/\1/p')
B="http://127.0.0.1:$BP"
AGENT_ADDR=$(echo "$status" | sed -n 's/.*"agents":"\([0-9.:]*\)".*/\1/p')

MAC1=52:54:00:aa:00:01 UUID1=8f2c64b4-2d57-4f0d-9a57-2b1b7c3d4e01
MAC2=52:54:00:aa:00:02 UUID2=8f2c64b4-2d57-4f0d-9a57-2b1b7c3d4e02
# stage2 MAC UUID [curl args]: what iPXE asks (MAC as ${mac:hexhyp}).
stage2() { get "${@:3}" "$B/boot/ipxe?mac=${1//:/-}&uuid=${2^^}&serial=S1&product=Lab%20PC&buildarch=x86_64"; }
# alpine_fetch MAC UUID ROOT [curl-ish source address]: Alpine's init.
alpine_fetch() {
	local mac=$1 uuid=$2 root=$3 bind=${4:-} url file
	url=$(grep '^module' "$T/out" | grep -o 'apkovl=[^ ]*' | head -1 | cut -d= -f2-)
	# Substituted once each, as Alpine's sed does (no g flag).
	url=$(echo "$url" | sed -e "s/{MAC}/$mac/" -e "s/{UUID}/$uuid/")
	file=${url##*/}; file=${file%%\?*}
	rm -rf "$root"; mkdir -p "$root"
	if [ -n "$bind" ]; then
		# busybox wget cannot pick a source address; curl stands in for
		# the wrong-address case only.
		curl -sf --interface "$bind" -o "$root/../$file" "$url" || return 1
	else
		(cd "$root/.." && busybox wget -q -O "$file" "$url") || return 1
	fi
	tar -zxf "$root/../$file" -C "$root"
}

# --- discovery
expect "unknown machine: stage 2 is the discovery profile" "$(stage2 $MAC1 $UUID1; grep -c 'booting the discovery profile' "$T/out")" '2001'
FP1=$(hosts_json | field 'd["hosts"][0]["fingerprint"]')
expect_eq "discovered host recorded with its MAC" "$(hosts_json | field '[(h["state"], h["boot_mac"], h["uuid"], h["boot_ip"]) for h in d["hosts"]]')" \
	"[('discovered', '$MAC1', '$UUID1', '127.0.0.1')]"
expect "fingerprint is 64 hex digits" "$(echo "$FP1" | grep -cE '^[0-9a-f]{64}$')" 1
want_fp=$(printf 'hv-fp-v1\n%s\n%s' "$UUID1" "$MAC1" | b2sum -l 256 | cut -d' ' -f1)
expect "fingerprint = BLAKE2b-256 of the README's definition" "$FP1" "$want_fp"
expect "discovery event" "$("$HVCTL" --json status >/dev/null; curl -s --unix-socket "$T/hvd.sock" "http://localhost/api/v1/events?subject=$FP1" | grep -c host.discovered)" 1
alpine_fetch $MAC1 $UUID1 "$T/disc/root"
expect "discovery overlay fetched and unpacked" "$(cat "$T/disc/root/etc/hostname")" "discovered-${FP1:0:8}"
expect "discovery overlay holds no key" "$(ls "$T/disc/root/etc/hv/")" "agent.conf"
expect "discovery overlay holds no boot token" "$(grep -c boot-token "$T/disc/root/etc/hv/agent.conf" || true)" 0
# The discovery agent reports facts.  Never let it reboot this machine.
D=$T/disc/root/etc/hv/agent.conf
sed -i 's/^discovery-reboot yes$/discovery-reboot no/' "$D"
expect "discovery overlay: agent in discovery mode, reboot turned off here" "$(grep -c '^discovery-url http://127.0.0.1:'"$BP"'/boot/discover?mac='"$MAC1"'&uuid='"$UUID1"'$' "$D") $(grep -c '^discovery-reboot no$' "$D")" "1 1"
grep -q '^discovery-reboot no$' "$D" || { echo "refusing to run an agent that could reboot"; exit 1; }
"$HV_AGENT" -d -f "$D" >> "$T/agent-disc.log" 2>&1 &
DISC_PID=$!
for _ in $(seq 1 100); do
	[ "$("$HVCTL" --json host show "$FP1" | field 'd["facts"].get("cpu", {}).get("count", 0) > 0')" = True ] && break
	sleep 0.1
done
kill "$DISC_PID"; wait "$DISC_PID" 2>/dev/null || true
expect "discovery agent's facts refine the record" "$("$HVCTL" --json host show "$FP1" | field '(d["facts"]["cpu"]["count"] > 0, d["state"])')" "(True, 'discovered')"
expect "discover without a MAC: 400" "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"facts":{}}' "$B/boot/discover")" 400
expect "discover with a bad body: 400" "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"facts":1}' "$B/boot/discover?mac=$MAC1")" 400
expect "discovery overlay can be fetched again (no secret)" "$(stage2 $MAC1 $UUID1; alpine_fetch $MAC1 $UUID1 "$T/disc/root" && echo ok)" '200ok'
expect "booting again updates the same record" "$(hosts_json | field 'len(d["hosts"])')" 1

# --- adoption and its refusals
"$HVCTL" net create prod --vni 100 >/dev/null
set +e
"$HVCTL" host adopt 52:54:00:99:99:99 --name h1 >/dev/null 2>"$T/err"; rc=$?
expect "adopt unknown MAC: exit 5, 404 message" "$rc $(cat "$T/err")" "5 *no machine with MAC '52:54:00:99:99:99' has booted*"
"$HVCTL" host adopt 52:54:00:zz:00:01 --name h1 >/dev/null 2>"$T/err"; rc=$?
expect "adopt invalid MAC: exit 5, names it" "$rc $(cat "$T/err")" "5 *neither a fingerprint*nor a MAC*"
"$HVCTL" host adopt $MAC1 --name h1 --net 4242 >/dev/null 2>"$T/err"; rc=$?
expect "adopt with an unknown VNI: exit 5" "$rc $(cat "$T/err")" "5 *no network has VNI 4242*"
"$HVCTL" host adopt $MAC1 --name H_1 >/dev/null 2>"$T/err"; rc=$?
expect "adopt with an invalid name: exit 5" "$rc $(cat "$T/err")" "5 *field 'name'*"
expect_eq "invalid VNI in the body: 400" "$(sock POST /api/v1/hosts/$MAC1/adopt '{"name":"h1","networks":[0]}')" '400 {"error":"networks[0]: a VNI must be an integer in 1..16777215"}'
set -e
echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeyForTestOnly admin@lab" > "$T/keys"
expect "adopt by MAC" "$("$HVCTL" host adopt $MAC1 --name h1 --net 100 --label rack=r1 --ssh-keys "$T/keys" --mount LABEL=scratch:/var/lib/hv:ext4)" \
	"adopted h1: adopted, fingerprint ${FP1:0:16}..., underlay 127.0.0.1"
set +e
"$HVCTL" host adopt $MAC1 --name h2 >/dev/null 2>"$T/err"; rc=$?
expect "adopting twice: 409" "$rc $(cat "$T/err")" "5 *is adopted, not discovered*"
set -e
expect_eq "host show by fingerprint" "$("$HVCTL" --json host show "$FP1" | field '(d["name"], d["networks"], d["labels"], d["mounts"][0]["path"])')" \
	"('h1', [100], {'rack': 'r1'}, '/var/lib/hv')"

expect "a discovery agent learns it was adopted" "$(curl -s -X POST -d '{"facts":{}}' "$B/boot/discover?mac=$MAC1&uuid=$UUID1")" '{"state":"adopted","name":"h1","fingerprint":"'"$FP1"'"}'
# --- the per-boot overlay: bound to the booting address, served once
expect "adopted machine: stage 2 for h1" "$(stage2 $MAC1 $UUID1; sed -n 2p "$T/out")" '200# hypervisor stage 2 for host h1*'
expect "fetch from another address: refused" "$(alpine_fetch $MAC1 $UUID1 "$T/h1/root" 127.0.0.2 && echo served || echo refused)" refused
expect "refused fetch audited" "$(curl -s --unix-socket "$T/hvd.sock" 'http://localhost/api/v1/events?subject=h1' | grep -o 'overlay refused to 127.0.0.2[^"]*')" \
	'overlay refused to 127.0.0.2: the overlay goes only to the address that booted this host'
# The site's repository keys (alpine-mirror/keys) go into the overlay.
mkdir -p "$T/state/alpine/keys"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null |
	openssl pkey -pubout > "$T/state/alpine/keys/dev@site-5f3c8a2b.rsa.pub"
echo "ssh-rsa AAAA not a PEM" > "$T/state/alpine/keys/bad.rsa.pub"
alpine_fetch $MAC1 $UUID1 "$T/h1/root"
R=$T/h1/root
expect_eq "overlay: the site's repository key in etc/apk/keys, as it is" \
	"$(cmp -s "$R/etc/apk/keys/dev@site-5f3c8a2b.rsa.pub" "$T/state/alpine/keys/dev@site-5f3c8a2b.rsa.pub" && echo same) $(ls "$R/etc/apk/keys" | tr '\n' ' ')" \
	"same dev@site-5f3c8a2b.rsa.pub "
expect "overlay: a key file that is not a PEM key is left out, with a warning" \
	"$(grep -c "bad.rsa.pub left out of overlays: not a PEM public key" "$T/hvd.log")" '[1-9]*'
expect_eq "overlay: apk's repositories, the site's after Alpine's" "$(cat "$R/etc/apk/repositories")" \
	"$B/alpine/main
$B/alpine/community
$B/alpine/hypervisor"
expect "overlay: hostname" "$(cat "$R/etc/hostname")" h1
expect "overlay: agent key 0600" "$(stat -c %a "$R/etc/hv/agent.key")" 600
expect "overlay: agent.conf names the host and hvd" "$(grep -E '^(host|hvd) ' "$R/etc/hv/agent.conf" | sort | tr '\n' ' ')" "host h1 hvd $AGENT_ADDR "
expect "overlay: a boot token" "$(grep -c '^boot-token hvb_' "$R/etc/hv/agent.conf")" 1
expect_eq "overlay: mesh.json names VNI 100" "$(field '[n["vni"] for n in d["networks"]]' < "$R/etc/hv/mesh.json")" '[100]'
expect "overlay: authorized_keys" "$(cat "$R/root/.ssh/authorized_keys")" "$(cat "$T/keys")"
expect "overlay: fstab mount" "$(grep -cP '^LABEL=scratch\t/var/lib/hv\text4\t' "$R/etc/fstab")" 1
expect "overlay: hv-agent in the default runlevel" "$(readlink "$R/etc/runlevels/default/hv-agent")" /etc/init.d/hv-agent
expect "second fetch of the same boot: refused" "$(get "$B/ovl/$UUID1/$MAC1.apkovl.tar.gz")" 403
expect "second fetch audited" "$(curl -s --unix-socket "$T/hvd.sock" 'http://localhost/api/v1/events?subject=h1' | grep -c "this boot's overlay was already served")" 1
expect "bad overlay path: 400" "$(get "$B/ovl/$UUID1/$MAC1.apkovl.tar")" 400
expect "HEAD does not consume the overlay" "$(curl -s -o /dev/null -w '%{http_code}' -I "$B/ovl/$UUID1/$MAC1.apkovl.tar.gz")" 405

# --- the overlay's credentials work: a real agent connects
sed -i "s|^key-file .*|key-file $R/etc/hv/agent.key|" "$R/etc/hv/agent.conf"
echo "session-file $T/h1/session" >> "$R/etc/hv/agent.conf"
"$HV_AGENT" -d -f "$R/etc/hv/agent.conf" >> "$T/agent.log" 2>&1 &
AGENT_PID=$!
for _ in $(seq 1 100); do
	[ "$(hosts_json | field '[h["state"] for h in d["hosts"] if h["name"] == "h1"][0]')" = up ] && break
	sleep 0.1
done
expect "h1 up with the overlay's key and token" "$(hosts_json | field '[h["state"] for h in d["hosts"] if h["name"] == "h1"][0]')" up

# --- replacement: new hardware takes over h1
expect "new hardware: discovery" "$(stage2 $MAC2 $UUID2; grep -c 'booting the discovery profile' "$T/out")" '2001'
FP2=$(hosts_json | field '[h["fingerprint"] for h in d["hosts"] if h["boot_mac"] == "'$MAC2'"][0]')
set +e
"$HVCTL" host replace h9 --fingerprint "$FP2" >/dev/null 2>"$T/err"; rc=$?
expect "replace an unknown host: exit 5" "$rc $(cat "$T/err")" "5 *no host named 'h9'*"
"$HVCTL" host replace h1 --fingerprint "$(printf '%064d' 7)" >/dev/null 2>"$T/err"; rc=$?
expect "replace with an unseen fingerprint: exit 5" "$rc $(cat "$T/err")" "5 *has booted: boot the new hardware first*"
"$HVCTL" host replace h1 --fingerprint "xyz" >/dev/null 2>"$T/err"; rc=$?
expect "replace with a malformed fingerprint: exit 5" "$rc $(cat "$T/err")" "5 *'fingerprint' must be 64 lowercase hex*"
set -e
expect "replace h1 onto the new hardware" "$("$HVCTL" host replace h1 --fingerprint "$FP2")" \
	"replaced the hardware of h1: adopted, fingerprint ${FP2:0:16}..., underlay 127.0.0.1"
expect_eq "same name, same networks and labels, new MAC" "$("$HVCTL" --json host show h1 | field '(d["fingerprint"] == "'$FP2'", d["boot_mac"], d["networks"], d["labels"], d["underlay_ip"])')" \
	"(True, '$MAC2', [100], {'rack': 'r1'}, '127.0.0.1')"
expect "one host record left (the discovered one folded in)" "$(hosts_json | field 'len(d["hosts"])')" 1
expect "the old hardware's agent loses its session" "$(for _ in $(seq 1 50); do grep -q 'session' "$T/agent.log" && break; sleep 0.1; done; hosts_json | field '[h.get("live", {}).get("connected") for h in d["hosts"]][0]')" False
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true
expect "the old hardware is refused at stage 2" "$(stage2 $MAC1 $UUID1)" 403
expect "the new hardware boots as h1" "$(stage2 $MAC2 $UUID2; sed -n 2p "$T/out")" '200# hypervisor stage 2 for host h1*'
alpine_fetch $MAC2 $UUID2 "$T/h1b/root"
expect "its overlay: same identity, fresh key" "$(cat "$T/h1b/root/etc/hostname") $(cmp -s "$T/h1b/root/etc/hv/agent.key" "$R/etc/hv/agent.key" && echo same-key || echo new-key)" "h1 new-key"
expect "replacement event" "$(curl -s --unix-socket "$T/hvd.sock" 'http://localhost/api/v1/events?subject=h1' | grep -c '"host.replaced"')" 1

# --- backup, then restore into a fresh state directory
expect "hvctl backup" "$("$HVCTL" backup "$T/backup.tar")" "backup written to $T/backup.tar (* bytes, mode 0600)*"
expect "backup file is 0600" "$(stat -c %a "$T/backup.tar")" 600
expect "backup holds the inventory and the master key" "$(tar -tf "$T/backup.tar" | tr '\n' ' ')" "MANIFEST hvd.db master.key "
expect "backup refused over TCP even to an admin token" "$(tcp "$("$HVCTL" --json token create --role admin | field 'd["token"]')" GET /api/v1/backup | cut -c1-3)" 403
hosts_json | field 'sorted((h["name"], h["fingerprint"], h["state"], h["boot_mac"], h["underlay_ip"]) for h in d["hosts"])' > "$T/hosts.before"
stop_hvd
write_conf "boot-root $T/boot" "boot-http-listen 127.0.0.1:$BP" "boot-server 127.0.0.1" \
	"agent-listen $AGENT_ADDR" "agent-heartbeat-ms 500"
sed -i "s|^state-dir .*|state-dir $T/state2|" "$T/hvd.conf"
expect "hvd --restore into a fresh directory" "$("$HVD" -f "$T/hvd.conf" --restore "$T/backup.tar" 2>&1)" "hvd: restored $T/backup.tar into $T/state2 (1 hosts)*"
expect "restore refuses a directory that has an inventory" "$("$HVD" -f "$T/hvd.conf" --restore "$T/backup.tar" 2>&1; echo "rc=$?")" "*already exists*rc=1"
head -c 100 /dev/urandom > "$T/junk.tar"
expect "restore refuses a file that is not a backup" "$(sed -i "s|^state-dir .*|state-dir $T/state3|" "$T/hvd.conf"; "$HVD" -f "$T/hvd.conf" --restore "$T/junk.tar" 2>&1; echo "rc=$?"; ls "$T/state3")" "hvd: restore: *rc=1"
sed -i "s|^state-dir .*|state-dir $T/state2|" "$T/hvd.conf"
expect "restored master key is 0600" "$(stat -c %a "$T/state2/master.key")" 600
# The Alpine mirror, and with it the site's repository and its key, is not
# in a backup (README: re-sync it); put the key back as the site would.
mkdir -p "$T/state2/alpine" && cp -r "$T/state/alpine/keys" "$T/state2/alpine/"
start_hvd
expect_eq "restored hvd knows the same hosts" "$(hosts_json | field 'sorted((h["name"], h["fingerprint"], h["state"], h["boot_mac"], h["underlay_ip"]) for h in d["hosts"])')" "$(cat "$T/hosts.before")"
expect "restored hvd: stage 2 for h1" "$(stage2 $MAC2 $UUID2; sed -n 2p "$T/out")" '200# hypervisor stage 2 for host h1*'
alpine_fetch $MAC2 $UUID2 "$T/h1c/root"
for r in "$T/h1b/root" "$T/h1c/root"; do
	sed -i '/^boot-token /d' "$r/etc/hv/agent.conf"
	mv "$r/etc/hv/agent.key" "$r/../agent.key"
done
expect "restored hvd serves an equivalent overlay (same files and contents but key and token)" "$(diff -r --no-dereference "$T/h1b/root" "$T/h1c/root" && echo same)" same
expect "with a fresh per-boot key" "$(cmp -s "$T/h1b/agent.key" "$T/h1c/agent.key" && echo same || echo fresh)" fresh

# --- edit and retire
expect_eq "edit networks and labels" "$("$HVCTL" host edit h1 --no-nets --label rack=r2 >/dev/null; "$HVCTL" --json host show h1 | field '(d["networks"], d["labels"])')" "([], {'rack': 'r2'})"
expect "retire h1" "$("$HVCTL" host retire h1)" "retired h1: *"
expect "a retired host's hardware is refused" "$(stage2 $MAC2 $UUID2)" 403
set +e
"$HVCTL" host retire h1 >/dev/null 2>"$T/err"; rc=$?
expect "retire twice: 409" "$rc $(cat "$T/err")" "5 *already retired*"
set -e

finish
