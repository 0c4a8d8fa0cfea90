//! Tenants in the server: the directory that tells each request's tenant (`directory.rs`, a
//! cache of the `tenant` table), and a tenant's effective settings, its own over the global ones
//! (`settings.rs`). The operators' commands are `cli/tenant.rs`.

mod directory;
mod settings;

pub use directory::CachedDirectory;
pub use settings::{overridable, SettingsReader};
