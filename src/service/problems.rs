//! Problems: opening one with its owner, team and pinned limit; changing its
//! details and (as a new version) its limit; the owner's acknowledgement of
//! the success criteria; closing; and the reads, each limited to what the
//! caller may see.

use chrono::NaiveDateTime;

use super::ledger::{BudgetThresholdV1, LimitChangeV1, MoneyV1, ProblemV1, stored_currency};
use super::{Error, Refusal};
use crate::db::audit;
use crate::db::cursor::VersionCursor;
use crate::db::events::Subject;
use crate::db::limit_changes::{self, LimitChangeRow};
use crate::db::policies::PolicyRow;
use crate::db::problems::{self, BudgetUse, NewLimit, ProblemFilter, ProblemRow, Visibility};
use crate::db::{self, DbConnection, Page, PageRequest, new_id, people, policies, teams};
use crate::domain::access::{Caller, ProblemRef, Role};
use crate::domain::event::EventKind;
use crate::domain::ids::{PersonId, ProblemId, Reference, TeamId};
use crate::domain::limit::{Totals, thresholds_crossed};
use crate::domain::money::Money;
use crate::domain::review::authority_covers;
use crate::domain::status::ProblemStatus;

/// A checked `POST /v1/problems`: who owns it (default: the caller), in
/// which team (default: the owner's), and an explicit limit (managers only;
/// default: the policy's).
#[derive(Debug)]
pub struct OpenProblem {
    /// The team, if named.
    pub team_id: Option<Reference<TeamId>>,
    /// The owner, if not the caller.
    pub owner_id: Option<Reference<PersonId>>,
    /// What the problem is.
    pub title: String,
    /// The written definition of success.
    pub success_criteria: String,
    /// An explicit budget instead of the policy's.
    pub limit: Option<Money>,
}

/// A checked `PATCH /v1/problems/{id}`: only what is given changes.
#[derive(Debug)]
pub struct UpdateProblem {
    /// A new title.
    pub title: Option<String>,
    /// New success criteria.
    pub success_criteria: Option<String>,
    /// A new limit with the reason for it.
    pub limit: Option<(Money, String)>,
}

/// The running totals of a stored problem.
#[must_use]
pub fn totals(row: &ProblemRow) -> Totals {
    Totals {
        limit_minor: row.limit_minor,
        approved_minor: row.approved_minor,
        pending_review_minor: row.pending_review_minor,
    }
}

/// The access-rule view of a stored problem.
#[must_use]
pub fn problem_ref(row: &ProblemRow) -> ProblemRef<'_> {
    ProblemRef {
        team_id: &row.team_id,
        owner_id: &row.owner_id,
    }
}

/// Whether a stored problem is open.
#[must_use]
pub fn is_open(row: &ProblemRow) -> bool {
    ProblemStatus::parse(&row.status) == Some(ProblemStatus::Open)
}

/// Loads a problem the caller may see; anything else is not found.
pub fn find_visible(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &str,
) -> Result<ProblemRow, Error> {
    problems::find(connection, id)?
        .filter(|problem| caller.may_read_problem(problem_ref(problem)))
        .ok_or(Error::NotFound("problem"))
}

/// [`find_visible`] with the policy version pinned on the problem, read in
/// the same query: one round trip fewer on the spend path.
pub fn find_visible_with_policy(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &str,
) -> Result<(ProblemRow, Option<PolicyRow>), Error> {
    problems::find_with_policy(connection, id)?
        .filter(|(problem, _)| caller.may_read_problem(problem_ref(problem)))
        .ok_or(Error::NotFound("problem"))
}

/// Reloads a problem this transaction just changed: missing is a bug.
pub fn reload(connection: &mut DbConnection, id: &str) -> Result<ProblemRow, Error> {
    Ok(problems::find(connection, id)?.ok_or_else(|| db::Error::missing("problem"))?)
}

/// Which problems (and so spends) the caller may list.
#[must_use]
pub fn visibility(caller: &Caller) -> Visibility {
    if caller.reads_everything() {
        Visibility::All
    } else {
        Visibility::OwnedOrInTeams {
            person_id: caller.person_id.clone(),
            team_ids: caller.scope_team_ids.iter().cloned().collect(),
        }
    }
}

/// One page of the problems the caller may see.
pub fn list(
    connection: &mut DbConnection,
    caller: &Caller,
    filter: &ProblemFilter,
    page: &PageRequest,
) -> Result<Page<ProblemRow>, Error> {
    Ok(problems::list(
        connection,
        &visibility(caller),
        filter,
        page,
    )?)
}

/// Opens a problem: who owns it, in which team, and the limit pinned from
/// the policy in force (or set explicitly by a manager).
pub fn open(
    connection: &mut DbConnection,
    caller: &Caller,
    command: OpenProblem,
    at: NaiveDateTime,
) -> Result<ProblemRow, Error> {
    let (owner_id, owner_team_id) = owner(connection, caller, command.owner_id.as_ref())?;
    let team_id = problem_team(connection, command.team_id, owner_team_id.as_deref())?;
    if !caller.may_open_problem(&team_id, &owner_id, owner_team_id.as_deref()) {
        return Err(Error::Forbidden(
            "members open problems for themselves in their own team; managers in the teams they manage".to_owned(),
        ));
    }
    let chain = teams::chain_upwards(connection, &team_id)?;
    let policy = policies::effective(connection, &chain)?;
    let limit = opening_limit(caller, &team_id, command.limit, policy.as_ref())?;
    let (policy_team_id, policy_version) = policy
        .as_ref()
        .map(|policy| (policy.team_id.clone(), policy.version))
        .unzip();
    let problem = ProblemRow {
        id: new_id(),
        team_id,
        owner_id,
        title: command.title,
        success_criteria: command.success_criteria,
        status: ProblemStatus::Open.as_str().to_owned(),
        currency: limit.currency().code().to_owned(),
        limit_minor: limit.minor(),
        approved_minor: 0,
        pending_review_minor: 0,
        policy_team_id,
        policy_version,
        opened_by: caller.person_id.clone(),
        opened_at: at,
        closed_at: None,
        updated_at: at,
        limit_version: 1,
        criteria_version: 1,
        acknowledged_version: None,
        acknowledged_at: None,
        require_acknowledgement: policy
            .as_ref()
            .is_some_and(|policy| policy.require_acknowledgement),
    };
    problems::insert(connection, &problem)?;
    limit_changes::insert(connection, &first_limit(&problem))?;
    record(connection, caller, EventKind::ProblemOpened, &problem, at)?;
    Ok(problem)
}

/// The team a new problem opens in: the one named, else the owner's; it
/// must exist.
fn problem_team(
    connection: &mut DbConnection,
    named: Option<Reference<TeamId>>,
    owner_team_id: Option<&str>,
) -> Result<String, Error> {
    let unknown = || Error::UnknownReference {
        field: "team_id",
        names: "team",
    };
    let team_id = match named {
        Some(Reference::Id(id)) => id.as_str().to_owned(),
        // A malformed team id names no team, as an unknown one does.
        Some(Reference::Malformed) => return Err(unknown()),
        None => owner_team_id.map(str::to_owned).ok_or_else(|| {
            Error::field(
                "team_id",
                "required",
                "the owner belongs to no team: give team_id",
            )
        })?,
    };
    if teams::find(connection, &team_id)?.is_none() {
        return Err(unknown());
    }
    Ok(team_id)
}

/// The limit a new problem opens with: an explicit one (a manager of the
/// team only, in the policy's currency when a policy is in force), else the
/// policy's per-problem limit; with neither, the team has no policy.
fn opening_limit(
    caller: &Caller,
    team_id: &str,
    explicit: Option<Money>,
    policy: Option<&PolicyRow>,
) -> Result<Money, Error> {
    match (explicit, policy) {
        (Some(limit), _) if !caller.manages_team(team_id) => Err(Error::Forbidden(format!(
            "only a manager of the team can set a problem's limit (asked {limit})"
        ))),
        (Some(limit), Some(policy)) => limit
            .require_currency(stored_currency(&policy.currency)?)
            .map_err(|error| Error::money("limit", &error)),
        (Some(limit), None) => Ok(limit),
        (None, Some(policy)) => Ok(Money::from_minor(
            policy.per_problem_limit_minor,
            stored_currency(&policy.currency)?,
        )),
        (None, None) => Err(Refusal::NoPolicy.into()),
    }
}

/// The owner of a new problem (id and team): the caller unless another
/// person is named, who must be a member or manager the caller may see.
fn owner(
    connection: &mut DbConnection,
    caller: &Caller,
    owner_id: Option<&Reference<PersonId>>,
) -> Result<(String, Option<String>), Error> {
    let unknown = || Error::UnknownReference {
        field: "owner_id",
        names: "person",
    };
    let owner_id = match owner_id {
        None => caller.person_id.as_str(),
        Some(Reference::Id(id)) => id.as_str(),
        Some(Reference::Malformed) => return Err(unknown()),
    };
    let owner = people::find(connection, owner_id)?
        .filter(|owner| caller.may_see_person(&owner.id, owner.team_id.as_deref()))
        .ok_or_else(unknown)?;
    let owns_problems = matches!(owner.role.parse(), Ok(Role::Member | Role::Manager));
    if !owns_problems && owner.id == caller.person_id {
        return Err(Error::Forbidden(
            "finance and admins own no problems: name a member or manager as owner_id".to_owned(),
        ));
    }
    if !owns_problems {
        return Err(Error::field(
            "owner_id",
            "invalid_owner",
            "a problem's owner must be a member or a manager",
        ));
    }
    Ok((owner.id, owner.team_id))
}

/// Version 1 of a new problem's limit history: the limit it opened with.
fn first_limit(problem: &ProblemRow) -> LimitChangeRow {
    LimitChangeRow {
        problem_id: problem.id.clone(),
        version: 1,
        limit_minor: problem.limit_minor,
        previous_limit_minor: None,
        policy_team_id: problem.policy_team_id.clone(),
        policy_version: problem.policy_version,
        changed_by: problem.opened_by.clone(),
        changed_at: problem.opened_at,
        reason: None,
    }
}

/// What the problem's events are about.
/// Announces each alert threshold of `policy` (`alert_thresholds_percent`,
/// default 80% and 100%) that the problem's approved + pending total
/// crossed going from `before_minor` to `after`, the first time only under
/// this limit version: a `problem.budget_threshold` event each, by the
/// server (no actor), for webhooks and mail to pick up.
pub fn announce_budget_thresholds(
    connection: &mut DbConnection,
    problem: &ProblemRow,
    policy: Option<&PolicyRow>,
    before_minor: i64,
    after: BudgetUse,
    spend_id: Option<&str>,
    at: NaiveDateTime,
) -> Result<(), Error> {
    let thresholds = super::policies::alert_thresholds(policy)?;
    let crossed = thresholds_crossed(
        before_minor,
        after.used_minor,
        after.limit_minor,
        &thresholds,
    );
    for threshold_percent in crossed {
        let first = problems::record_budget_alert(
            connection,
            &problem.id,
            after.limit_version,
            threshold_percent,
            at,
        )?;
        if !first {
            continue;
        }
        let payload = BudgetThresholdV1 {
            problem_id: problem.id.clone(),
            threshold_percent,
            limit_version: after.limit_version,
            limit: MoneyV1::stored(after.limit_minor, &problem.currency)?,
            used: MoneyV1::stored(after.used_minor, &problem.currency)?,
            spend_id: spend_id.map(str::to_owned),
        };
        audit::append(
            connection,
            None,
            EventKind::ProblemBudgetThreshold,
            subject(problem),
            &payload,
            at,
        )?;
    }
    Ok(())
}

fn subject(problem: &ProblemRow) -> Subject<'_> {
    Subject {
        subject_type: "problem",
        subject_id: &problem.id,
        team_id: Some(&problem.team_id),
        problem_id: Some(&problem.id),
    }
}

/// Writes the problem's event: the problem as it now stands.
fn record(
    connection: &mut DbConnection,
    caller: &Caller,
    kind: EventKind,
    problem: &ProblemRow,
    at: NaiveDateTime,
) -> Result<(), Error> {
    let payload = ProblemV1::from_row(problem)?;
    audit::append(
        connection,
        Some(&caller.person_id),
        kind,
        subject(problem),
        &payload,
        at,
    )?;
    Ok(())
}

/// Changes title and success criteria (owner or manager) and the limit
/// (manager; never below what is already approved). A closed problem is a
/// settled record: it refuses every change.
pub fn update(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &ProblemId,
    command: UpdateProblem,
    at: NaiveDateTime,
) -> Result<ProblemRow, Error> {
    let id = id.as_str();
    let mut problem = find_visible(connection, caller, id)?;
    if !caller.may_edit_problem(problem_ref(&problem)) {
        return Err(Error::Forbidden(
            "only the owner or a manager of the team can change a problem".to_owned(),
        ));
    }
    if !is_open(&problem) {
        return Err(Refusal::ProblemClosed.into());
    }
    if command.title.is_some() || command.success_criteria.is_some() {
        let criteria_changed = command
            .success_criteria
            .as_ref()
            .is_some_and(|criteria| *criteria != problem.success_criteria);
        if criteria_changed
            && problem.require_acknowledgement
            && !caller.manages_team(&problem.team_id)
        {
            return Err(Error::Forbidden(
                "the owner acknowledges the success criteria; a manager of the team sets them"
                    .to_owned(),
            ));
        }
        problem.title = command.title.unwrap_or(problem.title);
        problem.success_criteria = command.success_criteria.unwrap_or(problem.success_criteria);
        problem.updated_at = at;
        problems::update_details(connection, &problem, criteria_changed)?;
    }
    if let Some((limit, reason)) = &command.limit {
        change_limit(connection, caller, &problem, *limit, reason, at)?;
    }
    let problem = reload(connection, id)?;
    record(connection, caller, EventKind::ProblemUpdated, &problem, at)?;
    Ok(problem)
}

/// Changes a problem's limit as a new version with who, when and why, and
/// re-pins the policy version in force now: spends from here on are judged
/// by it. Never below what is already approved. Used by `PATCH` and by a
/// reviewer approving with `new_limit`.
pub fn change_limit(
    connection: &mut DbConnection,
    caller: &Caller,
    problem: &ProblemRow,
    limit: Money,
    reason: &str,
    at: NaiveDateTime,
) -> Result<(), Error> {
    if !is_open(problem) {
        return Err(Refusal::ProblemClosed.into());
    }
    let limit = authorised_limit(connection, caller, problem, limit)?;
    let new = NewLimit {
        limit_minor: limit.minor(),
        from_version: problem.limit_version,
        policy: None,
        require_acknowledgement: false,
        at,
    };
    let new = repinned(connection, problem, new)?;
    if !problems::set_limit(connection, &problem.id, &new)? {
        let current = reload(connection, &problem.id)?;
        if current.limit_version != problem.limit_version {
            return Err(Error::conflict(
                "the limit changed concurrently: read the problem and retry",
            ));
        }
        let approved =
            Money::from_minor(current.approved_minor, stored_currency(&current.currency)?);
        return Err(Refusal::LimitBelowApproved(approved.to_string()).into());
    }
    let change = LimitChangeRow {
        problem_id: problem.id.clone(),
        version: problem.limit_version + 1,
        limit_minor: limit.minor(),
        previous_limit_minor: Some(problem.limit_minor),
        policy_team_id: new.policy.as_ref().map(|(team_id, _)| team_id.clone()),
        policy_version: new.policy.as_ref().map(|(_, version)| *version),
        changed_by: caller.person_id.clone(),
        changed_at: at,
        reason: Some(reason.to_owned()),
    };
    limit_changes::insert(connection, &change)?;
    let problem = reload(connection, &problem.id)?;
    let payload = LimitChangeV1::from_row(&change, &problem.currency)?;
    audit::append(
        connection,
        Some(&caller.person_id),
        EventKind::ProblemLimitChanged,
        subject(&problem),
        &payload,
        at,
    )?;
    // A new limit version starts its alerts afresh: every threshold the
    // total already stands at under the new limit is announced.
    let policy =
        problems::find_with_policy(connection, &problem.id)?.and_then(|(_, policy)| policy);
    let used = BudgetUse::of(&problem);
    announce_budget_thresholds(connection, &problem, policy.as_ref(), 0, used, None, at)
}

/// Checks the caller may set this limit: a manager of the team, not the
/// owner, in the problem's currency, and a raise within their authority.
fn authorised_limit(
    connection: &mut DbConnection,
    caller: &Caller,
    problem: &ProblemRow,
    limit: Money,
) -> Result<Money, Error> {
    if !caller.may_set_problem_limit(problem_ref(problem)) {
        return Err(Error::Forbidden(
            "only a manager of the team can change a problem's limit".to_owned(),
        ));
    }
    if problem.owner_id == caller.person_id {
        return Err(Error::Forbidden(
            "nobody sets the budget of a problem they own: a manager above does".to_owned(),
        ));
    }
    let limit = limit
        .require_currency(stored_currency(&problem.currency)?)
        .map_err(|error| Error::money("limit", &error))?;
    let raise_minor = limit.minor().saturating_sub(problem.limit_minor);
    if !authority_covers(
        limit_authority(connection, caller, &problem.team_id)?,
        raise_minor,
    ) {
        return Err(Error::Forbidden(
            "raising this limit by more than your approval_limit needs a manager above".to_owned(),
        ));
    }
    Ok(limit)
}

/// The policy a new limit pins: the one in force now, unless it is in
/// another currency and so cannot judge this problem's spends (then the
/// pin it had stays).
fn repinned(
    connection: &mut DbConnection,
    problem: &ProblemRow,
    mut new: NewLimit,
) -> Result<NewLimit, Error> {
    let chain = teams::chain_upwards(connection, &problem.team_id)?;
    let pinned = match policies::effective(connection, &chain)? {
        Some(policy) if policy.currency == problem.currency => Some((
            policy.team_id,
            policy.version,
            policy.require_acknowledgement,
        )),
        _ => problem
            .policy_team_id
            .clone()
            .zip(problem.policy_version)
            .map(|(team_id, version)| (team_id, version, problem.require_acknowledgement)),
    };
    new.policy = pinned
        .as_ref()
        .map(|(team_id, version, _)| (team_id.clone(), *version));
    new.require_acknowledgement = pinned.as_ref().is_some_and(|(_, _, required)| *required);
    Ok(new)
}

/// How far the caller may raise a limit on its own: the `approval_limit`
/// of the policy in force for the nearest team on the problem's chain that
/// the caller manages (`None`: no cap). Raising a budget approves spending
/// in advance, so it takes the same authority as approving an overrun.
fn limit_authority(
    connection: &mut DbConnection,
    caller: &Caller,
    team_id: &str,
) -> Result<Option<i64>, Error> {
    let chain = teams::chain_with_managers(connection, team_id)?;
    let Some(managed) = chain
        .iter()
        .find(|node| node.manager_id.as_deref() == Some(caller.person_id.as_str()))
    else {
        return Ok(Some(0));
    };
    let above = teams::chain_upwards(connection, &managed.team_id)?;
    Ok(policies::effective(connection, &above)?.and_then(|policy| policy.approval_limit_minor))
}

/// One page of a visible problem's limit versions, oldest first, with the
/// problem's currency to render them in.
pub fn limit_changes(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &ProblemId,
    page: &PageRequest<VersionCursor>,
) -> Result<(Page<LimitChangeRow, VersionCursor>, String), Error> {
    let id = id.as_str();
    let problem = find_visible(connection, caller, id)?;
    Ok((limit_changes::list(connection, id, page)?, problem.currency))
}

/// The owner confirms they read and accept the current success criteria
/// (alignment before autonomy), naming the version they read.
pub fn acknowledge(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &ProblemId,
    criteria_version: i32,
    at: NaiveDateTime,
) -> Result<ProblemRow, Error> {
    let id = id.as_str();
    let problem = find_visible(connection, caller, id)?;
    if problem.owner_id != caller.person_id {
        return Err(Error::Forbidden(
            "only the problem's owner can acknowledge its success criteria".to_owned(),
        ));
    }
    if !is_open(&problem) {
        return Err(Refusal::ProblemClosed.into());
    }
    if !problems::acknowledge(connection, id, criteria_version, at)? {
        // Optimistic concurrency: the criteria changed since the owner read
        // them, so this acknowledgement is of old text.
        return Err(Error::conflict(format!(
            "the success criteria are at version {}: read them and acknowledge that version",
            problem.criteria_version
        )));
    }
    let problem = reload(connection, id)?;
    record(
        connection,
        caller,
        EventKind::ProblemAcknowledged,
        &problem,
        at,
    )?;
    Ok(problem)
}

/// Closes a problem (owner or manager of its team): no spends after this.
pub fn close(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &ProblemId,
    at: NaiveDateTime,
) -> Result<ProblemRow, Error> {
    let id = id.as_str();
    let problem = find_visible(connection, caller, id)?;
    if !caller.may_edit_problem(problem_ref(&problem)) {
        return Err(Error::Forbidden(
            "only the owner or a manager of the team can close a problem".to_owned(),
        ));
    }
    if !problems::close(connection, id, at)? {
        return Err(Refusal::ProblemClosed.into());
    }
    let problem = reload(connection, id)?;
    record(connection, caller, EventKind::ProblemClosed, &problem, at)?;
    Ok(problem)
}
