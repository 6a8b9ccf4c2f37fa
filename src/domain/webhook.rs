//! The pure rules of webhooks (Standard Webhooks, standardwebhooks.com):
//! which event types exist and which stored event kinds they carry, the
//! signing secret's format and the `webhook-signature` header, the retry
//! schedule, and which destination addresses are refused (the SSRF guard).
//! No IO: the delivery loop in `outbound` does the sending.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{NaiveDateTime, TimeDelta};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::event::EventKind;

/// The prefix of every signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a signing secret.
pub const SECRET_BYTES: usize = 32;
/// How long a rotated-out secret keeps signing beside the new one.
pub const PREVIOUS_SECRET_HOURS: i64 = 24;
/// The delays before each retry of a failed delivery: about 5 s, 5 min,
/// 30 min, 2 h, 5 h, 10 h and 10 h. After the last the message is given up.
pub const RETRY_DELAYS_SECS: [u64; 7] = [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];
/// Each retry delay is moved by up to this fraction either way, so
/// endpoints that failed together do not all retry in the same second.
pub const RETRY_JITTER_FRACTION: f64 = 0.1;
/// An endpoint whose deliveries have failed for this long without one
/// success is disabled.
pub const FAILING_DAYS_BEFORE_DISABLE: i64 = 5;
/// The longest URL an endpoint may have.
pub const URL_LENGTH_MAX: usize = 2_048;

/// A kind of webhook message, with its one spelling (`spend.flagged`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WebhookEventType {
    /// A spend was approved on the spot.
    SpendApproved,
    /// A spend was flagged and routed to a reviewer.
    SpendFlagged,
    /// A reviewer decided a flagged spend: approved, in part, or rejected.
    SpendDecided,
    /// A flagged spend moved up to the next reviewer.
    SpendEscalated,
    /// A spend was voided.
    SpendVoided,
    /// A problem was opened.
    ProblemOpened,
    /// A problem was closed.
    ProblemClosed,
    /// A problem's limit got a new version.
    ProblemLimitChanged,
    /// A problem's approved + pending total first reached an alert
    /// threshold of its policy (`alert_thresholds_percent`).
    ProblemBudgetThreshold,
    /// A review queue was delegated.
    DelegationCreated,
    /// A delegation was revoked.
    DelegationRevoked,
    /// Sent on request (`POST /v1/webhooks/{id}/test`); never subscribed to.
    WebhookTest,
}

impl WebhookEventType {
    /// Every type an endpoint may subscribe to.
    pub const SUBSCRIBABLE: [Self; 11] = [
        Self::SpendApproved,
        Self::SpendFlagged,
        Self::SpendDecided,
        Self::SpendEscalated,
        Self::SpendVoided,
        Self::ProblemOpened,
        Self::ProblemClosed,
        Self::ProblemLimitChanged,
        Self::ProblemBudgetThreshold,
        Self::DelegationCreated,
        Self::DelegationRevoked,
    ];

    /// The spelling in `type` and in `event_types`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SpendApproved => "spend.approved",
            Self::SpendFlagged => "spend.flagged",
            Self::SpendDecided => "spend.decided",
            Self::SpendEscalated => "spend.escalated",
            Self::SpendVoided => "spend.voided",
            Self::ProblemOpened => "problem.opened",
            Self::ProblemClosed => "problem.closed",
            Self::ProblemLimitChanged => "problem.limit_changed",
            Self::ProblemBudgetThreshold => "problem.budget_threshold",
            Self::DelegationCreated => "delegation.created",
            Self::DelegationRevoked => "delegation.revoked",
            Self::WebhookTest => "webhook.test",
        }
    }

    /// Reads a subscribable type; `None` for anything else (`webhook.test`
    /// included: it is sent on request, not subscribed to).
    #[must_use]
    pub fn parse_subscribable(text: &str) -> Option<Self> {
        Self::SUBSCRIBABLE
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// The webhook type a stored event is delivered as, if any.
    #[must_use]
    pub fn of_event(kind: EventKind) -> Option<Self> {
        Some(match kind {
            EventKind::SpendApproved => Self::SpendApproved,
            EventKind::SpendFlagged => Self::SpendFlagged,
            EventKind::SpendApprovedByManager | EventKind::SpendRejected => Self::SpendDecided,
            EventKind::SpendEscalated | EventKind::SpendEndorsed => Self::SpendEscalated,
            EventKind::SpendVoided => Self::SpendVoided,
            EventKind::ProblemOpened => Self::ProblemOpened,
            EventKind::ProblemClosed => Self::ProblemClosed,
            EventKind::ProblemLimitChanged => Self::ProblemLimitChanged,
            EventKind::ProblemBudgetThreshold => Self::ProblemBudgetThreshold,
            EventKind::DelegationCreated => Self::DelegationCreated,
            EventKind::DelegationRevoked => Self::DelegationRevoked,
            EventKind::TeamCreated
            | EventKind::TeamUpdated
            | EventKind::PersonCreated
            | EventKind::PersonUpdated
            | EventKind::PolicyVersioned
            | EventKind::ProblemUpdated
            | EventKind::ProblemAcknowledged => return None,
        })
    }

    /// The stored event kinds delivered as this type.
    #[must_use]
    pub fn event_kinds(self) -> Vec<EventKind> {
        EventKind::ALL
            .into_iter()
            .filter(|kind| Self::of_event(*kind) == Some(self))
            .collect()
    }
}

/// Why a secret could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a webhook secret is `whsec_` followed by base64")]
pub struct MalformedSecret;

/// A new signing secret from `random` bytes: `whsec_` + base64.
#[must_use]
pub fn secret_from_bytes(random: &[u8; SECRET_BYTES]) -> String {
    format!("{SECRET_PREFIX}{}", BASE64.encode(random))
}

/// One signature, `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")),
/// where the key is the base64-decoded part of `secret` after `whsec_`.
pub fn sign(
    secret: &str,
    message_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> Result<String, MalformedSecret> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).ok_or(MalformedSecret)?;
    let key = BASE64.decode(encoded).map_err(|_| MalformedSecret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| MalformedSecret)?;
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

/// The `webhook-signature` header: one signature per secret, separated by
/// spaces (the current secret first, then a rotated-out one still valid).
pub fn signature_header(
    secrets: &[&str],
    message_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> Result<String, MalformedSecret> {
    let signatures = secrets
        .iter()
        .map(|secret| sign(secret, message_id, timestamp_secs, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(signatures.join(" "))
}

/// The wait before the next attempt after `attempts_failed` failures
/// (1 for the first), moved by `jitter` (from -1 to 1) times
/// [`RETRY_JITTER_FRACTION`]; `None` once the schedule is spent and the
/// message is given up.
#[must_use]
pub fn retry_delay(attempts_failed: u32, jitter: f64) -> Option<Duration> {
    let index = usize::try_from(attempts_failed.checked_sub(1)?).ok()?;
    let base = RETRY_DELAYS_SECS.get(index)?;
    let factor = 1.0 + jitter.clamp(-1.0, 1.0) * RETRY_JITTER_FRACTION;
    #[expect(
        clippy::cast_precision_loss,
        reason = "delays are at most 36,000 s, exact in an f64"
    )]
    let seconds = (*base as f64) * factor;
    Some(Duration::from_secs_f64(seconds))
}

/// Whether a delivery to `address` is refused unless private destinations
/// are allowed: loopback, private, shared (carrier NAT), link-local (the
/// cloud metadata address 169.254.169.254 among them), unique-local,
/// unspecified, broadcast, multicast and documentation ranges, and IPv6
/// forms that carry such an IPv4 address.
#[must_use]
pub fn is_forbidden_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(address: Ipv4Addr) -> bool {
    let [first, second, ..] = address.octets();
    address.is_loopback()
        || address.is_private()
        || address.is_link_local()
        || address.is_unspecified()
        || address.is_broadcast()
        || address.is_multicast()
        || address.is_documentation()
        // 0.0.0.0/8 ("this network"), 100.64.0.0/10 (carrier NAT, where some
        // clouds put their metadata service), 192.0.0.0/24 (protocol
        // assignments), 198.18.0.0/15 (benchmarking), 240.0.0.0/4 (reserved).
        || first == 0
        || (first == 100 && (64..128).contains(&second))
        || (first == 192 && second == 0 && address.octets()[2] == 0)
        || (first == 198 && (second == 18 || second == 19))
        || first >= 240
}

fn is_forbidden_v6(address: Ipv6Addr) -> bool {
    if let Some(v4) = address.to_ipv4_mapped() {
        return is_forbidden_v4(v4);
    }
    let segments = address.segments();
    // 64:ff9b::/96 (NAT64) carries an IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., high, low] = segments;
        let v4 = Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
        return is_forbidden_v4(v4);
    }
    address.is_loopback()
        || address.is_unspecified()
        || address.is_multicast()
        // fc00::/7 unique local (fd00:ec2::254 is a metadata address),
        // fe80::/10 link-local, 2001:db8::/32 documentation, and the
        // deprecated IPv4-compatible ::/96.
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] == 0x2001 && segments[1] == 0x0db8)
        || segments[..6] == [0, 0, 0, 0, 0, 0]
}

/// What an attempt came to, as the receiver answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// A 2xx answer: delivered.
    Delivered,
    /// 410 Gone: the receiver wants no more; the endpoint is disabled.
    Gone,
    /// Anything else: another status, a timeout, a refused connection.
    Failed,
}

/// A delivery attempt's outcome as logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Received with a 2xx.
    Delivered,
    /// Failed; another attempt is scheduled.
    Retrying,
    /// Failed, and no attempt follows: the schedule is spent, the endpoint
    /// answered 410, or the message was a test (tests are tried once).
    Failed,
}

impl Outcome {
    /// The stored spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
        }
    }

    /// Reads a stored spelling; `None` for anything else.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Delivered, Self::Retrying, Self::Failed]
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
    }
}

/// The state of an endpoint's queue head before an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadState {
    /// Failed attempts at the head message so far.
    pub attempts_failed: u32,
    /// When the current run of failures began.
    pub failing_since: Option<NaiveDateTime>,
}

/// What follows an attempt at the head event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// How the attempt is logged.
    pub outcome: Outcome,
    /// Whether the queue moves past the message (delivered or given up).
    pub advance: bool,
    /// The new head's state.
    pub head: HeadState,
    /// No attempt before this.
    pub next_attempt_at: NaiveDateTime,
    /// Why the endpoint is disabled now, if it is.
    pub disable: Option<&'static str>,
}

/// The rule after an attempt at `at`: a 2xx moves on and clears the run of
/// failures; a 410 disables the endpoint and keeps the message for when it
/// is enabled again; any other failure is retried on the schedule, and
/// given up (logged `failed`, the queue moves on) once it is spent. An
/// endpoint that has failed without a success for
/// [`FAILING_DAYS_BEFORE_DISABLE`] days is disabled. `jitter` is from -1 to 1.
#[must_use]
pub fn judge_attempt(
    head: HeadState,
    result: AttemptResult,
    at: NaiveDateTime,
    jitter: f64,
) -> Verdict {
    let failing_since = head.failing_since.unwrap_or(at);
    let failed_head = HeadState {
        attempts_failed: head.attempts_failed.saturating_add(1),
        failing_since: Some(failing_since),
    };
    match result {
        AttemptResult::Delivered => Verdict {
            outcome: Outcome::Delivered,
            advance: true,
            head: HeadState {
                attempts_failed: 0,
                failing_since: None,
            },
            next_attempt_at: at,
            disable: None,
        },
        AttemptResult::Gone => Verdict {
            outcome: Outcome::Failed,
            advance: false,
            head: failed_head,
            next_attempt_at: at,
            disable: Some("the endpoint answered 410 Gone"),
        },
        AttemptResult::Failed => {
            let disable = (at - failing_since >= TimeDelta::days(FAILING_DAYS_BEFORE_DISABLE))
                .then_some("deliveries failed for 5 days in a row");
            match retry_delay(failed_head.attempts_failed, jitter) {
                Some(delay) => Verdict {
                    outcome: Outcome::Retrying,
                    advance: false,
                    head: failed_head,
                    next_attempt_at: TimeDelta::from_std(delay)
                        .ok()
                        .and_then(|delay| at.checked_add_signed(delay))
                        .unwrap_or(at),
                    disable,
                },
                None => Verdict {
                    outcome: Outcome::Failed,
                    advance: true,
                    head: HeadState {
                        attempts_failed: 0,
                        failing_since: Some(failing_since),
                    },
                    next_attempt_at: at,
                    disable,
                },
            }
        }
    }
}

/// Why an endpoint URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    /// Not a URL at all.
    #[error("is not a valid URL")]
    Malformed,
    /// Longer than [`URL_LENGTH_MAX`].
    #[error("is longer than {URL_LENGTH_MAX} characters")]
    TooLong,
    /// Not `https` (or `http` where private destinations are allowed).
    #[error("must be an https URL")]
    NotHttps,
    /// Carries a user name or password, which would be stored and shown.
    #[error("must not carry a user name or password")]
    HasCredentials,
    /// Has no host.
    #[error("must name a host")]
    NoHost,
    /// Names a loopback, private, link-local or metadata address.
    #[error("must not point at a loopback, private, link-local or metadata address")]
    ForbiddenAddress,
}

/// Checks an endpoint URL by its text alone: https (or http where private
/// destinations are allowed), no credentials, a host, and no forbidden IP
/// literal. Names are checked again where they resolve (`outbound`).
pub fn check_url(text: &str, allow_private: bool) -> Result<url::Url, UrlRefusal> {
    if text.len() > URL_LENGTH_MAX {
        return Err(UrlRefusal::TooLong);
    }
    let parsed = url::Url::parse(text).map_err(|_| UrlRefusal::Malformed)?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(UrlRefusal::NotHttps),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlRefusal::HasCredentials);
    }
    let forbidden = match parsed.host() {
        None => return Err(UrlRefusal::NoHost),
        Some(url::Host::Ipv4(v4)) => is_forbidden_v4(v4),
        Some(url::Host::Ipv6(v6)) => is_forbidden_v6(v6),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    if forbidden && !allow_private {
        return Err(UrlRefusal::ForbiddenAddress);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_one_spelling_and_every_delivered_kind_maps_once() {
        let mut spellings: Vec<&str> = WebhookEventType::SUBSCRIBABLE
            .iter()
            .map(|kind| kind.as_str())
            .collect();
        spellings.sort_unstable();
        spellings.dedup();
        assert_eq!(spellings.len(), WebhookEventType::SUBSCRIBABLE.len());
        for kind in WebhookEventType::SUBSCRIBABLE {
            assert_eq!(
                WebhookEventType::parse_subscribable(kind.as_str()),
                Some(kind)
            );
            assert!(!kind.event_kinds().is_empty(), "{kind:?} carries nothing");
        }
        assert_eq!(WebhookEventType::parse_subscribable("webhook.test"), None);
        assert_eq!(
            WebhookEventType::SpendDecided.event_kinds(),
            [EventKind::SpendApprovedByManager, EventKind::SpendRejected]
        );
    }

    /// The example of the Standard Webhooks specification, whose libraries
    /// sign it to exactly this.
    #[test]
    fn signs_the_specification_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn the_header_carries_a_signature_per_secret() {
        let first = secret_from_bytes(&[1; SECRET_BYTES]);
        let second = secret_from_bytes(&[2; SECRET_BYTES]);
        let header = signature_header(&[&first, &second], "m", 1, b"{}").unwrap();
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], sign(&first, "m", 1, b"{}").unwrap());
        assert_eq!(parts[1], sign(&second, "m", 1, b"{}").unwrap());
        assert_ne!(parts[0], parts[1]);
        assert_eq!(sign("nope", "m", 1, b"{}"), Err(MalformedSecret));
        assert!(first.starts_with("whsec_") && first.len() == 6 + 44);
    }

    #[test]
    fn retries_follow_the_schedule_within_the_jitter_then_stop() {
        assert_eq!(retry_delay(0, 0.0), None);
        assert_eq!(retry_delay(1, 0.0), Some(Duration::from_secs(5)));
        assert_eq!(retry_delay(2, 0.0), Some(Duration::from_secs(300)));
        assert_eq!(retry_delay(7, 0.0), Some(Duration::from_secs(36_000)));
        assert_eq!(retry_delay(8, 0.0), None);
        assert_eq!(retry_delay(1, 1.0), Some(Duration::from_millis(5_500)));
        assert_eq!(retry_delay(1, -5.0), Some(Duration::from_millis(4_500)));
    }

    fn at(hours: i64) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            + TimeDelta::hours(hours)
    }

    #[test]
    fn a_failure_is_retried_on_the_schedule_then_given_up() {
        let mut head = HeadState {
            attempts_failed: 0,
            failing_since: None,
        };
        for (attempt, delay) in RETRY_DELAYS_SECS.iter().enumerate() {
            let verdict = judge_attempt(head, AttemptResult::Failed, at(0), 0.0);
            assert_eq!(verdict.outcome, Outcome::Retrying, "attempt {attempt}");
            assert!(!verdict.advance);
            assert_eq!(
                verdict.next_attempt_at,
                at(0) + TimeDelta::seconds(i64::try_from(*delay).unwrap())
            );
            assert_eq!(verdict.head.failing_since, Some(at(0)));
            head = verdict.head;
        }
        let last = judge_attempt(head, AttemptResult::Failed, at(1), 0.0);
        assert_eq!(last.outcome, Outcome::Failed);
        assert!(last.advance, "a spent schedule gives the message up");
        assert_eq!(last.head.attempts_failed, 0);
        assert_eq!(last.head.failing_since, Some(at(0)), "the run goes on");
        assert_eq!(last.disable, None);
    }

    #[test]
    fn success_clears_the_run_and_gone_or_five_failing_days_disable() {
        let failing = HeadState {
            attempts_failed: 3,
            failing_since: Some(at(0)),
        };
        let delivered = judge_attempt(failing, AttemptResult::Delivered, at(2), 0.0);
        assert_eq!(delivered.outcome, Outcome::Delivered);
        assert!(delivered.advance);
        assert_eq!(delivered.head.failing_since, None);
        let gone = judge_attempt(failing, AttemptResult::Gone, at(2), 0.0);
        assert!(gone.disable.is_some() && !gone.advance);
        let day_four = judge_attempt(failing, AttemptResult::Failed, at(4 * 24), 0.0);
        assert_eq!(day_four.disable, None);
        let day_five = judge_attempt(failing, AttemptResult::Failed, at(5 * 24), 0.0);
        assert!(day_five.disable.is_some());
    }

    #[test]
    fn private_and_metadata_addresses_are_forbidden_public_ones_are_not() {
        for forbidden in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            let address: IpAddr = forbidden.parse().unwrap();
            assert!(is_forbidden_address(address), "{forbidden} is allowed");
        }
        for allowed in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let address: IpAddr = allowed.parse().unwrap();
            assert!(!is_forbidden_address(address), "{allowed} is forbidden");
        }
    }

    #[test]
    fn urls_must_be_https_without_credentials_or_private_literals() {
        assert!(check_url("https://hooks.example.com/leeway", false).is_ok());
        assert_eq!(
            check_url("http://hooks.example.com/", false),
            Err(UrlRefusal::NotHttps)
        );
        assert_eq!(
            check_url("ftp://hooks.example.com/", true),
            Err(UrlRefusal::NotHttps)
        );
        assert_eq!(
            check_url("https://user:pw@hooks.example.com/", false),
            Err(UrlRefusal::HasCredentials)
        );
        assert_eq!(check_url("not a url", false), Err(UrlRefusal::Malformed));
        for private in [
            "https://127.0.0.1/",
            "https://[::1]:8443/",
            "https://169.254.169.254/latest/meta-data",
            "https://localhost/",
            "https://api.localhost./",
            "https://10.0.0.8/",
        ] {
            assert_eq!(
                check_url(private, false),
                Err(UrlRefusal::ForbiddenAddress),
                "{private}"
            );
            assert!(check_url(private, true).is_ok(), "{private}");
        }
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        let long = format!("https://example.com/{}", "a".repeat(URL_LENGTH_MAX));
        assert_eq!(check_url(&long, false), Err(UrlRefusal::TooLong));
    }
}
