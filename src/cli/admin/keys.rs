//! Verbs on the signing keys of seamless mode.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::Printed;
use crate::admin::Admin;
use crate::seamless::SigningConfig;

#[derive(Subcommand)]
pub enum KeysVerb {
    /// Makes the next signing key in the data folder: published in the JWKS at once, signing
    /// after --signs-in-hours (default 24, so that every casino has fetched it first).
    /// Prints {"kid", "signsFrom"}.
    Rotate(KeysRotate),
    /// Lists the published keys: {"keys": [{kid, status: next|current|retired, signsFrom,
    /// signsUntil}]}.
    List,
}

impl KeysVerb {
    pub async fn run(self, admin: &Admin, signing: &SigningConfig) -> anyhow::Result<Printed> {
        match self {
            Self::Rotate(verb) => verb.run(admin, signing).await,
            Self::List => Printed::done(admin.keys_list(signing).await?),
        }
    }
}

#[derive(Args)]
pub struct KeysRotate {
    /// Hours from now until the new key signs. Less than 24 risks casinos that cache the
    /// JWKS for a day refusing calls for a while.
    #[arg(long, default_value_t = 24)]
    signs_in_hours: u64,
}

impl KeysRotate {
    async fn run(self, admin: &Admin, signing: &SigningConfig) -> anyhow::Result<Printed> {
        let after = Duration::from_secs(self.signs_in_hours.saturating_mul(3600));
        Printed::done(admin.keys_rotate(signing, after).await?)
    }
}
