#!/usr/bin/env bash
# Start the web server and the background worker together; Ctrl-C stops both.
set -euo pipefail
host=${1:-127.0.0.1}
port=${2:-8000}
py=.venv/bin/python

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

# Worker (fulfilment): db_worker loop + recovery/expiry/webhook sweeps, see docs/deploy.md.
"$py" manage.py run_worker --interval 0.5 &
pids+=($!)
"$py" manage.py runserver "$host:$port" --noreload &
pids+=($!)

echo
echo "Starship Orders is running on http://$host:$port/  (worker pid ${pids[0]}, web pid ${pids[1]})"
echo "  dashboard:  http://$host:$port/dashboard/     admin: http://$host:$port/admin/"
echo "  API docs:   http://$host:$port/api/v1/docs"
echo "Press Ctrl-C to stop both."
# Exit as soon as either process stops; the trap stops the other.
wait -n
