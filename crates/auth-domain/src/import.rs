//! Moving a store in from Medusa: what its database holds ([`MedusaSnapshot`]), how each of its
//! accounts becomes an Xclade identity or is left out with a reason ([`plan`]), and what the store
//! answers for each account it is given ([`ImportOutcome`], port `ports::ImportStore`).
//!
//! The rules (docs/operations.md, "Moving from Medusa"):
//! - An account is one Medusa `auth_identity` with its live provider identities of
//!   [`IMPORTED_PROVIDERS`]: `emailpass`, and the social sign-ins of Medusa's own providers
//!   (`google`, `github`), whose subjects are the ones this service's sign-in finds. It keeps
//!   Medusa's ids, `app_metadata` (the `customer_id` / `user_id` links), the address as
//!   registered (`entity_id`), the password hash as Medusa wrote it (scrypt-kdf: login verifies it
//!   and replaces it with bcrypt, `password::scrypt_kdf`), the profile (`user_metadata`) and the
//!   timestamps; never a social provider's `provider_metadata` (Medusa keeps GitHub's access and
//!   refresh tokens there in clear). An account moves whole or not at all.
//! - The customer its `app_metadata.customer_id` names comes with it. Customers that no account
//!   links (guests) are not auth data and stay in Medusa.
//! - Nothing is merged: addresses that are one address here (Medusa compares them case-sensitively,
//!   Xclade by [`email_key`]) are all left out, as is an account whose hash login could not check,
//!   so that an operator decides. A later run picks them up once the source is fixed.
//! - Every imported identity gets a security stamp that starts with [`IMPORTED_STAMP_PREFIX`]:
//!   a password change, reset or logout-all replaces it, which ends the exchange of the account's
//!   Medusa tokens (`MEDUSA_JWT_SECRET`, `service::session`).

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::email::{email_key, Email};
use crate::model::Customer;
use crate::newtypes::EntityKey;
use crate::password::scrypt_kdf::{ScryptKdfHash, Unreadable};
use crate::secret::random_hex;
use crate::AuthError;

/// How the security stamp of an imported identity begins, until its first password change,
/// reset or logout-all.
pub const IMPORTED_STAMP_PREFIX: &str = "medusa-";

/// The provider Medusa's email/password accounts are stored under, here as there.
pub const EMAILPASS: &str = "emailpass";

/// The providers whose identities move, each with the same subject here as in Medusa: the
/// address (`emailpass`), the ID token's `sub` (`google`, as `@medusajs/auth-google` stores it),
/// the user's numeric id (`github`, as `@medusajs/auth-github` does). Others stay in Medusa.
pub const IMPORTED_PROVIDERS: [&str; 3] = [EMAILPASS, "google", "github"];

/// The longest provider subject accepted, as at sign-in (`ProviderProfile::MAX_SUBJECT`).
const MAX_SUBJECT: usize = 255;

/// A row of Medusa's `auth_identity`.
#[derive(Debug, Clone, PartialEq)]
pub struct MedusaIdentity {
    pub id: String,
    pub app_metadata: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A row of Medusa's `provider_identity`, with `provider_metadata.password` (the hash) read out
/// of its JSON. `Debug` shows whether there is a hash, never the value.
#[derive(Clone, PartialEq)]
pub struct MedusaProviderIdentity {
    pub id: String,
    pub entity_id: String,
    pub provider: String,
    pub auth_identity_id: String,
    pub user_metadata: Option<Value>,
    /// `provider_metadata.password`.
    pub password: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for MedusaProviderIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MedusaProviderIdentity")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("auth_identity_id", &self.auth_identity_id)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// A row of Medusa's `customer`.
#[derive(Debug, Clone, PartialEq)]
pub struct MedusaCustomer {
    pub id: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub company_name: Option<String>,
    pub has_account: bool,
    pub metadata: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The three tables, as read in one repeatable-read transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MedusaSnapshot {
    pub identities: Vec<MedusaIdentity>,
    pub provider_identities: Vec<MedusaProviderIdentity>,
    pub customers: Vec<MedusaCustomer>,
}

/// An account ready to be written: the identity, its provider identities and its customer, all
/// of one tenant (the store is told which).
#[derive(Clone, PartialEq)]
pub struct ImportedAccount {
    pub auth_identity_id: String,
    pub app_metadata: Map<String, Value>,
    pub security_stamp: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// At least one; the `emailpass` one first when there is one.
    pub provider_identities: Vec<ImportedProviderIdentity>,
    pub customer: Option<Customer>,
    /// The account's live provider identities of other providers, which stay in Medusa:
    /// (provider identity id, provider), for the summary.
    pub left_behind: Vec<(String, String)>,
}

/// One provider identity of an imported account.
#[derive(Clone, PartialEq)]
pub struct ImportedProviderIdentity {
    pub id: String,
    /// One of [`IMPORTED_PROVIDERS`].
    pub provider: String,
    /// As registered in Medusa: the address (`emailpass`), the provider's subject otherwise.
    pub entity_id: String,
    /// The lookup key: the address trimmed and lowercased (`emailpass`), the subject otherwise.
    pub entity_key: EntityKey,
    /// `emailpass` only: Medusa's hash, as Medusa stored it (checked readable by [`plan`]).
    pub password_hash: Option<String>,
    pub user_metadata: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for ImportedProviderIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportedProviderIdentity")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ImportedAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let providers: Vec<(&str, &str)> =
            self.provider_identities.iter().map(|p| (p.id.as_str(), p.provider.as_str())).collect();
        f.debug_struct("ImportedAccount")
            .field("auth_identity_id", &self.auth_identity_id)
            .field("provider_identities", &providers)
            .field("customer", &self.customer.as_ref().map(|c| &c.id))
            .finish_non_exhaustive()
    }
}

impl ImportedAccount {
    /// What an operator knows the account by: the address of its `emailpass` identity, else the
    /// subject of its first one.
    pub fn entity_id(&self) -> &str {
        self.provider_identities.first().map_or("", |p| p.entity_id.as_str())
    }

    /// The actor types the account is linked to (`customer`, `user`), from `app_metadata`.
    pub fn actors(&self) -> Vec<String> {
        self.app_metadata
            .iter()
            .filter(|(_, v)| v.as_str().is_some_and(|s| !s.is_empty()))
            .filter_map(|(k, _)| k.strip_suffix("_id").map(str::to_string))
            .collect()
    }
}

/// Why an account of the source is not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Deleted in Medusa (`deleted_at` set on the identity or its provider identity).
    Deleted,
    /// No live provider identity of [`IMPORTED_PROVIDERS`] (only others, which stay in Medusa).
    NoSupportedProvider { providers: Vec<String> },
    /// A social provider identity whose subject is empty or over 255 bytes.
    BadSubject { provider: String },
    /// `entity_id` is not an email address.
    NotAnEmail,
    /// Other accounts of the source have the same address once normalised.
    SameAddressInSource { others: Vec<String> },
    /// No password hash in `provider_metadata.password`.
    NoPassword,
    /// A hash login could not check: truncated, corrupt, or a cost above the accepted bounds.
    UnreadableHash(Unreadable),
    /// `app_metadata.customer_id` names a customer that does not exist or is deleted.
    CustomerMissing { customer_id: String },
    /// `app_metadata` is not a JSON object.
    BadMetadata,
    /// An Xclade account of the tenant already has this address.
    AddressTaken { by: String },
    /// An Xclade account of the tenant already signs in with this provider account.
    ProviderAccountTaken { provider: String, by: String },
    /// The id is already used by an account or customer of another tenant.
    IdTaken { id: String },
    /// A customer account of the tenant already has the customer's address.
    CustomerAddressTaken { by: String },
}

impl SkipReason {
    /// A short stable code, for `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::Deleted => "deleted",
            SkipReason::NoSupportedProvider { .. } => "unsupported_provider",
            SkipReason::BadSubject { .. } => "bad_subject",
            SkipReason::NotAnEmail => "not_an_email",
            SkipReason::SameAddressInSource { .. } => "same_address_in_source",
            SkipReason::NoPassword => "no_password",
            SkipReason::UnreadableHash(_) => "unreadable_hash",
            SkipReason::CustomerMissing { .. } => "customer_missing",
            SkipReason::BadMetadata => "bad_metadata",
            SkipReason::AddressTaken { .. } => "address_taken",
            SkipReason::ProviderAccountTaken { .. } => "provider_account_taken",
            SkipReason::IdTaken { .. } => "id_taken",
            SkipReason::CustomerAddressTaken { .. } => "customer_address_taken",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Deleted => f.write_str("deleted in Medusa"),
            SkipReason::NoSupportedProvider { providers } => write!(
                f,
                "no {} identity (providers: {}), not imported",
                IMPORTED_PROVIDERS.join(", "),
                if providers.is_empty() { "none".to_string() } else { providers.join(", ") }
            ),
            SkipReason::BadSubject { provider } => {
                write!(f, "the {provider} subject (entity_id) is empty or over {MAX_SUBJECT} bytes")
            }
            SkipReason::NotAnEmail => f.write_str("entity_id is not an email address"),
            SkipReason::SameAddressInSource { others } => {
                write!(
                    f,
                    "the same address (ignoring case) as {}: resolve in Medusa, then run again",
                    others.join(", ")
                )
            }
            SkipReason::NoPassword => f.write_str("no password hash in provider_metadata"),
            SkipReason::UnreadableHash(why) => write!(f, "password hash unusable: {why}"),
            SkipReason::CustomerMissing { customer_id } => {
                write!(f, "app_metadata.customer_id {customer_id} names no live customer")
            }
            SkipReason::BadMetadata => f.write_str("app_metadata is not a JSON object"),
            SkipReason::AddressTaken { by } => write!(f, "the address is already registered here ({by})"),
            SkipReason::ProviderAccountTaken { provider, by } => {
                write!(f, "the {provider} account already signs in to an account here ({by})")
            }
            SkipReason::IdTaken { id } => write!(f, "the id {id} is already used in another tenant"),
            SkipReason::CustomerAddressTaken { by } => {
                write!(f, "a customer account here already has the customer's address ({by})")
            }
        }
    }
}

/// An account left out, with the ids an operator looks it up by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub auth_identity_id: String,
    /// The address as registered, when there is one.
    pub entity_id: Option<String>,
    pub reason: SkipReason,
}

/// What the store did with one account of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Written (or, in a dry run, would be).
    Imported,
    /// Already here from an earlier run: nothing written.
    Unchanged,
    Skipped(SkipReason),
}

/// What [`plan`] makes of a snapshot.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub accounts: Vec<ImportedAccount>,
    pub skipped: Vec<Skipped>,
    /// Customers that no imported or skipped account links: left in Medusa.
    pub unlinked_customers: usize,
}

/// Turns the source's rows into accounts and reasons. Pure but for the random security stamps;
/// checks every hash's format and cost (no scrypt work). The accounts keep the source's order
/// by identity id.
pub fn plan(snapshot: &MedusaSnapshot) -> Result<Plan, AuthError> {
    let mut by_identity: HashMap<&str, Vec<&MedusaProviderIdentity>> = HashMap::new();
    for pi in &snapshot.provider_identities {
        by_identity.entry(pi.auth_identity_id.as_str()).or_default().push(pi);
    }
    let customers: HashMap<&str, &MedusaCustomer> =
        snapshot.customers.iter().filter(|c| c.deleted_at.is_none()).map(|c| (c.id.as_str(), c)).collect();

    let mut identities: Vec<&MedusaIdentity> = snapshot.identities.iter().collect();
    identities.sort_by(|a, b| a.id.cmp(&b.id));

    // First pass: the live provider identities of each live account, and who shares an address.
    let mut candidates = Vec::new();
    let mut skipped = Vec::new();
    let mut holders: HashMap<String, Vec<String>> = HashMap::new();
    for identity in identities {
        let own = by_identity.get(identity.id.as_str()).map(Vec::as_slice).unwrap_or_default();
        let mut supported: Vec<&MedusaProviderIdentity> =
            own.iter().copied().filter(|pi| IMPORTED_PROVIDERS.contains(&pi.provider.as_str())).collect();
        // emailpass first, then by id: the account's name in reports is its address.
        supported.sort_by(|a, b| (a.provider != EMAILPASS, &a.id).cmp(&(b.provider != EMAILPASS, &b.id)));
        let skip = |reason, entity_id: Option<&str>| Skipped {
            auth_identity_id: identity.id.clone(),
            entity_id: entity_id.map(str::to_string),
            reason,
        };
        let Some(first) = supported.first() else {
            if identity.deleted_at.is_none() {
                let providers = own.iter().map(|pi| pi.provider.clone()).collect();
                skipped.push(skip(SkipReason::NoSupportedProvider { providers }, None));
            }
            continue;
        };
        // A provider identity deleted in Medusa stays behind; so does an account with no other.
        let live: Vec<&MedusaProviderIdentity> =
            supported.iter().copied().filter(|pi| pi.deleted_at.is_none()).collect();
        if identity.deleted_at.is_some() || live.is_empty() {
            skipped.push(skip(SkipReason::Deleted, Some(&first.entity_id)));
            continue;
        }
        for pi in live.iter().filter(|pi| pi.provider == EMAILPASS) {
            holders.entry(email_key(&pi.entity_id).as_str().to_string()).or_default().push(identity.id.clone());
        }
        let left_behind: Vec<(String, String)> = own
            .iter()
            .filter(|pi| pi.deleted_at.is_none() && !IMPORTED_PROVIDERS.contains(&pi.provider.as_str()))
            .map(|pi| (pi.id.clone(), pi.provider.clone()))
            .collect();
        candidates.push((identity, live, left_behind));
    }

    let mut accounts = Vec::new();
    let mut linked = std::collections::HashSet::new();
    'accounts: for (identity, live, left_behind) in candidates {
        let named = live[0].entity_id.clone();
        let skip = |reason| Skipped { auth_identity_id: identity.id.clone(), entity_id: Some(named.clone()), reason };
        let app_metadata = match &identity.app_metadata {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => {
                skipped.push(skip(SkipReason::BadMetadata));
                continue;
            }
        };
        if let Some(id) = app_metadata.get("customer_id").and_then(Value::as_str) {
            linked.insert(id.to_string());
        }
        let mut provider_identities = Vec::with_capacity(live.len());
        for pi in live {
            let (entity_key, password_hash) = if pi.provider == EMAILPASS {
                let key = email_key(&pi.entity_id);
                let others: Vec<String> =
                    holders.get(key.as_str()).into_iter().flatten().filter(|id| **id != identity.id).cloned().collect();
                if !others.is_empty() {
                    skipped.push(skip(SkipReason::SameAddressInSource { others }));
                    continue 'accounts;
                }
                if Email::parse(&pi.entity_id).is_err() {
                    skipped.push(skip(SkipReason::NotAnEmail));
                    continue 'accounts;
                }
                let Some(hash) = pi.password.as_deref() else {
                    skipped.push(skip(SkipReason::NoPassword));
                    continue 'accounts;
                };
                if let Err(why) = ScryptKdfHash::parse(hash) {
                    skipped.push(skip(SkipReason::UnreadableHash(why)));
                    continue 'accounts;
                }
                (key, Some(hash.to_string()))
            } else {
                if pi.entity_id.is_empty() || pi.entity_id.len() > MAX_SUBJECT {
                    skipped.push(skip(SkipReason::BadSubject { provider: pi.provider.clone() }));
                    continue 'accounts;
                }
                (EntityKey::new(pi.entity_id.as_str()), None)
            };
            provider_identities.push(ImportedProviderIdentity {
                id: pi.id.clone(),
                provider: pi.provider.clone(),
                entity_id: pi.entity_id.clone(),
                entity_key,
                password_hash,
                user_metadata: match &pi.user_metadata {
                    Some(Value::Object(map)) => map.clone(),
                    _ => Map::new(),
                },
                created_at: pi.created_at,
                updated_at: pi.updated_at,
            });
        }
        let customer = match app_metadata.get("customer_id").and_then(Value::as_str).filter(|id| !id.is_empty()) {
            None => None,
            Some(id) => match customers.get(id) {
                Some(c) => Some(customer_of(c)),
                None => {
                    skipped.push(skip(SkipReason::CustomerMissing { customer_id: id.to_string() }));
                    continue;
                }
            },
        };
        accounts.push(ImportedAccount {
            auth_identity_id: identity.id.clone(),
            app_metadata,
            security_stamp: format!("{IMPORTED_STAMP_PREFIX}{}", random_hex(16)?),
            created_at: identity.created_at,
            updated_at: identity.updated_at,
            provider_identities,
            customer,
            left_behind,
        });
    }
    let unlinked_customers = customers.keys().filter(|id| !linked.contains(**id)).count();
    Ok(Plan { accounts, skipped, unlinked_customers })
}

fn customer_of(c: &MedusaCustomer) -> Customer {
    Customer {
        id: c.id.clone(),
        email: c.email.clone().unwrap_or_default(),
        first_name: c.first_name.clone(),
        last_name: c.last_name.clone(),
        phone: c.phone.clone(),
        company_name: c.company_name.clone(),
        metadata: match &c.metadata {
            Some(Value::Object(map)) => Some(map.clone()),
            _ => None,
        },
        has_account: c.has_account,
        created_at: c.created_at,
        updated_at: c.updated_at,
        deleted_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn hash() -> String {
        crate::password::scrypt_kdf::tests::make(b"pw", 4, 8, 1, [7; 32])
    }

    fn identity(id: &str, app: Option<Value>) -> MedusaIdentity {
        let t = at("2026-12-05T00:00:00Z");
        MedusaIdentity { id: id.into(), app_metadata: app, created_at: t, updated_at: t, deleted_at: None }
    }

    fn emailpass(id: &str, of: &str, email: &str, hash: &str) -> MedusaProviderIdentity {
        let t = at("2026-12-05T00:00:01Z");
        MedusaProviderIdentity {
            id: id.into(),
            entity_id: email.into(),
            provider: EMAILPASS.into(),
            auth_identity_id: of.into(),
            user_metadata: None,
            password: Some(hash.into()),
            created_at: t,
            updated_at: t,
            deleted_at: None,
        }
    }

    fn customer(id: &str, email: &str) -> MedusaCustomer {
        let t = at("2026-12-05T00:00:02Z");
        MedusaCustomer {
            id: id.into(),
            email: Some(email.into()),
            first_name: Some("Ann".into()),
            last_name: None,
            phone: None,
            company_name: None,
            has_account: true,
            metadata: None,
            created_at: t,
            updated_at: t,
            deleted_at: None,
        }
    }

    fn reasons(plan: &Plan) -> Vec<(&str, &'static str)> {
        plan.skipped.iter().map(|s| (s.auth_identity_id.as_str(), s.reason.code())).collect()
    }

    #[test]
    fn an_account_keeps_ids_links_times_and_hash() {
        let snapshot = MedusaSnapshot {
            identities: vec![identity("authid_A", Some(json!({"customer_id": "cus_A"})))],
            provider_identities: vec![emailpass("pi_A", "authid_A", "Ann@Example.com", &hash())],
            customers: vec![customer("cus_A", "Ann@Example.com"), customer("cus_guest", "g@example.com")],
        };
        let plan = plan(&snapshot).unwrap();
        assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
        let account = &plan.accounts[0];
        assert_eq!(account.auth_identity_id, "authid_A");
        let [pi] = account.provider_identities.as_slice() else { panic!("{account:?}") };
        assert_eq!((pi.id.as_str(), pi.provider.as_str()), ("pi_A", EMAILPASS));
        assert_eq!(pi.entity_id, "Ann@Example.com");
        assert_eq!(account.entity_id(), "Ann@Example.com");
        assert_eq!(pi.entity_key.as_str(), "ann@example.com");
        assert_eq!(pi.password_hash, Some(hash()));
        assert_eq!(account.created_at, at("2026-12-05T00:00:00Z"));
        assert_eq!(account.customer.as_ref().unwrap().id, "cus_A");
        assert_eq!(account.actors(), vec!["customer"]);
        assert!(account.security_stamp.starts_with(IMPORTED_STAMP_PREFIX));
        assert_eq!(plan.unlinked_customers, 1);
        assert!(!format!("{account:?}").contains(&hash()), "Debug shows no hash");
    }

    #[test]
    fn addresses_equal_but_for_case_are_all_left_out() {
        let snapshot = MedusaSnapshot {
            identities: vec![identity("authid_1", None), identity("authid_2", None), identity("authid_3", None)],
            provider_identities: vec![
                emailpass("pi_1", "authid_1", "Bob@x.com", &hash()),
                emailpass("pi_2", "authid_2", "bob@x.com", &hash()),
                emailpass("pi_3", "authid_3", "carol@x.com", &hash()),
            ],
            customers: vec![],
        };
        let plan = plan(&snapshot).unwrap();
        assert_eq!(
            reasons(&plan),
            vec![("authid_1", "same_address_in_source"), ("authid_2", "same_address_in_source")]
        );
        assert_eq!(plan.accounts.len(), 1);
        assert_eq!(plan.accounts[0].actors(), Vec::<String>::new());
    }

    #[test]
    fn unusable_rows_are_left_out_with_their_reason() {
        let truncated = &hash()[..100];
        // logN 30: refused from the header, before any scrypt work.
        let mut bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, hash()).unwrap();
        bytes[7] = 30;
        let costly = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
        let mut deleted = identity("authid_d", None);
        deleted.deleted_at = Some(at("2026-12-05T01:00:00Z"));
        let mut phone = emailpass("pi_g", "authid_g", "+15550100", "");
        phone.provider = "phone".into();
        let snapshot = MedusaSnapshot {
            identities: vec![
                identity("authid_t", None),
                identity("authid_c", None),
                deleted,
                identity("authid_g", None),
                identity("authid_none", None),
                identity("authid_m", Some(json!({"customer_id": "cus_gone"}))),
                identity("authid_n", None),
                identity("authid_e", None),
                identity("authid_j", Some(json!(["not", "an", "object"]))),
            ],
            provider_identities: vec![
                emailpass("pi_t", "authid_t", "t@x.com", truncated),
                emailpass("pi_c", "authid_c", "c@x.com", &costly),
                emailpass("pi_d", "authid_d", "d@x.com", &hash()),
                phone,
                emailpass("pi_m", "authid_m", "m@x.com", &hash()),
                MedusaProviderIdentity { password: None, ..emailpass("pi_n", "authid_n", "n@x.com", "") },
                emailpass("pi_e", "authid_e", "not an address", &hash()),
                emailpass("pi_j", "authid_j", "j@x.com", &hash()),
            ],
            customers: vec![],
        };
        let plan = plan(&snapshot).unwrap();
        assert!(plan.accounts.is_empty());
        let mut got = reasons(&plan);
        got.sort();
        assert_eq!(
            got,
            vec![
                ("authid_c", "unreadable_hash"),
                ("authid_d", "deleted"),
                ("authid_e", "not_an_email"),
                ("authid_g", "unsupported_provider"),
                ("authid_j", "bad_metadata"),
                ("authid_m", "customer_missing"),
                ("authid_n", "no_password"),
                ("authid_none", "unsupported_provider"),
                ("authid_t", "unreadable_hash"),
            ]
        );
        let shown: Vec<String> = plan.skipped.iter().map(|s| s.reason.to_string()).collect();
        assert!(shown.iter().all(|s| !s.contains(&hash()[..20])), "no reason shows a hash: {shown:?}");
    }

    fn social(id: &str, of: &str, provider: &str, subject: &str) -> MedusaProviderIdentity {
        MedusaProviderIdentity {
            provider: provider.into(),
            password: None,
            user_metadata: Some(json!({"email": "someone@example.com", "name": "Someone"})),
            ..emailpass(id, of, subject, "")
        }
    }

    #[test]
    fn google_and_github_sign_ins_move_with_their_subjects() {
        let mut deleted_github = social("pi_b2", "authid_B", "github", "583231");
        deleted_github.deleted_at = Some(at("2026-12-05T01:00:00Z"));
        let mut deleted_emailpass = emailpass("pi_c1", "authid_C", "c@x.com", &hash());
        deleted_emailpass.deleted_at = Some(at("2026-12-05T01:00:00Z"));
        let snapshot = MedusaSnapshot {
            identities: vec![
                identity("authid_A", Some(json!({"customer_id": "cus_A"}))),
                identity("authid_B", None),
                identity("authid_C", None),
                identity("authid_E", None),
            ],
            provider_identities: vec![
                social("pi_a1", "authid_A", "google", "109876543210"),
                // GitHub beside email/password on one identity: both move, emailpass named first.
                social("pi_b1", "authid_B", "github", "583230"),
                emailpass("pi_b0", "authid_B", "b@x.com", &hash()),
                // A provider of the store's own making beside them stays behind, named.
                social("pi_b3", "authid_B", "phone", "+15550100"),
                deleted_github,
                // A deleted emailpass stays behind; the live Google sign-in moves.
                deleted_emailpass,
                social("pi_c2", "authid_C", "google", "42"),
                social("pi_e1", "authid_E", "google", ""),
            ],
            customers: vec![customer("cus_A", "someone@example.com")],
        };
        let plan = plan(&snapshot).unwrap();
        assert_eq!(reasons(&plan), vec![("authid_E", "bad_subject")]);
        type Shape<'a> = (&'a str, Vec<(&'a str, &'a str, &'a str, bool)>);
        let shape: Vec<Shape<'_>> = plan
            .accounts
            .iter()
            .map(|a| {
                let pis = a
                    .provider_identities
                    .iter()
                    .map(|p| {
                        (p.provider.as_str(), p.entity_id.as_str(), p.entity_key.as_str(), p.password_hash.is_some())
                    })
                    .collect();
                (a.auth_identity_id.as_str(), pis)
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("authid_A", vec![("google", "109876543210", "109876543210", false)]),
                ("authid_B", vec![("emailpass", "b@x.com", "b@x.com", true), ("github", "583230", "583230", false)]),
                ("authid_C", vec![("google", "42", "42", false)]),
            ]
        );
        assert_eq!(plan.accounts[0].customer.as_ref().unwrap().id, "cus_A");
        assert_eq!(plan.accounts[0].actors(), vec!["customer"]);
        assert_eq!(plan.accounts[0].provider_identities[0].user_metadata["name"], "Someone");
        assert_eq!(plan.accounts[1].entity_id(), "b@x.com");
        assert_eq!(plan.accounts[1].left_behind, vec![("pi_b3".to_string(), "phone".to_string())]);
        assert!(plan.accounts[0].left_behind.is_empty());
    }
}
