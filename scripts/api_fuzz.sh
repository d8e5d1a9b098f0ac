#!/usr/bin/env bash
# Fuzz the JSON API against its own OpenAPI document with schemathesis.
#
# Starts a live server on a free 127.0.0.1 port (its own SQLite file, or the
# DATABASE_URL you give), creates a client + credential and a product with
# stock, runs every schemathesis check with a fixed number of examples per
# operation, and exits non-zero on any failure. The server is always stopped.
#
#   scripts/api_fuzz.sh                 # 30 examples per operation
#   FUZZ_EXAMPLES=200 scripts/api_fuzz.sh
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/fuzz scripts/api_fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."

py=.venv/bin/python
examples=${FUZZ_EXAMPLES:-30}
seed=${FUZZ_SEED:-}
work=$(mktemp -d -t api-fuzz-XXXXXX)
server_pid=""

stop() {
  trap - EXIT INT TERM
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop EXIT INT TERM

port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
key=$("$py" -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')
fp=$("$py" -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')

export DJANGO_DEBUG=0
# Plain HTTP on loopback: opt out of the production HTTPS defaults (docs/deploy.md).
export SECURE_SSL_REDIRECT=0 SECURE_HSTS_SECONDS=0 SECURE_COOKIES=0
export DJANGO_SECRET_KEY="fuzz-$(date +%s)-$RANDOM$RANDOM-not-for-production-use-only"
export VOUCHER_KEYS="fuzz:$key" VOUCHER_FINGERPRINT_KEY="$fp"
export AUDIT_KEY="fuzz:$("$py" -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')" \
  AUDIT_CHECKPOINT_PATH="$work/audit-checkpoints.jsonl"
# Fuzzing sends hundreds of requests a minute: lift the limits so 429s do
# not drown the run (429 is still declared on every operation).
export API_RATE_LIMIT_PER_MINUTE=1000000 API_RATE_LIMIT_PER_10_SECONDS=1000000
export API_RATE_LIMIT_ORDER_READS_PER_HOUR=1000000
export LOG_LEVEL=${LOG_LEVEL:-ERROR}
if [[ -z "${DATABASE_URL:-}" ]]; then
  export SQLITE_PATH="$work/fuzz.sqlite3"
fi

"$py" manage.py migrate --no-input -v 0
creds=$("$py" manage.py create_client "Fuzz Shop $(date +%s)-$RANDOM" --currency USD --balance 100000.00 --json)
api_key=$(printf '%s' "$creds" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["api_key"])')
api_secret=$(printf '%s' "$creds" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["api_secret"])')

"$py" manage.py shell -v 0 -c '
import secrets
from decimal import Decimal
from orders.crypto import fingerprint
from orders.models import Product, Vendor, Voucher
vendor, _ = Vendor.objects.get_or_create(code="simulated", defaults={"name": "Simulated vendor"})
card = Product.objects.create(
    vendor=vendor, name="Fuzz Gift Card", brand="Acme", kind="GIFT_CARD", currency="USD",
    denominations=["10.00", "25.00"], delivery_type="CODE_WITH_PIN", bulk_limit=5)
Product.objects.create(
    vendor=vendor, name="Fuzz Range Card", brand="Acme", kind="DIGITAL_SERVICE", currency="USD",
    min_denomination=Decimal("1.00"), max_denomination=Decimal("500.00"), delivery_type="URL")
for _ in range(5):
    code = secrets.token_hex(8)
    Voucher.objects.create(product=card, denomination=Decimal("25.00"), card_number=code,
                           pin_code="1234", card_last4=code[-4:], fingerprint=fingerprint(code),
                           source="IMPORT")
'

"$py" manage.py runserver "127.0.0.1:$port" --noreload --skip-checks >"$work/server.log" 2>&1 &
server_pid=$!

base="http://127.0.0.1:$port"
deadline=$((SECONDS + 30))
until "$py" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
      "$base/api/v1/openapi.json" 2>/dev/null; do
  if ((SECONDS > deadline)) || ! kill -0 "$server_pid" 2>/dev/null; then
    echo "The server did not start:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.2
done

# Schemathesis 4's positive_data_acceptance accepts 2xx, 3xx, 401, 403, 404,
# 409, 429 (and 5xx, which not_a_server_error fails) by default: unknown ids are
# 404 and a reused reference_code is 409 there already. The schema declares every
# shape rule (patterns, formats, ranges, lengths), so everywhere else generated
# valid data must be accepted. Four operations keep rules no schema can state,
# because they depend on the product or the client's wallets: a denomination the
# product does not sell, a quantity over its bulk limit, recipient_phone (top-ups
# only), a wallet currency the client has not got (400), and funds (402); or on
# the world: a webhook URL's host must resolve, to public addresses only (400;
# this machine resolves no outside name).
cat >"$work/schemathesis.toml" <<'TOML'
[[operations]]
include-name = [
  "GET /api/v1/products/{id}/availability",
  "POST /api/v1/charges",
  "POST /api/v1/webhooks",
]
[operations.checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]

[[operations]]
include-name = "POST /api/v1/orders"
[operations.checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "401", "402", "403", "404", "409", "429", "5xx"]
TOML

echo "Fuzzing $base/api/v1/openapi.json ($examples examples per operation)"
start=$SECONDS
status=0
.venv/bin/schemathesis --config-file "$work/schemathesis.toml" run "$base/api/v1/openapi.json" \
  --checks all \
  -H "X-API-Key: $api_key" -H "X-API-Secret: $api_secret" \
  --max-examples "$examples" \
  --generation-database none \
  --request-timeout 10 \
  --workers 1 \
  --no-color \
  ${seed:+--seed "$seed"} || status=$?
echo "schemathesis finished in $((SECONDS - start)) s with exit code $status"
if ((status != 0)) && grep -q "Traceback" "$work/server.log"; then
  echo "--- server errors ---" >&2
  grep -B2 -A20 "Traceback" "$work/server.log" | head -80 >&2
fi
exit "$status"
