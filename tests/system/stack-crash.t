#!/bin/bash
# kill -9 of turtled at random moments of stack creates and deletes, then a
# restart: every stack is wholly present (a row in a settled state, its
# libvirt domain, GET answers) or wholly absent (no row, no domain, no disk,
# no console log), libvirt has no domain of ours the store lacks, and no
# operation stays pending or running.  CRASH_TRIALS kills (default 24), each
# at a random delay after the request's answer: up to CRASH_CREATE_MS (300,
# about what a create takes on TCG: define and start) for creates, up to
# CRASH_DELETE_MS (1600, a delete: QEMU's end) for deletes.
#
#   TURTLES_BUILD=build tests/system/stack-crash.t

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
# shellcheck source-path=SCRIPTDIR source=../lib/stackhost.sh
. "$here/../lib/stackhost.sh"

trials=${CRASH_TRIALS:-24}
create_ms=${CRASH_CREATE_MS:-300}
delete_ms=${CRASH_DELETE_MS:-1600}

sh_init
sh_start || bail "turtled did not start"
td_tenant alice || bail "no tenant"
alice=$TOKEN
sh_upload_reference "$alice" || bail "cannot upload the reference L1"

# The whole picture after a restart; one assertion per property, failures
# explained.  $1 names the trial.
check_consistent() {
    local trial=$1 rows domains bad="" id state name dom
    rows=$(td_sql "SELECT id || ' ' || state || ' ' || name FROM stacks ORDER BY name")
    domains=$(sh_domains | grep '^turtles-' | sort)
    while read -r id state name; do
        [ -n "$id" ] || continue
        case $state in provisioning | deleting) bad="$bad $name:$state" ;; esac
        dom=$(testhost_virsh a domstate "turtles-$id" 2>/dev/null | head -n 1)
        [ -n "$dom" ] || bad="$bad $name:no-domain"
        case "$state/$dom" in running/running | stopped/"shut off" | error/*) ;; *) bad="$bad $name:$state/$dom" ;; esac
        api_tn "$alice" GET "/v1/stacks/$name"
        [ "$STATUS" = 200 ] || bad="$bad $name:GET=$STATUS"
    done <<<"$rows"
    is "$bad" "" "$trial: every stack in the store is whole and its domain agrees"

    bad=""
    for dom in $domains; do
        grep -q "^${dom#turtles-} " <<<"$rows" || bad="$bad $dom"
    done
    is "$bad" "" "$trial: libvirt has no domain of ours the store lacks"

    bad=""
    for f in $(sh_files "$TD_STATE/consoles") $(sh_files "$TD_STATE/pools/disks"); do
        id=$(basename "$f")
        id=${id%%.*}
        grep -q "^$id " <<<"$rows" || bad="$bad $(basename "$f")"
    done
    is "$bad" "" "$trial: no disk or console log without its stack"

    is "$(td_sql "SELECT count(*) FROM operations WHERE status IN ('pending','running')")" 0 \
        "$trial: no operation stays pending or running"
}

# kill_and_restart MS: kill -9 turtled MS milliseconds from now, then restart it.
kill_and_restart() {
    sleep "$(awk -v ms="$1" 'BEGIN { printf "%.3f", ms / 1000 }')"
    td_kill9
    sh_start || bail "turtled did not come back after kill -9"
}

created=0
deleted=0
outcomes=""
for trial in $(seq 1 "$trials"); do
    api_tn "$alice" GET /v1/stacks
    existing=$(jb '.stacks[].name' | head -n 1)
    # Alternate: create while fewer than two exist, else delete one.
    if [ "$(jb '.stacks | length')" -lt 2 ] && [ $((trial % 2)) = 1 ] || [ -z "$existing" ]; then
        what="create c$trial"
        delay=$((RANDOM % (create_ms + 1)))
        api_tn "$alice" POST /v1/stacks --json "$(sh_spec "c$trial" 256)"
        created=$((created + 1))
    else
        what="delete $existing"
        delay=$((RANDOM % (delete_ms + 1)))
        api_tn "$alice" DELETE "/v1/stacks/$existing"
        deleted=$((deleted + 1))
    fi
    [ "$STATUS" = 202 ] || diag "trial $trial: $what answered $STATUS $BODY"
    kill_and_restart "$delay"
    check_consistent "trial $trial ($what, kill -9 after $delay ms)"
    api_tn "$alice" GET "/v1/stacks/${what#* }"
    if [ "$STATUS" = 200 ]; then
        outcome="present ($(jb .stack.state))"
    else
        outcome=absent
    fi
    outcomes="$outcomes${outcomes:+,}${what%% *}:${outcome%% *}"
    note "trial $trial: after the restart ${what#* } is $outcome"
done
note "$created creates and $deleted deletes interrupted; outcomes: $(tr ',' '\n' <<<"$outcomes" | sort | uniq -c | tr -s ' \n' ' ')"

# What is left deletes cleanly.
api_tn "$alice" GET /v1/stacks
for name in $(jb '.stacks[].name'); do
    api_tn "$alice" DELETE "/v1/stacks/$name"
    sh_wait_op "$alice" "$(jb .operation.id)" 60
done
is "$(sh_domains | grep -c '^turtles-')" 0 "after the trials every stack deletes; no domain is left"
is "$(sh_files "$TD_STATE/pools/disks" | wc -l) $(sh_files "$TD_STATE/consoles" | wc -l)" "0 0" \
    "no disk or console log is left"

td_done
