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
);
