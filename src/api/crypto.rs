//! What the crypto providers call.
//!
//! Public: `POST /v1/crypto/inabit/webhook` (Terminal deposit events; unsigned, so only
//! recorded and answered at once — the worker confirms each with inabit's API) and
//! `POST /v1/crypto/b2binpay/callback` (signed payout callbacks; HTTP 200 with an empty body
//! once verified, 401 for a bad signature).
//!
//! Private listener: `POST /v1/approver` (inabit's Remote Approver asks whether to sign a
//! withdrawal; answers `{"approved": true|false}`) and `GET /v1/crypto/status`.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::crypto::b2binpay::CallbackError;
use crate::crypto::webhooks::Busy;
use crate::error::Error;
use crate::startup::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/crypto/inabit/webhook", web::post().to(inabit_webhook))
        .route(
            "/v1/crypto/b2binpay/callback",
            web::post().to(b2binpay_callback),
        );
}

pub fn configure_private(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/approver", web::post().to(approver))
        .route("/v1/crypto/status", web::get().to(status));
}

fn json(status: actix_web::http::StatusCode, body: serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body.to_string())
}

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
