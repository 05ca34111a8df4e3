#!/usr/bin/env bash
# turtlectl peer add | list | show | remove against a live turtled: usage
# errors exit 2 with the verb's usage; each verb's json is the API's answer,
# its table and yaml say the same; API errors (bad URI, taken name, unknown
# peer, a tenant's token) exit 1 with the API's own message.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh
. tests/lib/turtlectl.sh

td_init
cli_init

# ---- usage errors (no daemon needed) -------------------------------------------------------
usage_error() { # MESSAGE USAGE DESC ARGS...
    local message=$1 usage=$2 desc=$3
    shift 3
    ctl --socket "$TD_DIR/nosuch.sock" "$@"
    is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: $message" "$desc"
    grep -qxF "usage: turtlectl $usage" <<<"$ERR"
    ok $? "... then its usage on stderr: $usage"
}
ADD="peer add NAME --libvirt-uri URI [--migrate-uri URI]"
usage_error "peer: missing verb" "$ADD" "peer without a verb: exit 2" peer
usage_error "peer add: missing NAME" "$ADD" "peer add without NAME: exit 2" peer add --libvirt-uri qemu:///system
usage_error "peer add: missing --libvirt-uri (qemu+tcp://HOST/system)" "$ADD" \
    "peer add without --libvirt-uri: exit 2, saying what it takes" peer add hostb
usage_error "peer add: --libvirt-uri needs a value" "$ADD" "--libvirt-uri without a value: exit 2" \
    peer add hostb --libvirt-uri
usage_error "peer add: unexpected argument 'extra'" "$ADD" "peer add with two names: exit 2" \
    peer add hostb extra --libvirt-uri qemu:///system
usage_error "peer add: unknown option '--live'" "$ADD" "an unknown option: exit 2" \
    peer add hostb --libvirt-uri qemu:///system --live
usage_error "peer add: unknown option '--libvirt'; did you mean '--libvirt-uri'?" "$ADD" \
    "--libvirt: exit 2, --libvirt-uri suggested" peer add hostb --libvirt qemu:///system
usage_error "peer list: unexpected argument 'x'" "peer list [--limit N [--after CURSOR] [--all]]" \
    "peer list with an argument: exit 2" peer list x
usage_error "peer show: missing NAME" "peer show NAME" "peer show without NAME: exit 2" peer show
usage_error "peer remove: missing NAME" "peer remove NAME" "peer remove without NAME: exit 2" peer remove
ctl --socket "$TD_DIR/nosuch.sock" peer delete hostb
is "$RC $ERR" "2 turtlectl: peer: unknown verb 'delete'
Run 'turtlectl help peer' for the list." "peer delete (the verb is remove): exit 2, where the verbs are"
ctl --socket "$TD_DIR/nosuch.sock" peer remve hostb
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: peer: unknown verb 'remve'; did you mean 'remove'?" \
    "peer remve: exit 2, remove suggested"
ctl peer --help
is "$RC $(head -n1 <<<"$OUT")" "0 usage: turtlectl $ADD" "peer --help: exit 0, the usage on stdout"
r=0
for verb in add list show remove; do grep -Eq "^  $verb +[a-z]" <<<"$OUT" || r=1; done
ok $r "... and every verb with its summary"
ctl peer add --help
grep -Eq '^  --libvirt-uri URI ' <<<"$OUT" && grep -Eq '^  --migrate-uri URI ' <<<"$OUT"
ok "$((RC + $?))" "peer add --help: exit 0, both options explained"

# ---- with turtled -------------------------------------------------------------------------
td_start || bail "turtled did not start"

# add
op peer add hostb --libvirt-uri qemu+tcp://10.0.0.2/system --migrate-uri tcp://10.0.0.2:49152
is "$RC" 0 "peer add hostb: exit 0"
ADDED=$OUT
api_op GET /v1/peers/hostb
same_json "$ADDED" "$BODY" "peer add: json output is the peer turtled now has ({\"peer\":...})"
is "$(jq -c '.peer | [.libvirt_uri, .migrate_uri]' <<<"$ADDED")" \
    '["qemu+tcp://10.0.0.2/system","tcp://10.0.0.2:49152"]' "... with both URIs as given"
td_check_body "turtlectl peer add's json" "$(as_file add.json "$ADDED")" POST /v1/peers 201

op peer add hosta --libvirt-uri qemu+ssh://root@hosta/system --format table
is "$RC" 0 "peer add hosta without --migrate-uri, as a table: exit 0"
grep -Eq '^name: +hosta$' <<<"$OUT" && grep -Eq '^libvirt uri: +qemu\+ssh://root@hosta/system$' <<<"$OUT" &&
    grep -Eq '^migrate uri: +-$' <<<"$OUT" && grep -Eq '^created: +[0-9]{4}-' <<<"$OUT"
ok $? "... the table shows name, libvirt uri, '-' for no migrate uri, created"
api_op GET /v1/peers/hosta
is "$(jb .peer.migrate_uri)" null "... and turtled has migrate_uri null"

op peer add hostb --libvirt-uri qemu+tcp://10.9.9.9/system
api_op POST /v1/peers --json '{"name":"hostb","libvirt_uri":"qemu+tcp://10.9.9.9/system"}'
td_error_fields
is "$RC $ERR $OUT" "1 turtlectl: $ERR_MESSAGE " "peer add of a taken name: exit 1, the API's message ($ERR_MESSAGE), nothing on stdout"
op peer add x --libvirt-uri 'https://hostb/system'
api_op POST /v1/peers --json '{"name":"x","libvirt_uri":"https://hostb/system"}'
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "peer add with an https URI: exit 1, the API's 400 message as is"
op peer add x --libvirt-uri qemu+tcp://h/system --migrate-uri udp://h
is "$RC $ERR" "1 turtlectl: migrate_uri: must be tcp://HOST[:PORT] or rdma://HOST[:PORT]" \
    "peer add with a udp --migrate-uri: exit 1, the API's message"
op peer add Bad_Name --libvirt-uri qemu+tcp://h/system
is "$RC" 1 "peer add of a bad name: exit 1"
like "$ERR" "^turtlectl: name: " "... and its message names the field"
api_op GET /v1/peers
is "$(jb -c '[.peers[].name]')" '["hosta","hostb"]' "... and none of the refused adds left a peer"

# list
op peer list
api_op GET /v1/peers
same_json "$OUT" "$BODY" "peer list: json output is GET /v1/peers's answer"
op peer list --format table
is "$(awk '{print $1}' <<<"$OUT" | paste -sd' ')" "NAME hosta hostb" "peer list --format table: a header, then hosta and hostb"
head -n1 <<<"$OUT" | grep -Eq '^NAME +LIBVIRT URI +MIGRATE URI +CREATED$'
ok $? "... the header names the columns"
grep -Eq '^hostb +qemu\+tcp://10\.0\.0\.2/system +tcp://10\.0\.0\.2:49152 +[0-9]{4}-' <<<"$OUT" &&
    grep -Eq '^hosta +qemu\+ssh://root@hosta/system +- +[0-9]{4}-' <<<"$OUT"
ok $? "... each row shows its URIs ('-' for none)"
op --format yaml peer list
grep -q '^peers:$' <<<"$OUT" && grep -q '^- name: hosta$' <<<"$OUT"
ok $? "peer list --format yaml: peers, a sequence with name: hosta"
yaml_matches "$OUT" "$BODY" "peer list: the yaml reads back as the API's answer"

# show
op peer show hostb
api_op GET /v1/peers/hostb
same_json "$OUT" "$BODY" "peer show: json output is GET /v1/peers/hostb's answer"
op peer show hostb --format table
grep -Eq '^name: +hostb$' <<<"$OUT" && grep -Eq '^migrate uri: +tcp://10\.0\.0\.2:49152$' <<<"$OUT"
ok $? "peer show --format table: name and migrate uri"
op peer show hostb --format yaml
yaml_matches "$OUT" "$BODY" "peer show: the yaml reads back as the API's answer"
op peer show nosuch
is "$RC $ERR $OUT" "1 turtlectl: peer 'nosuch' not found " "peer show nosuch: exit 1, the API's message, nothing on stdout"

# A tenant's token: the API's 403.
td_tenant acme || bail "no tenant acme"
ctl --url "http://127.0.0.1:$TD_PORT" --token "$TOKEN" peer list
api_tn "$TOKEN" GET /v1/peers
td_error_fields
is "$RC $ERR $STATUS" "1 turtlectl: $ERR_MESSAGE 403" "peer list with a tenant token: exit 1, the API's 403 message"
ctl --url "http://127.0.0.1:$TD_PORT" --token "$TOKEN" peer remove hostb
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "peer remove with a tenant token: exit 1, the same"

# remove
op peer remove hostb
is "$RC $OUT" "0 " "peer remove hostb: exit 0, nothing on stdout in json"
api_op GET /v1/peers/hostb
is "$STATUS" 404 "... and hostb is gone"
op peer remove hosta --format table
is "$RC $OUT" "0 removed peer hosta" "peer remove (table): exit 0, says so"
op peer remove hosta
is "$RC $ERR" "1 turtlectl: peer 'hosta' not found" "removing it again: exit 1, the API's message"
op peer list --format table
is "$RC $OUT" "0 NAME  LIBVIRT URI  MIGRATE URI  CREATED" "peer list with no peers (table): the header only"
op peer list
is "$RC $(jq -c . <<<"$OUT")" '0 {"peers":[],"next":null}' "... and in json an empty list"

cli_done
td_done
