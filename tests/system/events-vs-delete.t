#!/bin/bash
# Lifecycle events racing a delete: while libvirt's events fly (the domain
# started and destroyed behind turtled's back, on the private host), a
# DELETE of the stack runs.  Once DELETE has answered 202 the stack is
# "deleting" until it is gone (an event never writes its state over the
# delete's), and once it is gone it stays gone: no event brings back its
# state, no adoption brings back the stack.
#
#   TURTLES_BUILD=build tests/system/events-vs-delete.t   (EVENT_ROUNDS=N, default 8)

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
# shellcheck source-path=SCRIPTDIR source=../lib/stackhost.sh
. "$here/../lib/stackhost.sh"

ROUNDS=${EVENT_ROUNDS:-8}

sh_init
sh_start || bail "turtled did not start"
td_tenant alice || bail "no tenant"
alice=$TOKEN
sh_upload_reference "$alice" || bail "cannot upload the reference L1"

# flap DOMAIN: starts and destroys the domain behind turtled's back until
# it is gone (each start and destroy is a lifecycle event).
flap() {
    local n=0
    while [ $n -lt 40 ]; do
        testhost_virsh a start "$1" >/dev/null 2>&1 || testhost_virsh a dominfo "$1" >/dev/null 2>&1 || return 0
        testhost_virsh a destroy "$1" >/dev/null 2>&1
        n=$((n + 1))
    done
}

overwritten=0
resurrected=0
failed=0
for round in $(seq "$ROUNDS"); do
    name=e$round
    api_tn "$alice" POST /v1/stacks --json "$(jq -c '. + {start: false}' <<<"$(sh_spec "$name" 256)")"
    op=$(jb .operation.id)
    id=$(jb .stack.id)
    sh_wait_op "$alice" "$op" 120 && [ "$OP_STATUS" = succeeded ] || bail "cannot create stack $name: $OP_ERROR"

    flap "turtles-$id" &
    flapper=$!
    # Let a few events land first, then delete in the middle of them.
    sleep "0.$((RANDOM % 5 + 3))"
    api_tn "$alice" DELETE "/v1/stacks/$name"
    [ "$STATUS" = 202 ] || {
        diag "round $round: DELETE answered $STATUS $BODY"
        failed=$((failed + 1))
        kill "$flapper" 2>/dev/null
        wait "$flapper" 2>/dev/null
        continue
    }
    op=$(jb .operation.id)
    # Until it is gone, every read says deleting.
    while :; do
        api_tn "$alice" GET "/v1/stacks/$name"
        [ "$STATUS" = 404 ] && break
        state=$(jb .stack.state)
        [ "$state" = deleting ] || {
            overwritten=$((overwritten + 1))
            diag "round $round: after DELETE's 202 the stack read $state"
        }
        api_tn "$alice" GET "/v1/operations/$op"
        case $(jb .operation.status) in succeeded | failed | cancelled) ;; *) continue ;; esac
        api_tn "$alice" GET "/v1/stacks/$name"
        [ "$STATUS" = 404 ] && break
        diag "round $round: the delete ended $(jb .operation.status) and the stack is $(jb .stack.state)"
        failed=$((failed + 1))
        break
    done
    wait "$flapper" 2>/dev/null
    # Gone stays gone: after the last event, and a moment for late ones.
    sleep 1
    api_tn "$alice" GET "/v1/stacks/$name"
    [ "$STATUS" = 404 ] || {
        resurrected=$((resurrected + 1))
        diag "round $round: the deleted stack is back: $STATUS $(jb .stack.state)"
    }
    ! sh_domains | grep -qx "turtles-$id" || {
        resurrected=$((resurrected + 1))
        diag "round $round: the deleted stack's domain is back"
    }
done
is "$overwritten" 0 "$ROUNDS deletes raced by lifecycle events: the state stays deleting until the stack is gone"
is "$resurrected" 0 "... and a deleted stack never comes back, neither its row nor its domain"
is "$failed" 0 "... and every delete succeeded"
api_tn "$alice" GET /v1/stacks
is "$(jb '.stacks | length')" 0 "no stack is left"

td_done
