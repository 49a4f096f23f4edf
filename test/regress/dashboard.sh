#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The dashboard's sign-in and live feed (issue 19), against the real hvd,
# curl as the browser, and an emulated agent (test/tools/agent_emu):
#  - POST /api/v1/session trades a token for a cookie: 201, HttpOnly,
#    SameSite=Strict, Path=/, Max-Age, no Secure on plaintext; a bad body,
#    an unknown key and a wrong token are refused naming why;
#  - the cookie reads; a change needs X-CSRF-Token (none, wrong: 401
#    saying so; right: done); a read token's session may not change (403);
#  - sign-out ends the session (cookie cleared, then 401); deleting the
#    token ends its sessions; a made-up cookie is 401;
#  - GET /api/v1/feed (Server-Sent Events): retry, telemetry of h1 with
#    at_ms, host down/up, audit events with their kind and "changed";
#    Last-Event-ID resumes right after the id given, a malformed one is
#    400; without a session or token, 401;
#  - the dashboard's page: CSP and friends, the assets, the source link;
#  - hvd stops cleanly (exit 0, no sanitizer report) with a feed client
#    still connected;
#  - over TLS the cookie is also Secure.
if [ -z "${HV_IN_NETNS:-}" ]; then
	exec unshare --net env HV_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up
ip addr add 10.0.0.5/32 dev lo
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/emu_lib.sh"

emu_hvd_up
"$HVCTL" host add h1 --out "$T/h1" >/dev/null
emu h1 10.0.0.5
ADMIN=$("$HVCTL" token create --role admin --name dash-admin)
READ=$("$HVCTL" token create --role read --name dash-read)

# login TOKEN [CURLARGS...]: the headers in $T/h, the body in $T/b; prints
# the status.
login() {
	local tok=$1; shift
	curl -s -D "$T/h" -o "$T/b" -w '%{http_code}' "$@" -X POST \
		-H 'Content-Type: application/json' --data-binary "{\"token\":\"$tok\"}" \
		"${BASE:-$URL}/api/v1/session"
}
cookie_of() { sed -n 's/^Set-Cookie: hv_session=\([0-9a-f]*\);.*/\1/p' "$T/h" | tr -d '\r'; }
# as COOKIE [CSRF] METHOD PATH [BODY]: "STATUS BODY"
as() {
	local c=$1 x=$2; shift 2
	local out
	out=$(curl -s -o "$T/body" -w '%{http_code}' -b "hv_session=$c" ${x:+-H "X-CSRF-Token: $x"} \
		-X "$1" "$URL$2" ${3:+-H 'Content-Type: application/json' --data-binary "$3"})
	echo "$out $(cat "$T/body")"
}

# --- signing in -------------------------------------------------------------
expect_eq "sign in with the admin token: 201" "$(login "$ADMIN")" 201
SETC=$(grep -i '^Set-Cookie:' "$T/h" | tr -d '\r')
expect "the cookie: 64 hex digits, Path=/, Max-Age, HttpOnly, SameSite=Strict" "$SETC" \
	'Set-Cookie: hv_session=????????????????????????????????????????????????????????????????; Path=/; Max-Age=28800; HttpOnly; SameSite=Strict'
expect "... not Secure on plaintext" "$SETC" '!(*Secure*)'
A=$(cookie_of)
ACSRF=$(field "d['csrf']" < "$T/b")
expect "the reply names the role and a CSRF token" "$(field "d['role'], len(d['csrf'])" < "$T/b")" "('admin', 64)"
expect "the token is not in the reply" "$(cat "$T/b")" "!(*$ADMIN*)"
expect "a body without token: 400" "$(curl -s -w ' %{http_code}' -X POST --data-binary '{}' "$URL/api/v1/session")" \
	"*missing field 'token'* 400"
expect "an unknown key: 400 naming it" "$(curl -s -w ' %{http_code}' -X POST --data-binary "{\"token\":\"$ADMIN\",\"user\":\"x\"}" "$URL/api/v1/session")" \
	"*'user'* 400"
expect "a token hvd never issued: 401" "$(curl -s -w ' %{http_code}' -X POST --data-binary '{"token":"hvt_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef"}' "$URL/api/v1/session")" \
	"* 40[01]"
expect "not JSON: 400" "$(curl -s -w ' %{http_code}' -X POST --data-binary 'token=x' "$URL/api/v1/session")" "* 400"

# --- using it -----------------------------------------------------------------
expect "the session reads" "$(as "$A" "" GET /api/v1/session)" "200 *\"role\":\"admin\"*"
expect "... the hosts too" "$(as "$A" "" GET /api/v1/hosts)" '200 *"h1"*'
expect "a change without X-CSRF-Token: 401 saying so" "$(as "$A" "" POST /api/v1/networks '{"name":"blue","vni":200}')" \
	'401 *X-CSRF-Token*'
expect "... with a wrong one: 401" "$(as "$A" "$(printf '0%.0s' {1..64})" POST /api/v1/networks '{"name":"blue","vni":200}')" \
	'401 *X-CSRF-Token*'
expect "... with the session's: 201" "$(as "$A" "$ACSRF" POST /api/v1/networks '{"name":"blue","vni":200}')" '201 *'
expect_eq "a made-up cookie: 401" "$(as "$(printf 'a%.0s' {1..64})" "" GET /api/v1/hosts | cut -c1-3)" 401
expect_eq "a malformed cookie: 401" "$(as "xyz" "" GET /api/v1/hosts | cut -c1-3)" 401
expect_eq "sign in with the read token: 201" "$(login "$READ")" 201
R=$(cookie_of)
RCSRF=$(field "d['csrf']" < "$T/b")
expect "a read session may not change: 403" "$(as "$R" "$RCSRF" POST /api/v1/networks '{"name":"green","vni":201}')" \
	"403 *role 'read'*"
expect "the audit log names the session as actor" "$(sqlite3 "$T/state/hvd.db" "SELECT actor FROM events WHERE kind = 'network.create' AND subject = 'blue'")" \
	'session:*'
expect_eq "no cookie or CSRF token in hvd's log" \
	"$(grep -c -e "$A" -e "$ACSRF" -e "$R" -e "${ADMIN#hvt_}" "$T/hvd.log")" 0

# --- the feed -----------------------------------------------------------------
expect "the feed without a session: 401" "$(curl -s -w ' %{http_code}' "$URL/api/v1/feed")" '* 401'
expect "a malformed Last-Event-ID: 400" "$(curl -s -w ' %{http_code}' -b "hv_session=$A" -H 'Last-Event-ID: 12x' "$URL/api/v1/feed")" \
	"*Last-Event-ID* 400"
curl -s -N -b "hv_session=$R" "$URL/api/v1/feed" > "$T/feed1" &
FEED1=$!
track_pid $FEED1
has() { grep -q -- "$2" "$1"; }
expect_eq "the feed starts with retry" "$(wait_for 10 has "$T/feed1" '^retry: 2000' >/dev/null && echo yes)" yes
expect_eq "h1's telemetry arrives on the feed" "$(wait_for 10 has "$T/feed1" '"name":"h1"' >/dev/null && echo yes)" yes
TEL=$(grep -m1 '^data: {"hosts"' "$T/feed1" | cut -c7-)
expect "... with at_ms (wall clock, ms) and the host's fields" \
	"$(echo "$TEL" | field "(abs(d['hosts'][0]['at_ms'] / 1000 - __import__('time').time()) < 60, d['hosts'][0]['up'], 'cpu_percent' in d['hosts'][0])")" \
	"(True, True, True)"
"$HVCTL" net create red --vni 300 >/dev/null
expect_eq "a network created: its audit event on the feed" \
	"$(wait_for 10 has "$T/feed1" '"kind":"network.create","subject":"red"' >/dev/null && echo yes)" yes
expect_eq "... and 'changed'" "$(wait_for 5 has "$T/feed1" '^event: changed' >/dev/null && echo yes)" yes
kill -STOP "${EMU[h1]}"
expect_eq "h1 silenced: host down on the feed" \
	"$(wait_for 20 has "$T/feed1" '"name":"h1","up":false' >/dev/null && echo yes)" yes
kill -CONT "${EMU[h1]}"
ids() { sed -n 's/^id: //p' "$1"; }
LAST=$(ids "$T/feed1" | tail -1)
FIRST=$(ids "$T/feed1" | head -1)
expect "ids rise one by one" "$(ids "$T/feed1" | python3 -c 'import sys; v=[int(l) for l in sys.stdin]; print(v == list(range(v[0], v[0] + len(v))))')" True
PICK=$((FIRST + 1))
curl -s -N -b "hv_session=$R" -H "Last-Event-ID: $PICK" "$URL/api/v1/feed" > "$T/feed2" &
track_pid $!
wait_for 10 has "$T/feed2" "^id: $LAST\$" >/dev/null || true
expect_eq "Last-Event-ID: the feed resumes right after it" "$(ids "$T/feed2" | head -1)" $((PICK + 1))
expect_eq "... with the same messages" "$(sed -n "/^id: $((PICK + 1))\$/,/^id: $LAST\$/p" "$T/feed2")" \
	"$(sed -n "/^id: $((PICK + 1))\$/,/^id: $LAST\$/p" "$T/feed1")"
expect "hvd counts its feed clients" "$(curl -s -b "hv_session=$A" "$URL/metrics" | grep '^hvd_feed_clients ')" 'hvd_feed_clients [23]'

# --- the page -----------------------------------------------------------------
curl -s -D "$T/ph" -o "$T/page" "$URL/"
expect "GET / serves the dashboard's page" "$(head -c 200 "$T/page")" '<!DOCTYPE html>*'
PH=$(tr -d '\r' < "$T/ph")
expect "... with a CSP that runs only its own script" "$PH" \
	"*Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; *connect-src 'self'; frame-ancestors 'none'*"
expect "... nosniff, no referrer, no framing" "$PH" '*X-Content-Type-Options: nosniff*Referrer-Policy: no-referrer*X-Frame-Options: DENY*'
expect "... the page links the source" "$(cat "$T/page")" '*href="/source.tar.gz"*'
expect "the script is served" "$(curl -s -w ' %{http_code} %{content_type}' -o /dev/null "$URL/ui/app.js")" \
	' 200 text/javascript*'
expect "the style sheet is served" "$(curl -s -w ' %{http_code} %{content_type}' -o /dev/null "$URL/ui/app.css")" \
	' 200 text/css*'
expect "an unknown asset: 404" "$(curl -s -w ' %{http_code}' -o /dev/null "$URL/ui/nope.js")" ' 404'
expect "a path out of the assets: 404" "$(curl -s --path-as-is -w ' %{http_code}' -o /dev/null "$URL/ui/../hvd.conf")" ' 404'

# --- ending sessions ----------------------------------------------------------
expect "sign-out: 200" "$(curl -s -D "$T/h" -o /dev/null -w '%{http_code}' -b "hv_session=$A" -H "X-CSRF-Token: $ACSRF" -X DELETE "$URL/api/v1/session")" 200
expect "... clears the cookie" "$(tr -d '\r' < "$T/h" | grep -i '^Set-Cookie')" 'Set-Cookie: hv_session=; Path=/; Max-Age=0;*'
expect "... and the cookie no longer works" "$(as "$A" "" GET /api/v1/hosts)" '401 *sign in again*'
RID=$(sqlite3 "$T/state/hvd.db" "SELECT id FROM api_tokens WHERE name = 'dash-read'")
"$HVCTL" token revoke "$RID" >/dev/null
expect "the read token deleted: its session is refused" "$(as "$R" "" GET /api/v1/hosts)" '401 *deleted*'
expect "hvd counts the refusals" "$(curl -s --unix-socket "$T/hvd.sock" http://localhost/metrics | grep '^hvd_dashboard_session_refused_total ')" \
	'hvd_dashboard_session_refused_total [1-9]*'
expect "sign-ins and sign-outs are in the audit log" "$(sqlite3 "$T/state/hvd.db" "SELECT count(*) FROM events WHERE kind IN ('session.opened', 'session.closed')")" 3

# --- stopping with a feed client connected ------------------------------------
expect_eq "sign in again for the feed" "$(login "$ADMIN")" 201
curl -s -N -b "hv_session=$(cookie_of)" "$URL/api/v1/feed" > "$T/feed3" &
FEED3=$!
track_pid $FEED3
wait_for 10 has "$T/feed3" '^retry' >/dev/null || true
kill -TERM "$HVD_PID"
rc=0; wait "$HVD_PID" || rc=$?
HVD_PID=
expect_eq "hvd stops with feed clients connected: exit 0" "$rc" 0
expect_eq "... and the feed's client sees the stream end" "$(wait_for 10 bash -c "! kill -0 $FEED3 2>/dev/null" >/dev/null && echo ended)" ended

# --- TLS: the cookie is Secure --------------------------------------------------
write_conf "api-tls on"
start_hvd
P=$(curl -s --unix-socket "$T/hvd.sock" http://localhost/api/v1/status | sed -n 's/.*"tcp":"[^"]*:\([0-9]*\)".*/\1/p')
expect_eq "over TLS: sign in 201" "$(BASE="https://127.0.0.1:$P" login "$ADMIN" --cacert "$T/state/tls/api.crt")" 201
expect "... and the cookie is Secure" "$(grep -i '^Set-Cookie:' "$T/h" | tr -d '\r')" '*; HttpOnly; SameSite=Strict; Secure'
finish
