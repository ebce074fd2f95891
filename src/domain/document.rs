use std::fmt;

use chrono::NaiveDate;

use super::national_id::{birth_date_of, check_char};
use super::{Choice, DomainError, NationalId, Sex};

/// The identity document types of API-2.md (the card platforms' CV02.01.101
/// list where a code exists). Each has its own number type below and one
/// [`Document::parse`]; see docs/identity.md for the formats and sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentType {
    ResidentIdCard,
    HouseholdRegister,
    Passport,
    HkMacaoPermit,
    TaiwanPermit,
    BirthCertificate,
    HmtResidencePermit,
    ForeignPermanentResidence,
}

impl DocumentType {
    pub const ALL: [DocumentType; 8] = [
        DocumentType::ResidentIdCard,
        DocumentType::HouseholdRegister,
        DocumentType::Passport,
        DocumentType::HkMacaoPermit,
        DocumentType::TaiwanPermit,
        DocumentType::BirthCertificate,
        DocumentType::HmtResidencePermit,
        DocumentType::ForeignPermanentResidence,
    ];

    /// `invalid_document_type` (a 422) for a name that is none of them.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == text.trim())
            .ok_or(DomainError::Unknown(Choice::DocumentType))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DocumentType::ResidentIdCard => "resident_id_card",
            DocumentType::HouseholdRegister => "household_register",
            DocumentType::Passport => "passport",
            DocumentType::HkMacaoPermit => "hk_macao_permit",
            DocumentType::TaiwanPermit => "taiwan_permit",
            DocumentType::BirthCertificate => "birth_certificate",
            DocumentType::HmtResidencePermit => "hmt_residence_permit",
            DocumentType::ForeignPermanentResidence => "foreign_permanent_residence",
        }
    }

    /// The OID of the number's register (a FHIR system is `urn:oid:` + this),
    /// where one has been looked up: see docs/fhir.md for the sources.
    pub fn oid(self) -> Option<&'static str> {
        match self {
            DocumentType::ResidentIdCard => Some(super::identifier::RESIDENT_ID_CARD_OID),
            _ => None,
        }
    }

    /// The purpose its numbers are sealed and indexed under: see
    /// [`CITIZEN_NUMBER_PURPOSE`].
    pub fn purpose(self) -> &'static [u8] {
        match self {
            DocumentType::ResidentIdCard
            | DocumentType::HouseholdRegister
            | DocumentType::HmtResidencePermit => CITIZEN_NUMBER_PURPOSE,
            _ => DOCUMENT_PURPOSE,
        }
    }

    /// The national code of CV02.01.101 (API-2.md's table).
    pub fn code(self) -> &'static str {
        match self {
            DocumentType::ResidentIdCard => "01",
            DocumentType::HouseholdRegister => "02",
            DocumentType::Passport => "03",
            DocumentType::HkMacaoPermit => "06",
            DocumentType::TaiwanPermit => "07",
            DocumentType::BirthCertificate => "08",
            DocumentType::HmtResidencePermit | DocumentType::ForeignPermanentResidence => "99",
        }
    }

    /// Whether the number is the citizen number of GB 11643 that residents
    /// are registered under today (an ID card, or a child's household register).
    pub fn is_citizen_number(self) -> bool {
        matches!(
            self,
            DocumentType::ResidentIdCard | DocumentType::HouseholdRegister
        )
    }

    /// Whether a number of this type encodes sex and birth date (GB 11643's
    /// layout), so that a registration reads them from it instead of asking
    /// ([`Document::sex`] and [`Document::birth_date`] answer for these).
    pub fn encodes_demographics(self) -> bool {
        self.is_citizen_number() || self == DocumentType::HmtResidencePermit
    }
}

/// Why a document was refused; each variant has its own stable code
/// (`src/error.rs` maps them exhaustively). `reason` says what was wrong
/// with a number without repeating it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// `invalid_document_type`: no type of API-2.md.
    #[error("unknown document type")]
    UnknownType,
    /// `invalid_document_number`: the number breaks its type's format.
    #[error("invalid document number: {reason}")]
    Number { reason: &'static str },
    /// `invalid_national_id`: the short form `national_id` was refused
    /// (kept for API.md's clients).
    #[error("invalid national_id: {reason}")]
    NationalId { reason: &'static str },
    /// `invalid_country`: missing for a passport, or no ISO 3166-1 alpha-3 code.
    #[error("invalid country: {reason}")]
    Country { reason: &'static str },
    /// `document_mismatch`: a given sex or birth date contradicts the number.
    #[error("the {field} given contradicts the document number")]
    Mismatch { field: Demographic },
    /// `sex_required` / `birth_date_required`: the number does not encode it.
    #[error("{field} is required for this document type")]
    Required { field: Demographic },
}

/// What a document may encode of its holder, besides the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demographic {
    Sex,
    BirthDate,
}

impl Demographic {
    /// The request field it is given in: `sex` or `birth_date`.
    pub fn as_str(self) -> &'static str {
        match self {
            Demographic::Sex => "sex",
            Demographic::BirthDate => "birth_date",
        }
    }
}

impl fmt::Display for Demographic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn bad(reason: &'static str) -> DocumentError {
    DocumentError::Number { reason }
}

/// The 249 officially assigned ISO 3166-1 alpha-3 codes (see docs/identity.md
/// for the source). Sorted, for a binary search.
const ISO_3166_ALPHA3: [&str; 249] = [
    "ABW", "AFG", "AGO", "AIA", "ALA", "ALB", "AND", "ARE", "ARG", "ARM", "ASM", "ATA", "ATF",
    "ATG", "AUS", "AUT", "AZE", "BDI", "BEL", "BEN", "BES", "BFA", "BGD", "BGR", "BHR", "BHS",
    "BIH", "BLM", "BLR", "BLZ", "BMU", "BOL", "BRA", "BRB", "BRN", "BTN", "BVT", "BWA", "CAF",
    "CAN", "CCK", "CHE", "CHL", "CHN", "CIV", "CMR", "COD", "COG", "COK", "COL", "COM", "CPV",
    "CRI", "CUB", "CUW", "CXR", "CYM", "CYP", "CZE", "DEU", "DJI", "DMA", "DNK", "DOM", "DZA",
    "ECU", "EGY", "ERI", "ESH", "ESP", "EST", "ETH", "FIN", "FJI", "FLK", "FRA", "FRO", "FSM",
    "GAB", "GBR", "GEO", "GGY", "GHA", "GIB", "GIN", "GLP", "GMB", "GNB", "GNQ", "GRC", "GRD",
    "GRL", "GTM", "GUF", "GUM", "GUY", "HKG", "HMD", "HND", "HRV", "HTI", "HUN", "IDN", "IMN",
    "IND", "IOT", "IRL", "IRN", "IRQ", "ISL", "ISR", "ITA", "JAM", "JEY", "JOR", "JPN", "KAZ",
    "KEN", "KGZ", "KHM", "KIR", "KNA", "KOR", "KWT", "LAO", "LBN", "LBR", "LBY", "LCA", "LIE",
    "LKA", "LSO", "LTU", "LUX", "LVA", "MAC", "MAF", "MAR", "MCO", "MDA", "MDG", "MDV", "MEX",
    "MHL", "MKD", "MLI", "MLT", "MMR", "MNE", "MNG", "MNP", "MOZ", "MRT", "MSR", "MTQ", "MUS",
    "MWI", "MYS", "MYT", "NAM", "NCL", "NER", "NFK", "NGA", "NIC", "NIU", "NLD", "NOR", "NPL",
    "NRU", "NZL", "OMN", "PAK", "PAN", "PCN", "PER", "PHL", "PLW", "PNG", "POL", "PRI", "PRK",
    "PRT", "PRY", "PSE", "PYF", "QAT", "REU", "ROU", "RUS", "RWA", "SAU", "SDN", "SEN", "SGP",
    "SGS", "SHN", "SJM", "SLB", "SLE", "SLV", "SMR", "SOM", "SPM", "SRB", "SSD", "STP", "SUR",
    "SVK", "SVN", "SWE", "SWZ", "SXM", "SYC", "SYR", "TCA", "TCD", "TGO", "THA", "TJK", "TKL",
    "TKM", "TLS", "TON", "TTO", "TUN", "TUR", "TUV", "TWN", "TZA", "UGA", "UKR", "UMI", "URY",
    "USA", "UZB", "VAT", "VCT", "VEN", "VGB", "VIR", "VNM", "VUT", "WLF", "WSM", "YEM", "ZAF",
    "ZMB", "ZWE",
];

/// A country of ISO 3166-1 alpha-3 (a passport's issuing state). Held upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Country(String);

impl Country {
    pub fn parse(text: &str) -> Result<Self, DocumentError> {
        let t = text.trim().to_ascii_uppercase();
        if t.len() != 3 || !t.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(DocumentError::Country { reason: "format" });
        }
        if ISO_3166_ALPHA3.binary_search(&t.as_str()).is_err() {
            return Err(DocumentError::Country { reason: "unknown" });
        }
        Ok(Country(t))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Upper-case and without spaces: how a number typed by hand (or read by a
/// scanner with spaces) is compared and stored.
fn compact(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// A passport number: ICAO Doc 9303's document-number field, at most 9
/// characters of `A-Z` and `0-9` (the issuing state's own format is not
/// checked: there are 249 of them).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PassportNumber(String);

impl PassportNumber {
    pub fn parse(text: &str) -> Result<Self, DocumentError> {
        let t = compact(text);
        if t.len() < 2 || t.len() > 9 {
            return Err(bad("wrong_length"));
        }
        if !t
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(bad("bad_character"));
        }
        Ok(PassportNumber(t))
    }
}

/// 港澳居民来往内地通行证: `H` (Hong Kong) or `M` (Macao), an 8-digit
/// lifelong number, then 2 digits counting reissues (MPS, 2010). The 9 first
/// characters name the holder for life: they are what uniqueness is over.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HkMacaoPermitNumber(String);

impl HkMacaoPermitNumber {
    pub fn parse(text: &str) -> Result<Self, DocumentError> {
        let t = compact(text);
        if t.len() != 11 && t.len() != 9 {
            return Err(bad("wrong_length"));
        }
        if !matches!(t.as_bytes()[0], b'H' | b'M') {
            return Err(bad("bad_prefix"));
        }
        if !t.as_bytes()[1..].iter().all(u8::is_ascii_digit) {
            return Err(bad("not_digits"));
        }
        Ok(HkMacaoPermitNumber(t))
    }

    fn lifelong(&self) -> &str {
        &self.0[..9]
    }
}

/// 台湾居民来往大陆通行证: an 8-digit lifelong number since 2008-09-25;
/// older permits carry 2 more digits (the issue count), which are not part of
/// the person's number.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TaiwanPermitNumber(String);

impl TaiwanPermitNumber {
    pub fn parse(text: &str) -> Result<Self, DocumentError> {
        let t = compact(text);
        if t.len() != 8 && t.len() != 10 {
            return Err(bad("wrong_length"));
        }
        if !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("not_digits"));
        }
        Ok(TaiwanPermitNumber(t))
    }

    fn lifelong(&self) -> &str {
        &self.0[..8]
    }
}

/// 出生医学证明编号: one letter and 9 digits (the 7th edition of 2023 kept
/// the form of the 6th and added a barcode of it).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BirthCertificateNumber(String);

impl BirthCertificateNumber {
    pub fn parse(text: &str) -> Result<Self, DocumentError> {
        let t = compact(text);
        if t.len() != 10 {
            return Err(bad("wrong_length"));
        }
        if !t.as_bytes()[0].is_ascii_uppercase() {
            return Err(bad("bad_prefix"));
        }
        if !t.as_bytes()[1..].iter().all(u8::is_ascii_digit) {
            return Err(bad("not_digits"));
        }
        Ok(BirthCertificateNumber(t))
    }
}

/// The citizen number on a 港澳台居民居住证: GB 11643's 18 characters and check
/// character, with the region 810000 (Hong Kong), 820000 (Macao) or 830000
/// (Taiwan). Encodes birth date and sex as a 居民身份证号 does.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResidencePermitNumber(String);

impl ResidencePermitNumber {
    pub fn parse(text: &str) -> Result<Self, DocumentError> {
        let t = compact(text);
        let b = gb11643_body(&t)?;
        if !matches!(&t[..6], "810000" | "820000" | "830000") {
            return Err(bad("unknown_region"));
        }
        birth_date_of(b).ok_or(bad("bad_birth_date"))?;
        Ok(ResidencePermitNumber(t))
    }
}

/// 18 characters, 17 digits and a MOD 11-2 check character (GB 11643).
fn gb11643_body(t: &str) -> Result<&[u8], DocumentError> {
    if t.len() != 18 {
        return Err(bad("wrong_length"));
    }
    let b = t.as_bytes();
    if !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
        return Err(bad("not_digits"));
    }
    if check_char(&b[..17]) != b[17] {
        return Err(bad("bad_check_digit"));
    }
    Ok(b)
}

/// 外国人永久居留身份证: the 2017 card's 15 characters (3 letters naming the
/// country, 12 digits), or the 2023 card's 18 (first digit `9`, MOD 11-2
/// check character as GB 11643). Neither layout of birth date and sex inside
/// the number was found published, so they are not read from it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PermanentResidenceNumber(String);

impl PermanentResidenceNumber {
    pub fn parse(text: &str) -> Result<Self, DocumentError> {
        let t = compact(text);
        match t.len() {
            15 => {
                let b = t.as_bytes();
                if !b[..3].iter().all(u8::is_ascii_uppercase) {
                    return Err(bad("bad_prefix"));
                }
                if !b[3..].iter().all(u8::is_ascii_digit) {
                    return Err(bad("not_digits"));
                }
            }
            18 => {
                gb11643_body(&t)?;
                if t.as_bytes()[0] != b'9' {
                    return Err(bad("bad_prefix"));
                }
            }
            _ => return Err(bad("wrong_length")),
        }
        Ok(PermanentResidenceNumber(t))
    }
}

/// A parsed identity document: the type and a number of its format (and a
/// country for a passport). `Debug` and `Display` print the masked form only.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Document {
    ResidentIdCard(NationalId),
    HouseholdRegister(NationalId),
    Passport {
        country: Country,
        number: PassportNumber,
    },
    HkMacaoPermit(HkMacaoPermitNumber),
    TaiwanPermit(TaiwanPermitNumber),
    BirthCertificate(BirthCertificateNumber),
    HmtResidencePermit(ResidencePermitNumber),
    ForeignPermanentResidence(PermanentResidenceNumber),
}

/// Blind-index and sealing purpose of the numbers GB 11643 assigns (ID card,
/// household register, HMT residence permit): one number space, so one
/// person cannot be registered twice through two papers with the same
/// number. The same purpose as the residents' old `national_id_*` columns,
/// which lets the migration copy them without decrypting.
pub const CITIZEN_NUMBER_PURPOSE: &[u8] = b"national_id";
/// Blind-index and sealing purpose of every other number.
pub const DOCUMENT_PURPOSE: &[u8] = b"document";

impl Document {
    /// Parses `number` (and `country`, for a passport) as a document of `kind`.
    pub fn parse(
        kind: DocumentType,
        number: &str,
        country: Option<&str>,
    ) -> Result<Self, DocumentError> {
        let country = country.map(str::trim).filter(|c| !c.is_empty());
        if kind != DocumentType::Passport && country.is_some() {
            return Err(DocumentError::Country {
                reason: "not_expected",
            });
        }
        Ok(match kind {
            DocumentType::ResidentIdCard => Document::ResidentIdCard(citizen(number)?),
            DocumentType::HouseholdRegister => Document::HouseholdRegister(citizen(number)?),
            DocumentType::Passport => Document::Passport {
                country: Country::parse(
                    country.ok_or(DocumentError::Country { reason: "missing" })?,
                )?,
                number: PassportNumber::parse(number)?,
            },
            DocumentType::HkMacaoPermit => {
                Document::HkMacaoPermit(HkMacaoPermitNumber::parse(number)?)
            }
            DocumentType::TaiwanPermit => {
                Document::TaiwanPermit(TaiwanPermitNumber::parse(number)?)
            }
            DocumentType::BirthCertificate => {
                Document::BirthCertificate(BirthCertificateNumber::parse(number)?)
            }
            DocumentType::HmtResidencePermit => {
                Document::HmtResidencePermit(ResidencePermitNumber::parse(number)?)
            }
            DocumentType::ForeignPermanentResidence => {
                Document::ForeignPermanentResidence(PermanentResidenceNumber::parse(number)?)
            }
        })
    }

    /// The number an ID-card reader types (多码融合): the chip cards that
    /// carry an 18-character GB 11643 number, tried in order: the resident
    /// ID card (whose number also names the household register and, for
    /// Hong Kong and Macao residents, the residence permit: one blind index),
    /// the Hong Kong, Macao and Taiwan residence permit, and the 2023
    /// foreign permanent residence card. `None` for anything else (a token,
    /// a typo), which the caller then treats as a scanned token.
    pub fn from_card_reader(text: &str) -> Option<Document> {
        let t = text.trim();
        [
            DocumentType::ResidentIdCard,
            DocumentType::HmtResidencePermit,
            DocumentType::ForeignPermanentResidence,
        ]
        .into_iter()
        .find_map(|kind| Document::parse(kind, t, None).ok())
    }

    /// A document read back from the store: as [`Document::parse`], but an
    /// ID number goes through [`NationalId::parse_stored`] (rules that came
    /// later must not make old rows unreadable).
    pub fn parse_stored(
        kind: DocumentType,
        number: &str,
        country: Option<&str>,
    ) -> Result<Self, DocumentError> {
        let stored = |n: &str| {
            NationalId::parse_stored(n).map_err(|e| DocumentError::Number { reason: e.reason() })
        };
        match kind {
            DocumentType::ResidentIdCard => Ok(Document::ResidentIdCard(stored(number)?)),
            DocumentType::HouseholdRegister => Ok(Document::HouseholdRegister(stored(number)?)),
            _ => Document::parse(kind, number, country),
        }
    }

    pub fn kind(&self) -> DocumentType {
        match self {
            Document::ResidentIdCard(_) => DocumentType::ResidentIdCard,
            Document::HouseholdRegister(_) => DocumentType::HouseholdRegister,
            Document::Passport { .. } => DocumentType::Passport,
            Document::HkMacaoPermit(_) => DocumentType::HkMacaoPermit,
            Document::TaiwanPermit(_) => DocumentType::TaiwanPermit,
            Document::BirthCertificate(_) => DocumentType::BirthCertificate,
            Document::HmtResidencePermit(_) => DocumentType::HmtResidencePermit,
            Document::ForeignPermanentResidence(_) => DocumentType::ForeignPermanentResidence,
        }
    }

    /// The full, normalised number. Handle with care: never log it.
    pub fn number(&self) -> &str {
        match self {
            Document::ResidentIdCard(n) | Document::HouseholdRegister(n) => n.as_str(),
            Document::Passport { number, .. } => &number.0,
            Document::HkMacaoPermit(n) => &n.0,
            Document::TaiwanPermit(n) => &n.0,
            Document::BirthCertificate(n) => &n.0,
            Document::HmtResidencePermit(n) => &n.0,
            Document::ForeignPermanentResidence(n) => &n.0,
        }
    }

    pub fn country(&self) -> Option<&Country> {
        match self {
            Document::Passport { country, .. } => Some(country),
            _ => None,
        }
    }

    /// The citizen number, for the short form `national_id` of API.md.
    pub fn national_id(&self) -> Option<&NationalId> {
        match self {
            Document::ResidentIdCard(n) | Document::HouseholdRegister(n) => Some(n),
            _ => None,
        }
    }

    /// The purpose its number is sealed and indexed under.
    pub fn purpose(&self) -> &'static [u8] {
        self.kind().purpose()
    }

    /// What the blind index is computed over: the number that names the
    /// person (a permit's lifelong part, not its reissue count). Citizen
    /// numbers are the bare number, as the old `national_id_index` was;
    /// others carry the type's code and the country, so that one passport
    /// number of two states are two documents.
    pub fn index_input(&self) -> String {
        match self {
            Document::ResidentIdCard(n) | Document::HouseholdRegister(n) => n.as_str().to_owned(),
            Document::HmtResidencePermit(n) => n.0.clone(),
            Document::Passport { country, number } => {
                format!("passport:{}:{}", country.0, number.0)
            }
            Document::HkMacaoPermit(n) => format!("hk_macao_permit:{}", n.lifelong()),
            Document::TaiwanPermit(n) => format!("taiwan_permit:{}", n.lifelong()),
            Document::BirthCertificate(n) => format!("birth_certificate:{}", n.0),
            Document::ForeignPermanentResidence(n) => {
                format!("foreign_permanent_residence:{}", n.0)
            }
        }
    }

    /// The birth date the number encodes, where it encodes one.
    pub fn birth_date(&self) -> Option<NaiveDate> {
        match self {
            Document::ResidentIdCard(n) | Document::HouseholdRegister(n) => Some(n.birth_date()),
            Document::HmtResidencePermit(n) => birth_date_of(n.0.as_bytes()),
            _ => None,
        }
    }

    /// The sex the number encodes, where it encodes one.
    pub fn sex(&self) -> Option<Sex> {
        match self {
            Document::ResidentIdCard(n) | Document::HouseholdRegister(n) => Some(n.sex()),
            Document::HmtResidencePermit(n) => Some(if (n.0.as_bytes()[16] - b'0') % 2 == 1 {
                Sex::Male
            } else {
                Sex::Female
            }),
            _ => None,
        }
    }

    /// Sex and birth date of the holder: read from the number where it
    /// encodes them (a given value must agree), else the given ones, which
    /// are then required.
    pub fn demographics(
        &self,
        sex: Option<Sex>,
        birth_date: Option<NaiveDate>,
    ) -> Result<(Sex, NaiveDate), DocumentError> {
        let sex = match (self.sex(), sex) {
            (Some(a), Some(b)) if a != b => {
                return Err(DocumentError::Mismatch {
                    field: Demographic::Sex,
                })
            }
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => {
                return Err(DocumentError::Required {
                    field: Demographic::Sex,
                })
            }
        };
        let birth = match (self.birth_date(), birth_date) {
            (Some(a), Some(b)) if a != b => {
                return Err(DocumentError::Mismatch {
                    field: Demographic::BirthDate,
                })
            }
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => {
                return Err(DocumentError::Required {
                    field: Demographic::BirthDate,
                })
            }
        };
        Ok((sex, birth))
    }

    /// The masked form every answer without `pii` shows; the one place the
    /// rule lives for every type. See docs/identity.md for the count of
    /// numbers each leaves to a reader who also sees birth date and sex.
    pub fn masked(&self) -> String {
        let n = self.number();
        let keep = match self {
            // Province and city, as NationalId::masked; the permit's region
            // is one of three fixed codes anyway.
            Document::ResidentIdCard(id) | Document::HouseholdRegister(id) => return id.masked(),
            Document::HmtResidencePermit(_) => 4,
            // H or M; the letter of a birth certificate; the first digit 9
            // (2023) or the three letters (2017) of a permanent residence card.
            Document::HkMacaoPermit(_) | Document::BirthCertificate(_) => 1,
            Document::ForeignPermanentResidence(_) if n.len() == 18 => 1,
            Document::ForeignPermanentResidence(_) => 3,
            Document::TaiwanPermit(_) => 0,
            // Always 9 stars: not even the length is shown.
            Document::Passport { .. } => return "*".repeat(9),
        };
        format!("{}{}", &n[..keep], "*".repeat(n.len() - keep))
    }
}

fn citizen(number: &str) -> Result<NationalId, DocumentError> {
    NationalId::parse(number).map_err(|e| DocumentError::Number { reason: e.reason() })
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Document({}, {})", self.kind().as_str(), self.masked())
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl DocumentError {
        /// The HTTP answer's code (src/error.rs maps them).
        fn code(&self) -> String {
            crate::error::AppError::from(self.clone()).code().to_owned()
        }
    }

    #[test]
    fn a_card_reader_types_chip_card_numbers_only() {
        let id = Document::from_card_reader(" 11010519491231002X\r\n").unwrap();
        assert_eq!(id.kind(), DocumentType::ResidentIdCard);
        let taiwan = Document::from_card_reader("830000199001010039").unwrap();
        assert_eq!(taiwan.kind(), DocumentType::HmtResidencePermit);
        for not_a_card in [
            "",
            "EHC1:6BFOXN",
            "11010519491231002Y",
            "E12345678",
            "12345678",
        ] {
            assert!(
                Document::from_card_reader(not_a_card).is_none(),
                "{not_a_card}"
            );
        }
    }

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for t in DocumentType::ALL {
            assert_eq!(DocumentType::parse(t.as_str()), Ok(t));
        }
        assert_eq!(
            DocumentType::parse("driving_licence").unwrap_err().reason(),
            "unknown"
        );
    }

    #[test]
    fn the_country_list_is_sorted_and_complete() {
        let mut sorted = ISO_3166_ALPHA3;
        sorted.sort_unstable();
        assert_eq!(sorted, ISO_3166_ALPHA3);
        assert!(Country::parse("chn").is_ok());
        assert_eq!(
            Country::parse("XXX"),
            Err(DocumentError::Country { reason: "unknown" })
        );
        assert_eq!(
            Country::parse("C1N"),
            Err(DocumentError::Country { reason: "format" })
        );
    }

    #[derive(serde::Deserialize)]
    struct Vector {
        #[serde(rename = "type")]
        kind: String,
        number: String,
        country: Option<String>,
        /// `null`: valid; else the code of the refusal.
        refused: Option<String>,
        sex: Option<String>,
        birth_date: Option<NaiveDate>,
        masked: Option<String>,
    }

    /// Every valid and invalid example of tests/vectors/identity/documents.json.
    #[test]
    fn the_vectors_parse_or_are_refused_as_written() {
        let text = include_str!("../../tests/vectors/identity/documents.json");
        let vectors: Vec<Vector> = serde_json::from_str(text).unwrap();
        let mut seen = std::collections::HashSet::new();
        for v in &vectors {
            let kind = DocumentType::parse(&v.kind).unwrap();
            let got = Document::parse(kind, &v.number, v.country.as_deref());
            match (&v.refused, got) {
                (None, Ok(d)) => {
                    seen.insert((kind, true));
                    assert_eq!(d.sex().map(Sex::as_str), v.sex.as_deref(), "{}", v.number);
                    assert_eq!(d.birth_date(), v.birth_date, "{}", v.number);
                    assert_eq!(kind.encodes_demographics(), d.sex().is_some());
                    assert_eq!(kind.encodes_demographics(), d.birth_date().is_some());
                    if let Some(m) = &v.masked {
                        assert_eq!(&d.masked(), m);
                    }
                    assert!(!format!("{d:?}").contains(d.number()) || d.number().len() < 4);
                }
                (Some(code), Err(e)) => {
                    seen.insert((kind, false));
                    assert_eq!(&e.code(), code, "{} {e}", v.number);
                }
                (want, got) => panic!("{} {}: want {want:?}, got {got:?}", v.kind, v.number),
            }
        }
        for t in DocumentType::ALL {
            assert!(seen.contains(&(t, true)), "no valid vector of {t:?}");
            assert!(seen.contains(&(t, false)), "no invalid vector of {t:?}");
        }
    }

    #[test]
    fn sex_and_birth_date_come_from_the_number_or_are_required() {
        let id = Document::parse(DocumentType::ResidentIdCard, "11010519491231002X", None).unwrap();
        let birth = NaiveDate::from_ymd_opt(1949, 12, 31).unwrap();
        assert_eq!(id.demographics(None, None), Ok((Sex::Female, birth)));
        assert_eq!(
            id.demographics(Some(Sex::Male), None),
            Err(DocumentError::Mismatch {
                field: Demographic::Sex
            })
        );
        let other = NaiveDate::from_ymd_opt(1950, 1, 1).unwrap();
        assert_eq!(
            id.demographics(None, Some(other)).unwrap_err().code(),
            "document_mismatch"
        );
        let bc = Document::parse(DocumentType::BirthCertificate, "X320101001", None).unwrap();
        assert_eq!(
            bc.demographics(None, Some(other)).unwrap_err().code(),
            "sex_required"
        );
        assert_eq!(
            bc.demographics(Some(Sex::Male), None).unwrap_err().code(),
            "birth_date_required"
        );
        assert_eq!(
            bc.demographics(Some(Sex::Male), Some(other)),
            Ok((Sex::Male, other))
        );
    }

    #[test]
    fn a_reissued_permit_is_the_same_document() {
        let a = Document::parse(DocumentType::HkMacaoPermit, "H1234567800", None).unwrap();
        let b = Document::parse(DocumentType::HkMacaoPermit, "H1234567801", None).unwrap();
        assert_eq!(a.index_input(), b.index_input());
        let t = Document::parse(DocumentType::TaiwanPermit, "1234567801", None).unwrap();
        let u = Document::parse(DocumentType::TaiwanPermit, "12345678", None).unwrap();
        assert_eq!(t.index_input(), u.index_input());
    }

    /// Candidates left by each mask to a reader who sees the masked form,
    /// birth date and sex (the privacy rule of API-2.md: at least 500).
    /// Types without a check character: every character behind a `*` is
    /// free, so the count is the alphabet to the power of the stars (the
    /// lifelong part only, for permits). With one: as NationalId's.
    #[test]
    fn every_mask_leaves_at_least_500_numbers() {
        let count = |d: &Document| -> f64 {
            let stars = d.masked().bytes().filter(|b| *b == b'*').count() as i32;
            match d {
                Document::Passport { .. } => 36f64.powi(2),
                Document::HkMacaoPermit(_) => 10f64.powi(8),
                Document::TaiwanPermit(_) => 10f64.powi(8),
                Document::BirthCertificate(_) => 10f64.powi(stars),
                // 17 hidden digits of which one is the check: 10^(stars-1),
                // minus what a birth date could fix (8 digits).
                Document::ForeignPermanentResidence(_) => 10f64.powi(stars - 1 - 8),
                _ => 500.0,
            }
        };
        for (t, n, c) in [
            (DocumentType::Passport, "E12345678", Some("CHN")),
            (DocumentType::Passport, "AB", Some("GBR")),
            (DocumentType::HkMacaoPermit, "H1234567800", None),
            (DocumentType::TaiwanPermit, "12345678", None),
            (DocumentType::BirthCertificate, "X320101001", None),
            (
                DocumentType::ForeignPermanentResidence,
                "USA110075010018",
                None,
            ),
        ] {
            let d = Document::parse(t, n, c).unwrap();
            assert!(count(&d) >= 500.0, "{t:?}");
            assert!(!d.masked().contains(&n[n.len().min(4)..]) || n.len() <= 4);
        }
        // Passports: always 9 stars, whatever the length.
        let short = Document::parse(DocumentType::Passport, "AB", Some("GBR")).unwrap();
        assert_eq!(short.masked(), "*********");
    }

    /// The residence permit's mask, counted by brute force as NationalId's:
    /// region fixed, birth date and sex known, sequence and check free.
    #[test]
    fn residence_permit_mask_leaves_500_numbers() {
        let body = "81000019900101001";
        let number = format!("{body}{}", check_char(body.as_bytes()) as char);
        let d = Document::parse(DocumentType::HmtResidencePermit, &number, None).unwrap();
        let masked = d.masked();
        let (birth, sex) = (d.birth_date().unwrap(), d.sex().unwrap());
        let mut n = 0;
        for seq in 0..1000 {
            for c in b"0123456789X" {
                let text = format!("810000{}{seq:03}{}", birth.format("%Y%m%d"), *c as char);
                let agrees = masked
                    .bytes()
                    .zip(text.bytes())
                    .all(|(m, t)| m == b'*' || m == t);
                if !agrees {
                    continue;
                }
                if let Ok(p) = Document::parse(DocumentType::HmtResidencePermit, &text, None) {
                    if p.birth_date() == Some(birth) && p.sex() == Some(sex) {
                        n += 1;
                    }
                }
            }
        }
        assert_eq!(n, 500);
    }
}
