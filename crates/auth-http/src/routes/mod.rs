//! The routes: handlers by family (`auth`, `oauth`, `session`, `store`, `keys`, `health`, `docs`), each with its
//! `#[utoipa::path]` operation beside it, and the table that registers every one of them once
//! (`table`: actix, the OpenAPI document's paths, the `Allow` of the 405s). Every path answers 405
//! (JSON, with `Allow`) to a method it does not serve; unknown paths answer 404 (JSON). `/auth` and
//! `/store` each have their own CORS origins.

mod auth;
mod docs;
mod health;
mod keys;
mod oauth;
mod session;
mod store;
mod table;

pub(crate) use docs::OpenApiJson;
#[cfg(test)]
pub(crate) use table::paths;
pub(crate) use table::{add_operations, configure, configure_admin, not_found};
