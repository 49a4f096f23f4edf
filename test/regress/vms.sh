#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# VMs through hvctl and REST against the real hvd, as far as a machine
# without Xen allows: every spec refusal names its field, images and
# networks must exist and fit, and the scheduler explains host by host why
# nothing fits (no hosts; a real hv-agent that is up but reports no Xen; a
# placement on an unknown host).  Creating, stopping and destroying real
# domains is tested in the virtual rack (test/e2e), where the hosts run Xen.
if [ -z "${HV_IN_NETNS:-}" ]; then
	exec unshare --net env HV_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
. "$(dirname "$0")/lib.sh"
: "${HV_AGENT:?HV_AGENT must point at the hv-agent binary}"

write_conf "boot-http-listen 127.0.0.1:0" "agent-listen 127.0.0.1:0" "agent-heartbeat-ms 500"
start_hvd
head -c 100000 /dev/urandom > "$T/vmlinuz"
head -c 50000 /dev/urandom > "$T/initrd"
"$HVCTL" image add vmlinuz-guest "$T/vmlinuz" >/dev/null
"$HVCTL" image add initrd-guest "$T/initrd" >/dev/null
"$HVCTL" net create prod --vni 100 >/dev/null

create() { sock POST /api/v1/vms "$1"; }
expect "no VMs yet" "$("$HVCTL" --json vm list | tr -d ' \n')" '{"vms":\[\]}'
expect_eq "missing name" "$(create '{"vcpus":1,"memory_mib":64,"kernel":"vmlinuz-guest"}')" '400 {"error":"missing field '"'"'name'"'"'"}'
expect "vcpus out of range" "$(create '{"name":"a","vcpus":0,"memory_mib":64,"kernel":"vmlinuz-guest"}')" '400 {"error":"vcpus: *'
expect "bad MAC (a vendor's)" "$(create '{"name":"a","vcpus":1,"memory_mib":64,"kernel":"vmlinuz-guest","networks":[{"vni":100,"mac":"00:1b:21:00:00:01"}]}')" '400 {"error":"networks\[0\].mac: *'
expect "no boot source" "$(create '{"name":"a","vcpus":1,"memory_mib":64}')" '400 {"error":"*kernel*disk*'
expect_eq "unknown image" "$(create '{"name":"a","vcpus":1,"memory_mib":64,"kernel":"nope"}')" '400 {"error":"kernel: no image '"'"'nope'"'"' in the store (hvctl image add)"}'
expect_eq "image of the wrong kind" "$(create '{"name":"a","vcpus":1,"memory_mib":64,"kernel":"initrd-guest"}')" '400 {"error":"kernel: image '"'"'initrd-guest'"'"' is a initramfs, not a kernel"}'
expect_eq "unknown network" "$(create '{"name":"a","vcpus":1,"memory_mib":64,"kernel":"vmlinuz-guest","networks":[{"vni":4242}]}')" '400 {"error":"networks[0]: no network has VNI 4242"}'
expect_eq "nothing fits: no hosts" "$(create '{"name":"a","vcpus":1,"memory_mib":64,"kernel":"vmlinuz-guest"}')" '409 {"error":"no host fits 1 vCPU and 64 MiB; there are no hosts"}'

# A real agent on this machine: up, reporting telemetry, but no Xen.
"$HVCTL" host add h1 --out "$T/h1" >/dev/null
echo "session-file $T/h1/session" >> "$T/h1/agent.conf"
echo "mesh-file $T/h1/mesh.json" >> "$T/h1/agent.conf"
"$HV_AGENT" -d -f "$T/h1/agent.conf" >> "$T/agent.log" 2>&1 &
AGENT=$!
for _ in $(seq 1 100); do
	"$HVCTL" --json host list | grep -q '"cpu_percent": [0-9]' && break
	sleep 0.1
done
# SIGHUP is not a reload for the agent (it reads its file at start): it
# is ignored, and the session stays.
kill -HUP "$AGENT"
sleep 0.5
expect_eq "SIGHUP leaves hv-agent running" "$(kill -0 "$AGENT" 2>/dev/null && echo alive)" alive
set +e
"$HVCTL" vm create web1 --vcpus 1 --memory 64 --kernel vmlinuz-guest --initramfs initrd-guest --net 100 >"$T/out" 2>"$T/err"; rc=$?
expect "hvctl vm create: no host runs Xen, exit 5" "$rc $(cat "$T/err")" "5 *no host fits 1 vCPU and 64 MiB; h1 reports no Xen*"
"$HVCTL" vm create web1 --vcpus 1 --memory 64 --kernel vmlinuz-guest --host h9 >"$T/out" 2>"$T/err"; rc=$?
expect "placement on an unknown host" "$rc $(cat "$T/err")" "5 *on host h9; there is no host h9*"
"$HVCTL" vm create web1 --vcpus 1 --memory 64 --kernel vmlinuz-guest --label rack=r1 >"$T/out" 2>"$T/err"; rc=$?
expect "placement by a label no host has" "$rc $(cat "$T/err")" "5 *with label rack=r1; h1 reports no Xen*"
"$HVCTL" vm show web1 >/dev/null 2>"$T/err"; rc=$?
expect "nothing was created" "$rc $(cat "$T/err")" "5 *no VM 'web1'*"
"$HVCTL" vm destroy web1 >/dev/null 2>"$T/err"; rc=$?
expect "destroy unknown: 404" "$rc" 5
"$HVCTL" vm create --vcpus 1 web1 extra >/dev/null 2>&1; rc=$?
expect "usage error: exit 2" "$rc" 2
set -e
expect "operations unknown: 404" "$(sock GET /api/v1/operations/12345 | cut -c1-3)" 404
expect "image in use cannot go? (none in use: removable)" "$("$HVCTL" image rm initrd-guest)" "removed image initrd-guest"
kill "$AGENT"; wait "$AGENT" 2>/dev/null || true

finish
