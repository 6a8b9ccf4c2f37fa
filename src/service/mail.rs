//! Mail to the people who must act: which events mail whom, what each mail
//! says, the daily digest, and each person's choice (`notify`). Mail is
//! queued from the event log in the transaction that advances the mail
//! cursor, so a crash never loses one; `outbound::mail` sends it.
//!
//! Who gets what:
//! - `spend.flagged`: the reviewer it is routed to (every admin when it
//!   is routed to the admins), and whoever holds that reviewer's queue by a
//!   delegation in force;
//! - `spend.escalated` / `spend.endorsed`: the next reviewer (and their
//!   delegates), the same way;
//! - `spend.approved_by_manager` / `spend.rejected`: who logged the spend;
//! - `problem.budget_threshold`: the problem's owner and its team's manager.
//!
//! Nobody is mailed about their own action, and only people whose `notify`
//! is `immediate` and who have an address get these mails; those on
//! `daily_digest` get one mail a day listing the reviews waiting for them.

use std::fmt::Write as _;

use chrono::{NaiveDateTime, TimeDelta};
use serde_json::Value;

use super::Error;
use crate::db::events::EventRow;
use crate::db::mail::{self, MailRow};
use crate::db::people::PersonRow;
use crate::db::spends::QueueScope;
use crate::db::{DbConnection, PageRequest, delegations, new_id, people, problems, spends, teams};
use crate::domain::access::{Caller, Role};
use crate::domain::event::EventKind;
use crate::domain::mail::Notify;
use crate::encoding::rfc3339;

/// The event kinds that may mail someone.
pub const MAILED_KINDS: [EventKind; 6] = [
    EventKind::SpendFlagged,
    EventKind::SpendEscalated,
    EventKind::SpendEndorsed,
    EventKind::SpendApprovedByManager,
    EventKind::SpendRejected,
    EventKind::ProblemBudgetThreshold,
];
/// Events turned into mail per transaction.
pub const PLAN_BATCH_MAX: i64 = 200;
/// Events older than this when they are first considered get no mail: a
/// server whose mail was off, or down for longer, does not flood people
/// with news of last month once it is on.
pub const MAIL_EVENT_AGE_MAX_DAYS: i64 = 7;
/// Digests composed per transaction.
pub const DIGEST_BATCH_MAX: i64 = 100;
/// Most admins mailed about a spend routed to the admins.
pub const ADMINS_MAILED_MAX: i64 = 20;
/// Reviews listed in one digest.
pub const DIGEST_REVIEWS_MAX: i64 = 50;

/// Sets what mail the caller gets. Anyone may choose for themself.
pub fn set_notify(
    connection: &mut DbConnection,
    caller: &Caller,
    notify: Notify,
    at: NaiveDateTime,
) -> Result<PersonRow, Error> {
    if !people::set_notify(connection, &caller.person_id, notify.as_str(), at)? {
        return Err(crate::db::Error::missing("person").into());
    }
    people::find(connection, &caller.person_id)?
        .ok_or_else(|| crate::db::Error::missing("person").into())
}

/// Turns the events after the mail cursor, up to `safe` (the safe
/// horizon), into queued mail, and advances the cursor, all in the caller's
/// write transaction. Returns how many events it considered.
pub fn plan(
    connection: &mut DbConnection,
    safe: i64,
    public_url: &str,
    at: NaiveDateTime,
) -> Result<usize, Error> {
    let after = mail::lock_cursor(connection)?;
    if after >= safe {
        return Ok(0);
    }
    let kinds: Vec<&str> = MAILED_KINDS.iter().map(|kind| kind.as_str()).collect();
    let events = mail::events_to_mail(connection, after, safe, &kinds, PLAN_BATCH_MAX)?;
    let too_old = at - TimeDelta::days(MAIL_EVENT_AGE_MAX_DAYS);
    for event in events.iter().filter(|event| event.occurred_at >= too_old) {
        queue_for_event(connection, event, public_url, at)?;
    }
    let full = usize::try_from(PLAN_BATCH_MAX).is_ok_and(|max| events.len() == max);
    let through = match events.last() {
        Some(last) if full => last
            .sequence
            .ok_or_else(|| Error::Internal("a sequenced event without a sequence".to_owned()))?,
        _ => safe,
    };
    mail::advance_cursor(connection, through)?;
    Ok(events.len())
}

/// What a spend event's mail needs to know.
struct SpendNews {
    spend: Value,
    problem_title: String,
    link: String,
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

fn money(value: &Value) -> String {
    format!("{} {}", text(&value["amount"]), text(&value["currency"]))
}

/// Queues the mails one event causes.
fn queue_for_event(
    connection: &mut DbConnection,
    event: &EventRow,
    public_url: &str,
    at: NaiveDateTime,
) -> Result<(), Error> {
    let kind = EventKind::parse(&event.kind)
        .ok_or_else(|| Error::Internal(format!("stored event kind {:?}", event.kind)))?;
    let data: Value = serde_json::from_str(&event.data)
        .map_err(|error| Error::Internal(format!("stored event data: {error}")))?;
    let mut recipients: Vec<(String, Option<String>)> = Vec::new();
    let (subject, body) = if kind == EventKind::ProblemBudgetThreshold {
        let problem = problems::find(connection, text(&data["problem_id"]))?
            .ok_or_else(|| crate::db::Error::missing("problem"))?;
        recipients.push((problem.owner_id.clone(), None));
        if let Some(manager_id) =
            teams::find(connection, &problem.team_id)?.and_then(|team| team.manager_id)
        {
            recipients.push((manager_id, None));
        }
        let link = format!("{public_url}/v1/problems/{}", problem.id);
        threshold_mail(&data, &problem.title, &link)
    } else {
        let problem = problems::find(connection, text(&data["problem_id"]))?
            .ok_or_else(|| crate::db::Error::missing("problem"))?;
        let news = SpendNews {
            link: format!("{public_url}/v1/spends/{}", text(&data["id"])),
            problem_title: problem.title,
            spend: data,
        };
        if matches!(
            kind,
            EventKind::SpendApprovedByManager | EventKind::SpendRejected
        ) {
            recipients.push((text(&news.spend["logged_by"]).to_owned(), None));
            decided_mail(kind, &news)
        } else {
            let reviewer_id = text(&news.spend["reviewer_id"]).to_owned();
            if reviewer_id.is_empty() {
                // Routed to the admins (no manager above): each of them.
                for admin_id in
                    people::ids_with_role(connection, Role::Admin.as_str(), ADMINS_MAILED_MAX)?
                {
                    recipients.push((admin_id, None));
                }
            } else {
                recipients.push((reviewer_id.clone(), None));
                for delegate_id in
                    delegations::active_delegates(connection, &reviewer_id, event.occurred_at)?
                {
                    recipients.push((delegate_id, Some(reviewer_id.clone())));
                }
            }
            review_mail(kind, &news)
        }
    };
    let mut mailed: Vec<String> = Vec::new();
    for (person_id, on_behalf_of) in recipients {
        if person_id.is_empty()
            || event.actor_id.as_deref() == Some(person_id.as_str())
            || mailed.contains(&person_id)
        {
            continue;
        }
        let Some(person) = people::find(connection, &person_id)? else {
            continue;
        };
        let (Some(address), Some(Notify::Immediate)) =
            (&person.email, Notify::parse(&person.notify))
        else {
            continue;
        };
        let mut body = body.clone();
        if let Some(reviewer_id) = on_behalf_of {
            let reviewer = people::find(connection, &reviewer_id)?
                .map_or_else(|| reviewer_id.clone(), |reviewer| reviewer.name);
            let _ = write!(
                body,
                "\nYou get this because you hold {reviewer}'s review queue by delegation.\n"
            );
        }
        let queued = Queued {
            person_id: &person.id,
            address,
            subject: subject.clone(),
            body,
            event_id: Some(&event.id),
        };
        queue(connection, queued, at)?;
        mailed.push(person.id);
    }
    Ok(())
}

/// A composed mail for one person.
struct Queued<'a> {
    person_id: &'a str,
    address: &'a str,
    subject: String,
    body: String,
    event_id: Option<&'a str>,
}

/// Puts a mail in the outbox, due at once.
fn queue(connection: &mut DbConnection, mail: Queued<'_>, at: NaiveDateTime) -> Result<(), Error> {
    mail::insert(
        connection,
        &MailRow {
            id: new_id(),
            person_id: mail.person_id.to_owned(),
            to_address: mail.address.to_owned(),
            subject: mail.subject,
            body: mail.body,
            event_id: mail.event_id.map(str::to_owned),
            created_at: at,
            attempts: 0,
            next_attempt_at: at,
            sent_at: None,
            last_error: None,
            lease_token: None,
            lease_expires_at: None,
        },
    )?;
    Ok(())
}

/// A spend that needs a reviewer: flagged to them, or moved up to them.
fn review_mail(kind: EventKind, news: &SpendNews) -> (String, String) {
    let spend = &news.spend;
    let amount = money(&spend["amount"]);
    let merchant = text(&spend["merchant"]);
    let (subject, why) = match kind {
        EventKind::SpendEscalated => (
            format!("Escalated to you: {amount} at {merchant}"),
            "Its review was overdue, so it moved up to you.".to_owned(),
        ),
        EventKind::SpendEndorsed => (
            format!("Escalated to you: {amount} at {merchant}"),
            "Its overrun is beyond the previous approver's authority, so it moved up to you."
                .to_owned(),
        ),
        _ => {
            let reasons: Vec<&str> = spend["flag_reasons"]
                .as_array()
                .map(|reasons| reasons.iter().map(text).collect())
                .unwrap_or_default();
            (
                format!("Review needed: {amount} at {merchant}"),
                format!("It was flagged: {}.", reasons.join(", ")),
            )
        }
    };
    let mut body = format!(
        "A spend of {amount} at {merchant} on the problem \"{}\" waits for your review.\n\
         {why}\n\nWhat for: {}\n",
        news.problem_title,
        text(&spend["description"]),
    );
    if !spend["overrun"].is_null() {
        let _ = writeln!(body, "Overrun: {}", money(&spend["overrun"]));
    }
    if let Some(due) = spend["review_due_at"].as_str() {
        let _ = writeln!(body, "Review due by: {due}");
    }
    let _ = write!(body, "\nDecide it: {}\n", news.link);
    (subject, body)
}

/// A decision, for whoever logged the spend.
fn decided_mail(kind: EventKind, news: &SpendNews) -> (String, String) {
    let spend = &news.spend;
    let amount = money(&spend["amount"]);
    let merchant = text(&spend["merchant"]);
    let decision = match kind {
        EventKind::SpendRejected => "rejected".to_owned(),
        _ if super::webhooks::approved_in_part(spend) => {
            format!("approved in part ({})", money(&spend["approved_amount"]))
        }
        _ => "approved".to_owned(),
    };
    let mut body = format!(
        "Your spend of {amount} at {merchant} on the problem \"{}\" was {decision}.\n",
        news.problem_title
    );
    if let Some(note) = spend["decision_note"].as_str() {
        let _ = writeln!(body, "Note: {note}");
    }
    let _ = write!(body, "\nSee it: {}\n", news.link);
    (
        format!("Your spend was {decision}: {amount} at {merchant}"),
        body,
    )
}

/// A budget threshold, for the owner and the team's manager.
fn threshold_mail(data: &Value, title: &str, link: &str) -> (String, String) {
    let percent = data["threshold_percent"].as_i64().unwrap_or_default();
    let subject = format!("Budget alert: \"{title}\" reached {percent}% of its limit");
    let body = format!(
        "The problem \"{title}\" has {} approved or waiting for review, \
         {percent}% or more of its limit of {}.\n\nSee it: {link}\n",
        money(&data["used"]),
        money(&data["limit"]),
    );
    (subject, body)
}

/// Queues today's digest for those who chose it and have not had it yet:
/// one mail listing the reviews waiting for them (theirs and those of
/// queues they hold by delegation); nobody with nothing waiting is mailed.
/// Returns how many people it considered.
pub fn queue_digests(
    connection: &mut DbConnection,
    public_url: &str,
    at: NaiveDateTime,
) -> Result<usize, Error> {
    let day = at.date().format("%Y-%m-%d").to_string();
    let due = mail::digest_due(connection, &day, DIGEST_BATCH_MAX)?;
    for person in &due {
        if !mail::record_digest(connection, &person.id, &day)? {
            continue;
        }
        let Some(address) = &person.email else {
            continue;
        };
        let mut reviewer_ids = delegations::active_delegators(connection, &person.id, at)?;
        reviewer_ids.push(person.id.clone());
        let scope = QueueScope {
            reviewer_ids: reviewer_ids.clone(),
            includes_admin_route: false,
            scope_team_ids: Vec::new(),
            everything: false,
        };
        let page = PageRequest {
            limit: DIGEST_REVIEWS_MAX,
            after: None,
        };
        let waiting: Vec<_> = spends::review_queue(connection, &scope, &page)?
            .items
            .into_iter()
            .filter(|spend| {
                spend
                    .reviewer_id
                    .as_ref()
                    .is_some_and(|id| reviewer_ids.contains(id))
            })
            .collect();
        if waiting.is_empty() {
            continue;
        }
        let mut body = format!("{} spends wait for your review:\n\n", waiting.len());
        for spend in &waiting {
            let amount =
                crate::service::ledger::MoneyV1::stored(spend.amount_minor, &spend.currency)?;
            let _ = writeln!(
                body,
                "- {} {} at {}, logged {}: {public_url}/v1/spends/{}",
                amount.amount,
                amount.currency,
                spend.merchant,
                rfc3339(spend.logged_at),
                spend.id
            );
        }
        let _ = write!(body, "\nYour queue: {public_url}/v1/reviews\n");
        let queued = Queued {
            person_id: &person.id,
            address,
            subject: format!(
                "Leeway digest: {} spends wait for your review",
                waiting.len()
            ),
            body,
            event_id: None,
        };
        queue(connection, queued, at)?;
    }
    Ok(due.len())
}
