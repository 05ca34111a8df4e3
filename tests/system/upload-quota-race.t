#!/bin/bash
# Concurrent image uploads against a disk quota that fits fewer of them: the
# quota check and the reservation of the declared size are one store
# transaction, so however the uploads interleave, the sizes reserved by
# uploads in flight never add up to more than the quota, the others answer
# 413 at once, and an aborted upload gives its reservation back.
#
#   TURTLES_BUILD=build tests/system/upload-quota-race.t   (UPLOAD_BURSTS=N, default 5)

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/tap.sh
. "$here/../lib/tap.sh"
[ "$(id -u)" = 0 ] || skip_all "private libvirt daemons need root"
# shellcheck source-path=SCRIPTDIR source=../lib/stackhost.sh
. "$here/../lib/stackhost.sh"

BURSTS=${UPLOAD_BURSTS:-5}
UPLOADS=6
SIZE=$((400 * 1024 * 1024)) # 2 fit in 1 GiB, 3 do not
GIB=$((1024 * 1024 * 1024))

sh_init
sh_start || bail "turtled did not start"
td_tenant alice '{"name":"alice","quota":{"stacks":1,"vcpus":1,"memory_mib":512,"disk_gib":1}}' ||
    bail "no tenant"
alice=$TOKEN
for i in $(seq $UPLOADS); do
    api_tn "$alice" POST /v1/images --json "{\"name\":\"d$i\",\"kind\":\"disk\",\"format\":\"raw\"}"
    [ "$STATUS" = 201 ] || bail "cannot create image d$i: $STATUS $BODY"
done

truncate -s "$SIZE" "$TD_DIR/zeros" # sparse: no disk used
# upload N: declares $SIZE bytes and sends them slowly, so that the upload is
# still in flight when the others start; prints the HTTP status when it ends.
upload() {
    curl -s --max-time 120 -o /dev/null -w '%{http_code}\n' --limit-rate 64K \
        -H "Authorization: Bearer $alice" -H 'Content-Type: application/octet-stream' \
        -H 'Expect:' -T "$TD_DIR/zeros" \
        "http://127.0.0.1:$TD_PORT/v1/images/d$1/data" >"$TD_DIR/upload.$1"
}
reserved() { td_sql "SELECT count(*) || ' ' || ifnull(sum(size), 0) FROM images WHERE state = 'uploading'"; }

over=0
refused_total=0
flight_max=0
for burst in $(seq "$BURSTS"); do
    pids=()
    for i in $(seq $UPLOADS); do
        rm -f "$TD_DIR/upload.$i"
        upload "$i" &
        pids+=($!)
    done
    # Every upload has either been refused or is sending; sample meanwhile.
    worst=0
    for _ in $(seq 20); do
        read -r n bytes <<<"$(reserved)"
        [ "$bytes" -gt "$worst" ] && worst=$bytes
        [ "$n" -gt "$flight_max" ] && flight_max=$n
        sleep 0.2
    done
    refused=$(cat "$TD_DIR"/upload.* 2>/dev/null | grep -c '^413$')
    refused_total=$((refused_total + refused))
    note "burst $burst: at most $worst bytes reserved by uploads in flight, $refused uploads refused with 413"
    [ "$worst" -le "$GIB" ] || {
        over=$((over + 1))
        diag "burst $burst: $worst bytes reserved, over the 1 GiB quota"
    }
    # The clients give up: their uploads abort and give the space back.
    kill "${pids[@]}" 2>/dev/null
    pkill -f -- "--limit-rate 64K" 2>/dev/null
    wait "${pids[@]}" 2>/dev/null
    for _ in $(seq 100); do
        [ "$(reserved)" = "0 0" ] && break
        sleep 0.1
    done
    [ "$(reserved)" = "0 0" ] || diag "burst $burst: still reserved after the abort: $(reserved)"
done
is "$over" 0 "$BURSTS bursts of $UPLOADS concurrent 400 MiB uploads against a 1 GiB disk quota: never more than the quota reserved"
is "$flight_max" 2 "... at most 2 uploads were ever in flight at once (2 x 400 MiB fit, 3 do not)"
is "$refused_total" $((BURSTS * (UPLOADS - 2))) "... and the $((UPLOADS - 2)) others of each burst were refused with 413"
is "$(reserved)" "0 0" "aborted uploads give their reservations back"
api_tn "$alice" GET /v1/images
is "$(jb '[.images[].state] | unique | join(",")')" pending "... and their images are pending again"

td_done
