# shellcheck shell=bash
# hostvm.sh: host VMs, real KVM hosts for system tests on machines without
# hardware virtualization.
#
# A host VM is a QEMU TCG VM (q35, 2 vCPUs, an EPYC CPU with svm and npt, so
# kvm_amd loads inside with nested=1) that boots the reference kernel with
# the initrd of build-hostvm-image.  This machine's / is shared read-only over
# virtio-9p, so inside it runs this machine's libvirtd, QEMU and the turtled
# build at their usual paths; /usr /etc /var /tmp /root are overlays with a
# tmpfs upper, so nothing inside writes to this machine except through the
# VM's share, a directory of its own mounted at the same path inside.
# Commands run inside through that share (tests/lib/hostvm-agent), each in a
# session of its own, with their output streamed back as they run.
#
#   hostvm_start NAME [OPTIONS]   boot host VM NAME (a-z, 0-9, _) and wait until
#                                 its agent is ready; exports HOSTVM_<NAME>_DIR
#       --cpu MODEL               QEMU CPU model (EPYC,+svm,+npt)
#       --memory MIB              RAM (5120; a host VM needs at least 4 GiB)
#       --nested 0|1              kvm_amd's nested parameter inside (1)
#       --edu                     an Intel vIOMMU and QEMU's edu device, which
#                                 the VM's libvirt can assign through VFIO
#       --systemd                 systemd (this machine's) as PID 1, booted to
#                                 multi-user.target, the agent as its service
#                                 hostvm-agent.service; ready once the boot
#                                 has finished (see hostvm-init)
#       --link listen|connect PORT --ip ADDR/PREFIX
#                                 a point-to-point link to another host VM
#                                 (QEMU socket netdev on 127.0.0.1:PORT): eth0
#                                 inside gets ADDR
#   hostvm_fact NAME KEY          what the agent found at boot: kernel, cpus,
#                                 mem_mib, kvm, nested, npt, iommu,
#                                 iommu_groups, problems, uptime (seconds
#                                 since the VM's kernel started, at ready),
#                                 init (agent or systemd) and with --systemd:
#                                 systemd (is-system-running: running or
#                                 degraded), failed_units
#   hostvm_run NAME TIMEOUT CMD   run the shell command CMD inside (in the caller's
#                                 working directory, with the caller's TURTLES_*,
#                                 TESTHOST_* and HOSTVM_* variables, and
#                                 TESTHOST_NETNS=0 unless the caller set it:
#                                 test hosts inside answer on TCP); its output
#                                 goes to stdout as it comes; returns its status,
#                                 124 when TIMEOUT seconds passed (its session is
#                                 killed), 125 when the VM died, 126 when the VM's
#                                 kernel reported a stall (soft lockup, RCU stall)
#                                 or panicked, or the VM stopped answering
#   hostvm_spawn NAME CMD         start CMD inside without waiting; prints the path
#                                 of its log (on the share)
#   hostvm_wait_log NAME LOG REGEX TIMEOUT   wait until LOG has a line matching
#                                 REGEX; 1 (with LOG's end) when TIMEOUT passed,
#                                 the command ended or the VM died
#   hostvm_prove NAME TIMEOUT TEST [ENV...]  run the TAP test TEST inside (after
#                                 the words ENV, e.g. TURTLES_TEST_BACKEND=kvm),
#                                 its lines indented, then one `ok` (tap.sh): it
#                                 exited 0 and ran its whole plan without a failure
#   hostvm_prove_in_new NAME OPTIONS TIMEOUT TEST [ENV...]   boot host VM NAME with
#                                 hostvm_start OPTIONS (one word list), hostvm_prove
#                                 TEST in it and stop it; when the VM's kernel stalls
#                                 or panics, once more in a fresh VM (a second fails)
#   hostvm_dir NAME               NAME's private dir (console.log, share/, qemu.*)
#   hostvm_share NAME             its share: the same path inside and outside
#   hostvm_stop NAME              power it off (kill QEMU if it does not stop),
#                                 remove its dir
#   hostvm_stop_all               hostvm_stop for every host VM of this shell
#   hostvm_install_cleanup_trap   stop every host VM on EXIT, INT, TERM and HUP
#   hostvm_pids_marked MARKER     processes whose command line names MARKER
#
# Environment:
#   HOSTVM_TMPDIR          where the private dirs go (default $TMPDIR or /tmp)
#   HOSTVM_BOOT_TIMEOUT    seconds to wait for the agent (240)
#   HOSTVM_TCG_THREAD      multi (one host thread per vCPU, the default) or single
#   HOSTVM_HANG_TIMEOUT    seconds without the agent's heartbeat before a VM counts
#                          as hung, like a stalled kernel (180)
#   TURTLES_BUILD          the build dir: its l1/vmlinuz and hostvm/ (make hostvm-image)
#   TURTLES_KEEP_LOGS=1    keep the private dirs after stopping
#   TURTLES_LOG_DIR        where a failed host VM's logs are copied
#
# Call hostvm_start in the test's own shell, never inside $(...): the cleanup
# trap only knows the VMs of the shell that started them.  QEMU is found by
# its pid file and by its command line, which names the private dir.

HOSTVM_BASE=""
HOSTVM_NAMES=""
HOSTVM_FAILED=0

_hostvm_diag() {
    if declare -F diag >/dev/null; then
        diag "hostvm: $*"
    else
        printf '# hostvm: %s\n' "$*" >&2
    fi
}

_hostvm_check_name() {
    case $1 in
    '' | *[!a-z0-9_]*)
        _hostvm_diag "bad host VM name '$1' (use a-z, 0-9, _)"
        return 1
        ;;
    esac
}

_hostvm_ensure_base() {
    [ -n "$HOSTVM_BASE" ] && [ -d "$HOSTVM_BASE" ] && return 0
    local tmp=${HOSTVM_TMPDIR:-${TMPDIR:-/tmp}}
    HOSTVM_BASE=$(mktemp -d "$tmp/turtles-hostvm.XXXXXX") || return 1
    # The share's path goes on the kernel command line, split at spaces.
    case $HOSTVM_BASE in
    *[[:space:]]*)
        _hostvm_diag "HOSTVM_TMPDIR must not contain whitespace: '$tmp'"
        rmdir "$HOSTVM_BASE"
        HOSTVM_BASE=""
        return 1
        ;;
    esac
}

hostvm_dir() {
    _hostvm_check_name "$1" || return 1
    [ -n "$HOSTVM_BASE" ] || return 1
    echo "$HOSTVM_BASE/$1"
}

hostvm_share() {
    local dir
    dir=$(hostvm_dir "$1") || return 1
    echo "$dir/share"
}

hostvm_fact() {
    local dir
    dir=$(hostvm_dir "$1") || return 1
    sed -n "s/^$2=//p" "$dir/share/ready" 2>/dev/null
}

hostvm_pids_marked() {
    local file pid
    for file in /proc/[0-9]*/cmdline; do
        pid=${file#/proc/}
        pid=${pid%%/*}
        [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] && continue
        if { tr '\0' ' ' <"$file"; } 2>/dev/null | grep -qF -- "$1"; then
            echo "$pid"
        fi
    done
}

_hostvm_qemu_pid() {
    local dir pid
    dir=$(hostvm_dir "$1") || return 1
    pid=$(cat "$dir/qemu.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# ---- starting ---------------------------------------------------------------

hostvm_start() {
    local name=$1
    shift
    local cpu=EPYC,+svm,+npt memory=5120 nested=1 edu=0 link="" port="" ip="" systemd=0
    while [ $# -gt 0 ]; do
        case $1 in
        --cpu) cpu=$2 && shift ;;
        --memory) memory=$2 && shift ;;
        --nested) nested=$2 && shift ;;
        --edu) edu=1 ;;
        --systemd) systemd=1 ;;
        --link) link=$2 && port=$3 && shift 2 ;;
        --ip) ip=$2 && shift ;;
        *)
            _hostvm_diag "hostvm_start: unknown option '$1'"
            return 1
            ;;
        esac
        shift
    done
    _hostvm_check_name "$name" || return 1
    local build kernel initrd modules
    build=$(realpath "${TURTLES_BUILD:-build}") || return 1
    kernel=$build/l1/vmlinuz
    initrd=$build/hostvm/initrd.img
    modules=$build/hostvm/modules
    if [ ! -f "$kernel" ] || [ ! -f "$initrd" ] || [ ! -d "$modules" ]; then
        _hostvm_diag "no host VM image in $build (make hostvm-image)"
        return 1
    fi
    _hostvm_ensure_base || return 1
    local dir=$HOSTVM_BASE/$name
    if [ -e "$dir" ]; then
        _hostvm_diag "host VM '$name' already exists ($dir)"
        return 1
    fi
    mkdir -p "$dir/share/cmd" || return 1
    HOSTVM_NAMES="$HOSTVM_NAMES $name"
    unset "HOSTVM_BEAT[$name]" "HOSTVM_BEAT_AT[$name]"

    # Not quiet: a stall's backtraces must reach the console log.
    local append="console=ttyS0 panic=-1 hostvm.name=$name hostvm.nested=$nested"
    append="$append hostvm.agent=$(realpath "${BASH_SOURCE[0]%/*}")/hostvm-agent"
    append="$append hostvm.share=$dir/share hostvm.modules=$modules"
    if [ "$systemd" = 1 ]; then
        append="$append hostvm.init=systemd systemd.unit=multi-user.target"
    fi
    # shellcheck disable=SC2054 # commas inside QEMU's own option values
    local args=(-name "turtles-hostvm-$name" -machine q35 -accel "tcg,thread=${HOSTVM_TCG_THREAD:-multi}" -smp 2
        -cpu "$cpu" -m "$memory" -nodefaults -no-reboot -display none -vga none
        -monitor none -serial "file:$dir/console.log"
        -kernel "$kernel" -initrd "$initrd"
        -fsdev local,id=root,path=/,security_model=none,readonly=on,multidevs=remap
        -device virtio-9p-pci,fsdev=root,mount_tag=hostroot
        -fsdev "local,id=share,path=$dir/share,security_model=none"
        -device virtio-9p-pci,fsdev=share,mount_tag=hostvmshare)
    if [ "$edu" = 1 ]; then
        # The vIOMMU first: QEMU wants it before the devices it translates for.
        # shellcheck disable=SC2054
        args=(-device intel-iommu,caching-mode=on,intremap=on "${args[@]}" -device edu)
        append="$append intel_iommu=on"
    fi
    if [ -n "$link" ]; then
        if [ -z "$ip" ]; then
            _hostvm_diag "hostvm_start: --link needs --ip"
            return 1
        fi
        # A MAC of its own from the address, so two linked VMs never share one.
        local mac octets
        IFS=. read -r -a octets <<<"${ip%/*}"
        mac=$(printf '52:54:00:7e:%02x:%02x' "${octets[2]}" "${octets[3]}")
        args+=(-netdev "socket,id=link,$link=127.0.0.1:$port" -device "virtio-net-pci,netdev=link,mac=$mac")
        append="$append hostvm.ip=$ip"
    fi
    # setsid: a Ctrl-C to the test's process group reaches the test's trap,
    # which powers the VM off; output to a file, never an inherited pipe.
    setsid qemu-system-x86_64 "${args[@]}" -append "$append" -pidfile "$dir/qemu.pid" \
        </dev/null >"$dir/qemu.log" 2>&1 &
    echo "$!" >"$dir/qemu.launcher"

    local deadline=$((SECONDS + ${HOSTVM_BOOT_TIMEOUT:-240}))
    while [ ! -f "$dir/share/ready" ]; do
        if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$(cat "$dir/qemu.launcher")" 2>/dev/null; then
            _hostvm_diag "host VM '$name' did not become ready (console and QEMU output follow)"
            _hostvm_show_logs "$name"
            HOSTVM_FAILED=1
            return 1
        fi
        sleep 0.5
    done
    export "HOSTVM_${name^^}_DIR=$dir"
    local problems
    problems=$(hostvm_fact "$name" problems)
    if [ -n "$problems" ]; then
        _hostvm_diag "host VM '$name' is up, but these failed inside: $problems"
        _hostvm_show_logs "$name"
        HOSTVM_FAILED=1
        return 1
    fi
}

_hostvm_show_logs() {
    local dir
    dir=$(hostvm_dir "$1") || return 0
    _hostvm_diag "console of '$1':"
    tail -n 40 "$dir/console.log" 2>/dev/null | tr -d '\r' | sed 's/^/    /' >&2
    if [ -s "$dir/qemu.log" ]; then
        _hostvm_diag "QEMU of '$1':"
        tail -n 20 "$dir/qemu.log" | sed 's/^/    /' >&2
    fi
}

# ---- running commands -------------------------------------------------------

# The agent rewrites share/alive every 2 s; HOSTVM_AGE: seconds since it last
# changed, as seen from here.
declare -gA HOSTVM_BEAT=() HOSTVM_BEAT_AT=()
HOSTVM_AGE=0
_hostvm_heartbeat_age() {
    local dir beat
    dir=$(hostvm_dir "$1") || return 1
    beat=$(cat "$dir/share/alive" 2>/dev/null)
    if [ "$beat" != "${HOSTVM_BEAT[$1]:-}" ] || [ -z "${HOSTVM_BEAT_AT[$1]:-}" ]; then
        HOSTVM_BEAT[$1]=$beat
        HOSTVM_BEAT_AT[$1]=$SECONDS
    fi
    HOSTVM_AGE=$((SECONDS - HOSTVM_BEAT_AT[$1]))
}

# 0 when the host VM's own kernel failed, below anything turtled does
# (emulated SVM under TCG; docs/testing.md), so nothing inside can finish:
#  - it panicked (seen: a stack overflow in the page fault handler of a KVM
#    vCPU thread during migrations);
#  - it reports a stall (soft lockup, RCU stall) and its agent has not
#    beaten for 60 s: a stall warning alone can pass when the VM is only slow;
#  - its agent has not beaten for HOSTVM_HANG_TIMEOUT seconds (180), with or
#    without a word on the console (seen: QEMU busy, nothing moving inside).
_hostvm_kernel_failed() {
    local dir
    dir=$(hostvm_dir "$1") || return 1
    _hostvm_heartbeat_age "$1"
    if grep -q 'Kernel panic - not syncing' "$dir/console.log" 2>/dev/null; then
        return 0
    fi
    if [ "$HOSTVM_AGE" -ge "${HOSTVM_HANG_TIMEOUT:-180}" ]; then
        _hostvm_diag "host VM '$1' stopped answering: its agent's heartbeat is $HOSTVM_AGE s old"
        return 0
    fi
    if [ "$HOSTVM_AGE" -ge 60 ] &&
        grep -qE 'soft lockup - CPU|rcu_preempt self-detected stall|rcu: INFO: rcu_preempt detected stalls' \
            "$dir/console.log" 2>/dev/null; then
        _hostvm_diag "host VM '$1' stalled: its kernel reports a stall, and its agent has not beaten for $HOSTVM_AGE s"
        return 0
    fi
    return 1
}

# Writes CMD as the next command file; prints its path without ".sh".
_hostvm_submit() {
    local name=$1 dir cmds n var
    shift
    dir=$(hostvm_dir "$name") || return 1
    cmds=$dir/share/cmd
    n=$(find "$cmds" -name '*.sh' | wc -l)
    n=$(printf '%s/%03d' "$cmds" $((n + 1)))
    {
        echo "cd $(printf '%q' "$PWD") || exit 125"
        # A host VM is isolated already: its test hosts stay in its network
        # namespace and answer on TCP (cpu-compat.long reaches one from
        # another host VM), unless the caller asks otherwise (below).
        echo "export TESTHOST_NETNS=0"
        # The caller's configuration of the harness travels with the command.
        while IFS= read -r var; do
            echo "export $var=$(printf '%q' "${!var}")"
        done < <(compgen -e | grep -E '^(TURTLES_|TESTHOST_|HOSTVM_|CRASH_|TD_)')
        # Logs of a failure inside go to the share (this machine's view is
        # read-only there), and hostvm_stop keeps the share of a failed run.
        echo "export TURTLES_LOG_DIR=$(printf '%q' "$dir/share/test-logs")"
        printf '%s\n' "$*"
    } >"$n.tmp" && mv "$n.tmp" "$n.sh" && echo "$n"
}

hostvm_run() {
    local name=$1 timeout=$2 n
    shift 2
    n=$(_hostvm_submit "$name" "$@") || return 1
    # Stream the log as it grows; tail follows by name and stops with us.
    local deadline=$((SECONDS + timeout)) rc="" tailer
    until [ -f "$n.log" ] || [ -f "$n.rc" ]; do
        if [ "$SECONDS" -ge "$deadline" ] || ! _hostvm_qemu_pid "$name" >/dev/null; then
            break
        fi
        sleep 0.2
    done
    tail -n +1 -F "$n.log" 2>/dev/null &
    tailer=$!
    while :; do
        if [ -f "$n.rc" ]; then
            rc=$(cat "$n.rc")
            break
        fi
        if _hostvm_kernel_failed "$name"; then
            _hostvm_diag "the kernel of host VM '$name' stalled or panicked while running: $*"
            _hostvm_show_logs "$name"
            rc=126
            break
        fi
        if ! _hostvm_qemu_pid "$name" >/dev/null; then
            _hostvm_diag "host VM '$name' died while running: $*"
            _hostvm_show_logs "$name"
            rc=125
            break
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            _hostvm_diag "'$*' still runs in host VM '$name' after $timeout s: killing it"
            : >"$n.kill"
            rc=124
            break
        fi
        sleep 0.5
    done
    sleep 0.5 # the last lines, before tail goes
    kill "$tailer" 2>/dev/null
    wait "$tailer" 2>/dev/null
    [ "$rc" = 0 ] || HOSTVM_FAILED=1
    return "$rc"
}

hostvm_spawn() {
    local name=$1 n
    shift
    n=$(_hostvm_submit "$name" "$@") || return 1
    echo "$n.log"
}

hostvm_wait_log() {
    local name=$1 log=$2 regex=$3 deadline=$((SECONDS + $4))
    while ! grep -qE -- "$regex" "$log" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ] || ! _hostvm_qemu_pid "$name" >/dev/null ||
            [ -f "${log%.log}.rc" ]; then
            HOSTVM_FAILED=1
            _hostvm_diag "'$regex' did not show in $log; it ends with:"
            tail -n 30 "$log" 2>/dev/null | sed 's/^/    /' >&2
            return 1
        fi
        sleep 0.5
    done
}

hostvm_prove() {
    local name=$1 timeout=$2 test=$3 out rc planned failed count what
    shift 3
    what=${test%% *}
    what=${what##*/}
    out=$(dirname "$(hostvm_share "$name")")/prove.$$.out
    # hostvm_run in this shell, not in a pipeline's subshell, so that a
    # signal's trap stops the VM at once; a tail shows the lines indented.
    : >"$out"
    tail -n +1 -F "$out" 2>/dev/null | sed -u 's/^/    /' &
    local shower=$!
    hostvm_run "$name" "$timeout" "$* $test" >"$out"
    rc=$?
    sleep 0.5
    pkill -f -- "tail -n \+1 -F $out" 2>/dev/null
    wait "$shower" 2>/dev/null
    planned=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$out" | tail -n 1)
    count=$(grep -cE '^(not )?ok [0-9]+' "$out")
    failed=$(grep -cE '^not ok [0-9]+' "$out")
    # prove shows a test's stderr, not its stdout: the failures go there too.
    if [ "$failed" != 0 ]; then
        _hostvm_diag "failures of $what inside host VM '$name':"
        grep -A 4 '^not ok' "$out" | sed 's/^/    /' >&2
    elif [ "$rc" != 0 ]; then
        _hostvm_diag "$what ended with $rc inside host VM '$name'; its last lines:"
        tail -n 20 "$out" | sed 's/^/    /' >&2
    fi
    rm -f "$out"
    if [ "$rc" = 126 ] && [ "${HOSTVM_STALL_RETRY:-0}" = 1 ]; then
        return 126 # the caller tries again in a fresh VM, and says why
    fi
    [ "$rc" = 0 ] && [ -n "$planned" ] && [ "$planned" = "$count" ] && [ "$failed" = 0 ]
    ok $? "$what passes inside host VM '$name' ($count/${planned:-?} run, $failed failed, exit $rc)"
}

hostvm_prove_in_new() {
    local name=$1 options=$2 timeout=$3 attempt rc
    shift 3
    for attempt in 1 2; do
        # shellcheck disable=SC2086 # the options are words
        if ! hostvm_start "$name" $options; then
            ok 1 "host VM '$name' boots"
            return 1
        fi
        HOSTVM_STALL_RETRY=$((attempt == 1)) hostvm_prove "$name" "$timeout" "$@"
        rc=$?
        hostvm_stop "$name"
        if [ "$rc" != 126 ]; then
            return "$rc"
        fi
        _hostvm_diag "the kernel of host VM '$name' stalled or panicked (its logs are kept): once more in a fresh one"
    done
}

# ---- stopping ---------------------------------------------------------------

hostvm_stop() {
    local name=$1 dir pid
    dir=$(hostvm_dir "$name") || return 1
    [ -d "$dir" ] || return 0
    pid=$(_hostvm_qemu_pid "$name")
    if [ -n "$pid" ]; then
        : >"$dir/share/poweroff"
        local deadline=$((SECONDS + ${HOSTVM_STOP_TIMEOUT:-20}))
        while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.2
        done
        kill -KILL "$pid" 2>/dev/null
    fi
    # Whatever else names this VM's dir (a launcher not yet exec'd, a tail).
    local p
    for p in $(hostvm_pids_marked "$dir/"); do
        kill -KILL "$p" 2>/dev/null
    done
    for _ in $(seq 50); do
        [ -z "$(hostvm_pids_marked "$dir/")" ] && break
        sleep 0.1
    done
    if [ "$HOSTVM_FAILED" = 1 ] && [ -n "${TURTLES_BUILD:-}" ]; then
        local logs stamp
        stamp=$(date +%H%M%S)
        logs=${TURTLES_LOG_DIR:-$TURTLES_BUILD/test-logs}/hostvm-$name-$stamp
        mkdir -p "$logs" && cp -r "$dir/console.log" "$dir/qemu.log" "$dir/share" "$logs/" 2>/dev/null &&
            _hostvm_diag "logs of '$name' kept in $logs"
    fi
    if [ "${TURTLES_KEEP_LOGS:-0}" = 1 ]; then
        _hostvm_diag "kept $dir"
    else
        rm -rf "$dir"
    fi
    local other left=""
    for other in $HOSTVM_NAMES; do
        [ "$other" = "$name" ] || left="$left $other"
    done
    HOSTVM_NAMES=$left
    if [ -z "${HOSTVM_NAMES// /}" ] && [ "${TURTLES_KEEP_LOGS:-0}" != 1 ]; then
        rmdir "$HOSTVM_BASE" 2>/dev/null
    fi
    return 0
}

hostvm_stop_all() {
    local name
    for name in $HOSTVM_NAMES; do
        hostvm_stop "$name"
    done
}

# SIGPIPE ignored: when whoever read our output (prove) is gone, a diag
# must not kill the clean-up halfway.
_hostvm_on_exit() {
    trap '' PIPE
    hostvm_stop_all
}

# Exits 128+SIGNAL, as the shell would without the trap.
_hostvm_on_signal() {
    trap '' PIPE
    HOSTVM_FAILED=1
    trap - EXIT
    hostvm_stop_all
    exit $((128 + $(kill -l "$1")))
}

hostvm_install_cleanup_trap() {
    trap _hostvm_on_exit EXIT
    trap '_hostvm_on_signal INT' INT
    trap '_hostvm_on_signal TERM' TERM
    trap '_hostvm_on_signal HUP' HUP
}
