"""Schemathesis hooks for croupier's demo server (`croupier serve` on its embedded database).

Every generated call is signed as its audience signs it (README, Signature), so the fuzzer
reaches the handlers instead of stopping at authentication:

- provider paths (`/v1/sessions/...`) with the demo provider's id and secret;
- operator paths (`/v1/player/...`, `/v1/transactions/...`, `/v1/game/...`) with the demo
  operator's;
- `payments/accept` with a bearer token of the demo seamless operator.

The signature covers the exact body bytes, so the hook serializes the generated body itself
and hands schemathesis those bytes to send. Path, query and body ids are steered towards the
demo data (its sessions and players) most of the time, so that calls get past "not found".
The demo secrets are public (fixtures/demo.sql); nothing here is a real credential.
"""

import hashlib
import hmac
import json
import os
import random
import time
import uuid

import requests
import schemathesis

PROVIDER = ("933a215f-a9e6-4f88-9d91-52a87cd50499", "demo-provider-secret")
OPERATOR = ("5c2f4b1e-8d3a-4c6f-9e7b-1a2b3c4d5e6f", "demo-operator-secret")
SEAMLESS = ("8e4d2c1b-6f5a-4b3c-9d8e-7f6a5b4c3d2e", "demo-seamless-secret")

# alice (USD, transfer), bob (EUR, transfer), carol (USD, seamless: the demo casino).
SESSIONS = [
    "01900000-0000-7000-8000-0000000000a1",
    "01900000-0000-7000-8000-0000000000a2",
    "01900000-0000-7000-8000-0000000000a3",
]
PLAYERS = [("alice", "USD"), ("bob", "EUR")]
OPERATOR_PREFIXES = ("/v1/player/", "/v1/transactions/", "/v1/game/")

_bearer = {}


def _steer(value, choices, chance=0.8):
    return random.choice(choices) if random.random() < chance else value


@schemathesis.hook
def map_path_parameters(context, path_parameters):
    if path_parameters and "sessionId" in path_parameters:
        path_parameters["sessionId"] = _steer(path_parameters["sessionId"], SESSIONS)
    return path_parameters


@schemathesis.hook
def map_query(context, query):
    if isinstance(query, dict) and "playerExternalId" in query:
        player, currency = random.choice(PLAYERS)
        query["playerExternalId"] = _steer(query["playerExternalId"], [player])
        if "currency" in query:
            query["currency"] = _steer(query["currency"], [currency])
    return query


@schemathesis.hook
def map_body(context, body):
    if isinstance(body, dict) and "playerExternalId" in body:
        player, currency = random.choice(PLAYERS)
        body["playerExternalId"] = _steer(body["playerExternalId"], [player])
        if "currency" in body:
            body["currency"] = _steer(body["currency"], [currency])
    return body


def _signer(path):
    if path.startswith("/v1/sessions/"):
        return PROVIDER
    if path.startswith(OPERATOR_PREFIXES):
        return OPERATOR
    return None


def _token(base_url):
    if "token" not in _bearer:
        answer = requests.post(
            f"{base_url}/mis-api/api/v2/auth/token",
            json={"PartnerClientId": SEAMLESS[0], "Secret": SEAMLESS[1]},
            timeout=10,
        )
        _bearer["token"] = answer.json()["Value"]["AccessToken"]
        _remember(_bearer["token"])
    return _bearer["token"]


@schemathesis.hook
def before_call(context, case, kwargs):
    path = case.operation.path
    if case.headers is None:
        case.headers = {}
    if path.endswith("/payments/accept"):
        base_url = case.operation.base_url or case.operation.schema.get_base_url()
        case.headers["Authorization"] = f"Bearer {_token(base_url.rstrip('/'))}"
        return
    signer = _signer(path)
    if signer is None:
        return
    counterparty, secret = signer
    if case.method.upper() == "GET":
        body = None
    else:
        # The exact bytes sent: schemathesis sends these instead of serializing the body again.
        if isinstance(case.body, bytes):
            body = case.body  # raw bytes, as negative tests generate them
        elif type(case.body).__name__ == "NotSet":
            body = b""
        else:
            body = json.dumps(case.body).encode()
        kwargs["data"] = body
    timestamp = str(int(time.time() * 1000))
    request_id = uuid.uuid4().hex
    signed = f"{counterparty}.{timestamp}.{request_id}".encode()
    if body is not None:
        signed = body + b"." + signed
    case.headers["X-Counterparty-Id"] = counterparty
    case.headers["X-Timestamp"] = timestamp
    case.headers["X-Request-Id"] = request_id
    case.headers["X-Sign"] = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    _remember(case.headers["X-Sign"])


def _remember(secret):
    """Writes a signature or a token sent to SCHEMATHESIS_SENT_SECRETS (one a line), for the
    check that none of them reaches the server's log."""
    path = os.environ.get("SCHEMATHESIS_SENT_SECRETS")
    if path:
        with open(path, "a") as f:
            f.write(secret + "\n")
