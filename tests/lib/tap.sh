# shellcheck shell=bash
# tap.sh: the few TAP helpers our bash tests need (sourced by every .t script).
#
#   plan N                  "1..N"; call once, before the first assertion
#   skip_all REASON         "1..0 # SKIP REASON", then exit 0
#   ok STATUS DESC          "ok N - DESC" when STATUS is 0 (an exit code), else "not ok N - DESC"
#   is GOT EXPECTED DESC    ok when the two strings are equal; shows both when they differ
#   like GOT REGEX DESC     ok when GOT matches the extended regular expression REGEX
#   todo STATUS DESC WHY    like ok, for a known gap: "# TODO WHY", never a failure
#   skip REASON             one "ok N # skip REASON"
#   diag TEXT...            "# TEXT" on stderr: prove shows it even without -v (for failures)
#   note TEXT...            "# TEXT" on stdout: shown only with prove -v (for progress)
#   bail REASON             "Bail out! REASON", then exit 1: the rest of the test cannot run
#   poll_until SECONDS CMD [ARGS...]   runs CMD every 0.2 s until it succeeds (0) or
#                           SECONDS pass (1): a test waits for a condition, never
#                           for a time it guessed
#
# ok and is return STATUS (0 or 1) so that a test can write `ok ... || bail ...`.
# TAP_FAILED counts the "not ok" lines; testhost.sh reads it to decide whether
# to print the daemons' logs.

TURTLES_BUILD=${TURTLES_BUILD:-build}
TAP_COUNT=0
TAP_FAILED=0

plan() {
    echo "1..$1"
}

skip_all() {
    echo "1..0 # SKIP $*"
    exit 0
}

# Each line of every argument becomes its own "# " line, so multi-line
# output (a log tail, a command's stderr) stays valid TAP.
_tap_comment() {
    local line
    printf '%s\n' "$@" | while IFS= read -r line; do
        printf '# %s\n' "$line"
    done
}

diag() {
    _tap_comment "$@" >&2
}

note() {
    _tap_comment "$@"
}

ok() {
    local status=$1
    shift
    TAP_COUNT=$((TAP_COUNT + 1))
    if [ "$status" -eq 0 ] 2>/dev/null; then
        echo "ok $TAP_COUNT - $*"
        return 0
    fi
    echo "not ok $TAP_COUNT - $*"
    TAP_FAILED=$((TAP_FAILED + 1))
    return 1
}

# todo STATUS DESC REASON: an assertion of a known, documented gap (TAP
# "# TODO"): reported, not counted as a failure, and flagged by prove when it
# starts passing.
todo() {
    local status=$1 desc=$2 reason=$3
    TAP_COUNT=$((TAP_COUNT + 1))
    if [ "$status" -eq 0 ] 2>/dev/null; then
        echo "ok $TAP_COUNT - $desc # TODO $reason"
    else
        echo "not ok $TAP_COUNT - $desc # TODO $reason"
    fi
}

is() {
    local got=$1 expected=$2
    shift 2
    if [ "$got" = "$expected" ]; then
        ok 0 "$@"
        return 0
    fi
    ok 1 "$@"
    diag "     got: '$got'" "expected: '$expected'"
    return 1
}

# like VALUE REGEX DESC: VALUE matches the extended regular expression.
like() {
    local got=$1 regex=$2
    shift 2
    if [[ $got =~ $regex ]]; then
        ok 0 "$@"
        return 0
    fi
    ok 1 "$@"
    diag "     got: '$got'" "expected to match: /$regex/"
    return 1
}

skip() {
    TAP_COUNT=$((TAP_COUNT + 1))
    echo "ok $TAP_COUNT # skip $*"
}

bail() {
    echo "Bail out! $*"
    TAP_FAILED=$((TAP_FAILED + 1))
    exit 1
}

poll_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}
