#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# packaging.alpine: what can be checked of the Alpine package without
# Alpine's toolchain (abuild, apk and Alpine's libraries cannot be fetched
# here; packaging/alpine/README.md says what was and was not tried).
#
#   - shellcheck -s sh on the APKBUILD, make-tarball.sh and both OpenRC
#     services, excluding only the two checks Alpine's own APKBUILD lint
#     turns off (SC2034: variables abuild reads; SC2154: srcdir and pkgdir,
#     which abuild sets);
#   - the APKBUILD names what abuild requires, its source entries exist,
#     and its license is the one LICENSE holds;
#   - make-tarball.sh packs git HEAD under hypervisor-VERSION/;
#   - the APKBUILD's own build() and package(), run with bash from that
#     tarball (srcdir, pkgdir and builddir set as abuild sets them), give a
#     package tree with hv-agent, its man page, the OpenRC service (0755)
#     and /etc/hv (0700), and nothing of hvd or hvctl; the installed
#     hv-agent runs.
set -euo pipefail
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
alp=$top/packaging/alpine
need_cmd shellcheck -- shellcheck
need_cmd ninja -- ninja-build
need_cmd cmake git tar

work=$(mktemp -d /tmp/hv-alpine.XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0
check() { # check WHAT CMD...: one line per check, PASS or FAIL
	local what=$1; shift
	if "$@" >"$work/out" 2>&1; then
		echo "ok: $what"
	else
		echo "FAIL: $what"; sed 's/^/  | /' "$work/out" | head -40
		fails=$((fails + 1))
	fi
}

check "shellcheck: APKBUILD, make-tarball.sh, OpenRC services" \
	shellcheck -s sh -e SC2034,SC2154 "$alp/APKBUILD" "$alp/make-tarball.sh" \
	"$top/packaging/openrc/hv-agent" "$top/packaging/openrc/hvd"

# The variables abuild requires, read by sourcing the APKBUILD in a subshell.
vars() { (set +u; . "$alp/APKBUILD"; printf '%s\n' "pkgname=$pkgname" \
	"pkgver=$pkgver" "pkgrel=$pkgrel" "pkgdesc=$pkgdesc" "url=$url" \
	"arch=$arch" "license=$license" "source=$(echo $source)"); }
vars > "$work/vars"
has_vars() {
	local v
	for v in pkgname pkgver pkgrel pkgdesc url arch license source; do
		grep -q "^$v=." "$work/vars" || { echo "APKBUILD: $v is empty"; return 1; }
	done
	grep -qx 'pkgname=hv-agent' "$work/vars" || { echo "pkgname is not hv-agent (the overlays' world names hv-agent)"; return 1; }
	grep -qx 'license=AGPL-3.0-or-later' "$work/vars" || return 1
	grep -q 'GNU AFFERO GENERAL PUBLIC LICENSE' "$top/LICENSE"
}
check "APKBUILD names pkgname, pkgver, pkgrel, pkgdesc, url, arch, license, source" has_vars
check "APKBUILD's hv-agent.initd is the OpenRC service" \
	cmp "$alp/hv-agent.initd" "$top/packaging/openrc/hv-agent"
ver=$(sed -n 's/^pkgver=//p' "$work/vars")
check "hv-agent's version matches the project's" \
	grep -q "VERSION $ver" "$top/CMakeLists.txt"

# abuild's layout: srcdir holds the unpacked source and the other sources,
# pkgdir is the package's root.
mkdir -p "$work/src" "$work/pkg"
check "make-tarball.sh packs git HEAD" sh "$alp/make-tarball.sh" "$work"
tarball=$work/hv-agent-$ver.tar.gz
check "the tarball holds hypervisor-$ver/ with the agent" \
	bash -c "tar -tzf '$tarball' | grep -qx 'hypervisor-$ver/agent/main.c'"
tar -xzf "$tarball" -C "$work/src"
cp "$alp/hv-agent.initd" "$work/src/"
run_abuild() {
	(set +u; . "$alp/APKBUILD"
	 srcdir=$work/src pkgdir=$work/pkg
	 builddir="$srcdir/hypervisor-$pkgver"
	 cd "$builddir" && set -e && build && package)
}
check "the APKBUILD's build() and package() (HV_AGENT_ONLY)" run_abuild
pkg=$work/pkg
mode() { stat -c %a "$1"; }
check "package: usr/sbin/hv-agent" test -x "$pkg/usr/sbin/hv-agent"
check "package: hv-agent.8" test -f "$pkg/usr/share/man/man8/hv-agent.8"
check "package: etc/init.d/hv-agent 0755" test "$(mode "$pkg/etc/init.d/hv-agent")" = 755
check "package: etc/hv 0700" test "$(mode "$pkg/etc/hv")" = 700
check "package: no hvd, hvctl or their pages" bash -c \
	"! find '$pkg' \\( -name hvd -o -name hvctl -o -name 'hvd*.[0-9]' -o -name 'hvctl.1' \\) | grep ."
check "package: the installed hv-agent runs" "$pkg/usr/sbin/hv-agent" --version

[ "$fails" -eq 0 ] || { echo "packaging.alpine: $fails check(s) failed"; exit 1; }
echo "packaging.alpine: all checks passed"
