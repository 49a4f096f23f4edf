#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Builds the lab's node image into OUTDIR (default build/node-image): a
# RAM-bootable Xen host made from Debian 12 packages alone (apt-get download
# + dpkg -x; nothing is installed on this machine beyond packaging/deps.sh).
#
#   xen        the decompressed hypervisor (Debian's iPXE cannot load xen.gz):
#              Debian's Xen 4.17 built from its source with shadow paging
#              (xen.sh), which live migration of PV guests needs;
#              HV_NODE_XEN=debian takes Debian's binary instead (no shadow
#              paging: VMs then migrate stop-copy)
#   vmlinuz    Debian's 6.1 kernel, run as PV dom0
#   initramfs  cpio.gz: busybox, the minimal xl/xenstored/xenconsoled set,
#              the kernel modules a host needs, hv-agent and every shared
#              library they link, and an /init that applies the APKOVL the
#              way Alpine's initramfs does (see README.md)
#   modloop    a placeholder: hvd's stage 2 names modloop=, this init ignores it
#
# hv-agent comes from $HV_AGENT (default build/release/agent/hv-agent).
# Downloads are cached in OUTDIR/cache.  A stamp holds a hash of every input
# (package versions, the files beside this script, hv-agent and the host
# libraries it links); nothing is rebuilt while the stamp matches.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${1:-$top/build/node-image}" && cd "${1:-$top/build/node-image}" && pwd)
agent=${HV_AGENT:-$top/build/release/agent/hv-agent}
xen_from=${HV_NODE_XEN:-shadow}
case $xen_from in shadow|debian) ;; *) echo "node-image: HV_NODE_XEN is shadow or debian, not '$xen_from'" >&2; exit 2 ;; esac
cache=$out/cache
say() { echo "node-image: $*"; }
die() { echo "node-image: $*" >&2; exit 1; }

[ -x "$agent" ] || die "no hv-agent at $agent (build it, or set HV_AGENT=path)"
for tool in apt-get apt-cache dpkg cpio gzip ldd sha256sum; do
	command -v "$tool" >/dev/null || die "$tool missing (run packaging/deps.sh)"
done

# Kernel modules the host loads, named as their files are; their
# dependencies are added and ordered from each module's depends= field.
modules=(virtio_net virtio_pci e1000 xen-privcmd xenfs xen-evtchn xen-gntdev
	xen-gntalloc xen-netback xen-blkback bridge veth vxlan tun)
# Binaries of xen-utils-4.17 the host needs, called by their real path.
xenbins=(xl xenstored xenconsoled xen-init-dom0 libxl-save-helper xenconsole)

# --- inputs and the stamp ---------------------------------------------
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
    sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
[ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 (apt-get update?)"
pkgs=("$kpkg" xen-hypervisor-4.17-amd64 xen-utils-4.17 xenstore-utils busybox-static)
# One apt-cache call for every candidate version (each call costs ~1 s).
mapfile -t versions < <(apt-cache policy "${pkgs[@]}" 2>/dev/null |
    awk '/^[^ ].*:$/ {p = substr($1, 1, length($1) - 1)} $1 == "Candidate:" {print p "=" $2}')
[ ${#versions[@]} -eq ${#pkgs[@]} ] && [[ " ${versions[*]} " != *"=(none) "* ]] ||
    die "no candidate version for one of ${pkgs[*]}: ${versions[*]}"
for i in "${!pkgs[@]}"; do
	[ "${versions[$i]%%=*}" = "${pkgs[$i]}" ] || die "apt-cache policy answered out of order"
done
agentlibs=$(ldd "$agent" | awk '$3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
# A library ldd cannot find here (liblz4.so.1 without liblz4-1, say) would
# be left out of the image, and hv-agent would not start on the hosts.
nolib=$(ldd "$agent" | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')
[ -z "$nolib" ] || die "hv-agent links libraries this machine lacks: $nolib(run packaging/deps.sh)"
stamp=$( {
	printf '%s\n' "${versions[@]}" "${modules[@]}" "${xenbins[@]}" "xen:$xen_from"
	(cd "$here" && find . -type f ! -name README.md | LC_ALL=C sort | xargs sha256sum)
	sha256sum "$agent" | cut -d' ' -f1
	# shellcheck disable=SC2086
	sha256sum $agentlibs
} | sha256sum | cut -d' ' -f1)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] &&
    [ -s "$out/xen" ] && [ -s "$out/vmlinuz" ] && [ -s "$out/initramfs" ] && [ -f "$out/modloop" ]; then
	say "up to date in $out"
	exit 0
fi

# --- packages ---------------------------------------------------------
mkdir -p "$cache"
debs=()
for pv in "${versions[@]}"; do
	p=${pv%%=*} v=${pv#*=}
	f=
	for d in "$cache/${p}"_*.deb; do
		[ -f "$d" ] && [ "$(dpkg-deb -f "$d" Version)" = "$v" ] && f=$d
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
say "unpacking ${#debs[@]} packages"
for d in "${debs[@]}"; do dpkg -x "$d" "$work/pkg"; done
pkg=$work/pkg root=$work/root

kver=$(ls "$pkg/lib/modules")
say "xen $(dpkg-deb -f "${debs[1]}" Version), kernel $kver"
if [ "$xen_from" = shadow ]; then
	bash "$here/xen.sh" "$cache/xen-shadow" "$pkg/boot/xen-4.17-amd64.config"
	gzip -dc "$cache/xen-shadow/xen.gz" > "$out/xen.new"
else
	gzip -dc "$pkg"/boot/xen-4.17-amd64.gz > "$out/xen.new"
fi
cp "$pkg/boot/vmlinuz-$kver" "$out/vmlinuz.new"

# --- the root file system ---------------------------------------------
say "assembling the root file system"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib/x86_64-linux-gnu,lib64,dev,proc,sys,run,tmp,root,mnt}
mkdir -p "$root"/{etc/hv,etc/runlevels,var/log/xen,var/lib/xen,usr/lib/xen-4.17/bin}
mkdir -p "$root"/etc/network/if-{pre-up,up,down,post-down}.d
ln -s ../run "$root/var/run"
chmod 1777 "$root/tmp"
cp "$pkg/bin/busybox" "$root/bin/busybox"
for app in $("$root/bin/busybox" --list-full); do
	[ -e "$root/$app" ] || ln -s /bin/busybox "$root/$app"
done
for b in "${xenbins[@]}"; do
	cp "$pkg/usr/lib/xen-4.17/bin/$b" "$root/usr/lib/xen-4.17/bin/"
done
ln -s /usr/lib/xen-4.17/bin/xl "$root/usr/sbin/xl"
cp -a "$pkg"/usr/bin/xenstore* "$root/usr/bin/"
cp "$agent" "$root/usr/sbin/hv-agent"

# Shared libraries: whatever ldd lists for every ELF file, from this
# machine (libxen-dev pulls the same Xen 4.17 libraries in), plus
# libgcc_s, which glibc dlopens for pthread_cancel (xl create aborts
# without it).
libs=$( { for f in "$root"/usr/lib/xen-4.17/bin/* "$root"/usr/bin/xenstore "$root/usr/sbin/hv-agent"; do
	[ -L "$f" ] && continue
	ldd "$f" 2>/dev/null | awk '$3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
done; echo /lib/x86_64-linux-gnu/libgcc_s.so.1; } | sort -u)
for l in $libs; do
	dir=$(dirname "$l")
	case $dir in /usr/lib/x86_64-linux-gnu) dir=/lib/x86_64-linux-gnu ;; esac
	mkdir -p "$root$dir"
	cp -L "$l" "$root$dir/$(basename "$l")"
done

# Kernel modules, flat under /lib/modules/KVER, loaded by /init in the
# order written to /lib/modules/KVER/load-order (dependencies first).
mdir=$root/lib/modules/$kver
mkdir -p "$mdir"
declare -A mpath=() mdeps=() mdone=()
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
	mdeps[$n]=$(tr '\0' '\n' < "$pkg/lib/modules/$kver/${mpath[$n]}" | sed -n 's/^depends=//p' | tr ',' ' ')
	for d in ${mdeps[$n]}; do visit "$d"; done
	order+=("$n")
}
for m in "${modules[@]}"; do visit "$m"; done
for n in "${order[@]}"; do
	cp "$pkg/lib/modules/$kver/${mpath[$n]}" "$mdir/$(basename "${mpath[$n]}")"
	basename "${mpath[$n]}" .ko
done > "$mdir/load-order"
say "${#order[@]} kernel modules: $(tr '\n' ' ' < "$mdir/load-order")"

# This image's own files: /init, init.d scripts, udhcpc and vif scripts.
cp "$here/init" "$root/init"
cp -R "$here/rootfs/." "$root/"
chmod 755 "$root/init" "$root"/etc/init.d/* "$root/usr/share/udhcpc/default.script" \
    "$root/etc/xen/scripts/vif-bridge"
echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
echo "root:x:0:" > "$root/etc/group"
echo "hv-node" > "$root/etc/hostname"
printf '%s\n' "${versions[@]}" "hv-agent $(sha256sum "$agent" | cut -d' ' -f1)" > "$root/etc/hv-node-release"

say "packing the initramfs"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -6) > "$out/initramfs.new"
# hvd's stage 2 references modloop=; this image has every module in its
# initramfs, so the file only has to exist.
echo "hv-node modloop placeholder: the node image keeps its modules in the initramfs" > "$out/modloop.new"
for f in xen vmlinuz initramfs modloop; do mv -f "$out/$f.new" "$out/$f"; done
echo "$stamp" > "$out/stamp"
say "built $out: xen $(du -h "$out/xen" | cut -f1), vmlinuz $(du -h "$out/vmlinuz" | cut -f1), initramfs $(du -h "$out/initramfs" | cut -f1)"
