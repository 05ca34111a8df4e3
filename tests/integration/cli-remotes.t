#!/usr/bin/env bash
# turtlectl remote add|list|show|switch|remove against a live turtled: the
# user's config file is written with mode 0600 in a 0700 directory, keeps
# what else it holds, never shows the token; after switch a bare command
# uses the remote's socket and token (as that tenant); bad input changes
# nothing; a config file holding a token that others may read (or that
# someone else owns) is refused with what to do; the system file's remotes
# are listed but not removed (in a mount namespace of our own, so that the
# machine's /etc is never touched).
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh
. tests/lib/turtlectl.sh

# mode FILE: its permission bits, octal.
mode() { stat -c %a "$1"; }

td_init
cli_init
td_start || bail "turtled did not start"
td_tenant acme || bail "cannot create tenant acme"
A=$TOKEN
td_tenant beta || bail "cannot create tenant beta"
B=$TOKEN
CONF_DIR=$XDG_CONFIG_HOME/turtles
CONF=$CONF_DIR/config.ini
printf '%s\n' "$A" >"$TD_DIR/acme.token"

# ---- add, list, show ----------------------------------------------------------------------------
ctl remote list
same_json "$OUT" '{"remotes":[]}' "remote list without a config file: none"
ctl remote add acme --socket "$TD_SOCK" --token-file "$TD_DIR/acme.token"
is "$RC" 0 "remote add acme --socket --token-file: exit 0"
same_json "$OUT" "{\"remote\":{\"name\":\"acme\",\"url\":null,\"socket\":\"$TD_SOCK\",\"token\":true,\"cacert\":null,\"default\":false,\"file\":\"$CONF\"}}" \
    "... printing the remote, its token as 'true' only"
is "$(mode "$CONF_DIR") $(mode "$CONF")" "700 600" "the directory is made 0700, the file written 0600"
grep -qxF "token=$A" "$CONF"
ok $? "... and the token is in the file"

# What the user wrote by hand stays.
printf '# my remotes\n%s\n' "$(cat "$CONF")" >"$CONF.new" && mv "$CONF.new" "$CONF" && chmod 600 "$CONF"
ctl remote add beta --url "http://127.0.0.1:$TD_PORT" --token-stdin <<<"$B"
is "$RC $(jq -r .remote.token <<<"$OUT")" "0 true" "remote add --token-stdin: exit 0, a token"
grep -qxF "token=$B" "$CONF" && grep -qx '# my remotes' "$CONF"
ok $? "... stored; the comment written by hand is kept"
CTL_PATH=$(realpath "$CTL")
(cd "$TD_DIR" && "$CTL_PATH" remote add rel --socket t.sock >/dev/null)
ctl remote show rel
is "$(jq -r .remote.socket <<<"$OUT")" "$TD_SOCK" "a relative --socket is stored absolute"

ctl remote list
is "$RC $(jq -r '[.remotes[].name] | join(" ")' <<<"$OUT")" "0 acme beta rel" "remote list --format json: every remote, in file order"
is "$(jq -r '.remotes[1] | "\(.url) \(.socket) \(.token) \(.cacert) \(.default) \(.file)"' <<<"$OUT")" \
    "http://127.0.0.1:$TD_PORT null true null false $CONF" "... with url, socket, token (yes/no), cacert, default, file"
ctl --format table remote list
is "$(head -n1 <<<"$OUT" | tr -s ' ')" "NAME URL/SOCKET TOKEN CACERT DEFAULT FILE" "remote list as a table: its header"
is "$(grep '^beta ' <<<"$OUT" | tr -s ' ')" "beta http://127.0.0.1:$TD_PORT yes - - $CONF" "... and a row"
ctl --format yaml remote list
r=0
for format in json yaml table; do
    "$CTL" --format "$format" remote list | grep -qF -e "$A" -e "$B" && r=1
    "$CTL" --format "$format" remote show acme | grep -qF -e "$A" -e "$B" && r=1
done
ok $r "remote list and show never print a token (json, yaml, table)"
ctl remote show nosuch
is "$RC $ERR" "1 turtlectl: no remote 'nosuch' (turtlectl remote list shows them)" "remote show of an unknown name: exit 1"

# ---- switch: a bare command uses the remote --------------------------------------------------
ctl remote switch acme
is "$RC" 0 "remote switch acme: exit 0"
grep -qx 'default-remote=acme' "$CONF"
ok $? "... default-remote = acme in the file"
ctl remote show acme
is "$(jq -r .remote.default <<<"$OUT")" true "... and remote show says it is the default"
ctl stack list
api_tn "$A" GET /v1/stacks
same_json "$OUT" "$BODY" "a bare stack list after switch: the remote's answer"
# Its token is sent (the operator on the socket would list tenants) and it is acme's.
ctl tenant list
is "$RC $ERR" "1 turtlectl: operator only" "a bare tenant list: the token went along (403, not the operator)"
td_sleep_op "$A" 0 || bail "cannot start an operation as acme"
ctl operation show "$OP_ID"
is "$RC $(jq -r .operation.id <<<"$OUT")" "0 $OP_ID" "a bare operation show of acme's operation: found (as acme)"
ctl --remote beta operation show "$OP_ID"
is "$RC" 1 "... which beta cannot see (--remote beta: its own token)"
ctl remote switch nosuch
is "$RC $ERR" "1 turtlectl: no remote 'nosuch' (turtlectl remote list shows them)" "remote switch to an unknown name: exit 1"

# ---- bad input changes nothing -------------------------------------------------------------------
before=$(sha256sum <"$CONF")
ctl remote add acme --url http://127.0.0.1:1
is "$RC $ERR" "1 turtlectl: remote 'acme' already exists in $CONF (turtlectl remote remove acme first)" \
    "remote add of an existing name: exit 1, where it is"
ctl remote add x --url ftp://host
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: remote add: --url: must start with http:// or https:// (not 'ftp://host')" \
    "remote add --url ftp://: exit 2"
ctl remote add 'a b' --url http://127.0.0.1:1
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: remote add: NAME: a remote's name is 1 to 63 letters, digits, '-', '_' or '.', starting with a letter or a digit (not 'a b')" \
    "remote add with a bad name: exit 2, the rule in words"
ctl remote add x --url https://host --cacert "$TD_DIR/nosuch.pem"
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: remote add: --cacert: cannot read $TD_DIR/nosuch.pem: No such file or directory" \
    "remote add --cacert of a missing file: exit 2"
ctl remote add x --url http://host --cacert "$TD_DIR/acme.token"
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: remote add: --cacert: only for an https:// URL" \
    "remote add --cacert with http://: exit 2"
ctl remote add x --url http://host --token "$A"
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: remote add: --token is not stored: a token on the command line lands in the shell's history and in ps; give it with --token-file FILE or --token-stdin" \
    "remote add --token: refused, saying why and what instead"
ctl remote add x --url http://host --token-file "$TD_DIR/nosuch.token"
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: remote add: --token-file: cannot read $TD_DIR/nosuch.token: No such file or directory" \
    "remote add --token-file of a missing file: exit 2"
ctl remote add x --url http://host --token-stdin <<<"two words"
like "$RC $(head -n1 <<<"$ERR")" "^2 turtlectl: remote add: --token-stdin: no token there" "remote add --token-stdin of no token: exit 2"
ctl remote add x --url http://host --socket /x.sock
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: remote add: give --url URL or --socket PATH (one of them)" \
    "remote add with --url and --socket: exit 2"
is "$(sha256sum <"$CONF")" "$before" "none of these changed the file"

# ---- remove ----------------------------------------------------------------------------------------
ctl remote remove acme
is "$RC" 0 "remote remove acme: exit 0"
ctl remote list
is "$(jq -r '[.remotes[].name] | join(" ")' <<<"$OUT")" "beta rel" "... it is gone"
grep -q default-remote "$CONF"
ok $((!$?)) "... and so is the default-remote that named it"
is "$(mode "$CONF")" 600 "... the file still 0600"
ctl remote remove acme
is "$RC $ERR" "1 turtlectl: no remote 'acme' (turtlectl remote list shows them)" "removing it again: exit 1"

# ---- a token in a file others may read ----------------------------------------------------------
chmod 644 "$CONF"
ctl --remote beta stack list
is "$RC $ERR" "1 turtlectl: $CONF holds a token and is readable by others (mode 0644): chmod 600 $CONF" \
    "a 0644 config holding a token: refused (exit 1), saying what to do"
ctl remote list
is "$RC $ERR" "1 turtlectl: $CONF holds a token and is readable by others (mode 0644): chmod 600 $CONF" \
    "... by the remote verbs too"
chmod 620 "$CONF"
ctl --remote beta stack list
is "$RC $ERR" "1 turtlectl: $CONF holds a token and is writable by others (mode 0620): chmod 600 $CONF" \
    "a group-writable one too"
chmod 600 "$CONF"
ctl --remote beta stack list
api_tn "$B" GET /v1/stacks
is "$RC" 0 "chmod 600: it works again"
same_json "$OUT" "$BODY" "... as beta"
chown 4343 "$CONF"
ctl --remote beta stack list
is "$RC $ERR" "1 turtlectl: $CONF holds a token and is owned by uid 4343, not by you (uid $(id -u)): chown $(id -u) $CONF" \
    "a config holding a token that someone else owns: refused"
chown "$(id -u)" "$CONF"
mkdir -p "$TD_DIR/xdg-open/turtles"
printf '[remote "open"]\nsocket = %s\n' "$TD_SOCK" >"$TD_DIR/xdg-open/turtles/config.ini"
chmod 644 "$TD_DIR/xdg-open/turtles/config.ini"
XDG_CONFIG_HOME=$TD_DIR/xdg-open ctl --remote open host show
is "$RC" 0 "a 0644 config without any token: fine"

# ---- 401 -------------------------------------------------------------------------------------------
ctl --url "http://127.0.0.1:$TD_PORT" stack list
is "$RC $ERR" "1 turtlectl: authentication required: give a valid token with --token TOKEN, \$TURTLES_TOKEN or a remote's token (turtlectl remote add NAME --url URL --token-file FILE); the operator needs none on the UNIX socket as root" \
    "no token over TCP: the API's 401 and how to give a token"

# ---- the system file, in a mount namespace of our own ----------------------------------------------
# sys_ctl MODE ARGS...: turtlectl ARGS with $TD_DIR/sys.ini (mode MODE, root's)
# as /etc/turtles/turtlectl.ini, on an overlay of /etc that only this
# namespace sees; sets RC, OUT and ERR as ctl does.
sys_ctl() {
    local mode=$1
    shift
    rm -rf "$TD_DIR/ovl" && mkdir "$TD_DIR/ovl"
    # shellcheck disable=SC2016 # the inner script's own arguments
    unshare -m --propagation private bash -c '
        mount -t tmpfs none "$1" && mkdir "$1/upper" "$1/work" &&
            mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/upper,workdir=$1/work" /etc &&
            mkdir -p /etc/turtles && cp "$2" /etc/turtles/turtlectl.ini &&
            chmod "$3" /etc/turtles/turtlectl.ini || exit 99
        shift 3
        exec "$@"' sys "$TD_DIR/ovl" "$TD_DIR/sys.ini" "$mode" "$CTL" --format json "$@" \
        >"$TD_DIR/ctl.out" 2>"$TD_DIR/ctl.err"
    RC=$?
    OUT=$(<"$TD_DIR/ctl.out")
    ERR=$(<"$TD_DIR/ctl.err")
}
SYS=/etc/turtles/turtlectl.ini
printf '[remote "site"]\nsocket = %s\n' "$TD_SOCK" >"$TD_DIR/sys.ini"
sys_ctl 644 remote list
if [ "$RC" = 99 ]; then
    for what in "listed, marked by its file" "not removed" "a token there, 0644: refused" "a token there, 0640: fine"; do
        skip "no private mount namespace with an overlay of /etc here: the system file's remote $what"
    done
else
    is "$RC $(jq -r '.remotes[] | select(.name == "site") | .file' <<<"$OUT")" "0 $SYS" \
        "the system file's remote: listed, marked by its file"
    sys_ctl 644 remote remove site
    is "$RC $ERR" "1 turtlectl: remote 'site' is defined in $SYS, which turtlectl does not write: remove it there (as its owner)" \
        "... and not removed: exit 1, naming the file"
    printf '[remote "site"]\nsocket = %s\ntoken = %s\n' "$TD_SOCK" "$A" >"$TD_DIR/sys.ini"
    sys_ctl 644 --remote site stack list
    is "$RC $ERR" "1 turtlectl: $SYS holds a token and is readable by others (mode 0644): chmod 600 $SYS (or 640 for a group of operators)" \
        "a token in a 0644 system file: refused"
    sys_ctl 640 --remote site stack list
    is "$RC" 0 "a token in a 0640 system file (root's): fine"
fi

cli_done
td_done
