//! Sealed identities (issue 10.6): a province never stores an identity or certificate number
//! in clear, and never uses one as a storage key.
//!
//! - **Keys** are keyed hashes: HMAC-SHA256 under the province's index key of the certificate
//!   kind and number ([`SealKey::hash`]). The same number always gives the same key, so lookups
//!   work; without the province's key the hash can be neither computed from a number nor
//!   turned back into one.
//! - **Fields** (identity number, name, card numbers) are encrypted with AES-256-GCM under the
//!   province's sealing key, with a fresh random 96-bit nonce per value and the record's keyed
//!   hash as associated data, so a sealed value cannot be moved to another person's record
//!   ([`SealKey::seal_person`], [`SealKey::open_person`]).
//!
//! Both keys derive from one 32-byte province key (HMAC-SHA256 of a label under it), which the
//! operator provides in a file of 64 hex characters (`medmesh dev` and
//! `deploy/make-pki.sh` generate one). Every replica of a province loads the same file; the
//! federation needs none. Sealing happens at the node's edge, before a command enters the Raft
//! log, so neither the log, the state nor a snapshot ever holds a raw number.
//!
//! Dependency, and why: `ring` (already in the build through rustls) gives HMAC-SHA256,
//! AES-256-GCM and the system random source from one audited, maintained crate, rather than
//! adding RustCrypto's `hmac` and `aes-gcm` beside it.

use medmesh_types::{KeyedHash, Sealed};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// Why a key or a sealed value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key file does not hold 64 hex characters.
    #[error("a seal key is 64 hex characters (32 bytes)")]
    BadKey,
    /// The value was not sealed under this key for this record, or was altered.
    #[error("sealed value does not open under this province's key (altered, or another record's)")]
    Open,
    /// The system random source failed.
    #[error("no randomness available for a nonce")]
    Random,
    /// The sealed fields do not decode.
    #[error("sealed fields do not decode")]
    Decode,
}

/// A person's identity fields, as sealed in the register.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PersonSecrets {
    /// Identity number (empty where the province does not hold it: a non-local patient).
    pub id: String,
    /// Name.
    pub name: String,
    /// Social-security card number.
    pub social_security_card: Option<String>,
    /// Medical-security e-credential token.
    pub e_credential: Option<String>,
}

impl std::fmt::Debug for PersonSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonSecrets(<sealed>)")
    }
}

/// A province's key: the index (hash) key and the sealing (encryption) key.
pub struct SealKey {
    index: hmac::Key,
    seal: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<secret>)")
    }
}

fn derive(master: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, master), label);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

impl SealKey {
    /// The keys derived from a 32-byte province key.
    pub fn from_bytes(master: &[u8; 32]) -> SealKey {
        let index = hmac::Key::new(hmac::HMAC_SHA256, &derive(master, b"medmesh index key v1"));
        let seal = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &derive(master, b"medmesh seal key v1")).expect("a 32-byte AES-256 key"),
        );
        SealKey { index, seal, rng: SystemRandom::new() }
    }

    /// Reads a key file's text: 64 hex characters, surrounding whitespace ignored.
    pub fn parse(text: &str) -> Result<SealKey, SealError> {
        let bytes = hex::decode(text.trim()).map_err(|_| SealError::BadKey)?;
        let master: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(SealKey::from_bytes(&master))
    }

    /// A new random province key, as a key file's text.
    pub fn generate() -> Result<String, SealError> {
        let mut b = [0u8; 32];
        SystemRandom::new().fill(&mut b).map_err(|_| SealError::Random)?;
        Ok(format!("{}\n", hex::encode(b)))
    }

    /// The keyed hash of a certificate number of kind `kind` (`id`, `sscard`, `ecred`).
    pub fn hash(&self, kind: &str, number: &str) -> KeyedHash {
        let mut ctx = hmac::Context::with_key(&self.index);
        ctx.update(&(kind.len() as u64).to_be_bytes());
        ctx.update(kind.as_bytes());
        ctx.update(number.as_bytes());
        KeyedHash::new(hex::encode(ctx.sign().as_ref())).expect("64 hex characters")
    }

    /// Encrypts `plain` for the record `key` with a fresh random nonce.
    pub fn seal(&self, key: &KeyedHash, plain: &[u8]) -> Result<Sealed, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| SealError::Random)?;
        Ok(self.seal_with_nonce(key, plain, nonce))
    }

    /// Encrypts with a given nonce (a nonce must never repeat under one key: use
    /// [`SealKey::seal`]; this is for test vectors).
    pub fn seal_with_nonce(&self, key: &KeyedHash, plain: &[u8], nonce: [u8; NONCE_LEN]) -> Sealed {
        let mut buf = plain.to_vec();
        let tag = self
            .seal
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key.as_str().as_bytes()),
                &mut buf,
            )
            .expect("a plaintext under the AES-GCM limit");
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len() + tag.as_ref().len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        out.extend_from_slice(tag.as_ref());
        Sealed::new(out).expect("a sealed value of bounded size")
    }

    /// Decrypts a value sealed for the record `key`.
    pub fn open(&self, key: &KeyedHash, sealed: &Sealed) -> Result<Vec<u8>, SealError> {
        let bytes = sealed.as_bytes();
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut buf = rest.to_vec();
        let plain = self
            .seal
            .open_in_place(nonce, Aad::from(key.as_str().as_bytes()), &mut buf)
            .map_err(|_| SealError::Open)?;
        Ok(plain.to_vec())
    }

    /// Seals a person's identity fields for the record `key`.
    pub fn seal_person(&self, key: &KeyedHash, secrets: &PersonSecrets) -> Result<Sealed, SealError> {
        self.seal(key, &bincode::serialize(secrets).map_err(|_| SealError::Decode)?)
    }

    /// Opens a person's identity fields sealed for the record `key`.
    pub fn open_person(&self, key: &KeyedHash, sealed: &Sealed) -> Result<PersonSecrets, SealError> {
        bincode::deserialize(&self.open(key, sealed)?).map_err(|_| SealError::Decode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SealKey {
        SealKey::from_bytes(&[b; 32])
    }

    #[test]
    fn the_hash_is_hmac_sha256_under_the_derived_index_key() {
        // Independently: the index key is HMAC-SHA256(master, label); the hash is
        // HMAC-SHA256(index, len(kind) as u64 BE || kind || number), computed here with
        // ring's one-shot API over the concatenated bytes.
        let master = [7u8; 32];
        let index = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &master), b"medmesh index key v1");
        let mut msg = 2u64.to_be_bytes().to_vec();
        msg.extend_from_slice(b"id110101199001011234");
        let want = hex::encode(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, index.as_ref()), &msg).as_ref());
        assert_eq!(key(7).hash("id", "110101199001011234").as_str(), want);
    }

    #[test]
    fn hashes_differ_by_province_key_and_by_kind() {
        let n = "110101199001011234";
        assert_ne!(key(1).hash("id", n), key(2).hash("id", n));
        assert_ne!(key(1).hash("id", n), key(1).hash("sscard", n));
        // The length prefix keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(key(1).hash("ab", "c"), key(1).hash("a", "bc"));
    }

    #[test]
    fn sealed_fields_open_only_under_the_same_key_and_record() {
        let k = key(3);
        let rec = k.hash("id", "110101199001011234");
        let other = k.hash("id", "110101199001015678");
        let s = PersonSecrets { id: "110101199001011234".into(), name: "张三".into(), ..Default::default() };
        let sealed = k.seal_person(&rec, &s).unwrap();
        assert!(!sealed.as_bytes().windows(18).any(|w| w == b"110101199001011234"));
        assert_eq!(k.open_person(&rec, &sealed).unwrap(), s);
        assert_eq!(k.open_person(&other, &sealed), Err(SealError::Open));
        assert_eq!(key(4).open_person(&rec, &sealed), Err(SealError::Open));
        let mut flipped = sealed.as_bytes().to_vec();
        flipped[20] ^= 1;
        assert_eq!(k.open_person(&rec, &Sealed::new(flipped).unwrap()), Err(SealError::Open));
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let k = key(5);
        let rec = k.hash("id", "x12345");
        assert_ne!(k.seal(&rec, b"same").unwrap(), k.seal(&rec, b"same").unwrap());
    }

    #[test]
    fn key_files_are_64_hex_characters() {
        let text = SealKey::generate().unwrap();
        assert_eq!(text.trim().len(), 64);
        assert!(SealKey::parse(&text).is_ok());
        assert_eq!(SealKey::parse("abc").unwrap_err(), SealError::BadKey);
        assert_eq!(SealKey::parse(&"zz".repeat(32)).unwrap_err(), SealError::BadKey);
    }
}
