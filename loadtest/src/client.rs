//! One keep-alive HTTP/1.1 connection to the server, sending signed provider calls the way a
//! game provider does: a fresh request id and timestamp on every call.

use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::TcpStream;

/// Who signs: a provider's id and secret.
#[derive(Debug, Clone)]
pub struct Signer {
    pub id: String,
    pub secret: String,
}

/// What the server answered, reduced to what the books need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// `_responseCode`, or -1 when the body had none.
    pub code: i64,
    /// `balance`, when the answer carries one.
    pub balance: Option<Decimal>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(rename = "_responseCode")]
    code: i64,
    /// Read as written, never through a float.
    #[serde(borrow)]
    balance: Option<&'a RawValue>,
}

impl Answer {
    fn parse(status: u16, bytes: &[u8]) -> Self {
        match serde_json::from_slice::<Body>(bytes) {
            Ok(body) => Self {
                status,
                code: body.code,
                balance: body
                    .balance
                    .and_then(|raw| raw.get().trim_matches('"').parse().ok()),
            },
            Err(_) => Self {
                status,
                code: -1,
                balance: None,
            },
        }
    }
}

pub struct Connection {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
    nonce: u128,
}

impl Connection {
    pub fn new(addr: SocketAddr, seed: u64) -> Self {
        Self {
            addr,
            host: addr.to_string(),
            sender: None,
            // Request ids: a random start, then counting; unique per connection and run.
            nonce: (u128::from(seed) << 64) | u128::from(rand::random::<u64>()),
        }
    }

    async fn sender(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(self.addr)
                .await
                .with_context(|| format!("connecting to {}", self.addr))?;
            stream.set_nodelay(true)?;
            let (sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("no connection"))
    }

    /// Sends one signed call: `body` None is a GET.
    pub async fn call(
        &mut self,
        signer: &Signer,
        path: &str,
        body: Option<String>,
    ) -> anyhow::Result<Answer> {
        self.nonce = self.nonce.wrapping_add(1);
        let request_id = format!("{:032x}", self.nonce);
        let timestamp = croupier::auth::now_ms().to_string();
        let sign = croupier::auth::sign(
            signer.secret.as_bytes(),
            body.as_deref().map(str::as_bytes),
            &signer.id,
            &timestamp,
            &request_id,
        );
        let builder = Request::builder()
            .uri(path)
            .header("host", &self.host)
            .header("x-counterparty-id", &signer.id)
            .header("x-timestamp", &timestamp)
            .header("x-request-id", &request_id)
            .header("x-sign", &sign);
        let request = match body {
            Some(body) => builder
                .method("POST")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))?,
            None => builder.method("GET").body(Full::new(Bytes::new()))?,
        };
        let sender = self.sender().await?;
        sender.ready().await?;
        let response = match sender.send_request(request).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(e.into());
            }
        };
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok(Answer::parse(status, &bytes))
    }

    /// Drops the connection (a call given up half-way leaves it unusable); the next call
    /// opens a new one.
    pub fn reset(&mut self) {
        self.sender = None;
    }
}
