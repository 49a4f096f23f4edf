#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Install, with apt-get, everything hypervisor needs to build, test and run its demo.
# Idempotent: packages already present are not touched and apt-get is not called.
# Quiet: prints one line per action; apt's own output goes to a log shown only on failure.
set -euo pipefail

packages=(
	# build
	build-essential cmake pkg-config clang libclang-rt-14-dev
	# libraries fixed by the design card
	libevent-dev libmicrohttpd-dev libsqlite3-dev libsodium-dev libjansson-dev
	libnl-3-dev libnl-route-3-dev libxen-dev
	# well-kept libraries used instead of hand-rolled code
	libarchive-dev libcurl4-openssl-dev libsystemd-dev libcmocka-dev libblkid-dev
	liblz4-dev libgnutls28-dev
	# test drivers: real clients, JSON and raw packets (python3), kernel
	# state (iproute2, nftables), loop devices and filesystems
	# (mount, util-linux, e2fsprogs), and the tools the scripts call
	curl sqlite3 python3 jq iproute2 iputils-ping procps bc nftables openssl
	mount util-linux e2fsprogs kmod xz-utils diffutils
	# the manual pages are rendered and checked (regress.manpages)
	man-db groff-base
	# side-by-side benchmark peers and load
	wrk nginx-light prometheus-node-exporter linux-perf
	tftp-hpa atftp tftpd-hpa dnsmasq-base
	# iPXE binaries hvd installs into its boot root
	ipxe
	# the QEMU lab: machines that netboot from hvd, payloads from Debian,
	# and Debian's Xen rebuilt with shadow paging (node-image/xen.sh)
	qemu-system-x86 ipxe-qemu busybox-static cpio dpkg-dev flex bison
	# the Debian packages (debian/) and packaging.deb, which builds them and
	# installs them into a fresh debootstrap root checked by systemd-analyze
	debhelper debootstrap systemd
	# packaging.alpine: the APKBUILD's shell is linted and its build() (a
	# Ninja build, samurai on Alpine) run
	shellcheck ninja-build
)

if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		exec sudo -E bash "$0" "$@"
	fi
	echo "deps.sh: must run as root (or with sudo available) to call apt-get" >&2
	exit 1
fi

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps.sh: all ${#packages[@]} packages present"
	exit 0
fi

log=$(mktemp /tmp/hv-deps.XXXXXX.log)
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq >"$log" 2>&1; then
	echo "deps.sh: apt-get update failed; log follows" >&2
	cat "$log" >&2
	exit 1
fi
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
	echo "deps.sh: apt-get install failed for: ${missing[*]}; log follows" >&2
	tail -n 40 "$log" >&2
	exit 1
fi
# nginx, node_exporter and tftpd-hpa are benchmark peers only: never leave Debian's
# default services running.
if command -v systemctl >/dev/null 2>&1; then
	systemctl disable --now nginx prometheus-node-exporter tftpd-hpa >/dev/null 2>&1 || true
fi
rm -f "$log"
echo "deps.sh: done"
