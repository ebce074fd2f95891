#!/usr/bin/env bash
# The README's "Five minutes with curl", as a script that stops at the first failed step.
# Run it in a second terminal while `serve` runs, from the folder `serve` was started in:
#   bash scripts/walkthrough.sh
# HC (the binary, default target/release/healthcard) and BASE (default http://localhost:8080)
# can be given in the environment. A test runs it against a fresh server (tests/api/cli.rs).
set -euo pipefail
HC=${HC:-target/release/healthcard}
BASE=${BASE:-http://localhost:8080}
CURL="curl -sS --fail-with-body"

# 1. An administrator (password on standard input: at least 12 characters, not easy to guess;
#    choose your own) and a clinic with its API key (shown once).
echo 'change-me-please' | $HC admin create --username admin
KEY=$($HC clinic create --code C001 --name '市第一人民医院' --scopes verify,link | jq -er .api_key)

# 2. Sign in.
ADMIN=$($CURL $BASE/api/v1/admin/login -H 'content-type: application/json' \
  -d '{"username":"admin","password":"change-me-please"}' | jq -er .token)

# 3. Register a resident and issue a card (the holder credential is shown once).
RES=$($CURL $BASE/api/v1/residents -H "authorization: Bearer $ADMIN" \
  -H 'content-type: application/json' \
  -d '{"name":"张三","national_id":"11010519491231002X","phone":"13800138000"}' | jq -er .id)
CARD=$($CURL -X POST $BASE/api/v1/residents/$RES/cards \
  -H "authorization: Bearer $ADMIN" | jq -er .card.id)

# 4. Its printable QR, and a token as text.
$CURL $BASE/api/v1/cards/$CARD/qr.png -H "authorization: Bearer $ADMIN" -o card.png
TOKEN=$($CURL $BASE/api/v1/cards/$CARD/tokens -H "authorization: Bearer $ADMIN" \
  -H 'content-type: application/json' -d '{"kind":"static"}' | jq -er .token)

# 5. The clinic verifies it (or: $HC verify --qr card.png).
$CURL $BASE/api/v1/verify -H "authorization: Bearer $KEY" \
  -H 'content-type: application/json' -d "{\"token\":\"$TOKEN\",\"channel\":\"window\"}" | jq

# 6. The clinic's own patient number, from now on in every answer to this clinic (the clinic
#    must have verified the card, step 5, within the last 24 hours: else 409 no_recent_scan).
$CURL $BASE/api/v1/links -H "authorization: Bearer $KEY" \
  -H 'content-type: application/json' -d "{\"card_id\":\"$CARD\",\"local_patient_id\":\"MRN-0001\"}" | jq
