//! The casino's books: JWTs checked against croupier's JWKS, players and their balances,
//! movements applied once by (`BetId`, `TransactionType`), fault rules, late verdicts.

use std::str::FromStr;
use std::time::{Duration, Instant};

use actix_web::HttpResponse;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::{lock, now_s, Books, Fault, Movement, Player, State};

impl State {
    /// The `data` of a request whose body is a JWT croupier signed, or why not.
    pub(super) async fn data(&self, body: &[u8]) -> Result<Value, HttpResponse> {
        let refuse = |why: &str| {
            *lock(&self.bad_jwts) += 1;
            HttpResponse::Unauthorized()
                .content_type("application/json")
                .body(json!({"ErrorCode": 401, "Message": why}).to_string())
        };
        let Ok(Value::String(jwt)) = serde_json::from_slice::<Value>(body) else {
            return Err(refuse("the body is not a JWT as a JSON string"));
        };
        let Ok(header) = jsonwebtoken::decode_header(&jwt) else {
            return Err(refuse("not a JWT"));
        };
        if header.alg != Algorithm::RS256 {
            return Err(refuse("not RS256"));
        }
        let Some(kid) = header.kid else {
            return Err(refuse("no kid"));
        };
        let Some(key) = self.key(&kid).await else {
            return Err(refuse("unknown kid"));
        };
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 5;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "iss"]);
        if let Some(issuer) = &self.config.issuer {
            validation.set_issuer(&[issuer]);
        }
        let claims = match jsonwebtoken::decode::<Value>(&jwt, &key, &validation) {
            Ok(token) => token.claims,
            Err(e) => return Err(refuse(&format!("the JWT does not verify: {e}"))),
        };
        let Some(data) = claims["data"].as_str() else {
            return Err(refuse("no data claim"));
        };
        serde_json::from_str(data).map_err(|_| refuse("data is not JSON"))
    }

    pub(super) async fn key(&self, kid: &str) -> Option<DecodingKey> {
        if let Some(key) = lock(&self.keys).get(kid) {
            return Some(key.clone());
        }
        let mut fetched = self.keys_fetched.lock().await;
        // Fetched by another call while this one waited?
        if let Some(key) = lock(&self.keys).get(kid) {
            return Some(key.clone());
        }
        if fetched.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
            return None;
        }
        *fetched = Some(Instant::now());
        let url = lock(&self.jwks_url).clone();
        let jwks: Value = self.http.get(url).send().await.ok()?.json().await.ok()?;
        let mut keys = lock(&self.keys);
        for k in jwks["keys"].as_array()? {
            if let (Some(id), Some(n), Some(e)) =
                (k["kid"].as_str(), k["n"].as_str(), k["e"].as_str())
            {
                if let Ok(key) = DecodingKey::from_rsa_components(n, e) {
                    keys.insert(id.to_string(), key);
                }
            }
        }
        keys.get(kid).cloned()
    }

    pub(super) fn count(&self, path: &'static str) {
        *lock(&self.calls).entry(path).or_default() += 1;
    }

    /// The first rule matching a call, counted.
    pub(super) fn fault(&self, path: &str, data: &Value) -> Option<Fault> {
        let mut rules = lock(&self.faults);
        let bet = data["BetId"].as_i64();
        let kind = data["TransactionType"].as_i64();
        let i = rules.iter().position(|r| {
            r.path.as_deref().is_none_or(|p| p == path)
                && r.transaction_type.is_none_or(|t| Some(t) == kind)
                && r.bet_id.is_none_or(|b| Some(b) == bet)
                && r.remaining != Some(0)
        })?;
        let rule = &mut rules[i];
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
        }
        Some(rule.fault.clone())
    }

    pub(super) fn player<'a>(&self, books: &'a mut Books, user: &str) -> Option<&'a mut Player> {
        if !books.players.contains_key(user) {
            let balance = self.config.auto_players?;
            books.players.insert(
                user.to_string(),
                Player {
                    balance,
                    currency_code: self.config.currency.clone(),
                    blocked: false,
                },
            );
        }
        books.players.get_mut(user)
    }

    /// Applies one make (idempotent by BetId and TransactionType): (ErrorCode, Value).
    pub(super) fn apply(&self, item: &Value) -> (i64, Value) {
        let (Some(bet), Some(kind), Some(user)) = (
            item["BetId"].as_i64(),
            item["TransactionType"].as_i64(),
            item["PartnerUserId"].as_str(),
        ) else {
            return (102823, Value::Null);
        };
        let Some(amount) = item["Amount"]
            .as_str()
            .and_then(|a| Decimal::from_str(a).ok())
            .filter(|a| !a.is_sign_negative())
        else {
            return (103801, Value::Null);
        };
        let mut books = lock(&self.books);
        if let Some(seen) = books.movements.get(&(bet, kind)) {
            if seen.amount != amount {
                return (409, Value::Null);
            }
            let (code, ptid) = (seen.error_code, seen.partner_transaction_id.clone());
            let balance = books.players.get(user).map(|p| p.balance);
            return (code, value(&ptid, balance));
        }
        let applied_kinds: Vec<i64> = books
            .movements
            .range((bet, i64::MIN)..=(bet, i64::MAX))
            .filter(|(_, m)| m.error_code == 200)
            .map(|(k, _)| k.1)
            .collect();
        let Some(player) = self.player(&mut books, user) else {
            return (102145, Value::Null);
        };
        let code = if player.blocked && kind == -1 {
            403
        } else {
            match kind {
                -1 if player.balance < amount => 402,
                -1 => 200,
                1 | 4 => 200,
                2 if !applied_kinds.contains(&-1) => 404,
                2 => 200,
                -2 if !applied_kinds.iter().any(|k| *k == 1 || *k == 4) => 404,
                -2 if player.balance < amount => 402,
                -2 => 200,
                _ => 102823,
            }
        };
        if code == 200 {
            if kind < 0 {
                player.balance -= amount;
            } else {
                player.balance += amount;
            }
        }
        let balance = player.balance;
        books.next_tx += 1;
        let ptid = format!("ctx-{}", books.next_tx);
        books.movements.insert(
            (bet, kind),
            Movement {
                bet_id: bet,
                transaction_type: kind,
                amount,
                partner_user_id: user.to_string(),
                error_code: code,
                partner_transaction_id: ptid.clone(),
                created_at: now_s(),
            },
        );
        (code, value(&ptid, Some(balance)))
    }

    /// Sends `payments/accept` for a movement applied late.
    pub(super) async fn send_accept(&self, item: &Value, code: i64, value: &Value) {
        let Some(target) = &self.config.accept else {
            return;
        };
        let token: Option<String> = async {
            let answer: Value = self
                .http
                .post(format!("{}/mis-api/api/v2/auth/token", target.croupier_url))
                .json(&json!({"PartnerClientId": target.client_id, "Secret": target.secret}))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            answer["Value"]["AccessToken"].as_str().map(str::to_string)
        }
        .await;
        let Some(token) = token else {
            tracing::warn!("demo casino: no token for accept");
            return;
        };
        let verdict = json!({
            "BetId": item["BetId"], "TransactionType": item["TransactionType"],
            "ErrorCode": code, "Amount": item["Amount"],
            "PartnerTransactionId": value["PartnerTransactionId"], "Balance": value["Balance"],
        });
        // Resent on errors, as Betcore asks.
        for _ in 0..10 {
            let sent = self
                .http
                .post(format!(
                    "{}/mis-api/api/v2/payments/accept",
                    target.croupier_url
                ))
                .bearer_auth(&token)
                .json(&verdict)
                .send()
                .await;
            if sent.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

pub(super) fn value(ptid: &str, balance: Option<Decimal>) -> Value {
    json!({
        "PartnerTransactionId": ptid,
        "Balance": balance.map(|b| b.normalize().to_string()),
    })
}
