#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Builds the rack's hypervisor into OUTDIR/xen.gz: Debian 12's Xen 4.17
# hypervisor from its own source package, with one change to Debian's
# configuration, CONFIG_SHADOW_PAGING=y.
#
#   xen.sh OUTDIR CONFIG
#
# Why: live migration of a PV guest needs log-dirty mode, which Xen builds
# on shadow paging; Debian's security builds turn shadow paging off (it is
# also the software fallback for HVM without EPT/NPT, a large attack
# surface), so on Debian's own hypervisor `xl migrate` and hv-agent can
# only move a PV guest stop-copy.  CONFIG is the .config Debian shipped
# with its binary hypervisor (boot/xen-4.17-amd64.config of
# xen-hypervisor-4.17-amd64); everything else stays as Debian set it.
#
# The source comes from Debian's archive (HV_DEBIAN_MIRROR, default
# http://deb.debian.org/debian, suite bookworm) through an apt
# configuration of its own under OUTDIR, so this machine's apt sources are
# left alone.  Needs dpkg-source, gcc, make, flex, bison and python3
# (packaging/deps.sh).  A stamp (the source version and CONFIG) keeps it
# from being built again; the build takes about three minutes on two cores.
set -euo pipefail
out=$(mkdir -p "$1" && cd "$1" && pwd)
config=$2
mirror=${HV_DEBIAN_MIRROR:-http://deb.debian.org/debian}
say() { echo "xen: $*"; }
die() { echo "xen: $*" >&2; exit 1; }

[ -f "$config" ] || die "no hypervisor config at $config"
for tool in apt-get dpkg-source gcc make flex bison python3; do
	command -v "$tool" >/dev/null || die "$tool missing (run packaging/deps.sh)"
done

apt=$out/apt
mkdir -p "$apt/lists/partial" "$apt/archives/partial"
printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s bookworm main\n' \
    "$mirror" > "$apt/sources.list"
aptopts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=-
	-o "Dir::State::Lists=$apt/lists" -o "Dir::Cache::Archives=$apt/archives"
	-o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
apt-get "${aptopts[@]}" update >"$apt/update.log" 2>&1 ||
    { cat "$apt/update.log" >&2; die "apt-get update of $mirror's sources failed"; }
version=$(apt-cache "${aptopts[@]}" showsrc xen 2>/dev/null |
    awk '$1 == "Version:" {print $2}' | sort -V | tail -n 1)
[ -n "$version" ] || die "no xen source package in $mirror bookworm"

stamp=$( { echo "$version"; sha256sum < "$config"; } | sha256sum | cut -d' ' -f1)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] && [ -s "$out/xen.gz" ]; then
	say "up to date in $out (xen $version, shadow paging)"
	exit 0
fi

src=$out/src
rm -rf "$src" "$out"/xen_*
say "fetching the source of xen $version"
(cd "$out" && apt-get "${aptopts[@]}" source --download-only "xen=$version" >"$apt/source.log" 2>&1) ||
    { cat "$apt/source.log" >&2; die "apt-get source xen=$version failed"; }
dsc=$(ls "$out"/xen_*.dsc)
dpkg-source -x "$dsc" "$src" >"$out/unpack.log" 2>&1 ||
    { cat "$out/unpack.log" >&2; die "dpkg-source -x $dsc failed"; }

cp "$config" "$src/xen/.config"
sed -i 's/^# CONFIG_SHADOW_PAGING is not set$/CONFIG_SHADOW_PAGING=y/' "$src/xen/.config"
grep -qx 'CONFIG_SHADOW_PAGING=y' "$src/xen/.config" ||
    echo 'CONFIG_SHADOW_PAGING=y' >> "$src/xen/.config"
say "building the hypervisor (make -C xen, Debian's config with shadow paging)"
make -C "$src/xen" olddefconfig >"$out/build.log" 2>&1 &&
    grep -qx 'CONFIG_SHADOW_PAGING=y' "$src/xen/.config" &&
    make -C "$src/xen" -j"$(nproc)" >>"$out/build.log" 2>&1 ||
    { tail -n 30 "$out/build.log" >&2; die "the hypervisor build failed ($out/build.log)"; }
cp "$src/xen/xen.gz" "$out/xen.gz.new"
mv "$out/xen.gz.new" "$out/xen.gz"
rm -rf "$src"
echo "$stamp" > "$out/stamp"
say "built $out/xen.gz (xen $version, shadow paging)"
