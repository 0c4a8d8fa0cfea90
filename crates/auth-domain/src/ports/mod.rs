//! Ports: what the use cases need from the outside world, one file per family. Adapters
//! implement them (`auth-store-diesel` the stores, `auth-server` the sinks); `memory` implements
//! the stores for the unit tests. Two ports live beside the logic that uses them:
//! `ratelimit::RateLimiter` and `tenant::TenantDirectory`.
//!
//! Every store method takes the tenant first and is one short unit of work: it takes a
//! connection, does its reads or its writes in one transaction, and gives the connection back.
//! No method is ever called while a password is being hashed, and no connection outlives a call.

mod clock;
mod customer;
mod identity;
mod import;
mod janitor;
mod keys;
mod oauth;
mod outbox;
mod reset_request;
mod session;
mod tenant;

pub use clock::{Clock, SystemClock};
pub use customer::CustomerStore;
pub use identity::IdentityStore;
pub use import::ImportStore;
pub use janitor::{Housekeeping, PurgeReport};
pub use keys::KeyStore;
pub use oauth::{HttpAnswer, OAuthStore, ProviderHttp};
pub use outbox::{DeliveryStatus, DeliveryView, EventOutbox, EventSink, EventWaker, PendingDelivery};
pub use reset_request::ResetRequestStore;
pub use session::SessionStore;
pub use tenant::{TenantChange, TenantRecord, TenantStore};

/// What the tenant directory reads: the tenants and their keys.
pub trait DirectoryStore: TenantStore + KeyStore {}

impl<T: TenantStore + KeyStore + ?Sized> DirectoryStore for T {}

/// Everything the use cases store: one adapter implements it all.
pub trait AuthStore: IdentityStore + SessionStore + CustomerStore + OAuthStore + ResetRequestStore {}

impl<T: IdentityStore + SessionStore + CustomerStore + OAuthStore + ResetRequestStore + ?Sized> AuthStore for T {}
