#!/usr/bin/env bash
# api/openapi.yaml: lints clean under redocly's recommended rules, documents
# exactly the routes of daemon/routes.c with the same access, carries the
# Makefile's version, and tests/lib/openapi-check (which integration tests run
# on live responses) tells matching bodies from drifting ones.
set -u
cd "${TURTLES_SRCDIR:-$(dirname "$0")/../..}" || exit 1
. tests/lib/tap.sh

redocly=node_modules/.bin/redocly
check=tests/lib/openapi-check
command -v node >/dev/null || bail "node is missing: run packaging/deps-npm.sh (make deps)"
[ -x "$redocly" ] || bail "$redocly is missing: run packaging/deps-npm.sh (make deps)"
# No usage reports or update checks from a test: the network is not ours.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

plan 16

# ---- lint --------------------------------------------------------------------

"$redocly" lint --format=stylish api/openapi.yaml >"$tmp/lint" 2>&1
status=$?
if ok $status "redocly lint api/openapi.yaml: no errors"; then
    note "$(grep -E 'warning|error' "$tmp/lint")"
else
    diag "$(cat "$tmp/lint")"
fi

# ---- the spec against the route table ------------------------------------------

# Prints one line per disagreement; exits 1 when there is any.
node - >"$tmp/routes" 2>&1 <<'EOF'
const fs = require('fs');
const YAML = require('yaml');

// The entries of one `static const HttpRoute NAME[] = { ... };` table.
function table(source, name) {
    const start = source.indexOf(`HttpRoute ${name}[] = {`);
    if (start < 0)
        return null;
    const body = source.slice(start, source.indexOf('};', start));
    const re = /(?:\{|ROUTE(?:_Q)?\()\s*(?:\.method\s*=\s*)?"([A-Z]+)"\s*,\s*(?:\.pattern\s*=\s*)?"([^"]+)"\s*,\s*(?:\.access\s*=\s*)?([A-Z_]+)\s*,/g;
    return [...body.matchAll(re)].map((m) => ({ method: m[1], path: m[2], access: m[3] }));
}

const source = fs.readFileSync('daemon/routes.c', 'utf8');
const routes = table(source, 'routes');
const testRoutes = table(source, 'test_routes') || [];
const doc = YAML.parse(fs.readFileSync('api/openapi.yaml', 'utf8'));
const access = { ANYONE: 'anyone', OPERATOR: 'operator', TENANT: 'tenant', CALLER: 'caller',
                 METRICS: 'metrics', LOCAL: 'local-operator' };
const verbs = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
const problems = [];

if (!routes || routes.length === 0) {
    console.log('routes.c: no route table found');
    process.exit(1);
}
console.log(`# routes.c: ${routes.length} routes, ${testRoutes.length} test-only`);
const documented = new Map();
for (const [path, item] of Object.entries(doc.paths || {}))
    for (const verb of verbs.filter((v) => item[v]))
        documented.set(`${verb.toUpperCase()} ${path}`, item[verb]);
for (const route of routes) {
    const key = `${route.method} ${route.path}`;
    const op = documented.get(key);
    if (!op) {
        problems.push(`in routes.c, not in openapi.yaml: ${key}`);
        continue;
    }
    const want = access[route.access] || route.access;
    if (op['x-turtles-access'] !== want)
        problems.push(`${key}: routes.c says ${want}, openapi.yaml x-turtles-access ${op['x-turtles-access']}`);
    // Only GET /v1 is open to anyone; the rest require a credential.
    const open = Array.isArray(op.security) && op.security.length === 0;
    if (open !== (want === 'anyone'))
        problems.push(`${key}: security ${JSON.stringify(op.security)} does not fit ${want}`);
    documented.delete(key);
}
for (const route of testRoutes)
    if (documented.delete(`${route.method} ${route.path}`))
        problems.push(`test-only route documented: ${route.method} ${route.path}`);
for (const key of documented.keys())
    problems.push(`in openapi.yaml, not in routes.c: ${key}`);
problems.forEach((p) => console.log(p));
process.exit(problems.length ? 1 : 0);
EOF
status=$?
note "$(grep '^#' "$tmp/routes" | sed 's/^# //')"
grep -v '^#' "$tmp/routes" >"$tmp/problems"
ok $status "openapi.yaml documents exactly routes.c's routes, with their access" ||
    diag "$(cat "$tmp/problems")"
grep -q '/v1/test/' api/openapi.yaml
ok $((!$?)) "no test-only path in openapi.yaml"

makefile_version=$(sed -n 's/^VERSION *= *//p' Makefile)
spec_version=$(node -e 'console.log(require("yaml").parse(require("fs").readFileSync("api/openapi.yaml","utf8")).info.version)')
is "$spec_version" "$makefile_version" "info.version is the Makefile's VERSION"

# ---- openapi-check -------------------------------------------------------------

"$check" --compile-all >"$tmp/out" 2>&1
ok $? "openapi-check compiles every schema strictly" || diag "$(cat "$tmp/out")"

# expect_check RC DESC BODY ARGS...: runs openapi-check ARGS on BODY.
expect_check() {
    local want=$1 desc=$2 body=$3
    shift 3
    printf '%s' "$body" >"$tmp/body"
    "$check" "$@" "$tmp/body" >"$tmp/out" 2>&1
    local got=$?
    if ! is "$got" "$want" "$desc"; then
        diag "openapi-check $*: $(cat "$tmp/out")"
    fi
}

expect_check 0 "a valid Version body passes" \
    '{"api_version":"1","version":"0.1.0"}' GET /v1 200
expect_check 1 "a Version body with an extra field fails" \
    '{"api_version":"1","version":"0.1.0","build":"x"}' GET /v1 200
expect_check 1 "a Version body without a required field fails" \
    '{"api_version":"1"}' GET /v1 200
expect_check 0 "an error body passes for 404" \
    '{"error":{"status":404,"code":"not_found","message":"tenant '"'x'"' not found"}}' \
    GET '/v1/tenants/{name}' 404
expect_check 1 "an error body with the wrong code for its status fails" \
    '{"error":{"status":404,"code":"conflict","message":"x"}}' GET '/v1/tenants/{name}' 404
expect_check 0 "a Host body with unknown (null) figures passes" \
    '{"host":{"backend":"tcg","reason":"r","cpu":{"vendor":"unknown","vmx":false,"svm":false,"hypervisor":true},"kvm":{"device":false,"device_opens":false,"api_version":null,"nested_state_size":null,"module":null,"nested":null,"ept_npt":null,"shadow_vmcs":null,"apicv_avic":null,"pvm":false},"iommu":{"groups":null,"vfio":false}}}' \
    GET /v1/host 200
expect_check 1 "a non-UTC time in a Tenant fails" \
    '{"tenant":{"id":"1db747e4-bbb2-4955-b730-a30e57e7663a","name":"acme","quota":{"stacks":4,"vcpus":8,"memory_mib":8192,"disk_gib":50},"created_at":"2024-05-01T12:00:00+02:00","updated_at":"2024-05-01T12:00:00Z"}}' \
    GET '/v1/tenants/{name}' 200
expect_check 0 "an empty body passes for a 204" '' DELETE '/v1/tenants/{name}' 204
expect_check 2 "an undocumented path is a usage error" '{}' GET /v1/nowhere 200
expect_check 2 "an undocumented status is a usage error" '{}' GET /v1 404
expect_check 2 "a text/plain response is a usage error" 'x 1' GET /metrics 200
