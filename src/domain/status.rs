//! The typed states of spends, problems and review steps, each with its one stored and
//! JSON spelling. Rows keep the text the database holds; code compares and
//! decides with these enums, converting once at the edge with
//! [`SpendStatus::parse`] / [`SpendStatus::as_str`].

/// Where a spend stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpendStatus {
    /// Inside the budget: approved on the spot, no human involved.
    Approved,
    /// A flagged overrun waiting for a reviewer; its amount is reserved.
    PendingReview,
    /// Flagged, then approved (wholly or in part) by a reviewer.
    ApprovedByManager,
    /// Flagged, then rejected: it counts nowhere.
    Rejected,
    /// Logged in error and withdrawn; it keeps its row and counts nowhere.
    Voided,
}

impl SpendStatus {
    /// Every status, in the order the API documents them.
    pub const ALL: [Self; 5] = [
        Self::Approved,
        Self::PendingReview,
        Self::ApprovedByManager,
        Self::Rejected,
        Self::Voided,
    ];

    /// The stored and JSON spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::PendingReview => "pending_review",
            Self::ApprovedByManager => "approved_by_manager",
            Self::Rejected => "rejected",
            Self::Voided => "voided",
        }
    }

    /// Reads a stored or sent spelling; `None` for anything else.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Whether the spend's amount counts in the problem's totals (approved
    /// or reserved): only such a spend can be voided.
    #[must_use]
    pub fn counts(self) -> bool {
        matches!(
            self,
            Self::Approved | Self::ApprovedByManager | Self::PendingReview
        )
    }
}

/// Whether a problem takes spends and changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemStatus {
    /// Takes spends and changes.
    Open,
    /// A settled record: no new spends, no changes.
    Closed,
}

impl ProblemStatus {
    /// Every status.
    pub const ALL: [Self; 2] = [Self::Open, Self::Closed];

    /// The stored and JSON spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }

    /// Reads a stored or sent spelling; `None` for anything else.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// A step in a spend's review history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewAction {
    /// Flagged and routed to its first reviewer.
    Routed,
    /// Moved up because its review SLA passed.
    Escalated,
    /// Approved beyond the reviewer's authority: moved up with their endorsement.
    Endorsed,
    /// Approved (wholly or in part) by a reviewer.
    Approved,
    /// Rejected by a reviewer.
    Rejected,
}

impl ReviewAction {
    /// The stored and JSON spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Routed => "routed",
            Self::Escalated => "escalated",
            Self::Endorsed => "endorsed",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }

    /// Whether the step moved the spend to a reviewer (so the step records
    /// where it went).
    #[must_use]
    pub fn moves(self) -> bool {
        matches!(self, Self::Routed | Self::Escalated | Self::Endorsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_reads_back() {
        for status in SpendStatus::ALL {
            assert_eq!(SpendStatus::parse(status.as_str()), Some(status));
        }
        for status in ProblemStatus::ALL {
            assert_eq!(ProblemStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(SpendStatus::parse("Approved"), None);
        assert_eq!(ProblemStatus::parse(""), None);
    }

    #[test]
    fn only_counted_spends_can_be_voided() {
        let voidable: Vec<_> = SpendStatus::ALL
            .into_iter()
            .filter(|s| s.counts())
            .collect();
        assert_eq!(
            voidable,
            [
                SpendStatus::Approved,
                SpendStatus::PendingReview,
                SpendStatus::ApprovedByManager
            ]
        );
    }
}
