//! TLS on the link to PostgreSQL, as the connection string asks for it, with libpq's rules:
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (unset) | if the server offers it, else plain | not checked (chain checked if `sslrootcert` is a file) |
//! | `require` | always | not checked (chain checked if `sslrootcert` is a file) |
//! | `verify-ca` | always | chain checked against the roots, any host name |
//! | `verify-full` | always | chain checked, and it names the host connected to |
//!
//! The roots are `sslrootcert` (a PEM file of one or more certificates: a private CA), or
//! without it the public CAs (Mozilla's list, built in); `sslrootcert=system` names the public
//! CAs explicitly and, as in libpq, needs `verify-full`. `tokio-postgres` itself knows neither
//! `verify-ca`, `verify-full` nor `sslrootcert`: they are taken out of the string here, and it
//! is given `require` with a connector that checks what the mode asks.
//!
//! Connections over a Unix socket never use TLS (PostgreSQL does not offer it there, and libpq
//! does not ask); see `link`.

use std::fmt;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres::config::SslMode as WireMode;
use tokio_postgres::Config;
use tokio_postgres_rustls::MakeRustlsConnect;

/// What the connection string asks of TLS (libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(match text {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            // libpq's `allow` (plain first, TLS if refused) has no equivalent here.
            other => bail!(
                "sslmode `{other}` is not one of disable, prefer, require, verify-ca, verify-full"
            ),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// What `tokio-postgres` is told: whether to ask for TLS and whether to insist on it.
    fn wire(self) -> WireMode {
        match self {
            Self::Disable => WireMode::Disable,
            Self::Prefer => WireMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => WireMode::Require,
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed connection string: what `tokio-postgres` needs, and the TLS it asked for.
#[derive(Clone)]
pub struct Target {
    pub config: Config,
    pub mode: SslMode,
    pub tls: MakeRustlsConnect,
}

/// Parses a connection string (a `postgres://` URL or libpq's `key=value` form). Errors name
/// the parameter at fault, never the string (it holds the password).
pub fn parse(url: &str) -> anyhow::Result<Target> {
    let (rest, params) = take_tls_params(url)?;
    // The cause names the parameter at fault (an unknown option, a bad port), not its value.
    let mut config: Config = rest
        .parse()
        .map_err(|e| anyhow::Error::new(e).context("DATABASE_URL is not a valid PostgreSQL URL"))?;
    let (mode, roots) = params.resolve()?;
    config.ssl_mode(mode.wire());
    let check = match (mode, roots) {
        (SslMode::VerifyFull, roots) => Check::full(roots),
        (SslMode::VerifyCa, roots) => Check::chain(roots),
        // libpq: with a root file, `require` (and `prefer`) check the chain too.
        (_, Roots::File(path)) => Check::chain(Roots::File(path)),
        _ => Check::nothing(),
    }?;
    let mut client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS settings")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(check))
        .with_no_client_auth();
    // What libpq sends, and what PostgreSQL 17 wants of a client that sends any.
    client.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(Target {
        config,
        mode,
        tls: MakeRustlsConnect::new(client),
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS parameters of a connection string, as written.
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsParams {
    mode: Option<String>,
    root_cert: Option<String>,
}

/// Where trusted certificates come from.
enum Roots {
    /// None given: the public CAs where a check needs roots.
    Default,
    /// `sslrootcert=system`.
    System,
    /// `sslrootcert=<path>`.
    File(String),
}

impl TlsParams {
    fn resolve(self) -> anyhow::Result<(SslMode, Roots)> {
        let roots = match self.root_cert.as_deref() {
            None | Some("") => Roots::Default,
            Some("system") => Roots::System,
            Some(path) => Roots::File(path.to_string()),
        };
        let mode = match (self.mode.as_deref(), &roots) {
            (Some(mode), _) => SslMode::parse(mode)?,
            (None, Roots::System) => SslMode::VerifyFull,
            (None, _) => SslMode::Prefer,
        };
        if matches!(roots, Roots::System) && mode != SslMode::VerifyFull {
            bail!("sslrootcert=system needs sslmode=verify-full (sslmode is {mode})");
        }
        Ok((mode, roots))
    }
}

/// Splits `sslmode` and `sslrootcert` off a connection string: returns the rest, still in its
/// own form, and their values (the last one of each, as libpq takes it).
fn take_tls_params(url: &str) -> anyhow::Result<(String, TlsParams)> {
    let mut params = TlsParams::default();
    let mut keep = |key: &str, value: String| match key {
        "sslmode" => {
            params.mode = Some(value);
            false
        }
        "sslrootcert" => {
            params.root_cert = Some(value);
            false
        }
        _ => true,
    };
    let rest = match ["postgresql://", "postgres://"]
        .iter()
        .find(|scheme| url.starts_with(*scheme))
    {
        Some(_) => filter_url(url, &mut keep)?,
        None => filter_key_values(url, &mut keep)?,
    };
    Ok((rest, params))
}

/// A URL without the query parameters that `keep` refuses.
fn filter_url(url: &str, keep: &mut impl FnMut(&str, String) -> bool) -> anyhow::Result<String> {
    // The query starts at the first `?` after the credentials, as `tokio-postgres` reads it.
    let after_credentials = url.find('@').map_or(0, |at| at + 1);
    let Some(start) = url[after_credentials..]
        .find('?')
        .map(|i| i + after_credentials)
    else {
        return Ok(url.to_string());
    };
    let mut kept = Vec::new();
    for pair in url[start + 1..].split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if keep(&decode(key)?, decode(value)?) {
            kept.push(pair);
        }
    }
    let base = &url[..start];
    Ok(if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    })
}

fn decode(text: &str) -> anyhow::Result<String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| anyhow!("DATABASE_URL has a parameter that is not valid UTF-8"))
}

/// A `key=value` string without the pairs that `keep` refuses. The kept values are written
/// back quoted, which reads the same.
fn filter_key_values(
    text: &str,
    keep: &mut impl FnMut(&str, String) -> bool,
) -> anyhow::Result<String> {
    let mut kept = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace() && *c != '=')).collect();
        if key.is_empty() {
            if chars.peek().is_some() {
                bail!("DATABASE_URL: a parameter has no name");
            }
            break;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            bail!("DATABASE_URL: parameter `{key}` has no `=`");
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let quoted = chars.next_if_eq(&'\'').is_some();
        let mut value = String::new();
        loop {
            match chars.peek().copied() {
                None if quoted => bail!("DATABASE_URL: parameter `{key}` has no closing quote"),
                Some('\'') if quoted => {
                    chars.next();
                    break;
                }
                Some(c) if !quoted && c.is_whitespace() => break,
                None => break,
                Some('\\') => {
                    chars.next();
                    value.extend(chars.next());
                }
                Some(c) => {
                    chars.next();
                    value.push(c);
                }
            }
        }
        if keep(&key, value.clone()) {
            let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
            kept.push(format!("{key}='{escaped}'"));
        }
    }
    Ok(kept.join(" "))
}

/// What is checked of the server's certificate.
#[derive(Debug)]
struct Check {
    /// The chain, against these roots; None: nothing (encryption without authentication).
    chain: Option<Arc<WebPkiServerVerifier>>,
    /// Whether the certificate must name the host.
    name: bool,
    /// The handshake's signatures are checked whatever the mode: they bind the session to
    /// the certificate's key.
    algorithms: WebPkiSupportedAlgorithms,
}

impl Check {
    fn nothing() -> anyhow::Result<Self> {
        Ok(Self {
            chain: None,
            name: false,
            algorithms: provider().signature_verification_algorithms,
        })
    }

    fn chain(roots: Roots) -> anyhow::Result<Self> {
        let store = Arc::new(root_store(roots)?);
        let verifier = WebPkiServerVerifier::builder_with_provider(store, provider())
            .build()
            .context("building the certificate check")?;
        Ok(Self {
            chain: Some(verifier),
            ..Self::nothing()?
        })
    }

    fn full(roots: Roots) -> anyhow::Result<Self> {
        Ok(Self {
            name: true,
            ..Self::chain(roots)?
        })
    }
}

fn root_store(roots: Roots) -> anyhow::Result<RootCertStore> {
    let path = match roots {
        Roots::Default | Roots::System => {
            return Ok(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
        }
        Roots::File(path) => path,
    };
    let mut store = RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(&path)
        .with_context(|| format!("cannot read sslrootcert {path}"))?;
    for certificate in certificates {
        let certificate =
            certificate.with_context(|| format!("sslrootcert {path} is not a PEM file"))?;
        store
            .add(certificate)
            .with_context(|| format!("sslrootcert {path} holds an unusable certificate"))?;
    }
    if store.is_empty() {
        bail!("sslrootcert {path} holds no certificate");
    }
    Ok(store)
}

impl ServerCertVerifier for Check {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // The name is checked after the chain: a name error means the chain is good.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, TlsParams) {
        take_tls_params(url).expect("a connection string")
    }

    #[test]
    fn the_tls_parameters_are_taken_out_of_a_url_and_the_others_kept() {
        let (rest, params) = split(
            "postgres://u:p%3F?@db.example:5432/app?application_name=x&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3",
        );
        assert_eq!(
            rest,
            "postgres://u:p%3F?@db.example:5432/app?application_name=x&connect_timeout=3"
        );
        assert_eq!(params.mode.as_deref(), Some("verify-full"));
        assert_eq!(params.root_cert.as_deref(), Some("/etc/ca.pem"));

        let (rest, params) = split("postgresql://u@h/db?sslmode=require");
        assert_eq!(rest, "postgresql://u@h/db");
        assert_eq!(params.mode.as_deref(), Some("require"));
        let (rest, params) = split("postgresql://u@h/db");
        assert_eq!(
            (rest.as_str(), params),
            ("postgresql://u@h/db", TlsParams::default())
        );
    }

    #[test]
    fn the_tls_parameters_are_taken_out_of_a_key_value_string() {
        let (rest, params) = split(
            "host=db.example  password='it\\'s' sslmode = verify-ca sslrootcert='/a b/ca.pem' \
             user=u\\ v",
        );
        assert_eq!(rest, "host='db.example' password='it\\'s' user='u v'");
        assert_eq!(params.mode.as_deref(), Some("verify-ca"));
        assert_eq!(params.root_cert.as_deref(), Some("/a b/ca.pem"));
        let (rest, _) = split(r"password='a\'b\\c'");
        let config: Config = rest.parse().expect("it reads back");
        assert_eq!(config.get_password(), Some(&b"a'b\\c"[..]));
        assert!(take_tls_params("host=h sslmode='require").is_err());
    }

    #[test]
    fn each_mode_tells_tokio_postgres_whether_to_insist_on_tls() {
        let mode = |url: &str| {
            let target = parse(url).expect("a valid URL");
            (target.mode, target.config.get_ssl_mode())
        };
        assert_eq!(
            mode("postgres://u@h/db"),
            (SslMode::Prefer, WireMode::Prefer)
        );
        assert_eq!(
            mode("postgres://u@h/db?sslmode=disable"),
            (SslMode::Disable, WireMode::Disable)
        );
        for (text, wanted) in [
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            let url = format!("postgres://u@h/db?sslmode={text}");
            assert_eq!(mode(&url), (wanted, WireMode::Require));
        }
        assert_eq!(
            mode("postgres://u@h/db?sslrootcert=system"),
            (SslMode::VerifyFull, WireMode::Require)
        );
    }

    #[test]
    fn a_bad_tls_parameter_is_named_without_the_password() {
        let error = |url: &str| match parse(url) {
            Ok(_) => panic!("accepted"),
            Err(e) => format!("{e:#}"),
        };
        let e = error("postgres://u:hunter2@h/db?sslmode=allow");
        assert!(
            e.contains("sslmode `allow`") && !e.contains("hunter2"),
            "{e}"
        );
        let e = error("postgres://u:hunter2@h/db?sslmode=require&sslrootcert=system");
        assert!(e.contains("needs sslmode=verify-full"), "{e}");
        let e = error("postgres://u:hunter2@h/db?sslmode=verify-full&sslrootcert=/nowhere.pem");
        assert!(e.contains("cannot read sslrootcert /nowhere.pem") && !e.contains("hunter2"));
        let e = error("postgres://u:hunter2@h/db?sslmode=require&sslcert=/client.pem");
        assert!(
            e.contains("unknown option `sslcert`") && !e.contains("hunter2"),
            "{e}"
        );
    }
}
