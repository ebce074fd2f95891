//! Black-box tests of the storage layer, every behaviour on SQLite and (when
//! HEALTHCARD_TEST_PG_URL is set) PostgreSQL.

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use chrono::{Duration as Span, NaiveDate};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use healthcard::crypto::{MasterKey, SecretKind, SecretToken};
use healthcard::domain::*;
use healthcard::store::access_log::{ActorKind, NewLogEntry};
use healthcard::store::residents::NewResident;
use healthcard::store::{
    self, access_log, admins, cards, clinics, import, links, replay, residents, resolve, sessions,
    signing_keys, Conflict, DbConnection, DbPool, StoreError,
};

fn key() -> MasterKey {
    MasterKey::from_bytes([7; 32])
}

fn open(url: &str) -> DbPool {
    let pool = store::connect(url, 10, Duration::from_secs(10)).expect("connect");
    let mut conn = pool.get().expect("connection");
    store::migrate(&mut conn).expect("migrate");
    store::ping(&mut conn).expect("ping");
    // Migrating twice is a no-op.
    store::migrate(&mut conn).expect("migrate again");
    pool
}

/// A valid national ID number, different for each `n` (< 36500).
fn nid_text(n: u32) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let birth = NaiveDate::from_ymd_opt(1930, 1, 1).unwrap() + Span::days(i64::from(n % 30000));
    let body = format!(
        "370102{}{:03}",
        birth.format("%Y%m%d"),
        n / 30000 * 100 + n % 100
    );
    let sum: u32 = body
        .bytes()
        .zip(W)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

fn nid(n: u32) -> NationalId {
    NationalId::parse(&nid_text(n)).unwrap()
}

fn new_resident(n: u32) -> NewResident {
    NewResident::with_national_id(
        PersonName::parse("欧阳娜娜").unwrap(),
        nid(n),
        Some(MobileNumber::parse("+86 138 1234 5678").unwrap()),
    )
}

fn resident(conn: &mut DbConnection, n: u32) -> residents::Resident {
    residents::create(
        conn,
        &key(),
        &new_resident(n),
        store::Conflict::NationalIdRegistered,
    )
    .unwrap()
}

fn clinic(conn: &mut DbConnection, code: &str) -> (clinics::Clinic, SecretToken) {
    clinics::create(
        conn,
        &ClinicCode::parse(code).unwrap(),
        "Jinan Central Hospital",
        Scopes::parse("verify,link").unwrap(),
    )
    .unwrap()
}

/// A second, empty database of the same backend as `url` (SQLite in `dir`).
fn fresh_like(url: &str, dir: &tempfile::TempDir) -> String {
    if url.starts_with("postgres") {
        common::db::fresh_pg_url().unwrap()
    } else {
        common::db::sqlite_url(dir)
    }
}

fn conflict(r: Result<impl std::fmt::Debug, StoreError>) -> &'static str {
    match r {
        Err(StoreError::Conflict(kind)) => kind.code(),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

both_backends!(residents_create_find_and_refuse_duplicates, |url| {
    let pool = open(url);
    let c = &mut pool.get().unwrap();
    let k = key();
    let r = resident(c, 1);
    assert_eq!(r.national_id(), Some(&nid(1)));
    assert_eq!(r.name, "欧阳娜娜");
    assert_eq!(r.sex, nid(1).sex());
    assert_eq!(r.birth_date, nid(1).birth_date());
    assert_eq!(r.phone.as_deref(), Some("13812345678"));
    assert_eq!(residents::get(c, &k, r.id).unwrap(), r);
    assert_eq!(
        residents::find_by_national_id(c, &k, &nid(1)).unwrap(),
        Some(r.clone())
    );
    assert_eq!(
        residents::find_by_national_id(c, &k, &nid(2)).unwrap(),
        None
    );
    assert!(matches!(
        residents::get(c, &k, ResidentId::new()),
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        conflict(residents::create(
            c,
            &k,
            &new_resident(1),
            store::Conflict::NationalIdRegistered
        )),
        "national_id_registered"
    );
    // Another master key cannot find or open it.
    let other = MasterKey::from_bytes([8; 32]);
    assert_eq!(
        residents::find_by_national_id(c, &other, &nid(1)).unwrap(),
        None
    );
    assert!(matches!(
        residents::get(c, &other, r.id),
        Err(StoreError::Crypto)
    ));
    assert_eq!(residents::count(c).unwrap(), 1);
});

both_backends!(national_id_and_phone_are_not_stored_in_clear, |url| {
    let pool = open(url);
    let c = &mut pool.get().unwrap();
    resident(c, 1);
    use store::schema::documents::dsl as d;
    use store::schema::residents::dsl as r;
    let phones: Vec<Option<Vec<u8>>> = r::residents.select(r::phone_enc).load(c).unwrap();
    let docs: Vec<(Vec<u8>, Vec<u8>)> = d::documents
        .select((d::number_enc, d::number_index))
        .load(c)
        .unwrap();
    assert_eq!((phones.len(), docs.len()), (1, 1));
    // New residents leave the old columns empty: the number lives once.
    let old: Vec<Option<Vec<u8>>> = r::residents.select(r::national_id_enc).load(c).unwrap();
    assert_eq!(old, [None]);
    #[allow(clippy::type_complexity)]
    let raw: Vec<(String, Vec<u8>, Vec<u8>, Option<Vec<u8>>)> = docs
        .into_iter()
        .zip(phones)
        .map(|((enc, index), phone)| (String::new(), enc, index, phone))
        .collect();
    let plain = nid_text(1);
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for (_, enc, index, phone) in &raw {
        for col in [enc, index, phone.as_ref().unwrap()] {
            assert!(!contains(col, plain.as_bytes()));
            assert!(!contains(col, b"13812345678"));
        }
    }
    if store::backend(c) == store::Backend::Sqlite {
        // The database file and its write-ahead log, whichever holds the rows.
        let mut bytes = std::fs::read(url).unwrap();
        bytes.extend(std::fs::read(format!("{url}-wal")).unwrap_or_default());
        assert!(
            contains(&bytes, "欧阳娜娜".as_bytes()),
            "the scan itself works"
        );
        assert!(!contains(&bytes, plain.as_bytes()), "ID number in the file");
        assert!(!contains(&bytes, b"13812345678"), "phone in the file");
    }
});

both_backends!(cards_one_card_rule_and_every_transition, |url| {
    use CardAction::*;
    let pool = open(url);
    let c = &mut pool.get().unwrap();
    let r = resident(c, 1);
    let (card, holder) = cards::issue(c, r.id).unwrap();
    assert_eq!(card.status, CardStatus::Active);
    assert!(holder.expose().starts_with("hch_"));
    assert_eq!(cards::get(c, card.id).unwrap(), card);
    assert_eq!(
        cards::find_by_holder(c, &holder.hash()).unwrap(),
        Some(card.clone())
    );
    let stranger = SecretToken::generate(SecretKind::Holder).hash();
    assert_eq!(cards::find_by_holder(c, &stranger).unwrap(), None);
    assert_eq!(conflict(cards::issue(c, r.id)), "card_exists");
    assert!(matches!(
        cards::issue(c, ResidentId::new()),
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        cards::get(c, CardId::new()),
        Err(StoreError::NotFound)
    ));

    // active -> suspended -> (suspend refused) -> active -> (reinstate refused)
    let s = cards::transition(c, card.id, Suspend, Some("phone lost")).unwrap();
    assert_eq!(s.status, CardStatus::Suspended);
    assert_eq!(s.status_reason.as_deref(), Some("phone lost"));
    assert_eq!(cards::get(c, card.id).unwrap(), s);
    assert_eq!(
        conflict(cards::issue(c, r.id)),
        "card_exists",
        "suspended holds the slot"
    );
    let refused = cards::transition(c, card.id, Suspend, None).unwrap_err();
    assert!(matches!(refused, StoreError::Lifecycle(e) if e.code() == "card_already_suspended"));
    let a = cards::transition(c, card.id, Reinstate, None).unwrap();
    assert_eq!(a.status, CardStatus::Active);
    assert!(matches!(
        cards::transition(c, card.id, Reinstate, None),
        Err(StoreError::Lifecycle(_))
    ));

    // reissue: old replaced, new active, one live card still.
    let (new, holder2) = cards::reissue(c, card.id, Some("card lost")).unwrap();
    assert_eq!(new.status, CardStatus::Active);
    assert_ne!(holder2, holder);
    let old = cards::get(c, card.id).unwrap();
    assert_eq!(old.status, CardStatus::Replaced);
    assert_eq!(old.replaced_by, Some(new.id));
    assert_eq!(
        cards::find_by_holder(c, &holder2.hash()).unwrap(),
        Some(new.clone())
    );
    for action in CardAction::ALL.into_iter().filter(|a| *a != Reissue) {
        let e = cards::transition(c, card.id, action, None).unwrap_err();
        assert!(matches!(e, StoreError::Lifecycle(e) if e.code() == "card_replaced"));
    }
    assert!(matches!(
        cards::reissue(c, card.id, None),
        Err(StoreError::Lifecycle(_))
    ));
    assert_eq!(cards::for_resident(c, r.id).unwrap().len(), 2);

    // suspended -> revoked (final), then a new card may be issued.
    cards::transition(c, new.id, Suspend, None).unwrap();
    let revoked = cards::transition(c, new.id, Revoke, Some("fraud")).unwrap();
    assert_eq!(revoked.status, CardStatus::Revoked);
    for action in CardAction::ALL {
        let e = if action == Reissue {
            cards::reissue(c, new.id, None).map(|x| x.0).unwrap_err()
        } else {
            cards::transition(c, new.id, action, None).unwrap_err()
        };
        assert!(matches!(e, StoreError::Lifecycle(e) if e.code() == "card_revoked"));
    }
    let (third, _) = cards::issue(c, r.id).unwrap();
    // active -> revoked directly
    assert_eq!(
        cards::transition(c, third.id, Revoke, None).unwrap().status,
        CardStatus::Revoked
    );

    // The feed: every change in order, resumable by cursor.
    let (all, next) = cards::changes_since(c, 0, 100).unwrap();
    let seen: Vec<(CardId, CardStatus)> = all.iter().map(|x| (x.card_id, x.status)).collect();
    assert_eq!(
        seen,
        vec![
            (card.id, CardStatus::Suspended),
            (card.id, CardStatus::Active),
            (card.id, CardStatus::Replaced),
            (new.id, CardStatus::Suspended),
            (new.id, CardStatus::Revoked),
            (third.id, CardStatus::Revoked),
        ]
    );
    let (first2, cursor) = cards::changes_since(c, 0, 2).unwrap();
    assert_eq!(first2, all[..2]);
    let (rest, next2) = cards::changes_since(c, cursor, 100).unwrap();
    assert_eq!(rest, all[2..]);
    assert_eq!(next2, next);
    assert_eq!(cards::changes_since(c, next, 100).unwrap(), (vec![], next));
    let mut counts = cards::count_by_status(c).unwrap();
    counts.sort_by_key(|x| x.0.as_str());
    assert_eq!(
        counts,
        vec![(CardStatus::Replaced, 1), (CardStatus::Revoked, 2)]
    );
});

both_backends!(links_are_idempotent_and_conflicts_refused, |url| {
    let pool = open(url);
    let c = &mut pool.get().unwrap();
    let (a, b) = (resident(c, 1), resident(c, 2));
    let (h1, _) = clinic(c, "H1");
    let (h2, _) = clinic(c, "H2");
    let mrn = LocalPatientId::parse("MRN-0001").unwrap();
    let l = links::create(c, h1.id, &mrn, a.id).unwrap();
    assert_eq!(
        links::create(c, h1.id, &mrn, a.id).unwrap(),
        l,
        "idempotent"
    );
    assert_eq!(
        conflict(links::create(c, h1.id, &mrn, b.id)),
        "link_conflict"
    );
    links::create(c, h2.id, &mrn, b.id).unwrap();
    let mrn2 = LocalPatientId::parse("门诊-77").unwrap();
    links::create(c, h2.id, &mrn2, a.id).unwrap();
    assert_eq!(
        links::find(c, h1.id, &mrn).unwrap().unwrap().resident_id,
        a.id
    );
    assert_eq!(links::find(c, h1.id, &mrn2).unwrap(), None);
    assert!(matches!(
        links::create(c, h1.id, &mrn2, ResidentId::new()),
        Err(StoreError::NotFound)
    ));
    let codes = |v: Vec<(ClinicCode, LocalPatientId, ClinicId)>| {
        v.into_iter()
            .map(|(c, l, _)| format!("{c}:{l}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        codes(links::for_resident(c, a.id).unwrap()),
        ["H1:MRN-0001", "H2:门诊-77"]
    );
    assert_eq!(
        codes(links::for_resident(c, b.id).unwrap()),
        ["H2:MRN-0001"]
    );
});

both_backends!(
    verification_resolves_card_resident_and_local_number,
    |url| {
        let pool = open(url);
        let c = &mut pool.get().unwrap();
        let k = key();
        let r = resident(c, 1);
        let (card, _) = cards::issue(c, r.id).unwrap();
        let (h1, _) = clinic(c, "H1");
        let (h2, _) = clinic(c, "H2");
        links::create(c, h1.id, &LocalPatientId::parse("A-1").unwrap(), r.id).unwrap();
        let res = resolve::card_for_verification(c, &k, card.id, h1.id)
            .unwrap()
            .unwrap();
        assert_eq!(res.card, card);
        assert_eq!(res.resident, r);
        assert_eq!(res.local_patient_id.as_deref(), Some("A-1"));
        let res2 = resolve::card_for_verification(c, &k, card.id, h2.id)
            .unwrap()
            .unwrap();
        assert_eq!(res2.local_patient_id, None);
        assert_eq!(
            resolve::card_for_verification(c, &k, CardId::new(), h1.id).unwrap(),
            None
        );
        // A replaced card still resolves (the caller reports card_replaced).
        cards::reissue(c, card.id, None).unwrap();
        let res3 = resolve::card_for_verification(c, &k, card.id, h1.id)
            .unwrap()
            .unwrap();
        assert_eq!(res3.card.status, CardStatus::Replaced);
    }
);

both_backends!(
    verification_read_of_a_batch_answers_each_scan_in_order,
    |url| {
        let pool = open(url);
        let c = &mut pool.get().unwrap();
        let k = key();
        let (h1, _) = clinic(c, "H1");
        let (h2, _) = clinic(c, "H2");
        let a = resident(c, 1);
        let b = resident(c, 2);
        let (card_a, _) = cards::issue(c, a.id).unwrap();
        let (card_b, _) = cards::issue(c, b.id).unwrap();
        links::create(c, h1.id, &LocalPatientId::parse("A-1").unwrap(), a.id).unwrap();
        links::create(c, h2.id, &LocalPatientId::parse("B-2").unwrap(), a.id).unwrap();
        links::create(c, h2.id, &LocalPatientId::parse("B-9").unwrap(), b.id).unwrap();
        let missing = CardId::new();
        // The same card asked by two clinics, twice by one, and a card that
        // does not exist, in one batch.
        let wanted = [
            (card_a.id, h1.id),
            (card_b.id, h1.id),
            (missing, h2.id),
            (card_a.id, h2.id),
            (card_b.id, h2.id),
            (card_a.id, h1.id),
        ];
        let got: Vec<Option<(CardId, ResidentId, Option<String>)>> =
            resolve::cards_for_verification(c, &k, &wanted)
                .unwrap()
                .into_iter()
                .map(|r| {
                    r.unwrap()
                        .map(|r| (r.card.id, r.resident.id, r.local_patient_id))
                })
                .collect();
        let some = |card: CardId, res: ResidentId, local: Option<&str>| {
            Some((card, res, local.map(str::to_owned)))
        };
        assert_eq!(
            got,
            [
                some(card_a.id, a.id, Some("A-1")),
                some(card_b.id, b.id, None),
                None,
                some(card_a.id, a.id, Some("B-2")),
                some(card_b.id, b.id, Some("B-9")),
                some(card_a.id, a.id, Some("A-1")),
            ]
        );
        assert!(resolve::cards_for_verification(c, &k, &[])
            .unwrap()
            .is_empty());
        // Every scan of the batch must agree with the one-card read.
        for (card, clinic) in wanted {
            let one = resolve::card_for_verification(c, &k, card, clinic).unwrap();
            let many = resolve::cards_for_verification(c, &k, &[(card, clinic)])
                .unwrap()
                .pop()
                .unwrap()
                .unwrap();
            assert_eq!(one, many);
        }
    }
);

both_backends!(
    clinics_authenticate_by_key_hash_and_revoked_keys_fail,
    |url| {
        let pool = open(url);
        let c = &mut pool.get().unwrap();
        let (h1, key1) = clinic(c, "H1");
        assert!(key1.expose().starts_with("hck_"));
        assert_eq!(h1.scopes.to_string(), "verify,link");
        assert_eq!(
            clinics::authenticate(c, &key1.hash()).unwrap(),
            Some(h1.clone())
        );
        let wrong = SecretToken::generate(SecretKind::ApiKey);
        assert_eq!(clinics::authenticate(c, &wrong.hash()).unwrap(), None);
        assert_eq!(
            conflict(clinics::create(
                c,
                &ClinicCode::parse("H1").unwrap(),
                "x",
                Scopes::parse("verify").unwrap()
            )),
            "clinic_code_taken"
        );
        let (info2, key2) = clinics::add_key(c, h1.id).unwrap();
        assert!(key2.expose().starts_with(info2.hint.trim_end_matches('…')));
        let keys = clinics::list_keys(c, h1.id).unwrap();
        assert_eq!(keys.len(), 2);
        let first = keys.iter().find(|k| k.id != info2.id).unwrap();
        clinics::revoke_key(c, &first.id).unwrap();
        clinics::revoke_key(c, &first.id).unwrap();
        assert_eq!(clinics::authenticate(c, &key1.hash()).unwrap(), None);
        assert_eq!(
            clinics::authenticate(c, &key2.hash()).unwrap(),
            Some(h1.clone())
        );
        assert!(clinics::list_keys(c, h1.id)
            .unwrap()
            .iter()
            .any(|k| k.revoked_at.is_some()));
        assert!(matches!(
            clinics::revoke_key(c, "nope"),
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            clinics::add_key(c, ClinicId::new()),
            Err(StoreError::NotFound)
        ));
        assert_eq!(
            clinics::find_by_code(c, &ClinicCode::parse("H1").unwrap()).unwrap(),
            Some(h1.clone())
        );
        assert_eq!(clinics::get(c, h1.id).unwrap(), h1);
        clinic(c, "A0");
        let codes: Vec<String> = clinics::list(c)
            .unwrap()
            .iter()
            .map(|x| x.code.to_string())
            .collect();
        assert_eq!(codes, ["A0", "H1"]);
    }
);

both_backends!(replay_accepts_a_token_id_once, |url| {
    let pool = open(url);
    let c = &mut pool.get().unwrap();
    let t = store::now();
    let id = [1u8; 16];
    assert!(replay::accept_once(c, &id, t + Span::seconds(120)).unwrap());
    assert!(!replay::accept_once(c, &id, t + Span::seconds(120)).unwrap());
    assert!(replay::accept_once(c, &[2u8; 16], t - Span::seconds(1)).unwrap());
    assert_eq!(replay::purge_expired(c, t).unwrap(), 1);
    assert!(!replay::accept_once(c, &id, t + Span::seconds(120)).unwrap());
});

both_backends!(replay_batch_accepts_each_id_once_first_wins, |url| {
    let pool = open(url);
    let c = &mut pool.get().unwrap();
    let exp = store::now() + Span::seconds(120);
    assert!(replay::accept_once(c, &[1u8; 16], exp).unwrap());
    // Seen before, new, the same new id again within the batch, new.
    let batch = [
        ([1u8; 16], exp),
        ([2u8; 16], exp),
        ([2u8; 16], exp),
        ([3u8; 16], exp),
    ];
    assert_eq!(
        replay::accept_many(c, &batch).unwrap(),
        [false, true, false, true]
    );
    assert_eq!(
        replay::accept_many(c, &batch).unwrap(),
        [false, false, false, false]
    );
    assert!(replay::accept_many(c, &[]).unwrap().is_empty());
    // More rows than one INSERT takes.
    let many: Vec<([u8; 16], _)> = (0..2500u32)
        .map(|i| {
            let mut id = [9u8; 16];
            id[..4].copy_from_slice(&i.to_be_bytes());
            (id, exp)
        })
        .collect();
    let first = replay::accept_many(c, &many).unwrap();
    assert_eq!(first.len(), 2500);
    assert!(first.iter().all(|&fresh| fresh));
    assert!(replay::accept_many(c, &many)
        .unwrap()
        .iter()
        .all(|&fresh| !fresh));
});

both_backends!(admins_sessions_and_login_throttle, |url| {
    let pool = open(url);
    let c = &mut pool.get().unwrap();
    let u = Username::parse("Alice").unwrap();
    assert_eq!(admins::count(c).unwrap(), 0);
    let a = admins::create(c, &u, "$argon2id$fake").unwrap();
    assert_eq!(
        conflict(admins::create(c, &Username::parse("alice").unwrap(), "x")),
        "username_taken"
    );
    assert_eq!(admins::find_by_username(c, &u).unwrap(), Some(a.clone()));
    assert!(!format!("{a:?}").contains("argon2"));
    let s = SecretToken::generate(SecretKind::Session);
    let t = store::now();
    sessions::create(c, a.id, &s.hash(), t + Span::hours(8)).unwrap();
    assert_eq!(
        sessions::find_valid(c, &s.hash(), t).unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        sessions::find_valid(c, &s.hash(), t + Span::hours(9)).unwrap(),
        None
    );
    sessions::delete(c, &s.hash()).unwrap();
    assert_eq!(sessions::find_valid(c, &s.hash(), t).unwrap(), None);

    // A disabled account's sessions stop at once and stay gone after enabling.
    let s2 = SecretToken::generate(SecretKind::Session);
    sessions::create(c, a.id, &s2.hash(), t + Span::hours(8)).unwrap();
    let d = admins::set_disabled(c, &u, Some(t)).unwrap();
    assert_eq!(d.disabled_at, Some(t));
    assert_eq!(sessions::find_valid(c, &s2.hash(), t).unwrap(), None);
    assert!(admins::set_disabled(c, &u, None)
        .unwrap()
        .disabled_at
        .is_none());
    assert_eq!(sessions::find_valid(c, &s2.hash(), t).unwrap(), None);
    assert!(matches!(
        admins::set_disabled(c, &Username::parse("nobody").unwrap(), None),
        Err(StoreError::NotFound)
    ));

    // Failures: three counters per attempt; old rows count as none and restart at one.
    use healthcard::store::login_throttle::{self as lf, Failures};
    let since = t - Span::hours(24);
    let none = lf::read(c, "10.0.0.1", "alice", since).unwrap();
    assert_eq!(none.pair, Failures::default());
    lf::record(c, "10.0.0.1", Some("alice"), t, since).unwrap();
    lf::record(c, "10.0.0.1", Some("alice"), t, since).unwrap();
    lf::record(c, "10.0.0.2", Some("alice"), t, since).unwrap();
    lf::record(c, "10.0.0.1", None, t, since).unwrap();
    let n = lf::read(c, "10.0.0.1", "alice", since).unwrap();
    assert_eq!((n.pair.count, n.source.count, n.username.count), (2, 3, 3));
    assert_eq!(n.pair.last_at, Some(t));
    let later = t + Span::hours(25);
    assert_eq!(
        lf::read(c, "10.0.0.1", "alice", later - Span::hours(24))
            .unwrap()
            .pair,
        Failures::default()
    );
    lf::record(c, "10.0.0.1", Some("alice"), later, later - Span::hours(24)).unwrap();
    assert_eq!(
        lf::read(c, "10.0.0.1", "alice", later - Span::hours(24))
            .unwrap()
            .pair
            .count,
        1
    );
    lf::clear_after_success(c, "10.0.0.1", "alice").unwrap();
    let n = lf::read(c, "10.0.0.2", "alice", since).unwrap();
    assert_eq!(
        (n.pair.count, n.username.count),
        (1, 0),
        "other sources' pairs stay"
    );
    assert_eq!(lf::clear_username(c, "alice").unwrap(), 1);
    // Housekeeping's purge drops only rows older than its cut-off.
    lf::record(c, "10.0.0.9", Some("bob"), t, since).unwrap();
    assert_eq!(lf::purge(c, t).unwrap(), 0, "nothing older than t");
    assert_eq!(lf::read(c, "10.0.0.9", "bob", since).unwrap().pair.count, 1);
    assert_eq!(
        lf::purge(c, t + Span::seconds(1)).unwrap(),
        4,
        "all but 10.0.0.1's"
    );
    let n = lf::read(c, "10.0.0.1", "x", later - Span::hours(1)).unwrap();
    assert_eq!(n.source.count, 1, "the row touched later stays");
});

both_backends!(signing_keys_made_before_algorithms_read_as_ed25519, |url| {
    use healthcard::store::schema::signing_keys as t;
    let pool = open(url);
    let c = &mut pool.get().unwrap();
    // A row written as the code before the alg column wrote it.
    diesel::insert_into(t::table)
        .values((
            t::kid.eq("old"),
            t::public_key.eq(&b"p"[..]),
            t::sealed_private.eq(&b"s"[..]),
            t::state.eq("active"),
            t::created_at.eq(chrono::Utc::now().naive_utc()),
        ))
        .execute(c)
        .unwrap();
    assert_eq!(signing_keys::list(c).unwrap()[0].alg, "ed25519");
    // And the column takes only the three names.
    assert!(
        signing_keys::insert_active(c, "new", "rsa", b"p", b"s").is_err(),
        "alg is checked"
    );
    assert_eq!(
        signing_keys::list(c).unwrap().len(),
        1,
        "nothing half-written"
    );
});

both_backends!(signing_keys_rotate_and_revoke, |url| {
    use signing_keys::KeyState;
    let pool = open(url);
    let c = &mut pool.get().unwrap();
    signing_keys::insert_active(c, "kid1", "ed25519", b"pub1", b"sealed1").unwrap();
    signing_keys::insert_active(c, "kid2", "sm2", b"pub2", b"sealed2").unwrap();
    let keys = signing_keys::list(c).unwrap();
    let states: Vec<(&str, KeyState)> = keys.iter().map(|k| (k.kid.as_str(), k.state)).collect();
    assert_eq!(
        states,
        [("kid1", KeyState::Retired), ("kid2", KeyState::Active)]
    );
    assert!(keys[0].retired_at.is_some());
    assert_eq!(keys[1].public_key, b"pub2");
    assert_eq!(keys[1].sealed_private, b"sealed2");
    assert_eq!(
        (keys[0].alg.as_str(), keys[1].alg.as_str()),
        ("ed25519", "sm2")
    );
    signing_keys::revoke(c, "kid1").unwrap();
    signing_keys::revoke(c, "kid1").unwrap();
    assert_eq!(signing_keys::list(c).unwrap()[0].state, KeyState::Revoked);
    assert!(matches!(
        signing_keys::revoke(c, "nope"),
        Err(StoreError::NotFound)
    ));
    assert!(
        signing_keys::insert_active(c, "kid2", "ed25519", b"p", b"s").is_err(),
        "kid is unique"
    );
    assert_eq!(
        signing_keys::list(c).unwrap()[1].state,
        KeyState::Active,
        "rolled back"
    );
});

fn log_entry(i: usize) -> NewLogEntry {
    let mut e = NewLogEntry::new(ActorKind::Clinic, format!("clinic-{i}"), "verify");
    e.card_id = Some(CardId::new());
    e.channel = Some(Channel::Kiosk);
    e.outcome = Some("valid".into());
    e
}

/// The access log verifies, with `rows` rows.
fn assert_whole_chain(c: &mut DbConnection, rows: u64) {
    assert_eq!(
        access_log::verify_chain(c, &key().chain_key()).unwrap(),
        access_log::ChainReport {
            rows_checked: rows,
            first_bad: None
        }
    );
}

/// A fresh database with a 10-row chain that verifies.
fn chain_of_ten(url: &str) -> DbPool {
    let pool = open(url);
    let c = &mut pool.get().unwrap();
    let first: Vec<NewLogEntry> = (0..3).map(log_entry).collect();
    assert_eq!(
        access_log::append(c, &key().chain_key(), &first).unwrap(),
        vec![1, 2, 3]
    );
    let rest: Vec<NewLogEntry> = (3..10).map(log_entry).collect();
    assert_eq!(
        access_log::append(c, &key().chain_key(), &rest).unwrap(),
        (4..=10).collect::<Vec<i64>>()
    );
    assert_eq!(
        access_log::append(c, &key().chain_key(), &[]).unwrap(),
        Vec::<i64>::new()
    );
    let report = access_log::verify_chain(c, &key().chain_key()).unwrap();
    assert_eq!(report.rows_checked, 10);
    assert_eq!(report.first_bad, None);
    pool
}

both_backends!(access_log_reads_by_card_and_resident, |url| {
    let pool = open(url);
    let c = &mut pool.get().unwrap();
    let (card, resident) = (CardId::new(), ResidentId::new());
    let mut entries = vec![log_entry(0), log_entry(1), log_entry(2)];
    for e in &mut entries[1..] {
        e.card_id = Some(card);
        e.resident_id = Some(resident);
    }
    entries[2].detail = Some(format!("looked up {}", nid_text(5)));
    access_log::append(c, &key().chain_key(), &entries).unwrap();
    let by_card = access_log::for_card(c, card, 10).unwrap();
    assert_eq!(by_card.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 2]);
    assert_eq!(by_card[0].detail.as_deref(), Some("[redacted]"));
    assert_eq!(by_card[1].channel, Some(Channel::Kiosk));
    assert_eq!(by_card[1].actor, "clinic-1");
    assert_eq!(access_log::for_resident(c, resident, 1).unwrap().len(), 1);
});

/// What an attacker with the database's owner rights can do: drop the
/// triggers that keep the access log append-only.
fn drop_append_only_triggers(c: &mut DbConnection) {
    c.batch_execute(match *c {
        DbConnection::Sqlite(_) => {
            "DROP TRIGGER access_log_no_update; DROP TRIGGER access_log_no_delete;"
        }
        DbConnection::Postgresql(_) => "DROP TRIGGER access_log_no_change ON access_log;",
    })
    .unwrap();
}

both_backends!(access_log_refuses_update_and_delete, |url| {
    let pool = chain_of_ten(url);
    let c = &mut pool.get().unwrap();
    for statement in [
        "UPDATE access_log SET outcome = 'bad_signature' WHERE seq = 4",
        "UPDATE access_log SET hash = prev_hash",
        "DELETE FROM access_log WHERE seq = 5",
        "DELETE FROM access_log",
        "DELETE FROM access_log_head",
        "UPDATE access_log_head SET chain_version = 1",
    ] {
        let e = c.batch_execute(statement).unwrap_err().to_string();
        assert!(
            e.contains("refused") || e.contains("cannot go back"),
            "{statement}: {e}"
        );
    }
    if matches!(**c, DbConnection::Postgresql(_)) {
        assert!(c.batch_execute("TRUNCATE access_log").is_err());
        assert!(c.batch_execute("TRUNCATE access_log_head").is_err());
    }
    assert_whole_chain(c, 10);
    // Appending still works, and the chain stays whole.
    access_log::append(c, &key().chain_key(), &[log_entry(10)]).unwrap();
    assert_whole_chain(c, 11);
});

both_backends!(access_log_chain_needs_the_chain_key, |url| {
    let pool = chain_of_ten(url);
    let c = &mut pool.get().unwrap();
    let other = MasterKey::from_bytes([9; 32]).chain_key();
    assert_eq!(
        access_log::verify_chain(c, &other)
            .unwrap()
            .first_bad
            .unwrap()
            .0,
        1
    );
});

both_backends!(access_log_chain_detects_an_edited_row, |url| {
    let pool = chain_of_ten(url);
    let c = &mut pool.get().unwrap();
    drop_append_only_triggers(c);
    c.batch_execute("UPDATE access_log SET outcome = 'bad_signature' WHERE seq = 4")
        .unwrap();
    let report = access_log::verify_chain(c, &key().chain_key()).unwrap();
    assert_eq!(report.first_bad.unwrap().0, 4);
});

both_backends!(access_log_chain_detects_a_deleted_row, |url| {
    let pool = chain_of_ten(url);
    let c = &mut pool.get().unwrap();
    drop_append_only_triggers(c);
    c.batch_execute("DELETE FROM access_log WHERE seq = 5")
        .unwrap();
    let report = access_log::verify_chain(c, &key().chain_key()).unwrap();
    assert_eq!(report.first_bad.unwrap().0, 5);
    // ... even if the later rows are renumbered to hide the gap.
    c.batch_execute("UPDATE access_log SET seq = seq - 1 WHERE seq > 5")
        .unwrap();
    let (seq, _) = access_log::verify_chain(c, &key().chain_key())
        .unwrap()
        .first_bad
        .unwrap();
    assert_eq!(seq, 5);
});

both_backends!(access_log_chain_detects_a_truncated_tail, |url| {
    let pool = chain_of_ten(url);
    let c = &mut pool.get().unwrap();
    drop_append_only_triggers(c);
    c.batch_execute("DELETE FROM access_log WHERE seq > 8")
        .unwrap();
    let report = access_log::verify_chain(c, &key().chain_key()).unwrap();
    assert_eq!(report.rows_checked, 8);
    assert_eq!(report.first_bad.unwrap().0, 10);
});

// ---- import ----

/// A CSV of `n` good rows (MRN-i, national id i), plus bad rows at known lines.
fn legacy_csv(n: u32) -> (String, Vec<u64>) {
    let mut s = String::from("local_patient_id,name,national_id,phone\n");
    let mut bad = Vec::new();
    let mut line = 1u64;
    for i in 0..n {
        line += 1;
        let phone = if i % 3 == 0 { "" } else { "138-0000-0000" };
        s.push_str(&format!("MRN-{i},张三{i},{},{phone}\n", nid_text(i)));
        if i % 40 == 7 {
            line += 1;
            bad.push(line);
            let mut wrong = nid_text(50_000 + i).into_bytes();
            wrong[17] = if wrong[17] == b'1' { b'2' } else { b'1' };
            s.push_str(&format!(
                "X-{i},李四,{},\n",
                String::from_utf8(wrong).unwrap()
            ));
        }
    }
    // Field count, name, phone, and a number already naming another resident.
    for row in [
        "only,three,fields".to_owned(),
        format!("Y-1,,{},", nid_text(60_001)),
        format!("Y-2,王五,{},12345", nid_text(60_002)),
        format!("MRN-0,赵六,{},", nid_text(60_003)),
    ] {
        line += 1;
        bad.push(line);
        s.push_str(&row);
        s.push('\n');
    }
    (s, bad)
}

/// Every link of the clinic with its resident's ID number and card statuses.
fn snapshot(
    c: &mut DbConnection,
    clinic: ClinicId,
    n: u32,
) -> Vec<(String, String, Vec<CardStatus>)> {
    (0..n)
        .map(|i| {
            let l = links::find(
                c,
                clinic,
                &LocalPatientId::parse(&format!("MRN-{i}")).unwrap(),
            )
            .unwrap()
            .expect("linked");
            let r = residents::get(c, &key(), l.resident_id).unwrap();
            let statuses = cards::for_resident(c, r.id)
                .unwrap()
                .iter()
                .map(|x| x.status)
                .collect();
            (
                format!("MRN-{i}"),
                r.national_id().unwrap().as_str().to_owned(),
                statuses,
            )
        })
        .collect()
}

fn table_counts(c: &mut DbConnection) -> (i64, i64, i64) {
    use store::schema::{cards as k, links as l, residents as r};
    (
        r::table.count().get_result(c).unwrap(),
        k::table.count().get_result(c).unwrap(),
        l::table.count().get_result(c).unwrap(),
    )
}

both_backends!(import_reports_bad_rows_and_is_idempotent, |url| {
    let pool = open(url);
    let c = &mut pool.get().unwrap();
    let (h, _) = clinic(c, "LEGACY");
    let (csv, bad_lines) = legacy_csv(100);
    let mut ticks = Vec::new();
    let report = import::import_legacy(
        c,
        &key(),
        h.id,
        (ActorKind::Admin, "officer"),
        csv.as_bytes(),
        16,
        |n| ticks.push(n),
    )
    .unwrap();
    assert_eq!(
        report.bad.iter().map(|b| b.line).collect::<Vec<_>>(),
        bad_lines
    );
    // Each batch's log row names who imported (the portal's administrator).
    use healthcard::store::schema::access_log as log;
    let by: Vec<(String, String)> = log::table
        .filter(log::action.eq("import"))
        .select((log::actor_kind, log::actor))
        .load(c)
        .unwrap();
    assert!(!by.is_empty());
    assert!(
        by.iter().all(|(k, a)| k == "admin" && a == "officer"),
        "{by:?}"
    );
    assert_eq!(report.rows, 100 + bad_lines.len() as u64);
    assert_eq!(
        (
            report.residents_created,
            report.cards_issued,
            report.links_created,
            report.unchanged
        ),
        (101, 101, 100, 0),
        "the conflicting MRN-0 row still registers its resident"
    );
    assert!(ticks.len() > 1 && ticks.windows(2).all(|w| w[0] <= w[1]));
    for b in &report.bad {
        assert!(!b.reason.contains("3701"), "no ID number in {b:?}");
    }
    assert!(report
        .bad
        .iter()
        .any(|b| b.reason.contains("already linked")));
    let counts = table_counts(c);
    let log_rows = access_log::verify_chain(c, &key().chain_key())
        .unwrap()
        .rows_checked;
    assert!(
        (1..=8).contains(&log_rows),
        "one entry per batch, not per row"
    );

    let again = import::import_legacy(
        c,
        &key(),
        h.id,
        (ActorKind::System, "test"),
        csv.as_bytes(),
        16,
        |_| {},
    )
    .unwrap();
    assert_eq!(
        (
            again.residents_created,
            again.cards_issued,
            again.links_created,
            again.unchanged
        ),
        (0, 0, 0, 100)
    );
    assert_eq!(again.bad, report.bad);
    assert_eq!(table_counts(c), counts);
    assert_eq!(
        access_log::verify_chain(c, &key().chain_key())
            .unwrap()
            .rows_checked,
        log_rows,
        "nothing logged"
    );

    let bad_header = import::import_legacy(
        c,
        &key(),
        h.id,
        (ActorKind::System, "test"),
        "a,b,c,d\n".as_bytes(),
        16,
        |_| {},
    );
    assert!(bad_header.is_err());
});

both_backends!(interrupted_import_then_rerun_equals_one_clean_run, |url| {
    let pool = open(url);
    let c = &mut pool.get().unwrap();
    let (h, _) = clinic(c, "LEGACY");
    let (csv, _) = legacy_csv(120);
    let half: String = csv.lines().take(61).map(|l| format!("{l}\n")).collect();
    import::import_legacy(
        c,
        &key(),
        h.id,
        (ActorKind::System, "test"),
        half.as_bytes(),
        10,
        |_| {},
    )
    .unwrap();
    let rest = import::import_legacy(
        c,
        &key(),
        h.id,
        (ActorKind::System, "test"),
        csv.as_bytes(),
        10,
        |_| {},
    )
    .unwrap();
    assert!(rest.unchanged > 0 && rest.links_created > 0);
    let interrupted = (table_counts(c), snapshot(c, h.id, 120));

    // The clean run, on a second database of the same backend.
    let dir = tempfile::tempdir().unwrap();
    let pool2 = open(&fresh_like(url, &dir));
    let c2 = &mut pool2.get().unwrap();
    let (h2, _) = clinic(c2, "LEGACY");
    let clean = import::import_legacy(
        c2,
        &key(),
        h2.id,
        (ActorKind::System, "test"),
        csv.as_bytes(),
        10,
        |_| {},
    )
    .unwrap();
    assert_eq!(rest.bad, clean.bad);
    assert_eq!(interrupted, (table_counts(c2), snapshot(c2, h2.id, 120)));
});

// Transactions larger than one INSERT chunk (`import::CHUNK`), a number seen
// twice in one transaction but in different chunks, and a run stopped after
// a transaction boundary: re-running ends where one clean run does, and a
// third run changes nothing.
both_backends!(import_in_large_batches_is_idempotent_across_chunks, |url| {
    const ROWS: u32 = 2600;
    const BATCH: usize = import::CHUNK + 300;
    let (csv, _) = legacy_csv(ROWS);
    // The second row of resident 1, about 2,100 good rows in: the same
    // transaction as its first row, the next INSERT chunk.
    let mut lines: Vec<String> = csv.lines().map(str::to_owned).collect();
    lines.insert(2150, format!("DUP-1,张三1,{},", nid_text(1)));
    let csv: String = lines.iter().map(|l| format!("{l}\n")).collect();

    let pool = open(url);
    let c = &mut pool.get().unwrap();
    let (h, _) = clinic(c, "LEGACY");
    // Stopped after the first transaction (and part of the second file's rows).
    let first: String = lines.iter().take(2500).map(|l| format!("{l}\n")).collect();
    import::import_legacy(
        c,
        &key(),
        h.id,
        (ActorKind::System, "test"),
        first.as_bytes(),
        BATCH,
        |_| {},
    )
    .unwrap();
    let mut ticks = Vec::new();
    let rest = import::import_legacy(
        c,
        &key(),
        h.id,
        (ActorKind::System, "test"),
        csv.as_bytes(),
        BATCH,
        |n| ticks.push(n),
    )
    .unwrap();
    assert!(rest.unchanged > 0 && rest.links_created > 0);
    assert!(ticks.len() > 1 && ticks.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(ticks.last().copied(), Some(rest.rows));
    let dup = |c: &mut DbConnection, clinic| {
        let dup = links::find(c, clinic, &LocalPatientId::parse("DUP-1").unwrap())
            .unwrap()
            .expect("linked");
        let first = links::find(c, clinic, &LocalPatientId::parse("MRN-1").unwrap())
            .unwrap()
            .expect("linked");
        assert_eq!(dup.resident_id, first.resident_id);
        cards::for_resident(c, dup.resident_id).unwrap().len()
    };
    assert_eq!(dup(c, h.id), 1, "one card for the resident seen twice");
    let interrupted = (table_counts(c), snapshot(c, h.id, ROWS));

    let dir = tempfile::tempdir().unwrap();
    let pool2 = open(&fresh_like(url, &dir));
    let c2 = &mut pool2.get().unwrap();
    let (h2, _) = clinic(c2, "LEGACY");
    let clean = import::import_legacy(
        c2,
        &key(),
        h2.id,
        (ActorKind::System, "test"),
        csv.as_bytes(),
        BATCH,
        |_| {},
    )
    .unwrap();
    let n = u64::from(ROWS);
    assert_eq!(
        (
            clean.residents_created,
            clean.cards_issued,
            clean.links_created,
            clean.unchanged
        ),
        (n + 1, n + 1, n + 1, 0),
        "{:?}",
        clean.bad.first()
    );
    assert_eq!(rest.bad, clean.bad);
    assert_eq!(dup(c2, h2.id), 1);
    assert_eq!(interrupted, (table_counts(c2), snapshot(c2, h2.id, ROWS)));

    let log_rows = access_log::verify_chain(c2, &key().chain_key())
        .unwrap()
        .rows_checked;
    let again = import::import_legacy(
        c2,
        &key(),
        h2.id,
        (ActorKind::System, "test"),
        csv.as_bytes(),
        BATCH,
        |_| {},
    )
    .unwrap();
    assert_eq!(
        (
            again.residents_created,
            again.cards_issued,
            again.links_created
        ),
        (0, 0, 0)
    );
    assert_eq!(again.unchanged, n + 1);
    assert_eq!(table_counts(c2).0, i64::try_from(n + 1).unwrap());
    assert_eq!(
        access_log::verify_chain(c2, &key().chain_key())
            .unwrap()
            .rows_checked,
        log_rows
    );
});

// ---- races ----

fn race<T: Send + 'static>(
    pool: &DbPool,
    threads: usize,
    f: impl Fn(&mut DbConnection, usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (pool, f, barrier) = (pool.clone(), f.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut conn = pool.get().expect("connection");
                barrier.wait();
                f(&mut conn, i)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect()
}

both_backends!(race_eight_threads_issue_one_card, |url| {
    let pool = open(url);
    let r = resident(&mut pool.get().unwrap(), 1);
    let results = race(&pool, 8, move |c, _| cards::issue(c, r.id).map(|x| x.0));
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{results:?}");
    for r in results.iter().filter(|r| r.is_err()) {
        assert!(
            matches!(r, Err(StoreError::Conflict(Conflict::CardExists))),
            "{r:?}"
        );
    }
});

both_backends!(race_eight_threads_accept_one_token_once, |url| {
    let pool = open(url);
    let exp = store::now() + Span::seconds(120);
    let results = race(&pool, 8, move |c, _| {
        replay::accept_once(c, &[9u8; 16], exp).unwrap()
    });
    assert_eq!(results.iter().filter(|x| **x).count(), 1);
});

both_backends!(race_eight_threads_append_fifty_log_rows_each, |url| {
    let pool = open(url);
    race(&pool, 8, |c, t| {
        for i in 0..50 {
            access_log::append(c, &key().chain_key(), &[log_entry(t * 100 + i)]).unwrap();
        }
    });
    let c = &mut pool.get().unwrap();
    assert_whole_chain(c, 400);
});

both_backends!(
    append_if_current_writes_only_after_the_head_it_names,
    |url| {
        let pool = open(url);
        let c = &mut pool.get().unwrap();
        let first: Vec<NewLogEntry> = (0..2).map(log_entry).collect();
        let two = c
            .transaction(|c| access_log::lock_head(c, &key().chain_key())?.append(c, &first))
            .unwrap();
        assert_eq!(two.seq(), 2);
        let three = c
            .transaction(|c| two.append_if_current(c, &[log_entry(2)]))
            .unwrap()
            .expect("head unchanged: appended");
        assert_eq!(three.seq(), 3);
        // A writer that kept the head of seq 2 is behind: nothing is written.
        let stale = c
            .transaction(|c| two.append_if_current(c, &[log_entry(3)]))
            .unwrap();
        assert_eq!(stale, None);
        assert_whole_chain(c, 3);
    }
);

// Like the access-log appenders of several nodes: each keeps the head of its
// last commit and the writer's commit falls back to locking the head when
// another moved it.
both_backends!(race_eight_writers_keeping_their_heads_chain_whole, |url| {
    let pool = open(url);
    race(&pool, 8, move |c, t| {
        let mut known: Option<access_log::Head> = None;
        for i in 0..40 {
            let entries = [log_entry(t * 100 + i)];
            let done =
                access_log::commit_batch(c, &key().chain_key(), known.take(), &[], None, |_| {
                    entries.to_vec()
                })
                .unwrap();
            known = Some(done.head);
        }
    });
    let c = &mut pool.get().unwrap();
    assert_whole_chain(c, 320);
});

both_backends!(race_concurrent_lifecycle_changes_lose_nothing, |url| {
    let pool = open(url);
    let c = &mut pool.get().unwrap();
    let r = resident(c, 1);
    let (card, _) = cards::issue(c, r.id).unwrap();
    let results = race(&pool, 8, move |c, i| {
        let action = if i % 2 == 0 {
            CardAction::Suspend
        } else {
            CardAction::Revoke
        };
        cards::transition(c, card.id, action, None)
    });
    // Whatever order they ran in, the feed agrees with the card's final state.
    let (changes, _) = cards::changes_since(c, 0, 100).unwrap();
    assert_eq!(changes.len(), results.iter().filter(|r| r.is_ok()).count());
    assert_eq!(
        changes.last().unwrap().status,
        cards::get(c, card.id).unwrap().status
    );
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(StoreError::Lifecycle(_)))),
        "{results:?}"
    );
});

fn token_id(i: u32) -> [u8; 16] {
    let mut id = [7u8; 16];
    id[..4].copy_from_slice(&i.to_be_bytes());
    id
}

// The access-log writer's one-statement path for dynamic tokens (PostgreSQL
// only): the spend, the head's move and the rows go in together or not at
// all, outside a transaction, as the writer runs it.
both_backends!(spend_and_append_writes_all_or_nothing, |url| {
    let pool = open(url);
    let c = &mut pool.get().unwrap();
    let pg = store::backend(c) == store::Backend::Postgres;
    if !pg {
        return;
    }
    let spend = |c: &mut DbConnection,
                 head: &access_log::Head,
                 entries: &[NewLogEntry],
                 tokens: &[([u8; 16], chrono::NaiveDateTime)]| {
        let DbConnection::Postgresql(c) = c else {
            unreachable!("checked above")
        };
        head.spend_and_append_if_current(c, entries, tokens)
    };
    let exp = store::now() + Span::seconds(120);
    let first: Vec<NewLogEntry> = (0..2).map(log_entry).collect();
    let two = c
        .transaction(|c| access_log::lock_head(c, &key().chain_key())?.append(c, &first))
        .unwrap();
    let tokens = [(token_id(1), exp), (token_id(2), exp)];
    let four = spend(c, &two, &[log_entry(2), log_entry(3)], &tokens)
        .unwrap()
        .expect("head current, tokens new: written");
    assert_eq!(four.seq(), 4);
    // Behind the head: nothing written, the new token not spent.
    let stale = spend(c, &two, &[log_entry(4)], &[(token_id(3), exp)]).unwrap();
    assert_eq!(stale, None);
    // Head current, but one token already spent: nothing written, the other
    // token not spent either.
    let replayed = spend(
        c,
        &four,
        &[log_entry(4), log_entry(5)],
        &[(token_id(4), exp), (token_id(2), exp)],
    )
    .unwrap();
    assert_eq!(replayed, None);
    if pg {
        // Past the check but failing on the replay key (here an id given
        // twice): the statement is rolled back whole, head and rows too.
        let twice = spend(
            c,
            &four,
            &[log_entry(4), log_entry(5)],
            &[(token_id(5), exp), (token_id(5), exp)],
        );
        assert!(
            matches!(twice, Err(StoreError::Conflict(Conflict::Unique))),
            "{twice:?}"
        );
    }
    assert_whole_chain(c, 4);
    let now_spent = [
        (token_id(1), exp),
        (token_id(2), exp),
        (token_id(3), exp),
        (token_id(4), exp),
        (token_id(5), exp),
    ];
    assert_eq!(
        replay::accept_many(c, &now_spent).unwrap(),
        [false, false, true, true, true]
    );
});

// Eight writers spend overlapping token ids through the access-log writer's
// commit (PostgreSQL: the one statement outside a transaction first; then, or
// on SQLite, a transaction that locks the head before it spends). Each id is
// a first use exactly once, and the chain stays whole.
both_backends!(race_eight_writers_spend_each_token_once, |url| {
    let pool = open(url);
    let pg = store::backend(&pool.get().unwrap()) == store::Backend::Postgres;
    let exp = store::now() + Span::seconds(120);
    let firsts = race(&pool, 8, move |c, t| {
        let mut known: Option<access_log::Head> = None;
        let mut first_uses = Vec::new();
        let mut fast_path = 0;
        for i in 0..20u32 {
            // Ids shared by pairs of writers, plus one of this writer's own.
            let batch = [
                (token_id(i * 10 + (t as u32) / 2), exp),
                (token_id(1000 + t as u32 * 100 + i), exp),
            ];
            let entries = [
                log_entry(t * 100 + i as usize),
                log_entry(t * 100 + i as usize),
            ];
            let done =
                access_log::commit_batch(c, &key().chain_key(), known.take(), &batch, None, |_| {
                    entries.to_vec()
                })
                .unwrap();
            fast_path += usize::from(done.one_statement);
            first_uses.extend(
                batch
                    .iter()
                    .zip(done.first_use)
                    .filter(|(_, f)| *f)
                    .map(|((id, _), _)| *id),
            );
            known = Some(done.head);
        }
        (first_uses, fast_path)
    });
    if pg {
        // The one statement did write, not only the transaction after it.
        assert!(firsts.iter().map(|(_, fast)| fast).sum::<usize>() > 0);
    }
    let mut all: Vec<[u8; 16]> = firsts.into_iter().flat_map(|(f, _)| f).collect();
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "a token id was a first use twice");
    // 20 shared ids per pair of writers (4 pairs) and 20 own ids per writer.
    assert_eq!(n, 20 * 4 + 20 * 8);
    let c = &mut pool.get().unwrap();
    assert_whole_chain(c, 320);
});

/// What `card_use::grouped` must answer, summed here from the uses
/// themselves: one row per group, sorted; with no grouping, one total.
fn expected_card_use(
    uses: &[store::card_use::Key],
    from: NaiveDate,
    to: NaiveDate,
    by: Grouping,
) -> Vec<store::card_use::Count> {
    let mut sums = std::collections::BTreeMap::new();
    for k in uses.iter().filter(|k| k.day >= from && k.day <= to) {
        let on = |d: Dimension, v: &str| by.has(d).then(|| v.to_owned());
        let key = (
            by.has(Dimension::Day).then_some(k.day),
            on(Dimension::Clinic, &k.clinic_id),
            on(Dimension::Channel, &k.channel),
            on(Dimension::Step, &k.step),
            on(Dimension::Outcome, &k.outcome),
        );
        *sums.entry(key).or_insert(0) += 1;
    }
    if by.dims().is_empty() {
        sums.entry((None, None, None, None, None)).or_insert(0);
    }
    sums.into_iter()
        .map(
            |((day, clinic_id, channel, step, outcome), uses)| store::card_use::Count {
                day,
                clinic_id,
                channel,
                step,
                outcome,
                uses,
            },
        )
        .collect()
}

fn sorted(mut counts: Vec<store::card_use::Count>) -> Vec<store::card_use::Count> {
    counts.sort_by_key(|c| {
        (
            c.day,
            c.clinic_id.clone(),
            c.channel.clone(),
            c.step.clone(),
            c.outcome.clone(),
        )
    });
    counts
}

both_backends!(card_use_rollup_answers_as_the_daily_counts, |url| {
    use store::card_use::{self, Increments, Key};
    use store::card_use_rollup;
    let pool = open(url);
    let c = &mut pool.get().unwrap();
    let day0 = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    let day = |n: u64| day0.checked_add_days(chrono::Days::new(n)).unwrap();
    // Ten days of uses, the fifth without any; clinics, channels (one not
    // given), steps and outcomes varying with the use.
    let mut uses = Vec::new();
    for d in (0..10).filter(|d| *d != 4) {
        for i in 0..(d * 3 + 2) {
            uses.push(Key {
                day: day(d),
                clinic_id: format!("clinic-{}", i % 3),
                channel: ["window", "kiosk", ""][(i % 3) as usize].to_owned(),
                step: ["registration", "payment"][((i / 2) % 2) as usize].to_owned(),
                outcome: ["valid", "valid", "card_revoked"][((i + d) % 3) as usize].to_owned(),
            });
        }
    }
    card_use::add(c, &Increments::of(uses.clone())).unwrap();
    let groupings: Vec<Grouping> = std::iter::once(Grouping::default())
        .chain(Dimension::ALL.into_iter().map(|d| Grouping::of(&[d])))
        .chain([Grouping::of(&[Dimension::Day, Dimension::Clinic])])
        .collect();
    let periods = [
        (day(0), day(9)),
        (day(2), day(6)),
        (day0 - Span::days(3), day(12)),
        (day(4), day(4)),
    ];
    let check = |c: &mut DbConnection, uses: &[Key], when: &str| {
        for &by in &groupings {
            for &(from, to) in &periods {
                assert_eq!(
                    sorted(card_use::grouped(c, from, to, by).unwrap()),
                    expected_card_use(uses, from, to, by),
                    "{when}: {from}..{to} by {by}"
                );
            }
        }
    };
    check(c, &uses, "nothing settled");
    // Settling is bounded per call, goes day by day from the first counted
    // day, and settles a day without uses too.
    assert_eq!(card_use_rollup::settle(c, day(6), 3).unwrap(), 3);
    assert_eq!(card_use_rollup::last_settled(c).unwrap(), Some(day(2)));
    check(c, &uses, "days 0-2 settled");
    assert_eq!(card_use_rollup::settle(c, day(6), 31).unwrap(), 4);
    assert_eq!(
        card_use_rollup::settled_days(c, day(4), day(4)).unwrap(),
        vec![(day(4), 0)]
    );
    check(c, &uses, "days 0-6 settled");
    assert_eq!(card_use_rollup::settle(c, day(6), 31).unwrap(), 0);
    // Days not settled keep counting from the daily table.
    let late: Vec<Key> = (0..5)
        .map(|i| Key {
            day: day(8),
            clinic_id: "clinic-9".into(),
            channel: "app".into(),
            step: "surgery".into(),
            outcome: if i == 0 { "expired" } else { "valid" }.into(),
        })
        .collect();
    card_use::add(c, &Increments::of(late.clone())).unwrap();
    uses.extend(late);
    check(c, &uses, "after more uses on an unsettled day");
});

// A resident written by the schema before the documents migration (its
// number in the residents' own columns) is, after `migrate`, a
// `resident_id_card` document: found by number, readable, and its card
// still resolves for verification.
both_backends!(the_documents_migration_keeps_old_residents, |url| {
    let pool = store::connect(url, 4, Duration::from_secs(10)).expect("connect");
    let c = &mut pool.get().unwrap();
    store::migrate_until(c, "2026-12-02-000600").expect("old schema");
    let k = key();
    let number = nid(5);
    let id = ResidentId::new();
    let at = chrono::Utc::now().naive_utc();
    {
        use store::schema::residents::dsl as r;
        diesel::insert_into(r::residents)
            .values((
                r::id.eq(id.to_string()),
                r::name.eq("欧阳娜娜"),
                r::national_id_enc.eq(Some(k.seal(b"national_id", number.as_str().as_bytes()))),
                r::national_id_index.eq(Some(
                    k.blind_index(b"national_id", number.as_str().as_bytes())
                        .to_vec(),
                )),
                r::sex.eq(number.sex().as_str()),
                r::birth_date.eq(number.birth_date()),
                r::phone_enc.eq(None::<Vec<u8>>),
                r::created_at.eq(at),
            ))
            .execute(c)
            .unwrap();
    }
    let (card, _) = cards::issue(c, id).unwrap();
    store::migrate(c).expect("the documents migration");

    let found = residents::find_by_national_id(c, &k, &number)
        .unwrap()
        .expect("found by number");
    assert_eq!(found.id, id);
    assert_eq!(found.documents, [Document::ResidentIdCard(number.clone())]);
    assert_eq!(residents::get(c, &k, id).unwrap(), found);
    let (clinic, _) = clinic(c, "HOSP-MIG");
    let res = resolve::card_for_verification(c, &k, card.id, clinic.id)
        .unwrap()
        .expect("the card resolves");
    assert_eq!(res.resident.national_id(), Some(&number));
    // Its number is still one resident's: a new registration is refused.
    assert_eq!(
        conflict(residents::create(
            c,
            &k,
            &new_resident(5),
            store::Conflict::NationalIdRegistered
        )),
        "national_id_registered"
    );
    // And a new resident can be registered next to it, with no ID number at all.
    let birth = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let newborn = residents::create(
        c,
        &k,
        &NewResident {
            name: PersonName::parse("小明").unwrap(),
            document: None,
            sex: Sex::Male,
            birth_date: birth,
            phone: None,
        },
        store::Conflict::DocumentRegistered,
    )
    .unwrap();
    assert!(residents::get(c, &k, newborn.id)
        .unwrap()
        .documents
        .is_empty());
    if store::backend(c) == store::Backend::Postgres {
        // A node of the previous release, mid rolling upgrade, still writes
        // the old columns: the trigger gives its resident the document, and
        // a number already registered as a document refuses its insert.
        use store::schema::residents::dsl as r;
        let legacy = |c: &mut DbConnection, id: ResidentId, n: &NationalId| {
            diesel::insert_into(r::residents)
                .values((
                    r::id.eq(id.to_string()),
                    r::name.eq("旧节点"),
                    r::national_id_enc.eq(Some(k.seal(b"national_id", n.as_str().as_bytes()))),
                    r::national_id_index.eq(Some(
                        k.blind_index(b"national_id", n.as_str().as_bytes())
                            .to_vec(),
                    )),
                    r::sex.eq(n.sex().as_str()),
                    r::birth_date.eq(n.birth_date()),
                    r::phone_enc.eq(None::<Vec<u8>>),
                    r::created_at.eq(at),
                ))
                .execute(c)
        };
        let old_node = ResidentId::new();
        legacy(c, old_node, &nid(6)).unwrap();
        let found = residents::find_by_national_id(c, &k, &nid(6))
            .unwrap()
            .unwrap();
        assert_eq!(found.id, old_node);
        resident(c, 7);
        assert!(legacy(c, ResidentId::new(), &nid(7)).is_err());
    }
    if store::backend(c) == store::Backend::Sqlite {
        // The rebuilt table kept its foreign keys and they are enforced.
        c.batch_execute("PRAGMA foreign_key_check").unwrap();
        let orphan = cards::issue(c, ResidentId::new());
        assert!(orphan.is_err(), "a card for no resident");
    }
});

// The optional columns after the four of today: document type, country,
// sex, birth date; a file may stop after any of them, and a document type's
// rules hold (sex and birth date required where the number lacks them).
both_backends!(import_takes_document_columns, |url| {
    let pool = open(url);
    let c = &mut pool.get().unwrap();
    let (h, _) = clinic(c, "LEGACY-DOC");
    let csv = format!(
        "local_patient_id,name,national_id,phone,document_type,country,sex,birth_date\n\
         P1,Anna Müller,E1234567,,passport,DEU,female,1980-02-03\n\
         P2,陈大文,H1234567800,,hk_macao_permit,,male,1975-06-07\n\
         P3,欧阳娜娜,{},,,,,\n\
         P4,小明,X320101001,,birth_certificate,,,2025-01-01\n\
         P5,Bob,E7654321,,passport,ZZZ,male,1980-01-01\n\
         P6,李四,{},,household_register,,male,\n",
        nid_text(1),
        nid_text(2),
    );
    let report = import::import_legacy(
        c,
        &key(),
        h.id,
        (ActorKind::System, "test"),
        csv.as_bytes(),
        16,
        |_| {},
    )
    .unwrap();
    let bad: Vec<u64> = report.bad.iter().map(|b| b.line).collect();
    // P4: no sex; P5: no such country; P6: nid_text(2) is a woman's number.
    assert_eq!(bad, [5, 6, 7], "{:?}", report.bad);
    assert_eq!(report.residents_created, 3);
    let passport = Document::parse(DocumentType::Passport, "E1234567", Some("DEU")).unwrap();
    let anna = residents::find_by_document(c, &key(), &passport)
        .unwrap()
        .unwrap();
    assert_eq!(anna.sex, Sex::Female);
    assert_eq!(
        anna.birth_date,
        NaiveDate::from_ymd_opt(1980, 2, 3).unwrap()
    );
    let hk = Document::parse(DocumentType::HkMacaoPermit, "H1234567801", None).unwrap();
    assert!(residents::find_by_document(c, &key(), &hk)
        .unwrap()
        .is_some());
    assert!(residents::find_by_national_id(c, &key(), &nid(1))
        .unwrap()
        .is_some());
    // Four columns still work, and a header out of order does not.
    let short = format!(
        "local_patient_id,name,national_id,phone\nQ1,王五,{},\n",
        nid_text(3)
    );
    let r = import::import_legacy(
        c,
        &key(),
        h.id,
        (ActorKind::System, "test"),
        short.as_bytes(),
        16,
        |_| {},
    )
    .unwrap();
    assert_eq!(r.residents_created, 1);
    let wrong = "local_patient_id,name,national_id,phone,country\n";
    assert!(import::import_legacy(
        c,
        &key(),
        h.id,
        (ActorKind::System, "test"),
        wrong.as_bytes(),
        16,
        |_| {}
    )
    .is_err());
});
