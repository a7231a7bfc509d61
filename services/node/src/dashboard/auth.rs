//! Who may sign in to the dashboard, and the sessions of those who did.
//!
//! **Users** are configured by the operator in a TOML file (`dashboard_users`), one `[[user]]`
//! table each: a name, a role (`national`, or `agency` with its `province`) and an argon2
//! password hash in the PHC string format, as `medmesh dashboard hash-password` prints it. No
//! password is ever stored or logged; the file holds only hashes.
//!
//! **Sessions** live in the memory of the replica that signed the person in: a random 256-bit
//! token in an `HttpOnly; SameSite=Strict` cookie (`Secure` on a TLS listener, that is always
//! but in an `--insecure` throwaway run), kept here only as its SHA-256 (a
//! memory dump yields no usable cookie), ending after [`IDLE`] without a request, [`ABSOLUTE`]
//! after sign-in, or at sign-out. A replica restart signs everyone out of it; another replica
//! asks for its own sign-in. At most [`MAX_SESSIONS`] live at once (the oldest goes first).
//!
//! **Guessing** is slowed per user name: after [`MAX_FAILURES`] attempts without a success the
//! name is refused for [`LOCKOUT`] (each attempt counts before its password is checked, so
//! parallel guesses do not slip through), and an unknown name is counted and costs the same
//! argon2 verification as a known one, so neither the answers nor their timing tell which
//! names exist. Someone guessing a name keeps it locked while they guess; the refusals are
//! logged. The dashboard runs at most two verifications at once ([`crate::dashboard`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use medmesh_types::ProvinceCode;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::identity::Identity;

/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after sign-in whatever happens.
pub const ABSOLUTE: Duration = Duration::from_secs(8 * 60 * 60);
/// Most sessions held at once by one replica.
pub const MAX_SESSIONS: usize = 10_000;
/// Failed sign-ins in a row after which a name is refused for [`LOCKOUT`].
pub const MAX_FAILURES: u32 = 5;
/// How long a name is refused after [`MAX_FAILURES`] failures.
pub const LOCKOUT: Duration = Duration::from_secs(60);
/// Most names whose failures are remembered at once (the oldest go first).
pub const MAX_TRACKED: usize = 10_000;

/// A person who may sign in.
#[derive(Debug, Clone)]
pub struct User {
    /// The sign-in name.
    pub name: String,
    /// What the person may see: the national administration or one province's agency.
    pub identity: Identity,
    password_hash: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    user: Vec<UserEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: String,
    role: String,
    #[serde(default)]
    province: String,
    password_hash: String,
}

/// Whether `name` is a sign-in name: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Parses a users file's text; errors name the user and the field.
pub fn parse_users(text: &str) -> anyhow::Result<BTreeMap<String, User>> {
    let file: UsersFile = toml::from_str(text).context("dashboard_users")?;
    let mut users = BTreeMap::new();
    for (i, u) in file.user.into_iter().enumerate() {
        let at = format!("dashboard_users: user[{i}]");
        if !valid_name(&u.name) {
            bail!("{at}.name: 1 to 64 of A-Z a-z 0-9 . _ -");
        }
        let identity = match u.role.as_str() {
            "national" => {
                if !u.province.is_empty() {
                    bail!("{at}.province: a national user has no province");
                }
                Identity::National
            }
            "agency" => Identity::Agency {
                province: ProvinceCode::new(u.province.clone())
                    .map_err(|e| anyhow::anyhow!("{at}.province: {e} (an agency user names its province)"))?,
            },
            other => bail!("{at}.role: {other:?} is neither \"national\" nor \"agency\""),
        };
        let parsed = PasswordHash::new(&u.password_hash)
            .map_err(|e| anyhow::anyhow!("{at}.password_hash: not a PHC password hash ({e})"))?;
        if !parsed.algorithm.as_str().starts_with("argon2") {
            bail!("{at}.password_hash: an argon2 hash is required, not {}", parsed.algorithm);
        }
        if users.contains_key(&u.name) {
            bail!("{at}.name: {:?} appears twice", u.name);
        }
        users.insert(u.name.clone(), User { name: u.name, identity, password_hash: u.password_hash });
    }
    Ok(users)
}

/// Reads the users file at `path`.
pub fn load_users(path: &Path) -> anyhow::Result<BTreeMap<String, User>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_users(&text)
}

/// The argon2id hash (PHC string, random salt, the crate's default cost) of `password`.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

/// Whether `password` matches the PHC hash `hash` (false for a malformed hash).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash no password matches, verified for unknown names so that they cost what known ones do.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy: no user has this password").unwrap_or_default())
}

/// Why a sign-in was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The name or the password is wrong (which one is not said).
    Wrong,
    /// Too many failures in a row: the name is refused for a while.
    LockedOut,
}

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user's name.
    pub user: String,
    /// What the user may see.
    pub identity: Identity,
    created: Instant,
    last: Instant,
}

#[derive(Default)]
struct State {
    sessions: HashMap<[u8; 32], Session>,
    failures: HashMap<String, (u32, Instant)>,
}

/// The users and the live sessions of one replica.
pub struct Auth {
    users: BTreeMap<String, User>,
    state: Mutex<State>,
}

fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Auth {
    /// Sessions for `users`.
    pub fn new(users: BTreeMap<String, User>) -> Auth {
        Auth { users, state: Mutex::new(State::default()) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks `name` and `password` (argon2: call off the async executor) and opens a session;
    /// returns its token.
    pub fn sign_in(&self, name: &str, password: &str, now: Instant) -> Result<(String, Session), Refusal> {
        // The attempt counts before the password is checked, under the lock: parallel guesses
        // cannot all slip past the limit, and unknown names count like known ones (so the
        // answers do not tell which names exist).
        {
            let mut state = self.state();
            if state.failures.len() >= MAX_TRACKED && !state.failures.contains_key(name) {
                state.failures.retain(|_, (_, at)| now.duration_since(*at) < LOCKOUT);
                if state.failures.len() >= MAX_TRACKED {
                    if let Some(oldest) = state.failures.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| k.clone()) {
                        state.failures.remove(&oldest);
                    }
                }
            }
            let entry = state.failures.entry(name.to_string()).or_insert((0, now));
            if entry.0 >= MAX_FAILURES {
                if now.duration_since(entry.1) < LOCKOUT {
                    return Err(Refusal::LockedOut);
                }
                *entry = (0, now);
            }
            *entry = (entry.0.saturating_add(1), now);
        }
        let user = self.users.get(name);
        let hash: &str = match user {
            Some(u) => &u.password_hash,
            None => decoy_hash(),
        };
        let ok = verify_password(hash, password);
        let mut state = self.state();
        let user = match (ok, user) {
            (true, Some(u)) => u,
            _ => return Err(Refusal::Wrong),
        };
        state.failures.remove(name);
        state.sessions.retain(|_, s| live(s, now));
        if state.sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = state.sessions.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| *k) {
                state.sessions.remove(&oldest);
            }
        }
        let token = new_token();
        let session = Session { user: user.name.clone(), identity: user.identity.clone(), created: now, last: now };
        state.sessions.insert(token_key(&token), session.clone());
        Ok((token, session))
    }

    /// The live session of `token`, marked used at `now`.
    pub fn session(&self, token: &str, now: Instant) -> Option<Session> {
        let mut state = self.state();
        let key = token_key(token);
        let s = state.sessions.get_mut(&key)?;
        if !live(s, now) {
            state.sessions.remove(&key);
            return None;
        }
        s.last = now;
        Some(s.clone())
    }

    /// Ends the session of `token`, if any.
    pub fn sign_out(&self, token: &str) {
        self.state().sessions.remove(&token_key(token));
    }

    /// How many users are configured.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }
}

fn live(s: &Session, now: Instant) -> bool {
    now.duration_since(s.last) < IDLE && now.duration_since(s.created) < ABSOLUTE
}

/// `N` random bytes from the operating system.
fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; N];
    // The system's generator does not fail on a working Linux; if it did, zeros would be
    // guessable, so refuse to go on.
    ring::rand::SystemRandom::new().fill(&mut bytes).expect("the operating system's random generator");
    bytes
}

/// A session token: 32 random bytes, hex.
fn new_token() -> String {
    hex::encode(random_bytes::<32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> BTreeMap<String, User> {
        let nat = hash_password("national secret").unwrap();
        let bj = hash_password("beijing secret").unwrap();
        parse_users(&format!(
            "[[user]]\nname = \"nhsa\"\nrole = \"national\"\npassword_hash = \"{nat}\"\n\
             [[user]]\nname = \"bj-agency\"\nrole = \"agency\"\nprovince = \"110000\"\npassword_hash = \"{bj}\"\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_right_password_opens_a_session_of_the_users_role_and_a_wrong_one_does_not() {
        let auth = Auth::new(users());
        let t0 = Instant::now();
        let (token, s) = auth.sign_in("bj-agency", "beijing secret", t0).unwrap();
        assert_eq!(s.identity, Identity::Agency { province: ProvinceCode::new("110000").unwrap() });
        assert_eq!(token.len(), 64);
        assert_eq!(auth.session(&token, t0).unwrap().user, "bj-agency");
        assert_eq!(auth.sign_in("bj-agency", "national secret", t0).unwrap_err(), Refusal::Wrong);
        assert_eq!(auth.sign_in("nobody", "beijing secret", t0).unwrap_err(), Refusal::Wrong);
        assert!(auth.session("not a token", t0).is_none());
        auth.sign_out(&token);
        assert!(auth.session(&token, t0).is_none());
    }

    #[test]
    fn sessions_end_when_idle_and_after_the_absolute_limit() {
        let auth = Auth::new(users());
        let t0 = Instant::now();
        let (token, _) = auth.sign_in("nhsa", "national secret", t0).unwrap();
        // Used every 20 minutes it lives on, until 8 hours after sign-in.
        let mut t = t0;
        while t.duration_since(t0) + Duration::from_secs(20 * 60) < ABSOLUTE {
            t += Duration::from_secs(20 * 60);
            assert!(auth.session(&token, t).is_some(), "alive at {:?}", t.duration_since(t0));
        }
        assert!(auth.session(&token, t0 + ABSOLUTE).is_none());
        let (idle, _) = auth.sign_in("nhsa", "national secret", t0).unwrap();
        assert!(auth.session(&idle, t0 + IDLE).is_none());
    }

    #[test]
    fn repeated_failures_lock_a_name_out_for_a_while() {
        let auth = Auth::new(users());
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert_eq!(auth.sign_in("nhsa", "guess", t0).unwrap_err(), Refusal::Wrong);
        }
        // Even the right password is refused during the lockout, then accepted.
        assert_eq!(auth.sign_in("nhsa", "national secret", t0).unwrap_err(), Refusal::LockedOut);
        assert!(auth.sign_in("nhsa", "national secret", t0 + LOCKOUT).is_ok());
    }

    #[test]
    fn unknown_names_are_answered_like_known_ones() {
        let auth = Auth::new(users());
        let t0 = Instant::now();
        for name in ["nhsa", "nobody"] {
            for _ in 0..MAX_FAILURES {
                assert_eq!(auth.sign_in(name, "guess", t0).unwrap_err(), Refusal::Wrong, "{name}");
            }
            assert_eq!(auth.sign_in(name, "guess", t0).unwrap_err(), Refusal::LockedOut, "{name}");
        }
        // A success forgets the failures.
        let t1 = t0 + LOCKOUT;
        assert!(auth.sign_in("nhsa", "national secret", t1).is_ok());
        for _ in 0..MAX_FAILURES - 1 {
            assert_eq!(auth.sign_in("nhsa", "guess", t1).unwrap_err(), Refusal::Wrong);
        }
        assert!(auth.sign_in("nhsa", "national secret", t1).is_ok());
    }

    #[test]
    fn users_files_are_checked_field_by_field() {
        let h = hash_password("x").unwrap();
        let cases = [
            (format!("[[user]]\nname = \"a b\"\nrole = \"national\"\npassword_hash = \"{h}\""), "user[0].name"),
            (format!("[[user]]\nname = \"a\"\nrole = \"king\"\npassword_hash = \"{h}\""), "user[0].role"),
            (format!("[[user]]\nname = \"a\"\nrole = \"agency\"\npassword_hash = \"{h}\""), "user[0].province"),
            (
                format!("[[user]]\nname = \"a\"\nrole = \"national\"\nprovince = \"110000\"\npassword_hash = \"{h}\""),
                "user[0].province",
            ),
            ("[[user]]\nname = \"a\"\nrole = \"national\"\npassword_hash = \"secret\"".to_string(), "password_hash"),
            (
                format!(
                    "[[user]]\nname = \"a\"\nrole = \"national\"\npassword_hash = \"{h}\"\n\
                     [[user]]\nname = \"a\"\nrole = \"national\"\npassword_hash = \"{h}\""
                ),
                "user[1].name",
            ),
        ];
        for (text, field) in cases {
            let e = format!("{:#}", parse_users(&text).unwrap_err());
            assert!(e.contains(field), "{field}: {e}");
        }
        assert!(parse_users("").unwrap().is_empty());
    }
}
