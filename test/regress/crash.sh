#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Nothing acknowledged is lost: kill -9 hvd in the middle of a burst of
# creates, restart it, and check every create that got a 2xx is present and
# the database passes PRAGMA integrity_check.
. "$(dirname "$0")/lib.sh"
start_hvd

acked=$T/acked
: > "$acked"
(
	for i in $(seq 1 100000); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$T/hvd.sock" \
			-X POST http://localhost/api/v1/networks \
			--data-binary "{\"name\":\"n$i\",\"vni\":$i}" 2>/dev/null) || break
		[ "$code" = 201 ] && echo "n$i" >> "$acked"
	done
) &
burst=$!
# Let a few hundred creates through, then pull the plug mid-burst.
while [ "$(wc -l < "$acked")" -lt 300 ]; do sleep 0.05; done
kill -9 "$HVD_PID"
wait "$HVD_PID" 2>/dev/null || true
HVD_PID=
wait "$burst" 2>/dev/null || true
n_acked=$(wc -l < "$acked")
echo "creates acknowledged before the kill: $n_acked"

expect "integrity_check after kill -9" "$(sqlite3 "$T/state/hvd.db" 'PRAGMA integrity_check')" ok
start_hvd
sock GET /api/v1/networks > "$T/list"
missing=0
while read -r name; do
	grep -q "\"name\":\"$name\"" "$T/list" || { echo "lost: $name"; missing=$((missing + 1)); }
done < "$acked"
expect "every acknowledged create survived ($n_acked)" "$missing" 0
expect "at least 300 creates were acknowledged" "$([ "$n_acked" -ge 300 ] && echo yes)" yes
expect "restarted hvd serves" "$(sock GET /healthz)" '200 {"status":"ok"}'
stop_hvd
expect "integrity_check after restart" "$(sqlite3 "$T/state/hvd.db" 'PRAGMA integrity_check')" ok
finish
