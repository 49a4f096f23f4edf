#!/usr/bin/env bash
# The README's main command: install dependencies, build, and run hvd in the
# foreground on its built-in local configuration (state, unix socket and
# TCP port 127.0.0.1:8470 all under ./run).  Ctrl-C stops it.
#
# Until the virtual rack lands (QEMU Xen hosts netbooting from hvd), this
# is the whole demo: the orchestrator with its inventory and REST API.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash packaging/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j2 >/dev/null
echo "demo: built build/release (hvd, hvctl, hv-agent)"

run="$top/run"
mkdir -p "$run"
hvctl="$top/build/release/cli/hvctl"
cat <<TXT

  hvd is starting in the foreground; in another shell try:

    export HVCTL_SOCKET=$run/hvd.sock
    $hvctl status
    $hvctl net create prod --vni 100 --description "production"
    $hvctl net list
    $hvctl token create --role read        # a token for the TCP API
    curl -H "Authorization: Bearer <token>" http://127.0.0.1:8470/api/v1/networks
    curl --unix-socket $run/hvd.sock http://localhost/metrics

  State lives in $run/state (delete it to start afresh).
  Stop hvd with Ctrl-C.

TXT
exec "$top/build/release/daemon/hvd" -d -L "$run"
