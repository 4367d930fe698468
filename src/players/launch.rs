//! Game launch URLs: a provider's template, checked when it is set and filled at launch.

use uuid::Uuid;

use crate::error::Error;
use crate::ledger::SessionId;
use crate::money::Currency;

/// Placeholders a launch URL template may use.
const LAUNCH_PLACEHOLDERS: &[&str] = &[
    "{sessionId}",
    "{gameId}",
    "{language}",
    "{currency}",
    "{mode}",
    "{returnUrl}",
    "{playerId}",
];

/// A launch URL template must be an http(s) URL that names the session.
pub fn check_launch_template(template: &str) -> Result<(), Error> {
    let scheme_ok = template.starts_with("https://") || template.starts_with("http://");
    if !scheme_ok || template.len() > 2048 || !template.contains("{sessionId}") {
        return Err(Error::bad_value(
            "the launch URL template must be an http(s) URL containing {sessionId}",
        ));
    }
    Ok(())
}

/// What a launch URL is made of.
#[derive(Debug, Clone)]
pub struct LaunchFields<'a> {
    pub session: SessionId,
    pub player_id: Uuid,
    pub game: &'a str,
    pub language: &'a str,
    pub currency: Currency,
    pub mode: &'a str,
    pub return_url: &'a str,
}

/// Fills a launch URL template, every value percent-encoded.
pub fn launch_url(template: &str, f: &LaunchFields<'_>) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    // RFC 3986 unreserved characters stay as they are.
    const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let session = f.session.0.to_string();
    let player = f.player_id.to_string();
    let values = [
        session.as_str(),
        f.game,
        f.language,
        f.currency.code(),
        f.mode,
        f.return_url,
        player.as_str(),
    ];
    let mut url = template.to_string();
    for (placeholder, value) in LAUNCH_PLACEHOLDERS.iter().zip(values) {
        if url.contains(placeholder) {
            let encoded = utf8_percent_encode(value, COMPONENT).to_string();
            url = url.replace(placeholder, &encoded);
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_urls_encode_every_value() {
        let template = "https://games.example/play?s={sessionId}&g={gameId}&l={language}&r={returnUrl}&m={mode}";
        let fields = LaunchFields {
            session: SessionId(Uuid::nil()),
            player_id: Uuid::nil(),
            game: "slot 1&x=2",
            language: "en",
            currency: Currency::parse("USD").expect("known"),
            mode: "real",
            return_url: "https://casino.example/back?a=1",
        };
        assert_eq!(
            launch_url(template, &fields),
            "https://games.example/play?s=00000000-0000-0000-0000-000000000000&g=slot%201%26x%3D2&l=en&r=https%3A%2F%2Fcasino.example%2Fback%3Fa%3D1&m=real"
        );
        assert!(check_launch_template(template).is_ok());
        assert!(check_launch_template("ftp://x/{sessionId}").is_err());
        assert!(check_launch_template("https://x/no-session").is_err());
    }
}
