//! What the crypto providers call.
//!
//! Public: `POST /v1/crypto/inabit/webhook` (Terminal deposit events; unsigned, so only
//! recorded and answered at once — the worker confirms each with inabit's API) and
//! `POST /v1/crypto/b2binpay/callback` (signed payout callbacks; HTTP 200 with an empty body
//! once verified, 401 for a bad signature).
//!
//! Private listener: `POST /v1/approver` (inabit's Remote Approver asks whether to sign a
//! withdrawal; answers `{"approved": true|false}`) and `GET /v1/crypto/status`.

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::api::Endpoint;
use crate::crypto::b2binpay::CallbackError;
use crate::crypto::webhooks::Busy;
use crate::error::Error;
use crate::startup::AppState;

/// This part of the spec (`api::docs`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(inabit_webhook, b2binpay_callback, approver, status))]
pub struct Spec;

pub fn routes() -> Vec<Endpoint> {
    vec![
        Endpoint::new(Method::POST, "/v1/crypto/inabit/webhook", |r| {
            r.to(inabit_webhook)
        }),
        Endpoint::new(Method::POST, "/v1/crypto/b2binpay/callback", |r| {
            r.to(b2binpay_callback)
        }),
    ]
}

/// The private listener's routes.
pub fn private_routes() -> Vec<Endpoint> {
    vec![
        Endpoint::new(Method::POST, "/v1/approver", |r| r.to(approver)),
        Endpoint::new(Method::GET, "/v1/crypto/status", |r| r.to(status)),
    ]
}

fn json(status: actix_web::http::StatusCode, body: serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body.to_string())
}

#[utoipa::path(
    post,
    path = "/v1/crypto/inabit/webhook",
    tag = "crypto",
    operation_id = "inabitWebhook",
    summary = "inabit Terminal deposit event (unsigned: recorded, then confirmed with inabit's API)",
    request_body(content = crate::api::docs::casino_crypto::InabitEvent, description = "The event as inabit sends it; stored raw"),
    responses(
        (status = 200, description = "Recorded", body = crate::api::docs::casino_crypto::WebhookReceived),
        (status = 400, description = "Not a JSON object, a body over 16 KiB, or an event name or transaction id holding a NUL character", body = crate::api::docs::casino_crypto::Message),
        (status = 429, description = "Too many webhooks from this source (Retry-After: 5); not stored", body = crate::api::docs::casino_crypto::Message),
        (status = 503, description = "Too many events waiting, or the database is unavailable; not stored (Retry-After: 5 when queue full)", body = crate::api::docs::casino_crypto::Message),
    )
)]
async fn inabit_webhook(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let source = req.peer_addr().map(|a| a.ip());
    let recorded = match crate::api::read_body(&req, payload).await {
        Ok(body) => state.crypto.record_webhook(&body, source).await,
        Err(e) => Err(e),
    };
    match recorded {
        Ok(Ok(id)) => json(
            actix_web::http::StatusCode::OK,
            serde_json::json!({"received": id}),
        ),
        // Not stored: inabit delivers again later, and polling finds every deposit anyway.
        Ok(Err(busy)) => {
            let (status, message) = match busy {
                Busy::RateLimited => (
                    actix_web::http::StatusCode::TOO_MANY_REQUESTS,
                    "too many webhooks from this source",
                ),
                Busy::QueueFull => (
                    actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                    "too many events waiting",
                ),
            };
            let mut answer = json(status, serde_json::json!({"message": message}));
            answer.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from_static("5"),
            );
            answer
        }
        Err(e @ (Error::BadFormat(_) | Error::BadValue(_))) => json(
            actix_web::http::StatusCode::BAD_REQUEST,
            serde_json::json!({"message": e.to_string()}),
        ),
        Err(e) => {
            crate::api::log_failure(&req, &e);
            // Not recorded: a 5xx makes inabit deliver it again.
            json(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"message": "try again"}),
            )
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/crypto/b2binpay/callback",
    tag = "crypto",
    operation_id = "b2binpayCallback",
    summary = "B2BINPAY payout callback (signed with the callback key)",
    request_body(content = Object, description = "The callback as B2BINPAY sends it (JSON:API)"),
    responses(
        (status = 200, description = "Verified and applied; empty body"),
        (status = 400, description = "A body over 16 KiB or not received in time", body = crate::api::docs::casino_crypto::Message),
        (status = 401, description = "Forged, altered or malformed: nothing changes", body = crate::api::docs::casino_crypto::Message),
        (status = 503, description = "Not applied now (send again), or callbacks are not configured", body = crate::api::docs::casino_crypto::Message),
    )
)]
async fn b2binpay_callback(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let body = match crate::api::read_body(&req, payload).await {
        Ok(body) => body,
        Err(e) => {
            return json(
                actix_web::http::StatusCode::BAD_REQUEST,
                serde_json::json!({"message": e.to_string()}),
            )
        }
    };
    match state.crypto.b2binpay_callback(&body).await {
        Ok(()) => HttpResponse::Ok().finish(),
        Err(e @ (CallbackError::BadSignature | CallbackError::Malformed)) => {
            tracing::warn!(error = %e, "B2BINPAY callback refused");
            json(
                actix_web::http::StatusCode::UNAUTHORIZED,
                serde_json::json!({"message": e.to_string()}),
            )
        }
        Err(CallbackError::Unavailable) => json(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"message": "try again"}),
        ),
        Err(e @ CallbackError::NoKey) => {
            tracing::error!(error = %e, "B2BINPAY callback cannot be verified");
            json(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"message": "callbacks are not configured"}),
            )
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/approver",
    tag = "private-listener",
    operation_id = "remoteApprover",
    summary = "inabit Remote Approver validation callback (private listener only)",
    description = "Served on `CROUPIER_APPROVER_LISTEN` (default 127.0.0.1:8091), not on the public listener. Unauthenticated, like the Approver's call: bind it where only the Approver reaches it.",
    request_body(content = Object, description = "The withdrawal inabit asks about"),
    responses(
        (status = 200, description = "The verdict: approved only for a payout croupier holds, exactly as held", body = crate::api::docs::casino_crypto::Approval),
    )
)]
async fn approver(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let approved = match crate::api::read_body(&req, payload).await {
        Ok(body) => state.crypto.approve(&body).await,
        Err(_) => false,
    };
    json(
        actix_web::http::StatusCode::OK,
        serde_json::json!({"approved": approved}),
    )
}

#[utoipa::path(
    get,
    path = "/v1/crypto/status",
    tag = "private-listener",
    operation_id = "cryptoStatus",
    summary = "Crypto status (private listener only)",
    description = "Served on `CROUPIER_APPROVER_LISTEN`: the inabit login token's age and last refresh error (never the token), events waiting, payouts in flight, open reviews, the polling checkpoint, the jobs and the webhook counters.",
    responses(
        (status = 200, description = "The status", body = Object),
        (status = 503, description = "The database is unavailable", body = crate::api::docs::casino_crypto::Message),
    )
)]
async fn status(state: web::Data<AppState>) -> HttpResponse {
    match state.crypto.status().await {
        Ok(status) => json(actix_web::http::StatusCode::OK, status),
        Err(e) => {
            tracing::error!(error = %e, "crypto status");
            json(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"message": "status unavailable"}),
            )
        }
    }
}
