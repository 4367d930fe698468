//! The states and outcomes of crypto deposits and payouts, as stored in `crypto_*` rows and
//! returned by the SQL functions of `sql/functions/crypto_*.sql`. Each is written with `as_str` and
//! read back with `parse`: a text the enum does not know is an error, never a default.

text_enum! {
    /// Which provider sends a payout.
    Rail {
        Inabit = "inabit",
        B2binpay = "b2binpay",
    }
}

text_enum! {
    /// `crypto_payouts.state`.
    PayoutState {
        /// Never held: the withdrawable balance was short (`refusal` says so).
        Refused = "refused",
        /// The amount is out of the wallet; no provider has accepted the payout yet.
        Held = "held",
        /// A provider accepted it (`provider_ref`); not final.
        Submitted = "submitted",
        Paid = "paid",
        /// Failed for good: the amount was given back.
        Released = "released",
        /// Waiting for a person; the hold stays.
        Review = "review",
    }
}

text_enum! {
    /// How a payout ended, as the provider tells it (or a person decides).
    PayoutEnd {
        Paid = "paid",
        Released = "released",
        Review = "review",
    }
}

text_enum! {
    /// `crypto_deposits.state`; states only move forward.
    DepositState {
        Seen = "seen",
        Locked = "locked",
        Completed = "completed",
        Reversed = "reversed",
        Review = "review",
    }
}

text_enum! {
    /// What `crypto_deposit_apply` did with a report.
    DepositOutcome {
        Applied = "applied",
        Duplicate = "duplicate",
        Ignored = "ignored",
        Review = "review",
        Stale = "stale",
    }
}

text_enum! {
    /// The status `crypto_payout_hold` returns.
    HoldStatus {
        Ok = "ok",
        Duplicate = "duplicate",
        Conflict = "conflict",
        PlayerNotFound = "player_not_found",
        NoRate = "no_rate",
        InsufficientFunds = "insufficient_funds",
        /// More than the wallet's crypto-funded value, and the operator pays out only that.
        NotCryptoFunded = "not_crypto_funded",
        AmountTooSmall = "amount_too_small",
    }
}

text_enum! {
    /// What `crypto_payout_finish` did.
    FinishOutcome {
        Applied = "applied",
        Duplicate = "duplicate",
        /// Already paid, released or refused: left as it is.
        Final = "final",
        /// Only an unsent payout was to be ended, and this one was sent meanwhile.
        NotApplied = "not_applied",
        NotFound = "not_found",
    }
}

text_enum! {
    /// What a person's decision (`crypto_payout_settle`, `crypto_deposit_settle`) did.
    SettleOutcome {
        Applied = "applied",
        NotFound = "not_found",
        NotInReview = "not_in_review",
        NotSettleable = "not_settleable",
        InsufficientFunds = "insufficient_funds",
    }
}

text_enum! {
    /// What `crypto_deposit_reopen` did.
    ReopenOutcome {
        Reopened = "reopened",
        NotFound = "not_found",
        NotReopenable = "not_reopenable",
    }
}

text_enum! {
    /// Why the crypto module itself puts something in the review queue (the SQL functions
    /// add their own reasons).
    ReviewReason {
        /// An inabit event whose transaction could not be read after every try.
        EventUnconfirmed = "event_unconfirmed",
        /// A B2BINPAY callback that could not be applied after every try.
        CallbackUnapplied = "callback_unapplied",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn every_state_reads_back_what_it_writes_and_unknown_text_is_an_error() {
        for s in [
            PayoutState::Refused,
            PayoutState::Held,
            PayoutState::Submitted,
            PayoutState::Paid,
            PayoutState::Released,
            PayoutState::Review,
        ] {
            assert_eq!(PayoutState::parse(s.as_str()).ok(), Some(s));
        }
        assert_eq!(Rail::parse("b2binpay").ok(), Some(Rail::B2binpay));
        assert!(matches!(
            DepositState::parse("Completed"),
            Err(Error::Internal(_))
        ));
        assert!(SettleOutcome::parse("").is_err());
        assert_eq!(FinishOutcome::NotApplied.to_string(), "not_applied");
        assert_eq!(
            serde_json::to_value(ReopenOutcome::NotReopenable).ok(),
            Some(serde_json::json!("not_reopenable"))
        );
    }
}
