//! Integration tests: the real server over real HTTP, on SQLite and on PostgreSQL, each test
//! with its own database. One test binary (design §8).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod cli;
mod concurrency;
mod cors;
mod customers;
mod delivery;
mod docs;
mod events;
mod hostile;
mod janitor;
mod js_sdk;
mod limits;
mod login;
mod operations;
mod refresh;
mod register;
mod reset;
mod routes;
mod secrets;
mod sessions;
