//! Diesel table definitions, kept in step with `migrations/` by hand (both
//! backends share them, so `diesel print-schema` of either would drift).

diesel::table! {
    teams (id) {
        id -> Text,
        name -> Text,
        parent_id -> Nullable<Text>,
        manager_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    people (id) {
        id -> Text,
        subject -> Text,
        name -> Text,
        email -> Nullable<Text>,
        team_id -> Nullable<Text>,
        role -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        notify -> Text,
    }
}

diesel::table! {
    policies (team_id, version) {
        team_id -> Text,
        version -> Integer,
        per_problem_limit_minor -> BigInt,
        currency -> Text,
        review_sla_hours -> Integer,
        effective_from -> Timestamp,
        created_by -> Text,
        approval_limit_minor -> Nullable<BigInt>,
        period_allowance_minor -> Nullable<BigInt>,
        require_acknowledgement -> Bool,
        alert_thresholds_percent -> Text,
    }
}

diesel::table! {
    problems (id) {
        id -> Text,
        team_id -> Text,
        owner_id -> Text,
        title -> Text,
        success_criteria -> Text,
        status -> Text,
        currency -> Text,
        limit_minor -> BigInt,
        approved_minor -> BigInt,
        pending_review_minor -> BigInt,
        policy_team_id -> Nullable<Text>,
        policy_version -> Nullable<Integer>,
        opened_by -> Text,
        opened_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
        limit_version -> Integer,
        criteria_version -> Integer,
        acknowledged_version -> Nullable<Integer>,
        acknowledged_at -> Nullable<Timestamp>,
        require_acknowledgement -> Bool,
    }
}

diesel::table! {
    spends (id) {
        id -> Text,
        problem_id -> Text,
        amount_minor -> BigInt,
        currency -> Text,
        status -> Text,
        overrun_minor -> Nullable<BigInt>,
        merchant -> Text,
        description -> Text,
        category -> Nullable<Text>,
        spent_on -> Date,
        receipt_url -> Nullable<Text>,
        logged_by -> Text,
        logged_at -> Timestamp,
        decided_by -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        decision_note -> Nullable<Text>,
        voided_by -> Nullable<Text>,
        voided_at -> Nullable<Timestamp>,
        void_reason -> Nullable<Text>,
        flag_reasons -> Nullable<Text>,
        policy_team_id -> Nullable<Text>,
        policy_version -> Nullable<Integer>,
        approved_amount_minor -> Nullable<BigInt>,
        reviewer_id -> Nullable<Text>,
        review_team_id -> Nullable<Text>,
        original_reviewer_id -> Nullable<Text>,
        original_review_team_id -> Nullable<Text>,
        review_due_at -> Nullable<Timestamp>,
        decided_on_behalf_of -> Nullable<Text>,
        route_version -> Integer,
    }
}

diesel::table! {
    spend_review_steps (spend_id, step) {
        spend_id -> Text,
        step -> Integer,
        action -> Text,
        actor_id -> Nullable<Text>,
        on_behalf_of_id -> Nullable<Text>,
        reviewer_id -> Nullable<Text>,
        review_team_id -> Nullable<Text>,
        approved_amount_minor -> Nullable<BigInt>,
        note -> Nullable<Text>,
        at -> Timestamp,
    }
}

diesel::table! {
    problem_limit_changes (problem_id, version) {
        problem_id -> Text,
        version -> Integer,
        limit_minor -> BigInt,
        previous_limit_minor -> Nullable<BigInt>,
        policy_team_id -> Nullable<Text>,
        policy_version -> Nullable<Integer>,
        changed_by -> Text,
        changed_at -> Timestamp,
        reason -> Nullable<Text>,
    }
}

diesel::table! {
    period_totals (person_id, period, currency) {
        person_id -> Text,
        period -> Text,
        currency -> Text,
        autonomous_minor -> BigInt,
    }
}

diesel::table! {
    review_delegations (id) {
        id -> Text,
        delegator_id -> Text,
        delegate_id -> Text,
        starts_at -> Timestamp,
        ends_at -> Timestamp,
        note -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
        revoked_by -> Nullable<Text>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    events (id) {
        id -> Text,
        occurred_at -> Timestamp,
        actor_id -> Nullable<Text>,
        kind -> Text,
        subject_type -> Text,
        subject_id -> Text,
        team_id -> Nullable<Text>,
        problem_id -> Nullable<Text>,
        data -> Text,
        sequence -> Nullable<BigInt>,
        chain_key -> Nullable<Text>,
        chain_position -> Nullable<BigInt>,
        prev_hash -> Nullable<Text>,
        hash -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_keys (caller_id, idempotency_key) {
        caller_id -> Text,
        idempotency_key -> Text,
        request_fingerprint -> Text,
        state -> Text,
        response_status -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        created_at -> Timestamp,
        locked_at -> Timestamp,
    }
}

diesel::table! {
    chain_heads (chain_key) {
        chain_key -> Text,
        position -> BigInt,
        hash -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    audit_checkpoints (number) {
        number -> BigInt,
        as_of -> BigInt,
        chain_count -> BigInt,
        heads_hash -> Text,
        prev_hash -> Text,
        hash -> Text,
        sealed_at -> Timestamp,
    }
}

diesel::table! {
    problem_budget_alerts (problem_id, limit_version, threshold_percent) {
        problem_id -> Text,
        limit_version -> Integer,
        threshold_percent -> Integer,
        crossed_at -> Timestamp,
    }
}

diesel::table! {
    mail_cursor (id) {
        id -> Integer,
        after_sequence -> BigInt,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> Text,
        person_id -> Text,
        to_address -> Text,
        subject -> Text,
        body -> Text,
        event_id -> Nullable<Text>,
        created_at -> Timestamp,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        lease_token -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    mail_digests (person_id, digest_on) {
        person_id -> Text,
        digest_on -> Text,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Text,
        url -> Text,
        description -> Text,
        event_types -> Text,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamp>,
        disabled -> Bool,
        disabled_reason -> Nullable<Text>,
        after_sequence -> BigInt,
        test_message_id -> Nullable<Text>,
        test_requested_at -> Nullable<Timestamp>,
        attempts_failed -> Integer,
        next_attempt_at -> Timestamp,
        failing_since -> Nullable<Timestamp>,
        lease_token -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamp>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        endpoint_id -> Text,
        message_id -> Text,
        event_type -> Text,
        sequence -> Nullable<BigInt>,
        attempt -> Integer,
        attempted_at -> Timestamp,
        response_status -> Nullable<Integer>,
        error -> Nullable<Text>,
        outcome -> Text,
        next_attempt_at -> Nullable<Timestamp>,
        duration_ms -> BigInt,
    }
}

diesel::joinable!(problems -> teams (team_id));
diesel::joinable!(spends -> problems (problem_id));

diesel::allow_tables_to_appear_in_same_query!(
    teams,
    people,
    policies,
    problems,
    spends,
    events,
    idempotency_keys,
    chain_heads,
    audit_checkpoints,
    spend_review_steps,
    problem_limit_changes,
    period_totals,
    review_delegations,
    webhook_endpoints,
    webhook_deliveries,
    problem_budget_alerts,
    mail_cursor,
    mail_outbox,
    mail_digests,
);
