//! The FHIR facade (issue 16), black-box on both databases, with the IHE
//! PIXm examples (Mohr Alice in the Red, Green and Blue domains) adapted as
//! fixtures: the three domains are three clinics. Every resource the server
//! returns is validated against HL7's FHIR R4 JSON schema (tests/fhir/).

use std::sync::LazyLock;

use reqwest::blocking::{RequestBuilder, Response};
use serde_json::{json, Value};

use crate::helpers::{national_id_born as nid, on_both, TestApp};

/// HL7's schema, compiled once for the whole test binary.
static SCHEMA: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fhir/fhir.schema.json"
    ))
    .expect("tests/fhir/fhir.schema.json");
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft6::new(&schema).expect("the FHIR schema compiles")
});

/// Panics with the schema's complaints unless `v` is a valid FHIR R4 resource.
fn valid(v: &Value) {
    let errors: Vec<String> = SCHEMA
        .iter_errors(v)
        .take(5)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "not valid FHIR R4: {errors:?}\n{v:#}");
}

/// Reads a FHIR answer: checks status and content type, validates it.
pub(crate) fn fhir(r: Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status, "status");
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(ct.starts_with("application/fhir+json"), "content type {ct}");
    let v: Value = r.json().expect("JSON body");
    valid(&v);
    v
}

/// An OperationOutcome's (issue code, our stable code).
fn outcome(r: Response, status: u16) -> (String, String) {
    let v = fhir(r, status);
    assert_eq!(v["resourceType"], "OperationOutcome", "{v}");
    let issue = &v["issue"][0];
    assert!(issue["diagnostics"].is_string(), "{v}");
    (
        issue["code"].as_str().unwrap().to_string(),
        issue["details"]["coding"][0]["code"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

const RESIDENT: &str = "urn:healthcard:HC:resident";
const CARD: &str = "urn:healthcard:HC:card";
const NID: &str = "urn:oid:2.16.156.10011.1.3";

fn mrn(code: &str) -> String {
    format!("urn:healthcard:HC:clinic:{code}:mrn")
}

/// Registers a resident with a card: (resident id, card id, holder credential).
fn resident(app: &TestApp, name: &str, national_id: &str, phone: &str) -> (String, String, String) {
    let r = app.admin_post(
        "/api/v1/residents",
        json!({"name": name, "national_id": national_id, "phone": phone}),
    );
    assert_eq!(r.status(), 201);
    let rid = r.json::<Value>().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app.admin_post(&format!("/api/v1/residents/{rid}/cards"), json!({}));
    assert_eq!(r.status(), 201);
    let v: Value = r.json().unwrap();
    (
        rid,
        v["card"]["id"].as_str().unwrap().to_string(),
        v["holder_credential"].as_str().unwrap().to_string(),
    )
}

fn with_key(b: RequestBuilder, key: &str) -> RequestBuilder {
    b.bearer_auth(key).header("Accept", "application/fhir+json")
}

fn get(app: &TestApp, key: &str, path: &str) -> Response {
    with_key(app.get(path), key).send().unwrap()
}

fn post(app: &TestApp, key: &str, path: &str, body: &Value) -> Response {
    with_key(app.post(path), key)
        .header("Content-Type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .unwrap()
}

fn put_feed(app: &TestApp, key: &str, system: &str, value: &str, patient: &Value) -> Response {
    with_key(app.client.put(app.url("/fhir/Patient")), key)
        .query(&[("identifier", format!("{system}|{value}"))])
        .header("Content-Type", "application/fhir+json")
        .body(patient.to_string())
        .send()
        .unwrap()
}

/// A feed Patient naming the registry's resident or card.
fn feed_patient(system: &str, value: &str) -> Value {
    json!({"resourceType": "Patient", "identifier": [{"system": system, "value": value}]})
}

/// The identifiers of a Patient as (system, value).
fn ids(p: &Value) -> Vec<(String, String)> {
    p["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["system"].as_str().unwrap().to_string(),
                i["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The PIXm examples' world: Mohr Alice, known as IHERED-994 at RED (feed by
/// card), IHEGREEN-994 at GREEN (feed by resident id) and IHEBLUE-994 at
/// BLUE (the JSON API's link).
struct Mohr {
    rid: String,
    card: String,
    holder: String,
    red: String,
    green: String,
    blue: String,
}

fn mohr_alice(app: &TestApp) -> Mohr {
    let (rid, card, holder) = resident(app, "MOHR ALICE", &nid("19580130", 994), "13800138000");
    let (_, red) = app.clinic("RED", &["verify", "link", "xref"]);
    let (_, green) = app.clinic("GREEN", &["verify", "link"]);
    let (_, blue) = app.clinic("BLUE", &["verify", "link", "pii"]);
    let p = fhir(
        put_feed(
            app,
            &red,
            &mrn("RED"),
            "IHERED-994",
            &feed_patient(CARD, &card),
        ),
        201,
    );
    assert_eq!(p["id"], rid);
    fhir(
        put_feed(
            app,
            &green,
            &mrn("GREEN"),
            "IHEGREEN-994",
            &feed_patient(RESIDENT, &rid),
        ),
        201,
    );
    // The JSON API links only a card this clinic has just scanned.
    assert_eq!(app.verify(&blue, &app.mint(&card, "static"))["valid"], true);
    let r = app
        .post("/api/v1/links")
        .bearer_auth(&blue)
        .json(&json!({"card_id": card, "local_patient_id": "IHEBLUE-994"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    Mohr {
        rid,
        card,
        holder,
        red,
        green,
        blue,
    }
}

fn pix_get(app: &TestApp, key: &str, query: &[(&str, String)]) -> Response {
    with_key(app.get("/fhir/Patient/$ihe-pix"), key)
        .query(query)
        .send()
        .unwrap()
}

/// A Parameters answer as (name, value) with identifiers as system|value.
fn params(v: &Value) -> Vec<(String, String)> {
    assert_eq!(v["resourceType"], "Parameters", "{v}");
    v["parameter"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap().to_string();
            let value = if let Some(id) = p.get("valueIdentifier") {
                format!(
                    "{}|{}",
                    id["system"].as_str().unwrap(),
                    id["value"].as_str().unwrap()
                )
            } else if let Some(r) = p.get("valueReference") {
                r["reference"].as_str().unwrap().to_string()
            } else if let Some(b) = p.get("valueBoolean") {
                b.to_string()
            } else if let Some(c) = p.get("valueCode") {
                c.as_str().unwrap().to_string()
            } else {
                "resource".to_string()
            };
            (name, value)
        })
        .collect()
}

#[test]
fn the_schema_check_refuses_what_is_not_fhir() {
    // The validator must bite, or every check below proves nothing.
    for bad in [
        json!({"resourceType": "Patient", "gender": "x"}),
        json!({"resourceType": "Patient", "birthDate": "1958-1-30"}),
        json!({"resourceType": "Patient", "identifier": [{"use": "main"}]}),
        json!({"resourceType": "CapabilityStatement", "status": "active", "date": "2026-12-02",
               "kind": "instance", "fhirVersion": "4.0.2", "format": ["json"]}),
    ] {
        assert!(SCHEMA.iter_errors(&bad).next().is_some(), "{bad}");
    }
    assert!(SCHEMA
        .iter_errors(&json!({"resourceType": "NoSuch"}))
        .next()
        .is_some());
    valid(&json!({"resourceType": "Patient", "gender": "female", "birthDate": "1958-01-30"}));
}

#[test]
fn metadata_is_a_4_0_1_capability_statement_of_the_ihe_actors() {
    on_both(|app| {
        let v = fhir(app.get("/fhir/metadata").send().unwrap(), 200);
        assert_eq!(v["resourceType"], "CapabilityStatement");
        assert_eq!(v["fhirVersion"], "4.0.1");
        let inst: Vec<&str> = v["instantiates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap())
            .collect();
        assert!(inst
            .contains(&"https://profiles.ihe.net/ITI/PIXm/CapabilityStatement/IHE.PIXm.Manager"));
        assert!(inst.contains(
            &"https://profiles.ihe.net/ITI/PDQm/CapabilityStatement/IHE.PDQm.PatientDemographicsSupplier"
        ));
        let patient = &v["rest"][0]["resource"][0];
        assert_eq!(patient["type"], "Patient");
        let ops: Vec<(&str, &str)> = patient["operation"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["name"].as_str().unwrap(),
                    o["definition"].as_str().unwrap(),
                )
            })
            .collect();
        assert!(ops.contains(&(
            "ihe-pix",
            "https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix"
        )));
        let (_, resolve) = ops.iter().find(|(n, _)| *n == "resolve-card").unwrap();
        // The definition is served where the statement points.
        let path = resolve.strip_prefix(app.base.as_str()).unwrap();
        let def = fhir(app.get(path).send().unwrap(), 200);
        assert_eq!(def["resourceType"], "OperationDefinition");
        assert_eq!(def["url"], *resolve);
        let params: Vec<&str> = patient["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for p in [
            "identifier",
            "family",
            "given",
            "gender",
            "birthdate",
            "telecom",
            "active",
        ] {
            assert!(params.contains(&p), "{p}");
        }
    });
}

#[test]
fn pixm_cross_references_mohr_alice_across_the_domains() {
    on_both(|app| {
        let m = mohr_alice(&app);
        let source = format!("{}|IHERED-994", mrn("RED"));
        // Red to Blue, as in the IHE example: one identifier and the Patient.
        let v = fhir(
            pix_get(
                &app,
                &m.red,
                &[
                    ("sourceIdentifier", source.clone()),
                    ("targetSystem", mrn("BLUE")),
                ],
            ),
            200,
        );
        assert_eq!(
            params(&v),
            [
                (
                    "targetIdentifier".to_string(),
                    format!("{}|IHEBLUE-994", mrn("BLUE"))
                ),
                ("targetId".to_string(), format!("Patient/{}", m.rid)),
            ]
        );
        // Every domain: the registry's id, the card, Green and Blue (not the source).
        let all = params(&fhir(
            pix_get(&app, &m.red, &[("sourceIdentifier", source.clone())]),
            200,
        ));
        let ids: Vec<&str> = all.iter().map(|(_, v)| v.as_str()).collect();
        assert!(
            ids.contains(&format!("{RESIDENT}|{}", m.rid).as_str()),
            "{all:?}"
        );
        assert!(ids.contains(&format!("{CARD}|{}", m.card).as_str()));
        assert!(ids.contains(&format!("{}|IHEGREEN-994", mrn("GREEN")).as_str()));
        assert!(ids.contains(&format!("{}|IHEBLUE-994", mrn("BLUE")).as_str()));
        assert!(
            !ids.iter().any(|i| i.contains("IHERED")),
            "the source is not repeated"
        );
        assert!(
            !ids.iter().any(|i| i.starts_with(NID)),
            "no ID number without pii"
        );
        // POST with valueIdentifier and with valueString: the same answer.
        for source_param in [
            json!({"name": "sourceIdentifier", "valueIdentifier": {"system": mrn("RED"), "value": "IHERED-994"}}),
            json!({"name": "sourceIdentifier", "valueString": source}),
        ] {
            let body = json!({"resourceType": "Parameters", "parameter": [
                source_param,
                {"name": "targetSystem", "valueUri": mrn("BLUE")},
            ]});
            let v = fhir(post(&app, &m.red, "/fhir/Patient/$ihe-pix", &body), 200);
            assert_eq!(params(&v)[0].1, format!("{}|IHEBLUE-994", mrn("BLUE")));
        }
        // A clinic with pii gets the ID number under the WS/T 500 OID.
        let v = fhir(
            pix_get(
                &app,
                &m.blue,
                &[
                    ("sourceIdentifier", format!("{CARD}|{}", m.card)),
                    ("targetSystem", NID.to_string()),
                ],
            ),
            200,
        );
        assert_eq!(params(&v)[0].1, format!("{NID}|{}", nid("19580130", 994)));
        // A target domain with no identifier for her: 200, only the Patient.
        let (_, _) = app.clinic("EMPTY", &["verify"]);
        let v = fhir(
            pix_get(
                &app,
                &m.red,
                &[
                    ("sourceIdentifier", source.clone()),
                    ("targetSystem", mrn("EMPTY")),
                ],
            ),
            200,
        );
        assert_eq!(params(&v).len(), 1);
    });
}

#[test]
fn pixm_answers_ihe_s_exact_error_set() {
    on_both(|app| {
        let m = mohr_alice(&app);
        let source = format!("{}|IHERED-994", mrn("RED"));
        // Unknown identifier in a known domain: 404 not-found.
        let r = pix_get(
            &app,
            &m.red,
            &[("sourceIdentifier", format!("{}|IHERED-000", mrn("RED")))],
        );
        assert_eq!(outcome(r, 404).0, "not-found");
        // Unknown source domain (the IHE example's own OID): 400 code-invalid.
        let r = pix_get(
            &app,
            &m.red,
            &[(
                "sourceIdentifier",
                "urn:oid:1.3.6.1.4.1.21367.13.20.1000|IHERED-994".into(),
            )],
        );
        assert_eq!(
            outcome(r, 400),
            ("code-invalid".into(), "unknown_identifier_system".into())
        );
        // A clinic code that does not exist is an unknown domain too.
        let r = pix_get(
            &app,
            &m.red,
            &[("sourceIdentifier", format!("{}|X", mrn("NOPE")))],
        );
        assert_eq!(outcome(r, 400).0, "code-invalid");
        // Unknown target domain: 403 code-invalid.
        let r = pix_get(
            &app,
            &m.red,
            &[
                ("sourceIdentifier", source.clone()),
                (
                    "targetSystem",
                    "urn:oid:1.3.6.1.4.1.21367.13.20.3000".into(),
                ),
            ],
        );
        assert_eq!(
            outcome(r, 403),
            ("code-invalid".into(), "forbidden_identifier_system".into())
        );
        // Forbidden target domains: another clinic's numbers without xref,
        // the ID number without pii.
        let green_source = format!("{}|IHEGREEN-994", mrn("GREEN"));
        for target in [mrn("BLUE"), NID.to_string()] {
            let r = pix_get(
                &app,
                &m.green,
                &[
                    ("sourceIdentifier", green_source.clone()),
                    ("targetSystem", target),
                ],
            );
            assert_eq!(outcome(r, 403).0, "code-invalid");
        }
        // sourceIdentifier missing or repeated: 400.
        let r = pix_get(&app, &m.red, &[("targetSystem", mrn("BLUE"))]);
        assert_eq!(outcome(r, 400).1, "source_identifier_required");
        let r = pix_get(
            &app,
            &m.red,
            &[
                ("sourceIdentifier", source.clone()),
                ("sourceIdentifier", source.clone()),
            ],
        );
        assert_eq!(outcome(r, 400).1, "source_identifier_required");
        let body = json!({"resourceType": "Parameters", "parameter": []});
        assert_eq!(
            outcome(post(&app, &m.red, "/fhir/Patient/$ihe-pix", &body), 400).1,
            "source_identifier_required"
        );
        // A card id is a way in only for a clinic that knows her.
        let (_, stranger) = app.clinic("STRANGER", &["verify"]);
        let r = pix_get(
            &app,
            &stranger,
            &[("sourceIdentifier", format!("{CARD}|{}", m.card))],
        );
        assert_eq!(outcome(r, 404).0, "not-found");
        // No key: 401 as an OperationOutcome.
        let r = app
            .get("/fhir/Patient/$ihe-pix")
            .query(&[("sourceIdentifier", source)])
            .send()
            .unwrap();
        assert_eq!(outcome(r, 401).0, "login");
    });
}

#[test]
fn a_patient_shows_what_the_clinic_may_see() {
    on_both(|app| {
        let m = mohr_alice(&app);
        let path = format!("/fhir/Patient/{}", m.rid);
        // RED (xref): every clinic's number, its own typed MR; no ID number.
        let p = fhir(get(&app, &m.red, &path), 200);
        assert_eq!(p["resourceType"], "Patient");
        assert_eq!(p["id"], m.rid);
        assert_eq!(p["gender"], "female");
        assert_eq!(p["birthDate"], "1958-01-30");
        assert_eq!(p["active"], true);
        assert_eq!(p["name"][0]["text"], "MOHR ALICE");
        assert_eq!(p["name"][0]["family"], "MOHR");
        assert_eq!(p["name"][0]["given"], json!(["ALICE"]));
        let seen = ids(&p);
        assert!(seen.contains(&(RESIDENT.into(), m.rid.clone())));
        assert!(seen.contains(&(CARD.into(), m.card.clone())));
        for (code, number) in [
            ("RED", "IHERED-994"),
            ("GREEN", "IHEGREEN-994"),
            ("BLUE", "IHEBLUE-994"),
        ] {
            assert!(seen.contains(&(mrn(code), number.into())), "{code}");
        }
        let own = p["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["system"] == mrn("RED"))
            .unwrap();
        assert_eq!(own["type"]["coding"][0]["code"], "MR");
        assert!(!p.to_string().contains(NID), "no ID number without pii");
        assert!(!p.to_string().contains('*'), "never a masked value");
        assert!(p.get("telecom").is_none(), "no phone");
        // GREEN (no xref): its own number only.
        let seen = ids(&fhir(get(&app, &m.green, &path), 200));
        assert!(seen.contains(&(mrn("GREEN"), "IHEGREEN-994".into())));
        assert!(!seen
            .iter()
            .any(|(s, _)| *s == mrn("RED") || *s == mrn("BLUE")));
        // BLUE (pii): the full ID number under the resident ID number's OID.
        let seen = ids(&fhir(get(&app, &m.blue, &path), 200));
        assert!(seen.contains(&(NID.into(), nid("19580130", 994))));
        // A clinic without a link to her: 404, as for no one.
        let (_, stranger) = app.clinic("STRANGER", &["verify", "xref", "pii"]);
        assert_eq!(outcome(get(&app, &stranger, &path), 404).0, "not-found");
        assert_eq!(
            outcome(get(&app, &m.red, "/fhir/Patient/not-a-uuid"), 404).0,
            "not-found"
        );
        // The holder sees who looked her up through FHIR.
        let log: Value = app
            .get("/api/v1/holder/access-log")
            .bearer_auth(&m.holder)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let actions: Vec<(String, String)> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["actor"].as_str().unwrap().into(),
                    e["action"].as_str().unwrap().into(),
                )
            })
            .collect();
        for (who, what) in [
            ("RED", "fhir.read"),
            ("GREEN", "fhir.read"),
            ("RED", "fhir.feed"),
            ("GREEN", "fhir.feed"),
        ] {
            assert!(
                actions.contains(&(who.into(), what.into())),
                "{who} {what} in {actions:?}"
            );
        }
        assert!(!actions.iter().any(|(who, _)| who == "STRANGER"));
    });
}

#[test]
fn the_feed_writes_only_the_clinic_s_own_domain() {
    on_both(|app| {
        let m = mohr_alice(&app);
        let (other, other_card, _) = resident(&app, "欧阳娜娜", &nid("19900101", 2), "13900139000");
        // Another clinic's domain, or a system that is none: 403.
        let r = put_feed(
            &app,
            &m.red,
            &mrn("GREEN"),
            "IHEGREEN-994",
            &feed_patient(RESIDENT, &m.rid),
        );
        assert_eq!(outcome(r, 403).0, "code-invalid");
        let r = put_feed(
            &app,
            &m.red,
            RESIDENT,
            &m.rid,
            &feed_patient(RESIDENT, &m.rid),
        );
        assert_eq!(outcome(r, 403).0, "code-invalid");
        // A Patient that names no registered resident or card: 422; none is made.
        let nobody = "00000000-0000-4000-8000-000000000000";
        for p in [
            feed_patient(RESIDENT, nobody),
            feed_patient(CARD, nobody),
            json!({"resourceType": "Patient"}),
        ] {
            let r = put_feed(&app, &m.red, &mrn("RED"), "IHERED-777", &p);
            assert_eq!(outcome(r, 422).1, "unknown_resident");
        }
        let r = pix_get(
            &app,
            &m.red,
            &[("sourceIdentifier", format!("{}|IHERED-777", mrn("RED")))],
        );
        assert_eq!(outcome(r, 404).0, "not-found");
        // Not a Patient, or no identifier condition: 400.
        let r = put_feed(
            &app,
            &m.red,
            &mrn("RED"),
            "IHERED-777",
            &json!({"resourceType": "Parameters"}),
        );
        assert_eq!(outcome(r, 400).1, "wrong_resource_type");
        let r = with_key(app.client.put(app.url("/fhir/Patient")), &m.red)
            .body(feed_patient(CARD, &other_card).to_string())
            .send()
            .unwrap();
        assert_eq!(outcome(r, 400).1, "identifier_required");
        // Without the link scope: 403.
        let (_, reader) = app.clinic("READER", &["verify"]);
        let r = put_feed(
            &app,
            &reader,
            &mrn("READER"),
            "R-1",
            &feed_patient(CARD, &other_card),
        );
        assert_eq!(outcome(r, 403).0, "forbidden");
        // Moving a number: the same again is 200, pointing it elsewhere moves it.
        fhir(
            put_feed(
                &app,
                &m.red,
                &mrn("RED"),
                "IHERED-995",
                &feed_patient(CARD, &other_card),
            ),
            201,
        );
        fhir(
            put_feed(
                &app,
                &m.red,
                &mrn("RED"),
                "IHERED-995",
                &feed_patient(CARD, &other_card),
            ),
            200,
        );
        let p = fhir(
            put_feed(
                &app,
                &m.red,
                &mrn("RED"),
                "IHERED-995",
                &feed_patient(RESIDENT, &m.rid),
            ),
            200,
        );
        assert_eq!(p["id"], m.rid);
        let r = app
            .get("/api/v1/links")
            .bearer_auth(&m.red)
            .query(&[("local_patient_id", "IHERED-995")])
            .send()
            .unwrap();
        assert_eq!(r.json::<Value>().unwrap()["resident_id"], m.rid);
        // The clinic's own merge: IHERED-996 (the duplicate 欧阳娜娜 record)
        // is replaced by IHERED-994 (Mohr Alice's).
        fhir(
            put_feed(
                &app,
                &m.red,
                &mrn("RED"),
                "IHERED-996",
                &feed_patient(RESIDENT, &other),
            ),
            201,
        );
        let merge = json!({
            "resourceType": "Patient",
            "active": false,
            "identifier": [{"system": RESIDENT, "value": other}],
            "link": [{"other": {"identifier": {"system": mrn("RED"), "value": "IHERED-994"}}, "type": "replaced-by"}],
        });
        let p = fhir(
            put_feed(&app, &m.red, &mrn("RED"), "IHERED-996", &merge),
            200,
        );
        assert_eq!(p["link"][0]["type"], "replaced-by");
        assert_eq!(
            p["link"][0]["other"]["reference"],
            format!("Patient/{}", m.rid)
        );
        let old = p["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["value"] == "IHERED-996")
            .unwrap()
            .clone();
        assert_eq!(old["use"], "old");
        // Replaced by an unknown number, or active false without replaced-by: 422.
        let mut bad = merge.clone();
        bad["link"][0]["other"]["identifier"]["value"] = json!("IHERED-000");
        assert_eq!(
            outcome(put_feed(&app, &m.red, &mrn("RED"), "IHERED-996", &bad), 422).1,
            "unknown_replacement"
        );
        let mut bad = merge.clone();
        bad.as_object_mut().unwrap().remove("link");
        assert_eq!(
            outcome(put_feed(&app, &m.red, &mrn("RED"), "IHERED-996", &bad), 422).1,
            "replaced_by_required"
        );
        // Conditional delete: 204, then the number names no one (404).
        let del = |value: &str| {
            with_key(app.client.delete(app.url("/fhir/Patient")), &m.red)
                .query(&[("identifier", format!("{}|{value}", mrn("RED")))])
                .send()
                .unwrap()
        };
        assert_eq!(del("IHERED-996").status(), 204);
        assert_eq!(outcome(del("IHERED-996"), 404).0, "not-found");
        let r = with_key(app.client.delete(app.url("/fhir/Patient")), &m.red)
            .query(&[("identifier", format!("{}|IHEGREEN-994", mrn("GREEN")))])
            .send()
            .unwrap();
        assert_eq!(outcome(r, 403).0, "code-invalid");
        // RED no longer holds a number for 欧阳娜娜: her Patient is not RED's to read.
        assert_eq!(
            outcome(get(&app, &m.red, &format!("/fhir/Patient/{other}")), 404).0,
            "not-found"
        );
    });
}

fn search(app: &TestApp, key: &str, query: &[(&str, &str)]) -> Response {
    with_key(app.get("/fhir/Patient"), key)
        .query(query)
        .send()
        .unwrap()
}

/// A searchset's Patient ids, checking `total` against the entries.
fn found(v: &Value) -> Vec<String> {
    assert_eq!(v["resourceType"], "Bundle");
    assert_eq!(v["type"], "searchset");
    let ids: Vec<String> = v["entry"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(v["total"], ids.len());
    ids
}

#[test]
fn pdqm_searches_by_identifier_and_by_demographics() {
    on_both(|app| {
        let m = mohr_alice(&app);
        let own = format!("{}|IHERED-994", mrn("RED"));
        // By identifier: her own number, the card, both at once (AND).
        assert_eq!(
            found(&fhir(search(&app, &m.red, &[("identifier", &own)]), 200)),
            vec![m.rid.clone()]
        );
        let card = format!("{CARD}|{}", m.card);
        assert_eq!(
            found(&fhir(
                search(&app, &m.red, &[("identifier", &own), ("identifier", &card)]),
                200
            ))
            .len(),
            1
        );
        let (other, _, _) = resident(&app, "张三", &nid("19800101", 11), "13700137000");
        let other_id = format!("{RESIDENT}|{other}");
        assert!(found(&fhir(
            search(
                &app,
                &m.red,
                &[("identifier", &own), ("identifier", &other_id)]
            ),
            200
        ))
        .is_empty());
        // A resident RED does not know is not found by id without `search`.
        assert!(found(&fhir(
            search(&app, &m.red, &[("identifier", &other_id)]),
            200
        ))
        .is_empty());
        // No match: 200 with total 0.
        let none = format!("{}|IHERED-000", mrn("RED"));
        let v = fhir(search(&app, &m.red, &[("identifier", &none)]), 200);
        assert_eq!(v["total"], 0);
        // Identifier and demographics together.
        assert_eq!(
            found(&fhir(
                search(&app, &m.red, &[("identifier", &own), ("gender", "male")]),
                200
            ))
            .len(),
            0
        );
        assert_eq!(
            found(&fhir(
                search(&app, &m.red, &[("identifier", &own), ("active", "true")]),
                200
            ))
            .len(),
            1
        );
        // Demographics alone need the search scope.
        let r = search(&app, &m.red, &[("family", "MOHR"), ("gender", "female")]);
        assert_eq!(outcome(r, 403).0, "forbidden");
        let (_, finder) = app.clinic("FINDER", &["verify", "search"]);
        // ... and family with gender or birthdate.
        for q in [
            vec![("family", "MOHR")],
            vec![("gender", "female")],
            vec![("given", "ALICE"), ("gender", "female")],
        ] {
            assert_eq!(
                outcome(search(&app, &finder, &q), 422).1,
                "search_combination_required"
            );
        }
        let hit = |q: &[(&str, &str)]| found(&fhir(search(&app, &finder, q), 200));
        assert_eq!(
            hit(&[("family", "MOHR"), ("gender", "female")]),
            vec![m.rid.clone()]
        );
        assert_eq!(
            hit(&[("family", "MO"), ("birthdate", "1958-01-30")]),
            vec![m.rid.clone()]
        );
        assert!(hit(&[("family:exact", "MO"), ("gender", "female")]).is_empty());
        assert_eq!(
            hit(&[
                ("family:exact", "MOHR"),
                ("gender", "female"),
                ("given", "AL")
            ]),
            vec![m.rid.clone()]
        );
        assert!(hit(&[
            ("family", "MOHR"),
            ("gender", "female"),
            ("given:exact", "AL")
        ])
        .is_empty());
        assert!(hit(&[("family", "MOHR"), ("gender", "male")]).is_empty());
        assert!(hit(&[("family", "MOHR"), ("birthdate", "1958-01-31")]).is_empty());
        assert_eq!(
            hit(&[
                ("family", "MOHR"),
                ("gender", "female"),
                ("telecom", "phone|13800138000")
            ]),
            vec![m.rid.clone()]
        );
        assert!(hit(&[
            ("family", "MOHR"),
            ("gender", "female"),
            ("telecom", "13900139000")
        ])
        .is_empty());
        assert!(hit(&[
            ("family", "MOHR"),
            ("gender", "female"),
            ("active", "false")
        ])
        .is_empty());
        // A Chinese name: the surname is where it begins.
        assert_eq!(
            hit(&[("family", "张"), ("gender", "male")]),
            vec![other.clone()]
        );
        assert_eq!(
            hit(&[
                ("family", "张"),
                ("given:exact", "三"),
                ("birthdate", "1980-01-01")
            ]),
            vec![other.clone()]
        );
        // Bad values: 400.
        for q in [
            [("family", "MOHR"), ("gender", "x")],
            [("family", "MOHR"), ("birthdate", "ge1958")],
            [("family", "MOHR"), ("address", "x")],
        ] {
            let (issue, _) = outcome(search(&app, &finder, &q), 400);
            assert_eq!(issue, "invalid");
        }
        // A name is not a way to browse the register: at most 10, even with _count.
        for i in 0..12u32 {
            resident(
                &app,
                &format!("王{i}"),
                &nid("19700101", 2 * i + 100),
                "13600136000",
            );
        }
        assert_eq!(hit(&[("family", "王"), ("gender", "female")]).len(), 10);
        assert_eq!(
            hit(&[("family", "王"), ("gender", "female"), ("_count", "50")]).len(),
            10
        );
        assert_eq!(
            hit(&[("family", "王"), ("gender", "female"), ("_count", "3")]).len(),
            3
        );
        // Each search is logged, matches or not.
        let rows = healthcard::store::access_log::for_resident(
            &mut app.ctx.conn().unwrap(),
            m.rid.parse().unwrap(),
            500,
        )
        .unwrap();
        assert!(rows
            .iter()
            .any(|r| r.action == "fhir.search.demographics" && r.actor == "FINDER"));
        assert!(rows
            .iter()
            .any(|r| r.action == "fhir.search" && r.actor == "RED"));
    });
}

#[test]
fn resolve_card_is_verify_in_fhir_form() {
    on_both(|app| {
        let m = mohr_alice(&app);
        let scan = |key: &str, token: &str| {
            let body = json!({"resourceType": "Parameters", "parameter": [
                {"name": "token", "valueString": token},
                {"name": "channel", "valueCode": "window"},
                {"name": "step", "valueCode": "registration"},
            ]});
            post(&app, key, "/fhir/Patient/$resolve-card", &body)
        };
        let dynamic = app.mint(&m.card, "dynamic");
        let v = fhir(scan(&m.red, &dynamic), 200);
        let out = params(&v);
        assert_eq!(out[0], ("valid".into(), "true".into()));
        let patient = &v["parameter"][1];
        assert_eq!(patient["name"], "patient");
        let p = &patient["resource"];
        assert_eq!(p["id"], m.rid);
        let seen = ids(p);
        assert!(seen.contains(&(CARD.into(), m.card.clone())));
        assert!(seen.contains(&(mrn("RED"), "IHERED-994".into())));
        assert!(!p.to_string().contains(NID));
        // The same reasons as /verify: a dynamic token is accepted once.
        let v = fhir(scan(&m.red, &dynamic), 200);
        assert_eq!(
            params(&v),
            [
                ("valid".into(), "false".into()),
                ("reason".into(), "replayed".into())
            ]
        );
        let v = fhir(scan(&m.red, "EHC1:NOT-A-TOKEN"), 200);
        assert_eq!(params(&v)[1].1, "malformed");
        // pii discloses the ID number.
        let v = fhir(scan(&m.blue, &app.mint(&m.card, "static")), 200);
        assert!(ids(&v["parameter"][1]["resource"]).contains(&(NID.into(), nid("19580130", 994))));
        // Inputs: a token exactly once, a known channel and step.
        let body = json!({"resourceType": "Parameters", "parameter": []});
        assert_eq!(
            outcome(
                post(&app, &m.red, "/fhir/Patient/$resolve-card", &body),
                400
            )
            .1,
            "token_required"
        );
        let body = json!({"resourceType": "Parameters", "parameter": [
            {"name": "token", "valueString": "EHC1:X"}, {"name": "step", "valueCode": "lunch"}]});
        assert_eq!(
            outcome(
                post(&app, &m.red, "/fhir/Patient/$resolve-card", &body),
                422
            )
            .1,
            "invalid_step"
        );
        let body = json!({"resourceType": "Parameters", "parameter": [
            {"name": "token", "valueString": "EHC1:X"}, {"name": "channel", "valueCode": "phone"}]});
        assert_eq!(
            outcome(
                post(&app, &m.red, "/fhir/Patient/$resolve-card", &body),
                422
            )
            .0,
            "invalid"
        );
        let r = with_key(app.post("/fhir/Patient/$resolve-card"), &m.red)
            .body("{not json")
            .send()
            .unwrap();
        assert_eq!(outcome(r, 400).1, "invalid_json");
        // The scans are the verification's access-log rows and metrics.
        let log: Value = app
            .admin_get(&format!("/api/v1/cards/{}/access-log", m.card))
            .json()
            .unwrap();
        let verifies: Vec<&Value> = log
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "verify")
            .collect();
        assert!(verifies.iter().any(|e| e["outcome"] == "valid"
            && e["channel"] == "window"
            && e["step"] == "registration"));
        assert!(verifies.iter().any(|e| e["outcome"] == "replayed"));
        let metrics = app.get("/metrics").send().unwrap().text().unwrap();
        assert!(
            metrics.contains(
                "verifications_total{channel=\"window\",outcome=\"replayed\",step=\"registration\"}"
            ),
            "{metrics}"
        );
    });
}

#[test]
fn xml_is_not_acceptable_and_errors_are_operation_outcomes() {
    on_both(|app| {
        let (_, key) = app.clinic("C1", &["verify"]);
        let r = app
            .get("/fhir/metadata")
            .query(&[("_format", "xml")])
            .send()
            .unwrap();
        assert_eq!(outcome(r, 406).0, "not-supported");
        let r = app
            .get("/fhir/metadata")
            .header("Accept", "application/fhir+xml")
            .send()
            .unwrap();
        assert_eq!(outcome(r, 406).1, "not_acceptable");
        // JSON asked for in either way is served.
        fhir(
            app.get("/fhir/metadata")
                .query(&[("_format", "json")])
                .send()
                .unwrap(),
            200,
        );
        fhir(
            app.get("/fhir/metadata")
                .header(
                    "Accept",
                    "application/fhir+json, application/fhir+xml;q=0.9",
                )
                .send()
                .unwrap(),
            200,
        );
        // Unknown routes, wrong methods, no key: OperationOutcomes too.
        assert_eq!(
            outcome(get(&app, &key, "/fhir/Observation"), 404).0,
            "not-found"
        );
        let r = with_key(app.client.patch(app.url("/fhir/Patient")), &key)
            .send()
            .unwrap();
        assert_eq!(outcome(r, 405).0, "not-supported");
        let r = app
            .get("/fhir/Patient")
            .query(&[("family", "X")])
            .send()
            .unwrap();
        assert_eq!(outcome(r, 401).0, "login");
        let (_, linker) = app.clinic("C2", &["link"]);
        assert_eq!(
            outcome(
                get(&app, &linker, "/fhir/Patient?family=X&gender=male"),
                403
            )
            .0,
            "forbidden"
        );
        // The API outside /fhir keeps its own error body.
        let r = app.get("/api/v1/nothing").send().unwrap();
        assert_eq!(crate::helpers::error_code(r, 404), "not_found");
    });
}
