//! Verbs on seamless legs: what waits for a person, and a person's verdict.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::Printed;
use crate::admin::Admin;
use crate::seamless::admin::Resolution;

#[derive(Subcommand)]
pub enum SeamlessVerb {
    /// Lists legs in a state, one JSON object per line (oldest first).
    Legs(SeamlessLegs),
    /// Records a person's verdict on a leg after checking with the casino.
    Resolve(SeamlessResolve),
}

impl SeamlessVerb {
    pub async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        match self {
            Self::Legs(verb) => verb.run(admin).await,
            Self::Resolve(verb) => verb.run(admin).await,
        }
    }
}

#[derive(Args)]
pub struct SeamlessLegs {
    #[arg(long, value_parser = ["stuck", "unknown", "pending", "sent"])]
    state: String,
}

impl SeamlessLegs {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        let legs = admin.seamless_legs(&self.state).await?;
        let lines: Vec<String> = legs.iter().map(Value::to_string).collect();
        Printed::lines(lines)
    }
}

#[derive(Args)]
pub struct SeamlessResolve {
    #[arg(long)]
    leg: uuid::Uuid,
    /// ok: the casino applied it; refused: it did not and will not.
    #[arg(long = "as", value_parser = ["ok", "refused"])]
    resolution: String,
    /// Why, as checked with the casino.
    #[arg(long)]
    note: String,
    /// Who decides (default: the user running the command).
    #[arg(long, env = "USER", default_value = "admin")]
    by: String,
}

impl SeamlessResolve {
    async fn run(self, admin: &Admin) -> anyhow::Result<Printed> {
        let resolution = if self.resolution == "ok" {
            Resolution::Ok
        } else {
            Resolution::Refused
        };
        Printed::done(
            admin
                .seamless_resolve(self.leg, resolution, &self.note, &self.by)
                .await?,
        )
    }
}
