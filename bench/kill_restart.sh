#!/usr/bin/env bash
# Usage: bash bench/kill_restart.sh (from the repository root, with .venv installed). Issue: a killed server must
# leave nothing unfinished behind once it restarts (app/outputs.py OutputStore.sweep).
# kill -9 the app mid-run (while a generation streams), restart it, list what is left in the outputs folder.
set -u
cd "$(dirname "$0")/.."
OUT=$(mktemp -d)
start() { nice -n 5 .venv/bin/python app.py --port 7871 --outputs "$OUT" > /tmp/kill9-app.log 2>&1 & echo $!; }
PID=$(start)
for i in $(seq 1 90); do curl -s -o /dev/null http://127.0.0.1:7871/ && break; sleep 2; done
.venv/bin/python - <<'PY' &
from gradio_client import Client
c = Client("http://127.0.0.1:7871/", verbose=False)
job = c.submit("a red circle moving left on a black background", api_name="/generate")
import time; time.sleep(240)
PY
CL=$!
# kill while the run is mid-way: wait until a request folder holds a file
for i in $(seq 1 400); do n=$(find "$OUT" -type f | wc -l); [ "$n" -gt 0 ] && break; sleep 0.5; done
echo "before kill: $(find "$OUT" -mindepth 1 | wc -l) entries:"; find "$OUT" -mindepth 1 | sed "s|$OUT|OUT|"
kill -9 "$PID"; kill "$CL" 2>/dev/null
sleep 1
echo "after kill: $(find "$OUT" -mindepth 1 | wc -l) entries"
PID=$(start)
for i in $(seq 1 90); do curl -s -o /dev/null http://127.0.0.1:7871/ && break; sleep 2; done
echo "after restart: $(find "$OUT" -mindepth 1 | wc -l) entries:"; find "$OUT" -mindepth 1 | sed "s|$OUT|OUT|"
kill "$PID"
