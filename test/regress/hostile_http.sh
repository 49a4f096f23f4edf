#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Hostile input on hvd's TCP listeners (the REST API and the HTTP boot
# port), as an attacker on the boot LAN would send it, with raw sockets:
#  - the edge: a NUL in the path (raw and %00), a query value or a header
#    (after a valid token too), HTTP/1.1 without Host, a Transfer-Encoding
#    other than "chunked", too many query arguments, too long a target, too
#    many or too large header fields: each refused at once with the API's
#    JSON error (400, 414, 431);
#  - per-client limits: connections per source address, a reserve that
#    strangers holding connections cannot take from an operator or a
#    booting host, and a deadline for the request headers (slowloris).
# Loopback has the whole 127/8, so attackers come from 127.0.0.2 and up.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/boot"
head -c 4096 /dev/urandom > "$T/boot/vmlinuz"
write_conf "boot-root $T/boot" "boot-http-listen 127.0.0.1:0" "boot-server 10.9.8.7" \
	"http-conn-max 64" "http-conn-per-ip 8" "http-conn-reserve 8" "http-header-timeout 8"
start_hvd
BP=$(curl -s --unix-socket "$T/hvd.sock" http://localhost/api/v1/status |
	sed -n 's/.*"boot_http":"127.0.0.1:\([0-9]*\)".*/\1/p')
TOKEN=$("$HVCTL" token create --role admin --name edge 2>/dev/null)
expect "an admin token for the operator" "${#TOKEN}" '[1-9]*'

# raw PORT BYTES: the status line and the body of hvd's answer (3 s max).
raw() {
	python3 - "$1" "$2" <<'PY'
import socket, sys, time
port, data = int(sys.argv[1]), sys.argv[2].encode().decode("unicode_escape").encode("latin-1")
s = socket.create_connection(("127.0.0.1", port), 3)
s.settimeout(3)
t0 = time.monotonic()
s.sendall(data)
buf = b""
try:
    while b"\r\n\r\n" not in buf or len(buf.split(b"\r\n\r\n", 1)[1]) < 2:
        d = s.recv(65536)
        if not d:
            break
        buf += d
except OSError:
    pass
head, _, body = buf.partition(b"\r\n\r\n")
status = head.split(b"\r\n")[0].decode("latin-1") or "no answer"
print("%s|%s|%.1f" % (status, body[:120].decode("latin-1"), time.monotonic() - t0))
PY
}
# refused NAME PORT BYTES CODE MESSAGE-GLOB
refused() {
	local out
	out=$(raw "$2" "$3")
	expect "$1: $4" "${out%%|*}" "HTTP/1.1 $4 *"
	out=${out#*|}
	expect "$1: JSON error" "${out%|*}" "{\"error\":\"$5\"}"
	expect "$1: at once (s)" "$(echo "${out##*|} < 2" | bc)" 1
}
H='Host: x\r\n'
refused "raw NUL in the boot path" "$BP" 'GET /boot/files/vmlinuz\x00.txt HTTP/1.1\r\n'"$H"'\r\n' 400 '*NUL*'
refused "%00 in the boot path" "$BP" 'GET /boot/files/vmlinuz%00.txt HTTP/1.1\r\n'"$H"'\r\n' 400 '*NUL*'
refused "%00 in a query value" "$BP" 'GET /boot/ipxe?mac=52-54-00-00-00-01%00 HTTP/1.1\r\n'"$H"'\r\n' 400 '*NUL*'
refused "NUL after a valid bearer token" "$PORT" 'GET /api/v1/status HTTP/1.1\r\n'"$H"'Authorization: Bearer '"$TOKEN"'\x00junk\r\n\r\n' 400 '*NUL*'
# libmicrohttpd itself refuses a NUL in a header name (its own page).
out=$(raw "$PORT" 'GET /healthz HTTP/1.1\r\n'"$H"'X-A\x00b: 1\r\n\r\n')
expect "NUL in a header name: 400 at once" "${out%%|*} $(echo "${out##*|} < 2" | bc)" 'HTTP/1.1 400 * 1'
refused "HTTP/1.1 without Host" "$BP" 'GET /boot/files/vmlinuz HTTP/1.1\r\n\r\n' 400 '*without a Host*'
refused "Transfer-Encoding: chunked, identity" "$BP" 'POST /boot/discover?mac=52-54-00-00-00-01 HTTP/1.1\r\n'"$H"'Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n' 400 "*exactly 'chunked'*"
args=$(python3 -c 'print("&".join("a%d=b" % i for i in range(600)))')
refused "600 query arguments" "$BP" "GET /boot/ipxe?$args HTTP/1.1\\r\\n$H\\r\\n" 414 '*query arguments*'
long=$(head -c 20000 /dev/zero | tr '\0' a)
refused "a 20 KB request target" "$PORT" "GET /healthz?$long HTTP/1.1\\r\\n$H\\r\\n" 414 '*longer than*'
many=$(for i in $(seq 1 100); do printf 'X-%d: 1\\r\\n' "$i"; done)
refused "100 header fields" "$PORT" "GET /healthz HTTP/1.1\\r\\n$H$many\\r\\n" 431 '*header fields*'
refused "a 40 KB header field" "$PORT" "GET /healthz HTTP/1.1\\r\\n${H}X-A: ${long}${long}\\r\\n\\r\\n" 431 '*header fields larger*'
out=$(raw "$BP" 'GET /boot/files/vmlinuz HTTP/1.0\r\n\r\n')
expect "HTTP/1.0 needs no Host" "${out%%|*}" 'HTTP/1.1 200 *'
out=$(raw "$PORT" 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A:   spaced\r\n\r\n')
expect "a well-formed request is served" "${out%%|*}" 'HTTP/1.1 200 *'

# --- hold NCONN connections from ADDR to PORT for SECS; prints how many
# hvd still has open after a second (it closes the ones it refuses).
hold() {
	python3 - "$@" <<'PY' &
import socket, sys, time
addr, port, n, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = []
for _ in range(n):
    s = socket.socket()
    s.bind((addr, 0))
    s.connect(("127.0.0.1", port))
    socks.append(s)
time.sleep(1)
alive = 0
for s in socks:
    s.setblocking(False)
    try:
        if s.recv(1):
            alive += 1	# data before a request: still open
    except BlockingIOError:
        alive += 1
    except OSError:
        pass
print(alive, flush=True)
time.sleep(secs)
PY
	HOLD_PID=$!
	track_pid "$HOLD_PID"
}
# None of them sends a request: the header deadline (8 s) cuts them later.
hold 127.0.0.2 "$PORT" 20 1 > "$T/per_ip.out"
wait_for 5 test -s "$T/per_ip.out" >/dev/null || true
expect "per source address: only 8 of 20 connections stay" "$(cat "$T/per_ip.out")" 8
wait "$HOLD_PID" || true
sleep 0.3	# hvd sees them close

# Fill the listener from 8 stranger addresses (7 each = 56 = 64 - reserve).
for i in 3 4 5 6 7 8 9 10; do hold "127.0.0.$i" "$PORT" 7 4 > "$T/fill.$i"; done
filled() { for i in 3 4 5 6 7 8 9 10; do [ -s "$T/fill.$i" ] || return 1; done; }
wait_for 6 filled >/dev/null || true
expect "the strangers hold 56 connections" "$(cat "$T"/fill.* | paste -sd+ | bc)" 56
hold 127.0.0.3 "$PORT" 3 0 > "$T/more.out"
wait_for 4 test -s "$T/more.out" >/dev/null || true
expect "a stranger that holds some cannot take the reserve" "$(cat "$T/more.out")" 0
ok=$(curl -s -m 2 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/status")
expect "the operator (a fresh address) is served from the reserve" "$ok" 200

# Slowloris: headers one byte a second never complete in time.
python3 - "$BP" > "$T/slow.out" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(0.5)
t0 = time.monotonic()
s.sendall(b"GET /boot/files/vmlinuz HTTP/1.1\r\n")
while time.monotonic() - t0 < 15:
    try:
        s.sendall(b"X")
        if s.recv(1) == b"":
            break
    except socket.timeout:
        continue
    except OSError:
        break
print("%.1f" % (time.monotonic() - t0))
PY
slow=$!
track_pid "$slow"
booting=$(curl -s -m 2 -o /dev/null -w '%{http_code}' --interface 127.0.0.50 "http://127.0.0.1:$BP/boot/files/vmlinuz")
expect "a booting host is served while a slow client trickles" "$booting" 200
wait "$slow" || true
expect "the slow client is cut at the header deadline (8 s)" "$(echo "$(cat "$T/slow.out") < 11" | bc)" 1
m=$(curl -s --unix-socket "$T/hvd.sock" http://localhost/metrics)
for r in per_ip reserve header_timeout bad_request uri_too_long headers_too_large; do
	expect "refusals counted: $r" "$(echo "$m" | awk -v r="reason=\"$r\"" 'index($0, r) {print ($2 > 0)}')" 1
done
expect "served after it all" "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz")" 200
finish
