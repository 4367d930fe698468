//! One root span per request, one access-log line per request, and the request metrics: the
//! middleware both listeners wrap every route in.
//!
//! The span carries the request id (`X-Request-Id`), method and route; once the call is
//! answered it gains the counterparty (set by authentication, `Caller`), the HTTP status,
//! the answer code (set by the audience's responder, `AnswerCode`) and the latency. Anything
//! logged while the call runs is inside it. No header but the request id is read: never a
//! signature or a secret.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use tracing::field::Empty;
use tracing::Instrument;

use super::name;
use crate::startup::AppState;

/// The answer code a responder put in its body (`_responseCode`, an operator `code`, a
/// casino `ErrorCode`), for the log and the metrics.
#[derive(Debug, Clone, Copy)]
pub struct AnswerCode(pub i64);

/// `response`, marked with the answer code its body carries.
pub fn coded(mut response: HttpResponse, code: i64) -> HttpResponse {
    response.extensions_mut().insert(AnswerCode(code));
    response
}

/// The authenticated counterparty of a call.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<str>);

/// Labels a call that matched no route (a bounded label, whatever the path).
const UNMATCHED: &str = "unmatched";

/// The middleware (`actix_web::middleware::from_fn(observe)`).
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let access_log = req
        .app_data::<web::Data<AppState>>()
        .is_none_or(|s| s.access_log);
    let request_id = request_id(&req).to_owned();
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = request_id.as_str(),
        method = %method,
        endpoint = Empty,
        counterparty = Empty,
        status = Empty,
        code = Empty,
        latency_ms = Empty,
    );
    let answered = next.call(req).instrument(span.clone()).await;
    let latency = started.elapsed();
    let (endpoint, status, code, counterparty) = match &answered {
        Ok(res) => {
            let request = res.request();
            let extensions = request.extensions();
            (
                request.match_pattern(),
                res.status().as_u16(),
                res.response().extensions().get::<AnswerCode>().map(|c| c.0),
                extensions.get::<Caller>().map(|c| c.0.clone()),
            )
        }
        Err(e) => (None, e.error_response().status().as_u16(), None, None),
    };
    let endpoint = endpoint.unwrap_or_else(|| UNMATCHED.to_string());
    let code_label = code.map_or_else(|| "none".to_string(), |c| c.to_string());
    metrics::counter!(
        name::HTTP_REQUESTS,
        "endpoint" => endpoint.clone(),
        "method" => method_label(&method),
        "status" => status.to_string(),
        "code" => code_label.clone(),
    )
    .increment(1);
    metrics::histogram!(name::HTTP_DURATION, "endpoint" => endpoint.clone(), "code" => code_label)
        .record(latency.as_secs_f64());
    let latency_ms = latency.as_secs_f64() * 1000.0;
    span.record("endpoint", endpoint.as_str());
    span.record("status", status);
    if let Some(code) = code {
        span.record("code", code);
    }
    if let Some(who) = &counterparty {
        span.record("counterparty", &**who);
    }
    span.record("latency_ms", latency_ms);
    if access_log {
        tracing::info!(
            target: "croupier::access",
            // Everything the span says is on the line itself.
            parent: None,
            request_id = request_id.as_str(),
            method = %method,
            endpoint,
            counterparty = counterparty.as_deref(),
            status,
            code,
            latency_ms,
            "answered"
        );
    }
    answered
}

/// The request id as sent, when it looks like one (at most 64 visible ASCII characters):
/// anything else is logged as `-`, so a header cannot fill the log.
fn request_id(req: &ServiceRequest) -> &str {
    req.headers()
        .get(crate::auth::HEADER_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("-")
}

/// The method as a label: the standard ones by name, anything else as `other` (a client may
/// send any token as a method; a label per token would grow without bound).
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}
