// @generated-by-hand to match `diesel print-schema` (the diesel CLI is not
// installed on the build machine); portable type names so that one file
// serves both backends. Regenerate with `diesel print-schema` when possible.

diesel::table! {
    access_log (seq) {
        seq -> BigInt,
        at -> Timestamp,
        actor_kind -> Text,
        actor -> Text,
        action -> Text,
        card_id -> Nullable<Text>,
        resident_id -> Nullable<Text>,
        clinic_id -> Nullable<Text>,
        channel -> Nullable<Text>,
        outcome -> Nullable<Text>,
        detail -> Nullable<Text>,
        prev_hash -> Binary,
        hash -> Binary,
        step -> Nullable<Text>,
        credential -> Nullable<Text>,
    }
}

diesel::table! {
    access_log_head (id) {
        id -> Integer,
        seq -> BigInt,
        hash -> Binary,
        chain_version -> Integer,
    }
}

diesel::table! {
    admins (id) {
        id -> Text,
        username -> Text,
        password_phc -> Text,
        created_at -> Timestamp,
        disabled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        clinic_id -> Text,
        key_hash -> Binary,
        hint -> Text,
        created_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    card_events (seq) {
        seq -> BigInt,
        card_id -> Text,
        status -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    card_use_daily (day, clinic_id, channel, step, outcome) {
        day -> Date,
        clinic_id -> Text,
        channel -> Text,
        step -> Text,
        outcome -> Text,
        uses -> BigInt,
    }
}

diesel::table! {
    card_use_rollup (dimension, day, value) {
        dimension -> Text,
        day -> Date,
        value -> Text,
        uses -> BigInt,
    }
}

diesel::table! {
    cards (id) {
        id -> Text,
        resident_id -> Text,
        status -> Text,
        issued_at -> Timestamp,
        status_changed_at -> Timestamp,
        status_reason -> Nullable<Text>,
        replaced_by -> Nullable<Text>,
        holder_hash -> Binary,
    }
}

diesel::table! {
    clinics (id) {
        id -> Text,
        code -> Text,
        name -> Text,
        scopes -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    counters (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    links (clinic_id, local_patient_id) {
        clinic_id -> Text,
        local_patient_id -> Text,
        resident_id -> Text,
        created_at -> Timestamp,
        replaced_by -> Nullable<Text>,
    }
}

diesel::table! {
    documents (number_index) {
        number_index -> Binary,
        resident_id -> Text,
        doc_type -> Text,
        country -> Nullable<Text>,
        number_enc -> Binary,
        created_at -> Timestamp,
    }
}

diesel::table! {
    guardians (id) {
        id -> Text,
        dependant_id -> Text,
        guardian_id -> Text,
        relation -> Text,
        consent_by -> Nullable<Text>,
        consent_at -> Nullable<Timestamp>,
        created_by -> Text,
        created_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
        end_reason -> Nullable<Text>,
    }
}

diesel::table! {
    kiosk_sessions (token_hash) {
        token_hash -> Binary,
        clinic_id -> Text,
        api_key_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    login_failures (username) {
        username -> Text,
        count -> BigInt,
        last_at -> Timestamp,
    }
}

diesel::table! {
    login_throttle (source, username) {
        source -> Text,
        username -> Text,
        count -> BigInt,
        last_at -> Timestamp,
    }
}

diesel::table! {
    replay (token_id) {
        token_id -> Binary,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    resident_merges (source_id) {
        source_id -> Text,
        into_id -> Text,
        at -> Timestamp,
        actor -> Text,
    }
}

diesel::table! {
    residents (id) {
        id -> Text,
        name -> Text,
        national_id_enc -> Nullable<Binary>,
        national_id_index -> Nullable<Binary>,
        sex -> Text,
        birth_date -> Date,
        phone_enc -> Nullable<Binary>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Binary,
        admin_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        public_key -> Binary,
        sealed_private -> Binary,
        state -> Text,
        created_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        alg -> Text,
    }
}

diesel::table! {
    node_keys (kid) {
        kid -> Text,
        public_key -> Binary,
        sealed_private -> Binary,
        created_at -> Timestamp,
    }
}

diesel::table! {
    federation_nonces (nonce) {
        nonce -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    foreign_cards (card_id) {
        card_id -> Text,
        issuer -> Text,
        resident_id -> Text,
        status -> Text,
        seen_at -> Timestamp,
    }
}

diesel::table! {
    foreign_card_events (seq) {
        seq -> BigInt,
        card_id -> Text,
        issuer -> Text,
        status -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    federation_cursors (issuer) {
        issuer -> Text,
        cursor -> Text,
    }
}

diesel::table! {
    federation_peers (issuer) {
        issuer -> Text,
        disclosure -> Text,
        clinic_id -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    foreign_links (clinic_id, local_patient_id) {
        clinic_id -> Text,
        local_patient_id -> Text,
        issuer -> Text,
        resident_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    temporary_cards (card_id) {
        card_id -> Text,
        resident_id -> Text,
        issuing_clinic_id -> Text,
        valid_until -> Timestamp,
        name_known -> Bool,
        birth_year -> Nullable<Integer>,
        note_enc -> Nullable<Binary>,
        created_at -> Timestamp,
    }
}

diesel::joinable!(api_keys -> clinics (clinic_id));
diesel::joinable!(card_events -> cards (card_id));
diesel::joinable!(cards -> residents (resident_id));
diesel::joinable!(documents -> residents (resident_id));
diesel::joinable!(kiosk_sessions -> api_keys (api_key_id));
diesel::joinable!(kiosk_sessions -> clinics (clinic_id));
diesel::joinable!(links -> clinics (clinic_id));
diesel::joinable!(links -> residents (resident_id));
diesel::joinable!(sessions -> admins (admin_id));
diesel::joinable!(temporary_cards -> cards (card_id));

diesel::allow_tables_to_appear_in_same_query!(
    access_log,
    access_log_head,
    admins,
    api_keys,
    card_events,
    card_use_daily,
    card_use_rollup,
    cards,
    clinics,
    counters,
    documents,
    federation_cursors,
    federation_nonces,
    federation_peers,
    foreign_card_events,
    foreign_cards,
    foreign_links,
    guardians,
    kiosk_sessions,
    links,
    login_failures,
    login_throttle,
    node_keys,
    replay,
    resident_merges,
    residents,
    sessions,
    signing_keys,
    temporary_cards,
);
