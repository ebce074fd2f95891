//! The text form: `EHC1:` + base45 (RFC 9285). Base45's alphabet is exactly the
//! QR alphanumeric set, so the text fills a QR in alphanumeric mode (5.5 bits a
//! character) and survives keyboard-wedge scanners, which type plain ASCII.

/// Prefix of every token; names the format and its version.
pub const PREFIX: &str = "EHC1:";

/// Removes what scanners and forms add around a token: any leading
/// whitespace, and trailing CR, LF and TAB (a keyboard-wedge scanner's Enter).
/// Never trailing spaces: space is a base45 digit, so a token can end in one.
/// `verify` itself is strict; call this on scanned or pasted input first.
pub fn trim_scanned(text: &str) -> &str {
    text.trim_start().trim_end_matches(['\r', '\n', '\t'])
}

/// `EHC1:` + base45 of the COSE bytes.
pub(crate) fn encode(cose: &[u8]) -> String {
    let mut out = String::with_capacity(PREFIX.len() + cose.len().div_ceil(2) * 3);
    out.push_str(PREFIX);
    out.push_str(&base45::encode(cose));
    out
}

/// The COSE bytes of a token text, or `None` if the prefix or base45 is wrong.
///
/// The base45 crate decodes a final pair of characters modulo 256, so "ZZ" and
/// "GU" would both give one byte; RFC 9285 §4 says a pair over 255 is invalid,
/// and refusing it keeps one text per token.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    let body = text.strip_prefix(PREFIX)?.as_bytes();
    if let [.., a, b] = body {
        if body.len() % 3 == 2 {
            let value = u32::from(digit(*a)?) + 45 * u32::from(digit(*b)?);
            if value > 255 {
                return None;
            }
        }
    }
    base45::decode(body).ok()
}

fn digit(c: u8) -> Option<u8> {
    const ALPHABET: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
    ALPHABET.iter().position(|&x| x == c).map(|p| p as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9285_examples() {
        assert_eq!(base45::encode(b"AB"), "BB8");
        assert_eq!(base45::encode(b"Hello!!"), "%69 VD92EX0");
        assert_eq!(base45::encode(b"base-45"), "UJCLQE7W581");
        assert_eq!(base45::decode("QED8WEX0").unwrap(), b"ietf!");
        assert_eq!(decode("EHC1:QED8WEX0").unwrap(), b"ietf!");
        assert_eq!(encode(b"ietf!"), "EHC1:QED8WEX0");
    }

    #[test]
    fn trim_keeps_trailing_spaces() {
        assert_eq!(trim_scanned("  EHC1:AB \r\n"), "EHC1:AB ");
        assert_eq!(trim_scanned("EHC1:AB\t"), "EHC1:AB");
    }

    #[test]
    fn refuses_bad_text() {
        assert_eq!(decode("QED8WEX0"), None);
        assert_eq!(decode("ehc1:QED8WEX0"), None);
        assert_eq!(decode("EHC1:qed8wex0"), None);
        assert_eq!(decode("EHC1:QED8WEX"), None); // 1 char left over
        assert_eq!(decode("EHC1:GGW"), None); // 3 chars over 65535
        assert_eq!(decode("EHC1:ZZ"), None); // pair over 255
        assert_eq!(decode("EHC1:U5"), Some(vec![255])); // 30 + 5*45 = 255
        assert_eq!(decode("EHC1:"), Some(vec![]));
    }
}
