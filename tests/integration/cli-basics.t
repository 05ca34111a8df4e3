#!/usr/bin/env bash
# turtlectl against a live turtled: help, version and usage errors (exit 2
# with the right usage), an unreachable daemon named in the message, and the
# host, tenant and token verbs, each in json (the API's answer, compared with
# curl's), table and yaml; API errors exit 1 with the API's own message.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh
. tests/lib/turtlectl.sh


td_init
cli_init

# ---- no daemon needed: help, version, usage ------------------------------------------------------
ctl --version
is "$RC $OUT" "0 turtlectl $("$TD_BIN" --version | awk '{print $2}')" "--version: turtlectl and the project's version"
ctl --help
r=0
for noun in host tenant token image stack operation event peer; do
    grep -q "^  $noun " <<<"$OUT" || r=1
done
grep -q -- '--remote NAME' <<<"$OUT" && grep -q -- '--format FORMAT' <<<"$OUT" || r=1
ok "$((RC + r))" "--help: exit 0, every noun and the global options on stdout"
grep -q 'arrives with its API\|not available yet' <<<"$OUT"
ok $((!$?)) "... and no noun is announced as coming later"
ctl peer --help
r=0
for verb in add list show remove; do
    grep -q "turtlectl peer $verb" <<<"$OUT" || r=1
done
ok "$((RC + r))" "peer --help: exit 0, the usage of every verb"
ctl tenant --help
r=0
for verb in create list show set delete; do
    grep -q "turtlectl tenant $verb" <<<"$OUT" || r=1
done
ok "$((RC + r))" "tenant --help: exit 0, the usage of every verb"
ctl operation wait --help
grep -q 'operation cancel ID \[--wait' <<<"$OUT"
ok "$((RC + $?))" "operation wait --help: exit 0, the operation usage"

ctl
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: missing noun" "no arguments: exit 2, 'missing noun'"
grep -q '^usage: turtlectl \[GLOBAL OPTIONS\] NOUN VERB' <<<"$ERR"
ok $? "... then the main usage on stderr"
ctl frob list
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: unknown noun 'frob'" "unknown noun: exit 2 with its name"
ctl peer frob
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: peer: unknown verb 'frob'" "peer is a noun now: an unknown verb of it exits 2"
grep -q '^usage: turtlectl peer add NAME --libvirt-uri URI' <<<"$ERR"
ok $? "... then the peer usage"
ctl tenant frob
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: tenant: unknown verb 'frob'" "unknown verb: exit 2 with its name"
grep -q '^usage: turtlectl tenant create NAME' <<<"$ERR"
ok $? "... then the tenant usage, not the main one"
ctl tenant
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: tenant: missing verb" "a noun without a verb: exit 2"
ctl tenant show
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: tenant show: missing NAME" "tenant show without NAME: exit 2"
ctl token revoke acme
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: token revoke: missing ID" "token revoke without ID: exit 2"
grep -q '^usage: turtlectl token create TENANT' <<<"$ERR"
ok $? "... then the token usage"
ctl tenant show a b
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: tenant show: unexpected argument 'b'" "an extra argument: exit 2"
ctl tenant create acme --vcpus x
is "$RC $(head -n1 <<<"$ERR")" \
    "2 turtlectl: tenant create: --vcpus: must be a whole number between 0 and 100000 (not 'x')" \
    "--vcpus x: exit 2, the flag and its range"
ctl tenant create acme --stacks=-1
is "$RC" 2 "--stacks=-1 (out of range): exit 2"
ctl tenant create acme --vcpus
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: tenant create: --vcpus needs a value" "--vcpus without a value: exit 2"
ctl tenant list --bogus
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: tenant list: unknown option '--bogus'" "an unknown option: exit 2"
ctl --format xml host show
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: --format: must be table, json or yaml (not 'xml')" \
    "--format xml: exit 2"
ctl tenant set acme
is "$RC $(head -n1 <<<"$ERR")" \
    "2 turtlectl: tenant set: nothing to change (give --stacks, --vcpus, --memory-mib, --disk-gib, --devices or --networks)" \
    "tenant set without a quota option: exit 2"
ctl --socket /x --url http://127.0.0.1:1 host show
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: --remote, --socket and --url exclude each other" \
    "--socket and --url together: exit 2"
ctl --url ftp://example.com host show
is "$RC" 2 "--url ftp://...: exit 2"

# ---- unreachable ---------------------------------------------------------------------------------
ctl --socket "$TD_DIR/nosuch.sock" host show
is "$RC $ERR" "1 turtlectl: cannot reach turtled at $TD_DIR/nosuch.sock: No such file or directory" \
    "a missing socket: exit 1, the message names it and why"
TURTLES_SOCKET=$TD_DIR/nosuch2.sock ctl tenant list
is "$RC $ERR" "1 turtlectl: cannot reach turtled at $TD_DIR/nosuch2.sock: No such file or directory" \
    "\$TURTLES_SOCKET is the socket when no flag names one"
if [ -e /run/turtles/turtled.sock ] || [ -e /etc/turtles/turtlectl.ini ]; then
    skip "this machine has /run/turtles/turtled.sock or /etc/turtles/turtlectl.ini"
else
    ctl host show
    is "$RC $ERR" "1 turtlectl: cannot reach turtled at /run/turtles/turtled.sock: No such file or directory" \
        "by default: /run/turtles/turtled.sock, named in the message"
fi
ctl --url http://127.0.0.1:1 host show
is "$RC $ERR" "1 turtlectl: cannot reach turtled at http://127.0.0.1:1: Connection refused" \
    "a closed TCP port: exit 1, the URL and 'Connection refused'"

# ---- with turtled -------------------------------------------------------------------------------
td_start || bail "turtled did not start"

# host show
api_op GET /v1/host
HOST=$BODY
op host show
is "$RC" 0 "host show: exit 0"
same_json "$OUT" "$HOST" "host show: json output is GET /v1/host's answer"
op host show --format table
backend=$(jq -r .host.backend <<<"$HOST")
grep -Eq "^backend: +$backend\$" <<<"$OUT" && grep -Eq '^vmx: +(yes|no)$' <<<"$OUT" &&
    grep -Eq '^nested: +(yes|no|unknown)$' <<<"$OUT"
ok "$((RC + $?))" "host show --format table: backend $backend, vmx and nested rows"
op host show --format yaml
grep -q "^  backend: $backend\$" <<<"$OUT" && grep -q '^  cpu:$' <<<"$OUT"
ok "$((RC + $?))" "host show --format yaml: host.backend and host.cpu in block style"
yaml_matches "$OUT" "$HOST" "host show: the yaml reads back as the API's answer"

# tenant create
op tenant create acme
is "$RC" 0 "tenant create acme: exit 0"
CREATED=$OUT
api_op GET /v1/tenants/acme
same_json "$(jq .tenant <<<"$CREATED")" "$(jq .tenant <<<"$BODY")" \
    "tenant create: json .tenant is the tenant turtled now has"
is "$(jq -r '[.tenant.quota.stacks, .tenant.quota.vcpus, .tenant.quota.memory_mib, .tenant.quota.disk_gib, .token.tenant] | @tsv' <<<"$CREATED")" \
    "$(printf '4\t8\t8192\t50\tacme')" "... with the default quota and a token of acme"
td_check_body "turtlectl tenant create's json" "$(as_file create.json "$CREATED")" POST /v1/tenants 201
A=$(jq -r .token.secret <<<"$CREATED")
td_sleep_op "$A" 0
is "$STATUS" 202 "... and the token it shows works over TCP"

op tenant create beta --stacks 2 --vcpus 16 --memory-mib 4096 --disk-gib 7 --format table
is "$RC" 0 "tenant create beta with quota options, as a table: exit 0"
grep -Eq '^name: +beta$' <<<"$OUT" && grep -Eq '^quota: +2 stacks, 16 vCPUs, 4096 MiB memory, 7 GiB disk, 4 devices, 4 networks$' <<<"$OUT" &&
    grep -Eq '^token: +tt_[0-9a-f]{64}$' <<<"$OUT"
ok $? "... the table shows the name, the quota given and the token"
api_op GET /v1/tenants/beta
is "$(jb -c .tenant.quota)" '{"stacks":2,"vcpus":16,"memory_mib":4096,"disk_gib":7,"devices":4,"networks":4}' "... and turtled has that quota"

op tenant create acme
api_op POST /v1/tenants --json '{"name":"acme"}'
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "tenant create of a taken name: exit 1, the API's message ($ERR_MESSAGE)"
op tenant create Bad_Name
api_op POST /v1/tenants --json '{"name":"Bad_Name"}'
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "tenant create of a bad name: exit 1, the API's 400 message as is"

# tenant list
op tenant list
api_op GET /v1/tenants
same_json "$OUT" "$BODY" "tenant list: json output is GET /v1/tenants's answer"
op tenant list --format table
is "$(awk '{print $1}' <<<"$OUT" | paste -sd' ')" "NAME acme beta" "tenant list --format table: a header, then acme and beta"
grep -Eq '^beta +2 +16 +4096 MiB +7 GiB ' <<<"$OUT"
ok $? "... beta's row shows its quota in aligned columns"
op --format yaml tenant list
grep -q '^- id: ' <<<"$OUT" && grep -q '^  name: acme$' <<<"$OUT"
ok $? "tenant list --format yaml: a sequence with name: acme"
yaml_matches "$OUT" "$BODY" "tenant list: the yaml reads back as the API's answer"

# tenant show
op tenant show acme
api_op GET /v1/tenants/acme
same_json "$OUT" "$BODY" "tenant show: json output is GET /v1/tenants/acme's answer"
op tenant show acme --format table
grep -Eq '^name: +acme$' <<<"$OUT" && grep -Eq "^id: +$(jb -r .tenant.id)\$" <<<"$OUT"
ok $? "tenant show --format table: name and id"
op tenant show acme --format yaml
grep -q '^  name: acme$' <<<"$OUT" && grep -q '^    vcpus: 8$' <<<"$OUT"
ok $? "tenant show --format yaml: name: acme, quota.vcpus: 8"
yaml_matches "$OUT" "$BODY" "tenant show: the yaml reads back as the API's answer"
op tenant show nosuch
is "$RC $ERR" "1 turtlectl: tenant 'nosuch' not found" "tenant show nosuch: exit 1, the API's message"
is "$OUT" "" "... and nothing on stdout"

# tenant set
op tenant set acme --vcpus 32 --disk-gib 9
api_op GET /v1/tenants/acme
same_json "$OUT" "$BODY" "tenant set: json output is the tenant as turtled now has it"
is "$(jb -c .tenant.quota)" '{"stacks":4,"vcpus":32,"memory_mib":8192,"disk_gib":9,"devices":4,"networks":4}' \
    "... with the options given changed and the others kept"
op tenant set nosuch --stacks 1
is "$RC $ERR" "1 turtlectl: tenant 'nosuch' not found" "tenant set nosuch: exit 1, the API's message"

# tokens
op token create acme
is "$RC" 0 "token create acme: exit 0"
td_check_body "turtlectl token create's json" "$(as_file token.json "$OUT")" POST "/v1/tenants/{name}/tokens" 201
T2=$(jq -r .token.secret <<<"$OUT")
T2_ID=$(jq -r .token.id <<<"$OUT")
is "$(jq -r .token.tenant <<<"$OUT")" acme "... a token of acme"
td_sleep_op "$T2" 0
is "$STATUS" 202 "... that works over TCP"
op token create acme --format table
grep -Eq '^tenant: +acme$' <<<"$OUT" && grep -Eq '^token: +tt_[0-9a-f]{64}$' <<<"$OUT"
ok $? "token create --format table: tenant and token"
op token revoke acme "$T2_ID"
is "$RC $OUT" "0 " "token revoke: exit 0, nothing on stdout in json"
api_tn "$T2" POST /v1/test/sleep --json '{"seconds":0}'
is "$STATUS" 401 "... and the secret stops working"
op token revoke acme "$T2_ID"
api_op DELETE "/v1/tenants/acme/tokens/$T2_ID"
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "revoking it again: exit 1, the API's message"
op token create nosuch
is "$RC $ERR" "1 turtlectl: tenant 'nosuch' not found" "token create nosuch: exit 1, the API's message"

# tenant delete
op tenant delete beta --format table
is "$RC $OUT" "0 deleted tenant beta" "tenant delete (table): exit 0, says so"
api_op GET /v1/tenants/beta
is "$STATUS" 404 "... and beta is gone"
op tenant delete beta
is "$RC $ERR" "1 turtlectl: tenant 'beta' not found" "deleting it again: exit 1, the API's message"

# Defaults: json when stdout is not a terminal, a table when it is.
op tenant show acme
jq -e .tenant.name <<<"$OUT" >/dev/null
ok $? "without --format, stdout not a terminal: json"
if command -v script >/dev/null; then
    script -qec "$CTL --socket $TD_SOCK tenant show acme" /dev/null >"$TD_DIR/tty.out" 2>&1
    grep -Eq '^name: +acme' <(tr -d '\r' <"$TD_DIR/tty.out")
    ok $? "without --format, stdout a terminal: a table"
else
    skip "no script(1) to give turtlectl a terminal"
fi

# Operator verbs with a tenant token over TCP: the API's 403.
ctl --url "http://127.0.0.1:$TD_PORT" --token "$A" tenant list
api_tn "$A" GET /v1/tenants
td_error_fields
is "$RC $ERR $STATUS" "1 turtlectl: $ERR_MESSAGE 403" "tenant list with a tenant token: exit 1, the API's 403 message"
TURTLES_TOKEN=$A ctl --url "http://127.0.0.1:$TD_PORT/" host show
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "host show with \$TURTLES_TOKEN of a tenant: the same"
ctl --url "http://127.0.0.1:$TD_PORT" tenant list
api_tn "" GET /v1/tenants
td_error_fields
is "$RC $ERR $STATUS" "1 turtlectl: $ERR_MESSAGE 401" "no token over TCP: exit 1, the API's 401 message"

cli_done
td_done
