//! What kinds of change the event log records, each with its one stored
//! spelling (`spend.approved`). Every event is one of these; the log, its
//! hash chain and the exports read them back through [`EventKind::parse`].

/// A kind of recorded change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A team was created.
    TeamCreated,
    /// A team's name, parent or manager changed.
    TeamUpdated,
    /// A person was added.
    PersonCreated,
    /// A person's details, role or team changed.
    PersonUpdated,
    /// A team's policy got a new version.
    PolicyVersioned,
    /// A problem was opened.
    ProblemOpened,
    /// A problem's title or criteria (and maybe limit) changed.
    ProblemUpdated,
    /// A problem's limit got a new version.
    ProblemLimitChanged,
    /// The owner acknowledged the problem's success criteria.
    ProblemAcknowledged,
    /// A problem was closed.
    ProblemClosed,
    /// A problem's approved + pending total first reached one of its
    /// policy's alert thresholds under its current limit version.
    ProblemBudgetThreshold,
    /// A spend was approved on the spot.
    SpendApproved,
    /// A spend was flagged and routed for review.
    SpendFlagged,
    /// A reviewer approved a flagged spend.
    SpendApprovedByManager,
    /// A reviewer rejected a flagged spend.
    SpendRejected,
    /// A reviewer approved beyond their authority: the spend moved up.
    SpendEndorsed,
    /// A review's SLA passed: the spend moved up.
    SpendEscalated,
    /// A spend was voided.
    SpendVoided,
    /// A delegation of a review queue was created.
    DelegationCreated,
    /// A delegation was revoked.
    DelegationRevoked,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [Self; 20] = [
        Self::TeamCreated,
        Self::TeamUpdated,
        Self::PersonCreated,
        Self::PersonUpdated,
        Self::PolicyVersioned,
        Self::ProblemOpened,
        Self::ProblemUpdated,
        Self::ProblemLimitChanged,
        Self::ProblemAcknowledged,
        Self::ProblemClosed,
        Self::ProblemBudgetThreshold,
        Self::SpendApproved,
        Self::SpendFlagged,
        Self::SpendApprovedByManager,
        Self::SpendRejected,
        Self::SpendEndorsed,
        Self::SpendEscalated,
        Self::SpendVoided,
        Self::DelegationCreated,
        Self::DelegationRevoked,
    ];

    /// The stored spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TeamCreated => "team.created",
            Self::TeamUpdated => "team.updated",
            Self::PersonCreated => "person.created",
            Self::PersonUpdated => "person.updated",
            Self::PolicyVersioned => "policy.versioned",
            Self::ProblemOpened => "problem.opened",
            Self::ProblemUpdated => "problem.updated",
            Self::ProblemLimitChanged => "problem.limit_changed",
            Self::ProblemAcknowledged => "problem.acknowledged",
            Self::ProblemClosed => "problem.closed",
            Self::ProblemBudgetThreshold => "problem.budget_threshold",
            Self::SpendApproved => "spend.approved",
            Self::SpendFlagged => "spend.flagged",
            Self::SpendApprovedByManager => "spend.approved_by_manager",
            Self::SpendRejected => "spend.rejected",
            Self::SpendEndorsed => "spend.endorsed",
            Self::SpendEscalated => "spend.escalated",
            Self::SpendVoided => "spend.voided",
            Self::DelegationCreated => "delegation.created",
            Self::DelegationRevoked => "delegation.revoked",
        }
    }

    /// Reads a stored spelling; `None` for anything else.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_spelling_that_reads_back() {
        let mut spellings: Vec<&str> = EventKind::ALL.iter().map(|kind| kind.as_str()).collect();
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        spellings.sort_unstable();
        spellings.dedup();
        assert_eq!(spellings.len(), EventKind::ALL.len());
    }

    /// Pins every stored spelling: each is hashed into the event chain and
    /// matched by exports and reports, so a change here is a data migration.
    #[test]
    fn every_stored_spelling_is_pinned() {
        let pinned = [
            (EventKind::TeamCreated, "team.created"),
            (EventKind::TeamUpdated, "team.updated"),
            (EventKind::PersonCreated, "person.created"),
            (EventKind::PersonUpdated, "person.updated"),
            (EventKind::PolicyVersioned, "policy.versioned"),
            (EventKind::ProblemOpened, "problem.opened"),
            (EventKind::ProblemUpdated, "problem.updated"),
            (EventKind::ProblemLimitChanged, "problem.limit_changed"),
            (EventKind::ProblemAcknowledged, "problem.acknowledged"),
            (EventKind::ProblemClosed, "problem.closed"),
            (
                EventKind::ProblemBudgetThreshold,
                "problem.budget_threshold",
            ),
            (EventKind::SpendApproved, "spend.approved"),
            (EventKind::SpendFlagged, "spend.flagged"),
            (
                EventKind::SpendApprovedByManager,
                "spend.approved_by_manager",
            ),
            (EventKind::SpendRejected, "spend.rejected"),
            (EventKind::SpendEndorsed, "spend.endorsed"),
            (EventKind::SpendEscalated, "spend.escalated"),
            (EventKind::SpendVoided, "spend.voided"),
            (EventKind::DelegationCreated, "delegation.created"),
            (EventKind::DelegationRevoked, "delegation.revoked"),
        ];
        assert_eq!(pinned.len(), EventKind::ALL.len(), "a kind is not pinned");
        for (kind, spelling) in pinned {
            assert_eq!(kind.as_str(), spelling);
        }
    }
}
