# shellcheck shell=bash
# stackhost.sh: turtled on a private libvirt host, for system tests of
# images and stacks (sourced after tap.sh; it sources testhost.sh and
# turtled.sh).  turtled runs the tcg backend (or $TURTLES_TEST_BACKEND: kvm
# on a real KVM host, such as a host VM) against the private libvirtd
# "a" (its state dir, socket and a loopback port in $TD_DIR), with
# stop_timeout from $SH_STOP_TIMEOUT (5 s: the reference L1 ignores the
# ACPI power button, so a stop is always forced after that).
#
#   sh_init                      td_init, test host "a", one cleanup trap for
#                                both (turtled stopped first, then the host)
#   sh_start [ARGS...]           td_start on host a with the settings above
#   sh_upload TOKEN NAME KIND FILE [FORMAT]   create image NAME (raw, or FORMAT) and upload FILE;
#                                1 unless it ends ready
#   sh_upload_reference TOKEN    the reference L1: images l1-kernel, l1-initrd
#   sh_spec NAME [MEMORY_MIB]    the JSON spec of a stack booting the reference L1
#   sh_wait_op TOKEN ID [SECONDS]    waits for a final status; sets OP_STATUS
#                                (and OP_ERROR); 1 on timeout
#   sh_wait_console TOKEN STACK REGEX [SECONDS]   polls the console API until
#                                a line matches; sets CONSOLE; 1 on timeout
#   sh_last_beat TOKEN STACK     the last L2 heartbeat number on STACK's console
#   sh_beats_past TOKEN STACK N [SECONDS]   waits (60 s) until a heartbeat
#                                greater than N shows; 1 on timeout
#   sh_heartbeats                the L2 heartbeat counters after the last
#                                READY in $CONSOLE, one per line
#   sh_domains                   names of the domains host a has
#   sh_files DIR                 files under DIR (recursively), one per line
#
# A second turtled, for migration (each instance has a label; "a" is the one
# sh_start starts, on host a, with turtled.sh's usual $TD_STATE and $TD_SOCK):
#   sh_save LABEL                remember the current instance's TD_* as LABEL
#   sh_use LABEL                 make LABEL the current instance (api_*, td_sql,
#                                td_stop and td_kill9 act on it)
#   sh_start_on HOST LABEL [ARGS...]  start a turtled on test host HOST with its
#                                own state dir and socket in $TD_DIR, save it as
#                                LABEL and make it current

# shellcheck source-path=SCRIPTDIR source=testhost.sh
. "${TURTLES_SRCDIR:-.}/tests/lib/testhost.sh"
# shellcheck source-path=SCRIPTDIR source=turtled.sh
. "${TURTLES_SRCDIR:-.}/tests/lib/turtled.sh"

SH_STOP_TIMEOUT=${SH_STOP_TIMEOUT:-5}
SH_BACKEND=${TURTLES_TEST_BACKEND:-tcg}
SH_KERNEL=${SH_KERNEL:-$TURTLES_BUILD/l1/vmlinuz}
SH_INITRD=${SH_INITRD:-$TURTLES_BUILD/l1/initrd.img}
OP_STATUS=""
OP_ERROR=""
CONSOLE=""
declare -A SH_INSTANCES=()
SH_CURRENT=""

_sh_on_exit() {
    local rc=$? label pid
    # Every instance but the current one (turtled.sh's cleanup stops that).
    for label in "${!SH_INSTANCES[@]}"; do
        read -r pid _ <<<"${SH_INSTANCES[$label]}"
        [ -n "$pid" ] && [ "$pid" != "$TD_PID" ] && kill -TERM "$pid" 2>/dev/null
    done
    # Both cleanups end with exit: turtled's runs in a subshell, and first,
    # since it holds a connection to the host.  $? carries the status in.
    (exit "$rc")
    (_td_cleanup)
    rc=$?
    (exit "$rc")
    _testhost_on_exit
}

sh_init() {
    [ -r "$SH_KERNEL" ] && [ -r "$SH_INITRD" ] ||
        bail "the reference L1 image is not built ($SH_KERNEL, $SH_INITRD: make l1-image)"
    command -v libvirtd >/dev/null || bail "libvirtd is missing (make deps)"
    td_init
    testhost_install_cleanup_trap
    trap _sh_on_exit EXIT
    testhost_start a || bail "cannot start the private libvirt host"
    printf '[turtled]\nstop_timeout=%s\n' "$SH_STOP_TIMEOUT" >"$TD_DIR/turtled.conf"
}

sh_start() {
    TD_NO_DEFAULTS=1 td_start --config "$TD_DIR/turtled.conf" --state-dir "$TD_STATE" \
        --socket "$TD_SOCK" --listen 127.0.0.1:0 --backend "$SH_BACKEND" \
        --libvirt-uri "$(testhost_uri a)" "$@"
}

sh_upload() {
    local token=$1 name=$2 kind=$3 file=$4 format=${5:-raw}
    api_tn "$token" POST /v1/images --json "{\"name\":\"$name\",\"kind\":\"$kind\",\"format\":\"$format\"}"
    [ "$STATUS" = 201 ] || {
        diag "creating image $name: $STATUS $BODY"
        return 1
    }
    api_tn "$token" PUT "/v1/images/$name/data" -T "$file" \
        -H 'Content-Type: application/octet-stream'
    [ "$STATUS" = 200 ] && [ "$(jb .image.state)" = ready ] || {
        diag "uploading $file as image $name: $STATUS $BODY"
        return 1
    }
}

sh_upload_reference() {
    sh_upload "$1" l1-kernel kernel "$SH_KERNEL" && sh_upload "$1" l1-initrd initrd "$SH_INITRD"
}

sh_spec() {
    printf '{"name":"%s","vcpus":1,"memory_mib":%s,"boot":{"kernel":"l1-kernel","initrd":"l1-initrd","cmdline":"console=ttyS0"}}' \
        "$1" "${2:-512}"
}

sh_wait_op() {
    local token=$1 id=$2 deadline=$(($(now_ms) + ${3:-120} * 1000))
    OP_STATUS=""
    OP_ERROR=""
    while :; do
        api_tn "$token" GET "/v1/operations/$id/wait?timeout=5"
        OP_STATUS=$(jb .operation.status)
        OP_ERROR=$(jb '.operation.error // empty')
        case $OP_STATUS in succeeded | failed | cancelled) return 0 ;; esac
        [ "$(now_ms)" -lt "$deadline" ] || return 1
    done
}

sh_last_beat() {
    api_tn "$1" GET "/v1/stacks/$2/console?tail=50"
    tr -d '\r' <<<"$BODY" | grep -o 'TURTLES-L2 HB [0-9]*' | tail -n 1 | awk '{ print $3 }'
}

sh_beats_past() {
    local n deadline=$(($(now_ms) + ${4:-60} * 1000))
    while :; do
        n=$(sh_last_beat "$1" "$2")
        [ -n "$n" ] && [ "$n" -gt "$3" ] && return 0
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 1
    done
}

sh_wait_console() {
    local token=$1 stack=$2 regex=$3 deadline=$(($(now_ms) + ${4:-120} * 1000))
    while :; do
        api_tn "$token" GET "/v1/stacks/$stack/console"
        CONSOLE=$(tr -d '\r' <<<"$BODY")
        grep -qE "$regex" <<<"$CONSOLE" && return 0
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 1
    done
}

sh_heartbeats() {
    sed -n 'H; /TURTLES-L1 READY/h; ${x; p}' <<<"$CONSOLE" |
        grep -o 'TURTLES-L2 HB [0-9]*' | awk '{ print $3 }'
}

sh_domains() {
    testhost_virsh a list --all --name 2>/dev/null | sed '/^$/d'
}

sh_files() {
    [ -d "$1" ] && find "$1" -type f | sort
}

sh_save() {
    SH_INSTANCES[$1]="$TD_PID $TD_SOCK $TD_PORT $TD_STATE $TD_LOG"
    SH_CURRENT=$1
}

sh_use() {
    [ -n "${SH_INSTANCES[$1]:-}" ] || bail "no turtled instance '$1'"
    # The current one first: td_stop or td_start may have changed its TD_*.
    [ -n "$SH_CURRENT" ] && sh_save "$SH_CURRENT"
    read -r TD_PID TD_SOCK TD_PORT TD_STATE TD_LOG <<<"${SH_INSTANCES[$1]}"
    SH_CURRENT=$1
}

sh_start_on() {
    local host=$1 label=$2
    shift 2
    [ -n "$SH_CURRENT" ] && sh_save "$SH_CURRENT"
    TD_STATE=$TD_DIR/state-$label
    TD_SOCK=$TD_DIR/$label.sock
    TD_NO_DEFAULTS=1 td_start --config "$TD_DIR/turtled.conf" --state-dir "$TD_STATE" \
        --socket "$TD_SOCK" --listen 127.0.0.1:0 --backend "$SH_BACKEND" \
        --libvirt-uri "$(testhost_uri "$host")" "$@" || return 1
    sh_save "$label"
}
