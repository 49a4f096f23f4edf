#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Network boot end to end: a QEMU machine (TCG) with -boot n on a tap in a
# namespace where hvd is the only DHCP, TFTP and HTTP server.  Its iPXE ROM
# gets hvd's stage-1 URL over DHCP, fetches stage 1, then its stage 2, then
# a Debian kernel and a tiny initramfs whose /init prints a marker on the
# serial console, which this test reads.  KVM is used only when asked
# (HV_E2E_KVM=1) and it really works; see shared/notes/virtual-rack.md.
. "$(dirname "$0")/../netns/lib.sh"
: "${HVD:?}" "${HVCTL:?}"
here=$(cd "$(dirname "$0")" && pwd)
payload=${HV_E2E_DIR:-$here/../../build/e2e}
need_cmd qemu-system-x86_64 cpio gzip
bash "$here/tiny-linux.sh" "$payload"

mkns qns q
ip -n "$qns" tuntap add dev hvtap0 mode tap
ip -n "$qns" addr add 10.88.0.1/24 dev hvtap0
ip -n "$qns" link set hvtap0 up
mkdir -p "$T/boot" "$T/tpl"
cp "$payload/vmlinuz" "$payload/initramfs" "$T/boot/"
: > "$T/boot/xen"	# stage 2 checks for it; this test boots plain Linux
for t in stage2 discovery; do
	cat > "$T/tpl/$t.ipxe" <<'TPL'
#!ipxe
echo e2e: stage 2 for {{host}} ({{mac}}, uuid {{uuid}})
kernel {{hvd}}/boot/files/vmlinuz console=ttyS0 panic=-1 hv.host={{host}}
initrd {{hvd}}/boot/files/initramfs
boot
TPL
done
cat > "$T/hvd.conf" <<CONF
state-dir $T/state
api-socket $T/hvd.sock
api-socket-mode 0600
boot-root $T/boot
boot-templates $T/tpl
boot-server 10.88.0.1
boot-http-listen 0.0.0.0:80
tftp-listen 0.0.0.0:69
dhcp-mode full
dhcp-interface hvtap0
dhcp-range 10.88.0.100 10.88.0.150
dhcp-router 10.88.0.1
log-level debug
CONF
export HVCTL_SOCKET=$T/hvd.sock
bg "$qns" "$T/hvd.log" "$HVD" -d -f "$T/hvd.conf"
wait_for 10 "$HVCTL" status >/dev/null

uuid=6b2f0c1e-3c1d-4f8e-9d7a-5e4f3a2b1c0d
mac=52:54:00:e2:e0:01
accel="-accel tcg"
[ "${HV_E2E_KVM:-0}" = 1 ] && accel="-accel kvm -cpu host"
start=$(date +%s)
bg "$qns" "$T/qemu.log" timeout 180 qemu-system-x86_64 $accel -m 256 \
	-machine graphics=off -display none -monitor none -no-reboot \
	-uuid "$uuid" -serial "file:$T/serial.log" \
	-netdev tap,id=n0,ifname=hvtap0,script=no,downscript=no \
	-device virtio-net-pci,netdev=n0,mac="$mac" -boot n
QEMU=$LAST_PID
booted() { grep -q 'HV-E2E-MARKER' "$T/serial.log" 2>/dev/null; }
t=$(wait_for 170 booted || true)
echo "serial console (tail):"; tail -n 15 "$T/serial.log" 2>/dev/null | sed 's/^/  | /'
expect "QEMU booted the kernel and initramfs through hvd (s)" "$t" '[0-9]*.[0-9]'
expect "the kernel got stage 2's command line" "$(grep -a -o 'hv.host=discovery' "$T/serial.log" | head -1)" 'hv.host=discovery'
expect "SMBIOS UUID reached the guest" "$(grep -a -c "HV-E2E-UUID: $uuid" "$T/serial.log")" 1
# QEMU's BIOS iPXE reports buildarch i386 (it runs in 32-bit mode).
expect "iPXE fetched stage 1 and stage 2 from hvd" "$(grep -c 'boot: stage 2 for discovery (52:54:00:e2:e0:01, uuid '"$uuid"', i386)' "$T/hvd.log")" '[1-9]*'
expect "hvd leased the address in SQLite" "$(sqlite3 "$T/state/hvd.db" "SELECT ip FROM dhcp_leases WHERE mac = '$mac'")" '10.88.0.1[0-9][0-9]'
wait "$QEMU" 2>/dev/null || true
echo "qemu run took $(( $(date +%s) - start )) s"
finish
