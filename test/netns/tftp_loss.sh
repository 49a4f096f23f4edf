#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# TFTP under packet loss: hvd in one namespace, 20 concurrent atftp clients
# (blksize 1428, windowsize 8) in another, and 5% of UDP packets dropped in
# each direction by nftables (numgen random) on input in both namespaces.  Every
# download must complete with the right SHA-256, and hvd must show that it
# recovered by retransmitting, not by luck.
. "$(dirname "$0")/lib.sh"
: "${HVD:?}"
for t in nft atftp sha256sum; do
	command -v "$t" >/dev/null || { echo "FAIL: $t not installed (packaging/deps.sh)"; exit 1; }
done

CLIENTS=${TFTP_LOSS_CLIENTS:-20}
mkns srv s
mkns cli c
link_ns "$srv" 10.78.1.1/24 "$cli" 10.78.1.2/24

# drop_udp NS PERCENT: that share of the UDP packets NS receives is lost.
# On input, not output: a packet dropped on output fails the sender's
# sendto() with EPERM, which is a local error, not loss (atftp aborts on it).
drop_udp() {
	ip netns exec "$1" nft -f - <<NFT
table inet hvloss {
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr 10.78.1.0/24 meta l4proto udp numgen random mod 100 < $2 counter drop
	}
}
NFT
}
dropped() {
	ip netns exec "$1" nft list chain inet hvloss in |
		sed -n 's/.*counter packets \([0-9]*\).*/\1/p'
}

B=$T/boot
mkdir -p "$B"
head -c $((4 << 20)) /dev/urandom > "$B/big"
head -c $((1 << 20)) /dev/urandom > "$B/mid"
head -c $((1428 * 100)) /dev/urandom > "$B/edge"
files=(big mid edge undionly.kpxe)

cat > "$T/hvd.conf" <<CONF
state-dir $T/state
api-socket $T/hvd.sock
api-socket-mode 0600
boot-root $B
tftp-listen 10.78.1.1:69
log-level debug
CONF
bg "$srv" "$T/hvd.log" "$HVD" -d -f "$T/hvd.conf"
HVD_PID=$LAST_PID
healthy() { curl -sf --unix-socket "$T/hvd.sock" http://localhost/healthz; }
expect "hvd starts (s)" "$(wait_for 10 healthy || true)" '[0-9]*.[0-9]'
expect "undionly.kpxe installed in the boot root" "$([ -s "$B/undionly.kpxe" ] && echo yes)" yes

drop_udp "$srv" 5
drop_udp "$cli" 5

start=$(date +%s.%N)
pids=()
for i in $(seq 1 "$CLIENTS"); do
	f=${files[$((i % ${#files[@]}))]}
	ip netns exec "$cli" timeout 180 atftp --option "blksize 1428" \
		--option "tsize 0" --option "windowsize 8" --tftp-timeout 1 \
		-g -r "$f" -l "$T/got.$i" 10.78.1.1 69 > "$T/atftp.$i.log" 2>&1 &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
secs=$(echo "$(date +%s.%N) - $start" | bc)

good=0
for i in $(seq 1 "$CLIENTS"); do
	f=${files[$((i % ${#files[@]}))]}
	if [ -f "$T/got.$i" ] && [ "$(sha256sum < "$T/got.$i")" = "$(sha256sum < "$B/$f")" ]; then
		good=$((good + 1))
	else
		echo "client $i ($f):"; tail -n 5 "$T/atftp.$i.log"
	fi
done
printf 'info %d transfers in %.1f s; dropped: %s on the way to hvd, %s on the way to the clients\n' \
	"$CLIENTS" "$secs" "$(dropped "$srv")" "$(dropped "$cli")"
expect "all $CLIENTS downloads complete with the right SHA-256" "$good" "$CLIENTS"
expect "packets to hvd were dropped" "$(dropped "$srv")" '[1-9]*'
expect "packets to the clients were dropped" "$(dropped "$cli")" '[1-9]*'

# A transfer whose final ACK was lost ends at hvd's deadline (6 s).
idle() {
	m=$(curl -s --unix-socket "$T/hvd.sock" http://localhost/metrics)
	echo "$m" | grep -q '^hvd_tftp_transfers_active 0$'
}
expect "hvd ends every transfer (s)" "$(wait_for 15 idle || true)" '[0-9]*.[0-9]'
m=$(curl -s --unix-socket "$T/hvd.sock" http://localhost/metrics)
metric() { echo "$m" | sed -n "s/^$1 //p"; }
info=$(metric hvd_tftp_timeouts_total)
echo "info hvd: $info timeouts, $(metric hvd_tftp_sent_bytes_total) bytes sent," \
	"$(metric hvd_tftp_transfers_completed_total) completed"
expect "hvd recovered losses with its retransmit timer" "$info" '[1-9]*'
# A client that got its last block and left while its final ACK was
# dropped cannot be told apart from success any better than this.
lastack=$(grep -c "failed after .*after the last block was sent" "$T/hvd.log" || true)
expect "hvd saw every transfer to its last block" \
	"$(( $(metric hvd_tftp_transfers_completed_total) + lastack ))" "$CLIENTS"
expect "and no other failure" "$(metric hvd_tftp_transfers_failed_total)" "$lastack"
expect "hvd is still up" "$(kill -0 "$HVD_PID" && echo up)" up
expect "no sanitizer report in hvd's log" \
	"$(sanitizer_reports "$T/hvd.log")" 0
finish
