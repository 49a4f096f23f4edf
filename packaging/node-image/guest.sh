#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Builds the lab's test guest into OUTDIR (default build/guest): a PV domU
# made from Debian 12 packages alone, for the VM tests of the virtual rack.
#
#   vmlinuz    Debian's 6.1 kernel (the dom0 one: it also runs as a PV domU;
#              hvc0 and Xen PV support are built in)
#   initramfs  cpio.gz: busybox, xen-netfront (and what it depends on) and
#              an /init that, from the kernel command line
#                hvguest.ip=A/P     puts A/P on eth0 and prints
#                                   "hv-guest: up A/P"
#                hvguest.peer=B     pings B, retrying for hvguest.wait
#                                   seconds (default 60), and prints
#                                   "hv-guest: ping B ok" or "... failed"
#                hvguest.tick=S     prints "hv-guest: tick N up U" every S
#                                   seconds: N counts in RAM, U is the
#                                   uptime, so a guest that moved without
#                                   rebooting carries both on
#                hvguest.watch=B    pings B every 0.2 s for ever and prints
#                                   "hv-guest: watch B gap G s" when a
#                                   reply comes more than a second after
#                                   the one before (G, from the uptime),
#                                   and "hv-guest: watch
#                                   B ok N" every 50 replies
#                hvguest.serve=K    serves K KiB of zeros as
#                                   http://<ip>/blob (busybox httpd)
#                hvguest.fetch=B    after the ping, fetches http://B/blob
#                                   (retrying for hvguest.wait seconds)
#                                   and prints "hv-guest: fetch B N bytes
#                                   in T s, R kbit/s"
#                hvguest.shell=1    runs each line typed on the console
#                                   (hvc0) as a command of this init, so
#                                   "fetch_blob B" there fetches too
#              and then stays up (answering pings) until Xen asks it to
#              power off (it powers off) or reboot (it reboots).  Everything
#              goes to the console (console=hvc0).
#
# Downloads are cached in OUTDIR/cache; a .deb of the right version found in
# any directory of HV_DEB_CACHE (colon-separated, e.g. a node image's cache)
# is used instead of downloading it.  A stamp holds a hash of the inputs;
# nothing is rebuilt while it matches.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${1:-$top/build/guest}" && cd "${1:-$top/build/guest}" && pwd)
cache=$out/cache
say() { echo "guest: $*"; }
die() { echo "guest: $*" >&2; exit 1; }

for tool in apt-get apt-cache dpkg cpio gzip sha256sum; do
	command -v "$tool" >/dev/null || die "$tool missing (run packaging/deps.sh)"
done
modules=(xen-netfront)

kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
[ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 (apt-get update?)"
pkgs=("$kpkg" busybox-static)
mapfile -t versions < <(apt-cache policy "${pkgs[@]}" 2>/dev/null |
    awk '/^[^ ].*:$/ {p = substr($1, 1, length($1) - 1)} $1 == "Candidate:" {print p "=" $2}')
[ ${#versions[@]} -eq ${#pkgs[@]} ] && [[ " ${versions[*]} " != *"=(none) "* ]] ||
    die "no candidate version for one of ${pkgs[*]}: ${versions[*]}"
# Sed's script and this file are the guest's only other inputs.
init_text=$(sed -n '/^# --- guest init ---$/,/^# --- end ---$/p' "$0")
stamp=$(printf '%s\n' "${versions[@]}" "${modules[@]}" "$init_text" | sha256sum | cut -d' ' -f1)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] &&
    [ -s "$out/vmlinuz" ] && [ -s "$out/initramfs" ]; then
	say "up to date in $out"
	exit 0
fi

mkdir -p "$cache"
debs=()
for pv in "${versions[@]}"; do
	p=${pv%%=*} v=${pv#*=}
	f=
	IFS=: read -r -a dirs <<< "$cache:${HV_DEB_CACHE:-}"
	for dir in "${dirs[@]}"; do
		[ -n "$dir" ] || continue
		for d in "$dir/${p}"_*.deb; do
			[ -f "$d" ] && [ "$(dpkg-deb -f "$d" Version)" = "$v" ] && f=$d
		done
		[ -n "$f" ] && break
	done
	if [ -z "$f" ]; then
		say "downloading $p $v"
		rm -f "$cache/${p}"_*.deb
		(cd "$cache" && apt-get download -q "$p=$v" >/dev/null 2>"$cache/apt.log") ||
		    { cat "$cache/apt.log" >&2; die "apt-get download $p failed"; }
		for d in "$cache/${p}"_*.deb; do f=$d; done
		[ -f "$f" ] || die "apt-get download $p left no .deb"
	fi
	debs+=("$f")
done

work=$out/work
rm -rf "$work"
mkdir -p "$work/pkg" "$work/root"
trap 'rm -rf "$work"' EXIT
for d in "${debs[@]}"; do dpkg -x "$d" "$work/pkg"; done
pkg=$work/pkg root=$work/root
kver=$(ls "$pkg/lib/modules")
cp "$pkg/boot/vmlinuz-$kver" "$out/vmlinuz.new"

mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,lib/modules}
cp "$pkg/bin/busybox" "$root/bin/busybox"
for app in $("$root/bin/busybox" --list-full); do
	[ -e "$root/$app" ] || ln -s /bin/busybox "$root/$app"
done

# Modules with their dependencies first (from each module's depends=).
declare -A mpath=() mdone=()
while read -r f; do
	n=${f##*/}
	n=${n%.ko}
	mpath[${n//-/_}]=$f
done < <(cd "$pkg/lib/modules/$kver" && find kernel -name '*.ko')
order=()
visit() {
	local n=${1//-/_} d
	[ -n "${mdone[$n]:-}" ] && return 0
	mdone[$n]=1
	[ -n "${mpath[$n]:-}" ] || die "module $1 not in $kpkg"
	for d in $(tr '\0' '\n' < "$pkg/lib/modules/$kver/${mpath[$n]}" | sed -n 's/^depends=//p' | tr ',' ' '); do
		visit "$d"
	done
	order+=("$n")
}
for m in "${modules[@]}"; do visit "$m"; done
for n in "${order[@]}"; do
	cp "$pkg/lib/modules/$kver/${mpath[$n]}" "$root/lib/modules/"
	basename "${mpath[$n]}" .ko
done > "$root/lib/modules/load-order"

printf '%s\n' "$init_text" | sed '1d;$d' > "$root/init"
chmod 755 "$root/init"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -6) > "$out/initramfs.new"
mv -f "$out/vmlinuz.new" "$out/vmlinuz"
mv -f "$out/initramfs.new" "$out/initramfs"
echo "$stamp" > "$out/stamp"
say "built $out: kernel $kver, vmlinuz $(du -h "$out/vmlinuz" | cut -f1), initramfs $(du -h "$out/initramfs" | cut -f1)"
exit 0

# The guest's /init, copied from between the two marker lines.
# --- guest init ---
#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
say() { echo "hv-guest: $*"; }
ip= peer= wait=60 tick= watch= serve= fetch= shell=
for w in $(cat /proc/cmdline); do
	case $w in
	hvguest.ip=*) ip=${w#hvguest.ip=} ;;
	hvguest.peer=*) peer=${w#hvguest.peer=} ;;
	hvguest.wait=*) wait=${w#hvguest.wait=} ;;
	hvguest.tick=*) tick=${w#hvguest.tick=} ;;
	hvguest.watch=*) watch=${w#hvguest.watch=} ;;
	hvguest.serve=*) serve=${w#hvguest.serve=} ;;
	hvguest.fetch=*) fetch=${w#hvguest.fetch=} ;;
	hvguest.shell=*) shell=${w#hvguest.shell=} ;;
	esac
done
# Uptime in centiseconds.
cs() { read -r u _ < /proc/uptime; echo "${u%.*}${u#*.}"; }
# fetch_blob B: http://B/blob once it answers (for $wait s), timed.
fetch_blob() {
	local start s e n t
	start=$(cut -d. -f1 /proc/uptime)
	while [ $(( $(cut -d. -f1 /proc/uptime) - start )) -lt "$wait" ]; do
		s=$(cs)
		n=$(wget -q -O - "http://$1/blob" 2>/dev/null | wc -c)
		e=$(cs)
		if [ "$n" -gt 0 ]; then
			t=$((e - s)); [ "$t" -gt 0 ] || t=1
			say "fetch $1 $n bytes in $((t / 100)).$(printf %02d $((t % 100))) s, $((n * 8 / 10 / t)) kbit/s"
			return 0
		fi
		sleep 1
	done
	say "fetch $1 failed"
}
while read -r m; do
	insmod "/lib/modules/$m.ko" || say "insmod $m failed"
done < /lib/modules/load-order
ip link set lo up
i=0
until [ -e /sys/class/net/eth0 ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
if [ -n "$ip" ] && ip addr add "$ip" dev eth0 && ip link set eth0 up; then
	say "up $ip ($(cat /sys/class/net/eth0/address))"
else
	say "network failed: no eth0 or no hvguest.ip= ($ip)"
fi
# Xen's "power off" and "reboot" reach us as /sbin/poweroff (SIGUSR2 to
# PID 1) and /sbin/reboot (SIGTERM).
trap 'say "powering off"; poweroff -f' USR2
trap 'say "rebooting"; reboot -f' TERM
if [ -n "$serve" ]; then
	mkdir -p /www
	dd if=/dev/zero of=/www/blob bs=1024 count="$serve" 2>/dev/null
	httpd -p 80 -h /www && say "serving $serve KiB"
fi
if [ "$shell" = 1 ]; then
	# A line at a time, no prompt: the console log stays readable.
	(while :; do
		while read -r line; do eval "$line"; done </dev/hvc0 >/dev/hvc0 2>&1
		sleep 1
	done) &
fi
if [ -n "$peer" ]; then
	start=$(cut -d. -f1 /proc/uptime)
	res=failed
	while [ $(( $(cut -d. -f1 /proc/uptime) - start )) -lt "$wait" ]; do
		if ping -c 1 -W 1 "$peer" >/dev/null 2>&1; then
			res=ok
			break
		fi
		sleep 1
	done
	say "ping $peer $res after $(( $(cut -d. -f1 /proc/uptime) - start )) s"
fi
[ -n "$fetch" ] && fetch_blob "$fetch" &
if [ -n "$tick" ]; then
	(n=0; while :; do
		n=$((n + 1))
		say "tick $n up $(cut -d' ' -f1 /proc/uptime)"
		sleep "$tick"
	done) &
fi
if [ -n "$watch" ]; then
	(last= ok=0; while :; do
		if ping -c 1 -W 1 "$watch" >/dev/null 2>&1; then
			now=$(cs)
			# Replies come every 0.2 s and a bit: a second is a gap.
			if [ -n "$last" ] && [ $((now - last)) -gt 100 ]; then
				g=$((now - last))
				say "watch $watch gap $((g / 100)).$(printf %02d $((g % 100))) s"
			fi
			last=$now ok=$((ok + 1))
			[ $((ok % 50)) -eq 0 ] && say "watch $watch ok $ok"
		fi
		sleep 0.2
	done) &
fi
while :; do
	sleep 3600 &
	wait $!
done
# --- end ---
