#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Hostile input on the HTTP boot port, as an attacker on the boot LAN would
# send it.  Each section is a finding that stopped or fooled an earlier hvd:
# a FIFO in the boot root (open() blocked the only thread for good), the
# symlink rule (TFTP followed a symlink inside the root, HTTP refused it),
# and the NUL byte.  Throughout, the API on the unix socket must answer.
. "$(dirname "$0")/lib.sh"
need_cmd mkfifo timeout

mkdir -p "$T/boot"
head -c 4096 /dev/urandom > "$T/boot/vmlinuz"
write_conf "boot-root $T/boot" "boot-http-listen 127.0.0.1:0" "boot-server 10.9.8.7"
start_hvd
BP=$(curl -s --unix-socket "$T/hvd.sock" http://localhost/api/v1/status |
	sed -n 's/.*"boot_http":"127.0.0.1:\([0-9]*\)".*/\1/p')
B="http://127.0.0.1:$BP"
api_up() { curl -sf -m 2 --unix-socket "$T/hvd.sock" http://localhost/healthz | grep -q ok && echo yes; }

# --- a FIFO in the boot root
mkfifo "$T/boot/xen" "$T/boot/.vmlinuz.source"
expect "GET of a FIFO: refused at once" "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$B/boot/files/xen")" 404
expect "the API still answers after a FIFO was requested" "$(api_up)" yes
# A FIFO request still in flight must not hold the loop either.
curl -s -m 10 -o /dev/null "$B/boot/files/xen" &
bgcurl=$!
track_pid "$bgcurl"
expect "the API answers while a FIFO is being requested" "$(api_up)" yes
wait "$bgcurl" || true
expect_eq "hvctl status: a FIFO is not a present boot file" \
	"$(timeout 5 "$HVCTL" --json status | field '[f["present"] for f in d["boot"]["files"] if f["name"] == "xen"]')" '[False]'
expect "a FIFO .source note does not block the status" "$(timeout 5 "$HVCTL" --json status >/dev/null && echo answered)" answered
rm -f "$T/boot/xen" "$T/boot/.vmlinuz.source"
expect "still serving after the FIFOs are gone" "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$B/boot/files/vmlinuz")" 200

# --- one symlink rule: inside the root it is followed (as TFTP does),
# out of it refused
ln -s vmlinuz "$T/boot/vmlinuz.link"
echo secret > "$T/outside"
ln -s ../outside "$T/boot/out.link"
expect "a relative symlink inside the root is served" "$(curl -s -m 5 -o "$T/got" -w '%{http_code}' "$B/boot/files/vmlinuz.link")" 200
expect "with the target's bytes" "$(cmp "$T/got" "$T/boot/vmlinuz" && echo same)" same
expect "a symlink out of the root is refused" "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$B/boot/files/out.link")" 404

expect "the API answers at the end" "$(api_up)" yes
finish
