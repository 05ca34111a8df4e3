#!/usr/bin/env bash
# turtlectl's lists follow `next` to show everything (tenant, token, image,
# peer, device-class and device list), one page with --limit; without
# --format they print tables in a pipe too; and its read-modify-writes
# (tenant edit, device-class edit) send If-Match: a change someone made
# between the read and the write is never overwritten (exit 1, "changed by
# someone else meanwhile"), an edit nobody raced is applied.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh
. tests/lib/turtlectl.sh

td_init
cli_init
td_start || bail "turtled did not start"
for name in acme beta gamma; do
    td_tenant "$name" || bail "no tenant $name"
done
api_op POST /v1/tenants/acme/tokens
for name in hosta hostb hostc; do
    api_op POST /v1/peers --json "{\"name\":\"$name\",\"libvirt_uri\":\"qemu+tcp://$name/system\"}"
done
api_op POST /v1/device-classes --json '{"name":"rng","kind":"emulated","model":"virtio-rng","capacity":3}'
api_op POST /v1/device-classes --json '{"name":"edu","kind":"emulated","model":"edu","capacity":1}'
td_tenant delta || bail "no tenant delta"
delta=$TOKEN
for name in a b c; do
    api_tn "$delta" POST /v1/images --json "{\"name\":\"$name\",\"kind\":\"disk\",\"format\":\"raw\"}"
done

# ---- lists: every page ----------------------------------------------------------------------
# lists NOUN MEMBER KEY WANT [ARGS...]: `NOUN list` in json, all pages at once
# with --limit 1 --all, and one page with --limit 1.
lists() {
    local noun=$1 member=$2 key=$3 want=$4
    shift 4
    op "$noun" list "$@" --format json
    is "$RC $(jq -c "[.${member}[] | $key], .next" <<<"$OUT" | paste -sd ' ')" "0 $want null" \
        "$noun list: every item, next null"
    op "$noun" list "$@" --limit 1 --all --format json
    is "$RC $(jq -c "[.${member}[] | $key]" <<<"$OUT")" "0 $want" \
        "$noun list --limit 1 --all: the same, a page of one at a time"
    op "$noun" list "$@" --limit 1 --format json
    is "$RC $(jq -c "[.${member}[] | $key] | length" <<<"$OUT") $(jq -r '.next | type' <<<"$OUT")" \
        "0 1 string" "$noun list --limit 1: one item and the API's next"
    op "$noun" list "$@" --limit 1 --format table
    like "$(tail -n1 <<<"$ERR")" "^more: turtlectl $noun list ${*:+$* }--limit 1 --after [A-Za-z0-9_-]+\$" \
        "... in a table, the command for the next page on stderr"
}
lists tenant tenants .name '["acme","beta","delta","gamma"]'
lists peer peers .name '["hosta","hostb","hostc"]'
lists device-class device_classes .name '["edu","rng"]'
lists device devices .id '["edu-0","rng-0","rng-1","rng-2"]'
lists device devices .id '["rng-0","rng-1","rng-2"]' --class rng
ids=$(td_sql "SELECT json_group_array(id) FROM (SELECT k.id FROM tokens k JOIN tenants t ON t.id = k.tenant_id WHERE t.name = 'acme' ORDER BY k.created_at, k.id)")
lists token tokens .id "$ids" acme

# Without --format, in a pipe (as here): the table, as on a terminal; only
# --format json gives json.
for args in "tenant list" "peer list" "device-class list" "device list" "device list --class rng" \
    "token list acme" "device list --limit 1"; do
    # shellcheck disable=SC2086 # ARGS are words
    "$CTL" --socket "$TD_SOCK" $args >"$TD_DIR/default.out" 2>"$TD_DIR/default.err"
    default_rc=$?
    # shellcheck disable=SC2086
    op $args --format table
    is "$default_rc $(cat "$TD_DIR/default.out")|$(cat "$TD_DIR/default.err")" "$RC $OUT|$ERR" \
        "$args without --format in a pipe: the table, as --format table prints it"
done
ctl --socket "$TD_SOCK" --token "$delta" image list --limit 1 --all --format json
is "$RC $(jq -c '[.images[].name]' <<<"$OUT")" '0 ["a","b","c"]' "image list --limit 1 --all: every image"
op token list acme --format table
is "$RC $(grep -c -- '-' <<<"$OUT") $(grep -c 'tt_' <<<"$OUT")" "0 2 0" \
    "token list in a table: one row per token, never a secret"
op token list
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: token list: missing TENANT" "token list without TENANT: exit 2"
op image list --tenant acme
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: image list: unknown option '--tenant'" \
    "a list without a tenant filter refuses --tenant: exit 2"

# ---- read-modify-write: If-Match ------------------------------------------------------------
# An editor that changes what it is given (sed on the file) and, with
# MEANWHILE set, first runs that command: someone else's write between
# turtlectl's read and its write.
cat >"$TD_DIR/editor" <<'EOF'
#!/bin/sh
[ -z "$MEANWHILE" ] || sh -c "$MEANWHILE" >/dev/null 2>&1
sed -i "$SED" "$1"
EOF
chmod +x "$TD_DIR/editor"
export EDITOR=$TD_DIR/editor VISUAL=

SED='s/"stacks": [0-9]*/"stacks": 7/' \
    MEANWHILE="curl -s --unix-socket $TD_SOCK -X PATCH --json '{\"quota\":{\"vcpus\":3}}' http://localhost/v1/tenants/beta" \
    op tenant edit beta
is "$RC $ERR" "1 turtlectl: tenant beta was changed by someone else meanwhile; nothing was written: read it again and retry" \
    "tenant edit with a change made in between: exit 1, changed by someone else"
api_op GET /v1/tenants/beta
is "$(jb .tenant.quota.stacks) $(jb .tenant.quota.vcpus)" "4 3" \
    "... the other change stands and the edit wrote nothing"
SED='s/"stacks": [0-9]*/"stacks": 7/' MEANWHILE='' op tenant edit beta --format json
is "$RC $(jq -c '.tenant.quota | [.stacks, .vcpus]' <<<"$OUT")" "0 [7,3]" \
    "tenant edit nobody raced: applied, the rest as it was"
SED='s/x/x/' MEANWHILE='' op tenant edit beta --format table
is "$RC $OUT" "0 tenant beta: nothing changed" "an edit that changes nothing writes nothing"
SED='s/"stacks": 7/"stacks": -1/' MEANWHILE='' op tenant edit beta
is "$RC $ERR" "1 turtlectl: quota.stacks: must be between 0 and 10000" \
    "an edit turtled refuses: exit 1 with turtled's message"

SED='s/"capacity": 3/"capacity": 5/' \
    MEANWHILE="curl -s --unix-socket $TD_SOCK -X PATCH --json '{\"description\":\"busy\"}' http://localhost/v1/device-classes/rng" \
    op device-class edit rng
is "$RC $ERR" "1 turtlectl: device class rng was changed by someone else meanwhile; nothing was written: read it again and retry" \
    "device-class edit with a change made in between: exit 1"
api_op GET /v1/device-classes/rng
is "$(jb .device_class.capacity) $(jb .device_class.description)" "3 busy" "... the capacity stayed 3"
SED='s/"capacity": 3/"capacity": 5/' MEANWHILE='' op device-class edit rng --format json
is "$RC $(jq -c '.device_class | [.capacity, .description]' <<<"$OUT")" '0 [5,"busy"]' \
    "device-class edit nobody raced: applied"
EDITOR=false op tenant edit beta
is "$RC $(head -n1 <<<"$ERR")" "1 turtlectl: the editor (false) failed; nothing was changed" \
    "an editor that fails: exit 1, nothing changed"

td_done
