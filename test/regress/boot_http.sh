#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# HTTP boot against the real hvd with curl: the stage-1 script, stage 2
# for a known host, the discovery profile and the missing-file script;
# boot files with HEAD, Range, ETag, Last-Modified and conditional GET;
# and bad input: invalid queries (400) and paths that try to leave the boot
# root (../, %2e%2e, absolute, a symlink out).  hvd keeps serving.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/boot" "$T/tpl"
write_conf "boot-root $T/boot" "boot-http-listen 127.0.0.1:0" \
	"boot-server 10.9.8.7" "boot-templates $T/tpl"
start_hvd
BP=$(curl -s --unix-socket "$T/hvd.sock" http://localhost/api/v1/status |
	sed -n 's/.*"boot_http":"127.0.0.1:\([0-9]*\)".*/\1/p')
B="http://127.0.0.1:$BP"

# --- iPXE binaries installed from Debian's ipxe package
expect "undionly.kpxe installed into the boot root" "$(cmp /usr/lib/ipxe/undionly.kpxe "$T/boot/undionly.kpxe" && echo same)" same
expect "ipxe.efi installed" "$(cmp /usr/lib/ipxe/ipxe.efi "$T/boot/ipxe.efi" && echo same)" same

# --- stage 1: one script for every machine, pointing at boot-server
expect "stage 1" "$(get "$B/boot/ipxe")" 200
expect "stage 1 is an iPXE script" "$(head -1 "$T/out")" '#!ipxe'
expect "stage 1 chains to stage 2 on boot-server" "$(grep '^chain' "$T/out" | head -1)" \
	'chain http://10.9.8.7:'"$BP"'/boot/ipxe?mac=${mac:hexhyp}&uuid=${uuid}&serial=${serial:uristring}&product=${product:uristring}&buildarch=${buildarch} || goto failed'

Q='mac=52-54-00-12-34-56&uuid=8F2C64B4-2D57-4F0D-9A57-2B1B7C3D4E5F&serial=ABC%20123&product=Standard%20PC&buildarch=x86_64'
# --- missing files: the script says so on the console
expect "stage 2 with no boot files" "$(get "$B/boot/ipxe?$Q")" 200
expect "missing-file script names the file" "$(grep -c "boot file 'xen' is missing on hvd" "$T/out")" 1
expect "hvctl status lists what is missing" "$("$HVCTL" status | grep MISSING)" 'MISSING:   xen vmlinuz initramfs modloop*'

# --- boot files present
head -c 3000000 /dev/urandom > "$T/boot/xen"
head -c 1000000 /dev/urandom > "$T/boot/vmlinuz"
head -c 5000000 /dev/urandom > "$T/boot/initramfs"
expect "unknown machine gets the discovery profile" "$(get "$B/boot/ipxe?$Q"; grep -c 'booting the discovery profile' "$T/out")" '200*1'
expect "discovery loads xen over HTTP" "$(grep '^kernel' "$T/out")" "kernel http://10.9.8.7:$BP/boot/files/xen *"
expect "dom0 args carry BOOTIF and the .gz overlay URL" "$(grep '^module.*vmlinuz' "$T/out" | grep -o 'BOOTIF=01-${mac:hexhyp} apkovl=http://10.9.8.7:'"$BP"'/ovl/{UUID}/{MAC}.apkovl.tar.gz')" \
	'BOOTIF=01-${mac:hexhyp} apkovl=http://10.9.8.7:'"$BP"'/ovl/{UUID}/{MAC}.apkovl.tar.gz'
"$HVCTL" host adopt 52:54:00:12:34:56 --name h7 >/dev/null
expect "known machine gets its stage 2" "$(get "$B/boot/ipxe?$Q"; sed -n 2p "$T/out")" '200# hypervisor stage 2 for host h7 (52:54:00:12:34:56)*'
expect "no Alpine mirror yet" "$(get "$B/alpine/v3.20/main/x86_64/APKINDEX.tar.gz"; cat "$T/out")" "404{\"error\":\"hvd serves no Alpine mirror (create $T/state/alpine)\"}"
mkdir -p "$T/state/alpine/v3.20/main/x86_64"
head -c 4096 /dev/urandom > "$T/state/alpine/v3.20/main/x86_64/APKINDEX.tar.gz"
# An operator template overrides the built-in one.
printf '#!ipxe\necho custom stage 2 for {{host}}\n' > "$T/tpl/stage2.ipxe"
stop_hvd
start_hvd
BP=$(curl -s --unix-socket "$T/hvd.sock" http://localhost/api/v1/status |
	sed -n 's/.*"boot_http":"127.0.0.1:\([0-9]*\)".*/\1/p'); B="http://127.0.0.1:$BP"
expect "operator template from boot-templates" "$(get "$B/boot/ipxe?$Q"; tail -1 "$T/out")" '200echo custom stage 2 for h7'

expect "Alpine mirror served for alpine_repo=" "$(get "$B/alpine/v3.20/main/x86_64/APKINDEX.tar.gz"; cmp "$T/out" "$T/state/alpine/v3.20/main/x86_64/APKINDEX.tar.gz" && echo same)" '200same'
expect "mirror: .. refused" "$(get --path-as-is "$B/alpine/v3.20/../../hvd.db")" 404
expect "mirror: hidden refused" "$(get "$B/alpine/v3.20/.x")" 404
expect "mirror: trailing slash refused" "$(get "$B/alpine/v3.20/")" 404

# --- bad queries: 400 naming the parameter
expect "bad mac" "$(get "$B/boot/ipxe?mac=zz-54-00-12-34-56"; cat "$T/out")" "400{\"error\":\"query 'mac' must be six hex octets like 52-54-00-12-34-56\"}"
expect "bad uuid" "$(get "$B/boot/ipxe?mac=52-54-00-12-34-56&uuid=nope")" 400
expect "script injection in serial" "$(get "$B/boot/ipxe?mac=52-54-00-12-34-56&serial=x%0Aboot")" 400
expect "iPXE variable in product" "$(get "$B/boot/ipxe?mac=52-54-00-12-34-56&product=%24%7Bnet0%7D")" 400
expect "unknown arch" "$(get "$B/boot/ipxe?mac=52-54-00-12-34-56&buildarch=pdp11")" 400
expect "unknown parameter" "$(get "$B/boot/ipxe?mac=52-54-00-12-34-56&color=red"; cat "$T/out")" "400{\"error\":\"unknown query parameter 'color'\"}"
expect "mac required" "$(get "$B/boot/ipxe?uuid=")" 400

# --- boot files: GET, HEAD, Range, ETag, conditional GET
expect "GET xen" "$(get "$B/boot/files/xen"; cmp "$T/out" "$T/boot/xen" && echo same)" '200same'
h=$(curl -s -I "$B/boot/files/initramfs" | tr -d '\r')
expect "HEAD length" "$(echo "$h" | grep -i '^content-length')" 'Content-Length: 5000000'
expect "HEAD ETag" "$(echo "$h" | grep -i '^etag')" 'ETag: "*"'
expect "HEAD Last-Modified" "$(echo "$h" | grep -i '^last-modified')" 'Last-Modified: * GMT'
expect "Accept-Ranges" "$(echo "$h" | grep -i '^accept-ranges')" 'Accept-Ranges: bytes'
etag=$(echo "$h" | sed -n 's/^ETag: //p'); lm=$(echo "$h" | sed -n 's/^Last-Modified: //p')
expect "Range 100-199" "$(get -H 'Range: bytes=100-199' "$B/boot/files/initramfs"; cmp "$T/out" <(tail -c +101 "$T/boot/initramfs" | head -c 100) && echo same)" '206same'
expect "Content-Range" "$(curl -s -D - -o /dev/null -H 'Range: bytes=100-199' "$B/boot/files/initramfs" | tr -d '\r' | grep -i '^content-range')" 'Content-Range: bytes 100-199/5000000'
expect "suffix Range" "$(get -H 'Range: bytes=-10' "$B/boot/files/initramfs"; cmp "$T/out" <(tail -c 10 "$T/boot/initramfs") && echo same)" '206same'
expect "open Range" "$(get -H 'Range: bytes=4999990-' "$B/boot/files/initramfs"; wc -c < "$T/out")" '20610'
expect "unsatisfiable Range" "$(get -H 'Range: bytes=6000000-' "$B/boot/files/initramfs")" 416
expect "resumed download (curl -C)" "$(head -c 1234567 "$T/boot/initramfs" > "$T/part"; curl -s -C - -o "$T/part" "$B/boot/files/initramfs"; cmp "$T/part" "$T/boot/initramfs" && echo same)" same
expect "If-None-Match -> 304" "$(get -H "If-None-Match: $etag" "$B/boot/files/initramfs")" 304
expect "If-Modified-Since -> 304" "$(get -H "If-Modified-Since: $lm" "$B/boot/files/initramfs")" 304
expect "stale ETag -> 200" "$(get -H 'If-None-Match: "old"' "$B/boot/files/initramfs")" 200
expect "POST refused" "$(get -X POST "$B/boot/files/xen")" 405

# --- paths that try to leave the boot root
echo secret > "$T/outside"
ln -s "$T/outside" "$T/boot/escape"
ln -s ../outside "$T/boot/escape2"
ln -s xen "$T/boot/xen.link"
expect "../ refused" "$(get --path-as-is "$B/boot/files/../hvd.conf")" 404
expect "%2e%2e refused" "$(get --path-as-is "$B/boot/files/%2e%2e/hvd.conf")" 404
expect "encoded slash refused" "$(get "$B/boot/files/..%2fhvd.conf")" 404
expect "absolute symlink out refused" "$(get "$B/boot/files/escape")" 404
expect "relative symlink out refused" "$(get "$B/boot/files/escape2")" 404
expect "hidden files not served" "$(get "$B/boot/files/.xen.source")" 404
expect "unknown path" "$(get "$B/etc/passwd")" 404
expect "no secret was served" "$(grep -c secret "$T/out" || true)" 0
expect "still serving" "$(get "$B/boot/files/vmlinuz")" 200
# --- hvctl boot import from an Alpine-style netboot directory
mkdir -p "$T/netboot"
head -c 2000000 /dev/urandom > "$T/xen.raw"
gzip -c "$T/xen.raw" > "$T/netboot/xen.gz"
head -c 700000 /dev/urandom > "$T/netboot/vmlinuz-lts"
head -c 900000 /dev/urandom > "$T/netboot/initramfs-lts"
head -c 400000 /dev/urandom > "$T/netboot/modloop-lts"
out=$("$HVCTL" boot import "$T/netboot")
expect "import reports each file" "$(echo "$out" | awk '{print $1}' | tr '\n' ' ')" 'xen vmlinuz initramfs modloop '
expect "xen.gz imported decompressed" "$(cmp "$T/boot/xen" "$T/xen.raw" && echo same)" same
expect "initramfs-lts imported as initramfs" "$(cmp "$T/boot/initramfs" "$T/netboot/initramfs-lts" && echo same)" same
expect "served after import" "$(get "$B/boot/files/modloop"; cmp "$T/out" "$T/netboot/modloop-lts" && echo same)" '200same'
expect "boot list says where xen came from" "$("$HVCTL" boot list | grep '^xen ')" "xen *2000000*$T/netboot/xen.gz sha256:$(sha256sum < "$T/xen.raw" | cut -d' ' -f1) 2000000 bytes, imported *"
expect "nothing missing any more" "$("$HVCTL" status | grep -c MISSING || true)" 0
set +e
out=$("$HVCTL" boot import "$T/state" 2>&1); rc=$?
set -e
expect "import of a directory without boot files" "$rc:$out" "5:*nothing to import*"

m=$(curl -s --unix-socket "$T/hvd.sock" http://localhost/metrics)
expect "boot requests in /metrics" "$(echo "$m" | grep -c 'route="/boot/files/{}"')" '[1-9]*'
finish
