#!/bin/bash
# Cancel raced against stack create and delete, hundreds of rounds, on a
# private libvirt host: an operation that ends cancelled left no effect (no
# stack, no domain after a cancelled create; the stack and its domain as
# they were after a cancelled delete), one that ends succeeded has all of
# them, and a cancel answered 409 "too late to cancel" is followed by
# success.  Every few rounds the create starts the L1, so the race also
# lands while QEMU starts.  turtled runs one worker, and in every other
# round a start or force-stop of another stack holds it, so the create and
# the delete are still pending when their cancel comes; in the other rounds
# the cancel lands while they run.  At the end the quota is whole again.
#
#   TURTLES_BUILD=build tests/system/cancel-race.t      (CANCEL_ROUNDS=N, default 15;
#   tests/system/cancel-storm runs 400 in make check-long)

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
# shellcheck source-path=SCRIPTDIR source=../lib/stackhost.sh
. "$here/../lib/stackhost.sh"

ROUNDS=${CANCEL_ROUNDS:-15}
QUOTA=4

sh_init
echo "workers=1" >>"$TD_DIR/turtled.conf"
sh_start || bail "turtled did not start"
td_tenant alice "{\"name\":\"alice\",\"quota\":{\"stacks\":$QUOTA,\"vcpus\":8,\"memory_mib\":8192,\"disk_gib\":4}}" ||
    bail "no tenant"
alice=$TOKEN
sh_upload_reference "$alice" || bail "cannot upload the reference L1"

# Raw requests: the racing part must not wait for the schema checks.
# call METHOD PATH [JSON]: sets CODE, OUT and OP (the operation's id, read
# without jq: it is on the clock).
call() {
    OUT=$(curl -s --max-time 60 -w '\n%{http_code}' -X "$1" -H "Authorization: Bearer $alice" \
        ${3:+--json "$3"} "http://127.0.0.1:$TD_PORT$2")
    CODE=${OUT##*$'\n'}
    OUT=${OUT%$'\n'*}
    OP=""
    [[ $OUT =~ \"operation\":\{\"id\":\"([0-9a-f-]{36})\" ]] && OP=${BASH_REMATCH[1]}
}
# hold: queues an action on the blocker stack, which keeps the one worker
# busy for a while (starting QEMU, or pulling its plug).  409 "busy" is
# fine: its previous action still holds the worker.
hold() {
    call GET /v1/stacks/blocker
    if [[ $OUT =~ \"state\":\"running\" ]]; then
        call POST /v1/stacks/blocker/actions '{"action":"force-stop"}'
    else
        call POST /v1/stacks/blocker/actions '{"action":"start"}'
    fi
    [ "$CODE" = 202 ] || [[ $OUT =~ busy ]] || diag "the blocker's action answered $CODE: $OUT"
}
# final OP: waits for the operation's final status; sets FINAL.
final() {
    FINAL=""
    for _ in $(seq 30); do
        call GET "/v1/operations/$1/wait?timeout=10"
        FINAL=$(jq -r .operation.status <<<"$OUT")
        case $FINAL in succeeded | failed | cancelled) return 0 ;; esac
    done
    return 1
}
# pause_ms MAX: a random pause of 0..MAX ms.
pause_ms() {
    local ms=$((RANDOM % ($1 + 1)))
    sleep "$(printf '0.%03d' "$ms")"
}
has_domain() { sh_domains | grep -qx "turtles-$1"; }
violation() {
    violations=$((violations + 1))
    diag "round $round: $*"
}

call POST /v1/stacks "$(jq -c '. + {start: false}' <<<"$(sh_spec blocker 256)")"
final "$OP" && [ "$FINAL" = succeeded ] || bail "cannot create the blocker stack"

violations=0
declare -A outcome=()
for round in $(seq "$ROUNDS"); do
    name=r$round
    start=false
    [ $((round % 10)) = 0 ] && start=true
    spec=$(jq -c --argjson start "$start" '. + {start: $start}' <<<"$(sh_spec "$name" 256)")

    # ---- create, cancelled somewhere in its life -----------------------------------
    held=$((round % 2))
    [ "$held" = 1 ] && hold
    call POST /v1/stacks "$spec"
    [ "$CODE" = 202 ] || {
        violation "create answered $CODE: $OUT"
        continue
    }
    op=$OP
    id=$(jq -r .stack.id <<<"$OUT")
    [ "$held" = 0 ] && pause_ms 30
    call DELETE "/v1/operations/$op"
    cancel=$CODE
    cancel_out=$OUT
    final "$op" || violation "create $op never ended"
    outcome["create $FINAL $cancel"]=$((${outcome["create $FINAL $cancel"]:-0} + 1))
    call GET "/v1/stacks/$name"
    exists=$CODE
    case $FINAL in
    cancelled)
        [ "$exists" = 404 ] || violation "create cancelled, but GET answers $exists"
        ! has_domain "$id" || violation "create cancelled, but domain turtles-$id exists"
        ;;
    succeeded)
        [ "$exists" = 200 ] || violation "create succeeded, but GET answers $exists"
        has_domain "$id" || violation "create succeeded, but no domain turtles-$id"
        ;;
    *)
        [ "$exists" = 404 ] || violation "create $FINAL, but GET answers $exists"
        ;;
    esac
    if [ "$cancel" = 409 ]; then
        why=$(jq -r .error.message <<<"$cancel_out")
        [[ $why =~ ^(too\ late\ to\ cancel|operation\ .*\ is\ already) ]] ||
            violation "a refused cancel says: $why"
        [ "$FINAL" = succeeded ] || violation "cancel refused (409) but the create ended $FINAL"
    fi
    [ "$exists" = 200 ] || continue

    # ---- delete, cancelled somewhere in its life -----------------------------------
    call GET "/v1/stacks/$name"
    before=$(jq -r .stack.state <<<"$OUT")
    [ "$held" = 0 ] && hold
    call DELETE "/v1/stacks/$name"
    [ "$CODE" = 202 ] || {
        violation "delete answered $CODE: $OUT"
        continue
    }
    op=$OP
    [ "$held" = 1 ] && pause_ms 5
    call DELETE "/v1/operations/$op"
    cancel=$CODE
    final "$op" || violation "delete $op never ended"
    outcome["delete $FINAL $cancel"]=$((${outcome["delete $FINAL $cancel"]:-0} + 1))
    call GET "/v1/stacks/$name"
    exists=$CODE
    state=$(jq -r '.stack.state // empty' <<<"$OUT")
    case $FINAL in
    cancelled)
        [ "$exists $state" = "200 $before" ] ||
            violation "delete cancelled, but GET answers $exists $state (was $before)"
        has_domain "$id" || violation "delete cancelled, but the domain turtles-$id is gone"
        ;;
    succeeded)
        [ "$exists" = 404 ] || violation "delete succeeded, but GET answers $exists $state"
        ! has_domain "$id" || violation "delete succeeded, but domain turtles-$id is still there"
        ;;
    *) violation "delete ended $FINAL: $(jq -r .operation.error <<<"$OUT")" ;;
    esac
    [ "$cancel" = 409 ] && [ "$FINAL" != succeeded ] &&
        violation "cancel refused (409) but the delete ended $FINAL"
    if [ "$exists" = 200 ]; then
        call DELETE "/v1/stacks/$name"
        op=$(jq -r .operation.id <<<"$OUT")
        final "$op" && [ "$FINAL" = succeeded ] || violation "the clean-up delete ended $FINAL"
    fi
done

for key in "${!outcome[@]}"; do note "$key: ${outcome[$key]}"; done | sort
count() { # count KIND FINAL: rounds whose KIND ended FINAL, whatever the cancel answered
    local key n=0
    for key in "${!outcome[@]}"; do
        case $key in "$1 $2 "*) n=$((n + ${outcome[$key]})) ;; esac
    done
    echo "$n"
}
is "$violations" 0 "$ROUNDS rounds of cancel against create and delete: no cancelled operation with effects, no succeeded one without"
ok "$([ "$(count create cancelled)" -gt 0 ] && [ "$(count create succeeded)" -gt 0 ] && echo 0 || echo 1)" \
    "the race went both ways for creates ($(count create cancelled) cancelled, $(count create succeeded) succeeded)"
ok "$([ "$(count delete cancelled)" -gt 0 ] && [ "$(count delete succeeded)" -gt 0 ] && echo 0 || echo 1)" \
    "... and for deletes ($(count delete cancelled) cancelled, $(count delete succeeded) succeeded)"

# ---- the quota is whole again -----------------------------------------------------------
# The blocker's last action may still run: a create cancelled while it
# waited behind that action ends at once.  Its delete is 409 "busy" until then.
for _ in $(seq 120); do
    call DELETE /v1/stacks/blocker
    [ "$CODE" = 409 ] && [[ $OUT =~ busy ]] || break
    sleep 1
done
is "$CODE" 202 "the blocker's delete is accepted once its last action has ended"
final "$OP" && [ "$FINAL" = succeeded ] || diag "the blocker's delete ended $FINAL"
api_tn "$alice" GET /v1/stacks
is "$(jb '.stacks | length')" 0 "no stack is left"
is "$(sh_domains | grep -c '^turtles-')" 0 "... and no domain"
made=0
for i in $(seq $QUOTA); do
    call POST /v1/stacks "$(jq -c '. + {start: false}' <<<"$(sh_spec "q$i" 256)")"
    [ "$CODE" = 202 ] && final "$(jq -r .operation.id <<<"$OUT")" && [ "$FINAL" = succeeded ] &&
        made=$((made + 1))
done
is "$made" "$QUOTA" "the whole quota of $QUOTA stacks can be created again"
call POST /v1/stacks "$(jq -c '. + {start: false}' <<<"$(sh_spec over 256)")"
is "$CODE" 403 "... and one more is over quota"
for i in $(seq $QUOTA); do
    call DELETE "/v1/stacks/q$i"
    final "$(jq -r .operation.id <<<"$OUT")"
done

td_done
