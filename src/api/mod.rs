//! The HTTP edge: wire types and handlers, one module per audience.

pub mod provider;

use actix_web::{web, HttpRequest};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::error::Error;

/// Largest request body accepted, in bytes. Every call we take fits in well under 1 KiB.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    provider::configure(cfg);
}

/// Reads the raw body (the signature covers its exact bytes), refusing more than
/// `MAX_BODY_BYTES` without reading further.
pub async fn read_body(req: &HttpRequest, mut payload: web::Payload) -> Result<Bytes, Error> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(Error::malformed("body larger than 16 KiB"));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| Error::malformed(format!("unreadable body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Error::malformed("body larger than 16 KiB"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
