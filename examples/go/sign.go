// Signs croupier calls (X-Sign, HMAC-SHA256). Go 1.19+, standard library only.
//
//	go run . verify-vectors ../../fixtures/signature-vectors.json
//	go run . print [BASE_URL]            a signed PayIn and a signed operator deposit, as curl
//	go run . send http://127.0.0.1:8080  the same two calls, sent
//
// Credentials come from the environment; the defaults are the public demo ones of
// `croupier serve`: CROUPIER_PROVIDER_ID, CROUPIER_PROVIDER_SECRET, CROUPIER_SESSION_ID,
// CROUPIER_OPERATOR_ID, CROUPIER_OPERATOR_SECRET.
package main

import (
	"bytes"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Sign is the X-Sign of one call. body: the exact bytes sent; nil for a GET.
func Sign(secret, counterpartyID, timestamp, requestID string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	if body != nil {
		mac.Write(body)
		mac.Write([]byte("."))
	}
	mac.Write([]byte(counterpartyID + "." + timestamp + "." + requestID))
	return hex.EncodeToString(mac.Sum(nil))
}

// SignedHeaders are the four signing headers for a call made now.
func SignedHeaders(counterpartyID, secret string, body []byte) map[string]string {
	timestamp := strconv.FormatInt(time.Now().UnixMilli(), 10) // within 30 s of croupier's clock
	requestID := randomHex(16)                                 // 32 hex digits, never reused
	return map[string]string{
		"X-Counterparty-Id": counterpartyID,
		"X-Timestamp":       timestamp,
		"X-Request-Id":      requestID,
		"X-Sign":            Sign(secret, counterpartyID, timestamp, requestID, body),
	}
}

func randomHex(size int) string {
	random := make([]byte, size)
	if _, err := rand.Read(random); err != nil {
		panic(err)
	}
	return hex.EncodeToString(random)
}

type call struct {
	path, id, secret string
	body             []byte
}

// demoCalls are a PayIn on the provider API and a deposit on the operator API.
func demoCalls() []call {
	env := func(name, otherwise string) string {
		if value := os.Getenv(name); value != "" {
			return value
		}
		return otherwise
	}
	ref := randomHex(8)
	session := env("CROUPIER_SESSION_ID", "01900000-0000-7000-8000-0000000000a1")
	payIn, _ := json.Marshal(map[string]any{"betId": "demo-" + ref, "betAmount": "1.50"})
	deposit, _ := json.Marshal(map[string]any{
		"playerExternalId": "alice", "currency": "USD", "amount": 25, "transactionId": "dep-" + ref,
	})
	return []call{
		{"/v1/sessions/" + session + "/bets/pay-in",
			env("CROUPIER_PROVIDER_ID", "933a215f-a9e6-4f88-9d91-52a87cd50499"),
			env("CROUPIER_PROVIDER_SECRET", "demo-provider-secret"), payIn},
		{"/v1/player/wallet/deposit",
			env("CROUPIER_OPERATOR_ID", "5c2f4b1e-8d3a-4c6f-9e7b-1a2b3c4d5e6f"),
			env("CROUPIER_OPERATOR_SECRET", "demo-operator-secret"), deposit},
	}
}

func quote(text string) string { return "'" + strings.ReplaceAll(text, "'", `'\''`) + "'" }

func printCalls(baseURL string) int {
	for _, c := range demoCalls() {
		headers := SignedHeaders(c.id, c.secret, c.body)
		line := "curl -s -X POST " + quote(baseURL+c.path) + " -H 'Content-Type: application/json'"
		for _, name := range []string{"X-Counterparty-Id", "X-Timestamp", "X-Request-Id", "X-Sign"} {
			line += " -H " + quote(name+": "+headers[name])
		}
		fmt.Println(line + " --data-binary " + quote(string(c.body)))
	}
	return 0
}

func sendCalls(baseURL string) int {
	client := http.Client{Timeout: 10 * time.Second}
	for _, c := range demoCalls() {
		// Sign the very bytes you send: a re-encoded body no longer matches its X-Sign.
		request, err := http.NewRequest("POST", baseURL+c.path, bytes.NewReader(c.body))
		if err != nil {
			fmt.Println(err)
			return 1
		}
		request.Header.Set("Content-Type", "application/json")
		for name, value := range SignedHeaders(c.id, c.secret, c.body) {
			request.Header.Set(name, value)
		}
		response, err := client.Do(request)
		if err != nil {
			fmt.Println(c.path, err)
			return 1
		}
		answer, _ := io.ReadAll(response.Body)
		response.Body.Close()
		fmt.Println(c.path, response.StatusCode, string(answer))
	}
	return 0
}

type vectors struct {
	HMAC []struct {
		Name, Secret, Sign, Timestamp string
		Body                          *string // nil for a GET
		CounterpartyID                string  `json:"counterparty_id"`
		RequestID                     string  `json:"request_id"`
	} `json:"hmac"`
	JWT []struct {
		Name, Kid, Token string
		Claims           map[string]any
		JWK              struct{ N, E string } `json:"public_key_jwk"`
	} `json:"jwt"`
}

var b64 = base64.RawURLEncoding

// jwtMatches checks RS256 as a seamless casino checks croupier's JWTs (a casino would use a
// JWT library, which also checks exp, nbf and iss).
func jwtMatches(token, kid, n, e string, claims map[string]any) bool {
	parts := strings.Split(token, ".")
	modulus, errN := b64.DecodeString(n)
	exponent, errE := b64.DecodeString(e)
	signature, errS := b64.DecodeString(parts[len(parts)-1])
	if len(parts) != 3 || errN != nil || errE != nil || errS != nil {
		return false
	}
	key := rsa.PublicKey{N: new(big.Int).SetBytes(modulus), E: int(new(big.Int).SetBytes(exponent).Int64())}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(&key, crypto.SHA256, digest[:], signature) != nil {
		return false
	}
	var header, payload map[string]any
	headerJSON, _ := b64.DecodeString(parts[0])
	payloadJSON, _ := b64.DecodeString(parts[1])
	if json.Unmarshal(headerJSON, &header) != nil || json.Unmarshal(payloadJSON, &payload) != nil {
		return false
	}
	return header["alg"] == "RS256" && header["kid"] == kid && reflect.DeepEqual(payload, claims)
}

func verifyVectors(path string) int {
	text, err := os.ReadFile(path)
	var v vectors
	if err == nil {
		err = json.Unmarshal(text, &v)
	}
	if err != nil {
		fmt.Println(err)
		return 1
	}
	failed := 0
	for _, h := range v.HMAC {
		var body []byte
		if h.Body != nil {
			body = []byte(*h.Body)
		}
		if got := Sign(h.Secret, h.CounterpartyID, h.Timestamp, h.RequestID, body); got != h.Sign {
			failed++
			fmt.Printf("MISMATCH %s: expected %s, got %s\n", h.Name, h.Sign, got)
		}
	}
	for _, j := range v.JWT {
		if !jwtMatches(j.Token, j.Kid, j.JWK.N, j.JWK.E, j.Claims) {
			failed++
			fmt.Printf("MISMATCH %s: the token does not verify or carries other claims\n", j.Name)
		}
	}
	total := len(v.HMAC) + len(v.JWT)
	fmt.Printf("go: %d of %d vectors match\n", total-failed, total)
	if failed > 0 {
		return 1
	}
	return 0
}

func main() {
	args := os.Args[1:]
	switch {
	case len(args) == 2 && args[0] == "verify-vectors":
		os.Exit(verifyVectors(args[1]))
	case len(args) >= 1 && len(args) <= 2 && args[0] == "print":
		baseURL := "http://127.0.0.1:8080"
		if len(args) == 2 {
			baseURL = args[1]
		}
		os.Exit(printCalls(strings.TrimRight(baseURL, "/")))
	case len(args) == 2 && args[0] == "send":
		os.Exit(sendCalls(strings.TrimRight(args[1], "/")))
	}
	fmt.Fprintln(os.Stderr, "usage: go run . verify-vectors FILE | print [BASE_URL] | send BASE_URL")
	os.Exit(2)
}
