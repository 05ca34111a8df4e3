#!/usr/bin/env bash
# Peers (migration targets) through the API: create, list, get, delete; each
# bad body a 400 that changes nothing; 409 for a taken name; 404 for an
# unknown or impossible name; 403 for tenants on every route, 401 without
# credentials; peers survive a restart.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh

time_re='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$'
matches() { [[ $1 =~ $2 ]]; }

td_init
td_start || bail "turtled did not start"
td_tenant acme || bail "no tenant acme"
acme=$TOKEN

# ---- create -------------------------------------------------------------------------
api_op GET /v1/peers
is "$STATUS $BODY" '200 {"peers":[],"next":null}' "GET /v1/peers at first: an empty list"

api_op POST /v1/peers --json \
    '{"name":"hostb","libvirt_uri":"qemu+tcp://10.0.0.2/system","migrate_uri":"tcp://10.0.0.2:49152"}'
is "$STATUS" 201 "POST /v1/peers {hostb, qemu+tcp, tcp migrate URI}: 201"
is "$(hdr Location)" /v1/peers/hostb "... with Location: /v1/peers/hostb"
hostb=$(jb -c .peer)
is "$(jb -c '.peer | [.name, .libvirt_uri, .migrate_uri]')" \
    '["hostb","qemu+tcp://10.0.0.2/system","tcp://10.0.0.2:49152"]' "... the peer as given"
matches "$(jb .peer.created_at)" "$time_re"
ok $? "... created_at is RFC 3339 UTC"
is "$(jb -c '.peer | keys')" '["created_at","libvirt_uri","migrate_uri","name"]' \
    "... and nothing but name, libvirt_uri, migrate_uri, created_at"

api_op POST /v1/peers --json '{"name":"hosta","libvirt_uri":"qemu+ssh://root@hosta.example/system"}'
is "$STATUS $(jb .peer.migrate_uri)" "201 null" "a peer without migrate_uri: 201, migrate_uri null"
hosta=$(jb -c .peer)
is "$(td_sql "SELECT ifnull(migrate_uri, 'NULL') FROM peers WHERE name = 'hosta'")" NULL \
    "... stored as NULL, not as an empty string"
api_op POST /v1/peers --json '{"name":"local","libvirt_uri":"qemu+unix:///system?socket=/run/b/libvirt-sock","migrate_uri":null}'
is "$STATUS $(jb .peer.libvirt_uri) $(jb .peer.migrate_uri)" \
    "201 qemu+unix:///system?socket=/run/b/libvirt-sock null" "a qemu+unix URI with a query and an explicit null migrate_uri: 201"

api_op POST /v1/peers --json '{"name":"hostb","libvirt_uri":"qemu+tcp://10.9.9.9/system"}'
is_error 409 conflict "the same name again: 409"
is "$ERR_MESSAGE" "peer 'hostb' already exists" "... saying the name is taken"
api_op GET /v1/peers/hostb
is "$STATUS $(jb -c .peer)" "200 $hostb" "... and hostb is unchanged"

# ---- bad bodies: each a 400 that names its field, and nothing changes -------------------
before=$(td_sql "SELECT group_concat(name || '|' || libvirt_uri || '|' || ifnull(migrate_uri, ''), ';') FROM peers")
bad_body() { # JSON FIELD DESC
    api_op POST /v1/peers --json "$1"
    is_error 400 bad_request "$3"
    [[ $ERR_MESSAGE == "$2: "* ]]
    ok $? "... the message starts with '$2: ' ($ERR_MESSAGE)"
}
long=$(printf 'a%.0s' {1..1012}) # 13 + 1012 = 1025 characters
bad_body '{"libvirt_uri":"qemu+tcp://h/system"}' name "no name: 400"
bad_body '{"name":"x"}' libvirt_uri "no libvirt_uri: 400"
bad_body '{"name":"Host_B","libvirt_uri":"qemu+tcp://h/system"}' name "a name outside [a-z0-9-]: 400"
bad_body '{"name":"x-","libvirt_uri":"qemu+tcp://h/system"}' name "a name ending in '-': 400"
bad_body '{"name":5,"libvirt_uri":"qemu+tcp://h/system"}' name "a name that is not a string: 400"
bad_body '{"name":"x","libvirt_uri":null}' libvirt_uri "a null libvirt_uri: 400"
bad_body '{"name":"x","libvirt_uri":""}' libvirt_uri "an empty libvirt_uri: 400"
bad_body '{"name":"x","libvirt_uri":"hostb"}' libvirt_uri "a libvirt_uri without a scheme: 400"
bad_body '{"name":"x","libvirt_uri":"https://hostb/system"}' libvirt_uri "an https URI: 400"
bad_body '{"name":"x","libvirt_uri":"qemu+http://hostb/system"}' libvirt_uri "an unknown transport: 400"
bad_body '{"name":"x","libvirt_uri":"qemu:system"}' libvirt_uri "no // after the scheme: 400"
bad_body '{"name":"x","libvirt_uri":"qemu+tcp://host b/system"}' libvirt_uri "a space in libvirt_uri: 400"
bad_body '{"name":"x","libvirt_uri":"qemu+tcp://h/system\n"}' libvirt_uri "a newline in libvirt_uri: 400"
bad_body '{"name":"x","libvirt_uri":"qemu+tcp://h:99999/system"}' libvirt_uri "a port out of range: 400"
bad_body '{"name":"x","libvirt_uri":"qemu+ssh://root:secret@h/system"}' libvirt_uri "a password in libvirt_uri: 400"
is "$ERR_MESSAGE" "libvirt_uri: must not carry a password" "... saying no password"
bad_body "{\"name\":\"x\",\"libvirt_uri\":\"qemu+tcp://h/$long\"}" libvirt_uri "a libvirt_uri of 1025 characters: 400"
is "$ERR_MESSAGE" "libvirt_uri: must be at most 1024 characters" "... saying the limit"
bad_body '{"name":"x","libvirt_uri":"qemu+tcp://h/system","migrate_uri":"udp://h"}' migrate_uri "a udp migrate_uri: 400"
is "$ERR_MESSAGE" "migrate_uri: must be tcp://HOST[:PORT] or rdma://HOST[:PORT]" "... saying what it must be"
bad_body '{"name":"x","libvirt_uri":"qemu+tcp://h/system","migrate_uri":"tcp://h/path"}' migrate_uri "a migrate_uri with a path: 400"
bad_body '{"name":"x","libvirt_uri":"qemu+tcp://h/system","migrate_uri":"tcp://:49152"}' migrate_uri "a migrate_uri without a host: 400"
bad_body '{"name":"x","libvirt_uri":"qemu+tcp://h/system","migrate_uri":"tcp://h:0"}' migrate_uri "a migrate_uri with port 0: 400"
bad_body '{"name":"x","libvirt_uri":"qemu+tcp://h/system","migrate_uri":""}' migrate_uri "an empty migrate_uri: 400"
bad_body '{"name":"x","libvirt_uri":"qemu+tcp://h/system","migrate_uri":7}' migrate_uri "a migrate_uri that is not a string: 400"
bad_body '{"name":"x","libvirt_uri":"qemu+tcp://h/system","created_at":"2024-05-01T12:00:00Z"}' created_at \
    "created_at (the server's) in the body: 400"
bad_body '{"name":"x","libvirt_uri":"qemu+tcp://h/system","live":true}' live "an unknown field: 400"
bad_body '["x"]' body "an array body: 400"
api_op POST /v1/peers -H 'Content-Type: application/json' --data-binary '{"name":'
is_error 400 bad_request "malformed JSON: 400"
api_op POST /v1/peers -H 'Content-Type: text/plain' --data-binary '{"name":"x","libvirt_uri":"qemu:///system"}'
is_error 415 unsupported_media_type "a text/plain body: 415"
is "$(td_sql "SELECT group_concat(name || '|' || libvirt_uri || '|' || ifnull(migrate_uri, ''), ';') FROM peers")" \
    "$before" "after every refusal the peers are exactly as before"

# ---- list and get -----------------------------------------------------------------------
api_op GET /v1/peers
is "$STATUS $(jb -c '[.peers[].name]')" '200 ["hosta","hostb","local"]' "GET /v1/peers: every peer, by name"
is "$(jb -c '.peers[1]')" "$hostb" "... each as created"
api_op GET /v1/peers/hosta
is "$STATUS $(jb -c .peer)" "200 $hosta" "GET /v1/peers/hosta: the peer as created"
api_op GET /v1/peers/nosuch
is_error 404 not_found "GET of an unknown peer: 404"
is "$ERR_MESSAGE" "peer 'nosuch' not found" "... naming it"
api_op GET /v1/peers/Bad_Name
is_error 404 not_found "GET of a name that cannot be one: 404"
is "$ERR_MESSAGE" "peer 'Bad_Name' not found" "... naming it too"
api_op PUT /v1/peers/hosta --json '{}'
is_error 405 method_not_allowed "PUT /v1/peers/hosta: 405"
is "$(hdr Allow)" "GET, DELETE, HEAD" "... Allow: GET, DELETE, HEAD (HEAD with every GET)"

# ---- who may call ------------------------------------------------------------------------
api_tn "$acme" GET /v1/peers
is_error 403 forbidden "a tenant on GET /v1/peers: 403"
api_tn "$acme" POST /v1/peers --json '{"name":"evil","libvirt_uri":"qemu+tcp://evil/system"}'
is_error 403 forbidden "a tenant on POST /v1/peers: 403"
api_tn "$acme" GET /v1/peers/hostb
is_error 403 forbidden "a tenant on GET /v1/peers/hostb: 403"
api_tn "$acme" DELETE /v1/peers/hostb
is_error 403 forbidden "a tenant on DELETE /v1/peers/hostb: 403"
api_sock "$acme" DELETE /v1/peers/hostb
is_error 403 forbidden "a tenant token on the UNIX socket: 403 too"
api_tn "" GET /v1/peers
is_error 401 unauthorized "no token over TCP: 401"
is "$(td_sql "SELECT group_concat(name, ',') FROM (SELECT name FROM peers ORDER BY name)")" \
    "hosta,hostb,local" "... and the tenant changed nothing"

# ---- restart: peers are kept ---------------------------------------------------------------
td_stop
td_start || bail "turtled did not start again"
api_op GET /v1/peers/hostb
is "$STATUS $(jb -c .peer)" "200 $hostb" "after a restart hostb is as created"

# ---- delete -----------------------------------------------------------------------------
api_op DELETE /v1/peers/hostb
is "$STATUS $BODY" "204 " "DELETE /v1/peers/hostb: 204, no body"
api_op GET /v1/peers/hostb
is_error 404 not_found "... then GET: 404"
api_op DELETE /v1/peers/hostb
is_error 404 not_found "DELETE again: 404"
is "$ERR_MESSAGE" "peer 'hostb' not found" "... naming it"
api_op DELETE /v1/peers/Bad_Name
is_error 404 not_found "DELETE of a name that cannot be one: 404"
api_op GET /v1/peers
is "$(jb -c '[.peers[].name]')" '["hosta","local"]' "the list no longer has hostb"
api_op POST /v1/peers --json '{"name":"hostb","libvirt_uri":"qemu+tls://hostb.example/system"}'
is "$STATUS $(jb .peer.libvirt_uri)" "201 qemu+tls://hostb.example/system" "the name is free again: 201"

td_done
