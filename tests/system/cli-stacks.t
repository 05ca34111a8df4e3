#!/usr/bin/env bash
# The tenant's whole flow through turtlectl against turtled on a private
# libvirt host (tcg backend, the reference L1 image): image create --file
# of the kernel and initrd (progress lines, size and SHA-256 as the files'),
# stack create --wait, the console showing TURTLES-L1 READY (--tail, then
# --follow seeing new L2 heartbeats), show/list json as the API answers
# (pagination included), a table in a pipe without --format,
# pause/resume/stop/start --wait reaching their states, stats, delete --wait
# leaving no domain behind.
#
#   TURTLES_BUILD=build tests/system/cli-stacks.t
#
# TURTLES_BOOT_TIMEOUT (s, default 90) bounds the wait for L1's READY line.
# shellcheck disable=SC2119,SC2153 # td_start takes optional arguments; td_tenant sets TOKEN
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
command -v libvirtd >/dev/null || skip_all "libvirtd is not installed"
. tests/lib/stackhost.sh
. tests/lib/turtlectl.sh

boot_timeout=${TURTLES_BOOT_TIMEOUT:-90}

sh_init
cli_init
sh_start || bail "turtled did not start on the private libvirt host"
td_tenant acme || bail "no tenant acme"
A=$TOKEN
# The tenant over TCP, as it would be from elsewhere.
ta() { ctl --url "http://127.0.0.1:$TD_PORT" --token "$A" "$@"; }

# console_has REGEX SECONDS: polls `stack console l1 --tail 200` until a line matches.
console_has() {
    local deadline=$(($(now_ms) + $2 * 1000))
    while :; do
        ta stack console l1 --tail 200
        CONSOLE=$(tr -d '\r' <<<"$OUT")
        [ "$RC" = 0 ] && grep -qE "$1" <<<"$CONSOLE" && return 0
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 1
    done
}

# state_is STATE DESC: the API's state of l1.
state_is() {
    api_tn "$A" GET /v1/stacks/l1
    is "$(jb .stack.state)" "$1" "$2"
}

# ---- images ------------------------------------------------------------------------------------
ta image create l1-kernel --kind kernel --file "$SH_KERNEL"
is "$RC" 0 "image create l1-kernel --kind kernel --file vmlinuz: exit 0" || diag "$ERR"
is "$(jq -r '[.image.state, .image.size, .image.sha256] | @tsv' <<<"$OUT")" \
    "$(printf 'ready\t%s\t%s' "$(stat -c %s "$SH_KERNEL")" "$(sha256sum "$SH_KERNEL" | cut -d' ' -f1)")" \
    "... ready, with the file's size and SHA-256"
[ "$(grep -c '^upload l1-kernel: [0-9]*% (' <<<"$ERR")" -ge 3 ] &&
    grep -Eq '^upload l1-kernel: 100% \(([0-9.]+ [KM]iB) of \1\)$' <<<"$ERR"
ok $? "... progress lines on stderr (not a terminal), the last at 100%" || diag "$ERR"
api_tn "$A" GET /v1/images/l1-kernel
same_json "$OUT" "$BODY" "... json output is the image as turtled has it"

ta --format table image create l1-initrd --kind initrd --file "$SH_INITRD"
is "$RC" 0 "image create l1-initrd --kind initrd --file initrd.img (table): exit 0" || diag "$ERR"
grep -Eq '^state: +ready$' <<<"$OUT" &&
    grep -Eq "^sha256: +$(sha256sum "$SH_INITRD" | cut -d' ' -f1)\$" <<<"$OUT"
ok $? "... the table: ready, the file's SHA-256"

api_tn "$A" PUT /v1/images/l1-initrd/data -T "$SH_INITRD" -H 'Content-Type: application/octet-stream'
if [ "$STATUS" = 200 ]; then
    ta image upload l1-initrd "$SH_INITRD"
    is "$RC $(jq -r .image.state <<<"$OUT")" "0 ready" "image upload onto a ready image (turtled takes it): exit 0, ready"
else
    td_error_fields
    ta image upload l1-initrd "$SH_INITRD"
    is "$RC $(tail -n1 <<<"$ERR")" "1 turtlectl: $ERR_MESSAGE" \
        "image upload onto a ready image: exit 1, the API's message ($ERR_MESSAGE)"
fi
head -c 65536 /dev/urandom >"$TD_DIR/junk.bin"
ta image create junk --kind kernel --file "$TD_DIR/junk.bin"
is "$RC" 1 "image create --file of a kernel that is none: exit 1" || diag "$OUT"
grep -q '^turtlectl: ' <<<"$(tail -n1 <<<"$ERR")"
ok $? "... with turtled's refusal: $(tail -n1 <<<"$ERR")"
api_tn "$A" GET /v1/images/junk
is "$STATUS" 404 "... and no image junk is left"

ta image list
api_tn "$A" GET /v1/images
same_json "$OUT" "$BODY" "image list: json output is the API's answer"
is "$(jq -r '[.images[] | .name + "=" + .state] | sort | join(" ")' <<<"$OUT")" \
    "l1-initrd=ready l1-kernel=ready" "... both images ready"

# ---- stack create --wait -------------------------------------------------------------------------
ta stack create l1 --vcpus 1 --memory 512 --kernel l1-kernel --initrd l1-initrd \
    --cmdline console=ttyS0 --wait
is "$RC $(jq -r .operation.status <<<"$OUT")" "0 succeeded" \
    "stack create l1 (kernel boot) --wait: exit 0, the operation succeeded" || diag "$ERR" "$OUT"
grep -Eq '^operation [0-9a-f-]{36}: succeeded 100%' <<<"$ERR"
ok $? "... progress lines on stderr end with succeeded 100%" || diag "$ERR"
state_is running "... and the stack is running"
op_id=$(jq -r .operation.id <<<"$OUT")
api_tn "$A" GET "/v1/operations/$op_id"
same_json "$OUT" "$BODY" "... the operation printed is the API's final one"

ta stack create l1 --vcpus 1 --memory 512 --kernel l1-kernel
api_tn "$A" POST /v1/stacks --json '{"name":"l1","vcpus":1,"memory_mib":512,"boot":{"kernel":"l1-kernel"}}'
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "stack create of a taken name: exit 1, the API's message"

console_has 'TURTLES-L1 READY' "$boot_timeout"
ok $? "stack console l1 --tail 200 shows TURTLES-L1 READY within $boot_timeout s" ||
    diag "$(tail -n 20 <<<"$CONSOLE")" "$ERR"
ta stack console l1 --tail 3
# Empty lines count: the L1's serial shell writes some (prompts, echoes).
is "$RC $(printf '%s' "$OUT" | awk 'END { print NR }')" "0 3" "stack console --tail 3: exit 0, three lines" ||
    diag "$(printf '%s' "$OUT" | od -c | tail -n 12)"

# --follow: new output comes while it runs.
console_has 'TURTLES-L2 HB [0-9]+' 60
last_hb=$(grep -o 'TURTLES-L2 HB [0-9]*' <<<"$CONSOLE" | tail -n1 | awk '{print $3}')
td_bg_start follow "$CTL" --url "http://127.0.0.1:$TD_PORT" --token "$A" stack console l1 --tail 1 \
    --follow >"$TD_DIR/follow.out" 2>"$TD_DIR/follow.err"
deadline=$(($(now_ms) + 60000))
newer=0
while [ "$(now_ms)" -lt "$deadline" ]; do
    hb=$(tr -d '\r' <"$TD_DIR/follow.out" | grep -o 'TURTLES-L2 HB [0-9]*' | tail -n1 | awk '{print $3}')
    if [ -n "$hb" ] && [ -n "$last_hb" ] && [ "$hb" -gt "$last_hb" ]; then
        newer=1
        break
    fi
    sleep 0.5
done
td_bg_stop follow
ok $((1 - newer)) "stack console --follow streams new output (an L2 heartbeat after #${last_hb:-?})" ||
    diag "$(tail -n 5 "$TD_DIR/follow.out")" "$(cat "$TD_DIR/follow.err")"

# ---- show, list ---------------------------------------------------------------------------------
ta stack show l1
api_tn "$A" GET /v1/stacks/l1
same_json "$OUT" "$BODY" "stack show l1: json output is the API's answer"
ta stack show l1 --format table
grep -Eq '^state: +running$' <<<"$OUT" && grep -Eq '^boot: +kernel l1-kernel, initrd l1-initrd$' <<<"$OUT" &&
    grep -Eq '^cmdline: +console=ttyS0$' <<<"$OUT" && grep -Eq '^backend: +tcg$' <<<"$OUT"
ok $? "stack show --format table: running, its boot, cmdline and backend tcg"
ta stack show l1 --format yaml
yaml_matches "$OUT" "$BODY" "stack show --format yaml reads back as the API's answer"

# A second stack, from a spec file, defined but not started.
printf '{"name":"ignored","vcpus":1,"memory_mib":256,"boot":{"kernel":"l1-kernel","initrd":"l1-initrd"}}' \
    >"$TD_DIR/spec.json"
ta stack create l2 --file "$TD_DIR/spec.json" --no-start --wait
is "$RC" 0 "stack create l2 --file SPEC --no-start --wait: exit 0" || diag "$ERR"
api_tn "$A" GET /v1/stacks/l2
is "$(jb -r '[.stack.state, .stack.start, .stack.memory_mib] | @tsv')" "$(printf 'stopped\tfalse\t256')" \
    "... NAME replaced the file's name, --no-start its start: l2 is stopped"

ta stack list
api_tn "$A" GET /v1/stacks
same_json "$OUT" "$BODY" "stack list: json output is GET /v1/stacks's answer"
is "$(jq -r '[.stacks[].name] | sort | join(" ")' <<<"$OUT")" "l1 l2" "... both stacks"
ALL=$BODY
ta stack list --limit 1
api_tn "$A" GET '/v1/stacks?limit=1'
same_json "$OUT" "$BODY" "stack list --limit 1: json output is the API's first page"
is "$(jq -r '(.stacks | length | tostring) + " " + (.next != null | tostring)' <<<"$OUT")" "1 true" \
    "... one stack and a next cursor"
ta stack list --limit 1 --all
same_json "$OUT" "$ALL" "stack list --limit 1 --all: every page merged, as the one-page answer"
ta stack list --format table
is "$(awk 'NR > 1 {print $1, $3}' <<<"$OUT" | sort | paste -sd,)" "l1 running,l2 stopped" \
    "stack list --format table: name and state of each"
# No --format: a table in a pipe too, as on a terminal (virsh's habit); scripts ask for json.
"$CTL" --url "http://127.0.0.1:$TD_PORT" --token "$A" stack list 2>&1 | cat >"$TD_DIR/piped.out"
is "$(cat "$TD_DIR/piped.out")" "$OUT" "stack list | cat (no --format): the same table"
op stack list --tenant acme
same_json "$OUT" "$ALL" "the operator's stack list --tenant acme: the tenant's stacks"

# ---- actions ------------------------------------------------------------------------------------
for step in "pause paused" "resume running" "stop stopped" "start running"; do
    read -r action want <<<"$step"
    ta stack "$action" l1 --wait
    is "$RC $(jq -r .operation.status <<<"$OUT")" "0 succeeded" "stack $action l1 --wait: exit 0, succeeded" ||
        diag "$ERR"
    state_is "$want" "... l1 is $want"
done
ta stack resume l1
api_tn "$A" POST /v1/stacks/l1/actions --json '{"action":"resume"}'
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "resume of a running stack: exit 1, the API's 409 message"
ta stack reboot l1 --format table
is "$RC" 0 "stack reboot l1 (no --wait, table): exit 0"
reboot_id=$(awk '$1 == "id:" {print $2}' <<<"$OUT")
grep -Eq '^status: +(pending|running|succeeded)$' <<<"$OUT" && [ -n "$reboot_id" ]
ok $? "... the operation's table: its id and status" || diag "$OUT"
ta operation wait "$reboot_id"
is "$RC $(jq -r .operation.status <<<"$OUT")" "0 succeeded" "operation wait on the reboot: succeeded"
state_is running "... l1 is running again"

# ---- stats --------------------------------------------------------------------------------------
ta stack stats l1
is "$RC $(jq -r '.stats.stack' <<<"$OUT")" "0 l1" "stack stats l1: exit 0, the stats of l1"
jq -e '.stats.cpu.time_ns > 0 and .stats.memory.maximum_kib > 0' <<<"$OUT" >/dev/null
ok $? "... CPU time and memory of the running L1" || diag "$OUT"
td_check_body "turtlectl stack stats's json" "$(as_file stats.json "$OUT")" GET "/v1/stacks/{name}/stats" 200
ta stack stats l1 --format table
grep -Eq '^cpu time: +[0-9.]+ s over 1 vCPUs$' <<<"$OUT" && grep -Eq '^memory: +[0-9]+ KiB of [0-9]+ KiB$' <<<"$OUT"
ok $? "stack stats --format table: cpu time and memory rows" || diag "$OUT"
ta stack stats l2 --format table
grep -Eq '^cpu time: +-$' <<<"$OUT"
ok $? "... a stopped stack has no CPU figures (-)" || diag "$OUT"

# ---- a stack holding a device (defined, not started) --------------------------------------------
op device-class create test-edu --kind emulated --model edu --capacity 1
is "$RC" 0 "device-class create test-edu (capacity 1): exit 0"
ta stack create dev --vcpus 1 --memory 256 --kernel l1-kernel --device test-edu --no-start --wait
is "$RC" 0 "stack create dev --device test-edu --no-start --wait: exit 0" || diag "$ERR"
ta stack show dev
is "$(jq -c '[.stack.devices, .stack.nesting.iommu]' <<<"$OUT")" \
    '[[{"class":"test-edu","id":"test-edu-0","model":"edu"}],"intel"]' \
    "stack show: it holds test-edu-0 (edu), with the intel vIOMMU by default"
ta stack show dev --format table
grep -Eq '^devices: +test-edu-0 \(test-edu, edu\)$' <<<"$OUT"
ok $? "... as a table: devices: test-edu-0 (test-edu, edu)" || diag "$OUT"
op device list --class test-edu --format table
grep -Eq '^test-edu-0 +test-edu +edu +- +acme/dev$' <<<"$OUT"
ok $? "device list: test-edu-0 is held by acme/dev" || diag "$OUT"
ta stack create dev2 --vcpus 1 --memory 256 --kernel l1-kernel --device test-edu --no-start
api_tn "$A" POST /v1/stacks --json \
    '{"name":"dev2","vcpus":1,"memory_mib":256,"boot":{"kernel":"l1-kernel"},"devices":[{"class":"test-edu"}],"start":false}'
td_error_fields
is "$RC $ERR $ERR_CODE" "1 turtlectl: $ERR_MESSAGE no_capacity" \
    "a second stack asking for the capacity-1 class: exit 1, the API's no_capacity message"
op device-class delete test-edu
api_op DELETE /v1/device-classes/test-edu
td_error_fields
is "$RC $ERR $ERR_STATUS" "1 turtlectl: $ERR_MESSAGE 409" "device-class delete while a stack holds its device: exit 1, the API's 409"
ta stack device attach dev test-edu --wait
api_tn "$A" POST /v1/stacks/dev/devices --json '{"class":"test-edu"}'
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "stack device attach of the edu: exit 1, the API's message"
ta stack delete dev --wait
op device list --class test-edu
is "$RC $(jq -c '.devices[0].stack' <<<"$OUT")" "0 null" "stack delete --wait: test-edu-0 is free again"
op device-class delete test-edu --format table
is "$RC $OUT" "0 deleted device class test-edu" "device-class delete once free: exit 0, says so"

# ---- delete -------------------------------------------------------------------------------------
ta image delete l1-kernel
api_tn "$A" DELETE /v1/images/l1-kernel
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "image delete while stacks use it: exit 1, the API's message"
for s in l1 l2; do
    ta stack delete "$s" --wait
    is "$RC $(jq -r .operation.status <<<"$OUT")" "0 succeeded" "stack delete $s --wait: exit 0, succeeded" ||
        diag "$ERR"
done
ta stack show l1
is "$RC $ERR" "1 turtlectl: stack 'l1' not found" "stack show l1 after delete: exit 1, not found"
ta stack list
is "$(jq -c .stacks <<<"$OUT")" "[]" "stack list: empty"
is "$(sh_domains | paste -sd' ')" "" "the private libvirt host has no domain left"
ta image delete l1-kernel --format table
is "$RC $OUT" "0 deleted image l1-kernel" "image delete l1-kernel once no stack uses it: exit 0"

cli_done
td_done
