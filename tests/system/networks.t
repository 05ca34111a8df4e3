#!/bin/bash
# Tenant networks for real, through the API only: two private libvirt hosts
# (each in network namespaces of its own, wired by the test's switch) with
# a turtled each (tcg backend), and reference L1s that report their network
# on the console (TURTLES-L1 NET / PING / PROBE / SPOOF lines).
#
#  - acme's nat network lab carries two L1s: the address GET shows for each
#    NIC is the one its L1 got by DHCP, the two reach each other, each pings
#    its gateway, and one reaches the outside (host b's switch address)
#    through the host's NAT;
#  - host protection: the host listens on ports 22, 16509 (libvirtd's) and
#    turtled's on all its addresses, the switch side reaches them, an L1
#    does not through its gateway; DNS on the gateway answers;
#  - spoofing: an L1 that sends from an address it was not leased gets
#    nothing back (libvirt's clean-traffic filter);
#  - beta's isolated network: an address, but no way out and no way to
#    acme's L1s;
#  - live migration of a stack on lab to host b: the network follows (same
#    subnet on b, adopted by b's turtled), the NIC keeps its MAC and its
#    address, and its gateway pings go on counting on b;
#  - kill -9 of turtled while it creates networks and a stack with a NIC:
#    after a restart every libvirt network and bridge of ours belongs to a
#    network the API lists, and none is left half-made.
#
#   TURTLES_BUILD=build tests/system/networks.t

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
# shellcheck source-path=SCRIPTDIR source=../lib/stackhost.sh
. "$here/../lib/stackhost.sh"

sh_init
testhost_start b || bail "cannot start the second private libvirt host"
sh_start || bail "turtled A did not start"
sh_save a
sh_start_on b b || bail "turtled B did not start"
addr_a=$(testhost_addr a)
addr_b=$(testhost_addr b)
[ -n "$addr_a" ] && [ -n "$addr_b" ] || bail "the test hosts have no switch addresses"

sh_use a
api_op POST /v1/peers --json "{\"name\":\"hostb\",\"libvirt_uri\":\"$(testhost_uri b)\",\"migrate_uri\":\"tcp://$addr_b\"}"
is "$STATUS" 201 "A's operator adds peer hostb"
td_tenant acme || bail "no tenant acme"
acme=$TOKEN
td_tenant beta || bail "no tenant beta"
beta=$TOKEN
sh_upload_reference "$acme" || bail "cannot upload the reference L1 for acme"
sh_upload_reference "$beta" || bail "cannot upload the reference L1 for beta"

# in_host HOST CMD...: CMD in the host's network namespace.
in_host() {
    local pid
    pid=$(testhost_netns_pid "$1") || return 1
    shift
    nsenter --net="/proc/$pid/ns/net" -- "$@"
}

# Management services of host a, listening on every address it has (its
# gateways included).  The command line names the host's dir, so that the
# host's cleanup finds it.
listen_ports="22 16509 $TD_PORT"
# shellcheck disable=SC2016
listener='import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16)
while True:
    c, _ = s.accept(); c.close()'
for port in $listen_ports; do
    in_host a python3 -c "$listener" "$port" "$(testhost_dir a)/listener" </dev/null >/dev/null 2>&1 &
done
# reaches HOST ADDR PORT: a TCP connection from HOST's namespace is accepted.
reaches() { in_host "$1" timeout 3 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; }
for port in $listen_ports; do
    poll_until 20 reaches b "$addr_a" "$port"
    ok $? "host a's port $port answers from the switch side (the services listen on all addresses)"
done

# ---- networks -----------------------------------------------------------------------
api_tn "$acme" POST /v1/networks --json '{"name":"lab","mode":"nat"}'
is "$STATUS" 201 "acme creates nat network lab"
lab_cidr=$(jb -r .network.cidr)
lab_gw=$(jb -r .network.gateway)
lab_bridge=$(jb -r .network.bridge)
lab_id=$(jb -r .network.id)
in_host a ip -4 addr show dev "$lab_bridge" 2>/dev/null | grep -q "inet $lab_gw/"
ok $? "its bridge $lab_bridge carries the gateway $lab_gw inside host a"
ip link show dev "$lab_bridge" >/dev/null 2>&1
ok $((!$?)) "... and not on this machine's own network"
api_tn "$beta" POST /v1/networks --json '{"name":"quiet","mode":"isolated"}'
is "$STATUS $(jb -r .network.mode)" "201 isolated" "beta creates isolated network quiet"
quiet_gw=$(jb -r .network.gateway)

# spec NAME NETWORK CMDLINE-EXTRA
spec() {
    printf '{"name":"%s","vcpus":1,"memory_mib":384,"boot":{"kernel":"l1-kernel","initrd":"l1-initrd","cmdline":"console=ttyS0 %s"},"nics":[{"network":"%s"}]}' \
        "$1" "$3" "$2"
}
# create TOKEN SPEC: 0 when the stack runs
create() {
    api_tn "$1" POST /v1/stacks --json "$2"
    [ "$STATUS" = 202 ] || {
        diag "create: $STATUS $BODY"
        return 1
    }
    sh_wait_op "$1" "$(jb .operation.id)" 180 && [ "$OP_STATUS" = succeeded ] || {
        diag "create: $OP_STATUS $OP_ERROR"
        return 1
    }
}
# net_line TOKEN STACK: waits for the L1's NET line; sets NET_MAC, NET_IP
net_line() {
    NET_MAC=""
    NET_IP=""
    sh_wait_console "$1" "$2" 'TURTLES-L1 NET eth0 mac=[0-9a-f:]+ ip=' 240 || return 1
    local line
    line=$(grep -oE 'TURTLES-L1 NET eth0 mac=[0-9a-f:]+ ip=[0-9.a-z]+' <<<"$CONSOLE" | tail -n 1)
    NET_MAC=$(sed 's/.* mac=\([^ ]*\).*/\1/' <<<"$line")
    NET_IP=$(sed 's/.* ip=\([^ ]*\).*/\1/' <<<"$line")
}
# api_nic TOKEN STACK: waits until GET shows the NIC's address; sets API_MAC, API_IP
api_nic() {
    local deadline=$(($(now_ms) + 30000))
    while :; do
        api_tn "$1" GET "/v1/stacks/$2"
        API_MAC=$(jb -r '.stack.nics[0].mac')
        API_IP=$(jb -r '.stack.nics[0].ip // empty')
        [ -n "$API_IP" ] && return 0
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 1
    done
}
# probe TOKEN STACK TARGET WANT: the L1 probes TARGET every ~5 s.  WANT
# reachable: one round says so within 2 minutes (the first may come before
# the peer's address is known to the filters).  WANT unreachable: three
# rounds, and none got through (reachable, or refused: the host answered).
# Prints the verdicts seen.
probe() {
    local deadline=$(($(now_ms) + 120000)) verdicts
    while :; do
        api_tn "$1" GET "/v1/stacks/$2/console?tail=2000"
        verdicts=$(tr -d '\r' <<<"$BODY" | grep -oE "TURTLES-L1 PROBE $3 [a-z]+" | awk '{ print $4 }' | tr '\n' ' ')
        case $4 in
        reachable) [[ " $verdicts" == *" reachable "* ]] && break ;;
        *) [ "$(wc -w <<<"$verdicts")" -ge 3 ] && break ;;
        esac
        [ "$(now_ms)" -lt "$deadline" ] || break
        sleep 2
    done
    echo "$verdicts"
}
# probe_ok TOKEN STACK TARGET WANT DESC
probe_ok() {
    local verdicts
    verdicts=$(probe "$1" "$2" "$3" "$4")
    if [ "$4" = reachable ]; then
        [[ " $verdicts" == *" reachable "* ]]
    else
        [ "$(wc -w <<<"$verdicts")" -ge 3 ] && [[ " $verdicts" != *" reachable "* ]] &&
            [[ " $verdicts" != *" refused "* ]]
    fi
    ok $? "$5 (probes: $verdicts)"
}
# pings TOKEN STACK: "n ok" of the last PING line
pings() {
    api_tn "$1" GET "/v1/stacks/$2/console?tail=200"
    tr -d '\r' <<<"$BODY" | grep -oE 'TURTLES-L1 PING gw n=[0-9]+ ok=[0-9]+' | tail -n 1 |
        sed 's/.*n=\([0-9]*\) ok=\([0-9]*\)/\1 \2/'
}

# The operator's external network on a host bridge only host a has.
in_host a ip link add brx type bridge && in_host a ip link set brx up
ok $? "host a has a bridge brx (host b has none)"
api_op POST /v1/networks --json '{"name":"public","mode":"external","bridge":"brx","shared_with":["acme"]}'
is "$STATUS" 201 "the operator shares external network public on brx with acme" || bail "$BODY"

# web1 sends from an address nobody leased it, besides its own.  DHCP may
# lease web1 that very address (1 time in 253, by its random MAC), and then
# its "spoofed" pings are its own: web1 is made again, and the lease its
# first MAC still holds keeps the address from the new one.
spoof_ip=$(python3 -c "import ipaddress,sys; print(ipaddress.ip_network(sys.argv[1])[200])" "$lab_cidr")
for _ in 1 2 3; do
    create "$acme" "$(spec web1 lab "turtles.spoof=$spoof_ip")"
    made=$?
    [ "$made" = 0 ] || break
    net_line "$acme" web1
    [ "$NET_IP" = "$spoof_ip" ] || break
    note "web1 was leased $spoof_ip, the address it is to spoof: making it again"
    api_tn "$acme" DELETE /v1/stacks/web1
    sh_wait_op "$acme" "$(jb .operation.id)" 120
done
ok "$made" "acme's web1 on lab runs" || bail "the rest needs it"
like "$NET_IP" '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' "web1's L1 got an address by DHCP ($NET_IP)"
ok "$([ "$NET_IP" != "$spoof_ip" ] && echo 0 || echo 1)" "... not the address it spoofs ($spoof_ip)"
web1_ip=$NET_IP
web1_mac=$NET_MAC
api_nic "$acme" web1
is "$API_IP $API_MAC" "$web1_ip $web1_mac" "GET /v1/stacks/web1 shows the same address and MAC"
python3 -c "import ipaddress,sys; sys.exit(ipaddress.ip_address(sys.argv[1]) not in ipaddress.ip_network(sys.argv[2]))" "$web1_ip" "$lab_cidr"
ok $? "... inside lab's subnet $lab_cidr"

probes="$web1_ip,$lab_gw,$lab_gw:53,$addr_b"
for port in $listen_ports; do probes="$probes,$lab_gw:$port"; done
web2_spec=$(spec web2 lab "turtles.probe=$probes" | sed 's/"nics":\[{"network":"lab"}\]/"nics":[{"network":"lab"},{"network":"public"}]/')
create "$acme" "$web2_spec"
ok $? "acme's web2 on lab (and on public) runs, probing web1, its gateway and the host's ports" || bail "the rest needs it"
net_line "$acme" web2
api_nic "$acme" web2
is "$API_IP" "$NET_IP" "web2: the API's address is the L1's ($NET_IP)"
ok "$([ "$NET_IP" != "$web1_ip" ] && echo 0 || echo 1)" "... another than web1's"
probe_ok "$acme" web2 "$web1_ip" reachable "web2 reaches web1 on their network"
probe_ok "$acme" web2 "$lab_gw" reachable "web2 pings its gateway"
probe_ok "$acme" web2 "$lab_gw:53" reachable "web2 reaches DNS on its gateway"
probe_ok "$acme" web2 "$addr_b" reachable "web2 reaches the outside (host b) through the host's NAT"
for port in $listen_ports; do
    probe_ok "$acme" web2 "$lab_gw:$port" unreachable "web2 cannot reach the host's port $port through its gateway"
done

create "$beta" "$(spec bweb quiet "turtles.probe=$web1_ip,$addr_b,$quiet_gw,$quiet_gw:22")"
ok $? "beta's bweb on its isolated network runs" || bail "the rest needs it"
net_line "$beta" bweb
like "$NET_IP" '^[0-9.]+$' "the isolated network gave bweb an address ($NET_IP)"
probe_ok "$beta" bweb "$web1_ip" unreachable "beta's L1 cannot reach acme's"
probe_ok "$beta" bweb "$addr_b" unreachable "an isolated network has no way out"
probe_ok "$beta" bweb "$quiet_gw" reachable "... but its gateway answers pings"
probe_ok "$beta" bweb "$quiet_gw:22" unreachable "... and not the host's ssh"

# ---- spoofing and gateway pings --------------------------------------------------------
sh_wait_console "$acme" web1 "TURTLES-L1 SPOOF src=$spoof_ip gw [a-z]+" 120
is "$(grep -oE "TURTLES-L1 SPOOF src=$spoof_ip gw [a-z]+" <<<"$CONSOLE" | tail -n 1 | awk '{ print $5 }')" \
    unreachable "a ping from a spoofed source address gets no answer (clean-traffic)"
read -r n ok_count <<<"$(pings "$acme" web1)"
ok "$([ "${ok_count:-0}" -gt 0 ] && echo 0 || echo 1)" "... while web1's own gateway pings get answers ($ok_count of $n)"

# ---- migration ------------------------------------------------------------------------
api_tn "$acme" POST /v1/stacks/web2/migrate --json '{"peer":"hostb"}'
sh_wait_op "$acme" "$(jb .operation.id)" 120
is "$OP_STATUS" failed "web2, on external network public, cannot migrate: host b has no bridge brx"
like "$OP_ERROR" "public.*brx|brx.*public" "... the operation says so ($OP_ERROR)"
api_tn "$acme" GET /v1/stacks/web2
is "$(jb -r .stack.state)" running "... and web2 keeps running on a"
is "$(testhost_virsh b net-list --all --name | grep -c '^turtles-net-')" 0 \
    "... and no network of ours was made on b"

read -r n_before ok_before <<<"$(pings "$acme" web1)"
api_tn "$acme" POST /v1/stacks/web1/migrate --json '{"peer":"hostb"}'
is "$STATUS" 202 "acme migrates web1 to host b"
sh_wait_op "$acme" "$(jb .operation.id)" 300
is "$OP_STATUS" succeeded "... the migration succeeds ($OP_ERROR)"
sh_use b
api_op GET '/v1/networks/lab?tenant=acme'
is "$STATUS $(jb -r .network.cidr) $(jb -r .network.id)" "200 $lab_cidr $lab_id" \
    "host b has acme's network lab, same subnet and id"
in_host b ip -4 addr show dev "$lab_bridge" 2>/dev/null | grep -q "inet $lab_gw/"
ok $? "... its bridge with the same gateway inside host b"
api_op GET '/v1/stacks?tenant=acme'
is "$(jb -c '[.stacks[] | select(.name == "web1") | .nics[0] | .mac, .ip]')" "[\"$web1_mac\",\"$web1_ip\"]" \
    "on b, web1's NIC keeps its MAC and address"
# b's acme (made by the adoption) has no token yet: its operator issues one.
api_op POST /v1/tenants/acme/tokens
acme_b=$(jb -r .token.secret)
deadline=$(($(now_ms) + 120000))
while :; do
    read -r n_after ok_after <<<"$(pings "$acme_b" web1)"
    [ "${ok_after:-0}" -gt $((ok_before + 3)) ] && break
    [ "$(now_ms)" -lt "$deadline" ] || break
    sleep 2
done
ok "$([ "${ok_after:-0}" -gt $((ok_before + 3)) ] && echo 0 || echo 1)" \
    "after the switch-over web1's gateway pings go on answering on b ($ok_before ok before, $ok_after now; n $n_before -> $n_after)"

# ---- crash: kill -9 while networks and a stack with a NIC are being made ----------------
sh_use a
ours_consistent() { # -> 0 when libvirt and the bridges agree with the store
    local want got bridges_want bridges_got
    want=$(td_sql "SELECT 'turtles-net-' || id FROM networks WHERE state = 'ready' ORDER BY 1" | sort)
    got=$(testhost_virsh a net-list --all --name | grep '^turtles-net-' | sort)
    bridges_want=$(td_sql "SELECT bridge FROM networks WHERE mode != 'external' AND state = 'ready'" | sort)
    bridges_got=$(in_host a ip -o link show type bridge | awk -F': ' '{ print $2 }' | grep '^tn' | sort)
    [ "$want" = "$got" ] && [ "$bridges_want" = "$bridges_got" ] && return 0
    diag "store: $want / libvirt: $got / bridges: $bridges_want / seen: $bridges_got"
    return 1
}
td_start_again() {
    TD_NO_DEFAULTS=1 td_start --config "$TD_DIR/turtled.conf" --state-dir "$TD_STATE" \
        --socket "$TD_SOCK" --listen 127.0.0.1:0 --backend "$SH_BACKEND" --libvirt-uri "$(testhost_uri a)"
}
for i in 1 2 3; do
    api_tn "$acme" POST /v1/networks --json "{\"name\":\"crash$i\",\"mode\":\"isolated\"}" >/dev/null 2>&1 &
    creator=$!
    sleep "0.0$((RANDOM % 10))"
    td_kill9
    wait "$creator"
    td_start_again || bail "turtled A did not restart"
    ours_consistent
    ok $? "kill -9 during network create $i: every libvirt network and bridge of ours has its row, and no row lacks them"
done
api_tn "$acme" POST /v1/stacks --json "$(spec web3 lab "")"
sleep 1
td_kill9
td_start_again || bail "turtled A did not restart"
ours_consistent
ok $? "kill -9 while a stack with a NIC is created: networks whole"
api_tn "$acme" GET /v1/stacks/web3
case $STATUS in
200) is "$(jb -r '.stack.nics | length')" 1 "... web3 survived with its NIC" ;;
404) ok 0 "... web3 was rolled back" ;;
*) ok 1 "... web3: unexpected $STATUS $BODY" ;;
esac

td_done
