#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# TFTP: the real hvd on a loopback port, driven by real clients (tftp-hpa's
# tftp, atftp, curl) whose downloads must match by SHA-256 (an empty file,
# exact multiples of the block size, 32 MiB past the 16-bit block-number
# rollover, files shared by inode), and by raw packets from tftpc.py for
# everything a real client never sends: WRQ, runts, unterminated and
# oversize requests, unknown opcodes, bad options, escapes from the boot
# root.  Then retransmission, give-up and TID rules; hvd keeps serving.
. "$(dirname "$0")/lib.sh"
TFTPC="python3 $(dirname "$0")/tftpc.py"
need_cmd tftp atftp curl python3 sha256sum

B=$T/boot
mkdir -p "$B/sub" "$B/dir" "$T/out"
printf 'hello\n' > "$B/small.txt"
: > "$B/empty"
head -c $((512 * 8)) /dev/urandom > "$B/blocks512"
head -c $((1024 * 7)) /dev/urandom > "$B/blocks1024"
head -c $((1428 * 5)) /dev/urandom > "$B/blocks1428"
head -c 100001 /dev/urandom > "$B/sub/nested.bin"
head -c $((32 << 20)) /dev/urandom > "$B/big"
ln -s sub/nested.bin "$B/link-inside"
ln -s big "$B/link-big"
ln -s /etc/passwd "$B/link-abs"
echo "not for you" > "$T/outside"
ln -s ../outside "$B/link-out"
ln -s loop "$B/loop"
mkfifo "$B/fifo"

# Short timers so the give-up paths take about a second.
write_conf "boot-root $B" "tftp-listen 127.0.0.1:0" "tftp-windowsize-max 8" \
	"tftp-timeout-ms 300" "tftp-retries 3"
start_hvd
TP=$(sock GET /api/v1/status | sed -n 's/.*"tftp":"127.0.0.1:\([0-9]*\)".*/\1/p')
expect "status lists the TFTP port" "$TP" '[1-9]*'

sum() { sha256sum < "$1" | cut -d' ' -f1; }
ok=0	# transfers that must have completed

hpa() { rm -f "$2"; tftp -m binary 127.0.0.1 "$TP" -c get "$1" "$2" 2>&1; }
at() {
	rm -f "$2"
	atftp --option "blksize 1428" --option "tsize 0" --option "windowsize 8" \
		-g -r "$1" -l "$2" 127.0.0.1 "$TP" 2>&1 | grep -v '^Option' || true
}
cu() { rm -f "$2"; curl -sS --tftp-blksize 1024 -o "$2" "tftp://127.0.0.1:$TP/$1" 2>&1; }

# --- real clients, checked by SHA-256
for f in small.txt empty blocks512 blocks1024 blocks1428 sub/nested.bin \
	link-inside undionly.kpxe big; do
	want=$(sum "$B/$f")
	hpa "$f" "$T/out/hpa" >/dev/null
	expect "tftp-hpa (512, lockstep): $f" "$(sum "$T/out/hpa")" "$want"
	at "$f" "$T/out/at" >/dev/null
	expect "atftp (blksize 1428, windowsize 8): $f" "$(sum "$T/out/at")" "$want"
	cu "$f" "$T/out/cu" >/dev/null
	expect "curl (blksize 1024): $f" "$(sum "$T/out/cu")" "$want"
	ok=$((ok + 3))
done
rm -f "$T/out/at"
atftp --option "blksize 512" --option "tsize enable" --option "windowsize 16" \
	-g -r blocks512 -l "$T/out/at" 127.0.0.1 "$TP" >/dev/null 2>&1 || true
expect "atftp 'tsize enable', windowsize capped at 8" "$(sum "$T/out/at")" "$(sum "$B/blocks512")"
rm -f "$T/out/cu"
curl -sS --tftp-no-options -o "$T/out/cu" "tftp://127.0.0.1:$TP/blocks1428"
expect "curl without options (RFC 1350)" "$(sum "$T/out/cu")" "$(sum "$B/blocks1428")"
ok=$((ok + 2))
grep -q "sent 'big': 33554432 bytes in [0-9]* ms (blksize 512, windowsize 1" "$T/hvd.log" &&
	r=yes || r=no
expect "a completed transfer is logged at debug" "$r" yes

# Concurrent fetches of one file.
pids=()
for i in $(seq 1 8); do
	curl -sS --tftp-blksize 1468 -o "$T/out/c$i" "tftp://127.0.0.1:$TP/big" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
same=0
for i in $(seq 1 8); do [ "$(sum "$T/out/c$i")" = "$(sum "$B/big")" ] && same=$((same + 1)); done
expect "8 concurrent curl fetches of 32 MiB" "$same" 8
ok=$((ok + 8))

# --- refusals through real clients
expect "tftp-hpa: missing file" "$(hpa missing "$T/out/x")" "Error code 1: file not found"
expect "tftp-hpa: netascii refused" "$(tftp 127.0.0.1 "$TP" -c get small.txt "$T/out/x" 2>&1)" \
	"Error code 4: mode netascii is not supported: use octet"
expect "tftp-hpa: ../ escape" "$(hpa ../outside "$T/out/x")" "Error code 2: '..' in a path is refused"
expect "tftp-hpa: absolute path" "$(hpa /etc/passwd "$T/out/x")" \
	"Error code 2: absolute paths are refused: names are relative to the boot root"
expect "tftp-hpa: symlink to an absolute path" "$(hpa link-abs "$T/out/x")" \
	"Error code 2: the path leaves the boot root"
expect "tftp-hpa: symlink out of the root" "$(hpa link-out "$T/out/x")" \
	"Error code 2: the path leaves the boot root"
expect "tftp-hpa: WRQ refused" "$(cd "$T/out" && echo data > up && tftp -m binary 127.0.0.1 "$TP" -c put up 2>&1)" \
	"Error code 2: write requests are refused: hvd serves files read-only"
set +e
curl -sS -o /dev/null "tftp://127.0.0.1:$TP/missing" 2>/dev/null; rc=$?
set -e
expect "curl: missing file exits 68 (TFTP not found)" "$rc" 68
set +e
curl -sS --path-as-is -o /dev/null "tftp://127.0.0.1:$TP/../outside" 2>/dev/null; rc=$?
set -e
expect "curl: ../ exits 69 (TFTP access violation)" "$rc" 69

# --- raw packets
ask() { $TFTPC "$TP" ask "$1"; }
expect "WRQ" "$(ask 'b"\0\2x\0octet\0"')" "ERROR 2 write requests are refused: hvd serves files read-only"
expect "1-byte runt: silence" "$(ask 'b"\0"')" silence
expect "empty datagram: silence" "$(ask 'b""')" silence
expect "unterminated file name" "$(ask 'b"\0\1small.txt"')" "ERROR 4 unterminated file name"
expect "no mode" "$(ask 'b"\0\1small.txt\0"')" "ERROR 4 no transfer mode"
expect "unterminated mode" "$(ask 'b"\0\1small.txt\0octet"')" "ERROR 4 unterminated transfer mode"
expect "mode mail" "$(ask 'b"\0\1small.txt\0mail\0"')" "ERROR 4 unknown transfer mode 'mail'"
expect "unknown opcode" "$(ask 'b"\0\x09small.txt\0octet\0"')" "ERROR 4 unknown opcode 9"
expect "opcode 0xffff" "$(ask 'b"\xff\xff"')" "ERROR 4 unknown opcode 65535"
expect "ACK to the request port" "$(ask 'b"\0\4\0\1"')" "ERROR 4 opcode 4 is not a request"
expect "ERROR to the request port: silence" "$(ask 'b"\0\5\0\1x\0"')" silence
expect "request over 512 bytes" "$(ask 'b"\0\1small.txt\0octet\0x\0" + b"1" * 600 + b"\0"')" \
	"ERROR 4 request longer than 512 bytes"
expect "oversize option value" "$(ask 'b"\0\1small.txt\0octet\0blksize\0" + b"9" * 100 + b"\0"')" \
	"ERROR 8 value of option blksize is longer than 64 bytes"
expect "oversize option name" "$(ask 'b"\0\1small.txt\0octet\0" + b"x" * 40 + b"\0" + b"1\0"')" \
	"ERROR 8 option name 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' is longer than 32 bytes"
expect "blksize 7" "$(ask 'b"\0\1small.txt\0octet\0blksize\x007\0"')" \
	"ERROR 8 option blksize: '7' is not an integer in 8..65464"
expect "windowsize 0" "$(ask 'b"\0\1small.txt\0octet\0windowsize\x000\0"')" \
	"ERROR 8 option windowsize: '0' is not an integer in 1..65535"
expect "option without a value" "$(ask 'b"\0\1small.txt\0octet\0blksize\0"')" \
	"ERROR 4 option blksize has no value"
expect "duplicate option" "$(ask 'b"\0\1small.txt\0octet\0tsize\x000\0TSIZE\x000\0"')" \
	"ERROR 8 option TSIZE is given twice"
expect "non-ASCII name" "$(ask 'b"\0\1bad\x1bname\0octet\0"')" "ERROR 2 file names are printable ASCII"
expect "a/../../ escape" "$(ask 'b"\0\1sub/../../outside\0octet\0"')" "ERROR 2 '..' in a path is refused"
expect "symlink loop" "$(ask 'b"\0\1loop\0octet\0"')" "ERROR 2 symbolic link loop or magic link refused"
expect "directory" "$(ask 'b"\0\1dir\0octet\0"')" "ERROR 2 not a regular file"
expect "FIFO: refused, not waited on" "$(ask 'b"\0\1fifo\0octet\0"')" "ERROR 2 not a regular file"
expect "missing file" "$(ask 'b"\0\1nope\0octet\0"')" "ERROR 1 file not found"
expect "escaped name in the log" "$(grep -cF "refused 'bad\\x1bname': file names are printable ASCII (error 2)" "$T/hvd.log")" 1

# --- negotiation (each transfer is then ended by the client's ERROR)
expect "options capped, tsize, timeout echoed, unknown ignored" \
	"$(ask 'b"\0\1big\0octet\0blksize\x0065464\0tsize\x000\0timeout\x002\0windowsize\x00100\0foo\0bar\0"')" \
	"OACK blksize=1468 tsize=33554432 timeout=2 windowsize=8"
expect "a timeout over 60 s is not acknowledged" "$(ask 'b"\0\1small.txt\0octet\0timeout\x0061\0blksize\x00512\0"')" \
	"OACK blksize=512"
expect "only unknown options: RFC 1350 answer" "$(ask 'b"\0\1small.txt\0octet\0multicast\0\0"')" "DATA 1 6"
expect "empty file: tsize left out (curl refuses tsize 0)" \
	"$(ask 'b"\0\1empty\0octet\0tsize\x000\0"')" "DATA 1 0"

# --- retransmission, give-up, TIDs, one open file per inode
expect "DATA 1 resent on the timer, then an ERROR at the deadline" "$($TFTPC "$TP" stall big)" \
	"resent 3 then ERROR 0 timed out: no acknowledgement for 1[0-9][0-9][0-9] ms after 1.[0-9] s"
expect "a failed transfer is logged at info with peer and name" \
	"$(grep -c "tftp: 127.0.0.1:[0-9]*: 'big' failed after 0 of 33554432 bytes in [0-9]* ms: timed out" "$T/hvd.log")" 1
expect "the OACK waits for the client; a repeated request resends it" \
	"$($TFTPC "$TP" again small.txt)" \
	"OACK blksize=512, nothing for 0.7 s, OACK blksize=512, same TID"
expect "a stranger's packets do not touch a transfer" "$($TFTPC "$TP" wrongtid blocks1428)" "$(sum "$B/blocks1428")"
ok=$((ok + 1))
expect "one open file per inode, closed after the last transfer" \
	"$($TFTPC "$TP" hold "$HVD_PID" "$B/big" big big link-big ./big)" "4 transfers, 1 open during, 0 after"

# --- hvd still serves, and its metrics add up
cu big "$T/out/cu" >/dev/null
expect "still serving after all that" "$(sum "$T/out/cu")" "$(sum "$B/big")"
ok=$((ok + 1))
for _ in $(seq 1 50); do
	m=$(sock GET /metrics)
	echo "$m" | grep -q '^hvd_tftp_transfers_active 0$' && break
	sleep 0.1
done
metric() { echo "$m" | sed -n "s/^$1 //p"; }
started=$(metric hvd_tftp_transfers_started_total)
completed=$(metric hvd_tftp_transfers_completed_total)
failed=$(metric hvd_tftp_transfers_failed_total)
expect "no transfer left" "$(metric hvd_tftp_transfers_active)" 0
expect "no file left open" "$(metric hvd_tftp_open_files)" 0
expect "completed transfers counted" "$completed" "$ok"
expect "started = completed + failed" "$started" "$((completed + failed))"
expect "failed transfers counted (aborts, timeouts)" "$failed" '[1-9]*'
expect "refusals counted by code" "$(metric 'hvd_tftp_requests_refused_total{code="2"}')" '[1-9]*'
expect "bytes sent counted" "$(metric hvd_tftp_sent_bytes_total)" '[1-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]*'
finish
