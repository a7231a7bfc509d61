//! Double-random inspections ("双随机、一公开": random targets, random inspectors, results
//! public) whose draw anyone can re-derive (issue 13.1).
//!
//! **Commit, then reveal.** An agency records a [`Plan`] — the pools of targets and inspectors,
//! the conflicts of interest, how many targets to draw and how many inspectors per target — with
//! the SHA-256 [`commitment`] of a secret 32-byte nonce. Once the plan is public, nobody can
//! choose another nonce without the commitment giving it away; the draw then reveals the nonce,
//! once. Because the agency picks its nonce, the draw also takes a **beacon** it could not know
//! when it committed: the store passes the province's audit-chain head at the moment the draw
//! is applied (published with the draw, and anchored at the federation), so trying nonces until
//! one favours a target gains nothing. [`draw`] turns the plan, the nonce and the beacon into the
//! result. Nothing else enters it: no clock, no store, no randomness of the machine.
//!
//! **The algorithm** (version 1, [`DRAW_VERSION`]), precisely enough to re-implement
//! (`scripts/verify_draw.py` does, in 60 lines of Python):
//!
//! 1. The pools are sorted by id as bytes; ids are printable ASCII, so every language sorts
//!    them alike ([`Plan::normalized`]).
//! 2. `seed = SHA-256("medmesh-draw-v1" ‖ 0x00 ‖ plan id ‖ 0x00 ‖ nonce ‖ beacon)` (the nonce
//!    and the beacon 32 bytes each).
//! 3. The i-th number (i = 0, 1, 2, … over the whole draw) is the first 8 bytes, big-endian, of
//!    `SHA-256(seed ‖ i as 8 bytes big-endian)`. A number below `n` is taken by rejection: a
//!    number `x` is used only if `x < 2^64 − (2^64 mod n)`, and then the answer is `x mod n`;
//!    otherwise the next number is tried.
//! 4. Targets, without replacement: each time, `W` is the sum of the weights of the targets not
//!    yet drawn, `p` a number below `W`, and the target drawn is the first (in sorted order) whose
//!    weight exceeds `p` after the weights before it are subtracted. A target's weight follows
//!    its credit grade: A 1, B 2, C 3, D 4 (a lower grade, a higher chance).
//! 5. Inspectors, in the order the targets were drawn: the eligible inspectors of a target are
//!    those not yet drawn for any target and not in conflict with it (their home institution is
//!    the target, or a recorded conflict names the pair), in sorted order; each of its
//!    inspectors is the eligible one at a number below their count, removed before the next.
//!
//! A plan is refused unless every draw succeeds whatever the nonce: the inspector pool must hold
//! `targets × per target` inspectors plus the most any one target is in conflict with.
//!
//! Dependencies: `sha2` (the hash of the commitment and of the stream), `hex` (nonces and
//! commitments travel as hex), `serde` (plans are stored), `thiserror` (errors name fields).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[cfg(test)]
mod tests;

/// The version of the algorithm [`draw`] implements.
pub const DRAW_VERSION: u32 = 1;
/// The domain separation tag of the seed.
pub const DOMAIN: &[u8] = b"medmesh-draw-v1";
/// Most targets or inspectors in one pool.
pub const MAX_POOL: usize = 10_000;
/// Most recorded conflicts in one plan.
pub const MAX_CONFLICTS: usize = 10_000;
/// Longest id, in bytes.
pub const MAX_ID: usize = 64;

/// A credit grade: the lower, the likelier a target is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Grade {
    /// Trusted: weight 1.
    A,
    /// Good: weight 2.
    B,
    /// Watched: weight 3.
    C,
    /// Poor: weight 4.
    D,
}

impl Grade {
    /// The target's weight in the draw.
    pub fn weight(self) -> u64 {
        match self {
            Grade::A => 1,
            Grade::B => 2,
            Grade::C => 3,
            Grade::D => 4,
        }
    }
}

/// A target that may be drawn: an institution with its credit grade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Institution code.
    pub id: String,
    /// Credit grade.
    pub grade: Grade,
}

/// An inspector that may be drawn: a certified inspector or expert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inspector {
    /// The inspector's code.
    pub id: String,
    /// The institution the inspector works at, if any (never drawn for it).
    pub home: Option<String>,
    /// The inspector's region (a province code or a finer one; published with the draw).
    pub region: String,
}

/// A recorded conflict of interest: the inspector is never drawn for the institution.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Conflict {
    /// The inspector's code.
    pub inspector: String,
    /// The institution.
    pub institution: String,
}

/// An inspection plan, with the commitment to the nonce that will draw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The plan's id (enters the seed).
    pub id: String,
    /// Targets that may be drawn.
    pub targets: Vec<Target>,
    /// Inspectors that may be drawn.
    pub inspectors: Vec<Inspector>,
    /// Conflicts besides each inspector's own institution.
    pub conflicts: Vec<Conflict>,
    /// How many targets to draw.
    pub draw_targets: u32,
    /// Inspectors per target.
    pub per_target: u32,
    /// SHA-256 of the secret nonce.
    pub commitment: [u8; 32],
}

/// One drawn target with its inspectors, in the order they were drawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The target.
    pub target: String,
    /// Its inspectors.
    pub inspectors: Vec<String>,
}

/// Why a plan or a draw was refused: the field at fault and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct DrawError {
    /// The field, as a path into the plan or the request.
    pub field: String,
    /// Why.
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> DrawError {
    DrawError { field: field.into(), message: message.into() }
}

/// The commitment to a nonce: its SHA-256.
pub fn commitment(nonce: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(nonce).into()
}

/// Parses a 32-byte value given as 64 hex digits (a nonce or a commitment).
pub fn parse_hex32(field: &str, text: &str) -> Result<[u8; 32], DrawError> {
    let bytes = hex::decode(text.trim()).map_err(|_| err(field, "must be 64 hex digits (32 bytes)"))?;
    bytes.try_into().map_err(|_| err(field, "must be 64 hex digits (32 bytes)"))
}

fn check_id(field: &str, id: &str) -> Result<(), DrawError> {
    if id.is_empty() || id.len() > MAX_ID || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(err(field, format!("must be 1 to {MAX_ID} printable ASCII characters without spaces")));
    }
    Ok(())
}

fn conflicted(plan: &Plan, inspector: &Inspector, target: &str) -> bool {
    inspector.home.as_deref() == Some(target)
        || plan
            .conflicts
            .binary_search_by(|c| (c.inspector.as_str(), c.institution.as_str()).cmp(&(inspector.id.as_str(), target)))
            .is_ok()
}

impl Plan {
    /// The plan with its pools and conflicts in the draw's order (by id as bytes).
    pub fn normalized(mut self) -> Plan {
        self.targets.sort_by(|a, b| a.id.cmp(&b.id));
        self.inspectors.sort_by(|a, b| a.id.cmp(&b.id));
        self.conflicts.sort();
        self.conflicts.dedup();
        self
    }

    /// Checks a plan (normalized or not): ids, unique pools, counts, and that every draw can
    /// succeed whatever the nonce. Names the field at fault.
    pub fn check(&self) -> Result<(), DrawError> {
        check_id("id", &self.id)?;
        if self.targets.is_empty() || self.targets.len() > MAX_POOL {
            return Err(err("targets", format!("must hold 1 to {MAX_POOL} targets")));
        }
        if self.inspectors.is_empty() || self.inspectors.len() > MAX_POOL {
            return Err(err("inspectors", format!("must hold 1 to {MAX_POOL} inspectors")));
        }
        if self.conflicts.len() > MAX_CONFLICTS {
            return Err(err("conflicts", format!("at most {MAX_CONFLICTS}")));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, t) in self.targets.iter().enumerate() {
            check_id(&format!("targets[{i}].id"), &t.id)?;
            if !seen.insert(t.id.as_str()) {
                return Err(err(format!("targets[{i}].id"), format!("{} appears twice", t.id)));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, p) in self.inspectors.iter().enumerate() {
            check_id(&format!("inspectors[{i}].id"), &p.id)?;
            check_id(&format!("inspectors[{i}].region"), &p.region)?;
            if let Some(h) = &p.home {
                check_id(&format!("inspectors[{i}].home_institution"), h)?;
            }
            if !seen.insert(p.id.as_str()) {
                return Err(err(format!("inspectors[{i}].id"), format!("{} appears twice", p.id)));
            }
        }
        for (i, c) in self.conflicts.iter().enumerate() {
            check_id(&format!("conflicts[{i}].inspector"), &c.inspector)?;
            check_id(&format!("conflicts[{i}].institution"), &c.institution)?;
        }
        let n = self.draw_targets as usize;
        if n == 0 || n > self.targets.len() {
            return Err(err("draw_targets", format!("must be 1 to the {} targets in the pool", self.targets.len())));
        }
        let k = self.per_target as usize;
        if k == 0 || k > MAX_POOL {
            return Err(err("inspectors_per_target", format!("must be 1 to {MAX_POOL}")));
        }
        // Every target, drawn last, still finds k eligible inspectors: the pool holds n × k
        // plus the most inspectors any one target is in conflict with.
        let sorted = self.clone().normalized();
        let worst = sorted
            .targets
            .iter()
            .map(|t| sorted.inspectors.iter().filter(|p| conflicted(&sorted, p, &t.id)).count())
            .max()
            .unwrap_or(0);
        let needed = n * k + worst;
        if self.inspectors.len() < needed {
            return Err(err(
                "inspectors",
                format!(
                    "{} inspectors cannot always staff {n} targets with {k} each: {needed} are needed ({worst} are in conflict with one target)",
                    self.inspectors.len()
                ),
            ));
        }
        Ok(())
    }
}

/// The stream of numbers a nonce gives a plan (step 3 of the algorithm).
struct Stream {
    seed: [u8; 32],
    counter: u64,
}

impl Stream {
    fn new(plan_id: &str, nonce: &[u8; 32], beacon: &[u8; 32]) -> Stream {
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update([0]);
        h.update(plan_id.as_bytes());
        h.update([0]);
        h.update(nonce);
        h.update(beacon);
        Stream { seed: h.finalize().into(), counter: 0 }
    }

    fn next_u64(&mut self) -> u64 {
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(self.counter.to_be_bytes());
        self.counter += 1;
        let block: [u8; 32] = h.finalize().into();
        let mut first = [0u8; 8];
        first.copy_from_slice(&block[..8]);
        u64::from_be_bytes(first)
    }

    /// A number below `n` (n > 0), by rejection.
    fn below(&mut self, n: u64) -> u64 {
        let span = 1u128 << 64;
        let limit = span - span % u128::from(n);
        loop {
            let x = self.next_u64();
            if u128::from(x) < limit {
                return x % n;
            }
        }
    }
}

/// Draws a plan with the revealed nonce and the beacon. The nonce must match the plan's
/// commitment; the plan must pass [`Plan::check`]. The same plan, nonce and beacon always give
/// the same draw.
pub fn draw(plan: &Plan, nonce: &[u8; 32], beacon: &[u8; 32]) -> Result<Vec<Assignment>, DrawError> {
    if commitment(nonce) != plan.commitment {
        return Err(err("nonce", "does not match the plan's commitment (its SHA-256)"));
    }
    plan.check()?;
    let plan = plan.clone().normalized();
    let mut stream = Stream::new(&plan.id, nonce, beacon);
    let mut left: Vec<&Target> = plan.targets.iter().collect();
    let mut drawn = Vec::with_capacity(plan.draw_targets as usize);
    for _ in 0..plan.draw_targets {
        let total: u64 = left.iter().map(|t| t.grade.weight()).sum();
        let mut p = stream.below(total);
        let mut at = 0;
        for (i, t) in left.iter().enumerate() {
            if p < t.grade.weight() {
                at = i;
                break;
            }
            p -= t.grade.weight();
        }
        drawn.push(left.remove(at));
    }
    let mut available: Vec<&Inspector> = plan.inspectors.iter().collect();
    let mut out = Vec::with_capacity(drawn.len());
    for t in drawn {
        let mut eligible: Vec<&Inspector> =
            available.iter().copied().filter(|p| !conflicted(&plan, p, &t.id)).collect();
        let mut chosen = Vec::with_capacity(plan.per_target as usize);
        for _ in 0..plan.per_target {
            // Plan::check guarantees enough eligible inspectors; a shortfall is still an error,
            // never a panic.
            if eligible.is_empty() {
                return Err(err("inspectors", format!("no eligible inspector is left for {}", t.id)));
            }
            let i = stream.below(eligible.len() as u64) as usize;
            let p = eligible.remove(i);
            available.retain(|q| q.id != p.id);
            chosen.push(p.id.clone());
        }
        out.push(Assignment { target: t.id.clone(), inspectors: chosen });
    }
    Ok(out)
}
