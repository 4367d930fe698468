//! One root span per request, one access-log line per request, and the request metrics: the
//! middleware both listeners wrap every route in.
//!
//! The span carries the request id (`X-Request-Id`), method and route; once the call is
//! answered it gains the counterparty (set by authentication, `Caller`), the HTTP status,
//! the answer code (set by the audience's responder, `AnswerCode`) and the latency. Anything
//! logged while the call runs is inside it. No header but the request id is read: never a
//! signature or a secret.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderValue;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use metrics::{Counter, Histogram};
use tracing::field::Empty;
use tracing::Instrument;

use super::name;
use crate::auth::Counterparty;
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
pub struct Caller(pub Arc<Counterparty>);

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
    let method = method_label(req.method());
    // Kept for the access line (a shared handle on the header's bytes, not a copy).
    let request_id_header = req.headers().get(crate::auth::HEADER_REQUEST_ID).cloned();
    let request_id = request_id(request_id_header.as_ref());
    let span = tracing::info_span!(
        "request",
        request_id,
        method,
        endpoint = Empty,
        counterparty = Empty,
        status = Empty,
        code = Empty,
        latency_ms = Empty,
    );
    let answered = next.call(req).instrument(span.clone()).await;
    let latency = started.elapsed();
    let answer = |endpoint, status, code| Answer {
        method,
        endpoint,
        status,
        code,
    };
    let done = Done {
        span: &span,
        access_log,
        request_id,
        latency,
    };
    match &answered {
        Ok(res) => {
            let request = res.request();
            let endpoint = request.match_pattern();
            let extensions = request.extensions();
            done.record(
                answer(
                    endpoint.as_deref().unwrap_or(UNMATCHED),
                    res.status().as_u16(),
                    res.response().extensions().get::<AnswerCode>().map(|c| c.0),
                ),
                extensions.get::<Caller>().map(|c| c.0.id.as_str()),
            );
        }
        Err(e) => done.record(
            answer(UNMATCHED, e.error_response().status().as_u16(), None),
            None,
        ),
    }
    answered
}

/// A call's end: what every answer, an error included, leaves behind.
struct Done<'a> {
    span: &'a tracing::Span,
    access_log: bool,
    request_id: &'a str,
    latency: std::time::Duration,
}

impl Done<'_> {
    /// The request metrics, the span's fields and the access line.
    fn record(&self, answer: Answer<'_>, counterparty: Option<&str>) {
        answer.record(self.latency);
        let latency_ms = self.latency.as_secs_f64() * 1000.0;
        let span = self.span;
        span.record("endpoint", answer.endpoint);
        span.record("status", answer.status);
        if let Some(code) = answer.code {
            span.record("code", code);
        }
        if let Some(who) = counterparty {
            span.record("counterparty", who);
        }
        span.record("latency_ms", latency_ms);
        if self.access_log {
            tracing::info!(
                target: "croupier::access",
                // Everything the span says is on the line itself.
                parent: None,
                request_id = self.request_id,
                method = answer.method,
                endpoint = answer.endpoint,
                counterparty,
                status = answer.status,
                code = answer.code,
                latency_ms,
                "answered"
            );
        }
    }
}

/// What a call was answered: the labels of its metrics.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Answer<'a> {
    method: &'static str,
    endpoint: &'a str,
    status: u16,
    code: Option<i64>,
}

/// The request metrics of one endpoint, by method, status and code.
type ByLabels = HashMap<(&'static str, u16, Option<i64>), (Counter, Histogram)>;

thread_local! {
    /// This thread's handles of the request metrics, by endpoint, then by the other labels:
    /// a call costs a lookup in a small map, not the building and hashing of four labels in
    /// the recorder's registry. Every label is bounded, and so are the maps.
    static HANDLES: RefCell<HashMap<String, ByLabels>> = RefCell::new(HashMap::new());
}

impl Answer<'_> {
    fn record(self, latency: std::time::Duration) {
        HANDLES.with(|handles| {
            let mut handles = handles.borrow_mut();
            if !handles.contains_key(self.endpoint) {
                handles.insert(self.endpoint.to_string(), HashMap::new());
            }
            let Some(by_labels) = handles.get_mut(self.endpoint) else {
                return;
            };
            let (requests, duration) = by_labels
                .entry((self.method, self.status, self.code))
                .or_insert_with(|| self.handles());
            requests.increment(1);
            duration.record(latency.as_secs_f64());
        });
    }

    fn handles(&self) -> (Counter, Histogram) {
        let endpoint = self.endpoint.to_string();
        let code = self
            .code
            .map_or_else(|| "none".to_string(), |c| c.to_string());
        (
            metrics::counter!(
                name::HTTP_REQUESTS,
                "endpoint" => endpoint.clone(),
                "method" => self.method,
                "status" => self.status.to_string(),
                "code" => code.clone(),
            ),
            metrics::histogram!(name::HTTP_DURATION, "endpoint" => endpoint, "code" => code),
        )
    }
}

/// The request id as sent, when it looks like one (at most 64 visible ASCII characters):
/// anything else is logged as `-`, so a header cannot fill the log.
fn request_id(header: Option<&HeaderValue>) -> &str {
    header
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
