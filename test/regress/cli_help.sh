#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# hvctl's help, version and global options, and hv-agent's --version:
# --help on every command in the table (as hvctl help lists them) prints
# its whole usage line and runs nothing; hvctl help FAMILY [VERB]; a bare
# family and unknown commands are usage errors naming what was typed; no
# usage line is cut; --json, --socket and --url anywhere before a "--",
# while an option's value that looks like one (--description --json) and
# everything after "--" reach the command untouched.
. "$(dirname "$0")/lib.sh"
: "${HV_AGENT:?HV_AGENT must point at the hv-agent binary}"
: "${HV_VERSION:?HV_VERSION must be the build version (PROJECT_VERSION)}"

# run CMD...: stdout in $T/o, stderr in $T/e, exit status in rc.
run() {
	rc=0
	"$@" >"$T/o" 2>"$T/e" || rc=$?
}

# --- hvctl help, and --help on every command, with no hvd running
export HVCTL_SOCKET="$T/none.sock"
run "$HVCTL" help
expect "hvctl help exits 0" "$rc" 0
cp "$T/o" "$T/help"
run "$HVCTL" --help
expect "hvctl --help exits 0" "$rc" 0
expect_eq "hvctl --help is hvctl help" "$(cat "$T/o")" "$(cat "$T/help")"
# Command lines: two spaces, then the words (lower case), then the args.
sed -n '/^commands:$/,/^$/{s/^  \([a-z]\)/\1/p}' "$T/help" >"$T/usages"
expect "the table lists 30 commands or more" "$(($(wc -l <"$T/usages") >= 30))" 1
bad=
while IFS= read -r line; do
	read -r -a w <<<"$line"
	words=("${w[0]}")
	if [[ ${w[1]:-} =~ ^[a-z]+$ ]]; then words+=("${w[1]}"); fi
	for flag in --help -h; do
		run "$HVCTL" "${words[@]}" "$flag"
		if [ "$rc" != 0 ] || ! grep -qxF "usage: hvctl $line" "$T/o" || [ -s "$T/e" ]; then
			bad+="${words[*]} $flag (rc $rc: $(head -c 200 "$T/o" "$T/e")); "
		fi
	done
done <"$T/usages"
expect_eq "every command's --help and -h: exit 0, its usage on stdout" "$bad" ""
expect "help is in the table" "$(grep -c '^help \[COMMAND...\]$' "$T/usages")" 1
expect "version is in the table" "$(grep -c '^version$' "$T/usages")" 1

# A --help between the words, or before them, is the same request.
run "$HVCTL" --help host drain
expect "hvctl --help host drain" "$rc $(head -1 "$T/o")" "0 usage: hvctl host drain NAME \[--no-wait\]"
run "$HVCTL" host --json --help drain
expect "hvctl host --json --help drain" "$rc $(head -1 "$T/o")" "0 usage: hvctl host drain NAME \[--no-wait\]"
# The help text is printed too, indented under the usage line.
run "$HVCTL" host drain --help
expect "host drain --help has its help text" "$(sed -n 2p "$T/o")" \
	"      maintenance: place nothing on NAME and move its VMs away"

# A --help that is an option's value is not a request for help: here it is
# the path of --socket, where nothing listens.
run "$HVCTL" net list --socket --help
expect "--socket --help: the socket, not help" "$rc $(cat "$T/o")" "3 "

# --- families and unknown commands
vm_cmds="vm create|vm list|vm show|vm stop|vm start|vm reboot|vm destroy|vm console|vm migrate|"
run "$HVCTL" help vm
expect "help vm exits 0" "$rc" 0
expect_eq "help vm lists vm create ... vm migrate" \
	"$(grep '^  [a-z]' "$T/o" | awk '{ printf "%s %s|", $1, $2 }')" "$vm_cmds"
expect "help vm gives each help text" "$(grep -c '^      [a-z]' "$T/o")" 9
cp "$T/o" "$T/helpvm"
run "$HVCTL" vm --help
expect_eq "vm --help is help vm" "$rc $(cat "$T/o")" "0 $(cat "$T/helpvm")"
run "$HVCTL" vm
expect "bare family: usage error" "$rc" 2
expect "bare family: nothing on stdout" "$(cat "$T/o")" ""
expect "bare family: says a subcommand is missing" "$(head -1 "$T/e")" "hvctl vm: needs one of:"
expect_eq "bare family lists its commands on stderr" \
	"$(grep '^  [a-z]' "$T/e" | awk '{ printf "%s %s|", $1, $2 }')" "$vm_cmds"
run "$HVCTL" help vm create
expect "help vm create" "$rc $(head -1 "$T/o")" "0   vm create NAME --vcpus N *"
expect "help vm create: one command" "$(grep -c '^  [a-z]' "$T/o")" 1
run "$HVCTL" help backup
expect "help backup" "$rc $(head -1 "$T/o")" "0   backup *FILE"
run "$HVCTL" help nosuch
expect "help nosuch: exit 2" "$rc" 2
expect "help nosuch: names it" "$(cat "$T/e")" "*'nosuch'*hvctl help*"
run "$HVCTL" help vm nosuch
expect "help vm nosuch: exit 2 naming it" "$rc $(cat "$T/e")" "2 *'vm nosuch'*"
run "$HVCTL" nosuch
expect "nosuch: exit 2" "$rc" 2
expect_eq "nosuch: named, hvctl help suggested" "$(cat "$T/e")" \
	"hvctl: unknown command 'nosuch'; try hvctl help"
run "$HVCTL" nosuch --help
expect "nosuch --help: still unknown" "$rc $(cat "$T/e")" "2 *'nosuch'*"
run "$HVCTL" vm nosuch
expect_eq "vm nosuch: exit 2, named" "$rc $(cat "$T/e")" \
	"2 hvctl: unknown command 'vm nosuch'; try hvctl help vm"
run "$HVCTL" --nosuch vm list
expect "unknown global option: exit 2 naming it" "$rc $(cat "$T/e")" "2 *'--nosuch'*"
run "$HVCTL"
expect "no command: usage on stderr, exit 2" "$rc $(head -1 "$T/e")" "2 usage: hvctl *"

# --- whole usage lines
vm_create='vm create NAME --vcpus N --memory MIB [--type pv|pvh] [--kernel IMG] [--initramfs IMG] [--cmdline TEXT] [--disk IMG] [--net VNI[=MAC]]... [--rate RATE] [--host H] [--label K=V] [--anti-affinity G] [--no-wait]'
expect "--help: vm create's usage whole" "$(grep -cxF "  $vm_create" "$T/help")" 1
expect "--help: host adopt's usage whole, up to --mount" \
	"$(grep -c '^  host adopt FINGERPRINT|MAC --name NAME .*\[--ssh-keys FILE\] \[--mount SRC:PATH\[:FS\[:OPTS\]\]\]\.\.\.$' "$T/help")" 1
expect "--help: host edit's usage ends with --no-mounts]" \
	"$(grep -c '^  host edit NAME .*\[--no-mounts\]$' "$T/help")" 1
# Each usage line in --help is whole: the --help of the command itself
# (printed from the table entry alone) carries the same line.
run "$HVCTL" vm create --help
expect_eq "vm create --help: the same whole line" "$(head -1 "$T/o")" "usage: hvctl $vm_create"

# --- versions: hvctl's and hv-agent's are the build's HV_VERSION
want=$HV_VERSION
expect "the build's version is known" "$want" "?*.?*"
lic="AGPL-3.0-or-later (commercial licences available); this version's source: GET /source.tar.gz from hvd"
run "$HVCTL" --version
expect_eq "hvctl --version: the version, the licence and where the source is" "$rc $(cat "$T/o")" "0 hvctl $want
$lic"
run "$HVCTL" version
expect_eq "hvctl version" "$rc $(cat "$T/o")" "0 hvctl $want
$lic"
run "$HVD" --version
expect_eq "hvd --version: the same" "$rc $(cat "$T/o")" "0 hvd $want
$lic"
run "$HVCTL" version extra
expect "hvctl version extra: usage error" "$rc" 2
run "$HV_AGENT" --version
expect_eq "hv-agent --version" "$rc $(cat "$T/o")" "0 hv-agent $want"
run "$HV_AGENT" -V
expect_eq "hv-agent -V" "$rc $(cat "$T/o")" "0 hv-agent $want"
run "$HV_AGENT" --help
expect "hv-agent --help: stdout, exit 0" "$rc $(head -1 "$T/o")" "0 usage: hv-agent *"
expect "hv-agent --help mentions --version" "$(grep -c -- '--version' "$T/o")" 1
run "$HV_AGENT" --nosuch
expect "hv-agent bad option: stderr, exit 2" "$rc $(cat "$T/o")" "2 "

# --- against a real hvd
start_hvd
# backup --help must not write a backup named --help (it used to, and
# with hvd there a backup would be written).
mkdir "$T/cwd"
(cd "$T/cwd" && "$HVCTL" backup --help >"$T/o" 2>&1) && rc=0 || rc=$?
expect "backup --help exits 0" "$rc" 0
expect "backup --help prints its usage and help" "$(cat "$T/o")" \
	"usage: hvctl backup *FILE
      write the inventory and master key to FILE *"
expect "backup --help writes no file" "$(ls -A "$T/cwd")" ""

# --- global options anywhere
"$HVCTL" net create web --vni 200 --description 'web tier' >/dev/null
a=$("$HVCTL" --json net list)
expect "--json first is JSON" "$(echo "$a" | field 'd["networks"][0]["name"]')" web
expect_eq "net list --json = --json net list" "$("$HVCTL" net list --json)" "$a"
expect_eq "net --json list = --json net list" "$("$HVCTL" net --json list)" "$a"
expect_eq "vm list --json = --json vm list" "$("$HVCTL" vm list --json)" "$("$HVCTL" --json vm list)"
expect "vm list --json is JSON" "$("$HVCTL" vm list --json | field 'd["vms"]')" "[]"
# --socket after the command wins over $HVCTL_SOCKET, in both spellings.
run "$HVCTL" net list --socket "$T/nothing.sock"
expect "net list --socket PATH: that socket" "$rc" 3
run "$HVCTL" net list "--socket=$T/nothing.sock"
expect "net list --socket=PATH: that socket" "$rc" 3
run "$HVCTL" net list --socket
expect "--socket without a value: usage error" "$rc $(cat "$T/e")" "2 *--socket needs a value*"
# --url after the command: TCP, where no token means 401 (exit 4).
run env -u HVCTL_TOKEN "$HVCTL" net list --url "$URL"
expect "net list --url URL: over TCP" "$rc" 4
ADMIN=$("$HVCTL" token create --role admin 2>/dev/null)
run env HVCTL_TOKEN="$ADMIN" "$HVCTL" net list --json --url "$URL"
expect_eq "net list --json --url URL with a token" "$rc $(cat "$T/o")" "0 $a"

# An option's value that looks like a global option stays the value.
# desc NAME: the description of network NAME, as hvd has it.
desc() { "$HVCTL" --json net show "$1" 2>/dev/null | field 'd["description"]' 2>/dev/null || true; }
run "$HVCTL" net create n1 --vni 5 --description --json
expect_eq "--description --json: the description" "$rc $(desc n1)" "0 --json"
run "$HVCTL" net create n2 --vni 6 --desc --json
expect_eq "--desc (abbreviated) --json: the description" "$rc $(desc n2)" "0 --json"
run "$HVCTL" net create n3 --description --help --vni 7
expect "--description --help: created, not help" "$rc $(cat "$T/o")" "0 NAME*n3*7*--help*"
run "$HVCTL" net create n4 --vni 8 --description=--url
expect_eq "--description=--url: the description" "$rc $(desc n4)" "0 --url"
run "$HVCTL" net create n5 --description --socket --vni 9 --json
expect_eq "--description --socket ... --json: created, JSON out" \
	"$rc $(field 'd["description"]' <"$T/o" 2>/dev/null || true)" "0 --socket"
# vm create --cmdline --json: the value reaches hvd (no host fits: exit 5),
# where a stripped --json would leave --cmdline without one (exit 2).
run "$HVCTL" vm create v1 --vcpus 1 --memory 64 --no-wait --cmdline --json
expect "vm create --cmdline --json: sent to hvd" "$rc" 5
expect "vm create --cmdline --json: hvd's answer, not JSON" "$(cat "$T/o") $(cat "$T/e")" " hvctl: vm create: * \\(HTTP 4??\\)"
# After "--" nothing is hvctl's: net show reads "--json" as the name.
run "$HVCTL" net show -- --json
expect "net show -- --json: a network named --json" "$rc $(cat "$T/e")" "5 *no network '--json'*"
run "$HVCTL" host call h1 ping -- --json
expect "host call ... -- --json: the PARAMS-JSON" "$rc $(cat "$T/e")" "2 hvctl host call: PARAMS-JSON:*"
run "$HVCTL" net create n6 --vni 10 -- --json
expect "net create ... -- --json: a second NAME, refused" "$rc" 2
expect "no network n6" "$("$HVCTL" --json net list | grep -c '"n6"' || true)" 0
# A usage error from the command itself names it and shows its usage.
run "$HVCTL" vm create v2 --nosuch
expect "vm create --nosuch: exit 2" "$rc" 2
expect "vm create --nosuch: getopt names the command" "$(cat "$T/e")" "hvctl vm create: unrecognized option '--nosuch'*"
expect_eq "vm create --nosuch: the usage follows" "$(tail -1 "$T/e")" "usage: hvctl $vm_create"
finish
