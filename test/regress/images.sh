#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The image store against the real hvd: uploads streamed by hvctl (and
# curl), hashed by hvd as they arrive, stored by content, served to agents
# at /images/<sha256> on the boot port with Range; the 4xx table; an upload
# larger than image-max-bytes refused and nothing left behind.
. "$(dirname "$0")/lib.sh"

write_conf "boot-http-listen 127.0.0.1:0" "image-max-bytes 4194304"
start_hvd
BP=$(curl -s --unix-socket "$T/hvd.sock" http://localhost/api/v1/status |
	sed -n 's/.*"boot_http":"127.0.0.1:\([0-9]*\)".*/\1/p')
B="http://127.0.0.1:$BP"

head -c 3000000 /dev/urandom > "$T/vmlinuz-guest"
head -c 700000 /dev/urandom > "$T/initrd-guest"
SHA=$(sha256sum "$T/vmlinuz-guest" | cut -d' ' -f1)
expect "image add streams the kernel" "$("$HVCTL" image add vmlinuz-guest "$T/vmlinuz-guest")" \
	"image vmlinuz-guest: kernel, 3000000 bytes, sha256 $SHA"
expect "kind from the name: initramfs" "$("$HVCTL" image add initrd-guest "$T/initrd-guest" | cut -d, -f1)" "image initrd-guest: initramfs"
expect "stored by content, 0644" "$(cmp "$T/vmlinuz-guest" "$T/state/images/$SHA" && stat -c %a "$T/state/images/$SHA")" 644
expect "same bytes under another name share the file" "$("$HVCTL" image add --kind disk copy "$T/vmlinuz-guest" >/dev/null; ls "$T/state/images" | grep -vc '^\.' )" 2
expect "image list" "$("$HVCTL" image list | awk 'NR > 1 { print $1, $2, $3 }' | tr '\n' ' ')" \
	"copy disk 3000000 initrd-guest initramfs 700000 vmlinuz-guest kernel 3000000 "
expect "agents fetch by hash from the boot port" "$(curl -s "$B/images/$SHA" | sha256sum | cut -d' ' -f1)" "$SHA"
expect "with Range" "$(curl -s -r 100-199 "$B/images/$SHA" | cmp - <(tail -c +101 "$T/vmlinuz-guest" | head -c 100) && echo same)" same
expect "unknown hash: 404" "$(curl -s -o /dev/null -w '%{http_code}' "$B/images/$(printf '%064d' 0)")" 404
expect "not a hash: 404" "$(curl -s -o /dev/null -w '%{http_code}' "$B/images/..%2f..%2fhvd.db")" 404
set +e
"$HVCTL" image add vmlinuz-guest "$T/initrd-guest" >/dev/null 2>"$T/err"; rc=$?
expect "duplicate name: 409" "$rc $(cat "$T/err")" "5 *an image named 'vmlinuz-guest' already exists*"
"$HVCTL" image add Bad_Name "$T/initrd-guest" >/dev/null 2>"$T/err"; rc=$?
expect "bad name refused by hvctl" "$rc" 2
expect "bad name refused by hvd" "$(curl -s --unix-socket "$T/hvd.sock" -X POST --data-binary @"$T/initrd-guest" "http://localhost/api/v1/images/.hidden?kind=kernel")" \
	'{"error":"image name '"'"'.hidden'"'"' must be 1..63 of a-z 0-9 . _ - starting with a letter or digit"}'
expect "bad kind: 400" "$(curl -s --unix-socket "$T/hvd.sock" -X POST --data-binary @"$T/initrd-guest" "http://localhost/api/v1/images/x?kind=iso")" \
	'{"error":"query '"'"'kind'"'"' must be kernel, initramfs or disk"}'
: > "$T/empty"
"$HVCTL" image add empty "$T/empty" >/dev/null 2>"$T/err"; rc=$?
expect "empty image: 400" "$rc $(cat "$T/err")" "5 *the image is empty*"
head -c 5000000 /dev/urandom > "$T/big"
"$HVCTL" image add big "$T/big" >/dev/null 2>"$T/err"; rc=$?
expect "over image-max-bytes: 413" "$rc $(cat "$T/err")" "5 *image larger than image-max-bytes (4194304)*"
expect "chunked upload over the limit: 413" "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$T/hvd.sock" -X POST -H 'Transfer-Encoding: chunked' --data-binary @"$T/big" "http://localhost/api/v1/images/big2?kind=disk")" 413
expect "no upload left behind" "$(ls -A "$T/state/images" | grep -c '^\.upload' || true)" 0
TOK=$("$HVCTL" --json token create --role read | field 'd["token"]')
expect "read token cannot upload: 403" "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOK" -X POST --data-binary @"$T/initrd-guest" "$URL/api/v1/images/r?kind=kernel")" 403
"$HVCTL" image rm nope >/dev/null 2>"$T/err"; rc=$?
expect "rm unknown: 404" "$rc $(cat "$T/err")" "5 *no image 'nope'*"
set -e
expect "rm one name keeps the shared file" "$("$HVCTL" image rm copy; ls "$T/state/images" | grep -c "$SHA")" "removed image copy*1"
expect "rm the last name removes the file" "$("$HVCTL" image rm vmlinuz-guest; ls "$T/state/images" | grep -c "$SHA" || true)" "removed image vmlinuz-guest*0"
expect "events" "$(curl -s --unix-socket "$T/hvd.sock" 'http://localhost/api/v1/events?subject=initrd-guest' | grep -c image.added)" 1

finish
