//! Reconciliation of a month's clearing at a province's replica: one page of the federation's
//! lines (then of this province's own month index) read from both sides and compared by the
//! pure rules of `medmesh_state::reconcile`.
//!
//! The walk has two phases, named in the page token: `l:<the federation's clearing page
//! token>` walks the month's lines at the federation (only those of pairs with this province
//! are checked), then `r:<treatment/institution/serial>` walks the non-local transfers this
//! province committed in the month. Each page costs one read of each side per phase.

use medmesh_state::reconcile::{diff_lines, diff_records, lines_of, Difference, FedRecord, LocalRecord};
use medmesh_state::{Answer, Query, TransferId};
use medmesh_types::{InstitutionId, ProvinceCode, Serial};
use tonic::Status;

use crate::api::unexpected;
use crate::convert::status;
use crate::mesh::Mesh;

/// One page of a reconciliation.
#[derive(Debug, Default)]
pub struct Page {
    /// Differences found on this page.
    pub differences: Vec<Difference>,
    /// The federation's lines of this province checked on this page.
    pub lines_checked: usize,
    /// This province's records checked on this page.
    pub records_checked: usize,
    /// Token of the next page; empty once both walks are done.
    pub next_page_token: String,
}

fn bad_token() -> Status {
    Status::invalid_argument("page_token: is not a token this list returned")
}

/// Parses `treatment/institution/serial` of a records-phase token.
fn check_after(after: &str) -> Result<(), Status> {
    if after.is_empty() {
        return Ok(());
    }
    let parts: Vec<&str> = after.split('/').collect();
    let ok = parts.len() == 3
        && ProvinceCode::new(parts[0]).is_ok()
        && InstitutionId::new(parts[1]).is_ok()
        && Serial::new(parts[2]).is_ok();
    ok.then_some(()).ok_or_else(bad_token)
}

impl Mesh {
    async fn local(&self, q: Query) -> Result<Answer, Status> {
        self.app.query(q).await?.map_err(status)
    }

    async fn federation(&self, q: Query) -> Result<Answer, Status> {
        self.fed_query(q).await?.map_err(status)
    }

    async fn both_sides(&self, transfers: &[TransferId]) -> Result<(Vec<FedRecord>, Vec<Option<LocalRecord>>), Status> {
        if transfers.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let fed = match self.federation(Query::FedRecords { transfers: transfers.to_vec() }).await? {
            Answer::FedRecords(r) if r.len() == transfers.len() => r,
            other => return Err(unexpected(other)),
        };
        let own = self.province.clone();
        let local = match self.local(Query::LocalRecords { own, transfers: transfers.to_vec() }).await? {
            Answer::LocalRecords(r) if r.len() == transfers.len() => r,
            other => return Err(unexpected(other)),
        };
        Ok((fed, local))
    }

    /// One page of the reconciliation of `month` between the federation and this province.
    pub async fn reconcile(&self, month: &str, page_token: &str, page_size: usize) -> Result<Page, Status> {
        if self.is_federation() || !self.federated() {
            return Err(Status::failed_precondition(
                "province: reconciliation runs at a federated province's replicas, for that province",
            ));
        }
        match page_token.split_once(':') {
            None if page_token.is_empty() => self.reconcile_lines(month, "", page_size).await,
            Some(("l", fed_token)) if !fed_token.is_empty() => self.reconcile_lines(month, fed_token, page_size).await,
            Some(("r", after)) => {
                check_after(after)?;
                self.reconcile_records(month, after, page_size).await
            }
            _ => Err(bad_token()),
        }
    }

    async fn reconcile_lines(&self, month: &str, fed_token: &str, page_size: usize) -> Result<Page, Status> {
        let q = Query::Clearing { month: month.to_string(), page_token: fed_token.to_string(), page_size };
        let (view, next) = match self.federation(q).await? {
            Answer::Clearing { view, next_page_token } => (view, next_page_token),
            other => return Err(unexpected(other)),
        };
        let lines = lines_of(view, &self.province);
        let transfers: Vec<TransferId> = lines.iter().map(|(t, _)| t.clone()).collect();
        let (fed, local) = self.both_sides(&transfers).await?;
        let differences = diff_lines(&lines, &fed, &local);
        let next_page_token = if next.is_empty() { "r:".to_string() } else { format!("l:{next}") };
        Ok(Page { differences, lines_checked: lines.len(), records_checked: 0, next_page_token })
    }

    async fn reconcile_records(&self, month: &str, after: &str, page_size: usize) -> Result<Page, Status> {
        let q = Query::NonLocalMonth { month: month.to_string(), after: after.to_string(), limit: page_size };
        let (transfers, next) = match self.local(q).await? {
            Answer::MonthTransfers { transfers, next } => (transfers, next),
            other => return Err(unexpected(other)),
        };
        let (fed, local) = self.both_sides(&transfers).await?;
        let differences = diff_records(&transfers, &fed, &local);
        let next_page_token = if next.is_empty() { String::new() } else { format!("r:{next}") };
        Ok(Page { differences, lines_checked: 0, records_checked: transfers.len(), next_page_token })
    }
}
