#!/usr/bin/env bash
# Start the web server and the background worker together; Ctrl-C stops both.
set -euo pipefail
host=${1:-127.0.0.1}
port=${2:-8000}
py=.venv/bin/python
# runserver speaks plain HTTP on this machine: with DJANGO_DEBUG=0 the production
# defaults would redirect every request to https (docs/deploy.md, plain HTTP on loopback).
export SECURE_SSL_REDIRECT=${SECURE_SSL_REDIRECT:-0} SECURE_HSTS_SECONDS=${SECURE_HSTS_SECONDS:-0}
export SECURE_COOKIES=${SECURE_COOKIES:-0}
# The demo signs in with a password alone; a user who enrols a second factor is asked for it.
export STAFF_2FA_REQUIRED=${STAFF_2FA_REQUIRED:-0}

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
