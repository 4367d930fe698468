<?php
// Signs croupier calls (X-Sign, HMAC-SHA256). PHP 7.4+ with the json and openssl extensions.
//
//   php sign.php verify-vectors ../../fixtures/signature-vectors.json
//   php sign.php print [BASE_URL]            a signed PayIn and a signed operator deposit, as curl
//   php sign.php send http://127.0.0.1:8080  the same two calls, sent
//
// Credentials come from the environment; the defaults are the public demo ones of
// `croupier serve`: CROUPIER_PROVIDER_ID, CROUPIER_PROVIDER_SECRET, CROUPIER_SESSION_ID,
// CROUPIER_OPERATOR_ID, CROUPIER_OPERATOR_SECRET.

// X-Sign of one call. $body: the exact bytes sent; null for a GET.
function croupier_sign(string $secret, string $counterpartyId, string $timestamp,
                       string $requestId, ?string $body): string
{
    $message = "$counterpartyId.$timestamp.$requestId";
    if ($body !== null) {
        $message = "$body.$message";
    }
    return hash_hmac('sha256', $message, $secret);
}

// The four signing headers for a call made now.
function signed_headers(string $counterpartyId, string $secret, ?string $body): array
{
    $timestamp = (string) intdiv((int) (microtime(true) * 1000000), 1000); // ms, within 30 s
    $requestId = bin2hex(random_bytes(16)); // 32 hex digits, never reused
    return [
        'X-Counterparty-Id' => $counterpartyId,
        'X-Timestamp' => $timestamp,
        'X-Request-Id' => $requestId,
        'X-Sign' => croupier_sign($secret, $counterpartyId, $timestamp, $requestId, $body),
    ];
}

// A PayIn on the provider API and a deposit on the operator API.
function demo_calls(): array
{
    $env = fn (string $name, string $otherwise) => getenv($name) ?: $otherwise;
    $session = $env('CROUPIER_SESSION_ID', '01900000-0000-7000-8000-0000000000a1');
    $ref = bin2hex(random_bytes(8));
    return [
        ["/v1/sessions/$session/bets/pay-in",
         $env('CROUPIER_PROVIDER_ID', '933a215f-a9e6-4f88-9d91-52a87cd50499'),
         $env('CROUPIER_PROVIDER_SECRET', 'demo-provider-secret'),
         json_encode(['betId' => "demo-$ref", 'betAmount' => '1.50'])],
        ['/v1/player/wallet/deposit',
         $env('CROUPIER_OPERATOR_ID', '5c2f4b1e-8d3a-4c6f-9e7b-1a2b3c4d5e6f'),
         $env('CROUPIER_OPERATOR_SECRET', 'demo-operator-secret'),
         json_encode(['playerExternalId' => 'alice', 'currency' => 'USD', 'amount' => 25,
                      'transactionId' => "dep-$ref"])],
    ];
}

function print_calls(string $baseUrl): int
{
    foreach (demo_calls() as [$path, $id, $secret, $body]) {
        $line = 'curl -s -X POST ' . escapeshellarg($baseUrl . $path) . " -H 'Content-Type: application/json'";
        foreach (signed_headers($id, $secret, $body) as $name => $value) {
            $line .= ' -H ' . escapeshellarg("$name: $value");
        }
        echo $line, ' --data-binary ', escapeshellarg($body), "\n";
    }
    return 0;
}

function send_calls(string $baseUrl): int
{
    foreach (demo_calls() as [$path, $id, $secret, $body]) {
        // Sign the very bytes you send: a re-encoded body no longer matches its X-Sign.
        $headers = ['Content-Type: application/json'];
        foreach (signed_headers($id, $secret, $body) as $name => $value) {
            $headers[] = "$name: $value";
        }
        $context = stream_context_create(['http' => [
            'method' => 'POST', 'header' => $headers, 'content' => $body,
            'ignore_errors' => true, 'timeout' => 10, // refusals come with a JSON body too
        ]]);
        $answer = file_get_contents($baseUrl . $path, false, $context);
        echo $path, ' ', $http_response_header[0] ?? 'no answer', ' ', $answer, "\n";
    }
    return 0;
}

function b64url_decode(string $text): string
{
    return base64_decode(strtr($text, '-_', '+/'));
}

// RS256 as a seamless casino checks croupier's JWTs (a casino would use a JWT library such as
// firebase/php-jwt, which also checks exp, nbf and iss).
function jwt_matches(array $v): bool
{
    [$header, $claims, $signature] = explode('.', $v['token']);
    $signed = openssl_verify("$header.$claims", b64url_decode($signature), $v['public_key_pem'],
                             OPENSSL_ALGO_SHA256) === 1;
    $head = json_decode(b64url_decode($header), true);
    return $signed && $head['alg'] === 'RS256' && $head['kid'] === $v['kid']
        && json_decode(b64url_decode($claims), true) == $v['claims'];
}

function verify_vectors(string $path): int
{
    $vectors = json_decode(file_get_contents($path), true, 512, JSON_THROW_ON_ERROR);
    $failed = 0;
    foreach ($vectors['hmac'] as $v) {
        $got = croupier_sign($v['secret'], $v['counterparty_id'], $v['timestamp'],
                             $v['request_id'], $v['body']);
        if (!hash_equals($v['sign'], $got)) {
            $failed++;
            echo "MISMATCH {$v['name']}: expected {$v['sign']}, got $got\n";
        }
    }
    foreach ($vectors['jwt'] as $v) {
        if (!jwt_matches($v)) {
            $failed++;
            echo "MISMATCH {$v['name']}: the token does not verify or carries other claims\n";
        }
    }
    $total = count($vectors['hmac']) + count($vectors['jwt']);
    echo 'php: ', $total - $failed, " of $total vectors match\n";
    return $failed ? 1 : 0;
}

$args = array_slice($argv, 1);
if (count($args) === 2 && $args[0] === 'verify-vectors') {
    exit(verify_vectors($args[1]));
}
if (($args[0] ?? '') === 'print' && count($args) <= 2) {
    exit(print_calls(rtrim($args[1] ?? 'http://127.0.0.1:8080', '/')));
}
if (count($args) === 2 && $args[0] === 'send') {
    exit(send_calls(rtrim($args[1], '/')));
}
fwrite(STDERR, "usage: php sign.php verify-vectors FILE | print [BASE_URL] | send BASE_URL\n");
exit(2);
