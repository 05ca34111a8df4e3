# shellcheck shell=bash
# testhost.sh: private libvirt daemons ("test hosts") for system tests.
#
# A test host is a monolithic libvirtd, run as root without systemd, in a mount
# namespace of its own where private directories are bind-mounted over the
# paths libvirt has compiled in (/run/libvirt, /var/lib/libvirt, /etc/libvirt,
# /var/log/libvirt, /var/cache/libvirt), and in a network namespace of its own,
# so that libvirt's network driver (bridges, dnsmasq, iptables and ebtables
# rules of nwfilter) never touches this machine's network.  It has its own host
# UUID and answers on its UNIX socket, which is visible outside:
# qemu+unix:///system?socket=DIR/run/libvirt-sock.  The hosts of one test are
# wired to a "switch" (a bridge in a network namespace of its own, held by a
# process of the test): host number N of the test has eth0 10.254.0.N/24, the
# address QEMU's migration stream goes to (tcp://ADDR).  Nothing is created in
# this machine's network namespace.  The machine's own libvirt
# (qemu:///system) is never used, started, stopped or reconfigured.
#
# With TESTHOST_NETNS=0, or TESTHOST_LISTEN_ADDR set (host VMs, whose network
# is their own already), a host stays in the caller's network namespace and
# answers on TCP as qemu+tcp://ADDR:PORT/system, ADDR being
# TESTHOST_LISTEN_ADDR or 127.0.0.1.
#
#   testhost_start NAME           start host NAME (a-z, 0-9, _); exports
#                                 TESTHOST_<NAME>_URI, _ADDR, _DIR, _LOG_DIR,
#                                 _CONSOLE_DIR
#   testhost_uri NAME             its libvirt URI
#   testhost_addr NAME            the address other hosts reach it at (its
#                                 migrate URI is tcp://ADDR)
#   testhost_netns_pid NAME       a process in its network namespace (for
#                                 nsenter --net=/proc/PID/ns/net); fails in the
#                                 caller's network namespace (TESTHOST_NETNS=0)
#   testhost_dir NAME             its private dir; console logs go to DIR/console
#                                 (the same path inside and outside its namespace)
#   testhost_virsh NAME ARGS...   virsh against it, bounded by a timeout
#   testhost_stop NAME            destroy its domains, stop libvirtd, kill what
#                                 is left in its namespaces, remove its dir (and
#                                 the switch with the test's last host)
#   testhost_stop_all             testhost_stop for every host of this test
#   testhost_install_cleanup_trap stop every host on EXIT, INT, TERM and HUP
#   testhost_kill_daemon NAME [SIG]  kill its libvirtd alone (TERM by default; KILL
#                                 is a crash) and wait until it is gone; its
#                                 guests keep running, as they would on a host
#   testhost_restart_daemon NAME  start its libvirtd again on the same dirs,
#                                 config, port and network namespace; waits
#                                 until it answers (1 at once while it still runs)
#   testhost_daemon_alive NAME    0 while its libvirtd runs (1 after
#                                 testhost_kill_daemon, until a restart)
#   testhost_pids NAME            processes in its namespace (libvirtd, qemu,
#                                 dnsmasq, the holder of its network namespace)
#   testhost_pids_marked MARKER   processes (outside our namespace) whose mounts
#                                 mention MARKER, a path fragment
#   testhost_switch_pids          the switch's process, while it runs
#
# Environment:
#   TESTHOST_TMPDIR          where the private dirs go (default $TMPDIR or /tmp)
#   TESTHOST_NETNS           1 (default): a network namespace per host; 0: the
#                            caller's, with libvirtd on TCP
#   TESTHOST_START_TIMEOUT   seconds to wait for a daemon to answer (30)
#   TESTHOST_LOG_LEVEL       libvirtd log level, 1 (debug) .. 4 (error) (3)
#   TESTHOST_QEMU_FIRMWARE   a directory of QEMU firmware descriptors the
#                            hosts started meanwhile see in place of the
#                            machine's /usr/share/qemu/firmware (a host
#                            without secure-boot or without any UEFI firmware)
#   TESTHOST_LISTEN_ADDR     the address libvirtd listens on in the caller's
#                            network namespace (implies TESTHOST_NETNS=0); a
#                            host VM's link address makes it reachable from
#                            another
#   TURTLES_KEEP_LOGS=1      keep the private dirs after stopping (their paths
#                            are printed as TAP diag)
#   TURTLES_LOG_DIR          where logs are copied when a test fails
#                            (default $TURTLES_BUILD/test-logs)
#
# Call testhost_start in the test's own shell, never inside $(...): the
# cleanup trap only knows the hosts of the shell that installed it.
# Processes are found through their mount namespace (its mounts name our
# private dir) or their command line (which names it), never by program name,
# so the system's libvirtd and other tests' qemu are never touched.  The
# holder of a host's network namespace names the host's dir on its command
# line, the switch's holder "$TESTHOST_BASE/.switch"; a network namespace
# goes away with its last process, and the veth pairs and bridges in it with
# it.

TESTHOST_BASE=""
TESTHOST_INTERRUPTED=0

# private subdirectory : the libvirt path it hides inside the namespace
TESTHOST_MOUNTS="run:/run/libvirt state:/var/lib/libvirt config:/etc/libvirt log:/var/log/libvirt cache:/var/cache/libvirt"

# Runs inside the new mount namespace ($1 = the host's dir, $2 = --listen for
# TCP or empty); `exec` keeps the pid, so the pid written after the mounts is
# libvirtd's.  A missing mount point is created (/run/libvirt is missing where
# the system libvirtd never ran): an empty directory libvirt itself would
# create, holding nothing of ours.
# shellcheck disable=SC2016
TESTHOST_NS_SCRIPT='
set -e
dir=$1
for m in '"$TESTHOST_MOUNTS"'; do
    mkdir -p "${m#*:}"
    mount --bind "$dir/${m%%:*}" "${m#*:}"
done
# In its own network namespace (no --listen), a sysfs of its own: /sys/class/net
# then lists the namespace'"'"'s interfaces, as libvirt'"'"'s interface driver expects
# of a host (an external network'"'"'s bridge, the network bridges).
[ -n "$2" ] || mount -t sysfs sysfs /sys
# The firmware this host offers QEMU (TESTHOST_QEMU_FIRMWARE).
if [ -d "$dir/qemu-firmware" ]; then
    mkdir -p /usr/share/qemu/firmware
    mount --bind "$dir/qemu-firmware" /usr/share/qemu/firmware
fi
echo $$ >"$dir/libvirtd.pid"
exec libvirtd ${2:+"$2"} --config /etc/libvirt/libvirtd.conf --pid-file "$dir/libvirtd.pid"
'

# Holds a network namespace ($1 = the name its command line carries, its pid
# file is "$1.pid"; $2 = "bridge" for the switch): loopback up, and for the
# switch a bridge br0.  `exec -a` keeps the marker on the command line of the
# process that stays.
# shellcheck disable=SC2016
TESTHOST_NETNS_SCRIPT='
set -e
ip link set lo up
if [ "$2" = bridge ]; then
    ip link add br0 type bridge
    ip link set br0 up
fi
echo $$ >"$1.pid"
exec -a "testhost-netns $1" sleep infinity
'

# The network of a test's hosts: 10.254.0.N/24, N the host's number.
TESTHOST_NET_PREFIX=10.254.0

_testhost_diag() {
    if declare -F diag >/dev/null; then
        diag "testhost: $*"
    else
        printf '# testhost: %s\n' "$*" >&2
    fi
}

# ---- naming and lookup ------------------------------------------------------

_testhost_check_name() {
    case $1 in
    '' | *[!a-z0-9_]*)
        _testhost_diag "bad host name '$1' (use a-z, 0-9, _)"
        return 1
        ;;
    esac
}

# The base dir is made on first use; its random name is what marks our mounts.
_testhost_ensure_base() {
    [ -n "$TESTHOST_BASE" ] && [ -d "$TESTHOST_BASE" ] && return 0
    local tmp=${TESTHOST_TMPDIR:-${TMPDIR:-/tmp}}
    TESTHOST_BASE=$(mktemp -d "$tmp/turtles-testhost.XXXXXX") || return 1
    # mountinfo escapes whitespace, and then our marker would not match.
    case $TESTHOST_BASE in
    *[[:space:]]*)
        _testhost_diag "TESTHOST_TMPDIR must not contain whitespace: '$tmp'"
        rmdir "$TESTHOST_BASE"
        TESTHOST_BASE=""
        return 1
        ;;
    esac
}

testhost_dir() {
    _testhost_check_name "$1" || return 1
    [ -n "$TESTHOST_BASE" ] || return 1
    echo "$TESTHOST_BASE/$1"
}

testhost_uri() {
    local dir
    dir=$(testhost_dir "$1") || return 1
    cat "$dir/uri" 2>/dev/null
}

testhost_addr() {
    local dir
    dir=$(testhost_dir "$1") || return 1
    cat "$dir/addr" 2>/dev/null
}

# A fragment of every mount source of host NAME, unique thanks to mktemp.
# mountinfo shows sources relative to their filesystem, so use no more of the
# path than the base dir's own name.
_testhost_marker() {
    echo "/${TESTHOST_BASE##*/}/$1/"
}

testhost_virsh() {
    local uri
    uri=$(testhost_uri "$1") || return 1
    shift
    _testhost_virsh_uri "$uri" "$@"
}

# --foreground keeps virsh in the test's process group, so that a Ctrl-C
# reaches it and the test's trap runs at once instead of after the timeout.
_testhost_virsh_uri() {
    local uri=$1
    shift
    timeout --foreground "${TESTHOST_VIRSH_TIMEOUT:-30}" virsh -q -c "$uri" "$@"
}

# ---- processes --------------------------------------------------------------

# Pids from "/proc/PID/FILE" paths, without our own shell and without the
# grep that produced them (it has exited by now: its cmdline holds the
# pattern too).
_testhost_pids_from_paths() {
    local file pid
    for file in $1; do
        pid=${file#/proc/}
        pid=${pid%%/*}
        [ "$pid" = "$$" ] && continue
        [ -d "/proc/$pid" ] && echo "$pid"
    done
}

testhost_pids_marked() {
    local marker=$1 self_ns pid
    self_ns=$(readlink /proc/$$/ns/mnt)
    # One grep over every process: cheap, and no process slips between reads.
    for pid in $(_testhost_pids_from_paths "$(grep -lF -- "$marker" /proc/[0-9]*/mountinfo 2>/dev/null)"); do
        # A leaked mount in our own namespace would match every process
        # here, the system's included: never report those.
        [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$self_ns" ] || echo "$pid"
    done
}

# Processes of host NAME: those whose mounts name its private dir (libvirtd,
# qemu and helpers in its namespace) and those whose command line does (the
# launcher before it has entered the namespace, libvirtd by its --pid-file,
# a qemu by its console log, the holder of its network namespace), but not
# its clients (virsh, turtled), whose command line names its socket in their
# URI.
testhost_pids() {
    local dir
    dir=$(testhost_dir "$1") || return 1
    {
        testhost_pids_marked "$(_testhost_marker "$1")"
        _testhost_pids_from_paths "$(grep -laF -- "$dir/" /proc/[0-9]*/cmdline 2>/dev/null |
            xargs -r grep -LaF -- "socket=$dir/run/libvirt-sock" 2>/dev/null)"
    } | sort -nu
}

# libvirtd's pid, only while it runs in this host's namespace: a stale pid
# file must never make us signal somebody else's process.
_testhost_daemon_pid() {
    local name=$1 dir pid
    dir=$(testhost_dir "$name") || return 1
    pid=$(cat "$dir/libvirtd.pid" 2>/dev/null) || return 1
    case $pid in '' | *[!0-9]*) return 1 ;; esac
    testhost_pids "$name" | grep -qx "$pid" || return 1
    echo "$pid"
}

# Waits until none of PIDS exists (zombies count as gone) or TIMEOUT seconds.
_testhost_wait_gone() {
    local timeout=$1 pid alive
    shift
    local deadline=$((SECONDS + timeout))
    while :; do
        alive=""
        for pid in "$@"; do
            [ -r "/proc/$pid/stat" ] || continue
            case $(sed 's/.*) \([A-Z]\).*/\1/' "/proc/$pid/stat" 2>/dev/null) in
            Z | X | '') ;;
            *) alive="$alive $pid" ;;
            esac
        done
        [ -z "$alive" ] && return 0
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.2
    done
}

# ---- network namespaces -----------------------------------------------------

# Whether a new host gets a network namespace of its own.
_testhost_want_netns() {
    [ "${TESTHOST_NETNS:-1}" != 0 ] && [ -z "${TESTHOST_LISTEN_ADDR:-}" ]
}

# The pid in "$1.pid", only while that process is the holder started with
# marker $1 (a stale pid file must never send us into somebody else's
# namespace).
_testhost_holder_pid() {
    local marker=$1 pid
    pid=$(cat "$marker.pid" 2>/dev/null) || return 1
    case $pid in '' | *[!0-9]*) return 1 ;; esac
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "testhost-netns $marker" || return 1
    echo "$pid"
}

# Starts a holder of a new network namespace (see TESTHOST_NETNS_SCRIPT) and
# waits for its pid file; prints its pid.
_testhost_start_holder() {
    local marker=$1 kind=$2 log=$3 pid
    rm -f "$marker.pid"
    setsid unshare --net -- bash -c "$TESTHOST_NETNS_SCRIPT" testhost-netns "$marker" "$kind" \
        </dev/null >>"$log" 2>&1 &
    for _ in $(seq 50); do
        pid=$(_testhost_holder_pid "$marker") && break
        sleep 0.1
    done
    if [ -z "$pid" ]; then
        _testhost_diag "no network namespace holder for $marker: $(tail -n 3 "$log" 2>/dev/null)"
        return 1
    fi
    # Never go on in our own network namespace.
    if [ "$(readlink "/proc/$pid/ns/net")" = "$(readlink /proc/$$/ns/net)" ]; then
        _testhost_diag "holder $pid of $marker is in our own network namespace"
        return 1
    fi
    echo "$pid"
}

# Runs CMD... in the network namespace of PID, never in ours.
_testhost_in_netns() {
    local pid=$1 ns
    shift
    ns=$(readlink "/proc/$pid/ns/net" 2>/dev/null) || return 1
    if [ "$ns" = "$(readlink /proc/$$/ns/net)" ]; then
        _testhost_diag "refusing to run '$*' in our own network namespace"
        return 1
    fi
    nsenter --net="/proc/$pid/ns/net" "$@"
}

testhost_switch_pids() {
    [ -n "$TESTHOST_BASE" ] || return 0
    _testhost_pids_from_paths "$(grep -laF -- "$TESTHOST_BASE/.switch" /proc/[0-9]*/cmdline 2>/dev/null)"
}

# The switch of this test's hosts, started on first use.
_testhost_switch_pid() {
    _testhost_holder_pid "$TESTHOST_BASE/.switch" && return 0
    _testhost_start_holder "$TESTHOST_BASE/.switch" bridge "$TESTHOST_BASE/.switch.log"
}

_testhost_stop_switch() {
    local pids sig
    [ -n "$TESTHOST_BASE" ] || return 0
    for sig in TERM KILL; do
        pids=$(testhost_switch_pids)
        [ -z "$pids" ] && break
        # shellcheck disable=SC2086
        kill -"$sig" $pids 2>/dev/null
        # shellcheck disable=SC2086
        _testhost_wait_gone 10 $pids && break
    done
    if [ -n "$(testhost_switch_pids)" ]; then
        _testhost_diag "the switch survives SIGKILL: $(testhost_switch_pids)"
        return 1
    fi
    rm -f "$TESTHOST_BASE/.switch.pid" "$TESTHOST_BASE/.switch.log"
}

testhost_netns_pid() {
    local dir
    dir=$(testhost_dir "$1") || return 1
    [ -e "$dir/netns" ] || return 1
    _testhost_holder_pid "$dir/netns"
}

# The host's network namespace: its holder, and its eth0 wired to the switch
# (the veth pair is made in the switch's namespace with its other end in the
# host's, so it never appears in ours).  Kept across daemon restarts, as a
# host's network would be.
_testhost_netns_up() {
    local dir=$1 n pid sw
    _testhost_holder_pid "$dir/netns" >/dev/null && return 0
    n=$(cat "$dir/index")
    pid=$(_testhost_start_holder "$dir/netns" host "$dir/log/netns.log") || return 1
    sw=$(_testhost_switch_pid) || return 1
    if ! { _testhost_in_netns "$sw" ip link add "h$n" type veth peer name eth0 netns "$pid" &&
        _testhost_in_netns "$sw" ip link set "h$n" master br0 up &&
        _testhost_in_netns "$pid" ip addr add "$TESTHOST_NET_PREFIX.$n/24" dev eth0 &&
        _testhost_in_netns "$pid" ip link set eth0 up; }; then
        _testhost_diag "could not wire host $dir to the switch"
        return 1
    fi
}

# The smallest number no host of this test has.
_testhost_pick_index() {
    local n=1
    while grep -qx "$n" "$TESTHOST_BASE"/*/index 2>/dev/null; do
        n=$((n + 1))
    done
    [ "$n" -le 254 ] && echo "$n"
}

# ---- starting ---------------------------------------------------------------

# A port below the kernel's ephemeral range (32768+), so that it does not
# collide with the local end of outgoing connections.  Read from /proc so no
# tool (ss, netstat) is needed; whoever binds first wins, and the caller
# retries when libvirtd cannot bind.
_testhost_pick_port() {
    local port hex
    for _ in $(seq 50); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
        printf -v hex ':%04X' "$port"
        if ! awk -v p="$hex" '$2 ~ p"$" { found = 1 } END { exit !found }' \
            /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# The first of TESTHOST_MIGRATION_PORTS ports for a host's incoming
# migrations, a block of its own in 12000-19999 (below the libvirtd ports and
# the ephemeral range).  libvirt's default range (49152-49215) is the same for
# every libvirtd: two hosts receiving migrations at once, in two tests running
# side by side, both pick its first port while their QEMUs start, and one
# QEMU's migrate-incoming fails ("Failed to find an available port: Address
# already in use").
TESTHOST_MIGRATION_PORTS=4
_testhost_pick_migration_ports() {
    local base port hex busy
    for _ in $(seq 50); do
        base=$((12000 + (RANDOM % (8000 / TESTHOST_MIGRATION_PORTS)) * TESTHOST_MIGRATION_PORTS))
        busy=0
        for ((port = base; port < base + TESTHOST_MIGRATION_PORTS; port++)); do
            printf -v hex ':%04X' "$port"
            if awk -v p="$hex" '$2 ~ p"$" { found = 1 } END { exit !found }' \
                /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
                busy=1
                break
            fi
        done
        [ "$busy" = 0 ] && echo "$base" && return 0
    done
    echo 12000
}

# PORT is empty for a host in a network namespace of its own: its libvirtd
# answers on its UNIX socket alone.
_testhost_write_config() {
    local dir=$1 port=$2 uuid=$3 mig
    mig=$(_testhost_pick_migration_ports)
    if [ -n "$port" ]; then
        cat >"$dir/config/libvirtd.conf" <<EOF
# Private test host: TCP on loopback (or a host VM's private link) only, no
# TLS, no auth (root-only machine).
listen_tls = 0
listen_tcp = 1
listen_addr = "${TESTHOST_LISTEN_ADDR:-127.0.0.1}"
tcp_port = "$port"
auth_tcp = "none"
EOF
    else
        cat >"$dir/config/libvirtd.conf" <<EOF
# Private test host in a network namespace of its own: its UNIX socket only
# (DIR/run/libvirt-sock outside), no auth (root-only machine).
listen_tls = 0
listen_tcp = 0
EOF
    fi
    cat >>"$dir/config/libvirtd.conf" <<EOF
auth_unix_ro = "none"
auth_unix_rw = "none"
# Migration refuses two hosts with the same UUID.
host_uuid = "$uuid"
log_outputs = "${TESTHOST_LOG_LEVEL:-3}:file:/var/log/libvirt/libvirtd.log"
EOF
    cat >"$dir/config/qemu.conf" <<EOF
# qemu runs as root with no relabelling: nothing here needs the libvirt-qemu
# user to read a file, and nothing outside the private dirs gets chowned.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
# qemu stays in the host's mount namespace, so the harness finds it there.
namespaces = [ ]
# No virtlogd: qemu writes its log file itself.
stdio_handler = "file"
# No cgroups: two hosts on one machine would create the same cgroup names,
# and a killed host would leave them behind.
cgroup_controllers = [ ]
# No migration_host/migration_address: libvirt refuses loopback ones, so a
# migration test passes --migrateuri tcp://ADDR (testhost_addr) itself.
# Incoming migrations on ports of this host's own (see above).
migration_port_min = $mig
migration_port_max = $((mig + TESTHOST_MIGRATION_PORTS - 1))
EOF
    # libvirt's stock network filters (clean-traffic, ...): the private
    # /etc/libvirt hides the machine's.  Not its networks: no "default"
    # network is to start by itself.
    if [ ! -d "$dir/config/nwfilter" ] && [ -d /etc/libvirt/nwfilter ]; then
        cp -r /etc/libvirt/nwfilter "$dir/config/"
    fi
    echo "$uuid" >"$dir/uuid"
    if [ -n "$port" ]; then
        echo "$port" >"$dir/port"
        echo "qemu+tcp://${TESTHOST_LISTEN_ADDR:-127.0.0.1}:$port/system" >"$dir/uri"
        echo "${TESTHOST_LISTEN_ADDR:-127.0.0.1}" >"$dir/addr"
    else
        echo "qemu+unix:///system?socket=$dir/run/libvirt-sock" >"$dir/uri"
        echo "$TESTHOST_NET_PREFIX.$(cat "$dir/index")" >"$dir/addr"
    fi
}

# setsid: a Ctrl-C sent to the test's process group must reach the test's
# trap, not libvirtd, so that the trap can still ask libvirtd to destroy its
# domains.  Output goes to a file: an inherited pipe would keep prove (or a
# $(...) of the caller) waiting for EOF as long as the daemon lives.
# A host with a network namespace ("$dir/netns" exists) has its libvirtd
# enter it (made first, or again after a failed start); its other processes
# (qemu, dnsmasq) are libvirtd's children and stay there.
_testhost_launch() {
    local dir=$1 pid
    rm -f "$dir/libvirtd.pid"
    if [ -e "$dir/netns" ]; then
        _testhost_netns_up "$dir" || return 1
        pid=$(_testhost_holder_pid "$dir/netns") || return 1
        setsid nsenter --net="/proc/$pid/ns/net" unshare --mount --propagation private -- \
            /bin/sh -c "$TESTHOST_NS_SCRIPT" testhost-ns "$dir" "" \
            </dev/null >>"$dir/log/libvirtd.stderr" 2>&1 &
    else
        setsid unshare --mount --propagation private -- \
            /bin/sh -c "$TESTHOST_NS_SCRIPT" testhost-ns "$dir" --listen \
            </dev/null >>"$dir/log/libvirtd.stderr" 2>&1 &
    fi
}

_testhost_host_uuid() {
    _testhost_virsh_uri "$1" capabilities 2>/dev/null |
        sed -n 's:.*<uuid>\(.*\)</uuid>.*:\1:p' | head -n 1
}

# Why a daemon that is gone did not start: 2 when its port was taken (the
# caller picks another), else 1.
_testhost_startup_failure() {
    local name=$1 dir
    dir=$(testhost_dir "$name")
    if grep -qiE 'unable to bind|address already in use' \
        "$dir/log/libvirtd.stderr" "$dir/log/libvirtd.log" 2>/dev/null; then
        return 2
    fi
    _testhost_diag "libvirtd of '$name' exited during startup"
    return 1
}

# 0: answering with our UUID; 2: its port is somebody else's (pick another);
# 1: anything else (died, timed out).
_testhost_wait_ready() {
    local name=$1 dir uri uuid pid="" deadline polls=0
    dir=$(testhost_dir "$name")
    uri=$(cat "$dir/uri")
    uuid=$(cat "$dir/uuid")
    deadline=$((SECONDS + ${TESTHOST_START_TIMEOUT:-30}))
    while [ "$SECONDS" -lt "$deadline" ]; do
        [ -z "$pid" ] && pid=$(cat "$dir/libvirtd.pid" 2>/dev/null)
        # No pid file after 2 s and nothing of ours running: the launcher
        # failed, or libvirtd died at once and removed its pid file.  (The
        # launcher is recognisable only once it has exec'd setsid, hence
        # the grace period; the holder of the network namespace does not
        # count.)
        polls=$((polls + 1))
        if [ -z "$pid" ] && [ "$polls" -gt 10 ] && [ ! -s "$dir/libvirtd.pid" ] &&
            ! testhost_pids "$name" | grep -qvxF "$(cat "$dir/netns.pid" 2>/dev/null)"; then
            _testhost_startup_failure "$name"
            return
        fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            _testhost_startup_failure "$name"
            return
        fi
        if [ -n "$pid" ] && _testhost_virsh_uri "$uri" version >/dev/null 2>&1; then
            local got
            got=$(_testhost_host_uuid "$uri")
            [ "$got" = "$uuid" ] && return 0
            # Another daemon got the port between our pick and our bind.
            _testhost_diag "$uri answers with host UUID '$got', not ours ($uuid)"
            return 2
        fi
        sleep 0.2
    done
    _testhost_diag "libvirtd of '$name' did not answer at $uri within ${TESTHOST_START_TIMEOUT:-30} s"
    return 1
}

_testhost_export() {
    local name=$1 dir var
    dir=$(testhost_dir "$name")
    var=TESTHOST_${name^^}
    export "${var}_URI=$(cat "$dir/uri")" "${var}_ADDR=$(cat "$dir/addr")" "${var}_DIR=$dir" \
        "${var}_LOG_DIR=$dir/log" "${var}_CONSOLE_DIR=$dir/console"
}

testhost_start() {
    local name=$1 dir uuid attempt port rc
    _testhost_check_name "$name" || return 1
    _testhost_ensure_base || return 1
    dir=$(testhost_dir "$name")
    if [ -e "$dir" ]; then
        _testhost_diag "host '$name' already exists ($dir)"
        return 1
    fi
    mkdir -p "$dir"/{run,state,config,log,cache,console} || return 1
    if [ -n "${TESTHOST_QEMU_FIRMWARE:-}" ]; then
        cp -r "$TESTHOST_QEMU_FIRMWARE" "$dir/qemu-firmware" || return 1
    fi
    uuid=$(cat /proc/sys/kernel/random/uuid)
    if _testhost_want_netns; then
        # sun_path holds 108 bytes.
        if [ "${#dir}" -gt 90 ]; then
            _testhost_diag "'$dir' is too long for a UNIX socket path under it"
            rm -rf -- "$dir"
            return 1
        fi
        if ! _testhost_pick_index >"$dir/index"; then
            _testhost_diag "no free host number for '$name'"
            rm -rf -- "$dir"
            return 1
        fi
        : >"$dir/netns"
    fi
    for attempt in 1 2 3 4 5; do
        port=""
        if [ ! -e "$dir/netns" ]; then
            port=$(_testhost_pick_port) || break
        fi
        _testhost_write_config "$dir" "$port" "$uuid"
        if _testhost_launch "$dir"; then
            _testhost_wait_ready "$name"
            rc=$?
        else
            rc=1
        fi
        if [ "$rc" -eq 0 ]; then
            _testhost_export "$name"
            return 0
        fi
        # Whatever half-started must go before a retry or the caller's cleanup.
        _testhost_stop_processes "$name"
        [ "$rc" -eq 2 ] || break
        _testhost_diag "port $port was taken (attempt $attempt), trying another"
        # A fresh log, so that the next failure is not read as this one.
        mv "$dir/log/libvirtd.log" "$dir/log/libvirtd.log.$attempt" 2>/dev/null
        mv "$dir/log/libvirtd.stderr" "$dir/log/libvirtd.stderr.$attempt" 2>/dev/null
    done
    _testhost_diag "could not start host '$name'; its libvirtd output:"
    testhost_show_logs "$name"
    return 1
}

# ---- stopping ---------------------------------------------------------------

# Through libvirt first: it stops qemu cleanly and knows every domain,
# transient ones included.
_testhost_destroy_domains() {
    local name=$1 domain
    _testhost_daemon_pid "$name" >/dev/null || return 0
    testhost_virsh "$name" list --name 2>/dev/null | while IFS= read -r domain; do
        [ -n "$domain" ] && testhost_virsh "$name" destroy "$domain" >/dev/null 2>&1
    done
}

_testhost_stop_daemon() {
    local name=$1 pid
    pid=$(_testhost_daemon_pid "$name") || return 0
    kill -TERM "$pid" 2>/dev/null
    _testhost_wait_gone 15 "$pid" && return 0
    _testhost_diag "libvirtd of '$name' ignored SIGTERM for 15 s; killing it"
    kill -KILL "$pid" 2>/dev/null
    _testhost_wait_gone 5 "$pid"
}

# Whatever still lives in the namespace (qemu that libvirt could not destroy,
# helpers): TERM, then KILL.  The namespace, and with it every bind mount,
# goes away with its last process.
_testhost_kill_namespace() {
    local name=$1 pids sig
    for sig in TERM KILL; do
        pids=$(testhost_pids "$name")
        [ -z "$pids" ] && return 0
        # shellcheck disable=SC2086
        kill -"$sig" $pids 2>/dev/null
        # shellcheck disable=SC2086
        _testhost_wait_gone 10 $pids && return 0
    done
    pids=$(testhost_pids "$name")
    [ -z "$pids" ] && return 0
    _testhost_diag "host '$name': processes survive SIGKILL: $pids"
    return 1
}

_testhost_stop_processes() {
    local name=$1
    _testhost_destroy_domains "$name"
    _testhost_stop_daemon "$name"
    _testhost_kill_namespace "$name"
}

testhost_stop() {
    local name=$1 dir var
    _testhost_check_name "$name" || return 1
    [ -n "$TESTHOST_BASE" ] || return 0 # nothing was ever started
    dir=$(testhost_dir "$name")
    # Gone, or stopped already and kept for its logs.
    [ -d "$dir" ] && [ ! -e "$dir/stopped" ] || return 0
    if ! _testhost_stop_processes "$name"; then
        _testhost_diag "host '$name' not fully stopped; leaving $dir in place"
        return 1
    fi
    if [ "${TURTLES_KEEP_LOGS:-0}" = 1 ]; then
        : >"$dir/stopped"
        _testhost_diag "TURTLES_KEEP_LOGS=1: kept host '$name' in $dir"
    else
        rm -rf -- "$dir"
    fi
    var=TESTHOST_${name^^}
    unset "${var}_URI" "${var}_ADDR" "${var}_DIR" "${var}_LOG_DIR" "${var}_CONSOLE_DIR"
    # The switch goes with the last host.
    _testhost_any_host_running || _testhost_stop_switch
}

# 0 while a host of this test is neither stopped nor gone.
_testhost_any_host_running() {
    local d
    for d in "$TESTHOST_BASE"/*/; do
        [ -d "$d" ] && [ ! -e "$d/stopped" ] && return 0
    done
    return 1
}

# The base dir is the registry: every subdirectory is a host of this test.
testhost_stop_all() {
    local dir rc=0
    [ -n "$TESTHOST_BASE" ] && [ -d "$TESTHOST_BASE" ] || return 0
    for dir in "$TESTHOST_BASE"/*/; do
        [ -d "$dir" ] || continue
        dir=${dir%/}
        testhost_stop "${dir##*/}" || rc=1
    done
    _testhost_stop_switch || rc=1
    rmdir "$TESTHOST_BASE" 2>/dev/null && TESTHOST_BASE=""
    return "$rc"
}

# ---- logs -------------------------------------------------------------------

# Tails of everything a failure is explained by, as TAP diag.
testhost_show_logs() {
    local name=$1 dir f
    dir=$(testhost_dir "$name") || return 1
    for f in "$dir"/log/libvirtd.stderr "$dir"/log/libvirtd.log \
        "$dir"/log/qemu/*.log "$dir"/console/*; do
        [ -s "$f" ] || continue
        _testhost_diag "---- last lines of $f"
        : >"$dir/.logs-shown"
        tail -n "${TESTHOST_LOG_LINES:-20}" "$f" | tr -d '\r' | _testhost_indent
    done
}

_testhost_indent() {
    local line
    while IFS= read -r line; do
        _testhost_diag "  $line"
    done
}

# Copies the logs of every host where they survive the private dirs.
_testhost_save_logs() {
    local dest dir name test
    [ -n "$TESTHOST_BASE" ] && [ -d "$TESTHOST_BASE" ] || return 0
    test=${0##*/}
    dest=${TURTLES_LOG_DIR:-${TURTLES_BUILD:-build}/test-logs}/${test%.t}
    for dir in "$TESTHOST_BASE"/*/; do
        [ -d "$dir" ] || continue
        dir=${dir%/}
        name=${dir##*/}
        [ -e "$dir/.logs-shown" ] || testhost_show_logs "$name"
        mkdir -p "$dest/$name" &&
            cp -r "$dir/log" "$dir/console" "$dir/config" "$dest/$name/" 2>/dev/null &&
            _testhost_diag "logs of host '$name' saved in $dest/$name"
    done
}

# ---- daemon restarts ---------------------------------------------------------

testhost_kill_daemon() {
    local pid
    pid=$(_testhost_daemon_pid "$1") || return 1
    kill -"${2:-TERM}" "$pid" && _testhost_wait_gone 15 "$pid"
}

testhost_daemon_alive() {
    _testhost_daemon_pid "$1" >/dev/null
}

testhost_restart_daemon() {
    local dir
    dir=$(testhost_dir "$1") || return 1
    # A second one would fail on the port, and its pid file would hide the
    # first from every later look.
    if testhost_daemon_alive "$1"; then
        _testhost_diag "libvirtd of '$1' still runs: not starting another"
        return 1
    fi
    _testhost_launch "$dir" || return 1
    # The launcher is a job of ours: bash must not announce its death.
    disown "$!"
    _testhost_wait_ready "$1"
}

# ---- traps ------------------------------------------------------------------

_testhost_on_signal() {
    # A second Ctrl-C must not cut the cleanup short.
    trap '' INT TERM HUP
    TESTHOST_INTERRUPTED=1
    _testhost_diag "caught SIG$1, stopping test hosts"
    exit "$2" # the EXIT trap cleans up
}

_testhost_on_exit() {
    local status=$?
    trap '' INT TERM HUP
    if [ "$TESTHOST_INTERRUPTED" = 0 ] && { [ "$status" -ne 0 ] || [ "${TAP_FAILED:-0}" -gt 0 ]; }; then
        _testhost_save_logs
    fi
    if ! testhost_stop_all; then
        _testhost_diag "cleanup failed: processes or dirs of $TESTHOST_BASE remain"
        [ "$status" -eq 0 ] && status=1
    fi
    exit "$status"
}

testhost_install_cleanup_trap() {
    trap _testhost_on_exit EXIT
    trap '_testhost_on_signal INT 130' INT
    trap '_testhost_on_signal TERM 143' TERM
    trap '_testhost_on_signal HUP 129' HUP
}
