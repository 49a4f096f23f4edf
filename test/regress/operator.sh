#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Nothing destructive by accident, failures that explain themselves (issue
# 20): hvctl backup's refusals and atomic 0600 file; the state directory's
# lock (a second hvd, hvd --restore under a running hvd); api-socket never
# removing what is not a socket; hvd --version; start-up failures on stderr
# without syslog; a read-only state directory named with its errno; hvd -n
# rejecting a missing dhcp-interface; nothing created before the config is
# checked.  Mount namespaces (unshare -m) stand in for a host without
# /dev/log, for one with a syslog daemon (a private /dev whose /dev/log is
# a test listener) and for a read-only state directory: root only.
# The bash -c scripts below take their values as "$1"...: quoted on purpose.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"
need_cmd unshare mount tar script
unshare -m true 2>/dev/null || need "root: unshare -m, for a host without /dev/log and a read-only mount"

# nosyslog CMD...: CMD in a mount namespace where nothing answers on
# /dev/log (if the host has one, /dev/null is bind-mounted over it, which
# follows a symlink to journald's socket).  Exit 98: syslog still answers.
nosyslog() {
	unshare -m -- bash -c '
		if [ -e /dev/log ]; then mount --bind /dev/null /dev/log || exit 97; fi
		python3 -c "
import socket, sys
for t in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
    s = socket.socket(socket.AF_UNIX, t)
    try:
        s.connect(\"/dev/log\")
        sys.exit(1)
    except OSError:
        pass
" || exit 98
		exec "$@"' nosyslog "$@"
}

# --- hvd --version
set +e
out=$("$HVD" --version 2>&1); rc=$?
set -e
expect_eq "hvd --version: exit 0" "$rc" 0
expect "hvd --version prints the version" "$out" "hvd [0-9]*.[0-9]*.[0-9]*"
expect "hvd's usage lists --version" "$("$HVD" -x 2>&1 || true)" "*--version*"

# --- nothing is created before the configuration is checked
mkdir "$T/fresh"
printf 'state-dir %s\napi-socket %s\nmesh-anchor off\ndhcp-interface nosuch0\n' \
	"$T/fresh" "$T/fresh.sock" > "$T/badif.conf"
set +e
out=$("$HVD" -n -f "$T/badif.conf" 2>&1); rc=$?
set -e
expect_eq "-n with dhcp-interface nosuch0: exit 1" "$rc" 1
expect_eq "-n names the missing interface" "$out" \
	"$T/badif.conf: dhcp-interface nosuch0: no such network interface on this host"
set +e
out=$("$HVD" -n --restore "$T/nosuch.tar" 2>&1); rc=$?
set -e
expect "-n with --restore is a usage error, not a silent no-op" "$rc $out" "2 usage: hvd*"
set +e
timeout 20 "$HVD" -d -f "$T/badif.conf" > "$T/badif.log" 2>&1; rc=$?
set -e
expect_eq "start with a missing dhcp-interface: exit 1" "$rc" 1
expect "... says why" "$(cat "$T/badif.log")" "*dhcp-interface nosuch0: no such network interface*"
expect_eq "... and the fresh state directory is still empty" "$(ls -A "$T/fresh")" ""
expect "... and no socket was made" "$([ -e "$T/fresh.sock" ] && echo made || echo none)" none
printf 'state-dir %s\nbogus 1\n' "$T/fresh" > "$T/bogus.conf"
set +e
timeout 20 "$HVD" -d -f "$T/bogus.conf" > "$T/bogus.log" 2>&1; rc=$?
set -e
expect_eq "start with a config error: exit 1, FILE:LINE named" "$rc $(cat "$T/bogus.log")" \
	"1 $T/bogus.conf:2: unknown keyword 'bogus'"
expect_eq "... and the state directory is still empty" "$(ls -A "$T/fresh")" ""

# --- api-socket: what is not a socket is never removed
echo "operator's notes" > "$T/notes"
printf 'state-dir %s\napi-socket %s\nmesh-anchor off\n' "$T/st-file" "$T/notes" > "$T/file.conf"
set +e
timeout 20 "$HVD" -d -f "$T/file.conf" > "$T/file.log" 2>&1; rc=$?
set -e
expect_eq "regular file at api-socket: exit 1" "$rc" 1
expect "... names the path and what is there" "$(cat "$T/file.log")" \
	"*api-socket $T/notes: a regular file is there, not a socket*"
expect_eq "... and the file is still there, unchanged" "$(cat "$T/notes" 2>&1)" "operator's notes"
mkdir "$T/adir"
printf 'state-dir %s\napi-socket %s\nmesh-anchor off\n' "$T/st-dir" "$T/adir" > "$T/dir.conf"
set +e
timeout 20 "$HVD" -d -f "$T/dir.conf" > "$T/dir.log" 2>&1; rc=$?
set -e
expect "directory at api-socket: exit 1, named" "$rc $(cat "$T/dir.log")" \
	"1 *api-socket $T/adir: a directory is there, not a socket*"
expect "... and the directory is still there" "$([ -d "$T/adir" ] && echo yes)" yes

# --- the state directory's lock
write_conf
start_hvd
expect_eq "hvd.lock holds hvd's PID" "$(cat "$T/state/hvd.lock")" "$HVD_PID"
expect "hvd.lock is private" "$(stat -c %a "$T/state/hvd.lock")" 600
set +e
start=$(date +%s)
timeout 10 "$HVD" -d -f "$T/hvd.conf" > "$T/second.log" 2>&1; rc=$?
took=$(( $(date +%s) - start ))
set -e
expect_eq "second hvd on the same state: exit 1" "$rc" 1
expect "... at once" "$took" "[0-2]"
expect_eq "... naming the PID holding it" "$(cat "$T/second.log")" \
	"state directory $T/state is in use by hvd pid $HVD_PID"
expect "the first still serves" "$("$HVCTL" status)" "*hvd*"

# --- hvctl backup: no option for a file, no overwrite without --force, 0600
mkdir "$T/bk"
set +e
out=$(cd "$T/bk" && "$HVCTL" backup -x 2>&1); rc=$?
set -e
expect_eq "backup -x: exit 2" "$rc" 2
expect "... names it" "$out" \
	"hvctl backup: '-x' looks like an option, not a file name; use ./-x*"
expect_eq "... and writes no file" "$(ls -A "$T/bk")" ""
out=$(umask 000; "$HVCTL" backup "$T/bk/F")
expect "backup F" "$out" "backup written to $T/bk/F (* bytes, mode 0600)*"
expect_eq "F is mode 0600 (under umask 000)" "$(stat -c %a "$T/bk/F")" 600
expect_eq "F is a backup" "$(tar -tf "$T/bk/F" | head -3 | tr '\n' ' ')" "MANIFEST hvd.db master.key "
before="$(stat -c %i "$T/bk/F") $(sha256sum < "$T/bk/F")"
set +e
out=$("$HVCTL" backup "$T/bk/F" 2>&1); rc=$?
set -e
expect_eq "second backup F: exit 1" "$rc" 1
expect_eq "... names F and --force" "$out" "hvctl backup: $T/bk/F exists; give --force to replace it"
expect_eq "... F unchanged" "$(stat -c %i "$T/bk/F") $(sha256sum < "$T/bk/F")" "$before"
echo "old, world-readable" > "$T/bk/G"
chmod 644 "$T/bk/G"
set +e
"$HVCTL" backup "$T/bk/G" > /dev/null 2>&1; rc=$?
set -e
expect_eq "backup over another file: refused, file unchanged" "$rc $(cat "$T/bk/G")" "1 old, world-readable"
expect "backup --force G" "$("$HVCTL" backup --force "$T/bk/G")" "backup written to $T/bk/G *"
expect_eq "... G is now a backup" "$(tar -tf "$T/bk/G" | head -3 | tr '\n' ' ')" "MANIFEST hvd.db master.key "
expect_eq "... and mode 0600, not the old file's 0644" "$(stat -c %a "$T/bk/G")" 600
expect "backup FILE --force, option after the file" "$("$HVCTL" backup "$T/bk/F" --force)" "backup written to $T/bk/F *"
expect_eq "no temporary file left beside the backups" "$(ls -A "$T/bk" | tr '\n' ' ')" "F G "

# --- hvd --restore under the running hvd
set +e
out=$(timeout 10 "$HVD" -f "$T/hvd.conf" --restore "$T/bk/F" 2>&1); rc=$?
set -e
expect_eq "restore under a running hvd: refused, naming it" "$rc $out" \
	"1 state directory $T/state is in use by hvd pid $HVD_PID"
expect "the running hvd still serves" "$("$HVCTL" status)" "*hvd*"

# --- no syslog: a failed daemon-mode start (no -d) is on stderr
set +e
nosyslog "$HVD" -f "$T/hvd.conf" > "$T/nosyslog.out" 2> "$T/nosyslog.err"; rc=$?
set -e
expect_eq "without /dev/log, no -d: exit 1, the failure on stderr" "$rc $(cat "$T/nosyslog.err")" \
	"1 state directory $T/state is in use by hvd pid $HVD_PID"

# --- with a syslog daemon: a daemon-mode failure goes to syslog, and to
# stderr only when that is a terminal; the nosyslog trick above silences
# a live /dev/log.  In a private /dev: a tmpfs with null, zero, urandom,
# tty and pts from the real one, and /dev/log a listener writing to a file.
set +e
unshare -m -- bash -c '
	T=$1 HVD=$2
	mkdir "$T/olddev" && mount --rbind /dev "$T/olddev" && mount -t tmpfs tmpfs /dev || exit 97
	for d in null zero urandom tty; do
		touch "/dev/$d" && mount --bind "$T/olddev/$d" "/dev/$d" || exit 97
	done
	mkdir /dev/pts && mount --bind "$T/olddev/pts" /dev/pts && ln -s pts/ptmx /dev/ptmx || exit 97
	python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(\"/dev/log\")
s.settimeout(20)
open(sys.argv[1] + \".ready\", \"w\").close()
with open(sys.argv[1], \"w\") as f:
    while True:
        m = s.recv(4096).decode()
        if m == \"stop\":
            break
        f.write(m + \"\\n\")
        f.flush()
" "$T/syslog.txt" &
	py=$!
	for _ in $(seq 1 100); do [ -e "$T/syslog.txt.ready" ] && break; sleep 0.1; done
	"$HVD" -f "$T/hvd.conf" > /dev/null 2> "$T/syslog.err"
	echo "rc=$?" >> "$T/syslog.err"
	script -qec "\"$HVD\" -f \"$T/hvd.conf\"" /dev/null < /dev/null > "$T/syslog.tty"
	unshare -m -- bash -c "mount --bind /dev/null /dev/log && \"$HVD\" -f \"$T/hvd.conf\"" \
		> /dev/null 2> "$T/syslog.bound"
	python3 -c "import socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b\"stop\", \"/dev/log\")"
	wait "$py"
	umount -l "$T/olddev"' withsyslog "$T" "$HVD"; rc=$?
set -e
msg="state directory $T/state is in use by hvd pid $HVD_PID"
expect_eq "private /dev with a syslog listener set up" "$rc" 0
expect "with syslog: the failure reaches syslog, as hvd[PID]" "$(cat "$T/syslog.txt" 2>&1)" "*hvd\[[0-9]*\]: $msg*"
expect_eq "... not a stderr that is no terminal" "$(cat "$T/syslog.err" 2>&1)" "rc=1"
expect_eq "... and a terminal's stderr too" "$(tr -d '\r' < "$T/syslog.tty" 2>&1)" "$msg"
expect_eq "/dev/null bound over a live /dev/log: the failure on stderr" "$(cat "$T/syslog.bound" 2>&1)" "$msg"
expect_eq "... and syslog got two messages, not three" "$(grep -c "in use by" "$T/syslog.txt" 2>&1)" 2

# --- a read-only state directory is named with its errno
mkdir "$T/ro"
printf 'state-dir %s\napi-socket %s\nmesh-anchor off\n' "$T/ro" "$T/ro.sock" > "$T/ro.conf"
printf 'state-dir %s\napi-socket %s\nmesh-anchor off\n' "$T/ro/sub" "$T/ro.sock" > "$T/rosub.conf"
set +e
unshare -m -- bash -c 'mount -t tmpfs -o ro tmpfs "$1" || exit 97; "$2" -d -f "$3"' \
	ro "$T/ro" "$HVD" "$T/ro.conf" > "$T/ro.log" 2>&1; rc=$?
set -e
expect_eq "read-only state dir: exit 1, dir and errno named" "$rc $(cat "$T/ro.log")" \
	"1 state directory $T/ro: Read-only file system"
set +e
unshare -m -- bash -c 'mount -t tmpfs -o ro tmpfs "$1" || exit 97; "$2" -d -f "$3"' \
	ro "$T/ro" "$HVD" "$T/rosub.conf" > "$T/rosub.log" 2>&1; rc=$?
set -e
expect_eq "state dir that cannot be made: exit 1, named" "$rc $(cat "$T/rosub.log")" \
	"1 state directory $T/ro/sub: Read-only file system"

# --- the lock does not outlive hvd: gone after a clean stop, stale after
# kill -9 (with a stale socket) and taken over by the next hvd
stop_hvd
expect "clean stop removes hvd.lock" "$([ -e "$T/state/hvd.lock" ] && echo left || echo gone)" gone
start_hvd
kill -9 "$HVD_PID"; wait "$HVD_PID" 2>/dev/null || true
dead=$HVD_PID; HVD_PID=
expect_eq "kill -9 leaves hvd.lock and the socket" \
	"$(cat "$T/state/hvd.lock") $([ -S "$T/hvd.sock" ] && echo socket)" "$dead socket"
start_hvd
expect "next hvd takes over the stale lock and socket" "$("$HVCTL" status)" "*hvd*"
expect_eq "... and writes its own PID" "$(cat "$T/state/hvd.lock")" "$HVD_PID"
finish
