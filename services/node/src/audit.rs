//! `medmesh audit verify`: re-walks a province's audit chain (see `medmesh_state::audit`) and
//! checks it against the anchors the federation holds — online through the public API (as the
//! province's agency or the national administration, who see digests only), or offline from a
//! copy of a replica's data directory.

use std::path::Path;

use medmesh_state::audit::{verify, AuditHead, Broken};
use medmesh_state::{Answer, Query};
use medmesh_types::ProvinceCode;
use tonic::transport::Channel;

use crate::convert::{anchor_head, audit_entry, MAX_AUDIT_PAGE};
use crate::pb;
use crate::pb::agency_service_client::AgencyServiceClient;
use crate::pb::federation_service_client::FederationServiceClient;

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entries walked.
    pub entries: u64,
    /// The chain's head, if it has entries.
    pub head: Option<AuditHead>,
    /// Anchors checked (those at or below the head).
    pub anchors: usize,
}

/// Why a verification failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The chain does not verify.
    #[error("{0}")]
    Broken(#[from] Broken),
    /// The chain or the anchors could not be read.
    #[error("{0}")]
    Read(String),
}

/// Every anchor of `province` the federation holds, through a replica at `ch`.
pub async fn anchors(ch: Channel, province: &ProvinceCode) -> Result<Vec<AuditHead>, VerifyError> {
    let mut c = FederationServiceClient::new(ch);
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let req = pb::ListAnchorsRequest { province: province.to_string(), from_seq: from, page_size: MAX_AUDIT_PAGE };
        let page = c.list_anchors(req).await.map_err(|s| VerifyError::Read(format!("anchors: {}", s.message())))?;
        let page = page.into_inner();
        out.extend(page.anchors.iter().map(anchor_head));
        if page.next_seq == 0 {
            return Ok(out);
        }
        from = page.next_seq;
    }
}

/// Verifies the chain a replica at `ch` serves against `anchors`.
pub async fn verify_online(ch: Channel, anchors: &[AuditHead]) -> Result<Verified, VerifyError> {
    let mut c = AgencyServiceClient::new(ch);
    let mut head = None;
    let mut entries = 0;
    let mut from = 1;
    loop {
        let req = pb::ListAuditRequest { from_seq: from, page_size: MAX_AUDIT_PAGE };
        let page = c.list_audit(req).await.map_err(|s| VerifyError::Read(format!("audit chain: {}", s.message())))?;
        let page = page.into_inner();
        entries += page.entries.len() as u64;
        head = verify(head, page.entries.iter().map(audit_entry), anchors)?;
        if page.next_seq == 0 {
            // The chain read now must reach every anchor: an anchor past its head means
            // entries were cut off.
            return finish(entries, head, anchors, true);
        }
        from = page.next_seq;
    }
}

/// Verifies the chain in a stopped replica's data directory (or a copy of it) against
/// `anchors` (anchors past the copy's head are not checked: a copy may be older than them).
pub async fn verify_offline(data_dir: &Path, group: &str, anchors: &[AuditHead]) -> Result<Verified, VerifyError> {
    let role = medmesh_state::Role::of_province(group);
    let (_log, sm) = medmesh_storage::open(data_dir, role)
        .await
        .map_err(|e| VerifyError::Read(format!("{}: {e}", data_dir.display())))?;
    let view = sm.view();
    let mut head = None;
    let mut entries = 0;
    let mut from = 1;
    loop {
        let page = match medmesh_state::run_query(&view, &Query::Audit { from, limit: MAX_AUDIT_PAGE as usize }) {
            Ok(Answer::Audit(page)) => page,
            Ok(_) => return Err(VerifyError::Read("unexpected answer".into())),
            Err(e) => return Err(VerifyError::Read(e.to_string())),
        };
        let Some(last) = page.last().map(|e| e.seq) else {
            return finish(entries, head, anchors, false);
        };
        entries += page.len() as u64;
        head = verify(head, page, anchors)?;
        from = last + 1;
    }
}

fn finish(
    entries: u64,
    head: Option<AuditHead>,
    anchors: &[AuditHead],
    complete: bool,
) -> Result<Verified, VerifyError> {
    let top = head.as_ref().map(|h| h.seq).unwrap_or(0);
    if let Some(a) = anchors.iter().filter(|a| a.seq > top).min_by_key(|a| a.seq).filter(|_| complete) {
        return Err(Broken {
            seq: top + 1,
            why: format!("the chain ends at entry {top}, but the federation anchored entry {}", a.seq),
        }
        .into());
    }
    Ok(Verified { entries, anchors: anchors.iter().filter(|a| a.seq <= top).count(), head })
}
