#!/usr/bin/env bash
# Run the A2A conformance kit (a2aproject/a2a-tck, branch 1.0-dev) against `pocketmesh serve`
# with JSON-RPC, HTTP+JSON and gRPC, push notifications and the extended card.
#
#   TCK_DIR=<a2a-tck checkout> TCK_VENV=<its venv> benchmarks/tck/run.sh [OUTDIR] [extra pytest args]
#
# PYTHON: the interpreter with pocketmesh[grpc] installed (default: .venv/bin/python if present,
# else python3). PORT / GRPC_PORT: where to serve (default: free ports on 127.0.0.1).
# Writes OUTDIR/junit.xml, OUTDIR/pytest.txt, OUTDIR/server.log and prints the per-category
# table (OUTDIR/summary.md). Everything listens on 127.0.0.1; the server is stopped at the end.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
: "${TCK_DIR:?set TCK_DIR to an a2a-tck checkout (branch 1.0-dev)}"
: "${TCK_VENV:?set TCK_VENV to a venv with the TCK installed (pip install -e \$TCK_DIR)}"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
OUT=$ROOT/tck-results
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then OUT=$1; shift; fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=${PORT:-$(free_port)}
GRPC_PORT=${GRPC_PORT:-$(free_port)}
rm -f "$OUT"/sut.sqlite*

# The kit's webhook receiver is reached as http://localhost:<port>/webhook: allow that host.
(cd "$ROOT" && OTEL_INSTRUMENTATION_A2A_SDK_ENABLED=false exec "$PYTHON" -m pocketmesh.cli serve \
  pocketmesh.examples.tck:flows --host 127.0.0.1 --port "$PORT" --grpc-port "$GRPC_PORT" \
  --db "$OUT/sut.sqlite" --push-allow-host localhost \
  --extended-card pocketmesh.examples.tck:extended_card) > "$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null' EXIT
for _ in $(seq 100); do
  "$PYTHON" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/.well-known/agent-card.json')" 2>/dev/null && break
  sleep 0.2
done

(cd "$TCK_DIR" && "$TCK_VENV/bin/python" -m pytest tests/compatibility/ --sut-host="http://127.0.0.1:$PORT" \
  --tb=short -q -rA --compatibility-report="$OUT/compatibility" --junitxml="$OUT/junit.xml" \
  -p no:cacheprovider "$@") > "$OUT/pytest.txt" 2>&1
echo "pocketmesh: $(grep -E '[0-9]+ (passed|failed)' "$OUT/pytest.txt" | tail -1)"
"$PYTHON" "$HERE/summarize.py" "pocketmesh=$OUT/junit.xml" ${BASELINE_JUNIT:+"baseline=$BASELINE_JUNIT"} --md "$OUT/summary.md"
