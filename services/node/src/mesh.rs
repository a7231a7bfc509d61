//! The replica's place in the mesh: routing of non-local care, the two-phase transfer
//! coordinator, and the background work that resolves in-doubt transfers and keeps shared data
//! fresh.
//!
//! The coordinator holds no state of its own: every step is an idempotent command in one of
//! three Raft groups (see `medmesh_state::nonlocal`), so a crash anywhere leaves a state from
//! which [`Mesh::recover_once`] (or the hospital's retry with the same serial) continues.
//!
//! Bounds: a transfer whose insured province gave no answer within [`RESERVE_TIMEOUT`] is
//! aborted; a reservation with no decision after [`VOID_AFTER`] asks the federation and
//! proposes abort if nothing was recorded; the recovery pass runs every [`RECOVERY_EVERY`] on
//! each group's leader. So once the mesh heals, nothing stays pending longer than
//! `VOID_AFTER + RECOVERY_EVERY` plus the time to reach the groups (about 15 s), and one more
//! timeout where a new leader takes the work over (ages count from when the replica driving a
//! transfer first saw it, so a log time behind the clock never ages a transfer early; see
//! `FirstSeen`). The timeouts bound waiting only: the federation records one decision per
//! transfer, whoever asks first.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use medmesh_seal::{PersonSecrets, SealKey};
use medmesh_state::coordinator::{self, next_action, reserve_answer, void_due, Action, ReserveAnswer};
use medmesh_state::{
    directory_key, keys, Answer, CertificateKind, Command, CommandResult, Decision, DecisionRecord, DomainError,
    ErrorCode, FederationCommand, Filing, FundLedger, NonLocalVisit, OpenTransfer, Outcome, Person, ProvinceCommand,
    ProvinceEntry, Query, Reservation, Settlement, SharedItem, TransferId, TransferPhase, TreatmentTransfer, VisitKind,
};
use medmesh_types::{KeyedHash, LogTime, Money, ProvinceCode, Sealed, Serial};
use tonic::Status;

use crate::api::unexpected;
use crate::app::{App, ForwardError};
use crate::clock::now_ms;
use crate::convert::status;
use crate::remote::Remote;

/// A transfer whose insured province has not reserved within this time is aborted.
pub const RESERVE_TIMEOUT: Duration = Duration::from_millis(coordinator::RESERVE_TIMEOUT_MS);
/// A reservation without a decision for this long is resolved through the federation.
pub const VOID_AFTER: Duration = Duration::from_millis(coordinator::VOID_AFTER_MS);
/// How often a province's leader anchors its audit-chain head at the federation (when it moved).
pub const ANCHOR_EVERY: Duration = Duration::from_secs(5);
/// How often a group leader looks for in-doubt transfers and new shared data.
pub const RECOVERY_EVERY: Duration = Duration::from_secs(1);
/// How long a hospital's non-local call may drive its transfer before it answers UNAVAILABLE
/// (the outcome then follows from recovery, and a retry with the same serial returns it).
pub const DRIVE_DEADLINE: Duration = Duration::from_secs(15);

/// A replica with its links to the federation and the other provinces.
pub struct Mesh {
    /// The local replica.
    pub app: Arc<App>,
    /// Clients of other groups.
    pub remote: Remote,
    /// This group's province code (`000000` for the federation).
    pub province: ProvinceCode,
    /// The directory secret.
    secret: String,
    /// Replica addresses of this group, registered with the federation.
    endpoints: Vec<String>,
    /// This province's seal key (`None` on the federation, which holds no identities).
    seal: Option<Arc<SealKey>>,
    /// When this replica first saw each transfer in flight.
    seen: FirstSeen,
}

/// When this replica first saw each transfer (or reservation) in flight, so that its age is
/// never overstated by a log time that runs behind the clock. A group's log time catches up with
/// its clock in bounded steps after the clock jumps forward (entry time is bounded in apply), so
/// for a while a transfer opened just now carries a log time minutes in the past; measured by
/// that alone it would look older than the reserve timeout and be aborted at once.
///
/// The age used is the smaller of the age by log time and the time since this replica first saw
/// the transfer. Only timeouts depend on it, never safety: the federation records one decision
/// per transfer whoever asks first. A replica that takes over in-flight transfers (after a
/// restart or leader change) first sees them then, so it waits up to one timeout more before
/// aborting one that has no answer.
#[derive(Default)]
struct FirstSeen(Mutex<BTreeMap<TransferId, Instant>>);

/// Above this many entries, those seen longer ago than [`FirstSeen::KEEP`] are dropped.
const FIRST_SEEN_CAP: usize = 65_536;

impl FirstSeen {
    /// Entries kept this long at least: longer than any timeout they measure.
    const KEEP: Duration = Duration::from_secs(120);

    /// The age of transfer `t`, logged at `logged`.
    fn age(&self, t: &TransferId, logged: LogTime) -> Duration {
        let now = Instant::now();
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= FIRST_SEEN_CAP {
            seen.retain(|_, at| now.duration_since(*at) < Self::KEEP);
        }
        let first = *seen.entry(t.clone()).or_insert(now);
        age(logged).min(now.duration_since(first))
    }

    /// Forgets a transfer that is done.
    fn forget(&self, t: &TransferId) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(t);
    }
}

/// The wall-clock time, for queries and ages (never for apply).
pub fn now() -> LogTime {
    LogTime(now_ms())
}

fn age(t: LogTime) -> Duration {
    Duration::from_millis(u64::try_from(now_ms() - t.millis()).unwrap_or(0))
}

fn outcome(r: CommandResult) -> Result<Outcome, Status> {
    r.map_err(status)
}

fn answer(r: Result<Answer, DomainError>) -> Result<Answer, Status> {
    r.map_err(status)
}

/// The error a hospital gets for an aborted non-local settlement.
pub fn aborted(reason: &str) -> Status {
    Status::failed_precondition(format!("serial: the non-local settlement was not made: {reason}"))
}

/// The hospital's answer for a transfer that is done.
fn settled(done: Outcome) -> Result<Settlement, Status> {
    match done {
        Outcome::Settlement(s) => Ok(s),
        Outcome::NonLocalAborted { reason, .. } => Err(aborted(&reason)),
        other => Err(unexpected(other)),
    }
}

impl Mesh {
    /// Wraps a replica.
    pub fn new(
        app: Arc<App>,
        province: ProvinceCode,
        federation: Vec<String>,
        secret: String,
        endpoints: Vec<String>,
        seal: Option<Arc<SealKey>>,
    ) -> Mesh {
        let remote = Remote::new(federation, app.transport.clone());
        Mesh { app, remote, province, secret, endpoints, seal, seen: FirstSeen::default() }
    }

    /// This province's seal key.
    pub fn seal(&self) -> Result<&SealKey, Status> {
        self.seal.as_deref().ok_or_else(|| {
            Status::failed_precondition(
                "certificate: this replica holds no register (the federation keeps no identities)",
            )
        })
    }

    /// The keyed hash of a certificate number under this province's key: how the register
    /// finds its holder. The number is checked here, at the edge, and goes no further.
    pub fn cert_key(&self, kind: CertificateKind, number: &str) -> Result<KeyedHash, Status> {
        crate::convert::certificate_number("certificate", number)?;
        Ok(self.seal()?.hash(kind.key(), number))
    }

    /// Opens a register entry's sealed identity fields.
    pub fn open_person(&self, p: &Person) -> Result<PersonSecrets, Status> {
        self.open_sealed(&p.key, &p.sealed)
    }

    /// Opens identity fields sealed for the record `key` under this province's key.
    pub fn open_sealed(&self, key: &KeyedHash, sealed: &Sealed) -> Result<PersonSecrets, Status> {
        self.seal()?.open_person(key, sealed).map_err(|e| {
            tracing::error!(error = %e, "a sealed record does not open: is seal_key the province's key?");
            Status::failed_precondition(format!("seal_key: {e}"))
        })
    }

    /// Insured province: a treatment province's `RemotePerson` question, with the raw number
    /// it carries hashed here and the answer's name opened here (the state machine sees
    /// neither).
    pub async fn remote_person(&self, kind: CertificateKind, number: &str) -> crate::app::QueryReply {
        let key = match self.cert_key(kind, number) {
            Ok(k) => k,
            Err(s) => return Ok(Err(DomainError::invalid("certificate", s.message().to_string()))),
        };
        let p = match self.app.query_local(Query::Person { kind, key }).await? {
            Ok(Answer::Person(p)) => p,
            Ok(_) => return Err(ForwardError::Unavailable("unexpected answer to a person lookup".into())),
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = medmesh_state::require_active(&p) {
            return Ok(Err(e));
        }
        match self.open_person(&p) {
            Ok(secrets) => Ok(Ok(Answer::RemotePerson(medmesh_state::RemotePerson {
                masked_id: p.masked_id,
                name: secrets.name,
                handle: p.key,
            }))),
            Err(s) => Ok(Err(DomainError::precondition("seal_key", s.message().to_string()))),
        }
    }

    /// Whether this replica is in the federation group.
    pub fn is_federation(&self) -> bool {
        self.province.as_str() == medmesh_state::FEDERATION
    }

    /// Whether non-local care is possible (a federation is configured).
    pub fn federated(&self) -> bool {
        self.is_federation() || self.remote.has_federation()
    }

    /// Proposes to the federation (locally on a federation replica).
    pub async fn fed_propose(&self, cmd: FederationCommand) -> Result<CommandResult, Status> {
        if self.is_federation() {
            self.app.propose(cmd).await
        } else {
            self.remote.fed_propose(&cmd).await
        }
    }

    /// Queries the federation (locally on a federation replica).
    pub async fn fed_query(&self, q: Query) -> Result<Result<Answer, DomainError>, Status> {
        if self.is_federation() {
            self.app.query(q).await
        } else {
            self.remote.fed_query(&q).await
        }
    }

    /// The directory key of a certificate.
    pub fn directory_key(&self, kind: CertificateKind, number: &str) -> String {
        directory_key(&self.secret, kind, number)
    }

    /// The directory keys of a person's certificates (from the opened register entry).
    pub fn directory_keys(&self, p: &PersonSecrets) -> Vec<String> {
        let mut out = vec![self.directory_key(CertificateKind::IdCard, &p.id)];
        if let Some(n) = &p.social_security_card {
            out.push(self.directory_key(CertificateKind::SocialSecurityCard, n));
        }
        if let Some(n) = &p.e_credential {
            out.push(self.directory_key(CertificateKind::ECredential, n));
        }
        out
    }

    /// Directory entries for a person's certificates.
    pub fn directory_entries(&self, p: &PersonSecrets) -> Vec<(String, ProvinceCode)> {
        self.directory_keys(p).into_iter().map(|k| (k, self.province.clone())).collect()
    }

    /// Registers a visit (`cmd` names the certificate by its keyed hash; `number` is the
    /// number the hospital read, which goes only to the insured province of a non-local
    /// patient); a certificate unknown here is looked up in the federation's directory and
    /// registered as a non-local visit.
    pub async fn register_visit(&self, cmd: ProvinceCommand, number: &str, emergency: bool) -> Result<Outcome, Status> {
        if let ProvinceCommand::RegisterVisit { certificate_kind, certificate, .. } = &cmd {
            if self.federated() {
                // A person on the joint-discipline list (recorded in any province) may not
                // settle directly here.
                let subject = medmesh_state::DisciplineSubject::Person(self.directory_key(*certificate_kind, number));
                medmesh_state::disciplined(&self.app.view, &subject, now().date(), "certificate").map_err(status)?;
                // Route by this replica's (possibly stale) view: a certificate unknown here is
                // looked up in the directory, which sends it back here if it is ours after all.
                let q = Query::Person { kind: *certificate_kind, key: certificate.clone() };
                if let Err(e) = medmesh_state::run_query(&self.app.view, &q) {
                    if e.code == ErrorCode::NotFound && e.field == "certificate" {
                        return self.register_nonlocal_visit(cmd, number, emergency).await;
                    }
                }
            }
        }
        match self.app.propose(cmd.clone()).await? {
            Ok(o) => Ok(o),
            Err(e) if e.code == ErrorCode::NotFound && e.field == "certificate" && self.federated() => {
                self.register_nonlocal_visit(cmd, number, emergency).await
            }
            Err(e) => Err(status(e)),
        }
    }

    async fn register_nonlocal_visit(
        &self,
        cmd: ProvinceCommand,
        number: &str,
        emergency: bool,
    ) -> Result<Outcome, Status> {
        let ProvinceCommand::RegisterVisit { certificate_kind, admitted, kind, .. } = &cmd else {
            return Err(unexpected(&cmd));
        };
        let certificate = number;
        let key = self.directory_key(*certificate_kind, certificate);
        let insured = match self.fed_query(Query::Directory { key: key.clone() }).await? {
            Ok(Answer::Province(p)) => p,
            Ok(other) => return Err(unexpected(other)),
            Err(e) if e.code == ErrorCode::NotFound => {
                return Err(Status::not_found("certificate: no insured person holds this certificate in any province"))
            }
            Err(e) => return Err(status(e)),
        };
        if insured == self.province {
            // Ours after all (registered since this replica's view was read): register here.
            return outcome(self.app.propose(cmd).await?);
        }
        let person_query = Query::RemotePerson { kind: *certificate_kind, number: certificate.to_string() };
        let (person, filing) =
            tokio::join!(self.remote.province_query(&insured, &person_query), self.filing_for(&key, *admitted));
        let person = match person? {
            Ok(Answer::RemotePerson(p)) => p,
            Ok(other) => return Err(unexpected(other)),
            Err(e) => return Err(status(e)),
        };
        let filing = filing?.or(emergency.then_some(medmesh_state::FilingKind::Emergency));
        if filing.is_none() && *kind == VisitKind::Outpatient {
            return Err(Status::failed_precondition(format!(
                "certificate: the person insured in {insured} has no non-local filing for {} covering {admitted}; the insured province must file first (emergencies: set emergency)",
                self.province
            )));
        }
        // The name is kept for the expense document, sealed under this province's key; the
        // number is not kept at all: the visit names the person by the insured's handle.
        let sealed_name = self
            .seal()?
            .seal_person(&person.handle, &PersonSecrets { name: person.name, ..PersonSecrets::default() })
            .map_err(|e| Status::unavailable(format!("sealing the name: {e}")))?;
        let nonlocal = NonLocalVisit {
            treatment: self.province.clone(),
            insured,
            person_key: key,
            certificate_kind: *certificate_kind,
            handle: person.handle,
            masked_id: person.masked_id,
            sealed_name,
            filing,
        };
        outcome(self.app.propose(ProvinceCommand::RegisterNonLocalVisit { request: Box::new(cmd), nonlocal }).await?)
    }

    /// Treatment province: a hospital's identity lookup of a person insured elsewhere, through
    /// the federation's directory and the insured province (masked and minimal: see
    /// `HospitalService.LookupIdentity`).
    pub async fn lookup_nonlocal(
        &self,
        kind: CertificateKind,
        number: &str,
    ) -> Result<crate::pb::LookupIdentityResponse, Status> {
        let key = self.directory_key(kind, number);
        let insured = match self.fed_query(Query::Directory { key: key.clone() }).await? {
            Ok(Answer::Province(p)) if p != self.province => p,
            Ok(Answer::Province(_)) | Err(DomainError { code: ErrorCode::NotFound, .. }) => {
                return Err(Status::not_found("certificate: no insured person holds this certificate in any province"))
            }
            Ok(other) => return Err(unexpected(other)),
            Err(e) => return Err(status(e)),
        };
        let person_query = Query::RemotePerson { kind, number: number.to_string() };
        let (person, filing) =
            tokio::join!(self.remote.province_query(&insured, &person_query), self.filing_for(&key, now().date()));
        let person = match person? {
            Ok(Answer::RemotePerson(p)) => p,
            Ok(other) => return Err(unexpected(other)),
            Err(e) => return Err(status(e)),
        };
        let nonlocal_filing = match filing? {
            None => crate::pb::FilingKind::Unspecified,
            Some(medmesh_state::FilingKind::LongTermResident) => crate::pb::FilingKind::LongTermResident,
            Some(medmesh_state::FilingKind::Referral) => crate::pb::FilingKind::Referral,
            Some(medmesh_state::FilingKind::Emergency) => crate::pb::FilingKind::Emergency,
            Some(medmesh_state::FilingKind::OtherTemporary) => crate::pb::FilingKind::OtherTemporary,
        };
        Ok(crate::pb::LookupIdentityResponse {
            masked_id: person.masked_id,
            name: person.name,
            insurance_status: "ACTIVE".into(),
            insured_province: insured.to_string(),
            nonlocal_filing: nonlocal_filing as i32,
            ..Default::default()
        })
    }

    /// The federation's filings of the person with `key` for care in `treatment`.
    async fn filings(&self, key: &str, treatment: &ProvinceCode) -> Result<Vec<Filing>, Status> {
        let q = Query::Filings { person_key: key.to_string(), treatment: treatment.clone() };
        match answer(self.fed_query(q).await?)? {
            Answer::Filings(f) => Ok(f),
            other => Err(unexpected(other)),
        }
    }

    /// The kind of the filing that covers `day` for the person with `key` here, if any.
    async fn filing_for(
        &self,
        key: &str,
        day: medmesh_types::Date,
    ) -> Result<Option<medmesh_state::FilingKind>, Status> {
        let filings = self.filings(key, &self.province).await?;
        // The most generous kind wins when several cover the day.
        Ok(filings.iter().filter(|f| f.covers(day)).map(|f| f.kind).min())
    }

    /// Insured province: a treatment province's `Reserve` (issue 10: verify, don't trust).
    /// The leader first checks the claimed filing against the federation's record of this
    /// province's filings (an emergency is taken as declared; supervision reviews it after the
    /// fact), reserves, then vouches at the federation for what it reserved before it answers:
    /// the federation commits only that amount. Without the federation the answer is
    /// "unavailable" and the treatment province retries (the reserve is idempotent).
    pub async fn reserve_as_insured(&self, cmd: Command) -> Result<CommandResult, ForwardError> {
        let unavailable =
            |what: &str, e: Status| ForwardError::Unavailable(format!("federation: {what}: {}", e.message()));
        let Command::Province(ProvinceCommand::Reserve { transfer, .. }) = &cmd else {
            return self.app.propose_local(cmd).await;
        };
        let transfer = transfer.clone();
        if self.app.leader().map(|(id, _)| id) == Some(self.app.id) {
            // Followers answer "not leader" below, so the check runs once, where the reserve runs.
            let refusal = self
                .claimed_filing_refusal(&cmd)
                .await
                .map_err(|e| unavailable("the claimed filing cannot be checked", e))?;
            if let Some(refusal) = refusal {
                return Ok(Err(refusal));
            }
        }
        let result = self.app.propose_local(cmd).await?;
        if let Ok(Outcome::Reservation(r)) = &result {
            if r.split.is_some() {
                let vouch = FederationCommand::Vouch { transfer, insured: self.province.clone(), amount: r.amount() };
                self.fed_propose(vouch)
                    .await
                    .and_then(|v| v.map_err(status))
                    .map_err(|e| unavailable("the reservation is not vouched for yet", e))?;
            }
        }
        Ok(result)
    }

    /// Why a `Reserve` is refused, if it is: the certificate's directory key is not one of the
    /// person's (a handle borrowed for another person's filing), or the federation holds no
    /// filing of the claimed kind by this province covering the admission day.
    async fn claimed_filing_refusal(&self, cmd: &Command) -> Result<Option<DomainError>, Status> {
        let Command::Province(ProvinceCommand::Reserve { transfer, handle, person_key, claim }) = cmd else {
            return Ok(None);
        };
        let Ok(person) = medmesh_state::find_person(&self.app.view, CertificateKind::IdCard, handle) else {
            // Apply answers "not found" itself.
            return Ok(None);
        };
        if !self.directory_keys(&self.open_person(&person)?).contains(person_key) {
            tracing::warn!(target: "medmesh::access", transfer = %transfer, "reserve refused: the certificate is not the person's");
            return Ok(Some(DomainError::precondition(
                "person_key",
                "is not a certificate of the person the handle names",
            )));
        }
        if claim.filing == medmesh_state::FilingKind::Emergency {
            return Ok(None);
        }
        let filings = self.filings(person_key, &transfer.treatment).await?;
        if filings.iter().any(|f| f.insured == self.province && f.covers(claim.admitted) && f.kind == claim.filing) {
            return Ok(None);
        }
        tracing::warn!(target: "medmesh::access", transfer = %transfer, claimed = ?claim.filing, "reserve refused: the claimed filing is not on record");
        Ok(Some(DomainError::precondition(
            "claim.filing",
            format!(
                "this province filed no {:?} filing for the person in {} covering {}",
                claim.filing, transfer.treatment, claim.admitted
            ),
        )))
    }

    /// Settles a visit: locally, or as a two-phase transfer for a non-local visit.
    pub async fn settle(&self, cmd: ProvinceCommand) -> Result<Settlement, Status> {
        let mut attached = false;
        loop {
            match self.app.propose(cmd.clone()).await? {
                Ok(Outcome::Settlement(s)) => return Ok(s),
                Ok(Outcome::NonLocalAborted { reason, .. }) => return Err(aborted(&reason)),
                Ok(Outcome::TransferOpen(open)) => {
                    return self.drive_transfer(*open, Instant::now() + DRIVE_DEADLINE).await
                }
                Ok(other) => return Err(unexpected(other)),
                Err(e) if e.field == "filing" && !attached && self.federated() => {
                    // An inpatient admitted without a filing: the insured province may have
                    // filed since (late filing before discharge).
                    let (ProvinceCommand::Settle { institution, visit, .. }
                    | ProvinceCommand::SettleWithLines { institution, visit, .. }) = &cmd
                    else {
                        return Err(unexpected(&cmd));
                    };
                    let v = match answer(
                        self.app.query(Query::Visit { institution: institution.clone(), visit: visit.clone() }).await?,
                    )? {
                        Answer::Visit(v) => v,
                        other => return Err(unexpected(other)),
                    };
                    let nl = v.nonlocal.as_ref().ok_or_else(|| status(e.clone()))?;
                    let Some(kind) = self.filing_for(&nl.person_key, v.admitted).await? else {
                        return Err(status(e));
                    };
                    let attach = ProvinceCommand::AttachFiling {
                        institution: institution.clone(),
                        visit: visit.clone(),
                        filing: kind,
                    };
                    outcome(self.app.propose(attach).await?)?;
                    attached = true;
                }
                Err(e) => return Err(status(e)),
            }
        }
    }

    /// Drives a transfer to its decision and applies it here. Every step is idempotent, so the
    /// live call, a hospital's retry and the recovery pass may drive the same transfer.
    ///
    /// The first attempt on a fresh transfer takes the fast path: reserve, decide, then post
    /// and finish at once — four sequential replicated writes. Any failure falls back to the
    /// careful path ([`Mesh::drive_step`]), which reads where the transfer stands first.
    pub async fn drive_transfer(&self, open: OpenTransfer, deadline: Instant) -> Result<Settlement, Status> {
        let t = open.transfer.id.clone();
        let mut fast = (open.transfer.phase == TransferPhase::Reserving
            && self.seen.age(&t, open.transfer.started_at) < RESERVE_TIMEOUT)
            .then_some(open);
        let mut last = Status::unavailable("transfer not driven");
        while Instant::now() < deadline {
            let step = match fast.take() {
                Some(open) => self.fast_step(open).await,
                None => self.drive_step(&t).await,
            };
            match step {
                Ok(Some(done)) => {
                    self.seen.forget(&t);
                    return settled(done);
                }
                Ok(None) => continue,
                Err(s) => {
                    tracing::debug!(transfer = %t, error = %s.message(), "transfer step failed; retrying");
                    last = s;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        Err(Status::unavailable(format!(
            "serial: the non-local settlement is in progress ({}); retry with the same serial for its outcome",
            last.message()
        )))
    }

    fn reserve_command(open: &OpenTransfer) -> ProvinceCommand {
        ProvinceCommand::Reserve {
            transfer: open.transfer.id.clone(),
            handle: open.nonlocal.handle.clone(),
            person_key: open.nonlocal.person_key.clone(),
            claim: open.claim.clone(),
        }
    }

    /// Reserve at the insured province, decide, post and finish, without reading first.
    async fn fast_step(&self, open: OpenTransfer) -> Result<Option<Outcome>, Status> {
        let x = &open.transfer;
        let reserve = Self::reserve_command(&open);
        let answer = match self.remote.province_propose(&x.insured, &reserve).await? {
            Ok(Outcome::Reservation(r)) => reserve_answer(Ok(&r)),
            Ok(other) => return Err(unexpected(other)),
            Err(e) => reserve_answer(Err(&e)),
        };
        let (rec, split) = match answer {
            ReserveAnswer::Reserved(split) => {
                let amount = split.fund_total() + split.individual_account;
                (self.decide(&x.id, &x.insured, amount, Decision::Commit, "").await?, Some(split))
            }
            // The insured province refused: its reason is the hospital's answer.
            ReserveAnswer::Abort(reason) => {
                (self.decide(&x.id, &x.insured, Money::ZERO, Decision::Abort, &reason).await?, None)
            }
        };
        self.apply_decision(x, &reserve, rec, split).await.map(Some)
    }

    /// One careful step of a transfer: reads where it stands, then acts; `Some` once done.
    async fn drive_step(&self, t: &TransferId) -> Result<Option<Outcome>, Status> {
        let (x, claim, nl) = match answer(
            self.app
                .query(Query::TransferClaim { institution: t.institution.clone(), serial: t.serial.clone() })
                .await?,
        )? {
            Answer::TransferClaim { transfer, claim, nonlocal } => (transfer, claim, nonlocal),
            other => return Err(unexpected(other)),
        };
        let recorded = match x.phase {
            TransferPhase::Done(_) => None,
            _ => match answer(self.fed_query(Query::Decision { transfer: t.clone() }).await?)? {
                Answer::Decision(d) => d,
                other => return Err(unexpected(other)),
            },
        };
        let age_ms = u64::try_from(self.seen.age(t, x.started_at).as_millis()).unwrap_or(u64::MAX);
        let reserve = ProvinceCommand::Reserve {
            transfer: t.clone(),
            handle: nl.handle.clone(),
            person_key: nl.person_key.clone(),
            claim,
        };
        let rec = match next_action(&x, recorded.as_ref(), age_ms) {
            Action::Finished(d) => {
                // The idempotent finish returns the stored outcome.
                let finish = ProvinceCommand::FinishTransfer {
                    transfer: t.clone(),
                    decision: d,
                    reason: String::new(),
                    split: None,
                };
                return outcome(self.app.propose(finish).await?).map(Some);
            }
            Action::Apply(rec) => rec,
            Action::Decide { decision, amount, reason } => {
                self.decide(t, &x.insured, amount, decision, &reason).await?
            }
            Action::Reserve => {
                let answer = match self.remote.province_propose(&x.insured, &reserve).await? {
                    Ok(Outcome::Reservation(r)) => reserve_answer(Ok(&r)),
                    Ok(other) => return Err(unexpected(other)),
                    Err(e) => reserve_answer(Err(&e)),
                };
                match answer {
                    ReserveAnswer::Reserved(split) => {
                        // Recorded here first, so a later step can commit without asking the
                        // insured province again.
                        outcome(
                            self.app.propose(ProvinceCommand::TransferReserved { transfer: t.clone(), split }).await?,
                        )?;
                        return Ok(None);
                    }
                    ReserveAnswer::Abort(reason) => {
                        self.decide(t, &x.insured, Money::ZERO, Decision::Abort, &reason).await?
                    }
                }
            }
        };
        self.apply_decision(&x, &reserve, rec, None).await.map(Some)
    }

    /// Drives a transfer known only by its id (the recovery pass).
    async fn drive_by_id(&self, t: &TransferId, deadline: Instant) -> Result<Settlement, Status> {
        let mut last = Status::unavailable("transfer not driven");
        while Instant::now() < deadline {
            match self.drive_step(t).await {
                Ok(Some(done)) => {
                    self.seen.forget(t);
                    return settled(done);
                }
                Ok(None) => continue,
                Err(s) => {
                    last = s;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        Err(last)
    }

    async fn decide(
        &self,
        t: &TransferId,
        insured: &ProvinceCode,
        amount: Money,
        decision: Decision,
        reason: &str,
    ) -> Result<DecisionRecord, Status> {
        let cmd = FederationCommand::Decide {
            transfer: t.clone(),
            insured: insured.clone(),
            amount,
            decision,
            reason: reason.to_string(),
        };
        match outcome(self.fed_propose(cmd).await?)? {
            Outcome::Decided(rec) => Ok(rec),
            other => Err(unexpected(other)),
        }
    }

    /// Phase 2 on both sides from the recorded decision.
    async fn apply_decision(
        &self,
        x: &TreatmentTransfer,
        reserve: &ProvinceCommand,
        rec: DecisionRecord,
        mut split: Option<medmesh_settlement::Split>,
    ) -> Result<Outcome, Status> {
        let t = &x.id;
        let resolve = ProvinceCommand::ResolveReservation { transfer: t.clone(), decision: rec.decision };
        let insured_side = self.remote.province_propose(&x.insured, &resolve);
        if rec.decision == Decision::Commit && x.phase == TransferPhase::Reserving && split.is_none() {
            // Committed by another driver whose reservation answer this replica has not
            // recorded: read the reservation (the reserve is idempotent) first.
            if let Ok(Outcome::Reservation(Reservation { split: Some(s), .. })) =
                self.remote.province_propose(&x.insured, reserve).await?
            {
                split = Some(s);
            }
        }
        let finish = ProvinceCommand::FinishTransfer {
            transfer: t.clone(),
            decision: rec.decision,
            reason: rec.reason.clone(),
            split,
        };
        let (insured_result, here) = tokio::join!(insured_side, self.app.propose(finish));
        if let Err(s) = insured_result {
            // The insured province's recovery pass resolves its reservation from the decision.
            tracing::debug!(transfer = %t, error = %s.message(), "phase 2 at the insured province deferred");
        }
        outcome(here?)
    }

    /// Reverses a settlement: locally, or through the federation and the insured province for
    /// a non-local one.
    pub async fn reverse(&self, cmd: ProvinceCommand) -> Result<Settlement, Status> {
        match outcome(self.app.propose(cmd.clone()).await?)? {
            Outcome::Settlement(s) => Ok(s),
            Outcome::ReversalOpen(s) => {
                let ProvinceCommand::Reverse { serial, .. } = &cmd else { return Err(unexpected(&cmd)) };
                self.drive_reversal(serial, s, Instant::now() + DRIVE_DEADLINE).await
            }
            other => Err(unexpected(other)),
        }
    }

    async fn drive_reversal(&self, reversal: &Serial, s: Settlement, deadline: Instant) -> Result<Settlement, Status> {
        let mut last = Status::unavailable("reversal not driven");
        while Instant::now() < deadline {
            match self.reversal_step(reversal, &s).await {
                Ok(s) => return Ok(s),
                Err(st) if st.code() == tonic::Code::Unavailable => {
                    last = st;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(st) => return Err(st),
            }
        }
        Err(Status::unavailable(format!(
            "serial: the reversal is in progress ({}); retry with the same serial for its outcome",
            last.message()
        )))
    }

    async fn reversal_step(&self, reversal: &Serial, s: &Settlement) -> Result<Settlement, Status> {
        let insured = s.insured.clone().ok_or_else(|| Status::internal("reversal of a local settlement"))?;
        let t = TransferId {
            treatment: self.province.clone(),
            institution: s.institution.clone(),
            serial: s.serial.clone(),
        };
        outcome(
            self.fed_propose(FederationCommand::Reverse { transfer: t.clone(), reversal: reversal.clone() }).await?,
        )?;
        outcome(self.remote.province_propose(&insured, &ProvinceCommand::UnpostReservation { transfer: t }).await?)?;
        let finish = ProvinceCommand::FinishReversal { institution: s.institution.clone(), serial: reversal.clone() };
        match outcome(self.app.propose(finish).await?)? {
            Outcome::Settlement(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// A quote for a non-local visit from its insured province (nothing is reserved).
    pub async fn remote_quote(
        &self,
        claim: medmesh_state::RemoteClaim,
        nl: NonLocalVisit,
        institution: medmesh_types::InstitutionId,
        visit: Serial,
    ) -> Result<medmesh_settlement::Split, Status> {
        let transfer = TransferId { treatment: self.province.clone(), institution, serial: visit };
        let q = Query::RemoteQuote { handle: nl.handle, claim, now: now(), transfer };
        match answer(self.remote.province_query(&nl.insured, &q).await?)? {
            Answer::Quote(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    fn leads(&self) -> bool {
        self.app.leader().is_some_and(|(id, _)| id == self.app.id)
    }

    /// One recovery pass on this group's leader: drives open transfers and reversals (as the
    /// treatment province), resolves reservations without a decision (as the insured province)
    /// and copies new shared violations.
    pub async fn recover_once(&self) -> Result<(), Status> {
        if !self.leads() {
            // Only the leader drives transfers: a former leader's count would be stale.
            crate::metrics::get().transfers_open(0);
        }
        if !self.leads() || self.is_federation() || !self.federated() {
            return Ok(());
        }
        if let Answer::Transfers(open) = answer(self.app.query(Query::OpenTransfers { limit: 256 }).await?)? {
            crate::metrics::get().transfers_open(open.len());
            for x in open.into_iter().filter(|x| self.seen.age(&x.id, x.started_at) > Duration::from_secs(2)) {
                let t = x.id.clone();
                if let Err(s) = self.drive_by_id(&t, Instant::now() + Duration::from_secs(3)).await {
                    if s.code() == tonic::Code::Unavailable {
                        tracing::info!(transfer = %t, error = %s.message(), "in-doubt transfer not resolved yet");
                    }
                }
            }
        }
        if let Answer::Reversals(open) = answer(self.app.query(Query::OpenReversals { limit: 256 }).await?)? {
            for (reversal, s) in open {
                let _ = self.drive_reversal(&reversal, s, Instant::now() + Duration::from_secs(3)).await;
            }
        }
        if let Answer::Reservations(pending) = answer(self.app.query(Query::PendingReservations { limit: 256 }).await?)?
        {
            let due = |r: &Reservation| {
                void_due(r, u64::try_from(self.seen.age(&r.transfer, r.reserved_at).as_millis()).unwrap_or(u64::MAX))
            };
            for r in pending.into_iter().filter(due) {
                let t = r.transfer.clone();
                let rec = match answer(self.fed_query(Query::Decision { transfer: t.clone() }).await?)? {
                    Answer::Decision(Some(rec)) => rec,
                    Answer::Decision(None) => {
                        self.decide(&t, &self.province, r.amount(), Decision::Abort, "no decision in time").await?
                    }
                    other => return Err(unexpected(other)),
                };
                tracing::info!(transfer = %t, decision = ?rec.decision, "in-doubt reservation resolved");
                outcome(
                    self.app
                        .propose(ProvinceCommand::ResolveReservation { transfer: t.clone(), decision: rec.decision })
                        .await?,
                )?;
                self.seen.forget(&t);
            }
        }
        self.publish_outbox().await?;
        self.sync_shared().await?;
        self.receive_reports().await
    }

    /// Takes what the federation holds in this province's report inbox (issue 13.2): reports
    /// received elsewhere about its institutions, and progress on reports it referred.
    async fn receive_reports(&self) -> Result<(), Status> {
        let after: u64 = medmesh_state::load(&self.app.view, keys::REPORT_INBOX_CURSOR).unwrap_or(0);
        let q = Query::ReportInbox { province: self.province.clone(), after, limit: 256 };
        match answer(self.fed_query(q).await?)? {
            Answer::ReportInbox(items) if items.is_empty() => Ok(()),
            Answer::ReportInbox(items) => {
                let cmd = ProvinceCommand::ReceiveReports { province: self.province.clone(), items };
                outcome(self.app.propose(cmd).await?).map(|_| ())
            }
            other => Err(unexpected(other)),
        }
    }

    /// Publishes what executed cases put in the outbox (points, discipline entries, case
    /// outcomes) to the federation's shared log, then drops it here. Each federation command
    /// is idempotent, so publishing again after a crash changes nothing there.
    pub async fn publish_outbox(&self) -> Result<(), Status> {
        if self.is_federation() || !self.federated() {
            return Ok(());
        }
        let items = match answer(self.app.query(Query::Outbox { limit: 256 }).await?)? {
            Answer::SharedLog(items) => items,
            other => return Err(unexpected(other)),
        };
        let Some(through) = items.last().map(|(seq, _)| *seq) else { return Ok(()) };
        for (_, item) in items {
            let cmd = match item {
                SharedItem::Violation(v) => FederationCommand::RecordViolation(v),
                SharedItem::Discipline(e) => FederationCommand::RecordDiscipline(e),
                SharedItem::CaseOutcome(o) => FederationCommand::RecordCaseOutcome(o),
                SharedItem::Rule(r) => FederationCommand::PutRule(r),
                SharedItem::CreditLift(l) => FederationCommand::RecordCreditLift(l),
                SharedItem::DisciplineLift(l) => FederationCommand::RecordDisciplineLift(l),
                SharedItem::ReportMessage(m) => FederationCommand::SendReport(m),
                SharedItem::Commitment(c) => FederationCommand::RecordCommitment(c),
                SharedItem::Incentive(i) => FederationCommand::RecordIncentive(i),
                SharedItem::DeclarationReview(r) => FederationCommand::RecordDeclarationReview(r),
                SharedItem::Aggregate(a) => {
                    FederationCommand::RecordAggregate { province: self.province.clone(), aggregate: a }
                }
            };
            if let Err(e) = self.fed_propose(cmd).await? {
                // Loud: a refused item stays in the outbox (and holds back those after it)
                // until an operator looks; it is never dropped silently.
                tracing::error!(error = %e, "the federation refused an outbox item; it stays in the outbox");
                return Err(status(e));
            }
        }
        outcome(self.app.propose(ProvinceCommand::Published { through }).await?)?;
        Ok(())
    }

    async fn sync_shared(&self) -> Result<(), Status> {
        let cursor = match answer(self.app.query(Query::SharedCursor).await?)? {
            Answer::Cursor(c) => c,
            other => return Err(unexpected(other)),
        };
        if let Answer::SharedLog(items) = answer(self.fed_query(Query::SharedLog { after: cursor, limit: 512 }).await?)?
        {
            if !items.is_empty() {
                outcome(self.app.propose(ProvinceCommand::SyncShared { items }).await?)?;
            }
        }
        Ok(())
    }

    /// Registers this province's endpoints with the federation (until it succeeds), then runs
    /// the recovery pass every [`RECOVERY_EVERY`] for as long as the replica runs.
    pub fn spawn_background(self: Arc<Self>) {
        if self.is_federation() || !self.federated() {
            return;
        }
        tokio::spawn(async move {
            let entry = ProvinceEntry { province: self.province.clone(), endpoints: self.endpoints.clone() };
            loop {
                match self.remote.fed_propose(&FederationCommand::RegisterProvince(entry.clone())).await {
                    Ok(Ok(_)) => break,
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "the federation refused this province's registration");
                        break;
                    }
                    Err(s) => tracing::debug!(error = %s.message(), "federation not reachable yet"),
                }
                tokio::time::sleep(RECOVERY_EVERY).await;
            }
            tracing::info!(province = %self.province, "registered with the federation");
            let mut anchored = 0u64;
            let mut last_anchor = Instant::now();
            loop {
                tokio::time::sleep(RECOVERY_EVERY).await;
                if let Err(s) = self.recover_once().await {
                    tracing::debug!(error = %s.message(), "recovery pass incomplete");
                }
                if let Err(s) = self.follow_prepaid().await {
                    tracing::debug!(error = %s.message(), "prepaid account not followed yet");
                }
                if last_anchor.elapsed() >= ANCHOR_EVERY {
                    last_anchor = Instant::now();
                    match self.anchor(anchored).await {
                        Ok(Some(seq)) => anchored = seq,
                        Ok(None) => {}
                        Err(s) => tracing::debug!(error = %s.message(), "audit chain not anchored yet"),
                    }
                }
            }
        });
    }

    /// On the leader: brings the pool's record of this province's prepaid account up to the
    /// federation's (issue 12.5): the fund's balance falls by each top-up once, whichever
    /// replica the agency topped up through, and the ledger shows what settled clearing months
    /// paid and received. One read of the federation per pass; nothing is proposed while the
    /// two agree.
    pub async fn follow_prepaid(&self) -> Result<(), Status> {
        if !self.leads() || self.is_federation() || !self.federated() {
            return Ok(());
        }
        let account = match answer(self.fed_query(Query::Prepaid).await?)? {
            Answer::Prepaid(accounts) => accounts.into_iter().find(|a| a.province == self.province),
            other => return Err(unexpected(other)),
        };
        let Some(a) = account else { return Ok(()) };
        // This replica's own ledger record is enough: an older one only proposes a reading
        // apply then finds already recorded.
        let seen: FundLedger = medmesh_state::load(&self.app.view, keys::FUND).unwrap_or_default();
        if a.topped_up > seen.prepaid_topped_up || a.settled_months > seen.clearing_months_seen {
            outcome(self.app.propose(a.followed()).await?)?;
            tracing::info!(topped_up = %a.topped_up, settled_months = a.settled_months, "the pool follows the federation's prepaid account");
        }
        Ok(())
    }

    /// On the leader: records this province's audit-chain head at the federation if it moved
    /// past `anchored`; returns the sequence number anchored.
    pub async fn anchor(&self, anchored: u64) -> Result<Option<u64>, Status> {
        if !self.leads() {
            return Ok(None);
        }
        let head = match medmesh_state::run_query(&self.app.view, &Query::AuditHead).map_err(status)? {
            Answer::AuditHead(Some(h)) if h.seq > anchored => h,
            Answer::AuditHead(_) => return Ok(None),
            other => return Err(unexpected(other)),
        };
        let seq = head.seq;
        match self.remote.fed_propose(&FederationCommand::Anchor { province: self.province.clone(), head }).await? {
            Ok(_) => Ok(Some(seq)),
            Err(e) => {
                // Another hash at a sequence number already anchored: this chain is not the one
                // the federation saw. Loud, and never retried into silence.
                tracing::error!(error = %e, seq, "the federation refused this province's audit anchor");
                Err(status(e))
            }
        }
    }
}
