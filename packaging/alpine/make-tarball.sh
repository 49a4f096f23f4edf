#!/bin/sh
# SPDX-License-Identifier: AGPL-3.0-or-later
# Packs the tree this script lives in as hv-agent-VERSION.tar.gz (the
# "source" the APKBUILD names), from the files git tracks at HEAD, into
# OUTDIR (default: beside the APKBUILD).  Prints the tarball's path.
#   make-tarball.sh [OUTDIR]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${1:-$here}
ver=$(sed -n 's/^pkgver=//p' "$here/APKBUILD")
git -C "$top" archive --format=tar.gz --prefix="hypervisor-$ver/" \
	-o "$out/hv-agent-$ver.tar.gz" HEAD
echo "$out/hv-agent-$ver.tar.gz"
