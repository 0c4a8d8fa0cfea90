//! Integration tests: the real server over real HTTP, on SQLite and on PostgreSQL, each test
//! with its own database. One test binary (design §8).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod browser;
mod cache;
mod cli;
mod concurrency;
mod cors;
mod customers;
mod delivery;
mod docs;
mod events;
mod faults;
mod hostile;
mod import;
mod instances;
mod janitor;
mod js_sdk;
mod keys;
mod limits;
mod login;
mod oauth;
mod operations;
mod refresh;
mod register;
mod reset;
mod reset_durability;
mod routes;
mod secrets;
mod sessions;
mod slow_clients;
mod tenants;
mod throttles;
