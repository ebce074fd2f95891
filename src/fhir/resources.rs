//! The FHIR R4 resources this facade answers with, built as JSON.

use serde_json::{json, Value};

use crate::domain::{name_parts, DocumentType, IdentifierDomain, IdentifierSystems};
use crate::service::patients::PatientRecord;
use crate::store::residents::Resident;
use crate::store::resolve::Resolution;
use crate::store::temporary_cards::TemporaryCard;

/// HL7 v2 table 0203 (identifier type), as FHIR R4 names it.
const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";

/// The canonical URLs of what this server instantiates and implements, from
/// the IHE implementation guides (docs/fhir.md cites them).
pub(super) const PIXM_MANAGER: &str =
    "https://profiles.ihe.net/ITI/PIXm/CapabilityStatement/IHE.PIXm.Manager";
pub(super) const PDQM_SUPPLIER: &str =
    "https://profiles.ihe.net/ITI/PDQm/CapabilityStatement/IHE.PDQm.PatientDemographicsSupplier";
pub(super) const PIXM_OPERATION: &str =
    "https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix";

fn mrn_identifier(
    systems: &IdentifierSystems,
    code: &crate::domain::ClinicCode,
    value: &str,
    old: bool,
) -> Value {
    let mut v = json!({
        "use": if old { "old" } else { "usual" },
        "type": {"coding": [{"system": V2_0203, "code": "MR"}]},
        "system": systems.uri(&IdentifierDomain::Clinic(code.clone())),
        "value": value,
        "assigner": {"display": code.as_str()},
    });
    if old {
        v.as_object_mut().map(|o| o.remove("assigner"));
    }
    v
}

fn name(text: &str) -> Value {
    let mut n = json!({"use": "official", "text": text});
    if let Some((family, given)) = name_parts(text) {
        n["family"] = json!(family);
        n["given"] = json!(given);
    }
    json!([n])
}

/// The identifier of a resident's national ID number (where the clinic may see it).
fn national_id_identifier(systems: &IdentifierSystems, nid: &str) -> Value {
    json!({
        "use": "official",
        "system": systems.uri(&IdentifierDomain::Document(DocumentType::ResidentIdCard)),
        "value": nid,
    })
}

/// The Patient resource of a resident, with its identifiers.
fn patient_resource(r: &Resident, identifiers: Vec<Value>, active: bool) -> Value {
    json!({
        "resourceType": "Patient",
        "id": r.id.to_string(),
        "identifier": identifiers,
        "active": active,
        "name": name(&r.name),
        "gender": r.sex.as_str(),
        "birthDate": r.birth_date.format("%Y-%m-%d").to_string(),
    })
}

/// The resident as the asking clinic may see them.
pub(super) fn patient(systems: &IdentifierSystems, rec: &PatientRecord) -> Value {
    let r = &rec.resident;
    let mut identifiers = vec![json!({
        "use": "official",
        "system": systems.uri(&IdentifierDomain::Resident),
        "value": r.id.to_string(),
    })];
    for card in &rec.cards {
        identifiers.push(json!({
            "use": if card.status.holds_slot() { "usual" } else { "old" },
            "system": systems.uri(&IdentifierDomain::Card),
            "value": card.id.to_string(),
        }));
    }
    for n in &rec.numbers {
        identifiers.push(mrn_identifier(
            systems,
            &n.clinic,
            n.local_patient_id.as_str(),
            n.replaced_by.is_some(),
        ));
    }
    if let Some(nid) = &rec.national_id {
        identifiers.push(national_id_identifier(systems, nid.as_str()));
    }
    let mut p = patient_resource(r, identifiers, rec.active());
    if let Some(other) = rec.replaced_by {
        p["link"] =
            json!([{"other": {"reference": format!("Patient/{other}")}, "type": "replaced-by"}]);
    }
    if let Some(t) = &rec.temporary {
        temporary_shape(&mut p, t, &r.name);
    }
    p
}

/// The Patient of a valid scan: what the verification read holds (the card
/// scanned, the clinic's own number), so `$resolve-card` costs what
/// `/verify` does. The full cross-reference is `GET Patient/{id}`.
pub(super) fn scanned_patient(
    systems: &IdentifierSystems,
    res: &Resolution,
    clinic: &crate::domain::ClinicCode,
    pii: bool,
) -> Value {
    let r = &res.resident;
    let mut identifiers = vec![
        json!({"use": "official", "system": systems.uri(&IdentifierDomain::Resident), "value": r.id.to_string()}),
        json!({"use": "usual", "system": systems.uri(&IdentifierDomain::Card), "value": res.card.id.to_string()}),
    ];
    if let Some(local) = &res.local_patient_id {
        identifiers.push(mrn_identifier(systems, clinic, local, false));
    }
    if let (true, Some(nid)) = (pii, r.national_id()) {
        identifiers.push(national_id_identifier(systems, nid.as_str()));
    }
    let mut p = patient_resource(r, identifiers, true);
    if let Some(t) = &res.temporary {
        temporary_shape(&mut p, t, &r.name);
    }
    p
}

/// The Patient of a valid foreign card (federation): what the card's home
/// city disclosed to this one, no more. No `id` (the resource lives at the
/// home city, not here); the resident and the card under the home issuer's
/// systems (API-2.md's default form `urn:healthcard:{issuer}:…`, since
/// this node cannot know another city's configured prefix), the asking
/// clinic's own number under this node's systems, the ID number only if
/// the home city granted `pii` and the clinic holds it, and the home city
/// as `managingOrganization` (a logical reference by issuer code).
pub(super) fn foreign_patient(
    systems: &IdentifierSystems,
    claims: &crate::token::Claims,
    res: &crate::service::federation::ForeignResolution,
    clinic: &crate::domain::ClinicCode,
    pii: bool,
) -> Value {
    let r = &res.resident;
    let home = IdentifierSystems::new(&format!("urn:healthcard:{}", res.issuer.code));
    let mut identifiers = vec![
        json!({"use": "official", "system": home.uri(&IdentifierDomain::Resident), "value": r.id.to_string()}),
        json!({"use": "usual", "system": home.uri(&IdentifierDomain::Card), "value": claims.card_id.to_string()}),
    ];
    if let Some(local) = &res.local_patient_id {
        identifiers.push(mrn_identifier(systems, clinic, local, false));
    }
    if let (true, Some(nid)) = (pii, &r.national_id) {
        identifiers.push(national_id_identifier(systems, nid));
    }
    json!({
        "resourceType": "Patient",
        "identifier": identifiers,
        "active": true,
        "name": name(&r.name),
        "gender": r.sex,
        "birthDate": r.birth_date.format("%Y-%m-%d").to_string(),
        "managingOrganization": {
            "identifier": {"system": ISSUER_SYSTEM, "value": res.issuer.code},
            "display": res.issuer.name,
        },
    })
}

/// The identifier system of a federated issuer's code (GB/T 2260 city
/// code), in `managingOrganization` of a foreign card's Patient.
pub(super) const ISSUER_SYSTEM: &str = "urn:healthcard:issuer";

/// A temporary card's patient (issue 14): the approximate year as a partial
/// FHIR date (or none), never the stored stand-in date; an unknown name
/// (无名氏) as a HumanName of use `temp`, not the patient's official name.
/// One rule for `Patient/{id}`, the searches and `$resolve-card`.
fn temporary_shape(p: &mut Value, t: &TemporaryCard, name: &str) {
    match t.birth_year {
        Some(y) => p["birthDate"] = json!(y.get().to_string()),
        None => {
            if let Some(o) = p.as_object_mut() {
                o.remove("birthDate");
            }
        }
    }
    if !t.name_known {
        p["name"] = json!([{"use": "temp", "text": name}]);
    }
}

/// A search answer: `total` counts the entries given (never the size of
/// the register).
pub(super) fn searchset(base: &str, self_url: &str, patients: Vec<Value>) -> Value {
    let entries: Vec<Value> = patients
        .into_iter()
        .map(|p| {
            let id = p["id"].as_str().unwrap_or_default().to_string();
            json!({
                "fullUrl": format!("{base}/Patient/{id}"),
                "resource": p,
                "search": {"mode": "match"},
            })
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "link": [{"relation": "self", "url": self_url}],
        "entry": entries,
    })
}

/// The CapabilityStatement: only what is built.
pub(super) fn capability_statement(resolve_card: &str) -> Value {
    let param =
        |name: &str, ty: &str, doc: &str| json!({"name": name, "type": ty, "documentation": doc});
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-02",
        "publisher": "healthcard",
        "kind": "instance",
        "instantiates": [PIXM_MANAGER, PDQM_SUPPLIER],
        "software": {"name": "healthcard", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "healthcard: the unified electronic health card registry (FHIR facade)"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "documentation": "A clinic's API key as Bearer. Patient ids are the registry's resident ids.",
            "security": {"description": "Authorization: Bearer <clinic API key>; scopes verify (read, search, $ihe-pix, $resolve-card), link (feed), pii (the ID number), xref (other clinics' numbers), search (demographic search)."},
            "resource": [{
                "type": "Patient",
                "interaction": [
                    {"code": "read"},
                    {"code": "search-type"},
                    {"code": "update", "documentation": "conditional update only: PIXm ITI-104 feed of the clinic's own number"},
                    {"code": "delete", "documentation": "conditional delete only: removes the clinic's own number"}
                ],
                "versioning": "no-version",
                "readHistory": false,
                "updateCreate": false,
                "conditionalCreate": false,
                "conditionalRead": "not-supported",
                "conditionalUpdate": true,
                "conditionalDelete": "single",
                "searchParam": [
                    param("identifier", "token", "system|value; repeats are AND"),
                    param("family", "string", "start of the family name (:exact supported); needs gender or birthdate without identifier"),
                    param("given", "string", "start of a given name (:exact supported)"),
                    param("gender", "token", "male or female"),
                    param("birthdate", "date", "a whole date, YYYY-MM-DD (eq only)"),
                    param("telecom", "token", "a mobile number, phone|number or number"),
                    param("active", "token", "true or false"),
                    param("_count", "number", "at most 10 without identifier, 50 with")
                ],
                "operation": [
                    {"name": "ihe-pix", "definition": PIXM_OPERATION},
                    {"name": "resolve-card", "definition": resolve_card}
                ]
            }]
        }]
    })
}

/// The definition of `$resolve-card`, served where the CapabilityStatement
/// points.
pub(super) fn resolve_card_definition(url: &str) -> Value {
    let p = |name: &str, use_: &str, min: u32, ty: &str, doc: &str| json!({"name": name, "use": use_, "min": min, "max": "1", "type": ty, "documentation": doc});
    json!({
        "resourceType": "OperationDefinition",
        "id": "resolve-card",
        "url": url,
        "name": "ResolveCard",
        "title": "Resolve a scanned health card",
        "status": "active",
        "kind": "operation",
        "code": "resolve-card",
        "resource": ["Patient"],
        "system": false,
        "type": true,
        "instance": false,
        "affectsState": true,
        "description": "The FHIR form of POST /api/v1/verify: checks a scanned EHC1 token and resolves the resident. Logged and counted as a verification; a dynamic token is accepted once.",
        "parameter": [
            p("token", "in", 1, "string", "the scanned text, EHC1:…"),
            p("channel", "in", 0, "code", "window, kiosk, doctor or app"),
            p("step", "in", 0, "code", "registration, diagnosis, dispensing, examination, payment, prescription, surgery or other"),
            p("valid", "out", 1, "boolean", "whether the card is valid"),
            p("reason", "out", 0, "code", "why not: the reason codes of /api/v1/verify"),
            p("patient", "out", 0, "Patient", "the resident, when valid")
        ]
    })
}
