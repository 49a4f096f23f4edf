#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Builds, into OUT (default build/e2e), a Debian kernel and a tiny
# initramfs whose /init prints a marker on the serial console and powers
# off: the payload the QEMU network-boot test boots through hvd.
# Everything comes from Debian packages (apt-get download + dpkg -x); the
# result is cached and rebuilt only when the kernel package changes.
set -euo pipefail
self=$(realpath "$0")
out=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/e2e}
mkdir -p "$out"
cd "$out"

kpkg=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
[ -n "$kpkg" ] || { echo "tiny-linux: cannot resolve linux-image-amd64" >&2; exit 1; }
stamp="$kpkg $(sha256sum "$self" | cut -d' ' -f1)"
if [ -f stamp ] && [ "$(cat stamp)" = "$stamp" ] && [ -f vmlinuz ] && [ -f initramfs ]; then
	exit 0
fi

rm -rf pkg root && mkdir -p pkg root/bin root/dev root/proc root/sys
if ! ls "$kpkg"_*.deb >/dev/null 2>&1; then
	apt-get download -q "$kpkg" >/dev/null
fi
dpkg -x "$kpkg"_*.deb pkg
cp pkg/boot/vmlinuz-* vmlinuz

cp /bin/busybox root/bin/busybox
for app in sh echo mount poweroff cat sleep; do ln -sf busybox "root/bin/$app"; done
cat > root/init <<'INIT'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
echo "HV-E2E-MARKER: tiny initramfs reached, cmdline: $(cat /proc/cmdline)"
echo "HV-E2E-UUID: $(cat /sys/class/dmi/id/product_uuid 2>/dev/null)"
poweroff -f
INIT
chmod 755 root/init
(cd root && find . | sort | cpio -o -H newc --quiet | gzip -9) > initramfs
rm -rf pkg root
echo "$stamp" > stamp
echo "tiny-linux: $out/vmlinuz ($kpkg) and $out/initramfs"
