#!/bin/bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Local storage (agent/storage.c): the real hv-agent, in a private mount
# namespace so its mounts vanish with it, mounts fstab lines by LABEL= and
# UUID= from loop devices, formats only the explicitly named empty device,
# logs a missing disk and keeps running.  Needs root, loop devices, mkfs.ext4.
. "$(dirname "$0")/lib.sh"
: "${HV_AGENT:?}"

need_cmd losetup mkfs.ext4 blkid unshare findmnt
losetup -f >/dev/null 2>&1 || need "a free loop device (losetup -f failed)"

LOOPS=()
APID=
storage_cleanup() {
	local l
	if [ -n "$APID" ]; then
		kill "$APID" 2>/dev/null || true
		wait "$APID" 2>/dev/null || true
	fi
	for l in "${LOOPS[@]}"; do
		losetup -d "$l" 2>/dev/null || true
	done
	netns_cleanup
}
trap storage_cleanup EXIT

LA="hvsa$SUFFIX"; LB="hvsb$SUFFIX"; LM="hvsm$SUFFIX"; LX="hvsx$SUFFIX"
truncate -s 32M "$T/a.img" "$T/b.img"
if ! A=$(losetup -f --show "$T/a.img"); then
	need "a loop device it can attach (losetup -f --show failed)"
fi
LOOPS+=("$A")
B=$(losetup -f --show "$T/b.img")
LOOPS+=("$B")
mkfs.ext4 -q -L "$LA" "$A"
UA=$(blkid -p -o value -s UUID "$A")
expect "pre-made filesystem has a UUID" "$UA" '?*-*'
expect "second device starts empty" "$(blkid -p -o value -s TYPE "$B" || true)" ''

M="$T/mnt"
cat > "$T/fstab" <<FSTAB
# made by storage.sh
/dev/sda1	/ignored	ext4	defaults	0 0
LABEL=$LA	$M/a	ext4	noatime,nodev	0 0
UUID=$UA	$M/byuuid	auto	defaults,nosuid	0 0
LABEL=$LM	$M/missing	ext4	defaults	0 0
LABEL=$LB	$M/b	ext4	defaults,x-hv-format=${B#/dev/}	0 0
LABEL=$LX	$M/x	ext4	defaults,x-hv-format=${A#/dev/}	0 0
LABEL=$LA	$M/refused	ext4	defaults,user	0 0
FSTAB

mkdir -p "$T/agent"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$T/agent/agent.key"; echo >> "$T/agent/agent.key"
chmod 600 "$T/agent/agent.key"
cat > "$T/agent/agent.conf" <<CONF
hvd 127.0.0.1:9
hvd-key $(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
host h1
key-file $T/agent/agent.key
session-file $T/agent/session
mesh-file $T/agent/mesh.json
fstab $T/fstab
CONF

# run_agent LOG: the agent in its own mount and network namespaces (unshare
# execs it, so $! is the agent).
run_agent() {
	unshare -m -n --propagation private "$HV_AGENT" -d -v -f "$T/agent/agent.conf" > "$1" 2>&1 &
	APID=$!
}
stop_agent() {
	kill "$APID" 2>/dev/null || true
	wait "$APID" 2>/dev/null || true
	APID=
}
# The agent's mounts, read from /proc/APID/mountinfo (findmnt --task):
# unlike nsenter, this also works when the test itself runs in a chroot.
mnt_of() { findmnt --task "$APID" -n -o "$1" --mountpoint "$2" 2>/dev/null || true; }
src_of() { mnt_of SOURCE "$1"; }
started() { grep -q 'hv-agent .*: host h1' "$T/agent1.log"; }

run_agent "$T/agent1.log"
expect "agent started after the storage pass (s)" "$(wait_for 20 started || true)" '[0-9]*.[0-9]'
expect "LABEL= line mounted from the labelled device" "$(src_of "$M/a")" "$A"
expect "with its options (noatime,nodev)" "$(mnt_of OPTIONS "$M/a")" '*nodev*noatime*'
expect "UUID= line mounted, fstype auto" "$(src_of "$M/byuuid")" "$A"
expect "nosuid honoured" "$(mnt_of OPTIONS "$M/byuuid")" '*nosuid*'
expect "x-hv-format line mounted from the empty device" "$(src_of "$M/b")" "$B"
expect "the empty device now holds ext4" "$(blkid -p -o value -s TYPE "$B" || true)" ext4
expect "with the line's label" "$(blkid -p -o value -s LABEL "$B" || true)" "$LB"
expect "the format was logged loudly" "$(grep -c "FORMATTING $B as ext4 with label $LB" "$T/agent1.log" || true)" 1
expect "the pre-made filesystem was not reformatted (UUID kept)" "$(blkid -p -o value -s UUID "$A")" "$UA"
expect "x-hv-format on a device holding a filesystem refused" "$(grep -c "$A already holds ext4; NOT formatting" "$T/agent1.log" || true)" 1
expect "nothing mounted for it" "$(src_of "$M/x")" ''
expect "missing label logged" "$(grep -c "no device with LABEL=$LM" "$T/agent1.log" || true)" 1
expect "nothing mounted at the missing one" "$(src_of "$M/missing")" ''
expect "unsafe option refused and logged" "$(grep -c "option 'user' is not one of" "$T/agent1.log" || true)" 1
expect "nothing mounted for the refused line" "$(src_of "$M/refused")" ''
expect "non-UUID/LABEL line ignored" "$(grep -c '/ignored' "$T/agent1.log" || true)" 0
sleep 1
expect "agent keeps running" "$(kill -0 "$APID" 2>/dev/null && echo yes)" yes
expect "the host's own mount table untouched" "$(findmnt -n --mountpoint "$M/a" || true)" ''
stop_agent
UB=$(blkid -p -o value -s UUID "$B")

# A second start finds the label: no second format.
run_agent "$T/agent2.log"
started() { grep -q 'hv-agent .*: host h1' "$T/agent2.log"; }
expect "second agent started (s)" "$(wait_for 20 started || true)" '[0-9]*.[0-9]'
expect "formatted device mounted by its label now" "$(src_of "$M/b")" "$B"
expect "not formatted again (UUID kept)" "$(blkid -p -o value -s UUID "$B")" "$UB"
expect "no FORMATTING on the second start" "$(grep -c FORMATTING "$T/agent2.log" || true)" 0
stop_agent
expect "no sanitizer report from the agent" "$(sanitizer_reports "$T"/agent*.log)" 0
finish
