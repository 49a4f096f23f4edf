#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The agent link across real namespaces: hvd in one, hosts in others.
# A real hv-agent registers and reports; agent_probe tries every attack
# PROTOCOL.md names, and each must close only its own connection and leave
# the real agent's session alone.  An attack by a peer that never
# authenticated is counted under its reason in /metrics and named in the
# per-source refusal log line (no event row: a flood must not grow the
# inventory); one with the enrolled probe key after the handshake writes an
# agent.rejected event naming the host.  Then recovery: hvd
# restarts and the agent comes back within its backoff; a killed agent's
# host goes down after 3 missed heartbeats.
. "$(dirname "$0")/lib.sh"
: "${HVD:?}" "${HVCTL:?}" "${HV_AGENT:?}" "${AGENT_PROBE:?}"

mkns hvns d
mkns h1ns a
mkns h2ns b
link_ns "$hvns" 10.77.1.1/24 "$h1ns" 10.77.1.2/24
link_ns "$hvns" 10.77.2.1/24 "$h2ns" 10.77.2.2/24

cat > "$T/hvd.conf" <<CONF
state-dir $T/state
api-socket $T/hvd.sock
api-socket-mode 0600
agent-listen 0.0.0.0:8471
agent-heartbeat-ms 1000
log-level debug
CONF
export HVCTL_SOCKET=$T/hvd.sock
start_hvd() { start_hvd_in "$hvns" 10; }
start_hvd
HK=$("$HVCTL" --json status | sed -n 's/.*"agent_key": "\([0-9a-f]*\)".*/\1/p')
expect "hvd publishes its agent key" "${#HK}" 64

# --- a real agent in host namespace 1
"$HVCTL" host add h1 --out "$T/h1" >/dev/null
sed -i "s/^hvd .*/hvd 10.77.1.1:8471/" "$T/h1/agent.conf"
echo "session-file $T/h1/session" >> "$T/h1/agent.conf"
expect "agent.key is 0600" "$(stat -c %a "$T/h1/agent.key")" 600
bg "$h1ns" "$T/agent1.log" "$HV_AGENT" -d -v -f "$T/h1/agent.conf"
AGENT1=$LAST_PID
host_state() { "$HVCTL" --json host list | tr -d ' \n' | grep -q "\"name\":\"$1\"[^}]*\"state\":\"$2\""; }
expect "h1 registers (s)" "$(wait_for 10 host_state h1 up || true)" '[0-9]*.[0-9]'
has_telemetry() { curl -sf --unix-socket "$T/hvd.sock" http://localhost/api/v1/hosts/h1/telemetry | grep -q '"percent":[0-9]'; }
expect "telemetry with CPU percent arrives (s)" "$(wait_for 10 has_telemetry || true)" '[0-9]*.[0-9]'
expect "boot token consumed" "$(curl -s --unix-socket "$T/hvd.sock" 'http://localhost/api/v1/events?subject=h1' | grep -c 'boot token consumed')" 1
expect "agent facts reached hvd" "$(sqlite3 "$T/state/hvd.db" "SELECT json_extract(facts, '$.cpu.count') FROM hosts WHERE name='h1'")" "$(nproc)"
m=$(curl -s --unix-socket "$T/hvd.sock" http://localhost/metrics)
expect "per-host gauge in /metrics" "$(echo "$m" | grep '^hvd_host_up{host="h1"}')" 'hvd_host_up{host="h1"} 1'
expect "hvctl top --once" "$("$HVCTL" top --once | grep '^h1')" 'h1*up*connected'

# --- hvd -> agent commands through the agent's dispatch table
expect "host call ping" "$("$HVCTL" --json host call h1 ping | tr -d ' \n')" '*"method":"ping"*"result":{"boot_id":"*"}*'
expect "host call config.apply" "$("$HVCTL" --json host call h1 config.apply '{"telemetry_ms":1000}' | tr -d ' \n')" '*"result":{"applied":true}*'
expect "host call facts.refresh" "$("$HVCTL" --json host call h1 facts.refresh | tr -d ' \n')" '*"result":{*"cpu":{*"count":'"$(nproc)"'*'
set +e
out=$("$HVCTL" host call h1 config.apply '{"telemetry_ms":5}' 2>&1); rc=$?
set -e
expect "agent's error reaches the operator" "$rc:$out" "1:*agent answered failed: telemetry_ms must be in 1000..3600000 (HTTP 502)"

# --- attacks from host namespace 2, with a separately enrolled probe key
read -r PRIV PUB < <("$AGENT_PROBE" keygen)
"$HVCTL" host add probe --pubkey "$PUB" >/dev/null
probe() { ip netns exec "$h2ns" "$AGENT_PROBE" "$@" 10.77.2.1:8471 "$HK" "$PRIV"; }
expect "a valid probe session works" "$(probe ok)" "pass valid session"
count_rejected() { curl -s --unix-socket "$T/hvd.sock" 'http://localhost/api/v1/events?limit=1000' | { grep -o agent.rejected || true; } | wc -l; }
refused() { curl -s --unix-socket "$T/hvd.sock" http://localhost/metrics |
	awk -v k="hvd_agent_refused_total{reason=\"$1\"}" '$1 == k { v = $2 } END { print v + 0 }'; }
events_before=$(count_rejected)
# Before the handshake authenticated anyone: each attack is counted, once,
# under its own reason.
for cr in wrong-hvd-key:handshake unknown-key:unknown_key replay-msg1:replay \
	oversize:oversize garbage:garbage downgrade:version; do
	c=${cr%%:*} r=${cr#*:}
	n0=$(refused "$r")
	expect "refused: $c" "$(probe "$c")" "pass *"
	expect_eq "$c counted as hvd_agent_refused_total{reason=\"$r\"}" "$(( $(refused "$r") - n0 ))" 1
done
expect_eq "no agent.rejected event for a peer that never authenticated" "$(( $(count_rejected) - events_before ))" 0
# With the enrolled probe key, after the handshake: one event each.
for c in replay-frame reorder tamper; do
	expect "refused: $c" "$(probe "$c")" "pass *"
done
expect_eq "one agent.rejected event per authenticated attack" "$(( $(count_rejected) - events_before ))" 3
expect_eq "each event names the host and the reason" "$(curl -s --unix-socket "$T/hvd.sock" \
	'http://localhost/api/v1/events?subject=probe&limit=1000' | grep -o 'transport frame failed authentication' | wc -l)" 3
TOK=$(sed -n 's/^boot-token //p' "$T/h1/agent.conf")
expect "reused boot token refused" "$(ip netns exec "$h2ns" "$AGENT_PROBE" token 10.77.2.1:8471 "$HK" "$(cat "$T/h1/agent.key")" "$TOK")" refused
expect "reused boot token event" "$(curl -s --unix-socket "$T/hvd.sock" 'http://localhost/api/v1/events?subject=h1' | grep -c 'boot token already used')" 1
expect "real agent kept its session through all of it" "$(grep -c 'session with hvd ended' "$T/agent1.log" || true)" 0
expect "h1 still up" "$(host_state h1 up && echo yes)" yes
expect "hvd still serving" "$(curl -s --unix-socket "$T/hvd.sock" http://localhost/healthz)" '{"status":"ok"}'

# --- recovery: hvd restarts, the agent comes back within its backoff
stop_hvd
# hvd wrote what its refusal log held as it stopped: every unauthenticated
# attack's reason is named in a line for the probe's address (the first at
# once with its full text, the rest in the per-minute summary).
for reason in "handshake failed" "unknown (agent )?key" "replayed (handshake )?message 1" \
	"oversize frame|frame length 0 or above 65535" "garbage before the handshake" \
	"unsupported wire version|wire version 0.0 is not supported"; do
	expect "refusal log names: $reason" "$(grep -E 'agent: .*refused from 10\.77\.2\.2' "$T/hvd.log" | grep -cE "$reason" || true)" '[1-9]*'
done
expect "one or two refusal lines for the probe's address, not one per attack" \
	"$(grep -cE 'agent: .*refused from 10\.77\.2\.2' "$T/hvd.log" || true)" '[12]'
start_hvd
connected() { curl -s --unix-socket "$T/hvd.sock" http://localhost/api/v1/hosts | grep -q '"name":"h1"[^}]*"connected":true'; }
t=$(wait_for 20 connected || true)
expect "agent reconnected after hvd restart (s)" "$t" '[0-9]*.[0-9]'
expect "reconnect within backoff bounds (< 5 s)" "$(echo "$t < 5" | bc)" 1
expect "no token on the reconnect" "$(grep -c 'hvd refused hello' "$T/agent1.log" || true)" 0

# --- a killed agent's host goes down after 3 missed heartbeats (3 s)
kill -9 "$AGENT1"
t=$(wait_for 15 host_state h1 down || true)
expect "killed agent's host marked down (s)" "$t" '[0-9]*.[0-9]'
expect "down after the threshold, not before" "$(echo "$t >= 2.0" | bc)" 1
expect "host.down event" "$(curl -s --unix-socket "$T/hvd.sock" 'http://localhost/api/v1/events?subject=h1' | grep -c 'missed 3 heartbeats')" '[1-9]*'
expect "no sanitizer report from hvd" "$(sanitizer_reports "$T/hvd.log")" 0
finish
