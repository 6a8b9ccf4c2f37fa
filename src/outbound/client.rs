//! The HTTP side of a webhook delivery: one shared client that never
//! follows redirects, ignores proxy variables, gives up after
//! [`DELIVERY_TIMEOUT`], and resolves names through [`GuardedResolver`], so
//! a name that points at a private address is refused at connection time
//! (no DNS rebinding between a check and the connect).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::webhook::{check_url, is_forbidden_address, signature_header};
use crate::service::webhooks::{Attempt, Message};

/// How long a receiver has to answer a delivery.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a URL check waits for its name to resolve before accepting it
/// (to be checked again at every delivery).
pub const CHECK_LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);
/// The most of an error text kept in the delivery log.
pub const ERROR_TEXT_MAX: usize = 500;
/// Sent as `user-agent`.
pub const USER_AGENT: &str = concat!("Leeway-Webhooks/", env!("CARGO_PKG_VERSION"));

/// Keeps the addresses a destination may be reached at: all of them, or an
/// error naming the first forbidden one (unless private ones are allowed).
/// A name that resolves to any forbidden address is refused whole, so a
/// record set mixing public and private addresses cannot be used.
pub fn admit_addresses(
    host: &str,
    addresses: Vec<SocketAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, String> {
    if addresses.is_empty() {
        return Err(format!("{host} resolves to no address"));
    }
    if !allow_private {
        if let Some(forbidden) = addresses
            .iter()
            .find(|address| is_forbidden_address(address.ip()))
        {
            return Err(format!(
                "{host} resolves to {}, a loopback, private, link-local or metadata address",
                forbidden.ip()
            ));
        }
    }
    Ok(addresses)
}

/// Resolves names with the system resolver and refuses forbidden addresses.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let admitted = admit_addresses(&host, found, allow_private)?;
            let addresses: Addrs = Box::new(admitted.into_iter());
            Ok(addresses)
        })
    }
}

/// Checks a URL's destination before it is stored: the text rules, then,
/// for a name, the addresses it resolves to now. A name that does not
/// resolve yet (or not within [`CHECK_LOOKUP_TIMEOUT`]) is accepted: every delivery resolves it again and refuses a
/// forbidden address then.
pub async fn check_destination(url: &str, allow_private: bool) -> Result<(), String> {
    let parsed = check_url(url, allow_private).map_err(|refusal| format!("url {refusal}"))?;
    if allow_private {
        return Ok(());
    }
    let Some(url::Host::Domain(host)) = parsed.host() else {
        return Ok(());
    };
    let port = parsed.port_or_known_default().unwrap_or(443);
    let lookup = tokio::net::lookup_host((host, port));
    let Ok(Ok(found)) = tokio::time::timeout(CHECK_LOOKUP_TIMEOUT, lookup).await else {
        return Ok(());
    };
    admit_addresses(host, found.collect(), false)
        .map(|_| ())
        .map_err(|reason| format!("url must not point at a private address: {reason}"))
}

/// Sends deliveries.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    /// The shared client.
    pub fn new(allow_private: bool) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(USER_AGENT)
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .build()
            .map_err(|error| format!("cannot build the webhook client: {error}"))?;
        Ok(Self {
            client,
            allow_private,
        })
    }

    /// POSTs `message` to `url`, signed with each of `secrets`, at `at`;
    /// never fails: whatever happens is the attempt's outcome.
    pub async fn send(
        &self,
        url: &str,
        message: &Message,
        secrets: &[String],
        at: NaiveDateTime,
    ) -> Attempt {
        let started = Instant::now();
        let (response_status, error) = match self.post(url, message, secrets, at).await {
            Ok(status) if (200..300).contains(&status) => (Some(status), None),
            Ok(status) => (
                Some(status),
                Some(format!("the endpoint answered {status}")),
            ),
            Err(error) => (None, Some(truncate(&error))),
        };
        Attempt {
            at,
            response_status,
            error,
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        }
    }

    async fn post(
        &self,
        url: &str,
        message: &Message,
        secrets: &[String],
        at: NaiveDateTime,
    ) -> Result<u16, String> {
        // The URL was checked when stored; checked again in case the
        // setting that allowed it has been turned off since.
        let parsed =
            check_url(url, self.allow_private).map_err(|refusal| format!("url {refusal}"))?;
        if let Some(ip) = literal_ip(&parsed) {
            if !self.allow_private && is_forbidden_address(ip) {
                return Err(format!("{ip} is a forbidden address"));
            }
        }
        let timestamp = at.and_utc().timestamp();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let signature = signature_header(&secrets, &message.id, timestamp, message.body.as_bytes())
            .map_err(|error| error.to_string())?;
        let response = self
            .client
            .post(parsed)
            .header("content-type", "application/json")
            .header("webhook-id", &message.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(message.body.clone())
            .send()
            .await
            .map_err(|error| describe(&error))?;
        Ok(response.status().as_u16())
    }
}

fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// A transport error with its causes, the way an operator needs to read it.
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        format!("no answer within {} s", DELIVERY_TIMEOUT.as_secs())
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn truncate(text: &str) -> String {
    text.chars().take(ERROR_TEXT_MAX).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(list: &[&str]) -> Vec<SocketAddr> {
        list.iter()
            .map(|ip| SocketAddr::new(ip.parse().unwrap(), 443))
            .collect()
    }

    #[test]
    fn a_name_with_any_forbidden_address_is_refused_whole() {
        assert!(admit_addresses("a", addresses(&["93.184.216.34"]), false).is_ok());
        let mixed = admit_addresses("a", addresses(&["93.184.216.34", "10.0.0.1"]), false);
        assert!(mixed.unwrap_err().contains("10.0.0.1"));
        assert!(admit_addresses("a", addresses(&["169.254.169.254"]), false).is_err());
        assert!(admit_addresses("a", addresses(&["127.0.0.1"]), true).is_ok());
        assert!(admit_addresses("a", Vec::new(), true).is_err());
    }

    #[actix_web::test]
    async fn destinations_are_checked_before_they_are_stored() {
        assert!(
            check_destination("https://127.0.0.1/", false)
                .await
                .is_err()
        );
        assert!(
            check_destination("https://localhost/", false)
                .await
                .is_err()
        );
        assert!(
            check_destination("http://example.com/", false)
                .await
                .is_err()
        );
        assert!(check_destination("http://127.0.0.1:9/", true).await.is_ok());
    }
}
