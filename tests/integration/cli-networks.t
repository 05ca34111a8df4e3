#!/usr/bin/env bash
# turtlectl network create | list | show | delete, stack create --nic, the
# NICs of stack show and the tenant's networks quota against a live turtled
# (test backend): usage errors exit 2 with the verb's usage; each verb's
# json is the API's answer and its table says the same; nat by default,
# isolated with a subnet of its own, the operator's external network shared
# with a tenant; API errors (a bad subnet, a taken name, another tenant's
# network, a NIC on an unknown network, a network in use) exit 1 with the
# API's own message.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh
. tests/lib/turtlectl.sh

td_init
cli_init

NC="network create NAME [--mode nat|isolated] [--cidr CIDR]"
cli_usage_is "network: missing verb" "$NC" "network without a verb: exit 2" network
ctl --socket "$TD_DIR/nosuch.sock" network add lab
is "$RC $ERR" "2 turtlectl: network: unknown verb 'add'
Run 'turtlectl help network' for the list." "network add (the verb is create): exit 2, where the verbs are"
ctl --socket "$TD_DIR/nosuch.sock" network delte lab
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: network: unknown verb 'delte'; did you mean 'delete'?" \
    "network delte: exit 2, delete suggested"
cli_usage_is "network create: missing NAME" "$NC" "network create without NAME: exit 2" network create
cli_usage_is "network create: --mode: must be nat, isolated or external (not 'bridge')" "$NC" \
    "--mode bridge: exit 2" network create lab --mode bridge
cli_usage_is "network create: missing --bridge BRIDGE for --mode external" "$NC" \
    "an external network without --bridge: exit 2" network create public --mode external
grep -qF '       turtlectl network create NAME --mode external --bridge BRIDGE' <<<"$ERR"
ok $? "... and its external form"
cli_usage_is "network create: --cidr goes with --mode nat or isolated" "$NC" \
    "an external network with --cidr: exit 2" \
    network create public --mode external --bridge eth1 --cidr 10.9.9.0/24
cli_usage_is "network create: --bridge and --share go with --mode external" "$NC" \
    "a nat network with --bridge: exit 2" network create lab --bridge eth1
cli_usage_is "network create: --bridge and --share go with --mode external" "$NC" \
    "an isolated network with --share: exit 2" network create lab --mode isolated --share acme
cli_usage_is "network create: --cidr needs a value" "$NC" "--cidr without a value: exit 2" \
    network create lab --cidr
cli_usage_is "network create: unexpected argument 'extra'" "$NC" "network create with two names: exit 2" \
    network create lab extra
cli_usage_is "network create: unknown option '--bridg'; did you mean '--bridge'?" "$NC" \
    "--bridg: exit 2, --bridge suggested" network create public --mode external --bridg br0
NL="network list [--tenant TENANT]"
cli_usage_is "network list: unexpected argument 'x'" "$NL" "network list with an argument: exit 2" network list x
cli_usage_is "network list: --limit: must be a whole number between 1 and 1000 (not '0')" "$NL" \
    "network list --limit 0: exit 2" network list --limit 0
cli_usage_is "network show: missing NAME" "network show NAME [--tenant TENANT]" "network show without NAME: exit 2" \
    network show
cli_usage_is "network show: unknown option '--mode'" "network show NAME [--tenant TENANT]" "network show --mode: exit 2" \
    network show lab --mode nat
cli_usage_is "network delete: missing NAME" "network delete NAME [--tenant TENANT]" \
    "network delete without NAME: exit 2" network delete

SC="stack create NAME --vcpus N --memory MIB"
NIC_FORM="must be NETWORK[,mac=MAC], NETWORK a network name: 1-63 lowercase letters, digits and '-'"
for nic in "lab,foo" "lab,mac=" "Lab" ",mac=52:54:00:aa:bb:cc" "lab,mac=52:54:00:aa:bb:cc,mac=52:54:00:aa:bb:cd"; do
    cli_usage_is "stack create: --nic: $NIC_FORM (not '$nic')" "$SC" "stack create --nic '$nic': exit 2" \
        stack create web --vcpus 1 --memory 256 --kernel k --nic "$nic"
done
cli_usage_is "stack create: --nic needs a value" "$SC" "stack create --nic without a value: exit 2" \
    stack create web --vcpus 1 --memory 256 --kernel k --nic
nine=()
for i in 1 2 3 4 5 6 7 8 9; do nine+=(--nic "lab$i"); done
cli_usage_is "stack create: at most 8 --nic options" "$SC" "stack create with nine --nic: exit 2" \
    stack create web --vcpus 1 --memory 256 --kernel k "${nine[@]}"
printf '{"name":"web","vcpus":1,"memory_mib":256,"boot":{"kernel":"k"}}' >"$TD_DIR/spec.json"
cli_usage_is "stack create: --file excludes the spec options (--vcpus, --memory, --kernel, ...)" "$SC" \
    "stack create --file with --nic: exit 2" stack create --file "$TD_DIR/spec.json" --nic lab
cli_usage_is "tenant create: --networks: must be a whole number between 0 and 1024 (not '1025')" \
    "tenant create NAME [--stacks N]" "tenant create --networks 1025: exit 2" tenant create acme --networks 1025

ctl network --help
r=0
for verb in create list show delete; do grep -q "turtlectl network $verb" <<<"$OUT" || r=1; done
for opt in --mode --cidr --bridge --share --tenant --limit; do grep -q -- "$opt" <<<"$OUT" || r=1; done
ok "$((RC + r))" "network --help: exit 0, every verb and option on stdout"
ctl stack --help
grep -q -- '--nic NETWORK\[,mac=MAC\]' <<<"$OUT"
ok "$((RC + $?))" "stack --help: exit 0, --nic NETWORK[,mac=MAC]"
ctl tenant --help
grep -q -- '--networks N' <<<"$OUT"
ok "$((RC + $?))" "tenant --help: exit 0, --networks N"
ctl --help
grep -q '^  network ' <<<"$OUT"
ok "$((RC + $?))" "--help: lists the network noun"

# ---- with turtled -------------------------------------------------------------------------
td_start || bail "turtled did not start"
td_tenant acme || bail "no tenant acme"
A=$TOKEN
ta() { ctl --url "http://127.0.0.1:$TD_PORT" --token "$A" "$@"; }

# the networks quota
op tenant create beta --networks 1 --format table
is "$RC" 0 "tenant create beta --networks 1: exit 0"
grep -Eq '^quota: +4 stacks, 8 vCPUs, 8192 MiB memory, 50 GiB disk, 4 devices, 1 networks$' <<<"$OUT"
ok $? "... the table's quota says 1 networks"
B=$(sed -n 's/^token: *//p' <<<"$OUT")
api_op GET /v1/tenants/beta
is "$(jb .tenant.quota.networks)" 1 "... and turtled has quota.networks 1"
op tenant set beta --networks 2
api_op GET /v1/tenants/beta
is "$RC $(jb .tenant.quota.networks)" "0 2" "tenant set beta --networks 2: exit 0, quota.networks 2"
op tenant list --format table
head -n1 <<<"$OUT" | grep -Eq ' DEVICES +NETWORKS +CREATED$' && grep -Eq '^beta +4 +8 +8192 MiB +50 GiB +4 +2 +' <<<"$OUT"
ok $? "tenant list --format table: a NETWORKS column (beta's 2)"
op tenant show acme --format table
grep -Eq '^quota: .*, 4 devices, 4 networks$' <<<"$OUT"
ok $? "tenant show --format table: acme's default 4 networks"

# create: nat by default, isolated with a subnet
ta network create lab
is "$RC" 0 "network create lab (a tenant's): exit 0"
CREATED=$OUT
api_tn "$A" GET /v1/networks/lab
same_json "$CREATED" "$BODY" "... json output is the network turtled now has ({\"network\":...})"
is "$(jq -c '.network | [.name, .tenant, .mode, .cidr, .gateway, .nics]' <<<"$CREATED")" \
    '["lab","acme","nat","10.200.0.0/24","10.200.0.1",0]' "... nat by default, the pool's first /24"
td_check_body "turtlectl network create's json" "$(as_file net.json "$CREATED")" POST /v1/networks 201
LAB_BRIDGE=$(jq -r .network.bridge <<<"$CREATED")

ta network create backplane --mode isolated --cidr 10.201.7.0/24 --format table
is "$RC" 0 "network create backplane --mode isolated --cidr 10.201.7.0/24 as a table: exit 0"
grep -Eq '^name: +backplane$' <<<"$OUT" && grep -Eq '^tenant: +acme$' <<<"$OUT" &&
    grep -Eq '^mode: +isolated$' <<<"$OUT" && grep -Eq '^cidr: +10\.201\.7\.0/24$' <<<"$OUT" &&
    grep -Eq '^gateway: +10\.201\.7\.1$' <<<"$OUT" && grep -Eq '^nics: +0$' <<<"$OUT" &&
    grep -Eq '^created: +[0-9]{4}-' <<<"$OUT" && ! grep -q '^shared with:' <<<"$OUT"
ok $? "... the table: name, tenant, mode, cidr, gateway, nics, created (no shared with)"

# errors: the API's messages, nothing created
ta network create lab
api_tn "$A" POST /v1/networks --json '{"name":"lab","mode":"nat"}'
td_error_fields
is "$RC $ERR $OUT" "1 turtlectl: $ERR_MESSAGE " "a taken name: exit 1, the API's message ($ERR_MESSAGE), nothing on stdout"
ta network create x --cidr 10.9.9.1/24
api_tn "$A" POST /v1/networks --json '{"name":"x","mode":"nat","cidr":"10.9.9.1/24"}'
td_error_fields
is "$RC $ERR $ERR_STATUS" "1 turtlectl: $ERR_MESSAGE 400" "--cidr with host bits set: exit 1, the API's 400 message ($ERR_MESSAGE)"
ta network create x --mode isolated --cidr 10.200.0.128/25
api_tn "$A" POST /v1/networks --json '{"name":"x","mode":"isolated","cidr":"10.200.0.128/25"}'
td_error_fields
is "$RC $ERR $ERR_STATUS" "1 turtlectl: $ERR_MESSAGE 409" "a subnet inside lab's: exit 1, the API's 409 message"
ta network create Bad_Name
is "$RC" 1 "a bad name: exit 1 (the API judges names)"
like "$ERR" "^turtlectl: name: " "... and its message names the field"
ta network create ext --mode external --bridge eth1
api_tn "$A" POST /v1/networks --json '{"name":"ext","mode":"external","bridge":"eth1","shared_with":[]}'
td_error_fields
is "$RC $ERR $ERR_STATUS" "1 turtlectl: $ERR_MESSAGE 403" "a tenant's external network: exit 1, the API's 403 message"
op network create mine
api_op POST /v1/networks --json '{"name":"mine","mode":"nat"}'
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "the operator's nat network: exit 1, the API's message"
api_tn "$A" GET /v1/networks
is "$(jb -c '[.networks[].name]')" '["backplane","lab"]' "... and none of the refused creates left a network"

# external: the operator's, shared with acme
op network create public --mode external --bridge eth1 --share acme
is "$RC" 0 "network create public --mode external --bridge eth1 --share acme (operator): exit 0"
is "$(jq -c '.network | [.tenant, .mode, .cidr, .bridge, .shared_with]' <<<"$OUT")" \
    '[null,"external",null,"eth1",["acme"]]' "... external on eth1, shared with acme"
op network create uplink --mode external --bridge br-nosuch --share acme --share beta
api_op POST /v1/networks --json '{"name":"uplink","mode":"external","bridge":"br-nosuch","shared_with":["acme","beta"]}'
td_error_fields
is "$RC $ERR $ERR_STATUS" "1 turtlectl: $ERR_MESSAGE 400" "a bridge the host lacks: exit 1, the API's message ($ERR_MESSAGE)"
op network show public --format table
grep -Eq '^tenant: +-$' <<<"$OUT" && grep -Eq '^mode: +external$' <<<"$OUT" &&
    grep -Eq '^cidr: +-$' <<<"$OUT" && grep -Eq '^bridge: +eth1$' <<<"$OUT" &&
    grep -Eq '^shared with: +acme$' <<<"$OUT"
ok $? "network show public (table): no tenant, no cidr, bridge eth1, shared with acme"
ctl --url "http://127.0.0.1:$TD_PORT" --token "$B" network show public
api_tn "$B" GET /v1/networks/public
td_error_fields
is "$RC $ERR $ERR_STATUS" "1 turtlectl: $ERR_MESSAGE 404" "beta, not named, cannot see it: exit 1, the API's 404 message"

# list
ta network list
api_tn "$A" GET /v1/networks
same_json "$OUT" "$BODY" "network list (acme): json output is GET /v1/networks's answer"
is "$(jq -c '[.networks[].name]' <<<"$OUT")" '["public","backplane","lab"]' "... the external one, then its own"
ta network list --format table
head -n1 <<<"$OUT" | grep -Eq '^NAME +TENANT +MODE +CIDR +GATEWAY +BRIDGE +NICS$'
ok $? "network list --format table: the header names the columns"
is "$(awk 'NR > 1 {print $1}' <<<"$OUT" | paste -sd' ')" "public backplane lab" "... a row per network"
grep -Eq '^public +- +external +- +- +eth1 +0$' <<<"$OUT" &&
    grep -Eq '^backplane +acme +isolated +10\.201\.7\.0/24 +10\.201\.7\.1 +tn[0-9a-f]{12} +0$' <<<"$OUT" &&
    grep -Eq "^lab +acme +nat +10\\.200\\.0\\.0/24 +10\\.200\\.0\\.1 +$LAB_BRIDGE +0$" <<<"$OUT"
ok $? "... each row: tenant, mode, cidr, gateway, bridge, nics ('-' for none)"
ta network list --format yaml
grep -q '^networks:$' <<<"$OUT" && grep -q '^- id: ' <<<"$OUT"
ok $? "network list --format yaml: networks, a sequence"
yaml_matches "$OUT" "$BODY" "... the yaml reads back as the API's answer"

ctl --url "http://127.0.0.1:$TD_PORT" --token "$B" network create lab
is "$RC $(jq -r .network.cidr <<<"$OUT")" "0 10.200.1.0/24" "beta's own lab: exit 0, the next free /24"
op network list
api_op GET /v1/networks
same_json "$OUT" "$BODY" "the operator's network list: every network, the API's answer"
is "$(jq -c '[.networks[] | [.tenant, .name]]' <<<"$OUT")" \
    '[[null,"public"],["acme","backplane"],["acme","lab"],["beta","lab"]]' "... everyone's"
op network list --tenant beta --format table
is "$(awk 'NR > 1 {print $1, $2}' <<<"$OUT" | paste -sd,)" "lab beta" "network list --tenant beta: beta's only"
op network list --limit 2
api_op GET '/v1/networks?limit=2'
same_json "$OUT" "$BODY" "network list --limit 2: one page, the API's answer as is"
CURSOR=$(jq -r .next <<<"$OUT")
op network list --limit 2 --format table
is "$(head -n1 "$TD_DIR/ctl.err")" "more: turtlectl network list --limit 2 --after $CURSOR" \
    "... in a table, the next page's command on stderr"
op network list --limit 2 --after "$CURSOR"
is "$(jq -c '[[.networks[] | [.tenant, .name]], .next]' <<<"$OUT")" '[[["acme","lab"],["beta","lab"]],null]' \
    "network list --limit 2 --after CURSOR: the last page"
op network list --limit 1 --all
api_op GET /v1/networks
same_json "$OUT" "$BODY" "network list --limit 1 --all: every page, merged as one answer"
ta network list --tenant beta
api_tn "$A" GET '/v1/networks?tenant=beta'
td_error_fields
is "$RC $ERR $ERR_STATUS" "1 turtlectl: $ERR_MESSAGE 403" "a tenant's network list --tenant: exit 1, the API's 403 message"

# show
ta network show lab
api_tn "$A" GET /v1/networks/lab
same_json "$OUT" "$BODY" "network show lab (acme): json output is the API's answer"
op network show lab --tenant beta
api_op GET '/v1/networks/lab?tenant=beta'
same_json "$OUT" "$BODY" "network show lab --tenant beta (operator): beta's lab"
is "$(jq -r .network.tenant <<<"$OUT")" beta "... which is beta's"
op network show lab --tenant beta --format yaml
yaml_matches "$OUT" "$BODY" "... as yaml, the API's answer"
ctl --url "http://127.0.0.1:$TD_PORT" --token "$B" network show backplane
api_tn "$B" GET /v1/networks/backplane
td_error_fields
is "$RC $ERR $OUT" "1 turtlectl: $ERR_MESSAGE " "acme's network shown to beta: exit 1, the API's 404 message, nothing on stdout"

# stack create --nic: the test backend stores no image, so only the
# errors: a NIC on a network the tenant cannot use is the API's 404.
ta stack create web --vcpus 1 --memory 256 --kernel k --nic nosuch
api_tn "$A" POST /v1/stacks --json '{"name":"web","vcpus":1,"memory_mib":256,"boot":{"kernel":"k"},"nics":[{"network":"nosuch"}]}'
td_error_fields
is "$RC $ERR $ERR_STATUS" "1 turtlectl: $ERR_MESSAGE 404" "stack create --nic nosuch: exit 1, the API's 404 message ($ERR_MESSAGE)"
like "$ERR" "nics\\[0\\]\\.network: network 'nosuch' not found" "... naming the NIC"
ctl --url "http://127.0.0.1:$TD_PORT" --token "$B" stack create web --vcpus 1 --memory 256 --kernel k \
    --nic lab --nic public
api_tn "$B" POST /v1/stacks --json '{"name":"web","vcpus":1,"memory_mib":256,"boot":{"kernel":"k"},"nics":[{"network":"lab"},{"network":"public"}]}'
td_error_fields
is "$RC $ERR $ERR_STATUS" "1 turtlectl: $ERR_MESSAGE 404" "beta's second NIC on public (not shared with it): exit 1, the API's 404"
ta stack create web --vcpus 1 --memory 256 --kernel k --nic lab,mac=01:00:5E:00:00:01
api_tn "$A" POST /v1/stacks --json '{"name":"web","vcpus":1,"memory_mib":256,"boot":{"kernel":"k"},"nics":[{"network":"lab","mac":"01:00:5e:00:00:01"}]}'
td_error_fields
is "$RC $ERR $ERR_STATUS" "1 turtlectl: $ERR_MESSAGE 400" "--nic lab,mac=MULTICAST (upper case): exit 1, the API's 400 on the lower-case MAC"
is "$(td_sql "SELECT count(*) FROM stacks")" 0 "... none of them made a stack"

# stack show with NICs: a stack row written as a create writes it (the test
# backend stores no image, so it creates no stack), one NIC with a lease.
lab_id=$(jq -r .network.id <<<"$CREATED")
sql_write() { sqlite3 -cmd '.timeout 5000' -cmd 'PRAGMA foreign_keys = ON' "$TD_STATE/turtled.db" "$1"; }
sql_write "
    INSERT INTO stacks (id, tenant_id, name, spec_json, vcpus, memory_mib, state, created_at, updated_at)
        SELECT '11111111-1111-4111-8111-111111111111', id, 'web',
            '{\"name\":\"web\",\"vcpus\":1,\"memory_mib\":256,\"boot\":{\"kernel\":\"k\"},\"nics\":[{\"network\":\"lab\",\"mac\":\"52:54:00:00:00:01\"},{\"network\":\"public\",\"mac\":\"52:54:00:00:00:02\"}]}',
            1, 256, 'stopped', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'
        FROM tenants WHERE name = 'acme';
    INSERT INTO stack_nics (stack_id, seq, network_id, mac, ip)
        VALUES ('11111111-1111-4111-8111-111111111111', 0, '$lab_id', '52:54:00:00:00:01', '10.200.0.5');
    INSERT INTO stack_nics (stack_id, seq, network_id, mac)
        SELECT '11111111-1111-4111-8111-111111111111', 1, id, '52:54:00:00:00:02'
        FROM networks WHERE name = 'public'" >/dev/null
ta stack show web
api_tn "$A" GET /v1/stacks/web
same_json "$OUT" "$BODY" "stack show web: json output is the API's answer"
is "$(jq -c '[.stack.nics[] | [.network, .mac, .ip]]' <<<"$OUT")" \
    '[["lab","52:54:00:00:00:01","10.200.0.5"],["public","52:54:00:00:00:02",null]]' \
    "... with its NICs: network, MAC, the leased IPv4 or null"
ta stack show web --format table
grep -Eq '^nics: +lab \(52:54:00:00:00:01, 10\.200\.0\.5\), public \(52:54:00:00:00:02, -\)$' <<<"$OUT"
ok $? "stack show --format table: each NIC's network, MAC and IPv4 ('-' while none)"

# delete
ta network delete lab
api_tn "$A" DELETE /v1/networks/lab
td_error_fields
is "$RC $ERR $ERR_STATUS" "1 turtlectl: $ERR_MESSAGE 409" "network delete of a network in use: exit 1, the API's 409 ($ERR_MESSAGE)"
sql_write "DELETE FROM stacks WHERE name = 'web'" >/dev/null
ta network delete public
api_tn "$A" DELETE /v1/networks/public
td_error_fields
is "$RC $ERR $ERR_STATUS" "1 turtlectl: $ERR_MESSAGE 403" "a tenant's delete of the external network: exit 1, the API's 403"
ta network delete lab
is "$RC $OUT" "0 " "network delete lab (json): exit 0, nothing on stdout"
api_tn "$A" GET /v1/networks/lab
is "$STATUS" 404 "... and lab is gone"
ta network delete backplane --format table
is "$RC $OUT" "0 deleted network backplane" "network delete (table): exit 0, says so"
ta network delete backplane
api_tn "$A" DELETE /v1/networks/backplane
td_error_fields
is "$RC $ERR $ERR_STATUS" "1 turtlectl: $ERR_MESSAGE 404" "deleting it again: exit 1, the API's 404 message"
op network delete lab --tenant beta --format table
is "$RC $OUT" "0 deleted network lab" "network delete lab --tenant beta (operator): exit 0"
op network delete public
is "$RC" 0 "network delete public (operator): exit 0"
op network list --format table
is "$RC $OUT" "0 NAME  TENANT  MODE  CIDR  GATEWAY  BRIDGE  NICS" "network list with no networks (table): the header only"
op network list
is "$RC $(jq -c . <<<"$OUT")" '0 {"networks":[],"next":null}' "... and in json an empty list"

cli_done
td_done
