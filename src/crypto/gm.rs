//! The national algorithms next to ring's: SM3 (GB/T 32905-2016), HMAC-SM3
//! and SM4 (GB/T 32907-2016) in GCM mode as RFC 8998 uses it. RustCrypto's
//! `sm3`, `sm4`, `hmac` and `aes-gcm` (whose GCM is generic over any
//! 128-bit block cipher); docs/token-format.md says why these crates.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::AesGcm;
use hmac::Mac;
use sm3::Digest;

use super::CryptoError;

/// SM4-GCM with a 96-bit nonce and 128-bit tag (RFC 8998 §4.1).
type Sm4Gcm = AesGcm<sm4::Sm4, U12>;

/// SM4-GCM's nonce length.
pub const SM4_GCM_NONCE_LEN: usize = 12;
/// SM4-GCM's tag length.
pub const SM4_GCM_TAG_LEN: usize = 16;

/// SM3 of `data`.
pub fn sm3(data: &[u8]) -> [u8; 32] {
    sm3::Sm3::digest(data).into()
}

/// HMAC-SM3 (RFC 2104 over SM3) of the concatenation of `parts` under `key`.
pub fn hmac_sm3(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <hmac::Hmac<sm3::Sm3> as KeyInit>::new_from_slice(key)
        .expect("HMAC takes a key of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// An SM4-GCM key (128 bits: SM4 has one key size).
#[derive(Clone)]
pub struct Sm4GcmKey(Sm4Gcm);

impl Sm4GcmKey {
    /// The cipher under `key`.
    pub fn new(key: &[u8; 16]) -> Sm4GcmKey {
        Sm4GcmKey(Sm4Gcm::new(key.into()))
    }

    /// Ciphertext followed by the 16-byte tag.
    pub fn seal(&self, nonce: &[u8; SM4_GCM_NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        self.0
            .encrypt(
                nonce.into(),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("SM4-GCM sealing of an in-memory buffer cannot fail")
    }

    /// Opens what [`Sm4GcmKey::seal`] produced (ciphertext and tag).
    pub fn open(
        &self,
        nonce: &[u8; SM4_GCM_NONCE_LEN],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.0
            .decrypt(nonce.into(), Payload { msg: sealed, aad })
            .map_err(|_| CryptoError::Unseal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sm4::cipher::BlockCipherEncrypt;

    fn vectors() -> serde_json::Value {
        serde_json::from_str(include_str!("../../tests/vectors/gm-standard-vectors.json")).unwrap()
    }

    fn hex(v: &serde_json::Value) -> Vec<u8> {
        hex::decode(v.as_str().unwrap()).unwrap()
    }

    #[test]
    fn sm3_examples_of_gbt_32905() {
        let v = vectors();
        let cases = v["sm3"]["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 2);
        for c in cases {
            let msg = c["message_ascii"].as_str().unwrap().as_bytes();
            assert_eq!(sm3(msg).to_vec(), hex(&c["digest_hex"]));
            let mut flipped = msg.to_vec();
            flipped[0] ^= 1;
            assert_ne!(sm3(&flipped).to_vec(), hex(&c["digest_hex"]));
        }
    }

    #[test]
    fn sm4_example_of_gbt_32907() {
        let v = &vectors()["sm4"];
        let key: [u8; 16] = hex(&v["key_hex"]).try_into().unwrap();
        let cipher = sm4::Sm4::new(&key.into());
        let block: [u8; 16] = hex(&v["plaintext_hex"]).try_into().unwrap();
        let mut block = block.into();
        cipher.encrypt_block(&mut block);
        assert_eq!(block.to_vec(), hex(&v["ciphertext_hex"]));
    }

    #[test]
    fn sm4_gcm_example_of_rfc_8998() {
        let v = &vectors()["sm4_gcm"];
        let key = Sm4GcmKey::new(&hex(&v["key_hex"]).try_into().unwrap());
        let nonce: [u8; 12] = hex(&v["iv_hex"]).try_into().unwrap();
        let aad = hex(&v["aad_hex"]);
        let pt = hex(&v["plaintext_hex"]);
        let mut expected = hex(&v["ciphertext_hex"]);
        expected.extend_from_slice(&hex(&v["tag_hex"]));
        let sealed = key.seal(&nonce, &aad, &pt);
        assert_eq!(sealed, expected);
        assert_eq!(key.open(&nonce, &aad, &sealed).unwrap(), pt);
        for i in [0, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(key.open(&nonce, &aad, &bad).is_err());
        }
        assert!(key.open(&nonce, b"other", &sealed).is_err());
    }

    #[test]
    fn hmac_sm3_is_keyed_and_joins_parts() {
        let a = hmac_sm3(b"k", &[b"ab", b"c"]);
        assert_eq!(a, hmac_sm3(b"k", &[b"abc"]));
        assert_ne!(a, hmac_sm3(b"K", &[b"abc"]));
        assert_ne!(a.to_vec(), sm3(b"abc").to_vec());
    }
}
