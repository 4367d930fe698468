//! The crypto settings: offered assets with each provider's ids, provider settings, job
//! intervals, and the size of the crypto pool.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::b2binpay::B2binpayConfig;
use super::inabit::InabitConfig;
use super::webhooks::WebhookLimits;

/// One asset on one blockchain that we accept and pay out, with each provider's ids for it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetIds {
    pub asset: String,
    pub blockchain: String,
    /// Decimals of the coin (payout amounts are rounded down to them).
    pub decimals: u32,
    #[serde(default)]
    pub inabit_asset_id: Option<String>,
    #[serde(default)]
    pub inabit_blockchain_id: Option<String>,
    #[serde(default)]
    pub b2binpay_currency_id: Option<String>,
}

/// Everything the crypto integrations need; see `config.rs` for the variables.
#[derive(Debug, Clone)]
pub struct CryptoConfig {
    pub inabit: InabitConfig,
    pub b2binpay: B2binpayConfig,
    pub assets: Vec<AssetIds>,
    /// Limit on every provider call.
    pub http_timeout: Duration,
    /// Connections of the crypto pool (jobs, address creation, provider work), kept apart
    /// from the bet path's pool.
    pub db_pool_size: usize,
    /// Deposit polling; None = off.
    pub poll_interval: Option<Duration>,
    /// Payout tracking and recovery; None = off.
    pub payout_interval: Option<Duration>,
    /// How long a payout in flight is left alone before the recovery job looks at it.
    pub payout_idle: Duration,
    /// How often the login token's age is checked; None = off.
    pub login_check_interval: Option<Duration>,
    /// Limits on the unsigned inabit webhook.
    pub webhooks: WebhookLimits,
}

impl CryptoConfig {
    /// The payout rails with credentials (able to pay from an operator's wallet): `inabit`,
    /// `b2binpay`.
    pub fn payout_rails(&self) -> Vec<&'static str> {
        let mut rails = Vec::new();
        if self.inabit.login_token.is_some() {
            rails.push("inabit");
        }
        if self.b2binpay.client_id.is_some() || self.b2binpay.login.is_some() {
            rails.push("b2binpay");
        }
        rails
    }

    /// No provider configured, no jobs: the defaults of a server without crypto.
    pub fn disabled() -> Self {
        Self {
            inabit: InabitConfig {
                graphql_url: "https://api.inabit.com/graphql".into(),
                terminal_url: "https://api.inabit.biz".into(),
                terminal_key: None,
                login_token: None,
                deposits_path: "/v1/customer/transactions".into(),
                access_token_ttl: Duration::from_secs(15 * 60),
                login_refresh_after: Duration::from_secs(20 * 24 * 3600),
                priority: "Medium".into(),
            },
            b2binpay: B2binpayConfig {
                base_url: "https://api.b2binpay.com".into(),
                client_id: None,
                client_secret: None,
                callback_url: None,
                login: None,
                password: None,
                callback_secret: None,
            },
            assets: Vec::new(),
            http_timeout: Duration::from_secs(10),
            db_pool_size: 4,
            poll_interval: None,
            payout_interval: None,
            payout_idle: Duration::from_secs(60),
            login_check_interval: None,
            webhooks: WebhookLimits::default(),
        }
    }
}
