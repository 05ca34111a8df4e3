# shellcheck shell=bash
# turtlectl.sh: helpers for the cli-*.t tests (sourced after tap.sh and
# turtled.sh): run turtlectl, capture its output, compare JSON and YAML.
CTL=$TURTLES_BUILD/turtlectl

cli_init() {
    [ -x "$CTL" ] || bail "$CTL is not built (make $CTL)"
    # Nothing of the machine's own turtlectl setup may leak in.
    unset TURTLES_SOCKET TURTLES_TOKEN
    export XDG_CONFIG_HOME=$TD_DIR/xdg
    mkdir -p "$XDG_CONFIG_HOME"
    : >"$TD_DIR/ctl-all.err"
}

# ctl ARGS...: runs turtlectl with --format json, as scripts do (a --format
# in ARGS comes later and wins); sets RC, OUT (stdout) and ERR (stderr).
ctl() {
    "$CTL" --format json "$@" >"$TD_DIR/ctl.out" 2>"$TD_DIR/ctl.err"
    RC=$?
    OUT=$(<"$TD_DIR/ctl.out")
    ERR=$(<"$TD_DIR/ctl.err")
    cat "$TD_DIR/ctl.err" >>"$TD_DIR/ctl-all.err"
}

# op ARGS...: turtlectl as the operator, on the test's socket.
op() { ctl --socket "$TD_SOCK" "$@"; }

# cli_usage_is MESSAGE USAGE-LINE DESC ARGS...: turtlectl ARGS (no daemon:
# a socket that does not exist) exits 2 with "turtlectl: MESSAGE" first on
# stderr, then the usage holding "usage: turtlectl USAGE-LINE" (two checks).
cli_usage_is() {
    local message=$1 usage=$2 desc=$3
    shift 3
    ctl --socket "$TD_DIR/nosuch.sock" "$@"
    is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: $message" "$desc"
    grep -qF "usage: turtlectl $usage" <<<"$ERR"
    ok $? "... then the usage: $usage" || diag "stderr: $ERR"
}

# same_json GOT EXPECTED DESC: equal JSON values (key order aside).
same_json() {
    is "$(jq -S . <<<"$1" 2>&1)" "$(jq -S . <<<"$2" 2>&1)" "$3"
}

# as_file NAME TEXT: TEXT in $TD_DIR/NAME (for td_check_body); prints the path.
as_file() {
    printf '%s' "$2" >"$TD_DIR/$1"
    echo "$TD_DIR/$1"
}

# yaml_matches YAML JSON DESC: YAML parses, as YAML 1.2 and as 1.1 alike,
# to the JSON value (with the yaml package openapi-check uses).
yaml_matches() {
    local module=$PWD/node_modules/yaml got
    if ! command -v node >/dev/null || [ ! -d "$module" ]; then
        skip "no node or node_modules/yaml to read YAML back: $3"
        return
    fi
    got=$(printf '%s' "$1" | node -e '
        const YAML = require(process.argv[1]);
        let text = "";
        process.stdin.on("data", (d) => (text += d)).on("end", () => {
            const v12 = JSON.stringify(YAML.parse(text, { version: "1.2" }));
            const v11 = JSON.stringify(YAML.parse(text, { version: "1.1" }));
            console.log(v12 === v11 ? v12 : "YAML 1.1 reads it otherwise: " + v11);
        });' "$module" 2>&1)
    same_json "$got" "$2" "$3"
}

# cli_done: no sanitizer report from any turtlectl run (ASan and TSan builds).
cli_done() {
    ! grep -qE 'ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer|runtime error:|SUMMARY: [A-Za-z]*Sanitizer' "$TD_DIR/ctl-all.err"
    ok $? "no turtlectl run printed a sanitizer report"
    [ "${TAP_FAILED:-0}" = 0 ] || diag "--- turtlectl stderr (last 20 lines) ---" "$(tail -n 20 "$TD_DIR/ctl-all.err")"
}

# cli_noun_help_ok NOUN VERB...: "help NOUN" exits 0 with the usage of every
# VERB and each in the list of verbs with a one-line summary (at most 60
# columns, no final period), and "NOUN --help" prints the same.
cli_noun_help_ok() {
    local noun=$1 help verb summary r=0
    shift
    ctl help "$noun"
    help=$OUT
    [ "$RC" = 0 ] || r=1
    for verb in "$@"; do
        grep -Eq "^(usage: |       )turtlectl $noun $verb( |\$)" <<<"$help" ||
            { diag "help $noun: no usage of $verb"; r=1; }
        summary=$(sed -n '/^Verbs:$/,/^$/p' <<<"$help" | sed -En "s/^  $verb +//p")
        if [ -z "$summary" ] || [ "${#summary}" -gt 60 ] || [ "${summary%.}" != "$summary" ]; then
            diag "help $noun: the summary of $verb: '$summary'"
            r=1
        fi
    done
    ctl "$noun" --help
    [ "$RC $OUT" = "0 $help" ] || { diag "$noun --help is not help $noun: $OUT"; r=1; }
    ok "$r" "help $noun: exit 0, the usage of every verb, a one-line summary of each; --help the same"
}

# cli_verb_help_ok WORDS...: "help WORDS" (a noun and its verb) exits 0 with the
# verb's usage first; its "Options:" explain exactly the options the usage
# names; its text fits 79 columns; "WORDS
# --help" prints the same; and the verb takes every option its usage names
# (shell completion offers them from there).
cli_verb_help_ok() {
    local words="$*" help named explained width opt r=0
    ctl help "$@"
    help=$OUT
    [ "$RC" = 0 ] || r=1
    head -n1 <<<"$help" | grep -Eq "^usage: turtlectl $words( |\$)" ||
        { diag "help $words: not its usage first"; r=1; }
    named=$(sed '/^$/q' <<<"$help" | grep -Eo -- '--[a-z][a-z-]*' | sort -u | paste -sd' ')
    explained=$(sed -n '/^Options:$/,/^$/p' <<<"$help" | grep -Eo -- '^  --[a-z][a-z-]*' |
        sed 's/^  //' | sort -u | paste -sd' ')
    [ "$named" = "$explained" ] ||
        { diag "help $words: the usage names '$named', Options: explains '$explained'"; r=1; }
    width=$(awk '{ if (length > w) w = length } END { print w + 0 }' <<<"$help")
    [ "$width" -le 79 ] || { diag "help $words: $width columns wide"; r=1; }
    ctl "$@" --help
    [ "$RC $OUT" = "0 $help" ] || { diag "$words --help is not help $words: $OUT"; r=1; }
    for opt in $named; do
        ctl --socket "$TD_DIR/nosuch.sock" "$@" "$opt"
        ! grep -q "unknown option '$opt'" <<<"$ERR" || { diag "$words refuses $opt: $ERR"; r=1; }
    done
    ok "$r" "help $words: exit 0, its usage, the options it names explained; --help the same"
}
