#!/usr/bin/env bash
# The device pool through the API (test backend): device classes are the
# operator's (tenants may read them), each bad body is a 400 that changes
# nothing, a vfio class on a host without IOMMU groups is a 409 that says
# why, capacity grows and shrinks, a class goes only when none of its
# devices is held, /v1/devices lists every device; stack specs name classes
# (unknown class 400), and hot-plug routes refuse what they cannot do.
# Allocation with real stacks is tests/system/devices.t (the test backend
# cannot store images, so it creates no stack).
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh

td_init
td_start || bail "turtled did not start"
td_tenant acme || bail "no tenant acme"
acme=$TOKEN

# ---- classes -------------------------------------------------------------------------
api_op GET /v1/device-classes
is "$STATUS $BODY" '200 {"device_classes":[],"next":null}' "no device class at first"
api_op POST /v1/device-classes --json '{"name":"test-edu","kind":"emulated","model":"edu","capacity":1,"description":"QEMU edu test device"}'
is "$STATUS" 201 "the operator creates an emulated edu class: 201"
is "$(hdr Location)" /v1/device-classes/test-edu "... Location names it"
is "$(jb -c '.device_class | [.name, .kind, .model, .capacity, .in_use, .available, .addresses, .force, .description]')" \
    '["test-edu","emulated","edu",1,0,1,[],false,"QEMU edu test device"]' "... as asked, all of it available"
api_op POST /v1/device-classes --json '{"name":"rng","kind":"emulated","model":"virtio-rng","capacity":2}'
is "$STATUS $(jb .device_class.description)" "201 null" "a virtio-rng class of 2 without description"

api_op GET /v1/devices
is "$(jb -c '[.devices[] | [.id, .class, .model, .address, .stack]]')" \
    '[["rng-0","rng","virtio-rng",null,null],["rng-1","rng","virtio-rng",null,null],["test-edu-0","test-edu","edu",null,null]]' \
    "GET /v1/devices: every device, free, by class and number"
api_op GET '/v1/devices?class=rng'
is "$(jb -c '[.devices[].id]')" '["rng-0","rng-1"]' "?class=rng: only rng's"
api_op GET '/v1/devices?class=Bad_Name'
is_error 400 bad_request "?class with a name that cannot be a class: 400"

api_op POST /v1/device-classes --json '{"name":"rng","kind":"emulated","model":"edu","capacity":1}'
is_error 409 conflict "a taken name: 409"
api_tn "$acme" POST /v1/device-classes --json '{"name":"mine","kind":"emulated","model":"edu","capacity":1}'
is_error 403 forbidden "a tenant cannot create a class: 403"
api_tn "$acme" GET /v1/device-classes
is "$STATUS $(jb -c '[.device_classes[].name]')" '200 ["rng","test-edu"]' "a tenant reads the classes, by name"
api_tn "$acme" GET /v1/devices
is "$STATUS $(jb -c .devices)" '200 []' "a tenant sees only devices its stacks hold: none"

# ---- bad bodies: 400 naming the field, nothing created -----------------------------------
before=$(td_sql "SELECT count(*) FROM devices")
bad_class() { # JSON FIELD DESC
    api_op POST /v1/device-classes --json "$1"
    is_error 400 bad_request "$3"
    [[ $ERR_MESSAGE == "$2"* ]]
    ok $? "... the message starts with '$2' ($ERR_MESSAGE)"
}
bad_class '{"kind":"emulated","model":"edu","capacity":1}' "name:" "no name"
bad_class '{"name":"x","kind":"magic","model":"edu","capacity":1}' "kind:" "an unknown kind"
bad_class '{"name":"x","kind":"emulated","capacity":1}' "model:" "emulated without a model"
bad_class '{"name":"x","kind":"emulated","model":"gpu","capacity":1}' "model:" "an unknown emulated model"
bad_class '{"name":"x","kind":"emulated","model":"edu"}' "capacity:" "emulated without a capacity"
bad_class '{"name":"x","kind":"emulated","model":"edu","capacity":0}' "capacity:" "capacity 0"
bad_class '{"name":"x","kind":"emulated","model":"edu","capacity":65}' "capacity:" "capacity 65"
bad_class '{"name":"x","kind":"emulated","model":"edu","capacity":1,"addresses":["0000:3b:00.0"]}' "addresses:" "addresses on an emulated class"
bad_class '{"name":"x","kind":"vfio"}' "addresses:" "vfio without addresses"
bad_class '{"name":"x","kind":"vfio","addresses":[]}' "addresses:" "vfio with no address"
bad_class '{"name":"x","kind":"vfio","addresses":["0000:3B:00.0"]}' "addresses[0]:" "an upper-case address"
bad_class '{"name":"x","kind":"vfio","addresses":["0000:3b:20.0"]}' "addresses[0]:" "slot 0x20"
bad_class '{"name":"x","kind":"vfio","addresses":["0000:3b:00.0","0000:3b:00.0"]}' "addresses[1]:" "a repeated address"
bad_class '{"name":"x","kind":"vfio","addresses":["0000:3b:00.0"],"capacity":1}' "capacity:" "capacity on a vfio class"
bad_class '{"name":"x","kind":"emulated","model":"edu","capacity":1,"extra":1}' "extra:" "an unknown key"
bad_class "{\"name\":\"$(printf 'c%.0s' {1..61})\",\"kind\":\"emulated\",\"model\":\"edu\",\"capacity\":1}" "name:" \
    "a class name of 61 characters (its devices' ids would not fit)"
is "$(td_sql "SELECT count(*) FROM devices") $(td_sql "SELECT count(*) FROM device_classes")" "$before 2" \
    "none of them created a class or a device"

# ---- vfio on a host without IOMMU groups -------------------------------------------------
groups=$(find /sys/kernel/iommu_groups -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
if [ "$groups" = 0 ]; then
    api_op POST /v1/device-classes --json '{"name":"gpus","kind":"vfio","addresses":["0000:3b:00.0"]}'
    is_error 409 conflict "a vfio class on this host (no IOMMU groups): 409"
    like "$ERR_MESSAGE" 'no IOMMU groups.*VT-d.*intel_iommu=on' "... saying why and what to do ($ERR_MESSAGE)"
    api_op GET /v1/device-classes/gpus
    is "$STATUS" 404 "... and no class was made"
else
    skip "this host has IOMMU groups: the no-IOMMU answer cannot be seen here" 3
fi

# ---- what tenants see of a vfio class ------------------------------------------------------
# (This host cannot make one; the row is written as turtled writes it.)
sqlite3 -cmd '.timeout 5000' "$TD_STATE/turtled.db" \
    "INSERT INTO device_classes (name, kind, model, force, created_at, updated_at) VALUES ('nics', 'vfio', 'vfio', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
     INSERT INTO devices (id, class, seq, address) VALUES ('nics-0', 'nics', 0, '0000:3b:00.0')"
api_op GET /v1/device-classes/nics
is "$(jb -c '.device_class | [.addresses, .force, .capacity]')" '[["0000:3b:00.0"],true,1]' "the operator sees a vfio class's addresses"
api_tn "$acme" GET /v1/device-classes/nics
is "$(jb -c '.device_class | [.addresses, .force, .capacity]')" '[[],false,1]' "a tenant does not: the host's PCI layout is the operator's"
api_tn "$acme" GET /v1/device-classes
is "$(jb -c '[.device_classes[] | select(.name == "nics") | .addresses]')" '[[]]' "... in the list neither"
api_op DELETE /v1/device-classes/nics
is "$STATUS" 204 "a free vfio class deletes"

# ---- capacity, description, delete ---------------------------------------------------------
api_op PATCH /v1/device-classes/rng --json '{"capacity":4,"description":"entropy"}'
is "$STATUS $(jb -c '.device_class | [.capacity, .available, .description]')" '200 [4,4,"entropy"]' \
    "PATCH capacity 4: two more devices"
api_op GET '/v1/devices?class=rng'
is "$(jb -c '[.devices[].id]')" '["rng-0","rng-1","rng-2","rng-3"]' "... numbered on"
api_op PATCH /v1/device-classes/rng --json '{"capacity":1,"description":null}'
is "$STATUS $(jb -c '.device_class | [.capacity, .description]')" '200 [1,null]' "shrinking to 1 (all free) and clearing the description"
api_op PATCH /v1/device-classes/rng --json '{}'
is_error 400 bad_request "a PATCH that changes nothing: 400"
api_op PATCH /v1/device-classes/nosuch --json '{"capacity":1}'
is_error 404 not_found "PATCH of an unknown class: 404"
api_tn "$acme" PATCH /v1/device-classes/rng --json '{"capacity":3}'
is_error 403 forbidden "a tenant cannot change a class"

# A held device keeps its class and its place.  The claim is written into
# the store as a create makes it (the test backend cannot create stacks).
sql_write() { sqlite3 -cmd '.timeout 5000' -cmd 'PRAGMA foreign_keys = ON' "$TD_STATE/turtled.db" "$1"; }
sql_write "INSERT INTO stacks (id, tenant_id, name, spec_json, vcpus, memory_mib, state, created_at, updated_at)
        SELECT '11111111-1111-4111-8111-111111111111', id, 'web', '{}', 1, 256, 'stopped', 'now', 'now'
        FROM tenants WHERE name = 'acme'" >/dev/null
sql_write "UPDATE devices SET stack_id = '11111111-1111-4111-8111-111111111111' WHERE id = 'test-edu-0'" >/dev/null
api_op GET /v1/device-classes/test-edu
is "$(jb -c '.device_class | [.in_use, .available]')" '[1,0]' "a held edu: in use 1, available 0"
api_op GET /v1/devices
is "$(jb -c '.devices[] | select(.id == "test-edu-0") | .stack')" \
    '{"id":"11111111-1111-4111-8111-111111111111","name":"web","tenant":"acme"}' "GET /v1/devices names the stack and tenant holding it"
api_tn "$acme" GET /v1/devices
is "$(jb -c '[.devices[].id]')" '["test-edu-0"]' "acme sees the device its stack holds"
api_op PATCH /v1/device-classes/test-edu --json '{"capacity":0}'
is_error 409 conflict "shrinking below a held device: 409"
api_op DELETE /v1/device-classes/test-edu
is_error 409 conflict "deleting a class with a held device: 409"
like "$ERR_MESSAGE" "held by stacks" "... saying so"
sql_write "DELETE FROM stacks WHERE name = 'web'" >/dev/null
api_op GET /v1/device-classes/test-edu
is "$(jb -c '.device_class | [.in_use, .available]')" '[0,1]' "the stack's row gone, its device is free again"
api_op DELETE /v1/device-classes/test-edu
is "$STATUS" 204 "now the class deletes: 204"
is "$(td_sql "SELECT count(*) FROM devices WHERE class = 'test-edu'")" 0 "... with its devices"

# ---- stacks and hot-plug routes ------------------------------------------------------------
spec() { printf '{"name":"s","vcpus":1,"memory_mib":256,"boot":{"kernel":"k"},"devices":%s}' "$1"; }
api_tn "$acme" POST /v1/stacks --json "$(spec '[{"class":"nosuch"}]')"
is_error 400 bad_request "a stack asking for an unknown class: 400"
like "$ERR_MESSAGE" "^devices\\[0\\]\\.class: device class 'nosuch' not found" "... naming the entry"
api_tn "$acme" POST /v1/stacks --json "$(spec '[{"class":"rng","model":"edu"}]')"
is_error 400 bad_request "a stack choosing a device's model: 400"
api_tn "$acme" POST /v1/stacks --json '{"name":"s","vcpus":1,"memory_mib":256,"boot":{"kernel":"k"},"nesting":{"iommu":"none"},"devices":[{"class":"rng"}]}'
is_error 400 bad_request "devices with nesting.iommu none: 400"
like "$ERR_MESSAGE" "^nesting.iommu" "... naming nesting.iommu ($ERR_MESSAGE)"
api_tn "$acme" POST /v1/stacks/nosuch/devices --json '{"class":"rng"}'
is_error 404 not_found "attaching to a stack that does not exist: 404"
api_tn "$acme" POST /v1/stacks/nosuch/devices --json '{"klass":"rng"}'
is_error 400 bad_request "an attach body without class: 400"
api_tn "$acme" DELETE /v1/stacks/nosuch/devices/rng-0
is_error 404 not_found "detaching from a stack that does not exist: 404"

# ---- quota -----------------------------------------------------------------------------------
api_op GET /v1/tenants/acme
is "$(jb .tenant.quota.devices)" 4 "a tenant's device quota defaults to 4"
api_op PATCH /v1/tenants/acme --json '{"quota":{"devices":1}}'
is "$STATUS $(jb .tenant.quota.devices)" "200 1" "the operator sets it to 1"
api_op PATCH /v1/tenants/acme --json '{"quota":{"devices":1025}}'
is_error 400 bad_request "a device quota over 1024: 400"

# ---- restart keeps the pool --------------------------------------------------------------------
api_op GET /v1/device-classes
classes=$BODY
td_stop && td_start || bail "turtled did not restart"
api_op GET /v1/device-classes
is "$BODY" "$classes" "the classes survive a restart"

td_done
