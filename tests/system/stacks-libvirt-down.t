#!/bin/bash
# turtled while its libvirtd is away, over HTTP: reads still answer from the
# store, everything that needs libvirt answers 503 "unavailable" and changes
# nothing; when libvirtd is back turtled reconnects by itself, reconciles (a
# stack whose QEMU died meanwhile is no longer "running") and works again.
#
#   TURTLES_BUILD=build tests/system/stacks-libvirt-down.t

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
# shellcheck source-path=SCRIPTDIR source=../lib/stackhost.sh
. "$here/../lib/stackhost.sh"

sh_init
sh_start || bail "turtled did not start"
td_tenant alice || bail "no tenant"
alice=$TOKEN
sh_upload_reference "$alice" || bail "cannot upload the reference L1"
for name in web doomed; do
    api_tn "$alice" POST /v1/stacks --json "$(sh_spec "$name" 256)"
    sh_wait_op "$alice" "$(jb .operation.id)" 120
    is "$OP_STATUS" succeeded "stack $name is created and running"
done
api_tn "$alice" GET /v1/stacks/doomed
doomed_domain=turtles-$(jb .stack.id)

testhost_kill_daemon a KILL
ok $? "libvirtd is killed (its guests keep running)"
# turtled notices through the keepalive or at its next call.
api_tn "$alice" GET /v1/stacks/web/stats
for _ in $(seq 1 100); do
    [ "$STATUS" = 503 ] && break
    sleep 0.2
    api_tn "$alice" GET /v1/stacks/web/stats
done
is_error 503 unavailable "stats need libvirt: 503"
like "$(jb .error.message)" 'libvirt is unreachable' "the message says why: $(jb .error.message)"

api_tn "$alice" GET /v1/stacks/web
is "$STATUS $(jb .stack.state)" "200 running" "GET answers from the store"
api_tn "$alice" GET /v1/stacks
is "$STATUS $(jb '.stacks | length')" "200 2" "the list too"
api_tn "$alice" GET "/v1/stacks/web/console?tail=5"
is "$STATUS" 200 "the console log is a file: it still answers"
api_tn "$alice" POST /v1/stacks/web/actions --json '{"action":"pause"}'
is_error 503 unavailable "pause while libvirt is away"
api_tn "$alice" DELETE /v1/stacks/web
is_error 503 unavailable "delete while libvirt is away"
api_tn "$alice" POST /v1/stacks --json "$(sh_spec other 256)"
is_error 503 unavailable "create while libvirt is away"
api_tn "$alice" POST /v1/images --json '{"name":"late","kind":"kernel","format":"raw"}'
api_tn "$alice" PUT /v1/images/late/data -T "$SH_KERNEL" -H 'Content-Type: application/octet-stream'
is_error 503 unavailable "an image upload while libvirt is away"
api_tn "$alice" GET /v1/stacks
is "$(jb '[.stacks[] | .name + ":" + .state] | join(" ")')" "doomed:running web:running" \
    "nothing changed: no stack appeared, none is deleting"
is "$(td_sql "SELECT count(*) FROM operations WHERE status IN ('pending','running')")" 0 \
    "no operation was queued"

# A QEMU that dies while libvirt is away: found out by the reconcile.
qemu_pid=$(testhost_pids a | while read -r p; do
    grep -q "$doomed_domain" "/proc/$p/cmdline" 2>/dev/null && echo "$p"
done | head -n 1)
[ -n "$qemu_pid" ] && kill -9 "$qemu_pid"
ok $? "the QEMU of 'doomed' is killed while libvirt is away"

testhost_restart_daemon a
ok $? "libvirtd is back"
state=""
for _ in $(seq 1 150); do
    api_tn "$alice" GET /v1/stacks/web/stats
    [ "$STATUS" = 200 ] && break
    sleep 0.2
done
is "$STATUS" 200 "turtled reconnected by itself: stats answer again"
grep -q 'reconciled with libvirt' "$TD_LOG" && grep -q 'is back' "$TD_LOG"
ok $? "its log says it is back and reconciled"
# libvirtd finds the dead QEMU as it reconnects to its guests, which it does
# in the background: the reconcile or the event that follows tells turtled.
r=1
for _ in $(seq 1 100); do
    api_tn "$alice" GET /v1/stacks/doomed
    state=$(jb .stack.state)
    case $state in stopped | error) r=0 && break ;; esac
    sleep 0.2
done
ok $r "the stack whose QEMU died is no longer running: $state $(jb '.stack.error // ""')"
api_tn "$alice" GET /v1/stacks/web
is "$(jb .stack.state)" running "the other one still runs"
api_tn "$alice" POST /v1/stacks/web/actions --json '{"action":"pause"}'
sh_wait_op "$alice" "$(jb .operation.id)" 60
is "$OP_STATUS" succeeded "pause works again"
api_tn "$alice" PUT /v1/images/late/data -T "$SH_KERNEL" -H 'Content-Type: application/octet-stream'
is "$STATUS $(jb .image.state)" "200 ready" "and so do uploads"
for name in web doomed; do
    api_tn "$alice" DELETE "/v1/stacks/$name"
    sh_wait_op "$alice" "$(jb .operation.id)" 60
    is "$OP_STATUS" succeeded "$name deletes"
done
is "$(sh_domains | grep -c '^turtles-')" 0 "no domain of ours is left"

td_done
