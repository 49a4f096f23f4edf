#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Backups hold everything a restore needs (issue 20): hvctl backup of an
# hvd with two images and boot files in its boot root, restored into a
# fresh state directory, and hvd started on it lists and serves the same
# bytes; a backup of a 64 MiB image does not take hvd's memory up by the
# image's size; a damaged store copy fails the backup, naming the image.
# Restore refuses, naming what it refuses, and leaving the state
# directory as it was: an image byte flipped, an image missing, an extra
# image, and hostile entries ('..', an absolute path, a symlink, a hard
# link, a name outside the backup's).
. "$(dirname "$0")/lib.sh"

# tarmod SRC DST OP [ARG]: SRC rebuilt by python's tarfile into DST:
#   flip NAME   one byte of NAME's data flipped
#   drop NAME   without NAME
#   extra       plus images/<sha256 of 1000 random bytes>, holding them
#   evil KIND   MANIFEST (and hvd.db) of SRC, then one hostile entry
tarmod() {
	python3 - "$@" <<'EOF'
import hashlib, io, os, sys, tarfile
src, dst, op = sys.argv[1:4]
arg = sys.argv[4] if len(sys.argv) > 4 else None

def reg(o, name, data):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o600
    o.addfile(ti, io.BytesIO(data))

with tarfile.open(src) as t, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as o:
    for m in t.getmembers():
        data = t.extractfile(m).read()
        if op == "evil" and m.name not in ("MANIFEST", "hvd.db"):
            continue
        if op == "evil" and m.name == "hvd.db" and arg != "hardlink":
            continue
        if op == "drop" and m.name == arg:
            continue
        if op == "flip" and m.name == arg:
            b = bytearray(data)
            b[len(b) // 2] ^= 0x01
            data = bytes(b)
        o.addfile(m, io.BytesIO(data))
    if op == "extra":
        data = os.urandom(1000)
        reg(o, "images/" + hashlib.sha256(data).hexdigest(), data)
    if op == "evil":
        if arg == "dotdot":
            reg(o, "../evil", b"x" * 32)
        elif arg == "absolute":
            reg(o, os.environ["T"] + "/abs-evil", b"x" * 32)
        elif arg == "symlink":
            ti = tarfile.TarInfo("hvd.db")
            ti.type = tarfile.SYMTYPE
            ti.linkname = "/etc/passwd"
            o.addfile(ti)
        elif arg == "hardlink":
            ti = tarfile.TarInfo("master.key")
            ti.type = tarfile.LNKTYPE
            ti.linkname = "hvd.db"
            o.addfile(ti)
        elif arg == "other":
            reg(o, "images/../../etc/cron.d/x", b"x")
EOF
}
export T

# restore_into DIR FILE: hvd --restore FILE with state-dir DIR; prints
# its output and exit status.
restore_into() {
	sed "s|^state-dir .*|state-dir $1|" "$T/hvd.conf" > "$T/restore.conf"
	set +e
	"$HVD" -f "$T/restore.conf" --restore "$2" 2>&1
	echo "rc=$?"
	set -e
}
boot_port() {
	curl -s --unix-socket "$T/hvd.sock" http://localhost/api/v1/status |
		sed -n 's/.*"boot_http":"127.0.0.1:\([0-9]*\)".*/\1/p'
}
# hwm: hvd's peak resident memory, kB.
hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$HVD_PID/status"; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$HVD_PID/status"; }

write_conf "boot-http-listen 127.0.0.1:0"
start_hvd

# --- an hvd with two images and boot files in its boot root (state/boot)
head -c 700000 /dev/urandom > "$T/initrd-a"
head -c 6000000 /dev/urandom > "$T/disk-b"
SHA_A=$(sha256sum < "$T/initrd-a" | cut -d' ' -f1)
SHA_B=$(sha256sum < "$T/disk-b" | cut -d' ' -f1)
"$HVCTL" image add initrd-a "$T/initrd-a" > /dev/null
"$HVCTL" image add --kind disk disk-b "$T/disk-b" > /dev/null
head -c 5000 /dev/urandom > "$T/state/boot/xen"
echo "/srv/netboot/xen.gz sha256:00 5000 bytes, imported today" > "$T/state/boot/.xen.source"
ln -s /etc/passwd "$T/state/boot/escape"
mkdir "$T/state/boot/subdir"

expect "hvctl backup" "$("$HVCTL" backup "$T/b1.tar")" "backup written to $T/b1.tar (* bytes, mode 0600)*"
tar -tf "$T/b1.tar" > "$T/b1.list"
expect_eq "it begins with the inventory and the master key" "$(head -3 "$T/b1.list" | tr '\n' ' ')" "MANIFEST hvd.db master.key "
expect_eq "it holds both images, by content address" "$(grep '^images/' "$T/b1.list" | tr '\n' ' ')" \
	"$(printf 'images/%s\n' "$SHA_A" "$SHA_B" | sort | tr '\n' ' ')"
expect_eq "... whole" "$(tar -xOf "$T/b1.tar" "images/$SHA_B" | sha256sum | cut -d' ' -f1)" "$SHA_B"
expect_eq "it holds the boot files and their notes" "$(grep -c -x -e boot/xen -e boot/.xen.source "$T/b1.list")" 2
expect_eq "... not a symlink leading out of the boot root, nor a directory" "$(grep -c -e boot/escape -e boot/subdir "$T/b1.list" || true)" 0

# --- memory: a 64 MiB image streams through a small buffer
head -c 67108864 /dev/urandom > "$T/big"
SHA_BIG=$(sha256sum < "$T/big" | cut -d' ' -f1)
"$HVCTL" image add --kind disk big "$T/big" > /dev/null
base=$(rss)
# Reset the peak to the current size, so the upload's own peak (if any)
# cannot hide the backup's.
if echo 5 2>/dev/null > "/proc/$HVD_PID/clear_refs"; then :; else base=$(hwm); fi
"$HVCTL" backup "$T/b2.tar" > /dev/null
peak=$(hwm)
growth=$((peak - base))
echo "     hvd: VmRSS before $base kB, VmHWM after the backup $peak kB: +$growth kB"
expect_eq "a backup of a 64 MiB image takes hvd's memory up by under 8 MiB (+$growth kB)" "$((growth < 8192))" 1
expect "... and holds all of it" "$(tar -tvf "$T/b2.tar" "images/$SHA_BIG")" "*67108864*images/$SHA_BIG"
expect_eq "... intact" "$(tar -xOf "$T/b2.tar" "images/$SHA_BIG" | sha256sum | cut -d' ' -f1)" "$SHA_BIG"
"$HVCTL" image rm big > /dev/null

# --- a damaged store copy fails the backup, naming the image
head -c 300000 /dev/urandom > "$T/c"
SHA_C=$(sha256sum < "$T/c" | cut -d' ' -f1)
"$HVCTL" image add --kind disk c "$T/c" > /dev/null
printf '\xff' | dd of="$T/state/images/$SHA_C" bs=1 seek=1000 conv=notrunc status=none
set +e
out=$("$HVCTL" backup "$T/bad.tar" 2>&1); rc=$?
set -e
expect "a store copy that no longer hashes to its name fails the backup" "$rc $out" \
	"[1-9]*image 'c': the image store's images/$SHA_C hashes to sha256 *damaged*"
expect_eq "... and writes no file" "$(ls "$T/bad.tar" 2>/dev/null || true)" ""
"$HVCTL" image rm c > /dev/null
stop_hvd

# --- restore into a fresh state directory, then hvd on it
out=$(restore_into "$T/state2" "$T/b1.tar")
expect "hvd --restore into a fresh state directory" "$out" "*hvd: restored $T/b1.tar into $T/state2 (0 hosts)*rc=0"
expect_eq "the images are in its image store" "$(ls "$T/state2/images" | tr '\n' ' ')" \
	"$(printf '%s\n' "$SHA_A" "$SHA_B" | sort | tr '\n' ' ')"
expect_eq "... 0644" "$(stat -c %a "$T/state2/images/$SHA_A")" 644
expect_eq "the boot files are in its boot root" "$(cmp "$T/state/boot/xen" "$T/state2/boot/xen" && cmp "$T/state/boot/.xen.source" "$T/state2/boot/.xen.source" && echo same)" same
expect_eq "nothing temporary left behind" "$(find "$T/state2" -name '.restore.*' | wc -l)" 0
sed -i "s|^state-dir .*|state-dir $T/state2|" "$T/hvd.conf"
start_hvd
B="http://127.0.0.1:$(boot_port)"
expect_eq "the restored hvd lists both images" "$("$HVCTL" image list | awk 'NR > 1 { print $1, $2, $3 }' | tr '\n' ' ')" \
	"disk-b disk 6000000 initrd-a initramfs 700000 "
expect_eq "... serves initrd-a's bytes on the boot port" "$(curl -s "$B/images/$SHA_A" | sha256sum | cut -d' ' -f1)" "$SHA_A"
expect_eq "... and disk-b's" "$(curl -s "$B/images/$SHA_B" | sha256sum | cut -d' ' -f1)" "$SHA_B"
expect_eq "... and the boot file" "$(curl -s "$B/boot/files/xen" | cmp - "$T/state/boot/xen" && echo same)" same
stop_hvd

# --- refused restores leave the state directory as it was (empty)
# refused NAME FILE PATTERN: the restore of FILE into a fresh directory
# fails with PATTERN and leaves nothing there, nor beside it.
refused() {
	rm -rf "$T/state3"
	expect "$1" "$(restore_into "$T/state3" "$2")" "$3*rc=1"
	expect_eq "... and leaves the state directory empty" "$(ls -A "$T/state3" 2>/dev/null | tr '\n' ' ')" ""
}
tarmod "$T/b1.tar" "$T/flip.tar" flip "images/$SHA_B"
refused "one byte of an image flipped: refused, naming the image" "$T/flip.tar" \
	"hvd: restore: $T/flip.tar: image 'disk-b': images/$SHA_B in the backup hashes to sha256 * damaged or altered"
tarmod "$T/b1.tar" "$T/drop.tar" drop "images/$SHA_A"
refused "an image the inventory lists is missing: refused, naming it" "$T/drop.tar" \
	"hvd: restore: $T/drop.tar: image 'initrd-a' (sha256 $SHA_A) is in the inventory but not in the backup"
tarmod "$T/b1.tar" "$T/extra.tar" extra
refused "an image the inventory does not list: refused, naming it" "$T/extra.tar" \
	"hvd: restore: $T/extra.tar: entry 'images/*' is in the backup but no image of its inventory has that sha256"
tarmod "$T/b1.tar" "$T/dotdot.tar" evil dotdot
refused "'../evil': refused, naming it" "$T/dotdot.tar" \
	"hvd: restore: $T/dotdot.tar: entry '../evil' leads out of the directory ('..')"
expect_eq "... written nowhere" "$(ls "$T/evil" 2>/dev/null || true)" ""
tarmod "$T/b1.tar" "$T/abs.tar" evil absolute
refused "an absolute path: refused, naming it" "$T/abs.tar" \
	"hvd: restore: $T/abs.tar: entry '$T/abs-evil' is an absolute path"
expect_eq "... written nowhere" "$(ls "$T/abs-evil" 2>/dev/null || true)" ""
tarmod "$T/b1.tar" "$T/symlink.tar" evil symlink
refused "a symlink: refused, naming it" "$T/symlink.tar" \
	"hvd: restore: $T/symlink.tar: entry 'hvd.db' is a symbolic link (to '/etc/passwd'): a backup holds regular files only"
tarmod "$T/b1.tar" "$T/hardlink.tar" evil hardlink
refused "a hard link: refused, naming it" "$T/hardlink.tar" \
	"hvd: restore: $T/hardlink.tar: entry 'master.key' is a hard link (to 'hvd.db'): a backup holds regular files only"
tarmod "$T/b1.tar" "$T/other.tar" evil other
refused "'..' inside an images/ name: refused, naming it" "$T/other.tar" \
	"hvd: restore: $T/other.tar: entry 'images/../../etc/cron.d/x' leads out of the directory ('..')"
expect_eq "the good backup still restores after all that" "$(restore_into "$T/state3" "$T/b1.tar" | tail -1)" "rc=0"

finish
