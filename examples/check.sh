#!/usr/bin/env bash
# Runs every signing example against the test vectors (fixtures/signature-vectors.json, or the
# file given), installing a missing toolchain from Debian's packages when run as root. A
# language whose toolchain cannot be installed is skipped and named; a vector that does not
# match fails the run.
#
#   bash examples/check.sh [VECTORS_FILE]
set -uo pipefail
cd "$(dirname "$0")"
vectors=$(realpath "${1:-../fixtures/signature-vectors.json}")
started=$SECONDS
passed=0
failed=()
skipped=()
apt_updated=no

# have COMMAND PACKAGE: COMMAND is on PATH, or PACKAGE installs it now.
have() {
    command -v "$1" >/dev/null && return 0
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
    if [ "$apt_updated" = no ]; then
        apt-get update -qq >/dev/null 2>&1
        apt_updated=yes
    fi
    local start=$SECONDS
    DEBIAN_FRONTEND=noninteractive timeout 900 \
        apt-get install -y -qq --no-install-recommends "$2" >/dev/null 2>&1
    command -v "$1" >/dev/null || return 1
    echo "installed $2 in $((SECONDS - start)) s"
}

# check LANGUAGE FOLDER COMMAND...: runs `COMMAND verify-vectors FILE` in FOLDER.
check() {
    local language=$1 folder=$2 start=$SECONDS
    shift 2
    if (cd "$folder" && "$@" verify-vectors "$vectors"); then
        passed=$((passed + 1))
    else
        failed+=("$language")
        echo "FAILED $language"
    fi
    echo "  $language took $((SECONDS - start)) s"
}

skip() {
    skipped+=("$1")
    echo "SKIPPED $1: $2 cannot be installed here"
}

if have python3 python3; then check python python python3 sign.py; else skip python python3; fi
if have node nodejs; then check node node node sign.js; else skip node nodejs; fi
if have php php-cli; then check php php php sign.php; else skip php php-cli; fi
# Standard library only: no module is downloaded, and no other toolchain.
if have go golang-go; then
    # go needs a cache folder; CI may run without a HOME.
    [ -n "${GOCACHE:-}${HOME:-}" ] || export GOCACHE="${TMPDIR:-/tmp}/croupier-examples-go"
    GOPROXY=off GOTOOLCHAIN=local GOFLAGS=-mod=mod check go go go run .
else
    skip go golang-go
fi
if ! have openssl openssl; then
    skip bash openssl
elif ! have jq jq; then
    skip bash jq
else
    check bash bash bash sign.sh
fi

echo "signing examples took $((SECONDS - started)) s${failed:+; failed: ${failed[*]}}${skipped:+; skipped: ${skipped[*]}}"
echo "examples: $passed passed, ${#failed[@]} failed, ${#skipped[@]} skipped"
[ ${#failed[@]} -eq 0 ]
