//! The API's description: an OpenAPI 3.1 document built from the handlers' `#[utoipa::path]`
//! annotations and the wire types' schemas (`schemas`, `casino_crypto`), served at
//! `GET /openapi.json`, and a page that reads it at `GET /docs`. The page is one file compiled
//! into the binary, with no script, font or style from elsewhere: operators run croupier in
//! closed networks.
//!
//! Invariant: the document lists every route of both listeners (`api::routes`,
//! `api::private_routes`), checked by the tests; the private listener's routes are tagged
//! `private-listener`.

pub mod casino_crypto;
pub mod schemas;

use std::sync::OnceLock;

use actix_web::http::Method;
use actix_web::HttpResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

use crate::api::Endpoint;

/// The four signing headers, each a security scheme; every signed call requires all four.
const SIGNING_HEADERS: [(&str, &str); 4] = [
    (
        "X-Counterparty-Id",
        "The provider's or operator's id, given at onboarding",
    ),
    (
        "X-Timestamp",
        "Milliseconds since the epoch, within ±30 s of our clock",
    ),
    (
        "X-Request-Id",
        "32 hex digits, never reused by the same counterparty",
    ),
    (
        "X-Sign",
        "hex(HMAC_SHA256(secret, body + \".\" + counterpartyId + \".\" + timestamp + \".\" + \
         requestId)); a GET signs counterpartyId.timestamp.requestId only",
    ),
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "croupier",
        description = "A game-aggregator wallet server: the provider bet API (answers carry \
`_responseCode`), the operator transfer API (answers are `{code, message, data}`), crypto \
deposits and payouts, and the seamless casino endpoints.\n\nSigned calls carry four headers: \
`X-Counterparty-Id`, `X-Timestamp` (milliseconds), `X-Request-Id` (32 hex digits, never \
reused) and `X-Sign` = hex(HMAC-SHA256(secret, body.counterpartyId.timestamp.requestId)), over \
the exact body bytes (a GET signs counterpartyId.timestamp.requestId). Amounts are major units, \
exact; bodies are at most 16 KiB.\n\nThe routes tagged `private-listener` are served only on \
the private listener (`CROUPIER_APPROVER_LISTEN`), never on the public one."
    ),
    paths(openapi_json, docs_page),
    modifiers(&Security),
    tags(
        (name = "provider", description = "The provider bet API, under a game session"),
        (name = "operator", description = "The operator (casino) transfer API"),
        (name = "crypto", description = "What inabit and B2BINPAY call"),
        (name = "seamless", description = "What a seamless casino calls"),
        (name = "health", description = "Liveness and readiness, for a load balancer or an orchestrator"),
        (name = "private-listener", description = "The private listener: Remote Approver, crypto status, metrics"),
        (name = "docs", description = "This description"),
    )
)]
struct ApiDoc;

/// Adds the security schemes: the four signing headers and the seamless bearer token.
struct Security;

impl Modify for Security {
    fn modify(&self, spec: &mut Document) {
        let components = spec.components.get_or_insert_with(Default::default);
        for (header, description) in SIGNING_HEADERS {
            components.add_security_scheme(
                header,
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                    header,
                    description,
                ))),
            );
        }
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from `POST /mis-api/api/v2/auth/token`"))
                    .build(),
            ),
        );
    }
}

/// The whole document.
pub fn spec() -> Document {
    let mut spec = ApiDoc::openapi();
    spec.merge(crate::api::provider::Spec::openapi());
    spec.merge(crate::api::operator::Spec::openapi());
    spec.merge(crate::api::crypto::Spec::openapi());
    spec.merge(crate::api::casino::Spec::openapi());
    spec.merge(crate::api::ops::Spec::openapi());
    // The JWKS has a second, well-known path: the same operation under another id.
    let jwks = format!("{}/auth/jwks", crate::api::casino::PREFIX);
    if let Some(mut item) = spec.paths.paths.get(&jwks).cloned() {
        if let Some(get) = item.get.as_mut() {
            get.operation_id = Some("wellKnownJwks".to_string());
        }
        spec.paths
            .paths
            .insert("/.well-known/jwks.json".to_string(), item);
    }
    spec
}

/// The document as served, built once.
fn spec_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        spec()
            .to_json()
            .unwrap_or_else(|e| format!(r#"{{"error":"the spec cannot be encoded: {e}"}}"#))
    })
}

pub fn routes() -> Vec<Endpoint> {
    vec![
        Endpoint::new(Method::GET, "/openapi.json", |r| r.to(openapi_json)),
        Endpoint::new(Method::GET, "/docs", |r| r.to(docs_page)),
    ]
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "docs",
    operation_id = "openapi",
    summary = "This OpenAPI 3.1 document",
    responses((status = 200, description = "The document", body = Object))
)]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(spec_json())
}

#[utoipa::path(
    get,
    path = "/docs",
    tag = "docs",
    operation_id = "docs",
    summary = "A page that shows this document (works offline)",
    responses((status = 200, description = "HTML", content_type = "text/html"))
)]
async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        // Everything the page needs is in it: nothing may load from elsewhere.
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; connect-src 'self'; script-src 'unsafe-inline'; \
             style-src 'unsafe-inline'",
        ))
        .body(include_str!("page.html"))
}
