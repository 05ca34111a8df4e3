#!/bin/bash
# Test hosts live in network namespaces of their own (tests/lib/testhost.sh):
# libvirtd is not in the test's network namespace; a libvirt network defined
# and started on a host makes its bridge and dnsmasq there, never in this
# machine's; two hosts of a test reach each other through the test's switch;
# the stock network filters (clean-traffic) are there; and after
# testhost_stop_all nothing remains: no dnsmasq, no switch, no interface of
# ours in this machine's network namespace.
#
#   TURTLES_BUILD=build tests/system/testhost-netns.t

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/testhost.sh
. "$here/../lib/testhost.sh"

[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
command -v libvirtd >/dev/null || skip_all "libvirtd is not installed"
command -v dnsmasq >/dev/null || skip_all "dnsmasq is not installed (make deps)"
command -v busybox >/dev/null || skip_all "busybox is not installed (make deps)"

# This test is about the network namespaces: the default, whatever the caller set.
export TESTHOST_NETNS=1
unset TESTHOST_LISTEN_ADDR

plan 21
testhost_install_cleanup_trap

# The machine's interfaces by name, and anything of ours on them.
root_links() {
    ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
}
links_before=$(root_links)

# Pids of host NAME whose program is PROG (among the host's processes only).
host_prog_pids() {
    local p
    for p in $(testhost_pids "$1"); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] && echo "$p"
    done
}

testhost_start a
ok $? "host a starts" || bail "no test host a"
testhost_start b
ok $? "host b starts" || bail "no test host b"

like "$TESTHOST_A_URI" '^qemu\+unix:///system\?socket=/.*/a/run/libvirt-sock$' \
    "TESTHOST_A_URI is its UNIX socket"
is "$TESTHOST_A_ADDR $TESTHOST_B_ADDR" "10.254.0.1 10.254.0.2" "the hosts' addresses are 10.254.0.1 and .2"
is "$(testhost_addr b)" "$TESTHOST_B_ADDR" "testhost_addr b agrees"

pid_a=$(_testhost_daemon_pid a)
ns_a=$(readlink "/proc/$pid_a/ns/net")
ns_b=$(readlink "/proc/$(_testhost_daemon_pid b)/ns/net")
ns_self=$(readlink /proc/$$/ns/net)
[ -n "$ns_a" ] && [ "$ns_a" != "$ns_self" ] && [ -n "$ns_b" ] && [ "$ns_b" != "$ns_self" ] &&
    [ "$ns_a" != "$ns_b" ]
ok $? "each host's libvirtd has a network namespace of its own ($ns_a, $ns_b; ours $ns_self)"
is "$(readlink "/proc/$(testhost_netns_pid a)/ns/net")" "$ns_a" \
    "testhost_netns_pid a is in libvirtd's network namespace"

in_a() { nsenter --net="/proc/$(testhost_netns_pid a)/ns/net" "$@"; }

# ---- a libvirt network on host a ----------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/turtles-netns.XXXXXX") || bail "mktemp failed"
trap 'rm -rf -- "$work"; _testhost_on_exit' EXIT
cat >"$work/net.xml" <<'EOF'
<network>
  <name>tnet</name>
  <bridge name='tbr0'/>
  <forward mode='nat'/>
  <ip address='10.123.0.1' netmask='255.255.255.0'>
    <dhcp><range start='10.123.0.10' end='10.123.0.100'/></dhcp>
  </ip>
</network>
EOF
testhost_virsh a net-define "$work/net.xml" >"$work/virsh.out" 2>&1 &&
    testhost_virsh a net-start tnet >>"$work/virsh.out" 2>&1
ok $? "a NAT network with DHCP (10.123.0.1/24) is defined and started on host a" ||
    diag "$(cat "$work/virsh.out")"
in_a ip -o addr show dev tbr0 2>/dev/null | grep -q 'inet 10\.123\.0\.1/24'
ok $? "its bridge tbr0 with 10.123.0.1/24 is in host a's network namespace"
! ip link show dev tbr0 >/dev/null 2>&1
ok $? "... and not in this machine's"
is "$(root_links)" "$links_before" "this machine's interfaces are unchanged"
dnsmasq=$(host_prog_pids a dnsmasq)
[ -n "$dnsmasq" ]
ok $? "dnsmasq runs for it, among host a's processes (${dnsmasq//$'\n'/ })"
is "$(for p in $dnsmasq; do readlink "/proc/$p/ns/net"; done | sort -u)" "$ns_a" \
    "... in host a's network namespace"
in_a iptables -S 2>/dev/null | grep -q -- '10\.123\.0\.0/24'
ok $? "libvirt's NAT rules are in host a's iptables"
! iptables -S 2>/dev/null | grep -q -- '10\.123\.0\.0/24'
ok $? "... and not in this machine's"

# ---- the hosts reach each other ------------------------------------------------
in_a busybox ping -c 1 -W 5 "$TESTHOST_B_ADDR" >"$work/ping.out" 2>&1
ok $? "host a reaches host b at $TESTHOST_B_ADDR" || diag "$(cat "$work/ping.out")"

testhost_virsh b nwfilter-list 2>/dev/null | awk '{print $2}' | grep -qx clean-traffic
ok $? "host b has libvirt's stock network filter clean-traffic"

# ---- nothing remains --------------------------------------------------------
switch=$(testhost_switch_pids)
[ -n "$switch" ]
ok $? "the switch runs ($switch)"
testhost_stop_all
ok $? "testhost_stop_all stops both hosts"
left=""
for p in $dnsmasq $switch; do
    # A zombie is gone (this machine's init reaps orphans late).
    _testhost_wait_gone 0 "$p" || left="$left $p($(cat "/proc/$p/comm" 2>/dev/null))"
done
[ -z "$left" ]
ok $? "no dnsmasq and no switch remain" || diag "alive:$left"
is "$(root_links)" "$links_before" "this machine's interfaces are as before"
