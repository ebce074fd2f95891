//! Simplified Chinese (default) and English. Strings sit at their call site
//! as `lang.t("中文", "English")` pairs, so a page reads as one piece; the
//! messages shared between pages (domain refusals, verification reasons,
//! card states) are here.

use actix_web::HttpRequest;

use crate::domain::{CardStatus, DomainError, Step};
use crate::token::Reason;

/// Name of the cookie that keeps the chosen language.
pub(super) const LANG_COOKIE: &str = "hc_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// The `lang` attribute of `<html>`.
    pub fn html(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh" | "zh-CN" | "zh-cn" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// `?lang=` first (and then it is remembered), else the cookie, else Chinese.
    /// Returns the language and whether it came from the query.
    pub fn of(req: &HttpRequest) -> (Lang, bool) {
        let from_query = req
            .query_string()
            .split('&')
            .filter_map(|kv| kv.strip_prefix("lang="))
            .find_map(Lang::parse);
        if let Some(l) = from_query {
            return (l, true);
        }
        let from_cookie = crate::proxy::cookie(req, LANG_COOKIE).and_then(|c| Lang::parse(&c));
        (from_cookie.unwrap_or(Lang::Zh), false)
    }

    /// The other language, for the switch link.
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// The name of this language written in itself.
    pub fn own_name(self) -> &'static str {
        match self {
            Lang::Zh => "中文",
            Lang::En => "English",
        }
    }

    pub fn t(self, zh: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    /// A refused input, in words, without repeating the input.
    pub fn domain_error(self, e: &DomainError) -> &'static str {
        use crate::domain::{Choice, NationalIdRefusal as N, TextRefusal as T};
        use DomainError as E;
        match *e {
            E::NoScopes | E::Unknown(Choice::Scope) => {
                self.t("请至少选择一项权限", "Choose at least one scope")
            }
            E::Text(_, T::Empty) => self.t("必填", "Required"),
            E::Text(_, T::TooLong) => self.t("太长了", "Too long"),
            E::Text(_, T::ControlCharacter) => self.t(
                "含有不允许的字符",
                "Contains characters that are not allowed",
            ),
            E::NationalId(N::WrongLength) => {
                self.t("身份证号应为18位", "The ID number must have 18 characters")
            }
            E::NationalId(N::NotDigits) => self.t(
                "身份证号应为17位数字加1位数字或X",
                "The ID number must be 17 digits and a digit or X",
            ),
            E::NationalId(N::BadCheckDigit) => self.t(
                "身份证号校验位不正确，请核对",
                "The check digit of the ID number is wrong; please check the number",
            ),
            E::NationalId(N::UnknownRegion) => self.t(
                "身份证号的前两位不是有效的省级行政区划代码，请核对",
                "The first two digits of the ID number are not a province code; please check the number",
            ),
            E::NationalId(N::BadBirthDate) => self.t(
                "身份证号中的出生日期无效",
                "The birth date in the ID number is not a real date",
            ),
            E::NationalId(N::BirthDateInFuture) => self.t(
                "身份证号中的出生日期在未来",
                "The birth date in the ID number is in the future",
            ),
            E::NationalId(N::BirthDateTooEarly) => self.t(
                "身份证号中的出生日期过早",
                "The birth date in the ID number is too early",
            ),
            E::Phone(_) => self.t(
                "请输入11位中国大陆手机号码",
                "Enter an 11-digit mainland China mobile number",
            ),
            E::NameBidiControl => self.t("姓名无效", "Invalid name"),
            E::ReservedClinicCode => self.t(
                "以 fed- 开头的代码保留给联盟城市使用",
                "Codes starting with fed- are reserved for federation peer cities",
            ),
            E::ClinicCode(_) => self.t(
                "代码只能包含字母、数字、- 和 _，最多32个字符",
                "Letters, digits, - and _ only, at most 32 characters",
            ),
            E::Username(_) => self.t("用户名无效", "Invalid username"),
            E::Unknown(_)
            | E::Issuer(_)
            | E::Identifier(_)
            | E::BirthYear(_)
            | E::RepeatedDimension
            | E::NotAUuid(_) => self.t("输入无效", "Invalid value"),
        }
    }

    /// Why the kiosk refuses a card, in words.
    /// Why an identification by ID number found no usable card.
    pub fn identify_refusal(self, r: crate::service::identify::Refusal) -> &'static str {
        use crate::service::identify::Refusal as R;
        match r {
            R::CardNotFound => self.t(
                "未找到此证件的电子健康卡",
                "No health card is registered for this ID number",
            ),
            R::CardSuspended => self.t("此卡已暂停使用", "The card is suspended"),
            R::CardRevoked => self.t("此卡已被吊销", "The card has been revoked"),
            R::CardReplaced => self.t(
                "此卡已被新卡替代，请出示新卡",
                "The card was replaced: show the new card",
            ),
        }
    }

    pub fn reason(self, r: Reason) -> &'static str {
        match r {
            Reason::Malformed => self.t(
                "无法识别的二维码（不是电子健康卡）",
                "Not a health card code (unreadable)",
            ),
            Reason::BadSignature => self.t(
                "二维码签名无效，可能是伪造的",
                "The code's signature is invalid: it may be forged",
            ),
            Reason::UnknownKey => self.t(
                "二维码由未知的密钥签发",
                "The code was signed by an unknown key",
            ),
            Reason::KeyRevoked => self.t(
                "签发此二维码的密钥已被吊销",
                "The key that signed this code has been revoked",
            ),
            Reason::Expired => self.t(
                "二维码已过期，请刷新后重新出示",
                "The code has expired: refresh it and show it again",
            ),
            Reason::NotYetValid => self.t(
                "二维码尚未生效（请检查设备时间）",
                "The code is not valid yet (check the device clock)",
            ),
            Reason::Replayed => self.t(
                "此动态二维码已经使用过，请刷新后重新出示",
                "This on-screen code was already used: refresh it and show it again",
            ),
            Reason::CardRevoked => self.t("此卡已被吊销", "This card has been revoked"),
            Reason::CardSuspended => self.t("此卡已被暂停使用", "This card is suspended"),
            Reason::CardReplaced => self.t(
                "此卡已被补发的新卡替代，请使用新卡",
                "This card has been replaced by a new one: use the new card",
            ),
            Reason::IssuerUnknown => self.t(
                "签发城市不在信任列表中",
                "The card's issuer is not in the trust list",
            ),
            Reason::IssuerUnavailable => self.t(
                "签发城市的服务暂时无法连接，请稍后重试",
                "The card's home service did not answer: try again shortly",
            ),
            Reason::TrustListExpired => self.t(
                "信任列表已过期，暂时无法核验外地卡",
                "The trust list has expired: cards of other cities cannot be checked",
            ),
            Reason::CardRestricted => self.t(
                "此临时卡仅限签发机构使用",
                "This temporary card is valid only at the clinic that issued it",
            ),
            Reason::CardExpired => self.t(
                "此临时卡已过有效期",
                "This temporary card is past its validity date",
            ),
        }
    }

    pub fn status(self, s: CardStatus) -> &'static str {
        match s {
            CardStatus::Active => self.t("正常", "Active"),
            CardStatus::Suspended => self.t("已暂停", "Suspended"),
            CardStatus::Revoked => self.t("已吊销", "Revoked"),
            CardStatus::Replaced => self.t("已补发替换", "Replaced"),
        }
    }

    /// A document type's name (API-2.md's table).
    pub fn document_type(self, t: crate::domain::DocumentType) -> &'static str {
        use crate::domain::DocumentType as T;
        match t {
            T::ResidentIdCard => self.t("居民身份证", "Resident ID card"),
            T::HouseholdRegister => self.t("居民户口簿", "Household register"),
            T::Passport => self.t("护照", "Passport"),
            T::HkMacaoPermit => self.t(
                "港澳居民来往内地通行证",
                "Mainland Travel Permit for HK and Macao Residents",
            ),
            T::TaiwanPermit => self.t(
                "台湾居民来往大陆通行证",
                "Mainland Travel Permit for Taiwan Residents",
            ),
            T::BirthCertificate => self.t("出生医学证明", "Medical birth certificate"),
            T::HmtResidencePermit => self.t(
                "港澳台居民居住证",
                "Residence Permit for HK, Macao and Taiwan Residents",
            ),
            T::ForeignPermanentResidence => {
                self.t("外国人永久居留身份证", "Foreign Permanent Resident ID Card")
            }
        }
    }

    pub fn sex(self, s: &str) -> &'static str {
        match s {
            "male" => self.t("男", "Male"),
            "female" => self.t("女", "Female"),
            _ => self.t("未知", "Unknown"),
        }
    }

    /// An access-log action, in words.
    pub fn action(self, a: &str) -> String {
        let s = match a {
            "verify" => self.t("查验", "Verification"),
            "identify" => self.t("凭证件识别", "Identified by ID number"),
            "resident.merge" => self.t("合并记录", "Records merged"),
            "resident.register" => self.t("登记居民", "Resident registered"),
            "card.issue" => self.t("发卡", "Card issued"),
            "card.suspend" => self.t("暂停", "Suspended"),
            "card.reinstate" => self.t("恢复", "Reinstated"),
            "card.revoke" => self.t("吊销", "Revoked"),
            "card.reissue" => self.t("补发", "Reissued"),
            "link.create" => self.t("关联病历号", "Patient number linked"),
            "link.lookup" => self.t("按病历号查找", "Looked up by patient number"),
            "card.print" => self.t("打印卡片", "Card printed"),
            "token.mint" => self.t("生成二维码", "Code made"),
            "resident.lookup" => self.t("按身份证号查找", "Looked up by ID number"),
            _ => return a.to_string(),
        };
        s.to_string()
    }

    /// What a clinic showed to have a card resolved, in words.
    pub fn credential(self, c: crate::domain::Credential) -> &'static str {
        match c {
            crate::domain::Credential::Token => self.t("二维码", "QR code"),
            crate::domain::Credential::Document => self.t("证件号", "ID number"),
        }
    }

    /// A channel of use, in words.
    pub fn channel(self, c: &str) -> String {
        let s = match c {
            "window" => self.t("窗口", "Window"),
            "kiosk" => self.t("自助机", "Kiosk"),
            "doctor" => self.t("医生工作站", "Doctor's workstation"),
            "app" => self.t("手机应用", "App"),
            _ => return c.to_string(),
        };
        s.to_string()
    }

    /// A step of care, in words.
    pub fn step(self, s: Step) -> &'static str {
        match s {
            Step::Registration => self.t("挂号", "Registration"),
            Step::Diagnosis => self.t("诊断", "Diagnosis"),
            Step::Dispensing => self.t("取药", "Dispensing"),
            Step::Examination => self.t("检查", "Examination"),
            Step::Payment => self.t("缴费", "Payment"),
            Step::Prescription => self.t("开方", "Prescription"),
            Step::Surgery => self.t("手术", "Surgery"),
            Step::Other => self.t("其他", "Other"),
        }
    }

    /// A verification outcome label (`valid` or a reason code), in words.
    pub fn outcome(self, o: &str) -> String {
        if o == "valid" {
            return self.t("有效", "Valid").to_string();
        }
        Reason::ALL
            .into_iter()
            .find(|r| r.code() == o)
            .map(|r| self.reason(r).to_string())
            .unwrap_or_else(|| o.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_words_in_both_languages() {
        for r in Reason::ALL {
            assert!(!Lang::Zh.reason(r).is_empty());
            assert!(Lang::En.reason(r).is_ascii());
            assert_eq!(Lang::En.outcome(r.code()), Lang::En.reason(r));
        }
    }

    #[test]
    fn languages_parse() {
        assert_eq!(Lang::parse("en"), Some(Lang::En));
        assert_eq!(Lang::parse("zh-CN"), Some(Lang::Zh));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(Lang::Zh.other(), Lang::En);
    }

    #[test]
    fn refusals_have_words_in_both_languages_and_no_input() {
        use crate::domain::{
            IdKind, NationalId, NationalIdRefusal, PersonName, PhoneRefusal, TextField, TextRefusal,
        };
        for e in [
            DomainError::NoScopes,
            DomainError::Text(TextField::ClinicName, TextRefusal::TooLong),
            DomainError::NationalId(NationalIdRefusal::UnknownRegion),
            DomainError::Phone(PhoneRefusal::Not11Digits),
            DomainError::NameBidiControl,
            DomainError::NotAUuid(IdKind::CardId),
        ] {
            let (zh, en) = (Lang::Zh.domain_error(&e), Lang::En.domain_error(&e));
            assert!(!zh.is_ascii() && en.is_ascii() && !en.is_empty(), "{e}");
        }
        let blank = PersonName::parse(" ").unwrap_err();
        assert_eq!(Lang::En.domain_error(&blank), "Required");
        let wrong = NationalId::parse("110105194912310021").unwrap_err();
        assert_eq!(
            Lang::Zh.domain_error(&wrong),
            "身份证号校验位不正确，请核对"
        );
    }
}
