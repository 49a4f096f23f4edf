#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The virtual rack: hvd in a network namespace with a bridge, and QEMU
# machines on that bridge that netboot from it into Xen (the node image).
#
#   lab.sh up N [--kvm]      build the node image if needed, start hvd and N machines
#   lab.sh down              stop exactly what up started; delete taps and namespace
#   lab.sh status            machines, their PIDs, and hvctl host list
#   lab.sh wait-up N SECS    wait until N hosts are "up" in hvctl host list
#   lab.sh kill I            power machine I off (its QEMU process ends)
#   lab.sh start I           boot machine I again (same MAC, UUID and tap)
#   lab.sh overlay I [NAME]  enrol host NAME (default nodeI) with hvctl host add
#                            and write machine I's hand-made overlay (see
#                            HV_LAB_HANDMADE); until hvd serves /ovl itself
#   lab.sh run I CMD [SECS]  run CMD in machine I's dom0 through its serial
#                            console; print its output, exit with its status
#   lab.sh console I         attach this terminal to machine I's console
#
# Environment (defaults in brackets):
#   HV_LAB_DIR [run/lab]  config, state, logs, PIDs; kept by down (hvd's
#                         inventory survives; delete the directory to start afresh)
#   HV_LAB_NS [hvlab]     the namespace; br-lab 10.77.0.1/24 inside it
#   HV_BIN [build/release]; HVD, HVCTL, HV_AGENT override single binaries
#   HV_NODE_IMAGE [build/node-image]  where node-image/build.sh writes
#   HV_LAB_MEM [2048] MiB per machine (dom0 gets 1024M from stage 2)
#   HV_LAB_SMP [1]  CPUs per machine; lab.sh start uses what up used
#   HV_LAB_HANDMADE ["" ]  machine indexes ("2 3") whose overlay comes from
#       HV_LAB_DIR/ovl-www/ovl/{UUID}/{MAC}.apkovl.tar.gz, served by busybox
#       httpd on 10.77.0.1:8080, instead of hvd's /ovl: hand-made overlays
#       for testing the node image (the stage-2 templates are hvd's own,
#       with one iPXE line that picks the overlay server by MAC)
# Machine I (1..20) has MAC 52:54:00:77:00:II, SMBIOS UUID
# 00000000-0000-4000-8000-0000007700II (II in hex), tap tapI, serial log
# HV_LAB_DIR/nodeI.serial (the previous boot's in nodeI.serial.1) and its
# serial console on the unix socket HV_LAB_DIR/nodeI.console (mode 0700):
# Xen passes serial input to dom0, where the node image runs a root shell.
# TCG unless --kvm, or HV_LAB_KVM=1, and a probe shows KVM boots a guest
# (a software nested /dev/kvm cannot run these machines; see
# shared/notes/virtual-rack.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
lab=${HV_LAB_DIR:-$top/run/lab}
ns=${HV_LAB_NS:-hvlab}
bin=${HV_BIN:-$top/build/release}
hvd=${HVD:-$bin/daemon/hvd}
hvctl=${HVCTL:-$bin/cli/hvctl}
agent=${HV_AGENT:-$bin/agent/hv-agent}
image=${HV_NODE_IMAGE:-$top/build/node-image}
mem=${HV_LAB_MEM:-2048}
smp=${HV_LAB_SMP:-1}
export HVCTL_SOCKET=$lab/hvd.sock

say() { echo "lab: $*"; }
die() { echo "lab: $*" >&2; exit 1; }
usage() { sed -n '4,14s/^# \{0,1\}//p' "$0" >&2; exit 2; }

mac_of() { printf '52:54:00:77:00:%02x' "$1"; }
uuid_of() { printf '00000000-0000-4000-8000-0000007700%02x' "$1"; }

# pid_alive FILE: the PID in FILE runs a command line that names this lab
# dir (so a recycled PID is never killed).
pid_alive() {
	local pid
	[ -f "$1" ] || return 1
	pid=$(cat "$1")
	[ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF "$lab/"
}

stop_pid() {
	local f=$1 pid i
	if pid_alive "$f"; then
		pid=$(cat "$f")
		kill "$pid" 2>/dev/null || true
		for i in $(seq 1 50); do
			[ -d "/proc/$pid" ] || break
			sleep 0.1
		done
		[ -d "/proc/$pid" ] && kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$f"
}

ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$ns"; }

check_index() {
	[[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 20 ] || die "machine index must be 1..20: $1"
}

accel_args() {
	if [ "$(cat "$lab/accel" 2>/dev/null)" = kvm ]; then
		echo "-accel kvm -cpu host"
	else
		echo "-accel tcg"
	fi
}

# KVM is used only if a guest really runs under it: a 10 s probe boots the
# node kernel with -cpu host and looks for its first console line.
kvm_works() {
	local log=$lab/kvm-probe.log
	[ -c /dev/kvm ] || return 1
	timeout 10 qemu-system-x86_64 -accel kvm -cpu host -m 256 -display none \
	    -monitor none -no-reboot -serial "file:$log" -kernel "$image/vmlinuz" \
	    -append "console=ttyS0 panic=-1 rdinit=/bin/true" >/dev/null 2>&1 || true
	grep -q 'Linux version' "$log" 2>/dev/null
}

start_machine() {
	local i=$1 tap=tap$1 log=$lab/node$1.serial
	pid_alive "$lab/node$i.pid" && die "node$i already runs (pid $(cat "$lab/node$i.pid"))"
	if ! ip -n "$ns" link show "$tap" >/dev/null 2>&1; then
		ip -n "$ns" tuntap add dev "$tap" mode tap
		ip -n "$ns" link set "$tap" master br-lab
	fi
	ip -n "$ns" link set "$tap" up
	[ -f "$log" ] && mv -f "$log" "$log.1"
	# umask 077: the console socket (a root shell) and the logs are root's.
	# shellcheck disable=SC2046
	(umask 077 && exec ip netns exec "$ns" setsid qemu-system-x86_64 -name "node$i" $(accel_args) \
	    -m "$mem" -smp "$smp" -machine graphics=off -display none -monitor none \
	    -smbios "type=1,uuid=$(uuid_of "$i"),serial=lab-node$i" \
	    -chardev "socket,id=ser0,path=$lab/node$i.console,server=on,wait=off,logfile=$log" \
	    -serial chardev:ser0 \
	    -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" \
	    -device "virtio-net-pci,netdev=n0,mac=$(mac_of "$i")" -boot n \
	    </dev/null >>"$lab/node$i.qemu.log" 2>&1) &
	echo $! > "$lab/node$i.pid"
	date +%s.%N > "$lab/node$i.started"
	say "node$i: pid $!, mac $(mac_of "$i"), uuid $(uuid_of "$i"), serial log $log"
}

write_config() {
	cat > "$lab/hvd.conf" <<CONF
# Generated by packaging/lab/lab.sh: hvd inside namespace $ns.
state-dir $lab/state
api-socket $lab/hvd.sock
api-socket-mode 0600
api-listen none
log-level info
agent-listen 10.77.0.1:8471
boot-root $lab/boot
boot-server 10.77.0.1
boot-http-listen 10.77.0.1:80
tftp-listen 10.77.0.1:69
dhcp-mode full
dhcp-interface br-lab
dhcp-range 10.77.0.100 10.77.0.199
dhcp-router 10.77.0.1
dhcp-dns 10.77.0.1
CONF
	# Unknown machines are adopted on their first overlay fetch.  Older
	# hvd builds reject the keyword; the lab then runs without it and
	# hosts stay "discovered" until adopted with hvctl host adopt.
	echo "lab-auto-adopt yes" >> "$lab/hvd.conf"
	if ! ip netns exec "$ns" "$hvd" -n -f "$lab/hvd.conf" >/dev/null 2>&1; then
		sed -i '$d' "$lab/hvd.conf"
		echo "# lab-auto-adopt yes  (TODO: not accepted by this hvd yet)" >> "$lab/hvd.conf"
		say "this hvd does not know lab-auto-adopt: hosts will wait for hvctl host adopt"
	fi
	local err
	err=$(ip netns exec "$ns" "$hvd" -n -f "$lab/hvd.conf" 2>&1) || die "hvd rejects $lab/hvd.conf: $err"
}

# Hand-made overlays: hvd's stage-2 and discovery templates, with the
# overlay server chosen by MAC (iPXE's iseq) for the HV_LAB_HANDMADE machines.
write_templates() {
	local t i pick=
	rm -rf "$lab/tpl"
	[ -n "${HV_LAB_HANDMADE:-}" ] || return 0
	mkdir -p "$lab/tpl" "$lab/ovl-www/ovl"
	for i in $HV_LAB_HANDMADE; do
		check_index "$i"
		pick="${pick}iseq \${mac} $(mac_of "$i") \&\& set hvovl http://10.77.0.1:8080 ||\n"
	done
	for t in stage2 discovery; do
		grep -q 'apkovl={{hvd}}/ovl/' "$top/ipxe/$t.ipxe" ||
		    die "ipxe/$t.ipxe has no apkovl={{hvd}}/ovl/ to redirect"
		sed -e "/^#!ipxe/a set hvovl {{hvd}}\n$pick" \
		    -e 's|apkovl={{hvd}}/ovl/|apkovl=${hvovl}/ovl/|' \
		    "$top/ipxe/$t.ipxe" > "$lab/tpl/$t.ipxe"
	done
	echo "boot-templates $lab/tpl" >> "$lab/hvd.conf"
}

cmd_up() {
	local n=${1:-}
	[[ $n =~ ^[0-9]+$ ]] && [ "$n" -le 20 ] || usage
	[ "${2:-}" = --kvm ] && HV_LAB_KVM=1
	[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, taps)"
	command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (packaging/deps.sh)"
	for b in "$hvd" "$hvctl" "$agent"; do
		[ -x "$b" ] || die "$b missing: build first (cmake --build --preset release)"
	done
	pid_alive "$lab/hvd.pid" && die "the lab already runs (lab.sh down first)"
	ns_exists && die "namespace $ns exists (lab.sh down first)"
	mkdir -p "$lab/boot"
	echo "$smp" > "$lab/smp"
	HV_AGENT=$agent bash "$here/../node-image/build.sh" "$image"
	# hvd serves regular files beneath boot-root only: copy (or hard-link)
	# the image in, never symlink out of it.
	for f in xen vmlinuz initramfs modloop; do
		cmp -s "$image/$f" "$lab/boot/$f" 2>/dev/null ||
		    ln -f "$image/$f" "$lab/boot/$f" 2>/dev/null || cp -f "$image/$f" "$lab/boot/$f"
	done
	if [ "${HV_LAB_KVM:-0}" = 1 ] && kvm_works; then
		echo kvm > "$lab/accel"
	else
		[ "${HV_LAB_KVM:-0}" = 1 ] && say "KVM cannot run a guest here: using TCG"
		echo tcg > "$lab/accel"
	fi
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip -n "$ns" link add br-lab type bridge
	ip -n "$ns" addr add 10.77.0.1/24 dev br-lab
	ip -n "$ns" link set br-lab up
	# After br-lab: hvd -n checks that its dhcp-interface exists.
	write_config
	write_templates

	ip netns exec "$ns" setsid "$hvd" -d -f "$lab/hvd.conf" </dev/null >>"$lab/hvd.log" 2>&1 &
	echo $! > "$lab/hvd.pid"
	local i
	for i in $(seq 1 100); do
		"$hvctl" status >/dev/null 2>&1 && break
		pid_alive "$lab/hvd.pid" || { tail -n 20 "$lab/hvd.log" >&2; die "hvd exited"; }
		sleep 0.1
	done
	"$hvctl" status >/dev/null 2>&1 || die "hvd does not answer on $HVCTL_SOCKET"
	if [ -n "${HV_LAB_HANDMADE:-}" ]; then
		ip netns exec "$ns" setsid busybox httpd -f -p 10.77.0.1:8080 -h "$lab/ovl-www" \
		    </dev/null >>"$lab/httpd.log" 2>&1 &
		echo $! > "$lab/httpd.pid"
		say "hand-made overlays for machine(s) $HV_LAB_HANDMADE from $lab/ovl-www on 10.77.0.1:8080"
	fi
	say "hvd: pid $(cat "$lab/hvd.pid"), namespace $ns, br-lab 10.77.0.1/24, log $lab/hvd.log"
	for i in $(seq 1 "$n"); do start_machine "$i"; done
	say "up: $n machine(s) booting ($(cat "$lab/accel")); HVCTL_SOCKET=$HVCTL_SOCKET"
}

cmd_down() {
	local f
	for f in "$lab"/node*.pid; do
		[ -e "$f" ] && stop_pid "$f"
	done
	stop_pid "$lab/hvd.pid"
	stop_pid "$lab/httpd.pid"
	if ns_exists; then
		# Taps and the bridge go with the namespace.
		ip netns del "$ns"
	fi
	say "down (state and logs kept in $lab)"
}

cmd_status() {
	local f i
	if pid_alive "$lab/hvd.pid"; then
		echo "hvd     running  pid $(cat "$lab/hvd.pid")  namespace $ns"
	else
		echo "hvd     stopped"
	fi
	for f in "$lab"/node*.serial "$lab"/node*.pid; do
		[ -e "$f" ] || continue
		i=${f##*/node}
		i=${i%%.*}
		echo "$i"
	done | sort -un | while read -r i; do
		if pid_alive "$lab/node$i.pid"; then
			printf 'node%-3s running  pid %-7s mac %s uuid %s\n' "$i" "$(cat "$lab/node$i.pid")" \
			    "$(mac_of "$i")" "$(uuid_of "$i")"
		else
			printf 'node%-3s off\n' "$i"
		fi
	done
	if pid_alive "$lab/hvd.pid"; then
		echo
		"$hvctl" host list
	fi
}

# Hosts in state "up" in hvctl host list.
hosts_up() { "$hvctl" host list 2>/dev/null | awk 'NR > 1 && $2 == "up"' | wc -l; }

cmd_wait_up() {
	local n=${1:-} limit=${2:-600} start
	[[ $n =~ ^[0-9]+$ ]] && [[ $limit =~ ^[0-9]+$ ]] || usage
	start=$(date +%s)
	while [ "$(hosts_up)" -lt "$n" ]; do
		if [ $(( $(date +%s) - start )) -ge "$limit" ]; then
			say "timeout: $(hosts_up) of $n hosts up after $limit s"
			return 1
		fi
		sleep 1
	done
	say "$n host(s) up after $(( $(date +%s) - start )) s"
}

cmd_kill() {
	check_index "${1:-}"
	pid_alive "$lab/node$1.pid" || die "node$1 is not running"
	stop_pid "$lab/node$1.pid"
	say "node$1 powered off"
}

cmd_start() {
	check_index "${1:-}"
	pid_alive "$lab/hvd.pid" && ns_exists || die "the lab is not up"
	# The machine comes back as up made it (the demo's have 2 CPUs).
	[ -n "${HV_LAB_SMP:-}" ] || smp=$(cat "$lab/smp" 2>/dev/null || echo 1)
	start_machine "$1"
}

# A hand-made APKOVL with what hvd's will carry: hostname, hosts,
# interfaces, apk files, runlevel links, the agent's conf and key (from
# hvctl host add), mesh.json and authorized_keys.
cmd_overlay() {
	local i=${1:-} name=${2:-node${1:-}} d r creds
	check_index "$i"
	pid_alive "$lab/hvd.pid" || die "the lab is not up"
	creds=$lab/creds/$name
	mkdir -p "$lab/creds"
	"$hvctl" host add "$name" --out "$creds" >/dev/null || die "hvctl host add $name failed"
	d=$(mktemp -d)
	r=$d/root
	mkdir -p "$r"/etc/{hv,network,apk} "$r"/etc/runlevels/{sysinit,boot,default} "$r/root/.ssh"
	echo "$name" > "$r/etc/hostname"
	printf '127.0.0.1\tlocalhost\n10.77.0.1\thvd\n' > "$r/etc/hosts"
	printf 'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n' \
	    > "$r/etc/network/interfaces"
	printf 'alpine-base\nxen\nhv-agent\n' > "$r/etc/apk/world"
	echo "http://10.77.0.1/alpine/main" > "$r/etc/apk/repositories"
	ln -s /etc/init.d/devfs "$r/etc/runlevels/sysinit/devfs"
	ln -s /etc/init.d/networking "$r/etc/runlevels/boot/networking"
	for s in xenstored xenconsoled hv-agent; do
		ln -s "/etc/init.d/$s" "$r/etc/runlevels/default/$s"
	done
	: > "$r/etc/.default_boot_services"
	sed 's|^key-file .*|key-file /etc/hv/agent.key|' "$creds/agent.conf" > "$r/etc/hv/agent.conf"
	install -m 0600 "$creds/agent.key" "$r/etc/hv/agent.key"
	echo '{"networks": []}' > "$r/etc/hv/mesh.json"
	echo "# no keys in the lab" > "$r/root/.ssh/authorized_keys"
	chmod 0700 "$r/root/.ssh"
	mkdir -p "$lab/ovl-www/ovl/$(uuid_of "$i")"
	tar -C "$r" --owner=0 --group=0 --numeric-owner --sort=name -czf \
	    "$lab/ovl-www/ovl/$(uuid_of "$i")/$(mac_of "$i").apkovl.tar.gz" .
	rm -rf "$d"
	say "node$i: overlay for host $name in $lab/ovl-www/ovl/$(uuid_of "$i")/"
}

# The serial console.  "run" first types an echo until its answer shows in
# the serial log (the first Enter also activates busybox init's askfirst
# shell), then types CMD with its output sent to a file, and prints that
# file with a marker on each line.  The markers are computed by the dom0
# shell ($((N + 1))), so the echo of the typed line never matches them.
# Both lines start with "sleep 1": while a client is connected to the
# console socket, QEMU's serial log sometimes repeats a character; the
# answers are written after console.py has hung up.
console_send() { python3 "$here/console.py" "$lab/node$1.console" send "$2"; }
serial_has() { tr -d '\r' < "$lab/node$1.serial" 2>/dev/null | grep -aq -- "$2"; }

cmd_run() {
	local i=${1:-} cmd=${2:-} secs=${3:-60} n m try end rc
	check_index "$i"
	[ -n "$cmd" ] && [[ $secs =~ ^[0-9]+$ ]] || usage
	pid_alive "$lab/node$i.pid" || die "node$i is not running"
	command -v python3 >/dev/null || die "python3 missing (it types into the console)"
	n=$(( (RANDOM << 15 | RANDOM) + 1000000 ))
	m=hvlab$((n + 1))
	for try in 1 2 3 4 5 6; do
		console_send "$i" ""
		console_send "$i" "sleep 1; echo hvlab\$(($n + 1))-ready"
		end=$(( $(date +%s) + 5 ))
		until serial_has "$i" "$m-ready" || [ "$(date +%s)" -ge "$end" ]; do sleep 0.2; done
		serial_has "$i" "$m-ready" && break
	done
	serial_has "$i" "$m-ready" || die "node$i: no shell answers on the console"
	console_send "$i" "sleep 1; m=hvlab\$(($n + 1)); ($cmd) >/tmp/hvlab.out 2>&1; r=\$?; sed \"s/^/\$m| /\" /tmp/hvlab.out; echo \"\$m rc=\$r\""
	end=$(( $(date +%s) + secs ))
	until serial_has "$i" "$m rc=[0-9]" || [ "$(date +%s)" -ge "$end" ]; do sleep 0.2; done
	serial_has "$i" "$m rc=[0-9]" || die "node$i: no answer to the command within $secs s"
	tr -d '\r' < "$lab/node$i.serial" | grep -a -- "$m| " | sed "s/.*$m| //"
	rc=$(tr -d '\r' < "$lab/node$i.serial" | grep -ao -- "$m rc=[0-9]*" | tail -n 1)
	return "${rc#*rc=}"
}

cmd_console() {
	check_index "${1:-}"
	pid_alive "$lab/node$1.pid" || die "node$1 is not running"
	command -v python3 >/dev/null || die "python3 missing"
	say "node$1: Enter for a shell; the serial log is $lab/node$1.serial"
	python3 "$here/console.py" "$lab/node$1.console" attach
}

case ${1:-} in
up) shift; cmd_up "$@" ;;
down) cmd_down ;;
status) cmd_status ;;
wait-up) shift; cmd_wait_up "$@" ;;
kill) cmd_kill "${2:-}" ;;
start) cmd_start "${2:-}" ;;
overlay) shift; cmd_overlay "$@" ;;
run) shift; cmd_run "$@" ;;
console) cmd_console "${2:-}" ;;
*) usage ;;
esac
