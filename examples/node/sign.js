#!/usr/bin/env node
// Signs croupier calls (X-Sign, HMAC-SHA256). Node 18+, built-in modules only.
//
//   node sign.js verify-vectors ../../fixtures/signature-vectors.json
//   node sign.js print [BASE_URL]            a signed PayIn and a signed operator deposit, as curl
//   node sign.js send http://127.0.0.1:8080  the same two calls, sent
//
// Credentials come from the environment; the defaults are the public demo ones of
// `croupier serve`: CROUPIER_PROVIDER_ID, CROUPIER_PROVIDER_SECRET, CROUPIER_SESSION_ID,
// CROUPIER_OPERATOR_ID, CROUPIER_OPERATOR_SECRET.
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");

// X-Sign of one call. body: the exact bytes sent (a Buffer); null for a GET.
function sign(secret, counterpartyId, timestamp, requestId, body) {
  const mac = crypto.createHmac("sha256", secret);
  if (body !== null) mac.update(Buffer.concat([body, Buffer.from(".")]));
  return mac.update(`${counterpartyId}.${timestamp}.${requestId}`).digest("hex");
}

// The four signing headers for a call made now.
function signedHeaders(counterpartyId, secret, body) {
  const timestamp = String(Date.now()); // milliseconds; within 30 s of croupier's clock
  const requestId = crypto.randomBytes(16).toString("hex"); // 32 hex digits, never reused
  return {
    "X-Counterparty-Id": counterpartyId,
    "X-Timestamp": timestamp,
    "X-Request-Id": requestId,
    "X-Sign": sign(secret, counterpartyId, timestamp, requestId, body),
  };
}

// A PayIn on the provider API and a deposit on the operator API.
function demoCalls() {
  const env = (name, otherwise) => process.env[name] || otherwise;
  const session = env("CROUPIER_SESSION_ID", "01900000-0000-7000-8000-0000000000a1");
  const ref = crypto.randomBytes(8).toString("hex");
  return [
    {
      path: `/v1/sessions/${session}/bets/pay-in`,
      id: env("CROUPIER_PROVIDER_ID", "933a215f-a9e6-4f88-9d91-52a87cd50499"),
      secret: env("CROUPIER_PROVIDER_SECRET", "demo-provider-secret"),
      body: Buffer.from(JSON.stringify({ betId: `demo-${ref}`, betAmount: "1.50" })),
    },
    {
      path: "/v1/player/wallet/deposit",
      id: env("CROUPIER_OPERATOR_ID", "5c2f4b1e-8d3a-4c6f-9e7b-1a2b3c4d5e6f"),
      secret: env("CROUPIER_OPERATOR_SECRET", "demo-operator-secret"),
      body: Buffer.from(JSON.stringify({
        playerExternalId: "alice", currency: "USD", amount: 25, transactionId: `dep-${ref}`,
      })),
    },
  ];
}

const quote = (text) => `'${text.replace(/'/g, `'\\''`)}'`;

function printCalls(baseUrl) {
  for (const call of demoCalls()) {
    const headers = signedHeaders(call.id, call.secret, call.body);
    const args = ["curl -s -X POST", quote(baseUrl + call.path), "-H 'Content-Type: application/json'"];
    for (const [name, value] of Object.entries(headers)) args.push("-H", quote(`${name}: ${value}`));
    console.log([...args, "--data-binary", quote(call.body.toString())].join(" "));
  }
}

async function sendCalls(baseUrl) {
  for (const call of demoCalls()) {
    // Sign the very bytes you send: a re-serialized body no longer matches its X-Sign.
    const headers = signedHeaders(call.id, call.secret, call.body);
    headers["Content-Type"] = "application/json";
    const response = await fetch(baseUrl + call.path, { method: "POST", headers, body: call.body });
    console.log(call.path, response.status, await response.text());
  }
}

// RS256 as a seamless casino checks croupier's JWTs (a casino would use a JWT library such as
// jose, which also checks exp, nbf and iss: see the README).
function jwtMatches(vector) {
  const [header, claims, signature] = vector.token.split(".");
  const key = crypto.createPublicKey({ key: vector.public_key_jwk, format: "jwk" });
  const signed = crypto.verify("sha256", Buffer.from(`${header}.${claims}`), key,
    Buffer.from(signature, "base64url"));
  const head = JSON.parse(Buffer.from(header, "base64url"));
  const payload = JSON.parse(Buffer.from(claims, "base64url"));
  const names = Object.keys(vector.claims);
  return signed && head.alg === "RS256" && head.kid === vector.kid &&
    Object.keys(payload).length === names.length &&
    names.every((name) => payload[name] === vector.claims[name]);
}

function verifyVectors(path) {
  const vectors = JSON.parse(fs.readFileSync(path, "utf8"));
  let failed = 0;
  for (const v of vectors.hmac) {
    const body = v.body === null ? null : Buffer.from(v.body, "utf8");
    const got = sign(v.secret, v.counterparty_id, v.timestamp, v.request_id, body);
    if (got !== v.sign) {
      failed += 1;
      console.log(`MISMATCH ${v.name}: expected ${v.sign}, got ${got}`);
    }
  }
  for (const v of vectors.jwt) {
    if (!jwtMatches(v)) {
      failed += 1;
      console.log(`MISMATCH ${v.name}: the token does not verify or carries other claims`);
    }
  }
  const total = vectors.hmac.length + vectors.jwt.length;
  console.log(`node: ${total - failed} of ${total} vectors match`);
  return failed ? 1 : 0;
}

async function main(args) {
  if (args.length === 2 && args[0] === "verify-vectors") return verifyVectors(args[1]);
  if (args[0] === "print" && args.length <= 2) {
    return printCalls((args[1] || "http://127.0.0.1:8080").replace(/\/$/, ""));
  }
  if (args.length === 2 && args[0] === "send") return sendCalls(args[1].replace(/\/$/, ""));
  console.error("usage: node sign.js verify-vectors FILE | print [BASE_URL] | send BASE_URL");
  return 2;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code || 0; });
