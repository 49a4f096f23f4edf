#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# packaging.deb: the Debian packages (debian/) build from a copy of the tree
# and install into a fresh minimal Debian 12 root as a newcomer would.
#
#   - dpkg-buildpackage -us -uc -b in a copy of the files git tracks, plus
#     untracked files it does not ignore (a developer's uncommitted work),
#     as they are in the working tree;
#   - debootstrap --variant=minbase bookworm from this machine's mirror (the
#     root is cached as a tarball under ${XDG_CACHE_HOME:-~/.cache}/hv-packaging),
#     with /proc /sys /dev bound in and this machine's apt sources;
#   - apt-get install ./hypervisor_*.deb ./hypervisor-agent_*.deb there, so
#     their Depends come from the mirror; the files, their modes and owners,
#     the conffile, the hvd user and directories; systemd-analyze verify
#     --root on both units; hvd -n on the shipped config; hvd itself, as its
#     unit runs it (user hvd, the unit's capabilities, in a network
#     namespace of its own), serving GET /healthz on its socket, and hvctl
#     in the root talking to it; apt-get purge removes programs and
#     conffile and keeps the state directory with what hvd wrote.
#
# Needs root, the network (the mirror) and about 500 MB under /tmp.  Every
# process it starts is stopped by PID, every mount undone and every
# directory removed at exit.
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
suite=bookworm

[ "$(id -u)" -eq 0 ] || need "root (debootstrap, chroot, bind mounts)"
need_cmd dpkg-buildpackage dpkg-checkbuilddeps dpkg-deb -- dpkg-dev
need_cmd dh -- debhelper
need_cmd debootstrap
need_cmd systemd-analyze -- systemd
need_cmd chroot tar unshare mount umount curl ip
if . /etc/os-release 2>/dev/null && [ "${VERSION_CODENAME:-}" != "$suite" ]; then
	need "a Debian 12 ($suite) machine: the packages are built against its libraries (this is ${PRETTY_NAME:-unknown})"
fi
if ! missing=$(cd "$top" && dpkg-checkbuilddeps 2>&1); then
	need "the build dependencies of debian/control: ${missing##*: }"
fi

hv_tmpdir packaging
# Everything below is removed at exit, and /dev, /proc and /sys are bound
# into ROOT: T must be the fresh directory, never empty.
case $T in /tmp/hv-packaging.?*) ;; *) echo "packaging.deb: bad scratch dir '$T'"; exit 1 ;; esac
ROOT=$T/root
MOUNTS=()
t0=$(date +%s)

# Processes left in the root (by our apt-get, our hvd): those whose root
# directory is ours, and nothing else.
kill_in_root() {
	local p r
	for p in /proc/[0-9]*; do
		r=$(readlink "$p/root" 2>/dev/null) || continue
		if [ "$r" = "$ROOT" ]; then kill -9 "${p#/proc/}" 2>/dev/null || true; fi
	done
}

cleanup() {
	local i m left=
	if [ -n "$HVD_PID" ]; then
		kill "$HVD_PID" 2>/dev/null || true
		wait "$HVD_PID" 2>/dev/null || true
	fi
	kill_tracked
	[ -d "$ROOT" ] && kill_in_root
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		umount -l "${MOUNTS[$i]}" 2>/dev/null || true
	done
	# Never rm -rf over a live bind of /dev or /sys.
	while read -r _ m _; do
		case $m in "$T"/*) left="$left $m" ;; esac
	done < /proc/self/mounts
	if [ -n "$left" ]; then
		echo "packaging.deb: still mounted, $T left in place:$left"
	else
		rm -rf --one-file-system "$T"
	fi
}
trap cleanup EXIT

phase() { echo "--- $* ($(($(date +%s) - t0)) s)"; }
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }

# --- the mirror this machine uses, for debootstrap and apt in the root

# host_mirror: the first URI serving $suite itself in the apt sources,
# deb822 (*.sources) or one-line (*.list).
host_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v suite="$suite" 'BEGIN { RS = ""; FS = "\n" }
			{ u = ""; s = ""; off = 0
			  for (i = 1; i <= NF; i++) {
				if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); u = $i }
				if ($i ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", $i); s = " " $i " " }
				if ($i ~ /^Enabled:[ \t]*no/) off = 1
			  }
			  if (!off && u != "" && index(s, " " suite " ")) { split(u, a, " "); print a[1]; exit } }' "$f"
	done
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk -v suite="$suite" '$1 == "deb" { i = 2
			if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
			if ($(i + 1) == suite) { print $i; exit } }'
}
mirror=$(host_mirror | head -n 1) || true
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}
echo "mirror: $mirror"
if ! curl -sfI --max-time 20 "$mirror/dists/$suite/Release" >/dev/null; then
	need "the Debian mirror $mirror (network): debootstrap and apt-get use it"
fi

# --- build the packages from a copy of the tree

phase "copying the tree"
mkdir -p "$T/src"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# Tracked and untracked-but-not-ignored files as they are on disk;
	# a tracked file deleted in the working tree is left out.
	git -C "$top" ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			if [ -e "$top/$f" ] || [ -L "$top/$f" ]; then printf '%s\0' "$f"; fi
		done | sort -zu | tar -C "$top" --null -T - -cf - | tar -C "$T/src" -xf -
else
	tar -C "$top" --exclude=./build --exclude='./build-*' --exclude='./obj-*' \
		--exclude=./debian/tmp -cf - . | tar -C "$T/src" -xf -
fi
expect "the copy has debian/rules" "$(ls "$T/src/debian/rules" 2>&1)" "$T/src/debian/rules"

phase "dpkg-buildpackage -us -uc -b"
rc=0
(cd "$T/src" && DEB_BUILD_OPTIONS=parallel=2 dpkg-buildpackage -us -uc -b) \
	> "$T/build.log" 2>&1 || rc=$?
expect_eq "dpkg-buildpackage -us -uc -b" "$rc" 0
if [ "$rc" -ne 0 ]; then
	echo "--- the build's first errors, then its end"
	grep -m 10 -E 'error:|Error [0-9]|CMake Error' "$T/build.log" || true
	echo "..."
	tail -n 15 "$T/build.log"
	report_checks
fi
version=$(cd "$T/src" && dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
deb=$T/hypervisor_${version}_$arch.deb
agent_deb=$T/hypervisor-agent_${version}_$arch.deb
expect "hypervisor_${version}_$arch.deb built" "$(ls "$deb" 2>&1)" "$deb"
expect "hypervisor-agent_${version}_$arch.deb built" "$(ls "$agent_deb" 2>&1)" "$agent_deb"
if [ ! -f "$deb" ] || [ ! -f "$agent_deb" ]; then report_checks; fi
expect "hypervisor Depends: systemd | systemd-standalone-sysusers (sysusers)" \
	"$(dpkg-deb -f "$deb" Depends)" "*systemd | systemd-standalone-sysusers*"
postinst=$(dpkg-deb -I "$deb" postinst)
u=$(printf '%s\n' "$postinst" | grep -n -m1 systemd-sysusers | cut -d: -f1)
d=$(printf '%s\n' "$postinst" | grep -n -m1 systemd-tmpfiles | cut -d: -f1)
expect_eq "postinst makes the hvd user (line ${u:-none}) before its directories (line ${d:-none})" \
	"$([ -n "$u" ] && [ -n "$d" ] && [ "$u" -lt "$d" ] && echo yes)" yes

# --- a fresh minimal Debian 12 root

phase "a fresh $suite minbase root"
cache=${XDG_CACHE_HOME:-$HOME/.cache}/hv-packaging
base=$cache/$suite-minbase.tar
mkdir -p "$cache"
if [ ! -f "$base" ] || [ "$(cat "$base.mirror" 2>/dev/null)" != "$mirror" ]; then
	echo "debootstrap --variant=minbase $suite (cached in $base)"
	b=$T/debootstrap
	if ! debootstrap --variant=minbase "$suite" "$b" "$mirror" > "$cache/debootstrap.log" 2>&1; then
		tail -n 20 "$cache/debootstrap.log"
		expect_eq "debootstrap --variant=minbase $suite" failed ok
		report_checks
	fi
	tar -C "$b" -cf "$base.tmp.$$" . && mv "$base.tmp.$$" "$base"
	echo "$mirror" > "$base.mirror"
	rm -rf --one-file-system "$b"
fi
mkdir -p "$ROOT"
tar -C "$ROOT" -xf "$base"
# Each bind is made private at once: a bind of a shared /dev would be a peer
# of it, and the dev/pts bind (and its unmount) would propagate to the host.
for m in proc sys dev dev/pts; do
	mkdir -p "$ROOT/$m"
	mount --bind "/$m" "$ROOT/$m"
	MOUNTS+=("$ROOT/$m")
	mount --make-private "$ROOT/$m"
done
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
# This machine's apt sources, all but those signed by a keyring the root
# lacks (a third-party repository): apt-get update would fail on them.
rm -f "$ROOT/etc/apt/sources.list" "$ROOT"/etc/apt/sources.list.d/*
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	ok=yes
	for k in $(sed -n 's/.*[Ss]igned-[Bb]y[:=][[:space:]]*\([^] ]*\).*/\1/p' "$f"); do
		[ -f "$ROOT$k" ] || ok=no
	done
	if [ $ok = yes ]; then
		cp "$f" "$ROOT$f"
	else
		echo "not copied into the root: $f (its keyring is not there)"
	fi
done
# No service starts inside the root during apt-get (policy-rc.d, 101).
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"

phase "apt-get install ./hypervisor_*.deb ./hypervisor-agent_*.deb"
mkdir -p "$ROOT/tmp/debs"
cp "$deb" "$agent_deb" "$ROOT/tmp/debs/"
rc=0
in_root sh -c 'cd /tmp/debs && apt-get update -q &&
	apt-get install -y -q --no-install-recommends ./hypervisor_*.deb ./hypervisor-agent_*.deb' \
	> "$T/install.log" 2>&1 || rc=$?
expect_eq "apt-get install of both packages in the root" "$rc" 0
if [ "$rc" -ne 0 ]; then
	tail -n 40 "$T/install.log"
	report_checks
fi
expect_eq "dpkg: hypervisor installed" \
	"$(in_root dpkg-query -W -f '${Status}' hypervisor)" "install ok installed"
expect_eq "dpkg: hypervisor-agent installed" \
	"$(in_root dpkg-query -W -f '${Status}' hypervisor-agent)" "install ok installed"

# --- what the packages installed

phase "files"
# name_in_root passwd|group ID: the root's name for a uid or gid (the
# machine's own /etc/passwd may give that number to someone else).
name_in_root() {
	local n
	n=$(awk -F: -v id="$2" '$3 == id { print $1; exit }' "$ROOT/etc/$1")
	echo "${n:-$2}"
}
# owner_of PATH: the owner (a name in the root) of a path on this machine.
owner_of() {
	local u
	u=$(stat -c %u "$1" 2>/dev/null) || { echo missing; return; }
	name_in_root passwd "$u"
}
# mode_of PATH: "MODE OWNER:GROUP" of PATH in the root, or "missing".
mode_of() {
	local m u g
	read -r m u g < <(stat -c '%a %u %g' "$ROOT$1" 2>/dev/null) || { echo missing; return; }
	echo "$m $(name_in_root passwd "$u"):$(name_in_root group "$g")"
}
for p in /usr/sbin/hvd /usr/bin/hvctl /usr/sbin/hv-agent; do
	expect_eq "$p 0755 root" "$(mode_of "$p")" "755 root:root"
done
for p in /etc/hypervisor/hvd.conf /lib/systemd/system/hvd.service \
	/lib/systemd/system/hv-agent.service /usr/lib/sysusers.d/hypervisor.conf \
	/usr/lib/tmpfiles.d/hypervisor.conf /usr/share/man/man1/hvctl.1.gz \
	/usr/share/man/man5/hvd.conf.5.gz /usr/share/man/man8/hvd.8.gz \
	/usr/share/man/man8/hv-agent.8.gz /usr/share/bash-completion/completions/hvctl \
	/usr/share/doc/hypervisor/README.md /usr/share/doc/hypervisor/copyright \
	/usr/share/hypervisor/ipxe/stage1.ipxe; do
	expect_eq "$p 0644 root" "$(mode_of "$p")" "644 root:root"
done
expect_eq "hvd.conf is the shipped one" \
	"$(cmp "$ROOT/etc/hypervisor/hvd.conf" "$top/packaging/hvd.conf" 2>&1 && echo same)" same
expect "hvd.conf is a conffile of hypervisor" \
	"$(cat "$ROOT/var/lib/dpkg/info/hypervisor.conffiles" 2>&1)" "*/etc/hypervisor/hvd.conf*"
expect_eq "hvd.service's Documentation= exists" \
	"$(sed -n 's|^Documentation=file://||p' "$ROOT/lib/systemd/system/hvd.service" |
		while read -r d; do [ -f "$ROOT$d" ] && echo yes || echo "no: $d"; done)" yes
expect "hvctl --version" "$(in_root hvctl --version 2>&1)" "*${version%-*}*"
expect "hv-agent links (ldd finds every library)" \
	"$(in_root ldd /usr/sbin/hv-agent 2>&1 | grep -c 'not found' || true)" 0

phase "the hvd user and directories"
expect "getent passwd hvd" "$(in_root getent passwd hvd)" "hvd:x:*:*:*:/var/lib/hypervisor:*"
expect "getent group hvd" "$(in_root getent group hvd)" "hvd:x:*"
expect_eq "/var/lib/hypervisor 0700 hvd" "$(mode_of /var/lib/hypervisor)" "700 hvd:hvd"
expect_eq "/run/hypervisor 0750 hvd" "$(mode_of /run/hypervisor)" "750 hvd:hvd"

phase "systemd-analyze verify --root"
for u in hvd.service hv-agent.service; do
	rc=0
	out=$(systemd-analyze verify --man=no --root="$ROOT" "$u" 2>&1) || rc=$?
	echo "systemd-analyze verify $u (rc $rc):"
	if [ -n "$out" ]; then printf '%s\n' "$out" | sed 's/^/     /'; fi
	expect_eq "systemd-analyze verify --root $u" "$rc" 0
	expect_eq "systemd-analyze verify $u has no complaint about $u" \
		"$(printf '%s\n' "$out" | grep -c "$u" || true)" 0
done

# --- hvd on the installed config

phase "hvd on /etc/hypervisor/hvd.conf"
# As the unit runs it: user hvd, the capabilities of its
# AmbientCapabilities=, no new privileges; in a network namespace of its
# own (loopback up) so that its agent listener and mesh helper never meet
# this machine's.
# shellcheck disable=SC2054
as_hvd=(setpriv --reuid=hvd --regid=hvd --init-groups --no-new-privs
	--inh-caps=-all,+net_bind_service,+net_admin
	--ambient-caps=-all,+net_bind_service,+net_admin
	--bounding-set=-all,+net_bind_service,+net_admin)
rc=0
out=$(in_root "${as_hvd[@]}" /usr/sbin/hvd -n -f /etc/hypervisor/hvd.conf 2>&1) || rc=$?
[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/     /'
expect_eq "hvd -n -f /etc/hypervisor/hvd.conf (as hvd)" "$rc" 0

unshare --net sh -c 'ip link set lo up && exec "$@"' sh \
	chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	"${as_hvd[@]}" /usr/sbin/hvd -d -f /etc/hypervisor/hvd.conf > "$T/hvd.log" 2>&1 &
HVD_PID=$!
sock=$ROOT/run/hypervisor/hvd.sock
waited=$(wait_for 20 curl -sf --unix-socket "$sock" http://localhost/healthz) || true
expect "hvd healthy on its socket (waited $waited s)" "$waited" "[0-9]*"
expect_eq "GET /healthz over /run/hypervisor/hvd.sock" \
	"$(get --unix-socket "$sock" http://localhost/healthz)" 200
expect_eq "hvd runs as hvd" "$(owner_of "/proc/$HVD_PID")" hvd
expect_eq "hvd's socket is hvd's, 0660" "$(stat -c %a "$sock" 2>&1) $(owner_of "$sock")" "660 hvd"
src=$ROOT/usr/share/hypervisor/hypervisor-source.tar.gz
expect "the package ships this version's source" \
	"$(tar -tzf "$src" 2>/dev/null | grep -c -x -e '[^/]*/daemon/main.c' -e '[^/]*/LICENSE' -e '[^/]*/debian/rules')" 3
expect_eq "... without the build's output" "$(tar -tzf "$src" 2>/dev/null | grep -c -e '/obj-' -e '/debian/tmp/' || true)" 0
curl -s --unix-socket "$sock" -o "$T/source.got" -w '%{http_code}' http://localhost/source.tar.gz > "$T/source.code" || true
expect_eq "hvd serves it at GET /source.tar.gz (AGPL), byte for byte" \
	"$(cat "$T/source.code") $(cmp -s "$src" "$T/source.got" && echo same)" "200 same"
rc=0
out=$(in_root hvctl status 2>&1) || rc=$?
expect_eq "hvctl status in the root (default socket)" "$rc" 0
[ "$rc" -eq 0 ] || printf '%s\n' "$out" | sed 's/^/     /'
kill "$HVD_PID"
rc=0
wait "$HVD_PID" || rc=$?
HVD_PID=
expect_eq "hvd exits 0 on SIGTERM" "$rc" 0
expect_eq "hvd wrote its inventory: /var/lib/hypervisor/hvd.db owned by hvd" \
	"$(owner_of "$ROOT/var/lib/hypervisor/hvd.db")" hvd
if [ "$failures" -ne 0 ]; then
	echo "--- hvd log"
	cat "$T/hvd.log"
fi

# --- purge

phase "apt-get purge -y hypervisor hypervisor-agent"
state_before=$(cd "$ROOT/var/lib/hypervisor" && find . | sort)
rc=0
in_root apt-get purge -y -q hypervisor hypervisor-agent > "$T/purge.log" 2>&1 || rc=$?
expect_eq "apt-get purge -y hypervisor hypervisor-agent" "$rc" 0
[ "$rc" -eq 0 ] || tail -n 20 "$T/purge.log"
for p in /usr/sbin/hvd /usr/bin/hvctl /usr/sbin/hv-agent /etc/hypervisor/hvd.conf \
	/etc/hypervisor /lib/systemd/system/hvd.service /lib/systemd/system/hv-agent.service; do
	expect_eq "purge removed $p" "$(mode_of "$p")" missing
done
expect_eq "dpkg knows neither package after purge" \
	"$(in_root dpkg-query -W -f '${db:Status-Abbrev}\n' hypervisor hypervisor-agent 2>/dev/null | grep -c '^.i' || true)" 0
expect_eq "purge kept /var/lib/hypervisor" "$(mode_of /var/lib/hypervisor)" "700 hvd:hvd"
expect_eq "purge kept what hvd wrote there" \
	"$(cd "$ROOT/var/lib/hypervisor" && find . | sort)" "$state_before"
expect "purge kept the hvd user, owner of that state (Debian keeps system users)" \
	"$(in_root getent passwd hvd)" "hvd:*"

phase "done"
report_checks
