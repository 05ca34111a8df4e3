#!/usr/bin/env bash
# The GLib annotation shim (tests/tsan/glib-annotations.c) in a TSAN=1 build:
# TSan still reports a real race and a lock-order inversion, and no longer
# reports data handed over through GMutex, GRecMutex, GRWLock, GCond,
# GAsyncQueue, GThreadPool or GOnce.  Skipped in other builds.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/tap.sh

probe="$TURTLES_BUILD/tests/tools/tsan-probe"
[ -x "$probe" ] || bail "$probe is not built"
[ "$("$probe" --is-tsan)" = yes ] || skip_all "not a ThreadSanitizer build (make check TSAN=1)"
plan 22

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tsan-t.XXXXXX") || bail "mktemp failed"
trap 'rm -rf "$tmp"' EXIT

# Whatever TSAN_OPTIONS make check sets, plus what these checks rely on.
export TSAN_OPTIONS="${TSAN_OPTIONS:-} halt_on_error=0 exitcode=66"

"$probe" race >/dev/null 2>"$tmp/race"
is "$?" 66 "race: an unguarded counter makes TSan fail the program (exit 66)"
grep -q 'WARNING: ThreadSanitizer: data race' "$tmp/race"
ok $? "race: ... with a data race report" || diag "$(head -n 20 "$tmp/race")"

"$probe" free-race >/dev/null 2>"$tmp/free-race"
is "$?" 66 "free-race: a g_free racing with a write fails the program"
grep -q 'WARNING: ThreadSanitizer: data race' "$tmp/free-race"
ok $? "free-race: ... with a data race report: our g_free stays checked" ||
    diag "$(head -n 20 "$tmp/free-race")"

"$probe" inversion >/dev/null 2>"$tmp/inversion"
is "$?" 66 "inversion: two GMutexes taken in both orders fail the program"
grep -q 'WARNING: ThreadSanitizer: lock-order-inversion' "$tmp/inversion"
ok $? "inversion: ... with a lock-order-inversion report: TSan sees GMutex" ||
    diag "$(head -n 20 "$tmp/inversion")"

for mode in gmutex rec-mutex rw-lock cond cond-until queue pool once; do
    "$probe" "$mode" >/dev/null 2>"$tmp/$mode"
    is "$?" 0 "$mode: data handed over through it: exit 0"
    ! grep -q 'ThreadSanitizer' "$tmp/$mode"
    ok $? "$mode: no TSan report" || diag "$(head -n 40 "$tmp/$mode")"
done
