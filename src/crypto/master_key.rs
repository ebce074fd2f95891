use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::{hkdf, hmac};

use super::gm::{self, Sm4GcmKey};
use super::{random_bytes, CryptoError, Suite};

/// Name of the master key file inside the data folder.
pub const MASTER_KEY_FILE: &str = "master.key";

/// The 32-byte root secret. Everything stored encrypted or indexed is keyed by
/// sub-keys derived from it with HKDF, so that the AEAD key and the blind-index
/// key are never the same bytes. Under the national suite ([`Suite::Gm`]) the
/// derivation is HKDF with HMAC-SM3, sealing SM4-GCM and the index HMAC-SM3;
/// the default suite is AES-256-GCM and HMAC-SHA256, as it always was.
#[derive(Clone)]
pub struct MasterKey {
    raw: [u8; 32],
    suite: Suite,
    aead: Aead,
    index: Index,
}

#[derive(Clone)]
enum Aead {
    Aes(std::sync::Arc<LessSafeKey>),
    Sm4(std::sync::Arc<Sm4GcmKey>),
}

#[derive(Clone)]
enum Index {
    HmacSha256(hmac::Key),
    HmacSm3([u8; 32]),
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn derive(raw: &[u8; 32], info: &[u8]) -> [u8; 32] {
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"healthcard master key v1");
    let prk = salt.extract(raw);
    let infos = [info];
    let okm = prk
        .expand(&infos, Len(32))
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    let mut out = [0u8; 32];
    okm.fill(&mut out).expect("length matches");
    out
}

/// HKDF (RFC 5869) with HMAC-SM3, one output block: the national suite's
/// counterpart of [`derive`].
fn derive_sm3(raw: &[u8; 32], info: &[u8]) -> [u8; 32] {
    let prk = gm::hmac_sm3(b"healthcard master key v1 gm", &[raw]);
    gm::hmac_sm3(&prk, &[info, &[1]])
}

impl MasterKey {
    /// Builds the key from its 32 raw bytes, in the default suite.
    pub fn from_bytes(raw: [u8; 32]) -> Self {
        Self::from_bytes_in(raw, Suite::Default)
    }

    /// Builds the key from its 32 raw bytes for `suite`: the same bytes give
    /// unrelated sub-keys in the two suites.
    pub fn from_bytes_in(raw: [u8; 32], suite: Suite) -> Self {
        let (aead, index) = match suite {
            Suite::Default => {
                let enc = derive(&raw, b"aead aes-256-gcm");
                let idx = derive(&raw, b"blind index hmac-sha256");
                let unbound = UnboundKey::new(&AES_256_GCM, &enc).expect("32-byte AES-256 key");
                (
                    Aead::Aes(std::sync::Arc::new(LessSafeKey::new(unbound))),
                    Index::HmacSha256(hmac::Key::new(hmac::HMAC_SHA256, &idx)),
                )
            }
            Suite::Gm => {
                let enc = derive_sm3(&raw, b"aead sm4-gcm");
                let mut key = [0u8; 16];
                key.copy_from_slice(&enc[..16]);
                (
                    Aead::Sm4(std::sync::Arc::new(Sm4GcmKey::new(&key))),
                    Index::HmacSm3(derive_sm3(&raw, b"blind index hmac-sm3")),
                )
            }
        };
        MasterKey {
            raw,
            suite,
            aead,
            index,
        }
    }

    /// The same key bytes in `suite` (the data folder says which).
    pub fn in_suite(&self, suite: Suite) -> Self {
        Self::from_bytes_in(self.raw, suite)
    }

    /// The cryptography suite this key seals and indexes with.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// A 32-byte HMAC-SM3 key for `purpose`, derived under the national
    /// suite's KDF whatever this key's suite (for the access-log chain MAC
    /// under [`Suite::Gm`]). Distinct purposes give unrelated keys.
    pub fn derive_hmac_sm3_key(&self, purpose: &[u8]) -> [u8; 32] {
        let mut info = b"hmac-sm3 ".to_vec();
        info.extend_from_slice(purpose);
        derive_sm3(&self.raw, &info)
    }

    /// A fresh random master key.
    pub fn generate() -> Self {
        Self::from_bytes(random_bytes::<32>())
    }

    /// Parses the base64 text form used by `HEALTHCARD_MASTER_KEY` and the key file.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| CryptoError::BadMasterKey)?;
        let raw: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadMasterKey)?;
        Ok(Self::from_bytes(raw))
    }

    /// The base64 text form, for writing the key file. Handle with care.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.raw)
    }

    /// Reads `dir/master.key`, or creates it (mode 0600) with a fresh key.
    /// Returns the key and whether it was created now.
    pub fn load_or_create(dir: &Path) -> Result<(Self, bool), CryptoError> {
        Self::load_or_create_file(&dir.join(MASTER_KEY_FILE))
    }

    /// Reads the key file `path`, or creates it (mode 0600, its folder 0700
    /// if made now) with a fresh key. Returns the key and whether it was
    /// created now.
    pub fn load_or_create_file(path: &Path) -> Result<(Self, bool), CryptoError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::from_base64(&text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    if !dir.exists() {
                        std::fs::create_dir_all(dir)?;
                        #[cfg(unix)]
                        {
                            use std::os::unix::fs::PermissionsExt;
                            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
                        }
                    }
                }
                let key = Self::generate();
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut file = opts.open(path)?;
                file.write_all(key.to_base64().as_bytes())?;
                file.write_all(b"\n")?;
                file.sync_all()?;
                Ok((key, true))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// AES-256-GCM (default suite) or SM4-GCM (national suite) encrypts
    /// `plaintext`. `purpose` is bound as associated data, so a national ID
    /// ciphertext cannot be replayed as a signing key.
    /// Output: 12-byte random nonce, then ciphertext and 16-byte tag.
    pub fn seal(&self, purpose: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let buf = match &self.aead {
            Aead::Aes(key) => {
                let mut buf = plaintext.to_vec();
                key.seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce_bytes),
                    Aad::from(purpose),
                    &mut buf,
                )
                .expect("AES-GCM sealing of an in-memory buffer cannot fail");
                buf
            }
            Aead::Sm4(key) => key.seal(&nonce_bytes, purpose, plaintext),
        };
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&buf);
        out
    }

    /// Opens what [`MasterKey::seal`] produced with the same `purpose`.
    pub fn open(&self, purpose: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(CryptoError::Unseal);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        match &self.aead {
            Aead::Aes(key) => {
                let nonce =
                    Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Unseal)?;
                let mut buf = rest.to_vec();
                let plain = key
                    .open_in_place(nonce, Aad::from(purpose), &mut buf)
                    .map_err(|_| CryptoError::Unseal)?;
                Ok(plain.to_vec())
            }
            Aead::Sm4(key) => {
                let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Unseal)?;
                key.open(nonce, purpose, rest)
            }
        }
    }

    /// The access log's chain MAC key (a derivation label of its own):
    /// HMAC-SHA-256 in the default suite, HMAC-SM3 in the national one.
    pub fn chain_key(&self) -> super::ChainKey {
        match self.suite {
            Suite::Default => {
                super::ChainKey::hmac_sha256(&derive(&self.raw, b"access log chain hmac-sha256"))
            }
            Suite::Gm => super::ChainKey::hmac_sm3(self.derive_hmac_sm3_key(b"access log chain")),
        }
    }

    /// The key that signs access-log anchors (HKDF label of its own).
    pub fn anchor_key(&self) -> super::AnchorKey {
        super::AnchorKey::from_seed(&derive(&self.raw, b"access log anchor ed25519"))
    }

    /// HMAC-SHA256 (default suite) or HMAC-SM3 (national suite) blind index:
    /// equal inputs give equal outputs, and without the master key the output
    /// says nothing about the input.
    pub fn blind_index(&self, purpose: &[u8], data: &[u8]) -> [u8; 32] {
        let len = (purpose.len() as u32).to_be_bytes();
        match &self.index {
            Index::HmacSha256(key) => {
                let mut ctx = hmac::Context::with_key(key);
                ctx.update(&len);
                ctx.update(purpose);
                ctx.update(data);
                let tag = ctx.sign();
                let mut out = [0u8; 32];
                out.copy_from_slice(tag.as_ref());
                out
            }
            Index::HmacSm3(key) => gm::hmac_sm3(key, &[&len, purpose, data]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_purpose_binding() {
        let k = MasterKey::generate();
        let sealed = k.seal(b"national_id", b"11010519491231002X");
        assert_eq!(
            k.open(b"national_id", &sealed).unwrap(),
            b"11010519491231002X"
        );
        assert!(k.open(b"signing_key", &sealed).is_err());
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(k.open(b"national_id", &bad).is_err());
        assert!(k.open(b"national_id", &sealed[..10]).is_err());
        assert!(MasterKey::generate().open(b"national_id", &sealed).is_err());
    }

    /// Data sealed and indexed before suites existed must still open and
    /// match: these bytes were produced by that code.
    #[test]
    fn default_suite_is_unchanged_byte_for_byte() {
        let k = MasterKey::from_bytes([7; 32]);
        assert_eq!(k.suite(), Suite::Default);
        assert_eq!(
            hex::encode(k.blind_index(b"national_id", b"11010519491231002X")),
            "76c5f4d95c85df207b48f30946ab33cde3648f4dcde5b99729e717aa78b01434"
        );
        let old = hex::decode("2b97817d4393e5398c7e4b521abd68b01ed82ba71aa11c588664ab22aa53a2bc14aacc5665c5f9ece9f88c0b2112").unwrap();
        assert_eq!(k.open(b"national_id", &old).unwrap(), b"11010519491231002X");
        assert!(k.in_suite(Suite::Gm).open(b"national_id", &old).is_err());
    }

    #[test]
    fn national_suite_seals_with_sm4_gcm_and_indexes_with_hmac_sm3() {
        let d = MasterKey::from_bytes([7; 32]);
        let g = d.in_suite(Suite::Gm);
        assert_eq!(g.suite(), Suite::Gm);
        let sealed = g.seal(b"national_id", b"11010519491231002X");
        assert_eq!(sealed.len(), 12 + 18 + 16);
        assert_eq!(
            g.open(b"national_id", &sealed).unwrap(),
            b"11010519491231002X"
        );
        assert!(g.open(b"phone", &sealed).is_err());
        assert!(d.open(b"national_id", &sealed).is_err());
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(g.open(b"national_id", &bad).is_err());
        // The SM4-GCM layer is the one checked against RFC 8998 in crypto::gm:
        // open the blob with it directly under the derived key.
        let key = derive_sm3(&[7; 32], b"aead sm4-gcm");
        let direct = Sm4GcmKey::new(&key[..16].try_into().unwrap());
        assert_eq!(
            direct
                .open(
                    &sealed[..12].try_into().unwrap(),
                    b"national_id",
                    &sealed[12..]
                )
                .unwrap(),
            b"11010519491231002X"
        );
        let idx = derive_sm3(&[7; 32], b"blind index hmac-sm3");
        let len = 11u32.to_be_bytes();
        assert_eq!(
            g.blind_index(b"national_id", b"x"),
            gm::hmac_sm3(&idx, &[&len, b"national_id", b"x"])
        );
        assert_ne!(
            g.blind_index(b"national_id", b"x"),
            d.blind_index(b"national_id", b"x")
        );
        assert_ne!(
            g.derive_hmac_sm3_key(b"access log"),
            g.derive_hmac_sm3_key(b"other")
        );
        assert_eq!(
            g.derive_hmac_sm3_key(b"access log"),
            d.derive_hmac_sm3_key(b"access log")
        );
    }

    #[test]
    fn blind_index_is_keyed_and_deterministic() {
        let k = MasterKey::from_bytes([7; 32]);
        let a = k.blind_index(b"nid", b"x");
        assert_eq!(a, k.blind_index(b"nid", b"x"));
        assert_ne!(a, k.blind_index(b"nid", b"y"));
        assert_ne!(a, k.blind_index(b"other", b"x"));
        assert_ne!(a, MasterKey::from_bytes([8; 32]).blind_index(b"nid", b"x"));
    }

    #[test]
    fn base64_round_trip_and_rejects_short_keys() {
        let k = MasterKey::generate();
        let k2 = MasterKey::from_base64(&k.to_base64()).unwrap();
        assert_eq!(k.blind_index(b"p", b"d"), k2.blind_index(b"p", b"d"));
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert_eq!(format!("{k:?}"), "MasterKey([redacted])");
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, created) = MasterKey::load_or_create(dir.path()).unwrap();
        assert!(created);
        let (k2, created) = MasterKey::load_or_create(dir.path()).unwrap();
        assert!(!created);
        assert_eq!(k1.to_base64(), k2.to_base64());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(MASTER_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
