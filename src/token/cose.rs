//! COSE_Sign1 (RFC 9052 §4.2) under a key's algorithm, written and read by
//! the small deterministic CBOR code in [`super::cbor`].
//!
//! Both directions are ours because they are tiny and on the hot path (a
//! general COSE library builds a value tree and serialises twice per mint);
//! the tests check that coset, a mainstream COSE library, reads what we write
//! exactly as we do, and the checked-in vectors pin the bytes.

use super::cbor::{self, Reader, Scalar};
use super::keys::{KeyError, SigningKey};

/// CBOR tag of a COSE_Sign1 (RFC 9052 §2).
const TAG_COSE_SIGN1: u64 = 18;
/// COSE header labels (RFC 9052 §3.1).
const HDR_ALG: i64 = 1;
const HDR_KID: i64 = 4;
/// Context string of a Sig_structure for COSE_Sign1.
const SIGNATURE1: &[u8] = b"Signature1";

/// Signs `payload` as a tagged COSE_Sign1: protected {1: alg, 4: kid},
/// empty unprotected header, no external AAD.
pub(crate) fn sign1(key: &SigningKey, payload: Vec<u8>) -> Result<Vec<u8>, KeyError> {
    let kid = key.kid().as_bytes();
    let mut protected = Vec::with_capacity(8 + kid.len());
    cbor::write_head(&mut protected, cbor::MAP, 2);
    cbor::write_int(&mut protected, HDR_ALG);
    cbor::write_int(&mut protected, key.alg().cose_id());
    cbor::write_int(&mut protected, HDR_KID);
    cbor::write_bytes(&mut protected, kid);
    let signature = key.sign(&sig_structure(&protected, &payload))?;
    let mut out = Vec::with_capacity(16 + protected.len() + payload.len() + signature.len());
    cbor::write_head(&mut out, cbor::TAG, TAG_COSE_SIGN1);
    cbor::write_head(&mut out, cbor::ARRAY, 4);
    cbor::write_bytes(&mut out, &protected);
    cbor::write_head(&mut out, cbor::MAP, 0);
    cbor::write_bytes(&mut out, &payload);
    cbor::write_bytes(&mut out, &signature);
    Ok(out)
}

/// The parts of a parsed COSE_Sign1, borrowed from the token bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sign1<'a> {
    /// The protected header exactly as sent (it is what was signed).
    pub protected: &'a [u8],
    /// The `alg` from the protected header, as sent (not yet known to be ours).
    pub alg: i64,
    /// The kid from the protected header (any length; ours are 8 bytes).
    pub kid: &'a [u8],
    pub payload: &'a [u8],
    pub signature: &'a [u8],
}

/// The token bytes are not a COSE_Sign1 of the EHC1 shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotSign1;

impl From<cbor::CborError> for NotSign1 {
    fn from(_: cbor::CborError) -> Self {
        NotSign1
    }
}

/// Reads `18([protected: bstr, unprotected: {}, payload: bstr, signature: bstr])`
/// and checks the protected header holds an integer alg and a kid, and nothing
/// else. Which algorithms are ours is for the verifier to say.
/// The unprotected header must be empty: nothing unauthenticated rides along.
pub(crate) fn parse_sign1(bytes: &[u8]) -> Result<Sign1<'_>, NotSign1> {
    let mut r = Reader::new(bytes);
    if r.expect(cbor::TAG)? != TAG_COSE_SIGN1 || r.expect(cbor::ARRAY)? != 4 {
        return Err(NotSign1);
    }
    let protected = r.bytes()?;
    if r.expect(cbor::MAP)? != 0 {
        return Err(NotSign1);
    }
    let payload = r.bytes()?;
    let signature = r.bytes()?;
    if !r.is_empty() {
        return Err(NotSign1);
    }

    let mut h = Reader::new(protected);
    let (mut alg, mut kid) = (None, None);
    cbor::read_flat_map(&mut h, 2, |label, value| {
        match (label, value) {
            (HDR_ALG, Scalar::Int(a)) => alg = Some(a),
            (HDR_KID, Scalar::Bytes(k)) => kid = Some(k),
            // Any other parameter (crit, content type, ...) is not part of EHC1.
            _ => return Err(cbor::CborError),
        }
        Ok(())
    })?;
    if !h.is_empty() {
        return Err(NotSign1);
    }
    Ok(Sign1 {
        protected,
        alg: alg.ok_or(NotSign1)?,
        kid: kid.ok_or(NotSign1)?,
        payload,
        signature,
    })
}

/// The bytes a signature covers (RFC 9052 §4.4):
/// `["Signature1", protected, h'' (external AAD), payload]`.
pub(crate) fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + protected.len() + payload.len());
    cbor::write_head(&mut out, cbor::ARRAY, 4);
    cbor::write_head(&mut out, cbor::TEXT, SIGNATURE1.len() as u64);
    out.extend_from_slice(SIGNATURE1);
    cbor::write_head(&mut out, cbor::BYTES, protected.len() as u64);
    out.extend_from_slice(protected);
    cbor::write_head(&mut out, cbor::BYTES, 0);
    cbor::write_head(&mut out, cbor::BYTES, payload.len() as u64);
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Alg;
    use coset::{CoseSign1, TaggedCborSerializable};

    #[test]
    fn our_reader_and_coset_agree() {
        for (alg, alg_bytes) in [
            (Alg::Ed25519, &[0x27][..]),
            (Alg::Es256, &[0x26][..]),
            // -65601: major type 1, 4-byte argument 65600 = 0x00010040.
            (Alg::Sm2, &[0x3a, 0x00, 0x01, 0x00, 0x40][..]),
        ] {
            let key = SigningKey::generate_alg(alg);
            let bytes = sign1(&key, vec![0xa0]).unwrap();
            let parsed = parse_sign1(&bytes).unwrap();
            assert_eq!(parsed.kid, key.kid().as_bytes());
            assert_eq!(parsed.alg, alg.cose_id());
            assert_eq!(parsed.payload, &[0xa0]);
            assert_eq!(parsed.signature.len(), 64);
            let mut protected = vec![0xa2, 0x01];
            protected.extend_from_slice(alg_bytes);
            protected.extend_from_slice(&[0x04, 0x48]);
            protected.extend_from_slice(key.kid().as_bytes());
            assert_eq!(parsed.protected, &protected[..]);

            let theirs = CoseSign1::from_tagged_slice(&bytes).unwrap();
            assert_eq!(
                theirs.tbs_data(b""),
                sig_structure(parsed.protected, parsed.payload)
            );
            assert!(theirs.unprotected.is_empty());
            assert_eq!(
                theirs.to_tagged_vec().unwrap(),
                bytes,
                "coset writes it back as is"
            );
        }
    }

    #[test]
    fn refuses_other_shapes() {
        let key = SigningKey::generate();
        let good = sign1(&key, vec![0xa0]).unwrap();
        assert!(parse_sign1(&good[1..]).is_err()); // untagged
        let mut tag = good.clone();
        tag[0] = 0xd1; // tag 17 = COSE_Mac0
        assert!(parse_sign1(&tag).is_err());
        let mut extra = good.clone();
        extra.push(0);
        assert!(parse_sign1(&extra).is_err());
        assert!(parse_sign1(&good[..good.len() - 1]).is_err());
        let mut alg = good.clone();
        alg[5] = 0x61; // alg as text: not an integer
        assert!(parse_sign1(&alg).is_err());
        let mut unprotected = good.clone();
        let pos = 3 + 13; // d2 84 4d <13 header bytes> a0
        assert_eq!(unprotected[pos], 0xa0);
        unprotected[pos] = 0xa1;
        assert!(parse_sign1(&unprotected).is_err());
    }
}
