#!/usr/bin/env bash
# Shell completion: `turtlectl __complete WORDS... CURRENT` read through the
# binary (nouns, verbs, options, --format values, file directives, names
# from a live turtled for the caller's token and the --token/--socket typed
# on the line), then the real scripts of packaging/ loaded by bash (sourced
# plainly and through bash-completion's loader), zsh and fish, asked the way
# each shell asks on TAB: `turtlectl stack show <TAB>` offers exactly the
# caller's stacks, and nouns, verbs, options, --format values and a prefix
# complete.  With turtled stopped, and with a socket that accepts but never
# answers, each shell's completion returns within 1 s and offers no names.
#
# zsh: the completion function runs outside the line editor (zsh -f, the
# script autoloaded from $fpath as installed) with compadd and _files
# stubbed to print what they are given, since a zpty-driven TAB depends on
# terminal output.  fish: `complete -C` runs fish's real completion.
# shellcheck disable=SC2119 # td_start takes optional arguments
# shellcheck disable=SC2016 # the shells' scripts are single-quoted on purpose
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh
. tests/lib/turtlectl.sh

for shell in bash zsh fish python3 sqlite3; do
    command -v "$shell" >/dev/null || bail "$shell is missing (make deps)"
done
PACKAGING=$PWD/packaging

td_init
cli_init
td_start || bail "turtled did not start"
td_tenant acme || bail "no tenant acme"
ACME=$TOKEN
td_tenant beta || bail "no tenant beta"
BETA=$TOKEN
api_op POST /v1/peers --json '{"name":"hosta","libvirt_uri":"qemu+tcp://hosta/system"}'
[ "$STATUS" = 201 ] || bail "no peer hosta: $STATUS $BODY"

# Stacks as a create writes their rows (the test backend stores no image,
# so it creates no stack): web and worker of acme, db of beta.
stack_row() { # ID TENANT NAME
    printf "INSERT INTO stacks (id, tenant_id, name, spec_json, vcpus, memory_mib, state, created_at, updated_at)
        SELECT '%s', id, '%s', '{\"name\":\"%s\",\"vcpus\":1,\"memory_mib\":256,\"boot\":{\"kernel\":\"k\"}}',
            1, 256, 'stopped', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z'
        FROM tenants WHERE name = '%s';\n" "$1" "$3" "$3" "$2"
}
sqlite3 -cmd '.timeout 5000' "$TD_STATE/turtled.db" \
    "$(stack_row 11111111-1111-4111-8111-111111111111 acme web)
     $(stack_row 22222222-2222-4222-8222-222222222222 acme worker)
     $(stack_row 33333333-3333-4333-8333-333333333333 beta db)" >/dev/null ||
    bail "cannot write the stacks' rows"
api_tn "$ACME" GET /v1/stacks
is "$STATUS $(jb -c '[.stacks[].name]')" '200 ["web","worker"]' "acme's stacks: web, worker (the setup)"

# The shells find turtlectl by name; the caller is acme on the test's socket.
mkdir -p "$TD_DIR/bin"
ln -s "$(realpath "$CTL")" "$TD_DIR/bin/turtlectl"
export PATH=$TD_DIR/bin:$PATH
export TURTLES_SOCKET=$TD_SOCK TURTLES_TOKEN=$ACME

# ---- __complete through the binary ------------------------------------------------------------
# comp ARGS...: `turtlectl __complete ARGS`, its candidates without the
# descriptions in COMP (one line each, the directive last), its exit status
# in RC and its stderr in ERR.
comp() {
    turtlectl __complete "$@" >"$TD_DIR/comp.out" 2>"$TD_DIR/comp.err"
    RC=$?
    COMP=$(cut -f1 "$TD_DIR/comp.out" | paste -sd ' ')
    ERR=$(<"$TD_DIR/comp.err")
    cat "$TD_DIR/comp.err" >>"$TD_DIR/ctl-all.err"
}
nouns="host tenant token image stack operation event peer device-class device network remote help :0"
comp ""
is "$RC $COMP" "0 $nouns" "an empty line: the nouns of the table, help, directive :0"
like "$(head -n1 "$TD_DIR/comp.out")" $'^host\t.+' "... each with its summary after a tab"
comp d
is "$COMP" "device-class device :0" "a prefix filters the nouns"
comp stack s
is "$COMP" "show start stop stats :0" "stack s: the stack verbs that start with s"
comp stack device ""
is "$COMP" "attach detach :0" "stack device: its sub-verbs"
comp help stack de
is "$COMP" "delete device :0" "help stack de: help completes nouns and verbs too"
comp stack migrate web --
is "$COMP" "--to --wait --remote --socket --url --token --cacert --format --help --version :0" \
    "stack migrate web --: the verb's options from its synopsis, then the global ones"
comp --format ""
is "$COMP" "table json yaml csv :0" "--format: the values its synopsis lists"
comp stack list --format=y
is "$COMP" "--format=yaml :0" "--format=y: the value in the same word"
comp image create img --format ""
is "$COMP" "raw qcow2 :0" "image create's own --format (the image's) shadows the global one: raw|qcow2, no table|json"
comp stack create web --file ""
is "$COMP" ":1" "--file SPEC.json: directive :1, the shell completes file names"
comp image upload img ""
is "$COMP" ":1" "image upload NAME FILE: file names for FILE"
comp stack show ""
is "$RC $COMP" "0 web worker :0" "stack show: exactly the caller's stacks, from turtled"
comp stack show wo
is "$COMP" "worker :0" "stack show wo: the prefix filters the names"
comp --token "$BETA" stack show ""
is "$COMP" "db :0" "a --token typed on the line is the caller: beta's stack"
comp stack device attach web ""
is "$COMP" ":0" "stack device attach NAME CLASS: no device class exists, none offered"
comp stack create ""
is "$COMP" ":0" "stack create NAME: a new name, no stack offered"
TURTLES_TOKEN="" comp stack migrate web --to ""
is "$COMP" "hosta :0" "--to PEER (the operator): the peers"
TURTLES_TOKEN="" comp token list ""
is "$COMP" "acme beta :0" "token list TENANT (the operator): the tenants"
comp tenant show ""
is "$RC $COMP" "0 :0" "tenant show as a tenant: turtled refuses the list, nothing offered, exit 0"
comp --socket "$TD_DIR/nosuch.sock" stack show ""
is "$RC $COMP" "0 :0" "a --socket where nothing listens: nothing offered, exit 0"
like "$ERR" "cannot reach turtled" "... the reason on stderr only"
comp --url notaurl stack show ""
is "$RC $COMP" "0 :0" "a bad --url: nothing offered, exit 0 (the error on stderr)"
comp stakc show ""
is "$RC $COMP" "0 :0" "an unknown noun: nothing offered"

# ---- the shells ------------------------------------------------------------------------------
# Each prints the candidates for LINE (the cursor at its end), one a line,
# sorted, then the milliseconds the completion itself took.

# bash, the script sourced as is: COMP_* set as readline sets them.
bash_plain() {
    bash --norc --noprofile -c '
        . "$1"
        COMP_LINE=$2 COMP_POINT=${#2}
        read -r -a COMP_WORDS <<<"$2"
        [[ $2 == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        t0=$(date +%s%N)
        _turtlectl
        t1=$(date +%s%N)
        printf "%s\n" "${COMPREPLY[@]}" | sort
        echo "$(((t1 - t0) / 1000000))ms"' _ "$PACKAGING/turtlectl.bash-completion" "$1"
}

# bash with bash-completion: its loader finds the script where it is
# installed (here: the user's completions dir) on first use.
mkdir -p "$TD_DIR/bash-completion/completions"
cp "$PACKAGING/turtlectl.bash-completion" "$TD_DIR/bash-completion/completions/turtlectl"
bash_loader() {
    BASH_COMPLETION_USER_DIR=$TD_DIR/bash-completion bash --norc --noprofile -c '
        . /usr/share/bash-completion/bash_completion
        __load_completion turtlectl || { echo "the loader found no completion"; exit 1; }
        spec=$(complete -p turtlectl) || exit 1
        func=${spec#*-F }
        func=${func%% *}
        COMP_LINE=$1 COMP_POINT=${#1}
        read -r -a COMP_WORDS <<<"$1"
        [[ $1 == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        t0=$(date +%s%N)
        "$func" turtlectl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        t1=$(date +%s%N)
        printf "%s\n" "${COMPREPLY[@]}" | sort
        echo "$(((t1 - t0) / 1000000))ms"' _ "$1"
}

# zsh: the script autoloaded from $fpath as _turtlectl, as installed.
mkdir -p "$TD_DIR/zsh"
cp "$PACKAGING/turtlectl.zsh-completion" "$TD_DIR/zsh/_turtlectl"
zsh_stubbed() {
    zsh -f -c '
        fpath=("$1" $fpath)
        autoload -Uz compinit && compinit -u -D
        autoload -Uz _turtlectl
        compadd() { while (( $# )) && [[ $1 != -- ]]; do shift; done; shift; print -rl -- "$@"; }
        _files() { print -r -- "<files>"; }
        words=("${(@z)2}")
        [[ $2 == *" " ]] && words+=("")
        CURRENT=${#words} PREFIX=${words[-1]}
        t0=$(date +%s%N)
        _turtlectl >"$3"
        t1=$(date +%s%N)
        sort "$3"
        echo "$(((t1 - t0) / 1000000))ms"' _ "$TD_DIR/zsh" "$1" "$TD_DIR/zsh.out"
}

# fish: complete -C runs fish's own completion of the line.
fish_real() {
    fish --no-config -c '
        source $argv[1]
        set t0 (date +%s%N)
        set got (complete -C"$argv[2]")
        set t1 (date +%s%N)
        printf "%s\n" $got | cut -f1 | sort
        echo (math --scale=0 "($t1 - $t0) / 1000000")ms' "$PACKAGING/turtlectl.fish" "$1"
}

# shell_is SHELL LINE WANT DESC: the candidates SHELL offers for LINE
# (space-separated, sorted) are WANT.
shell_is() {
    local out
    out=$("$1" "$2" 2>&1)
    is "$(sed '$d' <<<"$out" | paste -sd ' ')" "$3" "$1: '${2//$BETA/BETA-TOKEN}<TAB>' offers '$3' ($4)"
}

for shell in bash_plain bash_loader zsh_stubbed fish_real; do
    shell_is "$shell" "turtlectl stack show " "web worker" "exactly the caller's stacks, from turtled"
    shell_is "$shell" "turtlectl stack show wo" "worker" "a prefix filters the names"
    shell_is "$shell" "turtlectl sta" "stack" "a noun"
    shell_is "$shell" "turtlectl stack mi" "migrate" "a verb"
    shell_is "$shell" "turtlectl stack migrate web --w" "--wait" "an option of the verb"
    shell_is "$shell" "turtlectl --format " "csv json table yaml" "--format's values"
    shell_is "$shell" "turtlectl --token $BETA stack show " "db" "the --token typed on the line"
done
shell_is bash_plain "turtlectl stack list --format=j" "json" "--format=j: readline replaces what follows the ="
shell_is zsh_stubbed "turtlectl stack create web --file " "<files>" "--file: zsh's _files"
printf 'x\n' >"$TD_DIR/spec-one.json"
shell_is bash_plain "turtlectl stack create web --file $TD_DIR/spec-o" "$TD_DIR/spec-one.json" \
    "--file: bash's file names"
shell_is fish_real "turtlectl stack create web --file $TD_DIR/spec-o" "$TD_DIR/spec-one.json" \
    "--file: fish's file names"

# ---- a dead or silent turtled never holds the shell -------------------------------------------
# fast_and_empty SHELL WHY: `turtlectl stack show <TAB>` returns within 1 s
# with nothing to offer.
fast_and_empty() {
    local out ms
    out=$("$1" "turtlectl stack show " 2>&1)
    ms=$(tail -n1 <<<"$out")
    ms=${ms%ms}
    is "$(sed '$d' <<<"$out" | paste -sd ' ')" "" "$1, $2: no names"
    [ "$ms" -lt 1000 ] 2>/dev/null
    ok $? "$1, $2: completion returned within 1 s (${ms} ms)"
}

# A socket that accepts (the kernel's backlog) and never answers.
SILENT=$TD_DIR/silent.sock
td_bg_start silent python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(64)
time.sleep(120)' "$SILENT"
poll_until 5 test -S "$SILENT" || bail "the silent listener did not start"
TURTLES_SOCKET=$SILENT
for shell in bash_plain bash_loader zsh_stubbed fish_real; do
    fast_and_empty "$shell" "a socket that never answers"
done
td_bg_stop silent

td_stop
TURTLES_SOCKET=$TD_SOCK
for shell in bash_plain bash_loader zsh_stubbed fish_real; do
    fast_and_empty "$shell" "turtled stopped"
done
shell_is bash_plain "turtlectl stack sh" "show" "turtled stopped: verbs still complete"

cli_done
td_done
