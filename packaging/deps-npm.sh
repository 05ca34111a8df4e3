#!/bin/sh
# Installs the Node.js tools the tests use (the OpenAPI linter and
# tests/lib/openapi-check): Debian's nodejs and npm when npm is missing, then
# the packages pinned in package-lock.json into node_modules/.
# Silent and fast when everything is present; needs root to install npm.
set -eu
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "make deps: npm is missing" >&2
        echo "make deps: run as root (or: sudo apt-get install nodejs npm)" >&2
        exit 1
    fi
    echo "make deps: installing nodejs npm"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# npm writes node_modules/.package-lock.json at every install: older than the
# lock file means the lock changed since (a pull, a version bump).
stamp=node_modules/.package-lock.json
if [ ! -x node_modules/.bin/redocly ] || [ ! -e "$stamp" ] ||
    [ -n "$(find package-lock.json -newer "$stamp")" ]; then
    echo "make deps: npm ci"
    # No lifecycle scripts: none of these tools needs one, and a test
    # dependency gets no chance to run code at install time.
    npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null
fi
