#!/usr/bin/env python3
"""Signs croupier calls (X-Sign, HMAC-SHA256). Standard library only.

    python3 sign.py verify-vectors ../../fixtures/signature-vectors.json
    python3 sign.py print [BASE_URL]   # a signed PayIn and a signed operator deposit, as curl
    python3 sign.py send http://127.0.0.1:8080    # the same two calls, sent

Credentials come from the environment; the defaults are the public demo ones of `croupier serve`:
CROUPIER_PROVIDER_ID, CROUPIER_PROVIDER_SECRET, CROUPIER_SESSION_ID,
CROUPIER_OPERATOR_ID, CROUPIER_OPERATOR_SECRET.
"""
import base64
import hashlib
import hmac
import json
import os
import secrets
import shlex
import sys
import time
import urllib.error
import urllib.request


def sign(secret, counterparty_id, timestamp, request_id, body=None):
    """X-Sign of one call. body: the exact bytes sent; None for a GET."""
    message = f"{counterparty_id}.{timestamp}.{request_id}".encode()
    if body is not None:
        message = body + b"." + message
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(counterparty_id, secret, body=None):
    """The four signing headers for a call made now."""
    timestamp = str(int(time.time() * 1000))  # milliseconds; must be within 30 s of croupier's clock
    request_id = secrets.token_hex(16)  # 32 hex digits, never reused
    return {
        "X-Counterparty-Id": counterparty_id,
        "X-Timestamp": timestamp,
        "X-Request-Id": request_id,
        "X-Sign": sign(secret, counterparty_id, timestamp, request_id, body),
    }


def demo_calls():
    """A PayIn on the provider API and a deposit on the operator API: (path, id, secret, body)."""
    env = os.environ.get
    session = env("CROUPIER_SESSION_ID", "01900000-0000-7000-8000-0000000000a1")
    ref = secrets.token_hex(8)
    pay_in = {"betId": f"demo-{ref}", "betAmount": "1.50"}
    deposit = {"playerExternalId": "alice", "currency": "USD", "amount": 25, "transactionId": f"dep-{ref}"}
    return [
        (f"/v1/sessions/{session}/bets/pay-in",
         env("CROUPIER_PROVIDER_ID", "933a215f-a9e6-4f88-9d91-52a87cd50499"),
         env("CROUPIER_PROVIDER_SECRET", "demo-provider-secret"), json.dumps(pay_in).encode()),
        ("/v1/player/wallet/deposit",
         env("CROUPIER_OPERATOR_ID", "5c2f4b1e-8d3a-4c6f-9e7b-1a2b3c4d5e6f"),
         env("CROUPIER_OPERATOR_SECRET", "demo-operator-secret"), json.dumps(deposit).encode()),
    ]


def print_calls(base_url):
    for path, counterparty_id, secret, body in demo_calls():
        headers = signed_headers(counterparty_id, secret, body)
        args = ["curl", "-s", "-X", "POST", base_url + path, "-H", "Content-Type: application/json"]
        for name, value in headers.items():
            args += ["-H", f"{name}: {value}"]
        print(shlex.join(args + ["--data-binary", body.decode()]))


def send_calls(base_url):
    for path, counterparty_id, secret, body in demo_calls():
        headers = signed_headers(counterparty_id, secret, body)  # sign the bytes you send, as sent
        headers["Content-Type"] = "application/json"
        request = urllib.request.Request(base_url + path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                print(path, response.status, response.read().decode())
        except urllib.error.HTTPError as refused:  # croupier answers refusals with 4xx and a JSON body
            print(path, refused.code, refused.read().decode())


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rs256_valid(token, jwk):
    """RS256 (RSASSA-PKCS1-v1_5, SHA-256) check with integers only. A casino would use a JWT
    library instead (PyJWT, see the README), which also checks exp, nbf and iss."""
    signed, _, signature = token.rpartition(".")
    n, e = (int.from_bytes(b64url(jwk[part]), "big") for part in ("n", "e"))
    size = (n.bit_length() + 7) // 8
    sig = b64url(signature)
    if len(sig) != size or int.from_bytes(sig, "big") >= n:
        return False
    sha256_prefix = bytes.fromhex("3031300d060960864801650304020105000420")
    digest = sha256_prefix + hashlib.sha256(signed.encode()).digest()
    expected = b"\x00\x01" + b"\xff" * (size - 3 - len(digest)) + b"\x00" + digest
    return hmac.compare_digest(pow(int.from_bytes(sig, "big"), e, n).to_bytes(size, "big"), expected)


def verify_vectors(path):
    with open(path, encoding="utf-8") as file:
        vectors = json.load(file)
    failed = 0
    for v in vectors["hmac"]:
        body = None if v["body"] is None else v["body"].encode("utf-8")
        got = sign(v["secret"], v["counterparty_id"], v["timestamp"], v["request_id"], body)
        if got != v["sign"]:
            failed += 1
            print(f"MISMATCH {v['name']}: expected {v['sign']}, got {got}")
    for v in vectors["jwt"]:
        header, claims, _ = (b64url(part) for part in v["token"].split("."))
        ok = rs256_valid(v["token"], v["public_key_jwk"])
        ok = ok and json.loads(header)["alg"] == "RS256" and json.loads(header)["kid"] == v["kid"]
        if not (ok and json.loads(claims) == v["claims"]):
            failed += 1
            print(f"MISMATCH {v['name']}: the token does not verify or carries other claims")
    total = len(vectors["hmac"]) + len(vectors["jwt"])
    print(f"python: {total - failed} of {total} vectors match")
    return 1 if failed else 0


def main(args):
    if len(args) == 2 and args[0] == "verify-vectors":
        return verify_vectors(args[1])
    if args[:1] == ["print"] and len(args) <= 2:
        return print_calls((args[1:] or ["http://127.0.0.1:8080"])[0].rstrip("/"))
    if len(args) == 2 and args[0] == "send":
        return send_calls(args[1].rstrip("/"))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
