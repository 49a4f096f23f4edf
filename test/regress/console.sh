#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The interactive console (hvctl vm console NAME --attach; REST
# /api/v1/vms/NAME/console/attach and /api/v1/consoles/ID; PROTOCOL.md 6.2
# vm.console_*) against the real hvd, with emulated agents
# (test/tools/agent_emu) that run hv-agent's own relay
# (agent/vm_console_attach.c) over a real pty whose far side is a child
# answering each line "answer: LINE", and one real hv-agent without Xen:
#  (a) printf 'hello\n' | hvctl vm console web1 --attach: the answer on
#      stdout, "Connected to ..." and the detach on stderr, exit 0; the
#      agent got vm.console_attach (uuid, a 32-hex session), the input
#      as base64, and vm.console_detach for the same session;
#  (b) Ctrl-] (byte 0x1d) in stdin detaches at once, exit 0, and what
#      came before it on the same read is sent;
#  (c) REST: attach 201 with a Location; a read waits (long-poll) until
#      output comes or its wait ends; next/lost/closed as documented;
#  (d) a session is its caller's: another token, and the socket's caller,
#      get the 404 an unknown id gets (read, input, detach); a read
#      token may not attach (403);
#  (e) a detached id is refused from then on (read, input, detach), and
#      so are an unknown and a malformed one;
#  (f) bad input is 400 naming the field: not base64, not canonical, with
#      a newline, empty, 4097 bytes (4096 go), a missing or an unknown
#      field; bad from/wait queries name the query;
#  (g) at most 4 sessions per VM (409 saying so); a VM not running, an
#      unknown VM and a host without session are refused;
#  (h) a guest that writes more than the ring holds: "lost" counts what
#      was dropped, and lost + what is returned == next;
#  (i) the domain goes away: the session closes and hvctl says why
#      (exit 1); the agent goes away: the same, naming the agent;
#  (j) a session nobody reads for 60 s is detached (the agent hears so);
#  (k) a real hv-agent (no Xen) takes hvd's vm.console_attach (its strict
#      schema) and refuses it with "no Xen on this host".
# Typing into a real Xen guest's console is test/e2e's (the rack).
if [ -z "${HV_IN_NETNS:-}" ]; then
	exec unshare --net env HV_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
ip addr add 10.0.0.5/32 dev lo
ip addr add 10.0.0.6/32 dev lo
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/emu_lib.sh"
: "${HV_AGENT:?HV_AGENT must point at the hv-agent binary}"
need_cmd base64 timeout

emu_hvd_up
for h in h1 h2 h3; do "$HVCTL" host add $h --out "$T/$h" >/dev/null; done

host_up() { sock GET "/api/v1/hosts/$1" | grep -q '"state":"up"'; }
host_down() { ! host_up "$1"; }
has_xen() { sock GET "/api/v1/hosts/$1/telemetry" | grep -q '"xen_version":"4.17"'; }
# b64 TEXT: TEXT's escapes (\n, \r, \035) made bytes, in base64.
b64() { printf '%b' "$1" | base64 -w0; }
unb64() { python3 -c 'import base64,sys; sys.stdout.write(base64.b64decode(sys.argv[1]).decode("latin1"))' "$1"; }
body() { printf '%s' "${1#* }"; }
attach() { sock POST "/api/v1/vms/$1/console/attach"; }
sid() { jget "$(body "$1")" "d['session']"; }
cread() { sock GET "/api/v1/consoles/$1?from=${2:-0}&wait=${3:-0}"; }
cinput() { sock POST "/api/v1/consoles/$1/input" "{\"data\":\"$(b64 "$2")\"}"; }
cdetach() { sock DELETE "/api/v1/consoles/$1"; }
# out ID: all the output the session's ring holds, decoded.
out() { unb64 "$(jget "$(body "$(cread "$1")")" "d['data']")"; }
out_has() { [[ $(out "$1") == *"$2"* ]]; }
running() {
	notify "$1" vm.state "{\"uuid\":\"$2\",\"name\":\"$3\",\"state\":\"running\",\"domid\":5}"
}
sessions_on_emu() { python3 -c 'import json,sys
n=0
for l in open(sys.argv[1]):
    try: d=json.loads(l)
    except ValueError: continue
    m=d.get("method")
    if m=="vm.console_attach": n+=1
    if m=="vm.console_detach": n-=1
print(n)' "$T/$1.log"; }

emu h1 10.0.0.5
expect "h1 is up, with Xen" "$(wait_for 15 has_xen h1)" "[0-9]*"
r=$(sock POST /api/v1/vms '{"name":"web1","vcpus":1,"memory_mib":64,"kernel":"vmlinuz-guest","networks":[{"vni":100}]}')
expect "web1 created on h1" "$r" "202 *\"host\":\"h1\"*"
U=$(vm_field web1 uuid)
wait_for 10 has_reqs h1 vm.create 1 >/dev/null

# (g) Not running yet: refused, naming the state.
expect_eq "(g) a VM not running: 409 naming its state" "$(attach web1)" \
	'409 {"error":"VM web1 is not running (state creating); only a running VM has a console to attach to"}'
running h1 "$U" web1
wait_for 10 vm_is web1 state running >/dev/null
expect_eq "(g) an unknown VM: 404" "$(attach nosuch)" "404 {\"error\":\"no VM 'nosuch'\"}"

# (j) A session nobody reads, checked at the end (60 s from now).
r=$(attach web1)
IDLE=$(sid "$r")
IDLE_AT=$SECONDS

# (a) A pipe into hvctl: the answer, then the detach at end of input.
set +e
printf 'hello\n' | timeout 20 "$HVCTL" vm console web1 --attach >"$T/a.out" 2>"$T/a.err"; rc=$?
set -e
expect "(a) exit 0, the guest's answer on stdout" "$rc $(tr -d '\r' <"$T/a.out")" "0 *answer: hello*"
expect_eq "(a) stderr: connected, then detached at end of input" "$(cat "$T/a.err")" \
	"Connected to web1's console; Ctrl-] detaches.
hvctl: detached from web1's console (end of input)"
A=$(reqs h1 vm.console_attach | tail -1)
expect "(a) the agent got vm.console_attach for web1 with a 32-hex session" \
	"$(jget "$A" "d['uuid'] + ' ' + d['session']")" "$U [0-9a-f]*"
S=$(jget "$A" "d['session']")
expect_eq "(a) ... 32 hex digits" "${#S}" 32
expect "(a) ... hvctl's input, as base64" "$(reqs h1 vm.console_input)" \
	"*\"data\": \"$(b64 'hello\n')\", \"session\": \"$S\"*"
expect "(a) ... and vm.console_detach for that session" "$(reqs h1 vm.console_detach)" "*\"$S\"*"
expect_eq "(a) hvd keeps only the idle session" \
	"$(sock GET /api/v1/consoles | cut -d' ' -f2- | field "[c['session'] for c in d['consoles']]")" "['$IDLE']"

# (b) Ctrl-]: detaches at once; what came before it on the read is sent.
mkfifo "$T/in"
set +e
timeout 20 "$HVCTL" vm console web1 --attach <"$T/in" >"$T/b.out" 2>"$T/b.err" &
CLI=$!
exec 3>"$T/in"
printf 'one\n' >&3
wait_for 10 grep -q 'answer: one' "$T/b.out" >/dev/null
start=$SECONDS
printf 'two\n\035' >&3
wait "$CLI"; rc=$?
set -e
expect "(b) Ctrl-]: exit 0 at once, stdin still open" "$rc $((SECONDS - start < 5))" "0 1"
exec 3>&-
expect_eq "(b) ... said on stderr, not end of input" "$(tail -1 "$T/b.err")" "hvctl: detached from web1's console"
expect "(b) the answer came before" "$(tr -d '\r' <"$T/b.out")" "*answer: one*"
expect "(b) the input before Ctrl-] was sent, without it" "$(reqs h1 vm.console_input)" "*\"$(b64 'two\n')\"*"
expect_eq "(b) no input held the escape byte" "$(reqs h1 vm.console_input | grep -c "$(b64 '\035')" || true)" 0

# (b) On a terminal (a pty console_tty.py holds): raw while attached (what
# is typed is not echoed, CR stays CR), restored after Ctrl-] and SIGTERM.
modes() { tr -d '\r' <"$T/tty.out" | sed -n '/^speed/,$p' | tr ' ;' '[\n*]'; }
n=$(nreqs h1 vm.console_input)
python3 "$(dirname "$0")/console_tty.py" "$HVCTL" web1 "$T/tty.out" escape
expect "(b) a terminal: the answer, then exit 0 on Ctrl-]" "$(tr -d '\r' <"$T/tty.out")" "*answer: hello*rc=0*"
expect_eq "(b) ... the terminal did not echo what was typed" "$(grep -o hello "$T/tty.out" | wc -l)" 1
expect "(b) ... CR went as CR (raw: no ICRNL)" "$(reqs h1 vm.console_input | tail -n +$((n + 1)))" "*\"$(b64 'hello\r')\"*"
expect_eq "(b) ... the terminal is canonical and echoing again after" \
	"$(modes | grep -xE -- '-?(icanon|echo|icrnl|opost)' | tr '\n' ' ')" "icrnl opost icanon echo "
python3 "$(dirname "$0")/console_tty.py" "$HVCTL" web1 "$T/tty.out" term
expect "(b) SIGTERM: exit 1, saying so" "$(tr -d '\r' <"$T/tty.out")" "*hvctl: Terminated; detached from web1's console*rc=1*"
expect_eq "(b) ... the terminal restored" \
	"$(modes | grep -xE -- '-?(icanon|echo|icrnl|opost)' | tr '\n' ' ')" "icrnl opost icanon echo "

# (a) Without --attach: still the log.
ctl h1 'reply vm.console {"log":"the boot log\n"}'
sleep 0.3
expect_eq "(a) vm console without --attach: the log" "$("$HVCTL" vm console web1)" "the boot log"

# (c) REST: attach, read, input, long-poll.  The answer to "two" went to
# the idle session, attached all along: let it come first.
sleep 0.5
r=$(attach web1)
expect "(c) attach: 201 with the session" "$r" "201 {\"session\":\"*\",\"vm\":\"web1\",\"host\":\"h1\"}"
ID=$(sid "$r")
loc=$(curl -s -o /dev/null -D - --unix-socket "$T/hvd.sock" -X POST http://localhost/api/v1/vms/web1/console/attach |
	tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
expect "(c) ... and a Location" "$loc" "/api/v1/consoles/[0-9a-f]*"
cdetach "${loc##*/}" >/dev/null
expect_eq "(c) a fresh session: nothing yet" "$(cread "$ID")" \
	'200 {"vm":"web1","next":0,"data":"","lost":0,"closed":null}'
expect_eq "(c) input: accepted" "$(cinput "$ID" 'ping\n')" '200 {"accepted":true}'
expect "(c) the answer comes" "$(wait_for 10 out_has "$ID" 'answer: ping')" "[0-9]*"
N=$(jget "$(body "$(cread "$ID")")" "d['next']")
expect_eq "(c) next: the bytes so far" "$N" "$(printf 'answer: ping\r\n' | wc -c)"
start=$(date +%s.%N)
r=$(cread "$ID" "$N" 2)
el=$(echo "$(date +%s.%N) - $start" | bc)
expect_eq "(c) a read at the end waits its 2 s, then nothing" "$r $(echo "$el >= 1.8 && $el < 6" | bc)" \
	"200 {\"vm\":\"web1\",\"next\":$N,\"data\":\"\",\"lost\":0,\"closed\":null} 1"
start=$(date +%s.%N)
cread "$ID" "$N" 20 >"$T/poll" &
POLL=$!
sleep 0.5
cinput "$ID" 'late\n' >/dev/null
wait "$POLL"
el=$(echo "$(date +%s.%N) - $start" | bc)
expect "(c) a waiting read is answered when output comes" \
	"$(unb64 "$(jget "$(body "$(cat "$T/poll")")" "d['data']")")$(echo "$el < 5" | bc)" "*answer: late*1"
expect "(c) ... the read from 0 holds all of it" "$(out "$ID")" "answer: ping*answer: late*"
expect_eq "(c) from past the end: 400 naming from" "$(cread "$ID" 999999)" \
	"400 {\"error\":\"query 'from' is 999999, past the end of the output ($(jget "$(body "$(cread "$ID")")" "d['next']"))\"}"
expect_eq "(f) from not a number: 400" "$(sock GET "/api/v1/consoles/$ID?from=x")" \
	"400 {\"error\":\"query 'from' must be an integer in 0..2^53-1 (the 'next' of the last read)\"}"
expect_eq "(f) wait over 20: 400" "$(sock GET "/api/v1/consoles/$ID?wait=21")" \
	"400 {\"error\":\"query 'wait' must be an integer in 0..20 (seconds)\"}"

# (f) Bad input: 400 naming the field; nothing reaches the agent.
n=$(nreqs h1 vm.console_input)
inp() { sock POST "/api/v1/consoles/$ID/input" "$1"; }
expect_eq "(f) not base64" "$(inp '{"data":"not base64!"}')" \
	"400 {\"error\":\"field 'data' must be base64 (RFC 4648: A-Z a-z 0-9 + /, padded with =, no spaces or newlines)\"}"
expect "(f) no padding" "$(inp '{"data":"aGk"}')" "400 {\"error\":\"field 'data' must be base64*"
expect "(f) pad bits set (not canonical)" "$(inp '{"data":"aGl="}')" "400 {\"error\":\"field 'data' must be base64*"
expect "(f) a newline in it" "$(inp '{"data":"aGk=\n"}')" "400 {\"error\":\"field 'data' must be base64*"
expect_eq "(f) empty" "$(inp '{"data":""}')" "400 {\"error\":\"field 'data' must not be empty\"}"
expect_eq "(f) not a string" "$(inp '{"data":5}')" "400 {\"error\":\"field 'data' must be a string of base64\"}"
head -c 4097 /dev/zero | tr '\0' 'a' > "$T/big"
expect_eq "(f) 4097 bytes: too large, naming the field" "$(inp "{\"data\":\"$(base64 -w0 <"$T/big")\"}")" \
	"400 {\"error\":\"field 'data' is more than 4096 bytes once decoded; at most 4096 are taken at once\"}"
expect_eq "(f) missing data" "$(inp '{}')" "400 {\"error\":\"missing field 'data'\"}"
expect_eq "(f) an unknown field" "$(inp '{"data":"aGk=","more":1}')" "400 {\"error\":\"unknown field 'more'\"}"
expect "(f) not JSON" "$(inp 'data=aGk=')" "400 {\"error\":\"invalid JSON*"
expect_eq "(f) none of it reached the agent" "$(nreqs h1 vm.console_input)" "$n"
head -c 4095 /dev/zero | tr '\0' 'a' > "$T/ok"
expect_eq "(f) 4096 bytes go" "$(inp "{\"data\":\"$(printf '%s\n' "$(cat "$T/ok")" | base64 -w0)\"}")" '200 {"accepted":true}'

# (d) A session is its caller's.
T1=$("$HVCTL" token create --role admin --name one 2>/dev/null)
T2=$("$HVCTL" token create --role admin --name two 2>/dev/null)
RO=$("$HVCTL" token create --role read --name ro 2>/dev/null)
r=$(tcp "$T1" POST /api/v1/vms/web1/console/attach)
expect "(d) token one attaches" "$r" "201 *"
ID1=$(sid "$r")
nf() { printf '404 {"error":"no console session '"'"'%s'"'"' of yours (unknown, detached or ended)"}' "$1"; }
expect_eq "(d) token one reads it" "$(tcp "$T1" GET "/api/v1/consoles/$ID1?wait=0" | cut -c1-3)" 200
expect_eq "(d) token two may not read it: 404" "$(tcp "$T2" GET "/api/v1/consoles/$ID1?wait=0")" "$(nf "$ID1")"
expect_eq "(d) ... nor send input" "$(tcp "$T2" POST "/api/v1/consoles/$ID1/input" '{"data":"aGk="}')" "$(nf "$ID1")"
expect_eq "(d) ... nor detach it" "$(tcp "$T2" DELETE "/api/v1/consoles/$ID1")" "$(nf "$ID1")"
expect_eq "(d) the socket's caller neither" "$(cread "$ID1")" "$(nf "$ID1")"
U1=0123456789abcdef0123456789abcdef
expect_eq "(d) the same 404 as an unknown id" "$(tcp "$T2" GET "/api/v1/consoles/$U1")" "$(nf "$U1")"
expect_eq "(d) token two does not see it listed" "$(tcp "$T2" GET /api/v1/consoles)" '200 {"consoles":[]}'
expect "(d) token one does" "$(tcp "$T1" GET /api/v1/consoles)" "200 {\"consoles\":\[{\"session\":\"$ID1\",\"vm\":\"web1\",*"
expect "(d) a read token may not attach: 403" "$(tcp "$RO" POST /api/v1/vms/web1/console/attach)" "403 *"
expect "(d) ... nor read a session: 403" "$(tcp "$RO" GET "/api/v1/consoles/$ID1")" "403 *"

# (e) A detached id is never valid again.
expect_eq "(e) token one detaches" "$(tcp "$T1" DELETE "/api/v1/consoles/$ID1")" \
	"200 {\"session\":\"$ID1\",\"detached\":true}"
S1=$(reqs h1 vm.console_attach | tail -1 | field "d['session']")
expect "(e) the agent heard the detach" "$(wait_for 5 bash -c "grep -q '\"vm.console_detach\".*$S1' $T/h1.log")" "[0-9]*"
expect_eq "(e) detached: read refused" "$(tcp "$T1" GET "/api/v1/consoles/$ID1")" "$(nf "$ID1")"
expect_eq "(e) ... input refused" "$(tcp "$T1" POST "/api/v1/consoles/$ID1/input" '{"data":"aGk="}')" "$(nf "$ID1")"
expect_eq "(e) ... detach refused" "$(tcp "$T1" DELETE "/api/v1/consoles/$ID1")" "$(nf "$ID1")"
expect_eq "(e) an unknown id: 404" "$(cread "$U1")" "$(nf "$U1")"
expect "(e) a malformed id: 404" "$(cread xyz)" "404 *"

# (g) At most 4 sessions per VM (the idle one and ID are two).
r3=$(attach web1); r4=$(attach web1)
expect "(g) a third and a fourth" "${r3%% *} ${r4%% *}" "201 201"
expect_eq "(g) a fifth: refused, saying why" "$(attach web1)" \
	'429 {"error":"VM web1 has 4 console sessions attached, the most one VM may have; detach one first"}'
cdetach "$(sid "$r3")" >/dev/null
cdetach "$(sid "$r4")" >/dev/null

# (h) More output than the ring holds: lost is counted.
cinput "$ID" 'flood 100000\n' >/dev/null
expect "(h) the flood ends" "$(wait_for 15 out_has "$ID" 'flood done')" "[0-9]*"
j=$(body "$(cread "$ID")")
expect_eq "(h) lost > 0, and lost + returned == next" \
	"$(jget "$j" "(d['lost'] > 0, d['lost'] + len(__import__('base64').b64decode(d['data'])) == d['next'], d['next'] > 100000)")" \
	"(True, True, True)"
expect "(h) what is returned is the newest" "$(unb64 "$(jget "$j" "d['data']")" | tail -c 20)" "*xx*flood done*"
cdetach "$ID" >/dev/null

# (i) The domain goes away: a second VM, so web1 keeps its console.
r=$(sock POST /api/v1/vms '{"name":"web2","vcpus":1,"memory_mib":64,"kernel":"vmlinuz-guest","placement":{"host":"h1"}}')
expect "(i) web2 created on h1" "$r" "202 *\"host\":\"h1\"*"
U2=$(vm_field web2 uuid)
wait_for 10 has_reqs h1 vm.create 2 >/dev/null
running h1 "$U2" web2
wait_for 10 vm_is web2 state running >/dev/null
rm -f "$T/in"; mkfifo "$T/in"
set +e
timeout 30 "$HVCTL" vm console web2 --attach <"$T/in" >"$T/i.out" 2>"$T/i.err" &
CLI=$!
exec 3>"$T/in"
printf 'are you there\n' >&3
wait_for 10 grep -q 'answer: are you there' "$T/i.out" >/dev/null
ctl h1 "console_gone $U2"
wait "$CLI"; rc=$?
exec 3>&-
set -e
expect_eq "(i) the domain is gone: exit 1, hvctl says why" "$rc $(tail -1 "$T/i.err")" \
	"1 hvctl: web2's console closed: the domain is gone"

# (i) The agent goes away.
rm -f "$T/in"; mkfifo "$T/in"
set +e
timeout 150 "$HVCTL" vm console web1 --attach <"$T/in" >"$T/j.out" 2>"$T/j.err" &
CLI=$!
exec 3>"$T/in"
printf 'still here\n' >&3
wait_for 10 grep -q 'answer: still here' "$T/j.out" >/dev/null
# (j) Meanwhile the idle session has gone unread for 60 s.
sleep $((IDLE_AT + 62 - SECONDS > 0 ? IDLE_AT + 62 - SECONDS : 0))
expect_eq "(j) the session nobody read for 60 s is detached" "$(cread "$IDLE")" "$(nf "$IDLE")"
SI=$(reqs h1 vm.console_attach | head -1 | field "d['session']")
expect "(j) ... and the agent heard so" "$(reqs h1 vm.console_detach)" "*\"$SI\"*"
expect "(j) ... an event says why" "$(sock GET '/api/v1/events?subject=web1')" "*idle: not read for 60 s*"
expect "(j) the session hvctl reads is still there" "$(kill -0 "$CLI" && echo alive)" alive
kill "${EMU[h1]}"
wait "$CLI"; rc=$?
exec 3>&-
set -e
expect_eq "(i) the agent is gone: exit 1, hvctl says why" "$rc $(tail -1 "$T/j.err")" \
	"1 hvctl: web1's console closed: the agent session to h1 ended"
expect "h1 is down" "$(wait_for 15 host_down h1)" "[0-9]*"
expect_eq "(g) the host without a session: 409" "$(attach web1)" '409 {"error":"host h1 has no agent session"}'
expect "(a) an event recorded each attach with who" "$(sock GET '/api/v1/events?subject=web1')" \
	"*\"vm.console\"*token:*attached*"

# (k) A real hv-agent (no Xen) as h3, with web1's row moved onto it.
echo "session-file $T/h3/session" >> "$T/h3/agent.conf"
echo "mesh-file $T/h3/mesh.json" >> "$T/h3/agent.conf"
"$HV_AGENT" -d -f "$T/h3/agent.conf" >> "$T/agent.log" 2>&1 &
track_pid $!
expect "h3 (a real agent) is up" "$(wait_for 15 host_up h3)" "[0-9]*"
sqlite3 -cmd ".timeout 5000" "$T/state/hvd.db" \
	"UPDATE vms SET host_id = (SELECT id FROM hosts WHERE name = 'h3') WHERE name = 'web1'"
expect_eq "(k) the real agent's schema takes the attach; it has no Xen" "$(attach web1)" \
	"409 {\"error\":\"h3's agent: no Xen on this host\"}"
expect_eq "(k) nothing is left attached" "$(sock GET /api/v1/consoles)" '200 {"consoles":[]}'
expect "no sanitizer report from agent_emu" "$(sanitizer_reports "$T/emu.err")" "0"

finish
