#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# A VM's network rate limit (libxl's vif rate), hvd's side, against the
# real hvd and SQLite with emulated agents (test/tools/agent_emu):
#  (a) hvctl vm create --rate takes 20M, 500k and a bare kbit/s number and
#      refuses anything else (exit 2 naming the value), and a --rate with
#      no --net;
#  (b) hvd refuses a rate outside 64..100000000 kbit/s naming the NIC's
#      field; nothing is created;
#  (c) the rate is the NIC's: vm show lists it, the host gets it in
#      vm.create's nics[i].rate_kbps (and no rate_kbps key for a NIC
#      without one), and a migration target gets it in vm.migrate_in;
#  (d) it survives an hvd restart (stored in SQLite, schema 009).
# The limit itself (netback shaping what the guest sends) is measured in
# the virtual rack: test/e2e/vms.sh.
if [ -z "${HV_IN_NETNS:-}" ]; then
	exec unshare --net env HV_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
ip addr add 10.0.0.5/32 dev lo
ip addr add 10.0.0.6/32 dev lo
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/emu_lib.sh"

emu_hvd_up
"$HVCTL" net create back --vni 200 >/dev/null
for h in h1 h2; do "$HVCTL" host add $h --out "$T/$h" >/dev/null; done
has_xen() { sock GET "/api/v1/hosts/$1/telemetry" | grep -q '"xen_version":"4.17"'; }
emu h1 10.0.0.5
emu h2 10.0.0.6
expect "h1 and h2 are up, with Xen" "$(wait_for 15 has_xen h1) $(wait_for 15 has_xen h2)" "[0-9]* [0-9]*"
nic_rates() { vm_field "$1" nics | python3 -c 'import ast,sys; print(" ".join(str(n["rate_kbps"]) for n in ast.literal_eval(sys.stdin.read())))'; }

# (a) hvctl's refusals: exit 2, naming the value; nothing reaches hvd.
set +e
for bad in 2X 0 -5 M 99999999999G ''; do
	"$HVCTL" vm create a --vcpus 1 --memory 64 --kernel vmlinuz-guest --net 100 --rate "$bad" >/dev/null 2>"$T/err"; rc=$?
	expect "(a) --rate '$bad' refused" "$rc $(cat "$T/err")" "2 *--rate '$bad': expected N\[k|M|G\] bit/s*"
done
"$HVCTL" vm create a --vcpus 1 --memory 64 --kernel vmlinuz-guest --rate 20M >/dev/null 2>"$T/err"; rc=$?
expect "(a) --rate without --net refused" "$rc $(cat "$T/err")" "2 *--rate needs a --net*"
set -e
vm_count() { sock GET /api/v1/vms | cut -d' ' -f2- | field "len(d['vms'])"; }
expect_eq "(a) nothing created" "$(vm_count)" 0
expect_eq "(a) no vm.create sent" "$(nreqs h1 vm.create) $(nreqs h2 vm.create)" "0 0"

# (b) hvd's range, naming the NIC.
expect_eq "(b) 63 kbit/s: 400 naming networks[1].rate_kbps" \
	"$(sock POST /api/v1/vms '{"name":"a","vcpus":1,"memory_mib":64,"kernel":"vmlinuz-guest","networks":[{"vni":100},{"vni":200,"rate_kbps":63}]}')" \
	'400 {"error":"networks[1].rate_kbps: must be an integer in 64..100000000 (kbit/s)"}'
expect_eq "(b) a string: 400 too" \
	"$(sock POST /api/v1/vms '{"name":"a","vcpus":1,"memory_mib":64,"kernel":"vmlinuz-guest","networks":[{"vni":100,"rate_kbps":"20M"}]}')" \
	'400 {"error":"networks[0].rate_kbps: must be an integer in 64..100000000 (kbit/s)"}'
expect_eq "(b) nothing created" "$(vm_count)" 0

# (c) Stored per NIC, sent to the host.
"$HVCTL" vm create web1 --vcpus 1 --memory 64 --kernel vmlinuz-guest --net 100 --net 200 --rate 20M --no-wait >/dev/null
"$HVCTL" vm create web2 --vcpus 1 --memory 64 --kernel vmlinuz-guest --net 100 --host h1 --no-wait >/dev/null
expect_eq "(c) vm show: both NICs of web1 at 20000 kbit/s" "$(nic_rates web1)" "20000 20000"
expect_eq "(c) vm show: web2 unlimited (0)" "$(nic_rates web2)" "0"
wait_for 10 has_reqs h1 vm.create 2 >/dev/null
rates_sent() { reqs h1 vm.create | python3 -c 'import json,sys
for l in sys.stdin:
    d = json.loads(l)
    print(d["name"], ",".join(str(n.get("rate_kbps", "-")) for n in d["nics"]))'; }
expect_eq "(c) web1 went to h1 (equal hosts: the name decides)" "$(vm_field web1 host)" h1
expect_eq "(c) vm.create carries each NIC's rate_kbps, none for web2" "$(rates_sent | sort | tr '\n' ';')" "web1 20000,20000;web2 -;"
"$HVCTL" vm create web3 --vcpus 1 --memory 64 --kernel vmlinuz-guest --net 100 --rate 500k --host h2 --no-wait >/dev/null
"$HVCTL" vm create web4 --vcpus 1 --memory 64 --kernel vmlinuz-guest --net 100 --rate 1500 --host h2 --no-wait >/dev/null
expect_eq "(a) 500k is 500 kbit/s, a bare 1500 is kbit/s" "$(nic_rates web3) $(nic_rates web4)" "500 1500"

# (c) A migration target gets the rate with the VM's config.
U1=$(vm_field web1 uuid)
notify h1 vm.state "{\"uuid\":\"$U1\",\"name\":\"web1\",\"state\":\"running\",\"domid\":5}"
wait_for 10 vm_is web1 state running >/dev/null
r=$(sock POST /api/v1/vms/web1/migrate '{"to":"h2"}')
expect "(c) web1 migrates to h2" "$r" "202 *"
wait_for 10 has_reqs h2 vm.migrate_in 1 >/dev/null || true
expect_eq "(c) vm.migrate_in to h2 carries web1's rates" \
	"$(reqs h2 vm.migrate_in | python3 -c 'import json,sys
for l in sys.stdin:
    d = json.loads(l); v = d.get("vm", d)
    print(",".join(str(n.get("rate_kbps", "-")) for n in v["nics"]))')" "20000,20000"

# (d) Across a restart of hvd.
stop_hvd
start_hvd
expect_eq "(d) after a restart: the rates are kept" "$(nic_rates web1) $(nic_rates web3)" "20000 20000 500"
finish
