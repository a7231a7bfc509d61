//! The audit chain (issue 10.5): every command a group applies — accepted or refused — leaves
//! an entry in an append-only, hash-chained log kept in the group's state, so it survives the
//! compaction of the Raft log and travels in snapshots.
//!
//! An entry is `(seq, time, actor, request, command kind, SHA-256 of the command, SHA-256 of
//! its result, accepted?, hash of the entry before)`; its own hash is SHA-256 of its bincode
//! encoding. The first entry's `prev` is 64 zeros. Entries hold digests, never the command's
//! content, so the chain can be shown to the national level without the province's data.
//!
//! Each province's leader anchors its chain head at the federation now and then
//! ([`crate::FederationCommand::Anchor`]); an anchor is recorded once per sequence number and never
//! replaced, so a province that rewrote its history cannot match its own anchors.
//! [`verify`] re-walks a chain and checks it against anchors.

use medmesh_types::{LogTime, ProvinceCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::kv::{keys, Tx};

/// Longest actor text kept (a medmesh identity URI is far shorter).
pub const MAX_ACTOR: usize = 160;
/// Longest request id kept.
pub const MAX_REQUEST: usize = 64;
/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who asked for a command: the caller's identity (from its certificate, at the edge that
/// received the request) and the request's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Origin {
    /// The caller's identity URI (`medmesh://...`), or what the edge knows of it.
    pub actor: String,
    /// The request id (the caller's `x-request-id`, or one the edge made up).
    pub request: String,
}

/// Whether `id` may serve as a caller's request id (gRPC's `x-request-id`, the HTTP
/// envelope's `msgid`): 1 to [`MAX_REQUEST`] printable ASCII characters, no spaces.
pub fn valid_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

impl Origin {
    /// An origin, as the edge names it.
    pub fn new(actor: impl Into<String>, request: impl Into<String>) -> Origin {
        Origin { actor: actor.into(), request: request.into() }
    }

    /// What apply records: printable ASCII of bounded length (anything else is recorded as
    /// `invalid`, never refused: a command is judged on its own content).
    fn recorded(&self) -> Origin {
        let clean = |s: &str, max: usize| {
            if s.len() <= max && s.bytes().all(|b| b.is_ascii_graphic()) {
                s.to_string()
            } else {
                "invalid".to_string()
            }
        };
        Origin { actor: clean(&self.actor, MAX_ACTOR), request: clean(&self.request, MAX_REQUEST) }
    }
}

/// One entry of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// The group's time when it was applied.
    pub time: LogTime,
    /// Who asked.
    pub actor: String,
    /// The request id.
    pub request: String,
    /// The command's kind (`settle`, `put_policy`, ...).
    pub command: String,
    /// SHA-256 of the command's bincode encoding, hex.
    pub command_digest: String,
    /// SHA-256 of the bincode encoding of its result (outcome or error), hex.
    pub outcome_digest: String,
    /// Whether the command was applied (false: refused, and nothing else was written).
    pub accepted: bool,
    /// Hash of the entry before ([`GENESIS`] for the first).
    pub prev: String,
}

/// The head of a chain: its last entry's sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Sequence number of the last entry.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

/// One change of a register record (`Put*`): the record as the command wrote it, who asked and
/// when, under the audit entry's sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The audit entry of the command.
    pub seq: u64,
    /// When it was applied.
    pub time: LogTime,
    /// Who asked.
    pub actor: String,
    /// The request id.
    pub request: String,
    /// The record as the command put it, bincode (a `Person`, `Institution`, `Personnel`,
    /// `CatalogueItem` or `Policy`, by the record key's kind).
    pub record: Vec<u8>,
}

/// The sequence number the next entry of the chain in `tx` gets.
pub(crate) fn next_seq(tx: &Tx<'_>) -> u64 {
    tx.load::<AuditHead>(keys::AUDIT_HEAD).map(|h| h.seq + 1).unwrap_or(1)
}

/// Keeps a register record's change: `record_key` is the record's storage key.
pub(crate) fn keep_change(tx: &mut Tx<'_>, record_key: &str, origin: &Origin, record: Vec<u8>, now: LogTime) {
    let seq = next_seq(tx);
    let origin = origin.recorded();
    let change = Change { seq, time: now, actor: origin.actor, request: origin.request, record };
    tx.store(&keys::history(record_key, seq), &change);
}

/// A chain head recorded at the federation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The province whose chain it is.
    pub province: ProvinceCode,
    /// The head.
    pub head: AuditHead,
    /// When the federation recorded it.
    pub recorded_at: LogTime,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The hash of an entry: SHA-256 of its bincode encoding, hex.
pub fn entry_hash(e: &AuditEntry) -> String {
    sha256_hex(&crate::kv::encode(e))
}

/// Appends the entry of a command (of kind `kind`) and its result to the chain in `tx`.
pub(crate) fn append<C: Serialize, R: Serialize>(
    tx: &mut Tx<'_>,
    origin: &Origin,
    (kind, cmd): (&str, &C),
    (accepted, result): (bool, &R),
    now: LogTime,
) {
    let head: Option<AuditHead> = tx.load(keys::AUDIT_HEAD);
    let (seq, prev) = match head {
        Some(h) => (h.seq + 1, h.hash),
        None => (1, GENESIS.to_string()),
    };
    let origin = origin.recorded();
    let entry = AuditEntry {
        seq,
        time: now,
        actor: origin.actor,
        request: origin.request,
        command: kind.to_string(),
        command_digest: sha256_hex(&crate::kv::encode(cmd)),
        outcome_digest: sha256_hex(&crate::kv::encode(result)),
        accepted,
        prev,
    };
    let hash = entry_hash(&entry);
    tx.store(&keys::audit(seq), &entry);
    tx.store(keys::AUDIT_HEAD, &AuditHead { seq, hash });
}

/// Where a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at entry {seq}: {why}")]
pub struct Broken {
    /// The first entry that does not verify.
    pub seq: u64,
    /// Why.
    pub why: String,
}

/// Walks a chain, given from its first entry or continuing after `from` (the head verified
/// so far), and checks each anchor whose sequence number it passes: sequence numbers follow
/// one another, each entry's `prev` is the hash of the one before, and each anchor's hash is
/// the hash of the entry at its sequence number. Returns the new head.
pub fn verify(
    from: Option<AuditHead>,
    entries: impl IntoIterator<Item = AuditEntry>,
    anchors: &[AuditHead],
) -> Result<Option<AuditHead>, Broken> {
    let mut head = from;
    let mut anchors: Vec<&AuditHead> = anchors.iter().collect();
    anchors.sort_by_key(|a| a.seq);
    let mut next_anchor = anchors.into_iter().peekable();
    while next_anchor.peek().is_some_and(|a| head.as_ref().is_some_and(|h| a.seq <= h.seq)) {
        next_anchor.next();
    }
    for e in entries {
        let (want_seq, want_prev) = match &head {
            Some(h) => (h.seq + 1, h.hash.as_str()),
            None => (1, GENESIS),
        };
        if e.seq != want_seq {
            return Err(Broken { seq: want_seq, why: format!("entry {want_seq} is missing (found {})", e.seq) });
        }
        if e.prev != want_prev {
            return Err(Broken { seq: e.seq, why: "its prev is not the hash of the entry before".into() });
        }
        let hash = entry_hash(&e);
        while let Some(a) = next_anchor.peek() {
            if a.seq > e.seq {
                break;
            }
            if a.seq == e.seq && a.hash != hash {
                return Err(Broken { seq: e.seq, why: "the federation's anchor names another hash".into() });
            }
            next_anchor.next();
        }
        head = Some(AuditHead { seq: e.seq, hash });
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for seq in 1..=n {
            let prev = out.last().map(entry_hash).unwrap_or_else(|| GENESIS.to_string());
            out.push(AuditEntry {
                seq,
                time: LogTime(1_741_579_200_000 + seq as i64),
                actor: "medmesh://agency/110000".into(),
                request: format!("r{seq}"),
                command: "put_policy".into(),
                command_digest: sha256_hex(&seq.to_be_bytes()),
                outcome_digest: sha256_hex(b"ok"),
                accepted: true,
                prev,
            });
        }
        out
    }

    fn head_at(c: &[AuditEntry], seq: u64) -> AuditHead {
        AuditHead { seq, hash: entry_hash(&c[seq as usize - 1]) }
    }

    #[test]
    fn an_intact_chain_verifies_with_its_anchors_and_in_pages() {
        let c = chain(10);
        let anchors = [head_at(&c, 3), head_at(&c, 10)];
        let head = verify(None, c.clone(), &anchors).unwrap().unwrap();
        assert_eq!(head, head_at(&c, 10));
        let mid = verify(None, c[..4].to_vec(), &anchors).unwrap();
        assert_eq!(verify(mid, c[4..].to_vec(), &anchors).unwrap().unwrap(), head);
    }

    #[test]
    fn any_change_breaks_the_chain_at_that_entry() {
        let c = chain(6);
        let mut edited = c.clone();
        edited[3].actor = "medmesh://agency/310000".into();
        assert_eq!(verify(None, edited, &[]).unwrap_err().seq, 5, "the next entry's prev no longer matches");
        let mut dropped = c.clone();
        dropped.remove(2);
        assert_eq!(verify(None, dropped, &[]).unwrap_err().seq, 3);
        // Rewriting the rest of the chain consistently is caught by an anchor.
        let mut rewritten = c.clone();
        rewritten[4].accepted = false;
        rewritten[5].prev = entry_hash(&rewritten[4]);
        assert!(verify(None, rewritten.clone(), &[]).is_ok());
        assert_eq!(verify(None, rewritten, &[head_at(&c, 5)]).unwrap_err().seq, 5);
    }

    #[test]
    fn origins_are_recorded_bounded() {
        let o = Origin::new("x".repeat(MAX_ACTOR + 1), "ok-1").recorded();
        assert_eq!((o.actor.as_str(), o.request.as_str()), ("invalid", "ok-1"));
        assert_eq!(Origin::new("a b", "r").recorded().actor, "invalid");
    }
}
