//! Operations: health on the public listener (for a load balancer or an orchestrator:
//! unauthenticated, cheap, saying nothing of the inside) and Prometheus metrics on the
//! private one.

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::api::Endpoint;
use crate::startup::AppState;

/// This part of the spec (`api::docs`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(live, ready, metrics))]
pub struct Spec;

pub fn routes() -> Vec<Endpoint> {
    vec![
        Endpoint::new(Method::GET, "/health/live", |r| r.to(live)),
        Endpoint::new(Method::GET, "/health/ready", |r| r.to(ready)),
    ]
}

/// The private listener's routes.
pub fn private_routes() -> Vec<Endpoint> {
    vec![Endpoint::new(Method::GET, "/metrics", |r| r.to(metrics))]
}

/// A health answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `live`, `ready` or `unready`.
    #[schema(example = "ready")]
    status: &'static str,
}

fn health(status: StatusCode, word: &'static str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Cache-Control", "no-store"))
        .json(Health { status: word })
}

#[utoipa::path(
    get,
    path = "/health/live",
    tag = "health",
    operation_id = "healthLive",
    summary = "The process is up (it answers HTTP); nothing else is checked",
    responses((status = 200, description = "Live", body = Health))
)]
async fn live() -> HttpResponse {
    health(StatusCode::OK, "live")
}

#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    operation_id = "healthReady",
    summary = "The server can take calls: the database answers, its migrations are this \
               build's, and group commit is running. Checked at most once a second.",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready (the reason is in the server's log)", body = Health),
    )
)]
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.readiness.check().await {
        Ok(()) => health(StatusCode::OK, "ready"),
        Err(_) => health(StatusCode::SERVICE_UNAVAILABLE, "unready"),
    }
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "private-listener",
    operation_id = "metrics",
    summary = "Prometheus metrics (text exposition format). Private listener only: it must \
               not face the internet.",
    responses((status = 200, description = "The metrics", content_type = "text/plain"))
)]
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let Some(handle) = crate::telemetry::install() else {
        return HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("# metrics go to another recorder in this process\n");
    };
    state.collect_gauges().await;
    handle.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}
