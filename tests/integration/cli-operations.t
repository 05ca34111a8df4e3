#!/usr/bin/env bash
# turtlectl's operation and event verbs against a live turtled (the test
# hooks' sleep operation): help for operation, event and host and each
# verb, did-you-mean for their typos; show, wait --timeout, the progress it
# prints, cancel with and without --wait, a failed operation (kill -9 in the
# middle), named remotes from config.ini, event monitor in json, yaml and
# table, and a monitor that sees turtled stop.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh
. tests/lib/turtlectl.sh

# ctl_bg OUT ERR ARGS...: turtlectl in the background (for td_bg_start);
# exec, so that td_bg_stop's signal reaches turtlectl itself.
ctl_bg() {
    local out=$1 err=$2
    shift 2
    exec "$CTL" "$@" >"$out" 2>"$err"
}

# until_true SECONDS CMD...: CMD every 0.1 s until it succeeds (0) or SECONDS pass (1).
until_true() {
    local deadline=$(($(now_ms) + $1 * 1000))
    shift
    until "$@"; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

has_line() { grep -q -- "$2" "$1" 2>/dev/null; }
elapsed_since() { echo $(($(now_ms) - $1)); }

td_init
cli_init

# ---- help and usage (no daemon needed) ---------------------------------------------------------
cli_noun_help_ok operation list show wait cancel
for verb in list show wait cancel; do
    cli_verb_help_ok operation "$verb"
done
cli_noun_help_ok event monitor
cli_verb_help_ok event monitor
ctl help host
grep -Eq '^  show +show the host.s virtualization capabilities$' <<<"$OUT" &&
    grep -q '^The operator only' <<<"$OUT"
ok "$((RC + $?))" "help host: exit 0, its verb and who may use it"
ctl help host show
host_help=$OUT
grep -q '^Prints the backend turtled runs stacks with' <<<"$host_help"
ok "$((RC + $?))" "help host show: exit 0, what it prints"
ctl host show --help
is "$RC $OUT" "0 $host_help" "host show --help: the same"
is "$(head -n1 <<<"$host_help")" "usage: turtlectl host show" "help host show: its usage first"

ctl operation wiat x
is "$RC $ERR" "2 turtlectl: operation: unknown verb 'wiat'; did you mean 'wait'?
Run 'turtlectl help operation' for the list." "operation wiat: exit 2, did you mean 'wait'"
ctl operation wait x --timout 3
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: operation wait: unknown option '--timout'; did you mean '--timeout'?" \
    "operation wait --timout: exit 2, did you mean '--timeout'"
is "$(sed -n 3p <<<"$ERR") $(tail -n1 <<<"$ERR")" \
    "usage: turtlectl operation wait ID [--timeout SECONDS] Run 'turtlectl help operation wait' for more." \
    "... then the usage of operation wait alone and where its help is"
ctl event moniter
is "$RC $ERR" "2 turtlectl: event: unknown verb 'moniter'; did you mean 'monitor'?
Run 'turtlectl help event' for the list." "event moniter: exit 2, did you mean 'monitor'"

td_start || bail "turtled did not start"
td_tenant acme || bail "cannot create tenant acme"
A=$TOKEN
td_tenant beta || bail "cannot create tenant beta"
B=$TOKEN
TCP=(--url "http://127.0.0.1:$TD_PORT")

# ---- operation show ----------------------------------------------------------------------------
td_sleep_op "$A" 0 || bail "cannot start an operation"
OP=$OP_ID
td_wait_status "$OP" succeeded || bail "the operation did not end"
op operation show "$OP"
same_json "$OUT" "$BODY" "operation show: json output is GET /v1/operations/{id}'s answer"
is "$RC" 0 "... exit 0"
op operation show "$OP" --format table
grep -Eq "^id: +$OP\$" <<<"$OUT" && grep -Eq '^kind: +test.sleep$' <<<"$OUT" &&
    grep -Eq '^status: +succeeded$' <<<"$OUT" && grep -Eq '^progress: +100%' <<<"$OUT"
ok $? "operation show --format table: id, kind, status succeeded, progress 100%"
op operation show "$OP" --format yaml
grep -Eq "^  id: (\"$OP\"|$OP)\$" <<<"$OUT" && grep -q '^  status: succeeded$' <<<"$OUT" &&
    grep -q '^    percent: 100$' <<<"$OUT"
ok $? "operation show --format yaml: id, status: succeeded, progress.percent: 100"
yaml_matches "$OUT" "$BODY" "operation show: the yaml reads back as the API's answer"
ctl "${TCP[@]}" --token "$A" operation show "$OP"
same_json "$OUT" "$BODY" "the owner's token over TCP: the same answer"
ctl "${TCP[@]}" --token "$B" operation show "$OP"
is "$RC $ERR" "1 turtlectl: operation '$OP' not found" "another tenant's token: exit 1, the API's 404 message"
op operation show nosuch
is "$RC $ERR" "1 turtlectl: operation 'nosuch' not found" "operation show nosuch: exit 1, the API's message"
op operation wait "$OP" --timeout x
is "$RC $(head -n1 <<<"$ERR")" \
    "2 turtlectl: operation wait: --timeout: must be a whole number between 0 and 604800 (not 'x')" \
    "operation wait --timeout x: exit 2"
op operation cancel "$OP" --timeout 5
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: operation cancel: --timeout goes with --wait" \
    "operation cancel --timeout without --wait: exit 2"
is "$(sed -n 3p <<<"$ERR")" "usage: turtlectl operation cancel ID [--wait [--timeout SECONDS]]" \
    "... then the usage of operation cancel"

# ---- operation wait ----------------------------------------------------------------------------
td_sleep_op "$A" 3 || bail "cannot start an operation"
OP=$OP_ID
t0=$(now_ms)
op operation wait "$OP" --timeout 1
ms=$(elapsed_since "$t0")
is "$RC $(jq -r .operation.status <<<"$OUT")" "1 running" "operation wait --timeout 1 on a 3 s sleep: exit 1, still running"
ok "$([ "$ms" -ge 800 ] && [ "$ms" -le 2500 ] && echo 0 || echo 1)" "... after about a second (${ms} ms)"
is "$(tail -n1 <<<"$ERR")" "turtlectl: operation $OP is still running after 1 s" "... and says so on stderr"
grep -q "^operation $OP: running " <<<"$ERR"
ok $? "... after a progress line (stderr is no terminal)"
op operation wait "$OP"
api_op GET "/v1/operations/$OP"
same_json "$OUT" "$BODY" "operation wait: json output is the operation as it ended"
is "$RC $(jb .operation.status)" "0 succeeded" "... exit 0 when it succeeded"
is "$(tail -n1 <<<"$ERR")" "operation $OP: succeeded 100% sleeping" "... its last progress line says so"
is "$(sort <<<"$ERR" | uniq -d)" "" "... and no progress line repeats (lines only on a change)"
t0=$(now_ms)
op operation wait "$OP" --timeout 0
is "$RC $(jq -r .operation.status <<<"$OUT")" "0 succeeded" "operation wait --timeout 0 on an ended operation: exit 0"
ok "$([ "$(elapsed_since "$t0")" -lt 700 ] && echo 0 || echo 1)" "... at once"

if command -v script >/dev/null; then
    td_sleep_op "$A" 2 || bail "cannot start an operation"
    script -qec "$CTL --socket $TD_SOCK operation wait $OP_ID" /dev/null >"$TD_DIR/tty.out" 2>&1
    tr '\r' '\n' <"$TD_DIR/tty.out" >"$TD_DIR/tty.lines"
    grep -q '^\[##############################\] 100% sleeping (succeeded)' "$TD_DIR/tty.lines" &&
        grep -Eq '^status: +succeeded$' "$TD_DIR/tty.lines"
    ok $? "on a terminal: a progress bar ending at 100%, then the table"
    is "$(grep -c $'\r\\[' "$TD_DIR/tty.out")" 1 "... redrawn in place on one line"
else
    skip "no script(1) to give turtlectl a terminal"
    skip "no script(1) to give turtlectl a terminal"
fi

# ---- operation cancel --------------------------------------------------------------------------
td_sleep_op "$A" 30 || bail "cannot start an operation"
OP=$OP_ID
td_wait_status "$OP" running
t0=$(now_ms)
op operation cancel "$OP" --wait
ms=$(elapsed_since "$t0")
is "$RC $(jq -r .operation.status <<<"$OUT")" "1 cancelled" "operation cancel --wait on a 30 s sleep: exit 1, cancelled"
ok "$([ "$ms" -lt 5000 ] && echo 0 || echo 1)" "... within 5 s (${ms} ms)"
is "$(tail -n1 <<<"$ERR")" "turtlectl: operation $OP cancelled" "... and says so on stderr"
op operation cancel "$OP"
api_op DELETE "/v1/operations/$OP"
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "cancelling it again: exit 1, the API's 409 message"

td_sleep_op "$A" 30 || bail "cannot start an operation"
OP=$OP_ID
ctl "${TCP[@]}" --token "$A" operation cancel "$OP"
is "$RC $(jq -r .operation.id <<<"$OUT")" "0 $OP" "operation cancel (no --wait) as the owner: exit 0, the operation"
td_check_body "turtlectl operation cancel's json" "$(as_file cancel.json "$OUT")" DELETE "/v1/operations/{id}" 202
td_wait_status "$OP" cancelled
ok $? "... and it ends cancelled"

# ---- a failed operation: turtled killed while it runs ------------------------------------------
td_sleep_op "$A" 30 || bail "cannot start an operation"
OP=$OP_ID
td_wait_status "$OP" running
td_kill9
td_start || bail "turtled did not start again"
TCP=(--url "http://127.0.0.1:$TD_PORT")
op operation wait "$OP" --timeout 10
api_op GET "/v1/operations/$OP"
is "$RC $(jb .operation.status)" "1 failed" "operation wait on an operation failed by a restart: exit 1"
is "$(tail -n1 <<<"$ERR")" "turtlectl: operation $OP failed: $(jb .operation.error)" \
    "... with the operation's error on stderr"
same_json "$OUT" "$BODY" "... and the operation on stdout"

# ---- operation list --------------------------------------------------------------------------
# acme has OP (succeeded) and two more; beta one: each tenant sees its own,
# newest first, the operator everyone's.
td_sleep_op "$A" 0 || bail "cannot start an operation"
A2=$OP_ID
td_sleep_op "$A" 0 || bail "cannot start an operation"
A3=$OP_ID
td_sleep_op "$B" 0 || bail "cannot start an operation"
B1=$OP_ID
for id in "$A2" "$A3" "$B1"; do td_wait_status "$id" succeeded || bail "operation $id did not end"; done
# Every acme operation, newest first, as the API lists them (one page of all).
api_tn "$A" GET "/v1/operations?limit=1000"
acme_ids=$(jq -r '.operations[].id' <<<"$BODY" | paste -sd' ')
ctl --socket "$TD_SOCK" --token "$A" operation list
is "$RC $(jq -r '.operations[].id' <<<"$OUT" | paste -sd' ')" "0 $acme_ids" \
    "operation list (acme): exit 0, acme's operations as the API lists them"
grep -qw "$A2" <<<"$acme_ids" && grep -qw "$A3" <<<"$acme_ids" && ! grep -qw "$B1" <<<"$acme_ids"
ok $? "... acme's new operations, not beta's"
ctl --socket "$TD_SOCK" --token "$B" operation list
is "$(jq -r '.operations[].id' <<<"$OUT" | paste -sd' ')" "$B1" "operation list (beta): its one operation only"
ctl --socket "$TD_SOCK" --token "$A" operation list --format table
is "$(head -n1 <<<"$OUT" | tr -s ' ')" "ID KIND TARGET STATUS PROGRESS CREATED" "--format table: the header"
is "$(awk 'NR > 1 {print $1}' <<<"$OUT" | paste -sd' ')" "$acme_ids" "... then a row per operation, newest first"
grep -Eq "^$A3 +test.sleep +test/sleep +succeeded +100% " <<<"$OUT"
ok $? "... a row: id, kind, target, status, progress"
# Paging: one page of 1, then the rest by its cursor, shows each once.
ctl --socket "$TD_SOCK" --token "$A" operation list --limit 1 --format table
first=$(awk 'NR == 2 {print $1}' <<<"$OUT")
cursor=$(sed -n 's/^more: turtlectl operation list --limit 1 --after //p' <<<"$ERR")
is "$first" "${acme_ids%% *}" "operation list --limit 1: the newest operation"
ok "$([ -n "$cursor" ] && echo 0 || echo 1)" "... and a 'more:' line with the command for the next page"
ctl --socket "$TD_SOCK" --token "$A" operation list --limit 1 --after "$cursor" --all
is "$first $(jq -r '.operations[].id' <<<"$OUT" | paste -sd' ')" "$acme_ids" \
    "... --after that cursor --all: the rest, each once"
# Filters.
ctl --socket "$TD_SOCK" --token "$A" operation list --status running,pending
is "$RC $(jq -r '.operations | length' <<<"$OUT")" "0 0" "--status running,pending: none runs"
ctl --socket "$TD_SOCK" --token "$A" operation list --status succeeded --kind test.sleep
got=$(jq -r '.operations[].id' <<<"$OUT" | paste -sd' ')
api_tn "$A" GET "/v1/operations?limit=1000&status=succeeded&kind=test.sleep"
is "$got" "$(jq -r '.operations[].id' <<<"$BODY" | paste -sd' ')" \
    "--status succeeded --kind test.sleep: what the API filters"
grep -qw "$A3" <<<"$got" && [ "$(wc -w <<<"$got")" -lt "$(wc -w <<<"$acme_ids")" ]
ok $? "... acme's succeeded ones, not its cancelled or failed ones"
ctl --socket "$TD_SOCK" --token "$A" operation list --kind stack.create
is "$RC $(jq -r '.operations | length' <<<"$OUT")" "0 0" "--kind stack.create: none"
ctl --socket "$TD_SOCK" --token "$A" operation list --status "done"
is "$RC $(head -n1 <<<"$ERR")" "1 turtlectl: status: 'done' is not one of pending, running, succeeded, failed, cancelled (several may be given, separated by commas)" \
    "--status done: exit 1, the API's message"
op operation list --tenant beta
is "$(jq -r '.operations[].id' <<<"$OUT" | paste -sd' ')" "$B1" "the operator, --tenant beta: beta's only"
op operation list
n_all=$(jq -r '.operations | length' <<<"$OUT")
n_acme=$(wc -w <<<"$acme_ids")
ok "$([ "$n_all" -ge $((n_acme + 1)) ] && echo 0 || echo 1)" "the operator: everyone's ($n_all operations)"
ctl --socket "$TD_SOCK" --token "$A" operation list --tenant beta
is "$RC" 1 "a tenant's --tenant: exit 1 (only the operator lists another tenant's)"

# ---- named remotes ----------------------------------------------------------------------------
mkdir -p "$XDG_CONFIG_HOME/turtles"
cat >"$XDG_CONFIG_HOME/turtles/config.ini" <<EOF
[turtlectl]
default-remote = local

[remote "local"]
socket = $TD_SOCK

[remote "acme"]
url = http://127.0.0.1:$TD_PORT
token = $A
EOF
chmod 600 "$XDG_CONFIG_HOME/turtles/config.ini"
ctl tenant list
api_op GET /v1/tenants
same_json "$OUT" "$BODY" "no connection flag: the default remote of config.ini (the socket)"
ctl --remote acme operation show "$OP"
is "$RC $(jq -r .operation.id <<<"$OUT")" "0 $OP" "--remote acme: its url and token"
ctl --remote acme tenant list
api_tn "$A" GET /v1/tenants
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "--remote acme on an operator verb: exit 1, the API's 403 message"
unknown="tt_$(printf '0%.0s' {1..64})"
ctl --remote acme --token "$unknown" operation show "$OP"
api_tn "$unknown" GET "/v1/operations/$OP"
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE: give a valid token with --token TOKEN, \$TURTLES_TOKEN or a remote's token (turtlectl remote add NAME --url URL --token-file FILE); the operator needs none on the UNIX socket as root" \
    "--token beats the remote's token (an unknown one: the API's 401, and how to give a token)"
ctl --remote nosuch host show
is "$RC $ERR" "1 turtlectl: no remote 'nosuch' in $XDG_CONFIG_HOME/turtles/config.ini or /etc/turtles/turtlectl.ini" \
    "--remote nosuch: exit 1, the files it looked in"
mkdir -p "$TD_DIR/xdg2/turtles"
printf '[remote "both"]\nurl = http://127.0.0.1:1\nsocket = /x\n' >"$TD_DIR/xdg2/turtles/config.ini"
XDG_CONFIG_HOME=$TD_DIR/xdg2 ctl --remote both host show
is "$RC $ERR" "1 turtlectl: $TD_DIR/xdg2/turtles/config.ini: remote 'both' needs either url or socket (exactly one)" \
    "a remote with both url and socket: exit 1, the file and why"

# ---- event monitor ----------------------------------------------------------------------------
td_bg_start json ctl_bg "$TD_DIR/ev.json" "$TD_DIR/ev.json.err" --socket "$TD_SOCK" --format json event monitor
td_bg_start yaml ctl_bg "$TD_DIR/ev.yaml" "$TD_DIR/ev.yaml.err" --socket "$TD_SOCK" --format yaml event monitor
td_bg_start table ctl_bg "$TD_DIR/ev.table" "$TD_DIR/ev.table.err" --remote acme --format table event monitor
td_bg_start beta ctl_bg "$TD_DIR/ev.beta" "$TD_DIR/ev.beta.err" "${TCP[@]}" --token "$B" event monitor
# A monitor is subscribed within a moment; the sleep lasts a second, so even a
# late one sees it run and end.
sleep 0.3
td_sleep_op "$A" 1 || bail "cannot start an operation"
OP=$OP_ID
until_true 8 has_line "$TD_DIR/ev.json" "\"id\":\"$OP\".*\"status\":\"succeeded\""
ok $? "event monitor --format json: shows the operation's events up to succeeded"
until_true 3 has_line "$TD_DIR/ev.table" "succeeded 100% sleeping ($OP)"
until_true 3 has_line "$TD_DIR/ev.yaml" "status: succeeded"
sleep 0.3
for name in json yaml table beta; do
    td_bg_stop "$name"
    is "$BG_RC" 143 "event monitor ($name) ran until it was stopped"
done
lines=$(wc -l <"$TD_DIR/ev.json")
parsed=$(jq -c 'select(type == "object" and has("operation"))' "$TD_DIR/ev.json" 2>/dev/null | wc -l)
ok "$([ "$lines" -ge 2 ] && [ "$lines" = "$parsed" ] && echo 0 || echo 1)" \
    "... each json line is one event's data, an operation envelope ($lines lines)"
is "$(jq -r --arg op "$OP" 'select(.operation.id == $op) | .operation.status' "$TD_DIR/ev.json" | uniq | tail -n2 | paste -sd' ')" \
    "running succeeded" "... the operation's statuses in order, ending succeeded"
api_op GET "/v1/operations/$OP"
same_json "$(tail -n1 "$TD_DIR/ev.json")" "$BODY" "... the last event's data is the operation as GET shows it"
td_check_schema OperationEnvelope "$(as_file event.json "$(tail -n1 "$TD_DIR/ev.json")")" \
    "turtlectl event monitor's last json line"
grep -q '^---$' "$TD_DIR/ev.yaml" && grep -Eq "^  id: (\"$OP\"|$OP)\$" "$TD_DIR/ev.yaml" &&
    grep -q '^  status: succeeded$' "$TD_DIR/ev.yaml"
ok $? "event monitor --format yaml: a document per event, with the operation"
head -n1 "$TD_DIR/ev.table" | grep -Eq '^TIME +TYPE +SUMMARY$' &&
    grep -Eq "^[0-9-]+T[0-9:.]+Z +operation +test.sleep test/sleep succeeded 100% sleeping \\($OP\\)\$" "$TD_DIR/ev.table"
ok $? "event monitor --format table (tenant acme, through --remote): time, type, summary"
is "$(grep -c "$OP" "$TD_DIR/ev.beta")" 0 "beta's monitor does not show acme's operation"
is "$(cat "$TD_DIR/ev.json.err" "$TD_DIR/ev.yaml.err" "$TD_DIR/ev.table.err" "$TD_DIR/ev.beta.err")" "" \
    "... and the monitors printed nothing on stderr"
cat "$TD_DIR"/ev.*.err >>"$TD_DIR/ctl-all.err"

# A monitor open when turtled stops says so, waits, and once turtled is back
# resumes after the last event it printed (Last-Event-ID as ?after=): the
# events made meanwhile come, none twice.
td_bg_start last ctl_bg "$TD_DIR/ev.last" "$TD_DIR/ev.last.err" --socket "$TD_SOCK" --format json \
    event monitor
sleep 0.3
td_sleep_op "" 0 || bail "cannot start an operation"
FIRST=$OP_ID
until_true 5 has_line "$TD_DIR/ev.last" "\"id\":\"$FIRST\".*\"status\":\"succeeded\""
td_stop TERM
is "$TD_EXIT" 0 "turtled stops (exit 0) with a monitor open"
until_true 10 has_line "$TD_DIR/ev.last.err" "ended; resuming after event [0-9]* in 3 s"
ok $? "... the monitor says the stream ended and that it resumes after its last event"
td_start || bail "turtled did not start again"
td_sleep_op "" 0 || bail "cannot start an operation"
SECOND=$OP_ID
until_true 20 has_line "$TD_DIR/ev.last" "\"id\":\"$SECOND\".*\"status\":\"succeeded\""
ok $? "... and once turtled is back it shows what happened since"
td_bg_stop last
is "$BG_RC" 143 "... running until it is stopped"
is "$(grep -c "\"id\":\"$FIRST\".*\"status\":\"succeeded\"" "$TD_DIR/ev.last")" 1 \
    "... and no event twice"
cat "$TD_DIR/ev.last.err" >>"$TD_DIR/ctl-all.err"

cli_done
td_done
