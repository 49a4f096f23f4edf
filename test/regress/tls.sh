#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# TLS on the TCP API (issue 21): the real hvd, curl and hvctl, certificates
# made with openssl, in a network namespace of its own so a non-loopback
# client address exists (10.0.0.5 on lo).
#  - the self-signed pair hvd makes at first start: files and modes, the
#    pin in the log, in hvctl status and as openssl computes it, kept
#    across a restart; curl with it as CA and with the pin; a wrong pin and
#    plaintext HTTP refused;
#  - hvctl: first use without a pin refused, printing the key and the
#    --pin to pass; --pin works and is remembered; a malformed pin is a
#    usage error; a replaced key is refused naming the known-hosts line;
#    --ca works for an operator's CA-signed pair;
#  - an expired certificate and one for another name are refused with
#    --ca, saying why; hvd refuses a key others can read and a key that is
#    not the certificate's, naming the file;
#  - api-tls off: a bearer token in clear is refused (401, saying why),
#    from loopback too unless api-plaintext-tokens loopback, and from a
#    non-loopback address even then;
#  - the self-signed pair survives hvctl backup and hvd --restore.
if [ -z "${HV_IN_NETNS:-}" ]; then
	exec unshare --net env HV_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
ip addr add 10.0.0.5/32 dev lo
. "$(dirname "$0")/lib.sh"
need_cmd openssl

export HVCTL_KNOWN_HOSTS=$T/known_hosts
port() { curl -s --unix-socket "$T/hvd.sock" http://localhost/api/v1/status |
	sed -n 's/.*"tcp":"[^"]*:\([0-9]*\)".*/\1/p'; }
status_pin() { curl -s --unix-socket "$T/hvd.sock" http://localhost/api/v1/status |
	sed -n 's/.*"tcp_pin":"\([^"]*\)".*/\1/p'; }
# openssl's own reading of a certificate's key pin.
ossl_pin() { echo "sha256//$(openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform DER |
	openssl dgst -sha256 -binary | base64)"; }
restart() {
	kill "$HVD_PID"; wait "$HVD_PID" 2>/dev/null || true
	start_hvd
	P=$(port)
}
# conf_tls [lines...]: TLS on, on the port the first start got, so a
# client's known-hosts entry still names this hvd after a restart.
conf_tls() {
	write_conf "api-tls on" "$@"
	sed -i "s|^api-listen .*|api-listen 127.0.0.1:$P0|" "$T/hvd.conf"
}
code() { curl -s -o /dev/null -w '%{http_code}' "$@" || true; }

# --- the self-signed pair -------------------------------------------------
write_conf "api-tls on"
start_hvd
P=$(port) P0=$(port)
PIN=$(status_pin)
expect "hvd made a self-signed certificate" "$(grep -c 'made a self-signed TLS certificate' "$T/hvd.log")" 1
expect_eq "state-dir/tls is 0700, api.key 0600, api.crt 0644" \
	"$(stat -c '%a' "$T/state/tls" "$T/state/tls/api.key" "$T/state/tls/api.crt" | tr '\n' ' ')" "700 600 644 "
expect "the pin is sha256// and 44 base64 characters" "$PIN" 'sha256//????????????????????????????????????????????'
expect_eq "openssl computes the same pin from api.crt" "$(ossl_pin "$T/state/tls/api.crt")" "$PIN"
expect "hvd logs the pin at start" "$(grep 'api: listening on 127.0.0.1' "$T/hvd.log")" "*TLS, key $PIN (self-signed*"
expect "hvctl status shows it" "$("$HVCTL" status)" "*tls key:   $PIN*"
expect_eq "curl with api.crt as its CA: 200" "$(code --cacert "$T/state/tls/api.crt" "https://127.0.0.1:$P/healthz")" 200
expect_eq "... by the name localhost too" "$(code --cacert "$T/state/tls/api.crt" "https://localhost:$P/healthz")" 200
expect_eq "curl with the pin: 200" "$(code -k --pinnedpubkey "$PIN" "https://127.0.0.1:$P/healthz")" 200
rc=0; curl -s -k --pinnedpubkey "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" -o /dev/null "https://127.0.0.1:$P/healthz" || rc=$?
expect_eq "curl with a wrong pin: refused (curl exit 90)" "$rc" 90
expect "plaintext HTTP to the TLS port gets no answer" "$(code -m 5 "http://127.0.0.1:$P/healthz")" '!(200)'
conf_tls
restart
expect_eq "a restart keeps the key" "$(status_pin)" "$PIN"
expect_eq "... and makes no new certificate" "$(grep -c 'made a self-signed TLS certificate' "$T/hvd.log")" 1

# --- hvctl: first use, pin, known hosts -----------------------------------
TOKEN=$("$HVCTL" token create --role read --name tls-test)
export HVCTL_TOKEN=$TOKEN
AU="https://127.0.0.1:$P"
set +e
out=$("$HVCTL" --url "$AU" status 2>&1 </dev/null); rc=$?
set -e
expect "first use, no terminal: refused" "$rc" 1
expect "... printing the key and the --pin to pass" "$out" "*not known yet; it presents the key*$PIN*--pin $PIN*"
expect_eq "... and nothing remembered" "$([ -e "$HVCTL_KNOWN_HOSTS" ] && echo yes || echo no)" no
set +e
out=$("$HVCTL" --url "$AU" --pin sha256//nope status 2>&1); rc=$?
set -e
expect "a malformed pin: usage error (2)" "$rc $out" "2 *--pin 'sha256//nope' is not sha256// followed by 44 base64*"
# On a terminal hvctl asks; "y" trusts and remembers the key it showed.
tty_run() {
	python3 - "$@" <<'PY'
import os, pty, sys, time
answer, argv = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out, t0, sent = b"", time.time(), False
while time.time() - t0 < 20:
    try:
        b = os.read(fd, 4096)
    except OSError:
        break
    if not b:
        break
    out += b
    if not sent and b"[y/N]" in out:
        os.write(fd, answer.encode() + b"\n")
        sent = True
rc = os.waitpid(pid, 0)[1]
print(out.decode(errors="replace").replace("\r", ""))
print("rc=%d" % os.waitstatus_to_exitcode(rc))
PY
}
expect "on a terminal, answered n: nothing sent, nothing remembered" \
	"$(HVCTL_KNOWN_HOSTS=$T/kh-tty tty_run n "$HVCTL" --url "$AU" status; [ -e "$T/kh-tty" ] && echo remembered)" \
	"*presents the key*$PIN*Trust it and remember it in $T/kh-tty? \[y/N\]*not trusted; nothing sent*rc=1"
expect "on a terminal, answered y: served" \
	"$(HVCTL_KNOWN_HOSTS=$T/kh-tty tty_run y "$HVCTL" --url "$AU" status)" "*your role: read*rc=0"
expect_eq "... and the key is remembered" "$(cat "$T/kh-tty")" "127.0.0.1:$P $PIN"
expect "with --pin: served, role read" "$("$HVCTL" --url "$AU" --pin "$PIN" status 2>&1)" "*your role: read*"
expect_eq "the pin is remembered" "$(cat "$HVCTL_KNOWN_HOSTS")" "127.0.0.1:$P $PIN"
expect "then without --pin: served from known_hosts" "$("$HVCTL" --url "$AU" status 2>&1)" "*your role: read*"
expect "HVCTL_PIN works as --pin" "$(HVCTL_KNOWN_HOSTS=$T/kh2 HVCTL_PIN=$PIN "$HVCTL" --url "$AU" host list 2>&1; echo "rc=$?")" "*rc=0"

# --- an operator's CA-signed pair -----------------------------------------
mkdir -p "$T/pki"
cd "$T/pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
	-subj /CN=test-ca -days 30 2>/dev/null
# sign NAME DAYS SAN: NAME.key and NAME.crt, signed by the CA.
sign() {
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" \
		-subj /CN=hvd 2>/dev/null
	printf 'subjectAltName=%s\n' "$3" > "$1.ext"
	openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$2" \
		-extfile "$1.ext" -out "$1.crt" 2>/dev/null
	chmod 600 "$1.key"
}
sign good 30 "IP:127.0.0.1,IP:10.0.0.5"
sign expired -1 "IP:127.0.0.1"
sign other 30 "DNS:other.example"
cd - >/dev/null
use_pair() {
	conf_tls "api-tls-cert $T/pki/$1.crt" "api-tls-key $T/pki/$1.key"
	restart
}
use_pair good
expect "hvd logs the operator's certificate" "$(grep 'api: listening on 127.0.0.1' "$T/hvd.log" | tail -1)" "*TLS, key *($T/pki/good.crt)*"
expect_eq "the same port as before" "$P" "$P0"
set +e
out=$("$HVCTL" --url "$AU" status 2>&1); rc=$?
set -e
expect "a key other than the remembered one: refused" "$rc" 1
expect "... naming the known-hosts line and both keys" "$out" \
	"*presents the key*$(ossl_pin "$T/pki/good.crt")*not the one remembered in $HVCTL_KNOWN_HOSTS line 1*$PIN*Nothing was sent*"
expect "--ca with the operator's CA: served" "$("$HVCTL" --url "$AU" --ca "$T/pki/ca.crt" status 2>&1)" "*your role: read*"
expect_eq "curl --cacert ca.crt: 200" "$(code --cacert "$T/pki/ca.crt" "$AU/healthz")" 200

use_pair expired
expect "hvd warns that its certificate has expired" "$(grep -c "TLS: $T/pki/expired.crt has expired" "$T/hvd.log")" '[1-9]*'
set +e
out=$("$HVCTL" --url "https://127.0.0.1:$P" --ca "$T/pki/ca.crt" status 2>&1); rc=$?
set -e
expect "an expired certificate: refused, saying so" "$rc $out" "1 *TLS with https://127.0.0.1:$P failed:*expired*"

use_pair other
set +e
out=$("$HVCTL" --url "https://127.0.0.1:$P" --ca "$T/pki/ca.crt" status 2>&1); rc=$?
set -e
expect "a certificate for another name: refused, saying so" "$rc $out" "1 *TLS with https://127.0.0.1:$P failed:*match*"

# hvd refuses pairs it cannot trust itself, naming the file.
kill "$HVD_PID"; wait "$HVD_PID" 2>/dev/null || true
chmod 644 "$T/pki/good.key"
write_conf "api-tls on" "api-tls-cert $T/pki/good.crt" "api-tls-key $T/pki/good.key"
rc=0; out=$(timeout 10 "$HVD" -d -f "$T/hvd.conf" 2>&1) || rc=$?
expect "a key others can read: hvd does not start, naming it" "$rc $out" "[1-9]* *$T/pki/good.key: readable by group or others (mode 0644)*"
chmod 600 "$T/pki/good.key"
write_conf "api-tls on" "api-tls-cert $T/pki/good.crt" "api-tls-key $T/pki/other.key"
rc=0; out=$(timeout 10 "$HVD" -d -f "$T/hvd.conf" 2>&1) || rc=$?
expect "a key that is not the certificate's: hvd does not start, naming both" "$rc $out" \
	"[1-9]* *$T/pki/other.key does not hold the key of $T/pki/good.crt*"
write_conf "api-tls on" "api-tls-cert $T/pki/good.crt"
rc=0; out=$("$HVD" -n -f "$T/hvd.conf" 2>&1) || rc=$?
expect "api-tls-cert without api-tls-key: a config error" "$rc $out" "[1-9]* *api-tls-cert and api-tls-key go together*"

# --- plaintext: tokens in clear ---------------------------------------------
write_conf "api-tls off"
sed -i 's|^api-listen .*|api-listen 0.0.0.0:0|' "$T/hvd.conf"
start_hvd
P=$(port)
expect "hvctl status says plaintext" "$("$HVCTL" status)" "*tcp:       0.0.0.0:$P (plaintext)*"
st() { curl -s -w ' %{http_code}' -H "Authorization: Bearer $TOKEN" "$@"; }
expect "api-tls off: a token from loopback is refused (401, saying why)" \
	"$(st "http://127.0.0.1:$P/api/v1/status")" '*bearer tokens are refused over plaintext TCP (api-tls off)* 401'
expect_eq "... /healthz needs no token and is served" "$(code "http://127.0.0.1:$P/healthz")" 200
kill "$HVD_PID"; wait "$HVD_PID" 2>/dev/null || true
write_conf "api-tls off" "api-plaintext-tokens loopback"
sed -i 's|^api-listen .*|api-listen 0.0.0.0:0|' "$T/hvd.conf"
start_hvd
P=$(port)
expect "api-plaintext-tokens loopback: a token from 127.0.0.1 is served" "$(st "http://127.0.0.1:$P/api/v1/status")" '*"your_role":"read"* 200'
expect "... from a non-loopback address (10.0.0.5) it is refused" \
	"$(st --interface 10.0.0.5 "http://10.0.0.5:$P/api/v1/status")" '*accepted from loopback only* 401'
kill "$HVD_PID"; wait "$HVD_PID" 2>/dev/null || true

# --- backup and restore keep the self-signed pair ---------------------------
write_conf "api-tls on"
start_hvd
expect_eq "back on the self-signed pair: the same key" "$(status_pin)" "$PIN"
"$HVCTL" backup "$T/b.tar" >/dev/null
expect "the backup holds tls/api.crt and tls/api.key (0600)" \
	"$(tar -tvf "$T/b.tar" | awk '{print $1, $NF}' | grep ' tls/' | tr '\n' ' ')" "-rw-r--r-- tls/api.crt -rw------- tls/api.key "
kill "$HVD_PID"; wait "$HVD_PID" 2>/dev/null || true
sed "s|^state-dir .*|state-dir $T/state2|" "$T/hvd.conf" > "$T/restore.conf"
expect "hvd --restore into a fresh state directory" "$("$HVD" -f "$T/restore.conf" --restore "$T/b.tar" 2>&1; echo "rc=$?")" "*rc=0"
expect_eq "the restored pair: 0700 dir, 0600 key, the same bytes" \
	"$(stat -c '%a' "$T/state2/tls" "$T/state2/tls/api.key" | tr '\n' ' ')$(cmp -s "$T/state/tls/api.key" "$T/state2/tls/api.key" && echo same)" "700 600 same"
cp "$T/restore.conf" "$T/hvd.conf"
start_hvd
expect_eq "the restored hvd presents the key clients pinned" "$(status_pin)" "$PIN"
expect_eq "... and makes no new one" "$(grep -c 'made a self-signed TLS certificate' "$T/hvd.log")" 1
P=$(port)
rm -f "$HVCTL_KNOWN_HOSTS"
expect "hvctl --pin of the old key works against the restored hvd" "$("$HVCTL" --url "https://127.0.0.1:$P" --pin "$PIN" status 2>&1)" "*your role: read*"

finish
