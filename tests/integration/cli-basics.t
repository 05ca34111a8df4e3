#!/usr/bin/env bash
# turtlectl against a live turtled: help at each level (help and --help
# alike), did-you-mean for nouns, verbs and options, version and usage errors
# (exit 2 with the verb's usage), an unreachable daemon named in the message,
# and the host, tenant and token verbs, each in json (the API's answer,
# compared with curl's), table and yaml; tables by default, in a pipe as on
# a terminal; API errors exit 1 with the API's own message.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh
. tests/lib/turtlectl.sh


td_init
cli_init

# ---- no daemon needed: help at each level --------------------------------------------------------
ctl --version
is "$RC $OUT" "0 turtlectl $("$TD_BIN" --version | awk '{print $2}')" "--version: turtlectl and the project's version"

# help_pair DESC HELP-WORDS...: `turtlectl help WORDS` and `turtlectl WORDS
# --help` both exit 0 with nothing on stderr and the same text on stdout
# (in OUT afterwards).
help_pair() {
    local desc=$1 flag_rc flag_out flag_err
    shift
    ctl "$@" --help
    flag_rc=$RC flag_out=$OUT flag_err=$ERR
    ctl help "$@"
    is "$RC $flag_rc [$ERR$flag_err]" "0 0 []" "$desc: exit 0 both ways, nothing on stderr"
    is "$OUT" "$flag_out" "... and \`help $*\` prints what \`$* --help\` prints"
}
# has_lines DESC PATTERN...: every extended regular expression matches a line of OUT.
has_lines() {
    local desc=$1 pattern missing=()
    shift
    for pattern in "$@"; do
        grep -Eq -- "$pattern" <<<"$OUT" || missing+=("$pattern")
    done
    is "${missing[*]}" "" "$desc"
}

help_pair "help (no noun)"
has_lines "help: the usage, every noun and the global options" \
    '^usage: turtlectl \[GLOBAL OPTIONS\] NOUN VERB \[ARGUMENTS\]$' \
    '^  host ' '^  tenant ' '^  token ' '^  image ' '^  stack ' '^  operation ' '^  event ' \
    '^  peer ' '^  device-class ' '^  device ' '^  network ' '^  remote ' \
    '^  --socket PATH ' '^  --url URL ' '^  --remote NAME ' '^  --token TOKEN ' \
    '^  --cacert FILE ' '^  --format FORMAT '
grep -q 'arrives with its API\|not available yet' <<<"$OUT"
ok $((!$?)) "... and no noun is announced as coming later"

STACK_VERBS=(create list show start stop force-stop reboot pause resume delete console stats migrate device)
help_pair "help stack" stack
patterns=('^usage: turtlectl stack create NAME ' '^       turtlectl stack list ' '^       turtlectl stack device attach NAME CLASS \[--wait\]$')
for verb in "${STACK_VERBS[@]}"; do patterns+=("^  $verb +[^ ]"); done
has_lines "help stack: the usage of each verb (sub-verbs too), then every verb with its summary" "${patterns[@]}"

help_pair "help stack create" stack create
has_lines "help stack create: its usage and every option it takes, explained" \
    '^usage: turtlectl stack create NAME --vcpus N --memory MIB$' '^       turtlectl stack create \[NAME\] --file FILE ' \
    '^  --vcpus N ' '^  --memory MIB ' '^  --kernel IMAGE ' '^  --initrd IMAGE ' '^  --cmdline TEXT ' \
    '^  --disk IMAGE ' '^  --cpu ' '^  --iommu ' '^  --device CLASS ' '^  --nic NETWORK' '^  --firmware ' \
    '^  --secure-boot ' '^  --user-data FILE ' '^  --meta-data FILE ' '^  --hostname HOSTNAME' \
    '^  --ssh-key FILE ' '^  --no-start ' '^  --wait ' '^  --file FILE '
grep -q 'turtlectl stack list' <<<"$OUT"
ok $((!$?)) "... and not the other verbs' usage"

help_pair "help stack device" stack device
has_lines "help stack device: the usage of attach and detach, and both verbs" \
    '^usage: turtlectl stack device attach NAME CLASS \[--wait\]$' \
    '^       turtlectl stack device detach NAME DEVICE-ID \[--wait\]$' '^  attach +[a-z]' '^  detach +[a-z]'
help_pair "help stack device attach" stack device attach
has_lines "help stack device attach: its usage and --wait" \
    '^usage: turtlectl stack device attach NAME CLASS \[--wait\]$' '^  --wait '
is "$(grep -c '^usage: ' <<<"$OUT")" 1 "... one usage, of that verb alone"

ctl help nosuch
is "$RC $ERR [$OUT]" "2 turtlectl: unknown noun 'nosuch'
Run 'turtlectl help' for the list. []" "help nosuch: exit 2, says so and where the list is (no suggestion when none is close)"
ctl help stakc
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: unknown noun 'stakc'; did you mean 'stack'?" \
    "help stakc: exit 2 with a suggestion"
ctl help stack lsit
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: stack: unknown verb 'lsit'; did you mean 'list'?" \
    "help stack lsit: exit 2 with a suggestion"

# The nouns of the tenant, token, peer, device-class, device, network and
# remote commands (cli-images.t and cli-operations.t check the others'):
# each noun lists every verb with a summary, each verb's help is the same
# both ways, shows its usage first and explains under Options exactly the
# options its usage names, which the verb takes.
for noun in tenant token peer device-class device network remote; do
    ctl help "$noun"
    mapfile -t verbs < <(sed -n '/^Verbs:$/,/^$/s/^  \([a-z-]*\)  .*/\1/p' <<<"$OUT")
    cli_noun_help_ok "$noun" "${verbs[@]}"
    for verb in "${verbs[@]}"; do
        cli_verb_help_ok "$noun" "$verb"
    done
done

# ---- suggestions and usage errors -----------------------------------------------------------------
# suggests DESC FIRST-LINE ARGS...: turtlectl ARGS (no daemon) exits 2 with
# FIRST-LINE first on stderr, nothing on stdout.
suggests() {
    local desc=$1 first=$2
    shift 2
    ctl --socket "$TD_DIR/nosuch.sock" "$@"
    is "$RC $(head -n1 <<<"$ERR") [$OUT]" "2 turtlectl: $first []" "$desc"
}
suggests "a typo in a noun: exit 2 with a suggestion" "unknown noun 'stakc'; did you mean 'stack'?" stakc list
is "$(wc -l <<<"$ERR") $(tail -n1 <<<"$ERR")" "2 Run 'turtlectl help' for the list." \
    "... and where the list is, not the whole usage"
suggests "a typo in a verb: exit 2 with a suggestion" "stack: unknown verb 'lsit'; did you mean 'list'?" stack lsit
is "$(wc -l <<<"$ERR") $(tail -n1 <<<"$ERR")" "2 Run 'turtlectl help stack' for the list." \
    "... and where the stack verbs are"
suggests "a typo in an option: exit 2 with a suggestion" \
    "stack create: unknown option '--vcpu'; did you mean '--vcpus'?" stack create web --vcpu 2
grep -q '^usage: turtlectl stack create NAME ' <<<"$ERR" && ! grep -q 'turtlectl stack list' <<<"$ERR" &&
    [ "$(tail -n1 <<<"$ERR")" = "Run 'turtlectl help stack create' for more." ]
ok $? "... then the usage of stack create alone and where its help is"
suggests "a typo in a global option: exit 2 with a suggestion" \
    "unknown option '--fromat'; did you mean '--format'?" --fromat json tenant list
suggests "a typo in tenant: the noun suggested" "unknown noun 'tenat'; did you mean 'tenant'?" tenat list
suggests "a typo in device-class: the noun suggested" "unknown noun 'device-clas'; did you mean 'device-class'?" \
    device-clas list
suggests "a typo in a tenant verb: the verb suggested" "tenant: unknown verb 'craete'; did you mean 'create'?" \
    tenant craete acme
suggests "a typo in a network option: the option suggested" \
    "network create: unknown option '--mod'; did you mean '--mode'?" network create lab --mod nat
suggests "a typo in a tenant quota option: the option suggested" \
    "tenant set: unknown option '--vcpu'; did you mean '--vcpus'?" tenant set acme --vcpu 4
grep -q '^usage: turtlectl tenant set NAME \[--stacks N\] \[--vcpus N\]' <<<"$ERR"
ok $? "... then the usage of tenant set, naming its options"
suggests "a word unlike any noun: no suggestion" "unknown noun 'frob'" frob list

ctl
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: missing noun" "no arguments: exit 2, 'missing noun'"
grep -q '^usage: turtlectl \[GLOBAL OPTIONS\] NOUN VERB' <<<"$ERR"
ok $? "... then the main usage on stderr"
ctl peer frob
is "$RC $ERR" "2 turtlectl: peer: unknown verb 'frob'
Run 'turtlectl help peer' for the list." "an unknown verb of peer: exit 2, where peer's verbs are"
ctl tenant
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: tenant: missing verb" "a noun without a verb: exit 2"
grep -q '^usage: turtlectl tenant create NAME' <<<"$ERR" && grep -q '^       turtlectl tenant delete NAME$' <<<"$ERR"
ok $? "... then the usage of the tenant verbs, not the main one"
ctl tenant show
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: tenant show: missing NAME" "tenant show without NAME: exit 2"
is "$(grep -c turtlectl <<<"$ERR") $(grep -c '^usage: turtlectl tenant show NAME$' <<<"$ERR")" "3 1" \
    "... then the usage of tenant show alone and where its help is"
ctl token revoke acme
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: token revoke: missing ID" "token revoke without ID: exit 2"
grep -q '^usage: turtlectl token revoke TENANT ID$' <<<"$ERR" && grep -q '^       turtlectl token revoke --operator ID$' <<<"$ERR"
ok $? "... then both forms of token revoke"
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
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: --format: must be table, json, yaml or csv (not 'xml')" \
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
is "$RC $ERR" "1 turtlectl: cannot reach turtled at $TD_DIR/nosuch.sock: No such file or directory (is turtled running? systemctl start turtled.socket; another turtled: --socket PATH, --url URL or --remote NAME)" \
    "a missing socket: exit 1, the message names it and why"
TURTLES_SOCKET=$TD_DIR/nosuch2.sock ctl tenant list
is "$RC $ERR" "1 turtlectl: cannot reach turtled at $TD_DIR/nosuch2.sock: No such file or directory (is turtled running? systemctl start turtled.socket; another turtled: --socket PATH, --url URL or --remote NAME)" \
    "\$TURTLES_SOCKET is the socket when no flag names one"
if [ -e /run/turtles/turtled.sock ] || [ -e /etc/turtles/turtlectl.ini ]; then
    skip "this machine has /run/turtles/turtled.sock or /etc/turtles/turtlectl.ini"
else
    ctl host show
    is "$RC $ERR" "1 turtlectl: cannot reach turtled at /run/turtles/turtled.sock: No such file or directory (is turtled running? systemctl start turtled.socket; another turtled: --socket PATH, --url URL or --remote NAME)" \
        "by default: /run/turtles/turtled.sock, named in the message"
fi
ctl --url http://127.0.0.1:1 host show
is "$RC $ERR" "1 turtlectl: cannot reach turtled at http://127.0.0.1:1: Connection refused (is turtled listening there? its listen setting in turtled.conf)" \
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
like "$ERR" "^turtlectl: name: " "... naming the field"

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

# Tables by default, on a terminal or in a pipe alike (as virsh and incus
# print them); scripts ask for --format json.  Two stacks of acme, written
# as a create writes them (the test backend stores no image, so it creates
# no stack), give stack list rows.
sqlite3 -cmd '.timeout 5000' "$TD_STATE/turtled.db" "
    INSERT INTO stacks (id, tenant_id, name, spec_json, vcpus, memory_mib, state, created_at, updated_at)
        SELECT '11111111-1111-4111-8111-111111111111', id, 'web',
            '{\"name\":\"web\",\"vcpus\":1,\"memory_mib\":256,\"boot\":{\"kernel\":\"k\"}}',
            1, 256, 'stopped', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'
        FROM tenants WHERE name = 'acme';
    INSERT INTO stacks (id, tenant_id, name, spec_json, vcpus, memory_mib, state, created_at, updated_at)
        SELECT '22222222-2222-4222-8222-222222222222', id, 'db',
            '{\"name\":\"db\",\"vcpus\":2,\"memory_mib\":512,\"boot\":{\"kernel\":\"k\"}}',
            2, 512, 'stopped', '2026-01-01T00:00:01Z', '2026-01-01T00:00:01Z'
        FROM tenants WHERE name = 'acme'" >/dev/null
api_op POST /v1/tenants --json '{"name":"zeta"}'
# same_table NOUN WANT-NAMES: `turtlectl NOUN list` without --format prints
# the same bytes in a pipe as on a terminal (script(1) gives it one): a
# table whose first column holds WANT-NAMES; --format json of the same
# parses to those names.
same_table() {
    local noun=$1 want=$2 member=${1}s
    "$CTL" --socket "$TD_SOCK" "$noun" list 2>&1 | cat >"$TD_DIR/pipe.out"
    script -qec "$(printf '%q ' "$CTL" --socket "$TD_SOCK" "$noun" list)" /dev/null </dev/null |
        tr -d '\r' >"$TD_DIR/tty.out"
    is "$(head -n1 "$TD_DIR/pipe.out" | awk '{print $1}') $(awk 'NR > 1 {print $1}' "$TD_DIR/pipe.out" | paste -sd' ')" \
        "NAME $want" "$noun list | cat: a table (a header, then $want), not json"
    cmp -s "$TD_DIR/pipe.out" "$TD_DIR/tty.out"
    ok $? "... byte for byte what it prints on a terminal" ||
        diag "--- pipe ---" "$(cat "$TD_DIR/pipe.out")" "--- terminal ---" "$(cat "$TD_DIR/tty.out")"
    "$CTL" --socket "$TD_SOCK" --format json "$noun" list >"$TD_DIR/json.out"
    is "$(jq -r ".${member}[].name" "$TD_DIR/json.out" | sort | paste -sd' ')" \
        "$(tr ' ' '\n' <<<"$want" | sort | paste -sd' ')" "$noun list --format json | jq: the same $member"
}
if command -v script >/dev/null; then
    same_table tenant "acme zeta"
    same_table stack "db web"
else
    for _ in 1 2 3 4 5 6; do skip "no script(1) to give turtlectl a terminal"; done
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
is "$RC $ERR $STATUS" "1 turtlectl: $ERR_MESSAGE: give a valid token with --token TOKEN, \$TURTLES_TOKEN or a remote's token (turtlectl remote add NAME --url URL --token-file FILE); the operator needs none on the UNIX socket as root 401" \
    "no token over TCP: exit 1, the API's 401 message and how to give a token"

cli_done
td_done
