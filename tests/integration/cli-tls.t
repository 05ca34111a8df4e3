#!/usr/bin/env bash
# turtlectl and a turtled whose TLS certificate comes from a private CA: not
# trusted without --cacert (a message that says what to do, exit 1), trusted
# with --cacert CA.pem or a remote's cacert, and by nothing else (another
# CA, another host name); --cacert is refused where it means nothing (the
# socket, http://) or names no usable file.  The console's stream and its
# WebSocket honour the CA as the requests do.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh
. tests/lib/turtlectl.sh

command -v openssl >/dev/null || skip_all "openssl is missing (make deps)"

td_init
cli_init

# ---- a private CA, and a certificate of it for 127.0.0.1 -----------------------------------------
# make_ca NAME: $TD_DIR/NAME.pem and NAME.key, a self-signed CA.
make_ca() {
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Turtles test $1" \
        -keyout "$TD_DIR/$1.key" -out "$TD_DIR/$1.pem" 2>"$TD_DIR/openssl.err"
}
make_ca ca || bail "openssl cannot make a CA: $(cat "$TD_DIR/openssl.err")"
make_ca other-ca || bail "openssl cannot make a CA: $(cat "$TD_DIR/openssl.err")"
printf 'subjectAltName = IP:127.0.0.1\n' >"$TD_DIR/server.ext"
if ! openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$TD_DIR/server.key" \
    -out "$TD_DIR/server.csr" 2>"$TD_DIR/openssl.err" ||
    ! openssl x509 -req -days 2 -set_serial 1 -in "$TD_DIR/server.csr" -CA "$TD_DIR/ca.pem" \
        -CAkey "$TD_DIR/ca.key" -extfile "$TD_DIR/server.ext" -out "$TD_DIR/server.pem" \
        2>>"$TD_DIR/openssl.err"; then
    bail "openssl cannot sign the server certificate: $(cat "$TD_DIR/openssl.err")"
fi
cat >"$TD_DIR/turtled.conf" <<EOF
[turtled]
tls_cert = $TD_DIR/server.pem
tls_key = $TD_DIR/server.key
tls_cert = $TD_DIR/server.pem
tls_key = $TD_DIR/server.key
EOF
td_start --config "$TD_DIR/turtled.conf" || bail "turtled did not start with TLS"
td_tenant acme || bail "cannot create tenant acme"
A=$TOKEN
URL=https://127.0.0.1:$TD_PORT

# The tenant's stacks, fetched by curl with the CA: what turtlectl must print.
EXPECTED=$(curl -sS --max-time 10 --cacert "$TD_DIR/ca.pem" -H "Authorization: Bearer $A" \
    "$URL/v1/stacks")
[ "$(jq -c .stacks <<<"$EXPECTED")" = "[]" ] || bail "curl --cacert cannot list acme's stacks: $EXPECTED"

# ---- --cacert ------------------------------------------------------------------------------------
ctl --url "$URL" --token "$A" stack list
like "$RC $ERR" "^1 turtlectl: the certificate of $URL is not trusted \(.*\): give its CA with --cacert FILE or the remote's cacert$" \
    "https:// with a private CA and no --cacert: exit 1, not trusted, and what to do"
ctl --url "$URL" --token "$A" --cacert "$TD_DIR/ca.pem" stack list
is "$RC" 0 "--cacert CA.pem: exit 0"
same_json "$OUT" "$EXPECTED" "... and the tenant's stacks, as curl --cacert reads it"
ctl --url "$URL" --token "$A" stack list --cacert "$TD_DIR/ca.pem"
is "$RC" 0 "--cacert after the verb: the same"
ctl --url "$URL" --token "$A" --cacert "$TD_DIR/other-ca.pem" stack list
like "$RC $ERR" "^1 turtlectl: the certificate of $URL is not trusted by $TD_DIR/other-ca.pem \(.*\): give the CA that signed it" \
    "--cacert of another CA: exit 1, not trusted by that file (the system's store is not added)"
ctl --url "https://localhost:$TD_PORT" --token "$A" --cacert "$TD_DIR/ca.pem" stack list
like "$RC $ERR" "^1 turtlectl: the certificate of https://localhost:$TD_PORT is not for that host name" \
    "a host name the certificate does not hold: exit 1, saying so"

ctl --url "$URL" --token "$A" --cacert "$TD_DIR/nosuch.pem" stack list
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: --cacert: cannot read $TD_DIR/nosuch.pem: No such file or directory" \
    "--cacert of a missing file: exit 2 before connecting, naming it"
ctl --url "$URL" --token "$A" --cacert "$TD_DIR/server.key" stack list
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: --cacert: $TD_DIR/server.key holds no PEM certificate (-----BEGIN CERTIFICATE-----)" \
    "--cacert of a file without a certificate: exit 2"
ctl --socket "$TD_SOCK" --cacert "$TD_DIR/ca.pem" host show
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: --cacert: only for an https:// URL (not $TD_SOCK)" \
    "--cacert with --socket: usage error"
ctl --url "http://127.0.0.1:1" --cacert "$TD_DIR/ca.pem" host show
is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: --cacert: only for an https:// URL (not http://127.0.0.1:1)" \
    "--cacert with an http:// URL: usage error"
ctl --url "$URL" --insecure host show
like "$RC $(head -n1 <<<"$ERR")" "^2 turtlectl: unknown option '--insecure'" "there is no --insecure"

# ---- a remote's cacert --------------------------------------------------------------------------
printf '%s\n' "$A" >"$TD_DIR/acme.token"
ctl remote add tls --url "$URL" --token-file "$TD_DIR/acme.token" --cacert "$TD_DIR/ca.pem"
is "$RC $(jq -r .remote.cacert <<<"$OUT")" "0 $TD_DIR/ca.pem" "remote add --cacert: stored (absolute)"
ctl remote add tls-bare --url "$URL" --token-file "$TD_DIR/acme.token"
ctl --remote tls stack list
is "$RC" 0 "--remote with a cacert: exit 0"
same_json "$OUT" "$EXPECTED" "... the tenant's stacks"
ctl --remote tls-bare stack list
like "$RC $ERR" "^1 turtlectl: the certificate of $URL is not trusted \(" "a remote without cacert: not trusted"
ctl --remote tls-bare --cacert "$TD_DIR/ca.pem" stack list
is "$RC" 0 "--cacert gives a remote without one its CA"
ctl --remote tls --cacert "$TD_DIR/other-ca.pem" stack list
like "$RC $ERR" "^1 turtlectl: the certificate of $URL is not trusted by $TD_DIR/other-ca.pem" \
    "--cacert beats the remote's cacert"
mv "$TD_DIR/ca.pem" "$TD_DIR/ca.pem.moved"
ctl --remote tls stack list
is "$RC $ERR" "1 turtlectl: $XDG_CONFIG_HOME/turtles/config.ini: remote 'tls': cacert: cannot read $TD_DIR/ca.pem: No such file or directory" \
    "a remote whose cacert is gone: exit 1 before connecting, naming the file and the remote"
mv "$TD_DIR/ca.pem.moved" "$TD_DIR/ca.pem"

# ---- the console: its stream and its WebSocket --------------------------------------------------
NOT_FOUND=$(curl -sS --max-time 10 --cacert "$TD_DIR/ca.pem" -H "Authorization: Bearer $A" \
    "$URL/v1/stacks/nosuch/console" | jq -r .error.message)
ctl --url "$URL" --token "$A" stack console nosuch
like "$RC $ERR" "^1 turtlectl: the certificate of $URL is not trusted \(" "console stream without --cacert: not trusted"
ctl --url "$URL" --token "$A" --cacert "$TD_DIR/ca.pem" stack console nosuch
is "$RC $ERR" "1 turtlectl: $NOT_FOUND" "console stream with --cacert: through TLS to turtled's 404"
# A terminal on stdin and stdout (script(1)'s pty) makes the console
# interactive: the WebSocket handshake on a connection of its own.
if command -v script >/dev/null; then
    console_pty() {
        script -qec "$(printf '%q ' "$CTL" --url "$URL" --token "$A" "$@" stack console nosuch)" /dev/null \
            </dev/null 2>&1 | tr -d '\r'
    }
    out=$(console_pty)
    like "$out" "turtlectl: the certificate of $URL is not trusted \(" "console WebSocket without --cacert: not trusted"
    out=$(console_pty --cacert "$TD_DIR/ca.pem")
    is "$out" "turtlectl: $NOT_FOUND" "console WebSocket with --cacert: through TLS to turtled's 404"
else
    skip "no script(1) for a terminal: the console's WebSocket is not tried"
    skip "no script(1) for a terminal: the console's WebSocket is not tried"
fi

# ---- 401 over TLS ---------------------------------------------------------------------------------
ctl --url "$URL" --token "tt_$(printf '0%.0s' {1..64})" --cacert "$TD_DIR/ca.pem" stack list
is "$RC $ERR" "1 turtlectl: invalid or revoked token: give a valid token with --token TOKEN, \$TURTLES_TOKEN or a remote's token (turtlectl remote add NAME --url URL --token-file FILE); the operator needs none on the UNIX socket as root" \
    "a wrong token: exit 1, the API's 401 and how to give a token"

cli_done
td_done
