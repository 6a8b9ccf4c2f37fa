//! Who may do what (DESIGN.md §4), as pure functions of the caller and the
//! object. Handlers ask these and turn a `false` into a 404 when the caller
//! may not even know the object exists, or a 403 when they may see it but not
//! act on it.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

/// A person's role; it comes from the person record, never from the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Opens problems for themselves and logs spends on them.
    Member,
    /// A member who also runs teams: opens problems and sets limits and
    /// policies there, and reviews flagged spends.
    Manager,
    /// Reads everything, changes nothing.
    Finance,
    /// Manages teams, people and policies.
    Admin,
}

impl Role {
    /// The stored and JSON spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Manager => "manager",
            Self::Finance => "finance",
            Self::Admin => "admin",
        }
    }

    /// Members and managers belong to a team (and own problems there);
    /// finance and admins stand outside the tree.
    #[must_use]
    pub fn needs_team(self) -> bool {
        matches!(self, Self::Member | Self::Manager)
    }
}

impl FromStr for Role {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "member" => Ok(Self::Member),
            "manager" => Ok(Self::Manager),
            "finance" => Ok(Self::Finance),
            "admin" => Ok(Self::Admin),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The authenticated caller with what their reach depends on.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The person's id.
    pub person_id: String,
    /// The person's role.
    pub role: Role,
    /// The person's team, if any.
    pub team_id: Option<String>,
    /// Teams the caller manages directly.
    pub managed_team_ids: Vec<String>,
    /// Teams the caller manages directly and every team below them.
    pub scope_team_ids: HashSet<String>,
}

/// What access rules need to know about a problem.
#[derive(Debug, Clone, Copy)]
pub struct ProblemRef<'a> {
    /// The problem's team.
    pub team_id: &'a str,
    /// The problem's owner.
    pub owner_id: &'a str,
}

impl Caller {
    /// Finance and admin read everything.
    #[must_use]
    pub fn reads_everything(&self) -> bool {
        matches!(self.role, Role::Finance | Role::Admin)
    }

    /// Whether the caller manages `team_id` or a team above it.
    #[must_use]
    pub fn manages_team(&self, team_id: &str) -> bool {
        self.role == Role::Manager && self.scope_team_ids.contains(team_id)
    }

    /// Teams, people and policies are the admin's to change.
    #[must_use]
    pub fn administers(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the caller may set a team's policy: an admin, or the manager
    /// of the team or of one above it.
    #[must_use]
    pub fn may_set_policy(&self, team_id: &str) -> bool {
        self.administers() || self.manages_team(team_id)
    }

    /// Whether the caller may change the approval authority of a team whose
    /// parent is `parent_team_id`: an admin, or a manager of a team above
    /// it. Nobody grants approval authority to themselves.
    #[must_use]
    pub fn may_grant_authority(&self, parent_team_id: Option<&str>) -> bool {
        self.administers() || parent_team_id.is_some_and(|parent| self.manages_team(parent))
    }

    /// Whether the caller may know of a person: finance and admins know
    /// everyone, a manager the people of the teams they manage, anyone
    /// themselves.
    #[must_use]
    pub fn may_see_person(&self, person_id: &str, team_id: Option<&str>) -> bool {
        self.reads_everything()
            || person_id == self.person_id
            || team_id.is_some_and(|team_id| self.manages_team(team_id))
    }

    /// Whether the caller may see a problem and its spends.
    #[must_use]
    pub fn may_read_problem(&self, problem: ProblemRef<'_>) -> bool {
        self.reads_everything()
            || problem.owner_id == self.person_id
            || self.manages_team(problem.team_id)
    }

    /// Whether the caller may open a problem in `team_id` owned by a person
    /// who belongs to `owner_team_id`. Members open for themselves in their
    /// own team; managers for anyone in a team they manage.
    #[must_use]
    pub fn may_open_problem(
        &self,
        team_id: &str,
        owner_id: &str,
        owner_team_id: Option<&str>,
    ) -> bool {
        let for_self_in_own_team =
            owner_id == self.person_id && self.team_id.as_deref() == Some(team_id);
        let in_managed_teams = self.manages_team(team_id)
            && owner_team_id.is_some_and(|owner_team| self.manages_team(owner_team));
        matches!(self.role, Role::Member | Role::Manager)
            && (for_self_in_own_team || in_managed_teams)
    }

    /// Whether the caller may change a problem's title and success criteria
    /// or close it: its owner, or a manager of its team.
    #[must_use]
    pub fn may_edit_problem(&self, problem: ProblemRef<'_>) -> bool {
        matches!(self.role, Role::Member | Role::Manager)
            && (problem.owner_id == self.person_id || self.manages_team(problem.team_id))
    }

    /// Whether the caller may set a problem's limit: a manager of its team.
    #[must_use]
    pub fn may_set_problem_limit(&self, problem: ProblemRef<'_>) -> bool {
        self.manages_team(problem.team_id)
    }

    /// Whether the caller may log a spend: the problem's owner, or a manager
    /// of its team logging on the owner's behalf.
    #[must_use]
    pub fn may_log_spend(&self, problem: ProblemRef<'_>) -> bool {
        self.may_edit_problem(problem)
    }

    /// Whether the caller may void a spend: whoever logged it while it still
    /// awaits review, or a manager of the problem's team at any time.
    #[must_use]
    pub fn may_void(&self, problem: ProblemRef<'_>, logged_by: &str, pending: bool) -> bool {
        self.manages_team(problem.team_id)
            || (pending
                && logged_by == self.person_id
                && matches!(self.role, Role::Member | Role::Manager))
    }

    /// Whether the spend is the caller's own: they logged it or own its
    /// problem. Nobody decides such a spend; it goes to the manager above.
    #[must_use]
    pub fn is_own_spend(&self, problem_owner_id: &str, logged_by: &str) -> bool {
        logged_by == self.person_id || problem_owner_id == self.person_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role, team: Option<&str>, scope: &[&str]) -> Caller {
        Caller {
            person_id: "me".to_owned(),
            role,
            team_id: team.map(str::to_owned),
            managed_team_ids: scope
                .iter()
                .take(1)
                .map(|team| (*team).to_owned())
                .collect(),
            scope_team_ids: scope.iter().map(|team| (*team).to_owned()).collect(),
        }
    }

    const MINE: ProblemRef<'static> = ProblemRef {
        team_id: "ops",
        owner_id: "me",
    };
    const THEIRS: ProblemRef<'static> = ProblemRef {
        team_id: "ops",
        owner_id: "ana",
    };

    #[test]
    fn members_reach_only_their_own_problems() {
        let member = caller(Role::Member, Some("ops"), &[]);
        assert!(member.may_read_problem(MINE));
        assert!(!member.may_read_problem(THEIRS));
        assert!(member.may_log_spend(MINE));
        assert!(!member.may_log_spend(THEIRS));
        assert!(member.may_open_problem("ops", "me", Some("ops")));
        assert!(!member.may_open_problem("ops", "ana", Some("ops")));
        assert!(!member.may_open_problem("sales", "me", Some("ops")));
        assert!(!member.may_set_problem_limit(MINE));
    }

    #[test]
    fn managers_reach_their_teams_and_never_review_their_own_spends() {
        let manager = caller(Role::Manager, Some("ops"), &["ops", "ops-east"]);
        assert!(manager.may_read_problem(THEIRS));
        assert!(manager.may_open_problem("ops-east", "ana", Some("ops-east")));
        assert!(!manager.may_open_problem("sales", "ana", Some("sales")));
        assert!(!manager.is_own_spend(THEIRS.owner_id, "ana"));
        assert!(manager.is_own_spend(THEIRS.owner_id, "me"));
        assert!(manager.is_own_spend(MINE.owner_id, "ana"));
        let elsewhere = ProblemRef {
            team_id: "sales",
            owner_id: "bo",
        };
        assert!(!manager.may_read_problem(elsewhere));
    }

    #[test]
    fn finance_reads_everything_and_changes_nothing() {
        let finance = caller(Role::Finance, None, &[]);
        assert!(finance.may_read_problem(THEIRS));
        assert!(!finance.may_edit_problem(THEIRS));
        assert!(!finance.may_log_spend(THEIRS));
        assert!(!finance.may_set_policy("ops"));
        assert!(!finance.may_open_problem("ops", "me", None));
    }

    #[test]
    fn voids_are_for_the_logger_while_pending_and_for_managers_always() {
        let member = caller(Role::Member, Some("ops"), &[]);
        assert!(member.may_void(MINE, "me", true));
        assert!(!member.may_void(MINE, "me", false));
        assert!(!member.may_void(THEIRS, "ana", true));
        let manager = caller(Role::Manager, Some("ops"), &["ops"]);
        assert!(manager.may_void(THEIRS, "ana", false));
        let finance = caller(Role::Finance, None, &[]);
        assert!(!finance.may_void(THEIRS, "ana", true));
    }

    #[test]
    fn approval_authority_is_granted_from_above() {
        let manager = caller(Role::Manager, Some("ops"), &["ops", "ops-east"]);
        assert!(manager.may_grant_authority(Some("ops")));
        assert!(!manager.may_grant_authority(Some("company")));
        assert!(!manager.may_grant_authority(None));
        assert!(caller(Role::Admin, None, &[]).may_grant_authority(None));
        assert!(!caller(Role::Finance, None, &[]).may_grant_authority(Some("ops")));
    }

    #[test]
    fn people_are_seen_by_themselves_their_managers_finance_and_admins() {
        let member = caller(Role::Member, Some("ops"), &[]);
        assert!(member.may_see_person("me", Some("ops")));
        assert!(!member.may_see_person("ana", Some("ops")));
        let manager = caller(Role::Manager, Some("ops"), &["ops", "ops-east"]);
        assert!(manager.may_see_person("ana", Some("ops-east")));
        assert!(!manager.may_see_person("bo", Some("sales")));
        assert!(!manager.may_see_person("root", None));
        assert!(caller(Role::Finance, None, &[]).may_see_person("root", None));
        assert!(caller(Role::Admin, None, &[]).may_see_person("bo", Some("sales")));
    }

    #[test]
    fn roles_round_trip_through_their_spelling() {
        for role in [Role::Member, Role::Manager, Role::Finance, Role::Admin] {
            assert_eq!(role.as_str().parse(), Ok(role));
        }
        assert_eq!("root".parse::<Role>(), Err(()));
    }
}
