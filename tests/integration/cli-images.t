#!/usr/bin/env bash
# turtlectl image (and the stack verbs that need no running L1) against a
# live turtled on the test backend, whose test:///default cannot store
# uploads: create, list, show, delete in json (the API's answer, compared
# with curl's), table and yaml (a table in a pipe too, as on a terminal);
# help for the nouns and each verb (every option the usage names explained
# and taken); usage errors exit 2 with the verb's usage alone; typos get
# "did you mean"; API errors exit 1 with the API's message (upload's 404 and
# 503 included); create --file leaves nothing behind when the upload fails;
# an unreachable socket is named.  tests/system/cli-stacks.t uploads for real.
# shellcheck disable=SC2119 # td_start takes optional arguments
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh
. tests/lib/turtled.sh
. tests/lib/turtlectl.sh

td_init
cli_init

# ---- no daemon needed: help and usage ------------------------------------------------------------
ctl --help
grep -q '^  image ' <<<"$OUT" && grep -q '^  stack ' <<<"$OUT"
ok "$((RC + $?))" "--help: exit 0, lists the image and stack nouns"

cli_noun_help_ok image create upload list show delete
ctl help image
grep -q '^Images belong to tenants' <<<"$OUT"
ok $? "help image: says whose images are"
for verb in create upload list show delete; do
    cli_verb_help_ok image "$verb"
done
cli_noun_help_ok stack create list show start stop force-stop reboot pause resume delete console \
    stats migrate device
for verb in create list show start stop force-stop reboot pause resume delete console stats \
    migrate "device attach" "device detach"; do
    # shellcheck disable=SC2086 # "device attach": two words
    cli_verb_help_ok stack $verb
done
ctl help stack device
grep -q '^usage: turtlectl stack device attach NAME CLASS' <<<"$OUT" &&
    grep -Eq '^  detach +unplug a device from a stack$' <<<"$OUT"
ok "$((RC + $?))" "help stack device: exit 0, its verbs' usage and summaries"
ctl help stack stop
stop_help=$OUT
ctl help stack force-stop
[ "$stop_help" != "$OUT" ] && grep -q 'ACPI power button' <<<"$stop_help"
ok $? "help stack stop and force-stop: each verb its own text"
ctl help image create
grep -q -- "the output's goes before the noun" <<<"$OUT"
ok $? "help image create: says that its --format is the image's"

# usage_is MESSAGE WORDS DESC: exit 2 with "turtlectl: MESSAGE" first on
# stderr, then the usage of "turtlectl WORDS" alone and where its help is.
usage_is() {
    local others
    is "$RC $(head -n1 <<<"$ERR")" "2 turtlectl: $1" "$3"
    others=$(grep -E '^(usage: |       )turtlectl ' <<<"$ERR" | grep -Ev "turtlectl $2( |\$)")
    grep -Eq "^usage: turtlectl $2( |\$)" <<<"$ERR" && [ -z "$others" ] &&
        [ "$(tail -n1 <<<"$ERR")" = "Run 'turtlectl help $2' for more." ]
    ok $? "... then the usage of $2 alone and where its help is" || diag "$ERR"
}
ctl image create vmlinuz
usage_is "image create: missing --kind (kernel, initrd or disk)" "image create" "image create without --kind: exit 2"
ctl image create vmlinuz --kind floppy
usage_is "image create: --kind: must be kernel, initrd or disk (not 'floppy')" "image create" "--kind floppy: exit 2"
ctl image create root --kind disk --format vmdk
usage_is "image create: --format: must be raw or qcow2 (not 'vmdk')" "image create" "--format vmdk: exit 2"
ctl image create --kind kernel
usage_is "image create: missing NAME" "image create" "image create without NAME: exit 2"
ctl image upload vmlinuz
usage_is "image upload: missing FILE" "image upload" "image upload without FILE: exit 2"
ctl image show
usage_is "image show: missing NAME" "image show" "image show without NAME: exit 2"
ctl image list extra
usage_is "image list: unexpected argument 'extra'" "image list" "image list with an argument: exit 2"
ctl image frob
is "$RC $ERR" "2 turtlectl: image: unknown verb 'frob'
Run 'turtlectl help image' for the list." "image frob: exit 2, where the verbs are listed (no usage)"
ctl image delete x --wait
usage_is "image delete: unknown option '--wait'" "image delete" "image delete --wait (synchronous): exit 2"

# A typo gets the word meant: in a noun, a verb, a sub-verb and an option.
ctl stakc list
is "$RC $ERR" "2 turtlectl: unknown noun 'stakc'; did you mean 'stack'?
Run 'turtlectl help' for the list." "stakc list: exit 2, did you mean 'stack'"
ctl image craete vmlinuz --kind kernel
is "$RC $ERR" "2 turtlectl: image: unknown verb 'craete'; did you mean 'create'?
Run 'turtlectl help image' for the list." "image craete: exit 2, did you mean 'create'"
ctl stack device atach web rng
is "$RC $ERR" "2 turtlectl: stack device: unknown verb 'atach'; did you mean 'attach'?
Run 'turtlectl help stack device' for the list." "stack device atach: exit 2, did you mean 'attach'"
ctl help stack strat
is "$RC $ERR" "2 turtlectl: stack: unknown verb 'strat'; did you mean 'start'?
Run 'turtlectl help stack' for the list." "help stack strat: exit 2, did you mean 'start'"
ctl image create vmlinuz --knid kernel
usage_is "image create: unknown option '--knid'; did you mean '--kind'?" "image create" \
    "image create --knid: exit 2, did you mean '--kind'"
ctl stack create web --vcpu 1 --memory 512 --kernel k
usage_is "stack create: unknown option '--vcpu'; did you mean '--vcpus'?" "stack create" \
    "stack create --vcpu: exit 2, did you mean '--vcpus'"

ctl stack create web --memory 512 --kernel k
usage_is "stack create: missing --vcpus" "stack create" "stack create without --vcpus: exit 2"
ctl stack create web --vcpus 1 --kernel k
usage_is "stack create: missing --memory" "stack create" "stack create without --memory: exit 2"
ctl stack create web --vcpus 1 --memory 512
usage_is "stack create: give either --kernel or --disk" "stack create" "stack create without a boot image: exit 2"
ctl stack create web --vcpus 1 --memory 512 --kernel k --disk d
usage_is "stack create: give either --kernel or --disk" "stack create" "... and with both: exit 2"
ctl stack create web --vcpus 1 --memory 512 --disk d --initrd i
usage_is "stack create: --initrd and --cmdline go with --kernel" "stack create" "--initrd with --disk: exit 2"
ctl stack create web --vcpus 65 --memory 512 --kernel k
usage_is "stack create: --vcpus: must be a whole number between 1 and 64 (not '65')" "stack create" "--vcpus 65: exit 2"
ctl stack create web --vcpus 1 --memory 64 --kernel k
usage_is "stack create: --memory: must be a whole number between 128 and 1048576 (not '64')" "stack create" \
    "--memory 64: exit 2"
ctl stack create web --vcpus 1 --memory 512 --kernel k --iommu amd
usage_is "stack create: --iommu: must be none, intel or virtio (not 'amd')" "stack create" "--iommu amd: exit 2"
ctl stack create web --vcpus 1 --memory 512 --kernel k --cpu qemu64
usage_is "stack create: --cpu: must be host-passthrough, host-model or named:MODEL (not 'qemu64')" "stack create" \
    "--cpu qemu64: exit 2"
ctl stack create --vcpus 1 --memory 512 --kernel k
usage_is "stack create: missing NAME" "stack create" "stack create without NAME or --file: exit 2"
ctl stack create web --file "$TD_DIR/spec.json" --vcpus 2
usage_is "stack create: --file excludes the spec options (--vcpus, --memory, --kernel, ...)" "stack create" \
    "--file with --vcpus: exit 2"
ctl stack start
usage_is "stack start: missing NAME" "stack start" "stack start without NAME: exit 2"
ctl stack reboot web --follow
usage_is "stack reboot: unknown option '--follow'" "stack reboot" "stack reboot --follow: exit 2"
ctl stack list --limit 0
usage_is "stack list: --limit: must be a whole number between 1 and 1000 (not '0')" "stack list" "--limit 0: exit 2"
ctl stack console web --tail x
usage_is "stack console: --tail: must be a whole number between 0 and 67108864 (not 'x')" "stack console" \
    "console --tail x: exit 2"
ctl stack migrate web
usage_is "stack migrate: missing --to PEER" "stack migrate" "stack migrate without --to: exit 2"
ctl stack migrate web --to Host_B
usage_is "stack migrate: --to: must be a peer name: 1-63 lowercase letters, digits and '-' (not 'Host_B')" \
    "stack migrate" "stack migrate --to a bad name: exit 2"
ctl stack migrate --to hostb
usage_is "stack migrate: missing NAME" "stack migrate" "stack migrate without NAME: exit 2"
ctl stack migrate web --to hostb --live
usage_is "stack migrate: unknown option '--live'" "stack migrate" "stack migrate --live (it always is): exit 2"

# Spec files are checked before anything is sent: no daemon here.
ctl --socket "$TD_DIR/nosuch.sock" stack create --file "$TD_DIR/nosuch.json"
is "$RC $ERR" "1 turtlectl: stack create: --file: cannot read $TD_DIR/nosuch.json: No such file or directory" \
    "stack create --file of a missing file: exit 1, names it"
printf '{"name":"web","vcpus":1}' >"$TD_DIR/spec.json"
ctl --socket "$TD_DIR/nosuch.sock" stack create --file "$TD_DIR/spec.json"
is "$RC $ERR" "1 turtlectl: $TD_DIR/spec.json: memory_mib: is required" \
    "a spec file without memory_mib: exit 1, the file and the field"
printf '[1]' >"$TD_DIR/spec.json"
ctl --socket "$TD_DIR/nosuch.sock" stack create --file "$TD_DIR/spec.json"
is "$RC $ERR" "1 turtlectl: $TD_DIR/spec.json: not a JSON object" "a spec file that is an array: exit 1"

# ---- unreachable ---------------------------------------------------------------------------------
ctl --socket "$TD_DIR/nosuch.sock" image list
is "$RC $ERR" "1 turtlectl: cannot reach turtled at $TD_DIR/nosuch.sock: No such file or directory (is turtled running? systemctl start turtled.socket; another turtled: --socket PATH, --url URL or --remote NAME)" \
    "image list on a missing socket: exit 1, the socket named"
head -c 4096 /dev/urandom >"$TD_DIR/small.bin"
ctl --socket "$TD_DIR/nosuch.sock" image upload vmlinuz "$TD_DIR/small.bin"
is "$RC $ERR" "1 turtlectl: cannot reach turtled at $TD_DIR/nosuch.sock: No such file or directory (is turtled running? systemctl start turtled.socket; another turtled: --socket PATH, --url URL or --remote NAME)" \
    "image upload on a missing socket: the same"
ctl --socket "$TD_DIR/nosuch.sock" stack list
is "$RC $ERR" "1 turtlectl: cannot reach turtled at $TD_DIR/nosuch.sock: No such file or directory (is turtled running? systemctl start turtled.socket; another turtled: --socket PATH, --url URL or --remote NAME)" \
    "stack list on a missing socket: the same"

# ---- with turtled -------------------------------------------------------------------------------
td_start || bail "turtled did not start"
td_tenant acme || bail "no tenant acme"
A=$TOKEN
td_tenant beta || bail "no tenant beta"
B=$TOKEN
# The tenant on the socket with its token; beta over TCP.
ta() { ctl --socket "$TD_SOCK" --token "$A" "$@"; }
tb() { ctl --url "http://127.0.0.1:$TD_PORT" --token "$B" "$@"; }

ta image list
api_tn "$A" GET /v1/images
is "$RC" 0 "image list (none yet): exit 0"
same_json "$OUT" "$BODY" "... json output is GET /v1/images's answer"

# create
ta image create vmlinuz --kind kernel
is "$RC" 0 "image create vmlinuz --kind kernel: exit 0"
CREATED=$OUT
api_tn "$A" GET /v1/images/vmlinuz
same_json "$CREATED" "$BODY" "... json output is the image turtled now has"
is "$(jq -r '[.image.kind, .image.format, .image.state, .image.tenant] | @tsv' <<<"$CREATED")" \
    "$(printf 'kernel\traw\tpending\tacme')" "... a raw kernel (the default format), pending, of acme"
td_check_body "turtlectl image create's json" "$(as_file create.json "$CREATED")" POST /v1/images 201

ta --format table image create root --kind disk --format qcow2
is "$RC" 0 "image create root --kind disk --format qcow2, as a table: exit 0"
grep -Eq '^name: +root$' <<<"$OUT" && grep -Eq '^kind: +disk$' <<<"$OUT" &&
    grep -Eq '^format: +qcow2$' <<<"$OUT" && grep -Eq '^state: +pending$' <<<"$OUT" &&
    grep -Eq '^size: +-$' <<<"$OUT"
ok $? "... the table: name, kind, format qcow2 (the verb's --format), pending, no size yet"
ta --format yaml image create initrd --kind initrd
is "$RC" 0 "image create initrd as yaml: exit 0"
grep -q '^  kind: initrd$' <<<"$OUT" && grep -q '^  size: null$' <<<"$OUT"
ok $? "... image.kind: initrd and size: null in block style"
api_tn "$A" GET /v1/images/initrd
yaml_matches "$OUT" "$BODY" "... the yaml reads back as the API's answer"

ta image create vmlinuz --kind kernel
api_tn "$A" POST /v1/images --json '{"name":"vmlinuz","kind":"kernel","format":"raw"}'
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "image create of a taken name: exit 1, the API's message ($ERR_MESSAGE)"
is "$OUT" "" "... and nothing on stdout"
ta image create kq --kind kernel --format qcow2
api_tn "$A" POST /v1/images --json '{"name":"kq","kind":"kernel","format":"qcow2"}'
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "a qcow2 kernel: exit 1, the API's 400 message as is"
ta image create Bad_Name --kind disk
api_tn "$A" POST /v1/images --json '{"name":"Bad_Name","kind":"disk","format":"raw"}'
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "a bad name: exit 1, the API's 400 message as is"
op image list
api_op GET /v1/images
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "the operator's image list: exit 1, the API's 403 message"

# list
ta image list
api_tn "$A" GET /v1/images
same_json "$OUT" "$BODY" "image list: json output is GET /v1/images's answer"
is "$(jq -r '[.images[].name] | sort | join(" ")' <<<"$OUT")" "initrd root vmlinuz" "... the three images"
ta image list --format table
is "$(awk '{print $1}' <<<"$OUT" | paste -sd' ')" "NAME initrd root vmlinuz" \
    "image list --format table: a header, then the images by name"
grep -Eq '^root +disk +qcow2 +pending +- +[0-9]{4}-' <<<"$OUT"
ok $? "... root's row: disk, qcow2, pending, no size, its creation time"
# No --format: a table in a pipe too, the one a terminal gets; scripts ask for json.
"$CTL" --socket "$TD_SOCK" --token "$A" image list 2>&1 | cat >"$TD_DIR/piped.out"
is "$(cat "$TD_DIR/piped.out")" "$OUT" "image list | cat (no --format): the same table"
if command -v script >/dev/null; then
    script -qec "$CTL --socket $TD_SOCK --token $A image list" /dev/null | tr -d '\r' >"$TD_DIR/tty.out"
    is "$(cat "$TD_DIR/tty.out")" "$OUT" "... as on a terminal"
else
    skip "no script(1) to give turtlectl a terminal"
fi
ta image list --format yaml
grep -q '^images:$' <<<"$OUT" && grep -q '^- id: ' <<<"$OUT"
ok $? "image list --format yaml: images: as a block sequence"
yaml_matches "$OUT" "$BODY" "... the yaml reads back as the API's answer"
tb image list
api_tn "$B" GET /v1/images
is "$RC $(jq -c .images <<<"$OUT")" "0 []" "beta's image list over TCP: none of acme's"

# show
ta image show root
api_tn "$A" GET /v1/images/root
same_json "$OUT" "$BODY" "image show root: json output is the API's answer"
ta image show root --format table
grep -Eq "^id: +$(jb .image.id)\$" <<<"$OUT" && grep -Eq '^tenant: +acme$' <<<"$OUT" &&
    grep -Eq '^sha256: +-$' <<<"$OUT"
ok $? "image show --format table: id, tenant, no sha256 yet"
ta image show root --format yaml
yaml_matches "$OUT" "$BODY" "image show --format yaml reads back as the API's answer"
ta image show nosuch
is "$RC $ERR" "1 turtlectl: image 'nosuch' not found" "image show nosuch: exit 1, the API's message"
tb image show root
is "$RC $ERR" "1 turtlectl: image 'root' not found" "another tenant's image: exit 1, not found"

# upload: the refusals (the test backend cannot store data)
ta image upload nosuch "$TD_DIR/small.bin"
is "$RC $ERR" "1 turtlectl: image 'nosuch' not found" "image upload to a missing image: exit 1, the API's 404 message"
api_tn "$A" PUT /v1/images/vmlinuz/data -H 'Content-Type: application/octet-stream' \
    --data-binary "@$TD_DIR/small.bin"
td_error_fields
expected_503=$ERR_MESSAGE
is "$ERR_STATUS" 503 "(curl: PUT on test:///default answers 503: $expected_503)"
ta image upload vmlinuz "$TD_DIR/small.bin"
is "$RC $(tail -n1 <<<"$ERR")" "1 turtlectl: $expected_503" \
    "image upload where libvirt cannot store it: exit 1, the API's 503 message"
api_tn "$A" GET /v1/images/vmlinuz
is "$(jb .image.state)" pending "... and the image is still pending"
ta image upload vmlinuz "$TD_DIR"
is "$RC $ERR" "1 turtlectl: $TD_DIR: not a regular file" "image upload of a directory: exit 1 before sending"
ta image upload vmlinuz "$TD_DIR/nosuch.bin"
is "$RC $ERR" "1 turtlectl: cannot open $TD_DIR/nosuch.bin: No such file or directory" \
    "image upload of a missing file: exit 1, names it"

# create --file: a ready image or nothing
ta image create kern2 --kind kernel --file "$TD_DIR/nosuch.bin"
is "$RC $ERR" "1 turtlectl: cannot open $TD_DIR/nosuch.bin: No such file or directory" \
    "image create --file of a missing file: exit 1"
api_tn "$A" GET /v1/images/kern2
is "$STATUS" 404 "... and no image was created"
# The message names the volume, which is the image's id: a new one here.
no_uuid() { sed 's/[0-9a-f]\{8\}-[0-9a-f-]\{27\}/UUID/g'; }
ta image create kern2 --kind kernel --file "$TD_DIR/small.bin"
is "$RC $(tail -n1 <<<"$ERR" | no_uuid)" "1 turtlectl: $(no_uuid <<<"$expected_503")" \
    "image create --file when the upload fails: exit 1, the API's message"
api_tn "$A" GET /v1/images/kern2
is "$STATUS" 404 "... and the image it created is deleted again"

# delete
ta image delete initrd --format table
is "$RC $OUT" "0 deleted image initrd" "image delete initrd (table): exit 0, says so"
api_tn "$A" GET /v1/images/initrd
is "$STATUS" 404 "... and turtled has it no more"
ta image delete root
is "$RC $OUT" "0 " "image delete root (json): exit 0, nothing on stdout (a 204)"
ta image delete root
is "$RC $ERR" "1 turtlectl: image 'root' not found" "image delete again: exit 1, the API's message"
tb image delete vmlinuz
is "$RC $ERR" "1 turtlectl: image 'vmlinuz' not found" "beta deleting acme's image: exit 1, not found"
api_tn "$A" GET /v1/images/vmlinuz
is "$STATUS" 200 "... and acme's image is still there"

# ---- stacks without an L1 ------------------------------------------------------------------------
# The seed and firmware flags reach the API, which judges them (exit 1, its message).
printf '# mine\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIlsmFOhNgnE+yHsXbnOyBTgBOrlJEbrtGTzZbHXxTYt a@b\n\nnot-a-key\n' \
    >"$TD_DIR/keys"
ta stack create web --vcpus 1 --memory 512 --kernel k --ssh-key "$TD_DIR/keys"
is "$RC $ERR" "1 turtlectl: cloud_init.ssh_authorized_keys[1]: must be an SSH public key (\"ssh-ed25519 AAAA... comment\"): 'not-a-key' is not a key type (options before the key are not allowed)" \
    "--ssh-key: the file's keys go to the API (blank lines and comments skipped), which names the bad one"
ta stack create web --vcpus 1 --memory 512 --kernel k --firmware coreboot
like "$RC $ERR" "^1 turtlectl: boot.firmware: must be one of bios, uefi" "--firmware coreboot: the API's refusal, exit 1"
ta stack create web --vcpus 1 --memory 512 --kernel k --user-data "$TD_DIR/no-such-file"
like "$RC $ERR" "^1 turtlectl: stack create: --user-data: .*no-such-file" "--user-data of a missing file: exit 1, naming it"
ta stack create web --vcpus 1 --memory 512 --kernel k --secure-boot --hostname "bad name" --user-data "$TD_DIR/keys"
like "$RC $ERR" "^1 turtlectl: cloud_init.meta_data.local-hostname: must be a host name" \
    "--hostname that is no host name: the API's refusal"
ta stack list
api_tn "$A" GET /v1/stacks
is "$RC" 0 "stack list (none): exit 0"
same_json "$OUT" "$BODY" "... json output is GET /v1/stacks's answer"
ta stack list --format table
is "$RC $OUT" "0 NAME  TENANT  STATE  VCPUS  MEMORY  BACKEND  CREATED" "... as a table: the header only"
ta stack show web
is "$RC $ERR" "1 turtlectl: stack 'web' not found" "stack show of a missing stack: exit 1, the API's message"
ta stack pause web --wait
is "$RC $ERR" "1 turtlectl: stack 'web' not found" "stack pause of a missing stack: exit 1, the API's message"
ta stack console web --tail 5
is "$RC $ERR" "1 turtlectl: stack 'web' not found" "stack console of a missing stack: exit 1"
ta stack stats web
is "$RC $ERR" "1 turtlectl: stack 'web' not found" "stack stats of a missing stack: exit 1"
ta stack migrate web --to hostb --wait
api_tn "$A" POST /v1/stacks/web/migrate --json '{"peer":"hostb","live":true}'
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "stack migrate of a missing stack: exit 1, the API's message ($ERR_MESSAGE)"
ta stack create web --vcpus 1 --memory 256 --kernel nosuch
api_tn "$A" POST /v1/stacks --json '{"name":"web","vcpus":1,"memory_mib":256,"boot":{"kernel":"nosuch"}}'
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "stack create with a missing kernel image: exit 1, the API's message"
ta stack create web --vcpus 1 --memory 256 --kernel vmlinuz
api_tn "$A" POST /v1/stacks --json '{"name":"web","vcpus":1,"memory_mib":256,"boot":{"kernel":"vmlinuz"}}'
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "stack create with a pending kernel image: exit 1, the API's message"
ta stack create web --vcpus 1 --memory 256 --kernel vmlinuz --device nosuch
api_tn "$A" POST /v1/stacks \
    --json '{"name":"web","vcpus":1,"memory_mib":256,"boot":{"kernel":"vmlinuz"},"devices":[{"class":"nosuch"}]}'
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "--device of a missing class: exit 1, the API's message"
op stack list --tenant acme
api_op GET '/v1/stacks?tenant=acme'
same_json "$OUT" "$BODY" "the operator's stack list --tenant acme: the API's answer"
op stack list --tenant nosuch
api_op GET '/v1/stacks?tenant=nosuch'
td_error_fields
is "$RC $ERR" "1 turtlectl: $ERR_MESSAGE" "stack list --tenant of a missing tenant: exit 1, the API's message"

cli_done
td_done
