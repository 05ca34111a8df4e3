#!/usr/bin/env bash
# turtlectl device-class, device, stack create --device, stack device
# attach/detach and the tenant's devices quota against a live turtled (test
# backend): usage errors exit 2 with the verb's usage (an unknown verb with
# where the verbs are); each verb's json is the API's answer and its table
# says the same; a stack holding an edu
# device shows it, device list names the holder, a capacity-1 class refuses
# a second stack (no_capacity, nothing created), class delete is refused
# while a device is held and works once the stack is gone; a vfio class on
# a host without IOMMU groups is refused with the API's reason.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh
. tests/lib/turtlectl.sh

td_init
cli_init

# unknown_verb_is MESSAGE NOUN DESC ARGS...: exit 2 with MESSAGE and where
# the NOUN's verbs are, and no usage.
unknown_verb_is() {
    local message=$1 noun=$2 desc=$3
    shift 3
    ctl --socket "$TD_DIR/nosuch.sock" "$@"
    is "$RC $ERR" "2 turtlectl: $message
Run 'turtlectl help $noun' for the list." "$desc"
}
DC="device-class create NAME --model edu|virtio-rng --capacity N"
cli_usage_is "device-class: missing verb" "$DC" "device-class without a verb: exit 2" device-class
unknown_verb_is "device-class: unknown verb 'add'" device-class "device-class add (the verb is create): exit 2" \
    device-class add x
unknown_verb_is "device-class: unknown verb 'creat'; did you mean 'create'?" device-class \
    "device-class creat: exit 2, create suggested" device-class creat x
cli_usage_is "device-class create: missing NAME" "$DC" "device-class create without NAME: exit 2" \
    device-class create --kind emulated --model edu --capacity 1
cli_usage_is "device-class create: missing --kind (emulated or vfio)" "$DC" \
    "device-class create without --kind: exit 2" device-class create x --model edu --capacity 1
cli_usage_is "device-class create: --kind: must be emulated or vfio (not 'pci')" "$DC" \
    "--kind pci: exit 2" device-class create x --kind pci
cli_usage_is "device-class create: missing --model (edu or virtio-rng) for --kind emulated" "$DC" \
    "an emulated class without --model: exit 2" device-class create x --kind emulated --capacity 1
cli_usage_is "device-class create: --model: must be edu or virtio-rng (not 'e1000')" "$DC" \
    "--model e1000: exit 2" device-class create x --kind emulated --model e1000 --capacity 1
cli_usage_is "device-class create: missing --capacity N for --kind emulated" "$DC" \
    "an emulated class without --capacity: exit 2" device-class create x --kind emulated --model edu
cli_usage_is "device-class create: --capacity: must be a whole number between 1 and 64 (not '0')" "$DC" \
    "--capacity 0: exit 2" device-class create x --kind emulated --model edu --capacity 0
cli_usage_is "device-class create: --capacity: must be a whole number between 1 and 64 (not '65')" "$DC" \
    "--capacity 65: exit 2" device-class create x --kind emulated --model edu --capacity 65
cli_usage_is "device-class create: --address and --force go with --kind vfio" "$DC" \
    "an emulated class with --address: exit 2" \
    device-class create x --kind emulated --model edu --capacity 1 --address 0000:3b:00.0
cli_usage_is "device-class create: missing --address PCI (0000:3b:00.0) for --kind vfio" "$DC" \
    "a vfio class without --address: exit 2" device-class create x --kind vfio
cli_usage_is "device-class create: --model and --capacity go with --kind emulated (a vfio class has one device per --address)" \
    "$DC" "a vfio class with --capacity: exit 2" \
    device-class create x --kind vfio --address 0000:3b:00.0 --capacity 2
cli_usage_is "device-class create: --force takes no value" "$DC" "--force=yes: exit 2" \
    device-class create x --kind vfio --address 0000:3b:00.0 --force=yes
cli_usage_is "device-class create: unknown option '--adress'; did you mean '--address'?" "$DC" \
    "--adress: exit 2, --address suggested" device-class create x --kind vfio --adress 0000:3b:00.0
cli_usage_is "device-class set: nothing to change (give --capacity or --description)" \
    "device-class set NAME [--capacity N] [--description TEXT]" \
    "device-class set without an option: exit 2" device-class set x
cli_usage_is "device-class set: unknown option '--model'" "device-class set NAME [--capacity N]" \
    "device-class set --model: exit 2" device-class set x --model edu
cli_usage_is "device-class show: missing NAME" "device-class show NAME" "device-class show without NAME: exit 2" \
    device-class show
cli_usage_is "device-class list: unexpected argument 'x'" "device-class list [--limit N" \
    "device-class list with an argument: exit 2" device-class list x
cli_usage_is "device-class delete: missing NAME" "device-class delete NAME" \
    "device-class delete without NAME: exit 2" device-class delete

DL="device list [--class CLASS]"
cli_usage_is "device: missing verb" "$DL" "device without a verb: exit 2" device
unknown_verb_is "device: unknown verb 'show'" device "device show (only list): exit 2" device show x
cli_usage_is "device list: --class needs a value" "$DL" "device list --class without a value: exit 2" \
    device list --class
cli_usage_is "device list: unexpected argument 'x'" "$DL" "device list with an argument: exit 2" device list x

cli_usage_is "stack create: --device: must be a device class name: 1-63 lowercase letters, digits and '-' (not '0000:3b:00.0')" \
    "stack create NAME --vcpus N --memory MIB" "stack create --device PCI (the old form): exit 2, a class is wanted" \
    stack create web --vcpus 1 --memory 256 --kernel k --device 0000:3b:00.0
SA="stack device attach NAME CLASS [--wait]"
SD="stack device detach NAME DEVICE-ID [--wait]"
cli_usage_is "stack device: missing verb" "$SA" "stack device without a verb: exit 2" stack device
unknown_verb_is "stack device: unknown verb 'add'" "stack device" "stack device add: exit 2" stack device add web rng
cli_usage_is "stack device attach: missing CLASS" "$SA" "stack device attach without CLASS: exit 2" \
    stack device attach web
cli_usage_is "stack device attach: missing NAME" "$SA" "stack device attach with nothing: exit 2" \
    stack device attach
cli_usage_is "stack device attach: unexpected argument 'x'" "$SA" "stack device attach with three: exit 2" \
    stack device attach web rng x
cli_usage_is "stack device detach: missing DEVICE-ID" "$SD" "stack device detach without DEVICE-ID: exit 2" \
    stack device detach web
cli_usage_is "stack device detach: unknown option '--force'" "$SD" "stack device detach --force: exit 2" \
    stack device detach web rng-0 --force
cli_usage_is "tenant create: --devices: must be a whole number between 0 and 1024 (not '1025')" \
    "tenant create NAME [--stacks N]" "tenant create --devices 1025: exit 2" tenant create acme --devices 1025

ctl device-class --help
r=0
for verb in create list show set edit delete; do grep -q "turtlectl device-class $verb" <<<"$OUT" || r=1; done
for opt in --kind --model --capacity --address --force --description; do grep -q -- "$opt" <<<"$OUT" || r=1; done
ok "$((RC + r))" "device-class --help: exit 0, every verb and option on stdout"
ctl stack --help
grep -q 'turtlectl stack device attach NAME CLASS \[--wait\]' <<<"$OUT" &&
    grep -q 'turtlectl stack device detach NAME DEVICE-ID \[--wait\]' <<<"$OUT" &&
    grep -q -- '--device CLASS' <<<"$OUT"
ok "$((RC + $?))" "stack --help: exit 0, --device CLASS and stack device attach/detach"
ctl --help
grep -q '^  device-class ' <<<"$OUT" && grep -q '^  device ' <<<"$OUT"
ok "$((RC + $?))" "--help: lists the device-class and device nouns"

# ---- with turtled -------------------------------------------------------------------------
td_start || bail "turtled did not start"
td_tenant acme || bail "no tenant acme"
A=$TOKEN
ta() { ctl --url "http://127.0.0.1:$TD_PORT" --token "$A" "$@"; }

# create (emulated)
op device-class create test-edu --kind emulated --model edu --capacity 1 --description "QEMU edu for tests"
is "$RC" 0 "device-class create test-edu --kind emulated --model edu --capacity 1: exit 0"
CREATED=$OUT
api_op GET /v1/device-classes/test-edu
same_json "$CREATED" "$BODY" "... json output is the class turtled now has ({\"device_class\":...})"
is "$(jq -c '.device_class | [.kind, .model, .capacity, .in_use, .available, .addresses, .description]' <<<"$CREATED")" \
    '["emulated","edu",1,0,1,[],"QEMU edu for tests"]' "... emulated edu, capacity 1, none in use, the description"
td_check_body "turtlectl device-class create's json" "$(as_file dc.json "$CREATED")" POST /v1/device-classes 201

op device-class create rng --kind emulated --model virtio-rng --capacity 2 --format table
is "$RC" 0 "device-class create rng (virtio-rng, 2) as a table: exit 0"
grep -Eq '^name: +rng$' <<<"$OUT" && grep -Eq '^kind: +emulated$' <<<"$OUT" &&
    grep -Eq '^model: +virtio-rng$' <<<"$OUT" && grep -Eq '^capacity: +2$' <<<"$OUT" &&
    grep -Eq '^available: +2$' <<<"$OUT" && grep -Eq '^description: +-$' <<<"$OUT"
ok $? "... the table: name, kind, model, capacity, available, no description"

op device-class create test-edu --kind emulated --model edu --capacity 1
api_op POST /v1/device-classes --json '{"name":"test-edu","kind":"emulated","model":"edu","capacity":1}'
td_error_fields
is "$RC $ERR $OUT" "1 turtlectl: $ERR_MESSAGE " "a taken name: exit 1, the API's message ($ERR_MESSAGE), nothing on stdout"
op device-class create Bad_Name --kind emulated --model edu --capacity 1
is "$RC" 1 "a bad name: exit 1 (the API judges names)"
like "$ERR" "^turtlectl: name: " "... and its message names the field"

# A vfio class: the test host has no IOMMU groups (nor that function).
op device-class create gpus --kind vfio --address 0000:3b:00.0 --address 0000:3b:00.1 --force
api_op POST /v1/device-classes --json '{"name":"gpus","kind":"vfio","addresses":["0000:3b:00.0","0000:3b:00.1"],"force":true}'
td_error_fields
is "$RC $ERR $OUT" "1 turtlectl: $ERR_MESSAGE " "a vfio class on the test host: exit 1, the API's message, nothing on stdout"
like "$ERR_STATUS $ERR_MESSAGE" '^(404|409) .*(IOMMU|iommu|PCI|pci)' \
    "... a 404/409 whose message says why (IOMMU groups or the PCI device): $ERR_MESSAGE"
api_op GET /v1/device-classes/gpus
is "$STATUS" 404 "... and no class gpus was created"
op device-class create gpus --kind vfio --address 3b:00.0
api_op POST /v1/device-classes --json '{"name":"gpus","kind":"vfio","addresses":["3b:00.0"]}'
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "a vfio class with a short address: exit 1, the API's 400 message ($ERR_MESSAGE)"

# list and show
op device-class list
api_op GET /v1/device-classes
same_json "$OUT" "$BODY" "device-class list: json output is GET /v1/device-classes's answer"
is "$(jq -r '[.device_classes[].name] | join(" ")' <<<"$OUT")" "rng test-edu" "... both classes, by name"
op device-class list --format table
head -n1 <<<"$OUT" | grep -Eq '^NAME +KIND +MODEL +CAPACITY +IN-USE +AVAILABLE +DESCRIPTION$'
ok $? "device-class list --format table: the header names the columns"
is "$(awk 'NR > 1 {print $1}' <<<"$OUT" | paste -sd' ')" "rng test-edu" "... a row per class"
grep -Eq '^test-edu +emulated +edu +1 +0 +1 +QEMU edu for tests$' <<<"$OUT" &&
    grep -Eq '^rng +emulated +virtio-rng +2 +0 +2 +-$' <<<"$OUT"
ok $? "... each row: kind, model, capacity, in use, available, description ('-' for none)"
op device-class list --format yaml
grep -q '^device_classes:$' <<<"$OUT" && grep -q '^- name: rng$' <<<"$OUT"
ok $? "device-class list --format yaml: device_classes, a sequence"
yaml_matches "$OUT" "$BODY" "... the yaml reads back as the API's answer"
ta device-class list
api_tn "$A" GET /v1/device-classes
is "$RC" 0 "a tenant may list the classes: exit 0"
same_json "$OUT" "$BODY" "... the API's answer"

op device-class show test-edu
api_op GET /v1/device-classes/test-edu
same_json "$OUT" "$BODY" "device-class show: json output is the API's answer"
op device-class show test-edu --format table
grep -Eq '^in use: +0$' <<<"$OUT" && grep -Eq '^description: +QEMU edu for tests$' <<<"$OUT" &&
    grep -Eq '^created: +[0-9]{4}-' <<<"$OUT"
ok $? "device-class show --format table: in use, description, created"
op device-class show nosuch
api_op GET /v1/device-classes/nosuch
td_error_fields
is "$RC $ERR $OUT" "1 turtlectl: $ERR_MESSAGE " "device-class show nosuch: exit 1, the API's message"

# set
op device-class set rng --capacity 3 --description "entropy"
api_op GET /v1/device-classes/rng
is "$RC $(jb -c '.device_class | [.capacity, .available, .description]')" '0 [3,3,"entropy"]' \
    "device-class set rng --capacity 3 --description: exit 0, turtled has both"
same_json "$OUT" "$BODY" "... json output is the class as changed"
op device-class set rng --capacity 1
is "$RC $(jq -c '.device_class | [.capacity, .description]' <<<"$OUT")" '0 [1,"entropy"]' \
    "device-class set --capacity only: the description stays"
ta device-class set rng --capacity 2
api_tn "$A" PATCH /v1/device-classes/rng --json '{"capacity":2}'
td_error_fields
is "$RC $ERR $STATUS" "1 turtlectl: $ERR_MESSAGE 403" "a tenant's device-class set: exit 1, the API's 403 message"

# tenants' devices quota
op tenant create beta --devices 2 --format table
is "$RC" 0 "tenant create beta --devices 2: exit 0"
grep -Eq '^quota: +4 stacks, 8 vCPUs, 8192 MiB memory, 50 GiB disk, 2 devices, 4 networks$' <<<"$OUT"
ok $? "... the table's quota says 2 devices"
api_op GET /v1/tenants/beta
is "$(jb .tenant.quota.devices)" 2 "... and turtled has quota.devices 2"
op tenant set beta --devices 0
api_op GET /v1/tenants/beta
is "$RC $(jb .tenant.quota.devices)" "0 0" "tenant set beta --devices 0: exit 0, quota.devices 0"
op tenant list --format table
head -n1 <<<"$OUT" | grep -Eq ' DISK +DEVICES +NETWORKS +CREATED$' && grep -Eq '^acme +4 +8 +8192 MiB +50 GiB +4 +4 +' <<<"$OUT"
ok $? "tenant list --format table: a DEVICES column (acme's default 4)"

# device list with free devices
op device list
api_op GET /v1/devices
same_json "$OUT" "$BODY" "device list: json output is GET /v1/devices's answer"
is "$(jq -r '[.devices[].id] | join(" ")' <<<"$OUT")" "rng-0 test-edu-0" "... rng-0 and test-edu-0"
op device list --class test-edu --format table
is "$RC $OUT" "0 $(printf 'ID          CLASS     MODEL  ADDRESS  STACK\ntest-edu-0  test-edu  edu    -        -')" \
    "device list --class test-edu as a table: the header, test-edu-0 free ('-' holder, no address)"
api_op GET '/v1/devices?class=test-edu'
op device list --class test-edu
same_json "$OUT" "$BODY" "device list --class: json output is GET /v1/devices?class=test-edu's answer"
ta device list
is "$RC $(jq -c .devices <<<"$OUT")" "0 []" "a tenant's device list: none (its stacks hold none)"

# stack device attach/detach: a stack that does not exist is the API's 404.
ta stack device attach nosuch rng --wait
api_tn "$A" POST /v1/stacks/nosuch/devices --json '{"class":"rng"}'
td_error_fields
is "$RC $ERR $STATUS" "1 turtlectl: $ERR_MESSAGE 404" "stack device attach to a missing stack: exit 1, the API's message"
ta stack device detach nosuch rng-0 --wait
api_tn "$A" DELETE /v1/stacks/nosuch/devices/rng-0
td_error_fields
is "$RC $ERR $STATUS" "1 turtlectl: $ERR_MESSAGE 404" "stack device detach from a missing stack: exit 1, the API's message"

# A stack holding a device needs a ready kernel image, which the test
# backend cannot store: tests/system/cli-stacks.t covers that part.

# delete
op device-class delete rng
is "$RC $OUT" "0 " "device-class delete rng (json): exit 0, nothing on stdout"
api_op GET /v1/device-classes/rng
is "$STATUS" 404 "... and rng is gone"
op device-class delete rng
api_op DELETE /v1/device-classes/rng
td_error_fields
is "$RC $ERR $ERR_STATUS" "1 turtlectl: $ERR_MESSAGE 404" "deleting it again: exit 1, the API's 404 message"

cli_done
td_done
