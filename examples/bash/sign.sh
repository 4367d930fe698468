#!/usr/bin/env bash
# Signs croupier calls (X-Sign, HMAC-SHA256) with openssl; jq reads the vectors file, curl sends.
#
#   bash sign.sh verify-vectors ../../fixtures/signature-vectors.json
#   bash sign.sh print [BASE_URL]            a signed PayIn and a signed operator deposit, as curl
#   bash sign.sh send http://127.0.0.1:8080  the same two calls, sent
#
# Credentials come from the environment; the defaults are the public demo ones of
# `croupier serve`: CROUPIER_PROVIDER_ID, CROUPIER_PROVIDER_SECRET, CROUPIER_SESSION_ID,
# CROUPIER_OPERATOR_ID, CROUPIER_OPERATOR_SECRET. openssl takes the secret as an argument,
# which other users of the machine can see in `ps`: sign on a machine of your own.
set -euo pipefail

# hmac_hex SECRET: hex HMAC-SHA256 of standard input (bytes as they come, newlines included).
hmac_hex() {
    openssl dgst -sha256 -hmac "$1" -r | cut -d' ' -f1
}

# sign SECRET COUNTERPARTY_ID TIMESTAMP REQUEST_ID [BODY]: the X-Sign of one call; no BODY for a GET.
sign() {
    if [ $# -ge 5 ]; then
        printf '%s.%s.%s.%s' "$5" "$2" "$3" "$4" | hmac_hex "$1"
    else
        printf '%s.%s.%s' "$2" "$3" "$4" | hmac_hex "$1"
    fi
}

# post MODE BASE_URL PATH COUNTERPARTY_ID SECRET BODY: a POST signed now, printed as a curl
# command (MODE print) or sent (MODE send).
post() {
    local ts rid
    ts=$(date +%s%3N)              # milliseconds; within 30 s of croupier's clock
    rid=$(openssl rand -hex 16)    # 32 hex digits, never reused
    local command=(curl -s -X POST "$2$3" -H "Content-Type: application/json"
        -H "X-Counterparty-Id: $4" -H "X-Timestamp: $ts" -H "X-Request-Id: $rid"
        -H "X-Sign: $(sign "$5" "$4" "$ts" "$rid" "$6")" --data-binary "$6")
    if [ "$1" = send ]; then "${command[@]}"; else printf '%q ' "${command[@]}"; fi
    echo
}

# demo_calls MODE BASE_URL: a PayIn on the provider API and a deposit on the operator API.
demo_calls() {
    local session ref
    session=${CROUPIER_SESSION_ID:-01900000-0000-7000-8000-0000000000a1}
    ref=$(openssl rand -hex 8)
    post "$1" "$2" "/v1/sessions/$session/bets/pay-in" \
        "${CROUPIER_PROVIDER_ID:-933a215f-a9e6-4f88-9d91-52a87cd50499}" \
        "${CROUPIER_PROVIDER_SECRET:-demo-provider-secret}" \
        "{\"betId\":\"demo-$ref\",\"betAmount\":\"1.50\"}"
    post "$1" "$2" /v1/player/wallet/deposit \
        "${CROUPIER_OPERATOR_ID:-5c2f4b1e-8d3a-4c6f-9e7b-1a2b3c4d5e6f}" \
        "${CROUPIER_OPERATOR_SECRET:-demo-operator-secret}" \
        "{\"playerExternalId\":\"alice\",\"currency\":\"USD\",\"amount\":25,\"transactionId\":\"dep-$ref\"}"
}

b64url_decode() {
    local text=$1
    while [ $(( ${#text} % 4 )) -ne 0 ]; do text="$text="; done
    printf '%s' "$text" | tr '_-' '/+' | base64 -d
}

# jwt_matches FILE INDEX: the RS256 signature, header and claims of one jwt vector (a casino
# would use a JWT library, which also checks exp, nbf and iss).
jwt_matches() {
    local header claims signature dir ok=0
    IFS=. read -r header claims signature < <(jq -r ".jwt[$2].token" "$1")
    dir=$(mktemp -d)
    jq -r ".jwt[$2].public_key_pem" "$1" > "$dir/key.pem"
    b64url_decode "$signature" > "$dir/signature"
    printf '%s.%s' "$header" "$claims" |
        openssl dgst -sha256 -verify "$dir/key.pem" -signature "$dir/signature" >/dev/null 2>&1 || ok=1
    rm -r "$dir"
    b64url_decode "$header" |
        jq -e --arg kid "$(jq -r ".jwt[$2].kid" "$1")" '.alg == "RS256" and .kid == $kid' >/dev/null || ok=1
    b64url_decode "$claims" |
        jq -e --argjson want "$(jq -c ".jwt[$2].claims" "$1")" '. == $want' >/dev/null || ok=1
    return $ok
}

verify_vectors() {
    local file=$1 count i name want secret cp ts rid get body got failed=0 total=0
    count=$(jq '.hmac | length' "$file")
    for ((i = 0; i < count; i++)); do
        # One line, fields apart by the unit separator (0x1f), which no vector holds; empty
        # fields survive (read would merge runs of a whitespace separator such as a tab).
        IFS=$'\x1f' read -r name want secret cp ts rid get < <(jq -r ".hmac[$i] |
            [.name, .sign, .secret, .counterparty_id, .timestamp, .request_id, (.body == null | tostring)]
            | join(\"\u001f\")" "$file")
        if [ "$get" = true ]; then
            got=$(sign "$secret" "$cp" "$ts" "$rid")
        else
            # $(...) drops trailing newlines, which are part of the body: keep them behind an x.
            body=$(jq -j ".hmac[$i].body" "$file"; printf x)
            got=$(sign "$secret" "$cp" "$ts" "$rid" "${body%x}")
        fi
        if [ "$got" != "$want" ]; then
            failed=$((failed + 1))
            echo "MISMATCH $name: expected $want, got $got"
        fi
        total=$((total + 1))
    done
    count=$(jq '.jwt | length' "$file")
    for ((i = 0; i < count; i++)); do
        if ! jwt_matches "$file" "$i"; then
            failed=$((failed + 1))
            echo "MISMATCH $(jq -r ".jwt[$i].name" "$file"): the token does not verify or carries other claims"
        fi
        total=$((total + 1))
    done
    echo "bash: $((total - failed)) of $total vectors match"
    [ "$failed" -eq 0 ]
}

case "${1:-} $#" in
    "verify-vectors 2") verify_vectors "$2" ;;
    "print 1" | "print 2") demo_calls print "${2:-http://127.0.0.1:8080}" ;;
    "send 2") demo_calls send "${2%/}" ;;
    *) echo "usage: bash sign.sh verify-vectors FILE | print [BASE_URL] | send BASE_URL" >&2; exit 2 ;;
esac
