#!/usr/bin/env bash
# Networks through the API (test backend: libvirt's test driver keeps the
# networks in turtled's memory, where no other process sees them): a tenant's nat and isolated networks with subnets
# from the pool or its own, the operator's external ones shared with named
# tenants, who sees what (another tenant's network is 404), quotas, names,
# every bad body a clear error that creates nothing, overlapping subnets
# refused, NICs on stacks naming only networks the tenant may use, and a
# network in use kept (409).  Real bridges, DHCP, isolation and migration
# are tests/system/networks.t.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh

td_init
td_start || bail "turtled did not start"
td_tenant acme || bail "no tenant acme"
acme=$TOKEN
td_tenant beta '{"name":"beta","quota":{"networks":1}}' || bail "no tenant beta"
beta=$TOKEN

api_tn "$acme" GET /v1/networks
is "$STATUS $BODY" '200 {"networks":[],"next":null}' "no network at first"
api_op GET /v1/tenants/acme
is "$(jb .tenant.quota.networks)" 4 "a tenant's quota has 4 networks by default"

# ---- a tenant's own -------------------------------------------------------------------------
api_tn "$acme" POST /v1/networks --json '{"name":"lab","mode":"nat"}'
is "$STATUS" 201 "acme creates nat network lab: 201"
is "$(hdr Location)" /v1/networks/lab "... Location names it"
is "$(jb -c '.network | [.name, .tenant, .mode, .cidr, .gateway, .shared_with, .nics]')" \
    '["lab","acme","nat","10.200.0.0/24","10.200.0.1",[],0]' "... the pool's first /24, its gateway the first address"
lab_id=$(jb .network.id)
lab_bridge=$(jb .network.bridge)
like "$lab_bridge" '^tn[0-9a-f]{12}$' "... a bridge of its own ($lab_bridge)"
api_tn "$acme" POST /v1/networks --json '{"name":"backplane","mode":"isolated","cidr":"10.201.7.0/24"}'
is "$STATUS $(jb -c '.network | [.mode, .cidr, .gateway]')" '201 ["isolated","10.201.7.0/24","10.201.7.1"]' \
    "an isolated network with a subnet of its choosing"
api_tn "$beta" POST /v1/networks --json '{"name":"lab","mode":"nat"}'
is "$STATUS $(jb .network.cidr)" "201 10.200.1.0/24" "beta's lab: the same name is beta's own, the next free /24"

# ---- who sees what -------------------------------------------------------------------------
api_tn "$acme" GET /v1/networks
is "$(jb -c '[.networks[] | [.tenant, .name]]')" '[["acme","backplane"],["acme","lab"]]' "acme lists its own"
api_tn "$beta" GET /v1/networks/backplane
is_error 404 not_found "acme's network is 404 to beta, as a missing one"
api_tn "$beta" DELETE /v1/networks/backplane
is_error 404 not_found "... and beta cannot delete it"
api_op GET /v1/networks
is "$(jb -c '[.networks[] | [.tenant, .name]]')" '[["acme","backplane"],["acme","lab"],["beta","lab"]]' \
    "the operator lists everyone's"
api_op GET '/v1/networks?tenant=beta'
is "$(jb -c '[.networks[] | [.tenant, .name]]')" '[["beta","lab"]]' "... or one tenant's"
api_op GET '/v1/networks/lab?tenant=acme'
is "$STATUS $(jb .network.id)" "200 $lab_id" "the operator names a tenant's network with ?tenant="
api_op GET '/v1/networks?limit=2'
is "$(jb -c '[.networks[].name]') $(jb -r .next | grep -c .)" '["backplane","lab"] 1' "a page of 2 with a next cursor"
api_op GET "/v1/networks?limit=2&after=$(jb -r .next)"
is "$(jb -c '[.networks[] | [.tenant, .name]]') $(jb .next)" '[["beta","lab"]] null' "... and the last page"
api_op GET '/v1/networks?after=bogus'
is_error 400 bad_request "a cursor not ours: 400"
api_tn "$acme" GET '/v1/networks?tenant=beta'
is_error 403 forbidden "a tenant cannot list another's"

# ---- external networks ------------------------------------------------------------------------
api_op POST /v1/networks --json '{"name":"public","mode":"external","bridge":"eth1","shared_with":["acme"]}'
is "$STATUS $(jb -c '.network | [.tenant, .mode, .cidr, .bridge, .shared_with]')" \
    '201 [null,"external",null,"eth1",["acme"]]' "the operator shares an external network on host bridge eth1 with acme"
api_tn "$acme" GET /v1/networks
is "$(jb -c '[.networks[] | [.tenant, .name]]')" '[[null,"public"],["acme","backplane"],["acme","lab"]]' \
    "acme sees it, first"
api_tn "$beta" GET /v1/networks/public
is_error 404 not_found "beta, not named, does not"
api_tn "$acme" DELETE /v1/networks/public
is_error 403 forbidden "acme may use it, not delete it"
api_op POST /v1/networks --json '{"name":"uplink","mode":"external","bridge":"br-nosuch","shared_with":["acme"]}'
is_error 400 bad_request "an external network on a bridge the host lacks: 400"
like "$ERR_MESSAGE" "br-nosuch" "... naming it ($ERR_MESSAGE)"
api_op POST /v1/networks --json '{"name":"lab","mode":"external","bridge":"eth1","shared_with":["acme"]}'
is_error 409 conflict "an external name that acme already uses: 409"
api_tn "$acme" POST /v1/networks --json '{"name":"public","mode":"nat"}'
is_error 409 conflict "a tenant network named like an external one it sees: 409"
api_tn "$acme" POST /v1/networks --json '{"name":"ext","mode":"external","bridge":"eth1"}'
is_error 403 forbidden "a tenant cannot create an external network"
api_op POST /v1/networks --json '{"name":"mine","mode":"nat"}'
is_error 403 forbidden "the operator does not own nat networks"

# ---- bad bodies and conflicts: clear errors, nothing created ------------------------------------
count() { td_sql "SELECT count(*) FROM networks"; }
before=$(count)
bad() { # JSON STATUS CODE FIELD DESC
    api_tn "$acme" POST /v1/networks --json "$1"
    is_error "$2" "$3" "$5"
    [[ $ERR_MESSAGE == "$4"* ]]
    ok $? "... the message starts with '$4' ($ERR_MESSAGE)"
}
bad '{"mode":"nat"}' 400 bad_request "name:" "no name"
bad '{"name":"Bad_Name","mode":"nat"}' 400 bad_request "name:" "a bad name"
bad '{"name":"x","mode":"bridge"}' 400 bad_request "mode:" "an unknown mode"
bad '{"name":"x","mode":"nat","cidr":"10.9.9.0/31"}' 400 bad_request "cidr:" "a /31"
bad '{"name":"x","mode":"nat","cidr":"10.9.9.0/8"}' 400 bad_request "cidr:" "a /8"
bad '{"name":"x","mode":"nat","cidr":"10.9.9.1/24"}' 400 bad_request "cidr:" "host bits set"
like "$ERR_MESSAGE" "10.9.9.0/24" "... suggesting 10.9.9.0/24"
bad '{"name":"x","mode":"nat","cidr":"127.0.0.0/24"}' 400 bad_request "cidr:" "loopback"
bad '{"name":"x","mode":"nat","cidr":"10.09.9.0/24"}' 400 bad_request "cidr:" "a leading zero"
bad '{"name":"x","mode":"nat","cidr":"10.9.9/24"}' 400 bad_request "cidr:" "three octets"
bad '{"name":"x","mode":"nat","cidr":24}' 400 bad_request "cidr:" "a number"
bad '{"name":"x","mode":"nat","bridge":"br0"}' 400 bad_request "bridge:" "a bridge on a nat network"
bad '{"name":"x","mode":"nat","extra":1}' 400 bad_request "extra:" "an unknown key"
bad '{"name":"lab","mode":"nat"}' 409 conflict "network 'lab' already exists" "a name in use"
bad '{"name":"x","mode":"nat","cidr":"10.200.0.128/25"}' 409 conflict "cidr:" "a subnet inside lab's"
bad '{"name":"x","mode":"nat","cidr":"10.200.0.0/16"}' 409 conflict "cidr:" "a subnet around lab's"
bad '{"name":"x","mode":"nat","cidr":"192.168.122.0/24"}' 409 conflict "cidr:" \
    "libvirt's own default network's subnet"
host_net=$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $4; exit}')
if [ -n "$host_net" ]; then
    host_cidr=$(python3 -c "import ipaddress,sys; n=ipaddress.ip_interface(sys.argv[1]).network; print(n if n.prefixlen>=16 else ipaddress.ip_network(str(n.network_address)+'/24'))" "$host_net")
    bad "{\"name\":\"x\",\"mode\":\"nat\",\"cidr\":\"$host_cidr\"}" 409 conflict "cidr:" \
        "the host's own subnet ($host_cidr)"
    like "$ERR_MESSAGE" "host" "... saying it is the host's"
else
    skip "this machine has no global IPv4 address" 3
fi
is "$(count)" "$before" "none of them made a network"

api_tn "$beta" POST /v1/networks --json '{"name":"second","mode":"isolated"}'
is_error 403 quota_exceeded "beta's quota of 1 network: 403 quota_exceeded"
like "$ERR_MESSAGE" "networks would be 2 of 1" "... saying so ($ERR_MESSAGE)"

# ---- NICs on stacks --------------------------------------------------------------------------
spec() { echo "{\"name\":\"web\",\"vcpus\":1,\"memory_mib\":256,\"boot\":{\"kernel\":\"k\"},\"nics\":$1}"; }
api_tn "$beta" POST /v1/stacks --json "$(spec '[{"network":"backplane"}]')"
is_error 404 not_found "a NIC on another tenant's network: 404"
like "$ERR_MESSAGE" "^nics\\[0\\]\\.network: network 'backplane' not found" "... naming the NIC ($ERR_MESSAGE)"
api_tn "$beta" POST /v1/stacks --json "$(spec '[{"network":"public"}]')"
is_error 404 not_found "a NIC on an external network not shared with beta: 404"
api_tn "$acme" POST /v1/stacks --json "$(spec '[{"network":"lab","ip":"10.200.0.9"}]')"
is_error 400 bad_request "a NIC that asks for an ip: 400"
api_tn "$acme" POST /v1/stacks --json "$(spec '[{"network":"lab","mac":"01:00:5e:00:00:01"}]')"
is_error 400 bad_request "a multicast MAC: 400"
api_tn "$acme" POST /v1/stacks --json "$(spec '[{"network":"lab","mac":"52:54:00:aa:bb:cc"},{"network":"lab","mac":"52:54:00:aa:bb:cc"}]')"
is_error 400 bad_request "the same MAC twice: 400"
api_tn "$acme" POST /v1/stacks --json "$(spec '[{"network":"lab"},{"network":"lab"},{"network":"lab"},{"network":"lab"},{"network":"lab"},{"network":"lab"},{"network":"lab"},{"network":"lab"},{"network":"lab"}]')"
is_error 400 bad_request "nine NICs: 400"
is "$(td_sql "SELECT count(*) FROM stacks")" 0 "none of them made a stack"

# A stack on lab, its row written as a create writes it (the test backend
# stores no image, so it creates no stack).
sql_write() { sqlite3 -cmd '.timeout 5000' -cmd 'PRAGMA foreign_keys = ON' "$TD_STATE/turtled.db" "$1"; }
sql_write "INSERT INTO stacks (id, tenant_id, name, spec_json, vcpus, memory_mib, state, created_at, updated_at)
        SELECT '11111111-1111-4111-8111-111111111111', id, 'web', '{}', 1, 256, 'stopped', 'now', 'now'
        FROM tenants WHERE name = 'acme';
    INSERT INTO stack_nics (stack_id, seq, network_id, mac)
        VALUES ('11111111-1111-4111-8111-111111111111', 0, '$lab_id', '52:54:00:00:00:01')" >/dev/null
api_tn "$acme" GET /v1/networks/lab
is "$(jb .network.nics)" 1 "a NIC on lab: nics 1"
api_tn "$acme" DELETE /v1/networks/lab
is_error 409 conflict "deleting a network in use: 409"
like "$ERR_MESSAGE" "stack 'web'" "... naming the stack ($ERR_MESSAGE)"
sql_write "DELETE FROM stacks WHERE name = 'web'" >/dev/null
api_tn "$acme" DELETE /v1/networks/lab
is "$STATUS" 204 "free again, it deletes: 204"
api_tn "$acme" GET /v1/networks/lab
is_error 404 not_found "... and from the API"
api_op DELETE /v1/tenants/beta
is_error 409 conflict "a tenant that owns a network cannot go"
like "$ERR_MESSAGE" "networks" "... saying so"

# ---- a restart keeps them (the test driver forgot them: reconcile defines them again) ----------
td_stop
td_start || bail "turtled did not restart"
api_tn "$acme" GET /v1/networks/backplane
is "$STATUS $(jb .network.cidr)" "200 10.201.7.0/24" "after a restart the network is still there"

td_done
