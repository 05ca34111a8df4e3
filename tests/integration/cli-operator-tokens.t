#!/usr/bin/env bash
# turtlectl token create | list | revoke --operator against a live turtled:
# create prints the secret once (metrics scope unless --scope says admin), the
# secret works over TCP with --url/--token as its scope allows, list shows
# ids, scopes and descriptions (never a secret), revoke ends it; API errors
# (bad scope, a token managing operator tokens) exit 1 with the API's message.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh
. tests/lib/turtlectl.sh

td_init
cli_init

cli_usage_is "token revoke: missing ID" "token revoke TENANT ID" \
    "token revoke --operator without ID: exit 2" token revoke --operator
grep -qxF "       turtlectl token revoke --operator ID" <<<"$ERR"
ok $? "... and its --operator form"
cli_usage_is "token create: unexpected argument 'acme'" "token create TENANT" \
    "token create --operator with a tenant: exit 2" token create --operator acme
grep -qF "       turtlectl token create --operator [--scope metrics|admin]" <<<"$ERR"
ok $? "... and its --operator form"
cli_usage_is "token create: --scope needs a value" "token create TENANT" \
    "--scope without a value: exit 2" token create --operator --scope
cli_usage_is "token create: unknown option '--scpe'; did you mean '--scope'?" "token create TENANT" \
    "--scpe: exit 2, --scope suggested" token create --operator --scpe admin
cli_usage_is "token create: unknown option '--operatr'; did you mean '--operator'?" "token create TENANT" \
    "--operatr: exit 2, --operator suggested" token create --operatr
cli_usage_is "token create: --description goes with --operator (a tenant's token has neither scope nor description)" \
    "token create TENANT" "a tenant's token with --description: exit 2, it goes with --operator" \
    token create acme --description "for prometheus"
cli_usage_is "token list: unexpected argument 'acme'" "token list TENANT [--limit N" \
    "token list --operator with a tenant: exit 2" token list acme --operator
ctl token create --help
grep -Eq '^  --operator ' <<<"$OUT" && grep -Eq '^  --scope metrics\|admin ' <<<"$OUT" &&
    grep -Eq '^  --description TEXT ' <<<"$OUT"
ok "$((RC + $?))" "token create --help: exit 0, --operator, --scope and --description explained"

td_start || bail "turtled did not start"
URL=http://127.0.0.1:$TD_PORT

# ---- create ---------------------------------------------------------------------------------
op --format table token create --operator --description "prometheus on mon1"
is "$RC" 0 "token create --operator: exit 0"
M=$(sed -n 's/^token: *//p' <<<"$OUT")
M_ID=$(sed -n 's/^id: *//p' <<<"$OUT")
like "$M" '^tt_[0-9a-f]{64}$' "... prints the secret"
is "$(sed -n 's/^scope: *//p' <<<"$OUT")" metrics "... scope metrics by default (the least)"
is "$(sed -n 's/^description: *//p' <<<"$OUT")" "prometheus on mon1" "... and the description"
grep -q "shown only once" <<<"$OUT"
ok $? "... and says it is shown only once"

op --format json token create --operator --scope admin
is "$RC" 0 "token create --operator --scope admin --format json: exit 0"
td_check_body "token create json" "$(as_file create.json "$OUT")" POST /v1/operator/tokens 201
A=$(jq -r .token.secret <<<"$OUT")
A_ID=$(jq -r .token.id <<<"$OUT")
is "$(jq -r .token.scope <<<"$OUT")" admin "... an admin token"

n=$(td_sql "SELECT count(*) FROM tokens")
op token create --operator --scope root
is "$RC" 1 "a bad scope: exit 1"
like "$ERR" "scope: must be one of" "... with the API's message naming the field"
is "$(td_sql "SELECT count(*) FROM tokens")" "$n" "... and no token made"

# ---- use over TCP -----------------------------------------------------------------------------
ctl --url "$URL" --token "$A" tenant create viatcp
is "$RC" 0 "the admin token over TCP: tenant create"
ctl --url "$URL" --token "$M" tenant list
is "$RC" 1 "the metrics token: tenant list exits 1"
like "$ERR" "this token may only read /metrics" "... saying what it may do"
ctl --url "$URL" --token "$A" token create --operator
is "$RC" 1 "an admin token may not create operator tokens"
like "$ERR" "a token may not manage operator tokens" "... saying so"

# ---- list ---------------------------------------------------------------------------------------
op --format table token list --operator
is "$RC" 0 "token list --operator: exit 0"
is "$(head -n1 <<<"$OUT" | tr -s ' ')" "ID SCOPE CREATED DESCRIPTION" "... a table"
grep -q "^$M_ID *metrics .*prometheus on mon1$" <<<"$OUT"
ok $? "... with the metrics token's row"
grep -q "^$A_ID *admin " <<<"$OUT"
ok $? "... and the admin token's"
op --format json token list --operator --limit 1
is "$RC $(jq '.tokens | length' <<<"$OUT")" "0 1" "--limit 1: one token"
td_check_body "token list json" "$(as_file list.json "$OUT")" GET /v1/operator/tokens 200
op --format json token list --operator
case "$OUT" in *"$M"* | *"$A"* | *'"secret"'*) leak=1 ;; *) leak=0 ;; esac
is "$leak" 0 "no secret in the list"

# ---- revoke ---------------------------------------------------------------------------------------
op --format table token revoke --operator "$M_ID"
is "$RC" 0 "token revoke --operator: exit 0"
like "$OUT" "revoked operator token $M_ID" "... saying so"
ctl --url "$URL" --token "$M" host show
is "$RC" 1 "the revoked token: exit 1"
like "$ERR" "invalid or revoked token" "... 401's message"
op token revoke --operator "$M_ID"
is "$RC" 1 "revoked twice: exit 1"
like "$ERR" "token '$M_ID' not found" "... not found"

cli_done
td_done
