//! The portable schema: one description for both backends (migrations/postgres and
//! migrations/sqlite create the same tables).

diesel::table! {
    auth_identity (id) {
        id -> Text,
        tenant_id -> Text,
        app_metadata -> Text,
        security_stamp -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    provider_identity (id) {
        id -> Text,
        tenant_id -> Text,
        auth_identity_id -> Text,
        provider -> Text,
        entity_id -> Text,
        entity_key -> Text,
        provider_metadata -> Text,
        user_metadata -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    password_reset_token (id) {
        id -> Text,
        tenant_id -> Text,
        provider_identity_id -> Text,
        token_hash -> Text,
        expires_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    event (id) {
        id -> Text,
        tenant_id -> Text,
        name -> Text,
        payload -> Text,
        sealed_secret -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    event_delivery (event_id, sink) {
        event_id -> Text,
        sink -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
        expired_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        locked_until -> Nullable<Timestamp>,
        dead_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(provider_identity -> auth_identity (auth_identity_id));
diesel::joinable!(password_reset_token -> provider_identity (provider_identity_id));
diesel::joinable!(event_delivery -> event (event_id));

diesel::table! {
    auth_session (id) {
        id -> Text,
        tenant_id -> Text,
        auth_identity_id -> Text,
        actor_type -> Text,
        auth_provider -> Text,
        security_stamp -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    customer (id) {
        id -> Text,
        tenant_id -> Text,
        email -> Text,
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        phone -> Nullable<Text>,
        company_name -> Nullable<Text>,
        metadata -> Nullable<Text>,
        has_account -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(auth_session -> auth_identity (auth_identity_id));

diesel::table! {
    tenant (id) {
        id -> Text,
        status -> Text,
        settings -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        revision -> BigInt,
    }
}

diesel::table! {
    /// One row (`id` = 1): the directory's revision.
    tenant_directory (id) {
        id -> Integer,
        revision -> BigInt,
    }
}

diesel::table! {
    signing_key (kid) {
        kid -> Text,
        tenant_id -> Text,
        algorithm -> Text,
        state -> Text,
        private_sealed -> Text,
        public_jwk -> Text,
        created_at -> Timestamp,
        state_since -> Timestamp,
    }
}

diesel::table! {
    reset_request (id) {
        id -> Text,
        tenant_id -> Text,
        actor_type -> Text,
        provider -> Text,
        sealed -> Text,
        created_at -> Timestamp,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::joinable!(signing_key -> tenant (tenant_id));

diesel::table! {
    oauth_state (state_hash) {
        state_hash -> Text,
        tenant_id -> Text,
        actor_type -> Text,
        provider -> Text,
        nonce_hash -> Nullable<Text>,
        pkce_verifier_sealed -> Text,
        redirect_uri -> Text,
        link_identity_id -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    auth_identity,
    provider_identity,
    password_reset_token,
    event,
    event_delivery,
    auth_session,
    customer,
    tenant,
    tenant_directory,
    signing_key
);

diesel::table! {
    rate_limit (key) {
        key -> Text,
        tokens -> Double,
        updated_at -> Timestamp,
    }
}
