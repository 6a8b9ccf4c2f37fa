//! Build script: decides at compile time whether the integration tests'
//! PostgreSQL variants (`name::postgres`, tests/api/helpers.rs) can run.
//!
//! They need `LEEWAY_TEST_DATABASE_URL`. When it is unset outside CI, they
//! are compiled as `#[ignore = "..."]`, so plain `cargo test` counts them as
//! ignored in its own summary and says how to run them, instead of printing
//! `ok` for tests that did nothing. Under `CI` they are never ignored: a
//! missing URL then fails each of them loudly. Cargo reruns this script when
//! either variable changes, so the choice always matches the environment of
//! the `cargo test` that builds the tests.

use std::env;

/// The variable naming the PostgreSQL server for tests.
const POSTGRES_URL_VARIABLE: &str = "LEEWAY_TEST_DATABASE_URL";

/// Set when the PostgreSQL test variants are compiled as ignored.
const IGNORED_CFG: &str = "postgres_tests_unconfigured";

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed={POSTGRES_URL_VARIABLE}");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rustc-check-cfg=cfg({IGNORED_CFG})");
    let configured = env::var_os(POSTGRES_URL_VARIABLE).is_some_and(|url| !url.is_empty());
    let in_ci = env::var_os("CI").is_some();
    if !configured && !in_ci {
        println!("cargo::rustc-cfg={IGNORED_CFG}");
    }
}
