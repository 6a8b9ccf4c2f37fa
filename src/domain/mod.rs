//! Pure domain rules, free of IO: money and currencies, the limit rule, and
//! who may do what. Everything here is unit-tested without a database.

pub mod access;
pub mod currency;
pub mod limit;
pub mod money;
