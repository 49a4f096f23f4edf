#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The REST API end to end: networks CRUD through curl and hvctl, and the
# error table (400, 409, 404, 405, 413, 401, 403), against the real hvd.
. "$(dirname "$0")/lib.sh"
start_hvd

# --- networks over the unix socket (root: admin by SO_PEERCRED)
expect "create" "$(sock POST /api/v1/networks '{"name":"prod","vni":100,"description":"rack A"}')" \
	'201 {"name":"prod","vni":100,"description":"rack A","all_hosts":true,*}'
expect "list" "$(sock GET /api/v1/networks)" '200 {"networks":\[{"name":"prod","vni":100,*}\]}'
expect "show by name" "$(sock GET /api/v1/networks/prod)" '200 {"name":"prod","vni":100,*'
expect "show by vni" "$(sock GET /api/v1/networks/100)" '200 {"name":"prod",*'
expect "patch" "$(sock PATCH /api/v1/networks/prod '{"description":"rack B"}')" '200 {*"description":"rack B"*'
expect "patch vni refused" "$(sock PATCH /api/v1/networks/prod '{"vni":5}')" \
	"400 {\"error\":\"field 'vni' cannot change; delete the network and create it again\"}"
expect "delete" "$(sock DELETE /api/v1/networks/prod)" '204 '
expect "deleted is gone" "$(sock GET /api/v1/networks/prod)" "404 {\"error\":\"no network 'prod'\"}"
expect "delete again" "$(sock DELETE /api/v1/networks/prod)" "404 {\"error\":\"no network 'prod'\"}"

# --- the error table
expect "bad JSON -> 400 naming it" "$(sock POST /api/v1/networks '{"name": "x", vni: 1}')" \
	'400 {"error":"invalid JSON at line 1, column 17: string or '"'}'"' expected near '"'vni'"'"}'
expect "unknown field -> 400" "$(sock POST /api/v1/networks '{"name":"x","vni":1,"colour":"red"}')" \
	"400 {\"error\":\"unknown field 'colour'\"}"
expect "vni out of range -> 400" "$(sock POST /api/v1/networks '{"name":"x","vni":16777216}')" \
	"400 {\"error\":\"field 'vni' must be in 1..16777215\"}"
sock POST /api/v1/networks '{"name":"a","vni":7}' >/dev/null
expect "duplicate VNI -> 409" "$(sock POST /api/v1/networks '{"name":"b","vni":7}')" \
	'409 {"error":"vni 7 is already used by another network"}'
expect "duplicate name -> 409" "$(sock POST /api/v1/networks '{"name":"a","vni":8}')" \
	"409 {\"error\":\"a network named 'a' already exists\"}"
expect "unknown route -> 404" "$(sock GET /api/v1/nope)" '404 {"error":"no such resource"}'
expect "wrong method -> 405" "$(sock PUT /api/v1/networks '{}')" \
	'405 {"error":"method PUT not allowed here; allowed: GET, POST"}'
big=$(head -c 70000 /dev/zero | tr '\0' x)
expect "oversize body -> 413" "$(sock POST /api/v1/networks "{\"name\":\"$big\"}")" \
	'413 {"error":"request body larger than 65536 bytes"}'
# Chunked upload: no Content-Length, so the limit must hold while reading.
code=$(head -c 70000 /dev/zero | tr '\0' x | curl -s -o /dev/null -w '%{http_code}' \
	--unix-socket "$T/hvd.sock" -H 'Transfer-Encoding: chunked' -X POST \
	--data-binary @- http://localhost/api/v1/networks)
expect "oversize chunked body -> 413" "$code" '413'

# --- TCP with bearer tokens
expect "TCP without a token -> 401" "$(tcp '' GET /api/v1/networks)" \
	'401 {"error":"missing or invalid bearer token"}'
expect "TCP healthz needs no token" "$(tcp '' GET /healthz)" '200 {"status":"ok"}'
READ=$("$HVCTL" token create --role read --name ci 2>/dev/null)
ADMIN=$("$HVCTL" token create --role admin 2>/dev/null)
expect "read token format" "$READ" 'hvt_????????????????_????????????????????????????????????????????????????????????????'
expect "read token may GET" "$(tcp "$READ" GET /api/v1/networks)" '200 {"networks":\[{"name":"a",*'
expect "read-only token on POST -> 403" "$(tcp "$READ" POST /api/v1/networks '{"name":"c","vni":9}')" \
	"403 {\"error\":\"role 'read' may not POST /api/v1/networks (it needs role 'admin')\"}"
expect "read token may not list tokens" "$(tcp "$READ" GET /api/v1/tokens)" '403 *'
expect "admin token may POST" "$(tcp "$ADMIN" POST /api/v1/networks '{"name":"c","vni":9}')" '201 *'
# Change the secret's last hex digit (to 1 if it is 0, else to 0).
forged=${READ%?}$([ "${READ: -1}" = 0 ] && echo 1 || echo 0)
expect "forged secret -> 401" "$(tcp "$forged" GET /api/v1/networks)" '401 *'
expect "no secret leaks into token list" "$(sock GET /api/v1/tokens | grep -c "${READ#hvt_*_}" || true)" '0'
expect "no secret in the log" "$(grep -c "${READ#hvt_*_}" "$T/hvd.log" || true)" '0'
rid=$(echo "$READ" | cut -d_ -f2)
expect "revoke" "$("$HVCTL" token revoke "$rid")" "revoked token $rid"
expect "revoked token -> 401" "$(tcp "$READ" GET /api/v1/networks)" '401 *'

# --- hvctl: tables, --json, and exit codes
expect "hvctl net create" "$("$HVCTL" net create web --vni 200 --description 'web tier')" \
	'NAME*VNI*MEMBERS*DESCRIPTION*web*200*all hosts*web tier'
expect "hvctl net list" "$("$HVCTL" net list | tr -s ' ' | tr '\n' '|')" \
	'NAME VNI MEMBERS DESCRIPTION|a 7 all hosts -|c 9 all hosts -|web 200 all hosts web tier|'
expect "hvctl net show --json" "$("$HVCTL" --json net show web | tr -d ' \n')" '{*"name":"web"*"vni":200*}'
set +e
out=$("$HVCTL" net create dup --vni 200 2>&1); rc=$?
expect "hvctl API 4xx exit 5" "$rc" 5
expect "hvctl API 4xx shows detail" "$out" 'hvctl: net create: vni 200 is already used by another network (HTTP 409)'
out=$(HVCTL_TOKEN=$READ "$HVCTL" --url "$URL" net delete web 2>&1); rc=$?
expect "hvctl permission denied exit 4" "$rc" 4
out=$("$HVCTL" --socket "$T/nothing.sock" status 2>&1); rc=$?
expect "hvctl daemon not running exit 3" "$rc" 3
expect "hvctl daemon not running message" "$out" "hvctl: hvd is not running*"
out=$("$HVCTL" net frobnicate 2>&1); rc=$?
expect "hvctl usage exit 2" "$rc" 2
set -e
expect "hvctl over TCP" "$(HVCTL_TOKEN=$ADMIN "$HVCTL" --url "$URL" net delete web)" 'deleted network web'
expect "hvctl status" "$("$HVCTL" status | grep inventory)" 'inventory: 0 hosts, 2 networks, 0 vms'

# --- metrics and version
expect "version" "$(sock GET /api/v1/version)" '200 {"version":"*","api":"v1","schema":*}'
m=$(sock GET /metrics)
expect "metrics count 409s by route" "$(echo "$m" | grep 'route="/api/v1/networks",method="POST",code="409"')" \
	'hvd_http_requests_total{route="/api/v1/networks",method="POST",code="409"} 3'
expect "metrics count 404s as unmatched" "$(echo "$m" | grep 'route="unmatched",method="GET",code="404"')" \
	'hvd_http_requests_total{*} 1'
expect "metrics process figures" "$(echo "$m" | grep -c '^process_\(resident_memory_bytes\|cpu_seconds_total\|open_fds\|start_time_seconds\) ')" 4
expect "audit events recorded" "$(sock GET '/api/v1/events?subject=prod')" \
	'200 {"events":\[{*"kind":"network.delete","subject":"prod","actor":"uid:0"*'

# --- GET /source.tar.gz: this version's source, to anyone (AGPL)
expect "no source archive: 404 naming it" "$(curl -s -w ' %{http_code}' "$URL/source.tar.gz")" \
	'{"error":"this hvd has no source archive at /usr/share/hypervisor/hypervisor-source.tar.gz (source-archive)*"} 404'
mkdir -p "$T/share"
head -c 100000 /dev/urandom > "$T/share/src.tar.gz"
echo "source-archive $T/share/src.tar.gz" >> "$T/hvd.conf"
kill -HUP "$HVD_PID"
served() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/source.tar.gz")" = 200 ]; }
expect "after a reload naming it: served" "$(wait_for 5 served)" '[0-9]*'
curl -s -D "$T/src.h" -o "$T/src.got" "$URL/source.tar.gz"
expect_eq "... without a token, over TCP, the same bytes" "$(cmp -s "$T/share/src.tar.gz" "$T/src.got" && echo same)" same
expect "... as an attachment named by the version" "$(tr -d "\r" < "$T/src.h" | sort | tr "\n" " ")" "*Content-Disposition: attachment; filename=\"hypervisor-*-source.tar.gz\"*Content-Type: application/gzip*"
mkfifo "$T/share/fifo.tar.gz"
sed -i "s|^source-archive .*|source-archive $T/share/fifo.tar.gz|" "$T/hvd.conf"
kill -HUP "$HVD_PID"
gone() { [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$URL/source.tar.gz")" = 404 ]; }
expect "a FIFO as the archive: 404 at once, the loop not stuck" "$(wait_for 5 gone)" '[0-9]*'

# --- the daemon survived all of it
expect "still healthy" "$(sock GET /healthz)" '200 {"status":"ok"}'
finish
