//! The floors of issue 17's ratios, shared by `benches/token.rs` (criterion)
//! and `benches/pairs.rs` (paired rounds): per algorithm, a real token and
//! the bare primitive of the library we call (ring for Ed25519 and ES256,
//! RustCrypto `sm2` for SM2) over its Sig_structure.

use std::hint::black_box;

use coset::TaggedCborSerializable;
use healthcard::token::{self, Alg, Claims, KeyRing, SigningKey, TokenKind, Validation};
use ring::signature::{
    EcdsaKeyPair, Ed25519KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING, ED25519,
};
use sm2::dsa::signature::{Signer, Verifier};
use uuid::Uuid;

/// The instant the token's times are checked at.
pub const NOW: i64 = 1_767_225_600;
const SM2_ID: &str = "1234567812345678";

/// One operation to time.
pub type Op = Box<dyn FnMut()>;

/// A key ring of one algorithm, a dynamic token minted with it, and its
/// floors.
pub struct Fixture {
    pub key: SigningKey,
    pub ring: KeyRing,
    pub claims: Claims,
    pub text: String,
    /// The Sig_structure the token's signature covers.
    pub tbs: Vec<u8>,
    pub validation: Validation,
    /// The library the floors call, as the benchmarks name it.
    pub library: &'static str,
    pub floor_verify: Op,
    pub floor_sign: Op,
}

impl Fixture {
    pub fn new(alg: Alg) -> Fixture {
        let key = match alg {
            Alg::Ed25519 => SigningKey::from_seed(&[7; 32]).expect("seed key"),
            other => SigningKey::generate_alg(other),
        };
        let mut ring = KeyRing::new("HC");
        ring.set_active(key.clone());
        let claims = Claims::new("HC", Uuid::new_v4(), TokenKind::Dynamic, NOW, 120);
        let text = token::mint(&key, &claims).expect("mint");
        let cose = base45::decode(&text[5..]).expect("base45");
        let parsed = coset::CoseSign1::from_tagged_slice(&cose).expect("cose");
        let tbs = parsed.tbs_data(b"");
        let sig = parsed.signature.clone();
        let public_key = key.public_key().to_vec();
        let secret = key.secret_bytes().expect("software key").to_vec();
        let (t, t2) = (tbs.clone(), tbs.clone());
        let (library, floor_verify, floor_sign): (&str, Op, Op) = match alg {
            Alg::Ed25519 => {
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&secret).expect("pkcs8");
                (
                    "ring",
                    Box::new(move || {
                        black_box(
                            UnparsedPublicKey::new(&ED25519, black_box(&public_key))
                                .verify(black_box(&t), black_box(&sig))
                                .is_ok(),
                        );
                    }),
                    Box::new(move || {
                        black_box(pair.sign(black_box(&t2)));
                    }),
                )
            }
            Alg::Es256 => {
                let rng = ring::rand::SystemRandom::new();
                let pair =
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &secret, &rng)
                        .expect("pkcs8");
                (
                    "ring",
                    Box::new(move || {
                        black_box(
                            UnparsedPublicKey::new(
                                &ECDSA_P256_SHA256_FIXED,
                                black_box(&public_key),
                            )
                            .verify(black_box(&t), black_box(&sig))
                            .is_ok(),
                        );
                    }),
                    Box::new(move || {
                        black_box(pair.sign(&rng, black_box(&t2)).expect("sign"));
                    }),
                )
            }
            Alg::Sm2 => {
                let vk =
                    sm2::dsa::VerifyingKey::from_sec1_bytes(SM2_ID, &public_key).expect("point");
                let sk = sm2::dsa::SigningKey::from_slice(SM2_ID, &secret).expect("scalar");
                let s = sm2::dsa::Signature::from_slice(&sig).expect("r||s");
                (
                    "sm2 crate",
                    Box::new(move || {
                        black_box(vk.verify(black_box(&t), black_box(&s)).is_ok());
                    }),
                    Box::new(move || {
                        let s: sm2::dsa::Signature = sk.sign(black_box(&t2));
                        black_box(s);
                    }),
                )
            }
        };
        Fixture {
            key,
            ring,
            claims,
            text,
            tbs,
            validation: Validation::at(NOW),
            library,
            floor_verify,
            floor_sign,
        }
    }
}
