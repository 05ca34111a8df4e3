#!/bin/bash
# The Debian packages on a booted systemd: a host VM with systemd as PID 1
# (hostvm_start --systemd, tests/lib/hostvm.sh) installs what `make deb`
# builds with dpkg -i, as an operator would, and checks the service as
# systemd runs it: socket activation, the user it runs as, its hardening
# (systemd-analyze security), the operator group on the socket, the watchdog
# restarting a hung main loop, restart after SIGKILL with state intact, the
# journal's structured fields and audit records, a metrics token scraping
# /metrics over TCP (promtool check metrics), and remove versus purge.
# The harness's own checks: systemd runs with no failed unit, and the VM
# powers off through systemd.
#
#   TURTLES_BUILD=build tests/hostvm/systemd-package.t   (make hostvm-image first)
#
# TURTLES_DEB_DIR: take turtled_*.deb and turtlectl_*.deb from there instead
# of running `make deb` (build/deb).

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
[ "$(id -u)" = 0 ] || skip_all "a host VM's 9p root needs root"
command -v dpkg-deb >/dev/null || skip_all "no dpkg-deb"
# shellcheck source-path=SCRIPTDIR source=../lib/hostvm.sh
. "$here/../lib/hostvm.sh"
[ -f "$TURTLES_BUILD/hostvm/initrd.img" ] || bail "no host VM image (make hostvm-image)"

# The harness's checks (3) and turtled's (TURTLED_CHECKS).
TURTLED_CHECKS=21
plan $((3 + TURTLED_CHECKS))
hostvm_install_cleanup_trap
started=$SECONDS

# ---- the packages -----------------------------------------------------------
# Built before the VM boots: the VM takes two cores' worth of TCG.
debs=${TURTLES_DEB_DIR:-}
if [ -z "$debs" ]; then
    t=$SECONDS
    # The unit tier runs elsewhere in make check: not again in the package build.
    DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" make -C "$root" deb \
        >"$TURTLES_BUILD/make-deb.log" 2>&1 ||
        bail "make deb failed: $(tail -n 20 "$TURTLES_BUILD/make-deb.log")"
    debs=$root/build/deb
    note "make deb: $((SECONDS - t)) s"
fi
turtled_deb=$(find "$debs" -maxdepth 1 -name 'turtled_*.deb' | sort | tail -n 1)
turtlectl_deb=$(find "$debs" -maxdepth 1 -name 'turtlectl_*.deb' | sort | tail -n 1)
[ -n "$turtled_deb" ] && [ -n "$turtlectl_deb" ] || bail "no turtled_*.deb and turtlectl_*.deb in $debs"

# ---- boot -------------------------------------------------------------------
t=$SECONDS
hostvm_start h --systemd
ok $? "a host VM boots with systemd as PID 1 to multi-user.target" || bail "no host VM"
boot=$((SECONDS - t))
diag "boot to the agent's ready: $boot s here, $(hostvm_fact h uptime) s of the VM's uptime"
is "$(hostvm_fact h systemd) [$(hostvm_fact h failed_units)]" "running []" \
    "systemd is running, no unit failed"
share=$(hostvm_share h)
mkdir -p "$share/pkg"

# vm TIMEOUT CMD: run CMD inside; its output (stdout and stderr) in OUT, status in RC.
OUT="" RC=0
vm() {
    local t=$SECONDS
    OUT=$(hostvm_run h "$1" "$2" 2>&1)
    RC=$?
    note "$((SECONDS - t)) s: ${2:0:70}"
}

# api [CURL ARGS...] METHOD PATH: as root on turtled's socket; STATUS, BODY.
STATUS="" BODY=""
api() {
    local method=${*: -2:1} path=${*: -1} extra=""
    [ $# -gt 2 ] && extra=$(printf '%q ' "${@:1:$#-2}")
    vm 60 "curl -sS -m 30 -o $share/body -w '%{http_code}' --unix-socket /run/turtles/turtled.sock \
           -X $method $extra http://x$path"
    STATUS=$OUT
    BODY=$(cat "$share/body" 2>/dev/null)
}

# ---- turtled ------------------------------------------------------------------
turtled_checks() {
    cp "$turtled_deb" "$turtlectl_deb" "$share/pkg/"
    vm 300 "dpkg -i $share/pkg/${turtled_deb##*/} $share/pkg/${turtlectl_deb##*/}"
    ok $RC "dpkg -i turtled and turtlectl (dependencies from this machine's root)" ||
        { diag "$OUT"; return 1; }

    vm 30 "systemctl is-active turtled.socket; systemctl is-active turtled.service"
    is "${OUT//$'\n'/ }" "active inactive" "after install turtled.socket listens, turtled.service waits for a request"
    api GET /v1
    vm 30 "systemctl is-active turtled.service"
    is "$STATUS $OUT" "200 active" "the first request (GET /v1 as root on the socket) starts turtled.service and is answered"
    # shellcheck disable=SC2016 # expanded inside
    vm 30 'pid=$(systemctl show -p MainPID --value turtled.service); ps -o user= -p "$pid"'
    is "$OUT" "turtles" "turtled's MainPID runs as user turtles"

    vm 60 "systemd-analyze security turtled.service --no-pager | sed -n 's/.*Overall exposure level for turtled.service: \([0-9.]*\).*/\1/p'"
    diag "systemd-analyze security turtled.service: exposure $OUT"
    ok "$(awk -v e="$OUT" 'BEGIN { exit !(e != "" && e + 0 <= 2.0) }'; echo $?)" \
        "systemd-analyze security: exposure ${OUT:-?} <= 2.0"

    # The operator group: its member is the operator; anyone else cannot
    # even connect (the socket is 0660 root:turtles-admin).
    vm 60 "useradd -M alice && usermod -aG turtles-admin alice && useradd -M bob &&
           stat -c '%a %U:%G' /run/turtles/turtled.sock"
    is "$OUT" "660 root:turtles-admin" "the socket is 0660 root:turtles-admin"
    vm 60 "runuser -u alice -- curl -sS -m 30 -o /dev/null -w '%{http_code}' --unix-socket /run/turtles/turtled.sock http://x/v1/tenants"
    is "$OUT" "200" "a member of turtles-admin is the operator: GET /v1/tenants is 200"
    vm 60 "runuser -u bob -- curl -sS -m 30 -o /dev/null --unix-socket /run/turtles/turtled.sock http://x/v1/tenants"
    is "$RC" 7 "a user outside turtles-admin cannot connect to the socket (EACCES: curl exits 7)"

    # The test backend and its hooks; a watchdog short enough for a test.
    vm 120 "mkdir -p /etc/systemd/system/turtled.service.d &&
        printf '[Service]\nExecStart=\nExecStart=/usr/sbin/turtled --backend test --test-hooks\nWatchdogSec=5s\n' \
            >/etc/systemd/system/turtled.service.d/test.conf &&
        systemctl daemon-reload && systemctl restart turtled.service"
    api -H 'Content-Type: application/json' -d '{"name":"acme"}' POST /v1/tenants
    is "$STATUS" 201 "with --backend test: tenant acme created" || diag "$BODY"
    local acme_token
    acme_token=$(jq -r '.token.secret // empty' <<<"$BODY" 2>/dev/null)
    restarts() {
        hostvm_run h 30 "systemctl show -p NRestarts --value turtled.service" 2>/dev/null
    }
    answers_after() { # the service restarted past $1 and the API answers
        [ "$(restarts)" -gt "$1" ] && api GET /v1 && [ "$STATUS" = 200 ]
    }
    local before
    before=$(restarts)
    api -H 'Content-Type: application/json' -d '{"what":"main-loop","seconds":3600}' POST /v1/test/hang
    [ "$STATUS" = 204 ] || diag "the hang hook: $STATUS $BODY"
    poll_until 60 answers_after "$before"
    ok $? "a hung main loop: the watchdog kills turtled, systemd restarts it (NRestarts $before -> $(restarts)), the API answers"
    vm 30 "journalctl -u turtled.service | grep -c 'Watchdog timeout'"
    like "$OUT" '^[1-9]' "the journal says why: 'Watchdog timeout'"
    before=$(restarts)
    vm 30 "systemctl kill -s KILL turtled.service"
    poll_until 60 answers_after "$before"
    ok $? "systemctl kill -s KILL: restarted (NRestarts $before -> $(restarts))"
    api GET /v1/tenants
    like "$BODY" '"name":"acme"' "state intact after the kill: acme is still listed"

    vm 30 "journalctl -o json -u turtled.service | jq -c 'select(.TURTLES_TENANT == \"acme\" and .MESSAGE_ID != null)' | head -n 1"
    like "$OUT" 'TURTLES_REQUEST_ID' "journalctl -o json: tenant acme's creation with TURTLES_TENANT, MESSAGE_ID, TURTLES_REQUEST_ID"
    vm 30 "journalctl -o json -u turtled.service | jq -c 'select(.TURTLES_AUDIT == \"1\")' | grep -m 1 tenants"
    ok $RC "journalctl -o json: an audit record (TURTLES_AUDIT=1) of POST /v1/tenants" || diag "$OUT"

    # A metrics token scrapes /metrics over TCP.
    vm 60 "conf=/etc/turtles/turtled.conf; mkdir -p /etc/turtles; [ -f \$conf ] || echo '[turtled]' >\$conf
           sed -i '/^listen *=/d; /^\[turtled\]/a listen=127.0.0.1:8181' \$conf && systemctl restart turtled.service"
    api -H 'Content-Type: application/json' -d '{"scope":"metrics"}' POST /v1/operator/tokens
    local secret
    secret=$(jq -r '.token.secret // empty' <<<"$BODY" 2>/dev/null)
    ok "$([ "$STATUS" = 201 ] && [ -n "$secret" ]; echo $?)" \
        "POST /v1/operator/tokens {\"scope\":\"metrics\"} gives a secret" || diag "$STATUS $BODY"
    vm 60 "curl -sS -m 30 -o $share/metrics -w '%{http_code}' -H 'Authorization: Bearer $secret' http://127.0.0.1:8181/metrics &&
           curl -sS -m 30 -o /dev/null -w ' %{http_code}' -H 'Authorization: Bearer $secret' http://127.0.0.1:8181/v1/tenants"
    is "$OUT" "200 403" "the metrics token reads /metrics over TCP, and nothing else (/v1/tenants: 403)"
    # bob, who cannot reach the socket, with a tenant's token over TCP: not the operator.
    vm 60 "runuser -u bob -- curl -sS -m 30 -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $acme_token' http://127.0.0.1:8181/v1/tenants"
    is "$OUT" 403 "another user (bob, with tenant acme's token over TCP) gets 403 on an operator route"
    if command -v promtool >/dev/null; then
        vm 60 "promtool check metrics <$share/metrics"
        ok $RC "promtool check metrics passes on what it scraped" || diag "$OUT"
    else
        skip "no promtool on this machine (Debian package prometheus)"
    fi

    vm 300 "apt-get remove -y turtled >/dev/null 2>&1 || { echo 'apt-get remove failed'; exit 1; }
            systemctl is-active turtled.service turtled.socket; test -d /var/lib/turtles && getent passwd turtles >/dev/null"
    is "${OUT//$'\n'/ } $RC" "inactive inactive 0" "apt-get remove stops turtled and its socket, keeps /var/lib/turtles and user turtles"
    vm 300 "apt-get purge -y turtled >/dev/null 2>&1 || { echo 'apt-get purge failed'; exit 1; }
            test ! -e /var/lib/turtles || echo 'state left'
            ! getent passwd turtles || echo 'user left'; ! getent group turtles || echo 'group left'"
    is "$OUT" "" "apt-get purge removes /var/lib/turtles, user and group turtles"
}
turtled_checks
# A failed install has failed its line already; the rest of the plan is skipped.
while [ "$TAP_COUNT" -lt $((2 + TURTLED_CHECKS)) ]; do
    skip "turtled's install failed"
done

# ---- poweroff through systemd ------------------------------------------------
dir=$(hostvm_dir h)
pid=$(cat "$dir/qemu.pid")
: >"$share/poweroff"
poll_until 30 sh -c "! kill -0 $pid 2>/dev/null"
grep -q 'reboot: Power down' "$dir/console.log"
ok $? "the VM powers off through systemd (systemctl poweroff --force) by itself"
hostvm_stop h
diag "systemd-package.t: $((SECONDS - started)) s (boot $boot s)"
