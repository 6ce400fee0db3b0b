#!/usr/bin/env bash
# Engine benchmarks (not tests). Usage: bash bench/run.sh [N]   (default N=100000)
#
# Installs Postfix's smtp-sink/smtp-source if missing, then measures on loopback:
#   1. engine throughput to smtp-sink, 16 connections, N recipients, 2 merge fields, ~2 KB body
#   2. smtp-source, same message size and connections (-d: connections reused, like ours)
#   3. the naive baseline (smtplib + EmailMessage + sqlite3, one at a time) on a 5k subset
#   4. engine throughput with the null: transport
#   5. stop overshoot and acknowledgement, 20 runs, against a recording sink
#   6. engine peak memory with 1,000,000 queued messages
#   7. CPU time per message of smtp-source, smtp-sink and the engine: the ceiling
#      any engine could reach on this machine (bench/cpu_budget.py)
#   8. stop latency while a 7 MB template is saved, 1M rows imported and 1M purged
#   9. the stop intent: the last dot after a stop while the store is held for 3 s
# Results: one JSON line per measurement in bench/results/engine-<time>.jsonl.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/sbin:/usr/lib/postfix/sbin"
PY="${PYTHON:-../.venv/bin/python}"
N="${1:-100000}"
SIZE=2300                # bytes per message, as the engine builds them (headers + ~2 KB body)
mkdir -p results
OUT="results/engine-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
WORK="$(mktemp -d)"

if ! command -v smtp-sink >/dev/null || ! command -v smtp-source >/dev/null; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postfix
fi

PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
SINK_USER=()
[ "$(id -u)" = 0 ] && SINK_USER=(-u nobody)  # smtp-sink refuses to run as root without -u
smtp-sink "${SINK_USER[@]}" -c "127.0.0.1:$PORT" 1024 >/dev/null 2>&1 &
SINK=$!
trap 'kill $SINK 2>/dev/null || true; rm -rf "$WORK"' EXIT
sleep 0.5

# One engine process with 16 connections, then two processes with 8 each on the
# same store (engines scale by processes; this machine has two cores).
for ENGINES in 1 2; do
    echo "== engine -> smtp-sink ($N recipients, 16 connections, $ENGINES process(es))"
    "$PY" throughput.py --n "$N" --engines "$ENGINES" --workers $((16 / ENGINES)) \
        --transport "smtp://127.0.0.1:$PORT" --work "$WORK" | tee -a "$OUT"
done

echo "== smtp-source -> smtp-sink ($N messages of $SIZE bytes, 16 connections)"
start=$(date +%s.%N)
smtp-source -d -s 16 -m "$N" -l "$SIZE" -f bench@example.com -t sink@example.com "127.0.0.1:$PORT"
end=$(date +%s.%N)
"$PY" -c "import json,sys; s=float(sys.argv[2])-float(sys.argv[1]); n=int(sys.argv[3]); print(json.dumps({'bench':'smtp-source','n':n,'seconds':round(s,2),'rate':round(n/s)}))" \
    "$start" "$end" "$N" | tee -a "$OUT"

echo "== naive baseline -> smtp-sink (5000 messages)"
"$PY" baseline.py --n 5000 --port "$PORT" --work "$WORK" | tee -a "$OUT"

echo "== engine -> null: ($N recipients)"
"$PY" throughput.py --n "$N" --engines 1 --workers 16 --transport null: --work "$WORK" | tee -a "$OUT"

echo "== stop overshoot (20 runs, 2 engine processes x 8 connections)"
"$PY" overshoot.py --runs 20 --engines 2 --workers 8 --work "$WORK" | tee -a "$OUT"

echo "== peak memory with 1,000,000 queued"
"$PY" memory.py --n 1000000 --seconds 20 --work "$WORK" | tee -a "$OUT"

echo "== CPU per message: smtp-source, smtp-sink, engine (smtp and null:)"
"$PY" cpu_budget.py --n 50000 --port "$PORT" --sink-pid "$SINK" --work "$WORK" | tee -a "$OUT"

echo "== stop latency while a 7 MB template is saved, 1,000,000 rows imported and 1,000,000 purged (50 stops)"
"$PY" stop_latency.py --rows 1000000 --stops 50 --work "$WORK" | tee -a "$OUT"

echo "== stop intent: last dot after \`mailconsole stop\` while another process holds the store for 3 s"
"$PY" stop_intent.py --runs 3 --work "$WORK" | tee -a "$OUT"

echo "== summary"
"$PY" summary.py "$OUT"
