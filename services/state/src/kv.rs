//! The key-value view apply works on, and the write set it returns.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Writes of one command or batch: key to new value, `None` deletes. Ordered, so the bytes
/// written are the same on every replica.
pub type WriteSet = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Read access to committed state.
pub trait KvRead {
    /// The value at `key`.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    /// Every pair with `start <= key < end`, in key order, at most `limit`.
    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)>;
}

/// An in-memory store, for tests and simulations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemKv(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl MemKv {
    /// Applies a write set.
    pub fn write(&mut self, writes: WriteSet) {
        for (k, v) in writes {
            match v {
                Some(v) => {
                    self.0.insert(k, v);
                }
                None => {
                    self.0.remove(&k);
                }
            }
        }
    }
}

impl KvRead for MemKv {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(key).cloned()
    }
    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.0.range(start.to_vec()..end.to_vec()).take(limit).map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// A transaction: reads see its own writes first, then the base.
pub struct Tx<'a> {
    base: &'a dyn KvRead,
    writes: WriteSet,
}

impl<'a> Tx<'a> {
    /// A transaction over `base`.
    pub fn new(base: &'a dyn KvRead) -> Tx<'a> {
        Tx { base, writes: WriteSet::new() }
    }

    /// The writes made so far.
    pub fn into_writes(self) -> WriteSet {
        self.writes
    }

    /// Adds writes (of a committed inner transaction).
    pub fn merge(&mut self, writes: WriteSet) {
        self.writes.extend(writes);
    }

    /// Reads and decodes a record.
    pub fn load<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.get(key.as_bytes()).map(|v| decode(&v))
    }

    /// Encodes and writes a record.
    pub fn store<T: Serialize>(&mut self, key: &str, value: &T) {
        self.writes.insert(key.as_bytes().to_vec(), Some(encode(value)));
    }

    /// Deletes a record.
    pub fn put_delete(&mut self, key: &str) {
        self.writes.insert(key.as_bytes().to_vec(), None);
    }

    /// Writes raw bytes.
    pub fn put_raw(&mut self, key: &str, value: Vec<u8>) {
        self.writes.insert(key.as_bytes().to_vec(), Some(value));
    }
}

impl KvRead for Tx<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(v) => v.clone(),
            None => self.base.get(key),
        }
    }
    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = self.base.scan(start, end, usize::MAX).into_iter().collect();
        for (k, v) in self.writes.range(start.to_vec()..end.to_vec()) {
            match v {
                Some(v) => {
                    merged.insert(k.clone(), v.clone());
                }
                None => {
                    merged.remove(k);
                }
            }
        }
        merged.into_iter().take(limit).collect()
    }
}

/// Encodes a record (bincode: compact and deterministic for our types).
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serialize(value).expect("records always encode")
}

/// Decodes a record written by [`encode`]. A record that does not decode means the store is
/// corrupt; that is not recoverable by a request, so it stops the replica.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> T {
    bincode::deserialize(bytes).expect("stored record decodes")
}

/// Puts an item in the outbox, for the leader to send to the federation.
pub(crate) fn outbox(tx: &mut Tx<'_>, item: crate::shared::SharedItem) {
    let seq: u64 = tx.load(keys::OUTBOX_SEQ).unwrap_or(0) + 1;
    tx.store(keys::OUTBOX_SEQ, &seq);
    tx.store(&keys::outbox(seq), &item);
}

/// Reads and decodes a record from any view.
pub fn load<T: DeserializeOwned>(kv: &dyn KvRead, key: &str) -> Option<T> {
    kv.get(key.as_bytes()).map(|v| decode(&v))
}

/// Every pair whose key starts with `prefix`, in key order, at most `limit`.
pub fn scan_prefix(kv: &dyn KvRead, prefix: &str, limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    kv.scan(prefix.as_bytes(), &end, limit)
}

/// Key layout of the state column family. Parts are joined with `/`; identifiers never contain
/// `/` (they are validated), so keys never collide.
pub mod keys {
    use medmesh_types::{Date, InstitutionId, ItemCode, KeyedHash, PersonnelCode, ProvinceCode, Serial};

    use medmesh_supervision::credit::Party;

    use crate::shared::{DisciplineSubject, TransferId};

    /// The time of the last applied entry (kept monotonic).
    pub const TIME: &str = "~meta/time";
    /// The audit chain's head.
    pub const AUDIT_HEAD: &str = "~audit/head";
    /// Prefix of the monitoring rules (latest version by id).
    pub const RULES: &str = "rule/";
    /// The enabled rules' latest versions, by id, in one record (what settlement reads).
    pub const RULES_IN_FORCE: &str = "~rules/enabled";
    /// The rules in force's version: a hash of that record's content.
    pub const RULES_VERSION: &str = "~rules/version";
    /// A monitoring rule's latest version.
    pub fn rule(id: &str) -> String {
        format!("rule/{id}")
    }
    /// One version of a monitoring rule.
    pub fn rule_version(id: &str, version: u32) -> String {
        format!("rulev/{id}/{version:010}")
    }
    /// The knowledge base's version: a hash chain over every entry recorded.
    pub const KB_VERSION: &str = "~kb/version";
    /// A knowledge-base diagnosis.
    pub fn kb_diagnosis(code: &str) -> String {
        format!("kbdx/{code}")
    }
    /// A knowledge-base item.
    pub fn kb_item(code: &str) -> String {
        format!("kbitem/{code}")
    }
    /// The last alert's sequence number.
    pub const ALERT_SEQ: &str = "~alertseq";
    /// An alert of the review queue.
    pub fn alert(seq: u64) -> String {
        format!("alert/{seq:020}")
    }
    /// The care-index key of a reserved non-local stay (removed when it is voided or unposted).
    pub fn reservation_care(t: &TransferId) -> String {
        format!("rsvcare/{}", t.key())
    }
    /// A settlement a post-payment scan of a rule version already raised alerts on.
    pub fn scan_hit(rule: &str, version: u32, inst: &InstitutionId, serial: &Serial) -> String {
        format!("scanhit/{rule}/{version}/{inst}/{serial}")
    }
    /// A case.
    pub fn case(id: &str) -> String {
        format!("case/{id}")
    }
    /// Prefix of the cases.
    pub const CASES: &str = "case/";
    /// An inspection plan and its draw.
    pub fn inspection(id: &str) -> String {
        format!("insp/{id}")
    }
    /// The province's case policy.
    pub const CASE_POLICY: &str = "~casepolicy";
    /// The case an alert opened.
    pub fn alert_case(seq: u64) -> String {
        format!("alertcase/{seq:020}")
    }
    /// A settlement whose fund share a case recovered (it can no longer be reversed).
    pub fn recovered_settlement(inst: &InstitutionId, serial: &Serial) -> String {
        format!("recset/{inst}/{serial}")
    }
    /// An institution's agreement held by a case.
    pub fn agreement_hold(inst: &InstitutionId) -> String {
        format!("hold/{inst}")
    }
    /// The last outbox item's sequence number.
    pub const OUTBOX_SEQ: &str = "~outbox/seq";
    /// An item waiting to reach the federation's shared log.
    pub fn outbox(seq: u64) -> String {
        format!("outbox/{seq:020}")
    }
    /// A case outcome seen here (this province's or another's), by institution.
    pub fn case_outcome(inst: &InstitutionId, province: &ProvinceCode, case: &str) -> String {
        format!("outcome/{inst}/{province}/{case}")
    }
    /// A case outcome's credit entry lifted on appeal, by institution.
    pub fn credit_lift(inst: &InstitutionId, province: &ProvinceCode, case: &str) -> String {
        format!("creditlift/{inst}/{province}/{case}")
    }
    /// Prefix of an institution's lifted credit entries.
    pub fn credit_lifts(inst: &InstitutionId) -> String {
        format!("creditlift/{inst}/")
    }
    /// Federation: a lifted credit entry.
    pub fn fed_credit_lift(province: &ProvinceCode, case: &str) -> String {
        format!("fcreditlift/{province}/{case}")
    }
    /// Prefix of an institution's case outcomes.
    pub fn case_outcomes(inst: &InstitutionId) -> String {
        format!("outcome/{inst}/")
    }
    /// Federation: a case outcome.
    pub fn fed_case_outcome(province: &ProvinceCode, case: &str) -> String {
        format!("fcase/{province}/{case}")
    }
    /// A day as a fixed-width, ordered key part (days since 1970 plus 100,000).
    fn day_key(d: Date) -> String {
        format!("{:06}", i64::from(d.days()) + 100_000)
    }
    /// A settled visit in the person's care index.
    pub fn care(person: &KeyedHash, admitted: Date, inst: &InstitutionId, visit: &Serial) -> String {
        format!("care/{person}/{}/{inst}/{visit}", day_key(admitted))
    }
    /// Where a person's care admitted on or after `day` starts.
    pub fn care_from(person: &KeyedHash, day: Date) -> String {
        format!("care/{person}/{}/", day_key(day))
    }
    /// Prefix of the audit chain's entries.
    pub const AUDIT: &str = "~audit/e/";
    /// Audit entry `seq`.
    pub fn audit(seq: u64) -> String {
        format!("{AUDIT}{seq:020}")
    }
    /// A change of the register record stored at `record_key`, by audit sequence number.
    pub fn history(record_key: &str, seq: u64) -> String {
        format!("hist/{record_key}/{seq:020}")
    }
    /// Prefix of the changes of the record stored at `record_key`.
    pub fn histories(record_key: &str) -> String {
        format!("hist/{record_key}/")
    }
    /// Federation: the anchor of `province`'s audit chain at `seq`.
    pub fn fed_anchor(province: &ProvinceCode, seq: u64) -> String {
        format!("fanchor/{province}/{seq:020}")
    }
    /// Federation: prefix of `province`'s anchors.
    pub fn fed_anchors(province: &ProvinceCode) -> String {
        format!("fanchor/{province}/")
    }
    /// The policy of this province.
    pub const POLICY: &str = "policy";
    /// The fund ledger.
    pub const FUND: &str = "fund";

    /// An insured person.
    pub fn person(key: &KeyedHash) -> String {
        format!("person/{key}")
    }
    /// Certificate index: (kind, keyed hash of the number) to the person's key.
    pub fn cert(kind: &str, key: &KeyedHash) -> String {
        format!("cert/{kind}/{key}")
    }
    /// An institution.
    pub fn institution(id: &InstitutionId) -> String {
        format!("inst/{id}")
    }
    /// A person of the medical staff.
    pub fn personnel(code: &PersonnelCode) -> String {
        format!("staff/{code}")
    }
    /// A catalogue entry.
    pub fn item(code: &ItemCode) -> String {
        format!("item/{code}")
    }
    /// Accumulators of a person in a year.
    pub fn accumulators(key: &KeyedHash, year: i32) -> String {
        format!("acc/{key}/{year}")
    }
    /// A visit.
    pub fn visit(inst: &InstitutionId, serial: &Serial) -> String {
        format!("visit/{inst}/{serial}")
    }
    /// A settlement.
    pub fn settlement(inst: &InstitutionId, serial: &Serial) -> String {
        format!("stl/{inst}/{serial}")
    }
    /// Statement index entry of a settlement.
    pub fn statement(inst: &InstitutionId, date: Date, serial: &Serial) -> String {
        format!("sti/{inst}/{date}/{serial}")
    }
    /// Statement index prefix of an institution and a date.
    pub fn statement_day(inst: &InstitutionId, date: Date) -> String {
        format!("sti/{inst}/{date}/")
    }
    /// What the fund owes an institution for a month ([`medmesh_payment::MonthAccount`]).
    pub fn month_account(inst: &InstitutionId, period: medmesh_payment::Period) -> String {
        format!("imonth/{inst}/{}", period.key())
    }
    /// The pooling fund's expenditure (pooling and critical illness) of a month.
    pub fn fund_month(period: medmesh_payment::Period) -> String {
        format!("fundm/{}", period.key())
    }
    /// The fund ledger as it stood at the end of a month (kept when the next month's first
    /// entry is applied; [`crate::disclosure`]).
    pub fn fund_close(period: medmesh_payment::Period) -> String {
        format!("fundclose/{}", period.key())
    }
    /// The fund ledger as it stood at the end of a day (kept when the next day's first entry
    /// is applied; [`crate::aggregate`]).
    pub fn fund_day_close(day: Date) -> String {
        format!("fundday/{day}")
    }
    /// The tally of a day ([`crate::tally`]).
    pub fn tally_day(day: Date) -> String {
        format!("tallyd/{day}")
    }
    /// Prefix of the tallies of a month's days.
    pub fn tally_days(period: medmesh_payment::Period) -> String {
        format!("tallyd/{period}-")
    }
    /// The last aggregate of a period (`YYYY-MM-DD` or `YYYY-MM`) this province published.
    pub fn aggregate_published(period: &str) -> String {
        format!("aggpub/{period}")
    }
    /// Federation: the latest aggregate of a period a province published.
    pub fn fed_aggregate_latest(period: &str, province: &ProvinceCode) -> String {
        format!("faggl/{period}/{province}")
    }
    /// Federation: prefix of the latest aggregates of a period.
    pub fn fed_aggregates_latest(period: &str) -> String {
        format!("faggl/{period}/")
    }
    /// Federation: one version of a province's aggregate of a period.
    pub fn fed_aggregate(period: &str, province: &ProvinceCode, version: u32) -> String {
        format!("fagg/{period}/{province}/{version:010}")
    }
    /// The province's working-day calendar.
    pub const WORK_CALENDAR: &str = "~workcalendar";
    /// A flight inspection, by id.
    pub fn flight(id: &str) -> String {
        format!("flight/{id}")
    }
    /// Prefix of the flight inspections.
    pub const FLIGHT_PREFIX: &str = "flight/";
    /// The province's report policy (issue 13.2).
    pub const REPORT_POLICY: &str = "~reportpolicy";
    /// The last report number given.
    pub const REPORT_SEQ: &str = "~reportseq";
    /// A report, by id.
    pub fn report(id: &str) -> String {
        format!("report/{id}")
    }
    /// Prefix of the reports.
    pub const REPORT_PREFIX: &str = "report/";
    /// The report a channel's serial submitted.
    pub fn report_serial(serial: &str) -> String {
        format!("reportserial/{serial}")
    }
    /// The report a receipt code (by its keyed hash) is for.
    pub fn report_receipt(hash: &medmesh_types::KeyedHash) -> String {
        format!("reportreceipt/{}", hash.as_str())
    }
    /// The report here a referral from province `by` (its report `origin_id`) became.
    pub fn report_referral(by: &ProvinceCode, origin_id: &str) -> String {
        format!("reportref/{by}/{origin_id}")
    }
    /// An institution's notification-commitment recorded by `province` (its own, or a resolved
    /// one the shared log copied).
    pub fn commitment(party: &Party, province: &ProvinceCode, id: &str) -> String {
        format!("pledge/{}/{province}/{id}", party.key())
    }
    /// Prefix of a party's commitments.
    pub fn commitments(party: &Party) -> String {
        format!("pledge/{}/", party.key())
    }
    /// The party of this province's commitment `id` (ids are unique in a province, as the
    /// federation shares by province and id).
    pub fn commitment_id(id: &str) -> String {
        format!("pledgeid/{id}")
    }
    /// An entry of the joint incentive list, by party (province and federation copies).
    pub fn incentive(party: &Party, province: &ProvinceCode, id: &str) -> String {
        format!("incent/{}/{province}/{id}", party.key())
    }
    /// Prefix of a party's joint-incentive entries.
    pub fn incentives(party: &Party) -> String {
        format!("incent/{}/", party.key())
    }
    /// The party of this province's incentive entry `id`.
    pub fn incentive_id(id: &str) -> String {
        format!("incentid/{id}")
    }
    /// A reviewed declaration of an institution's month, as the credit model reads it
    /// (province and federation copies).
    pub fn declaration_review(inst: &InstitutionId, province: &ProvinceCode, period: &str) -> String {
        format!("declrev/{inst}/{province}/{period}")
    }
    /// Prefix of an institution's reviewed declarations.
    pub fn declaration_reviews(inst: &InstitutionId) -> String {
        format!("declrev/{inst}/")
    }
    /// Federation: a reviewed declaration shared, by province, institution and month.
    pub fn fed_declaration_review(province: &ProvinceCode, inst: &InstitutionId, period: &str) -> String {
        format!("fdeclrev/{province}/{inst}/{period}")
    }
    /// Federation: an incentive entry shared, by province and id.
    pub fn fed_incentive(province: &ProvinceCode, id: &str) -> String {
        format!("fincent/{province}/{id}")
    }
    /// The last sequence taken from this province's report inbox at the federation.
    pub const REPORT_INBOX_CURSOR: &str = "~reportinbox/cursor";
    /// An institution's declaration of a month.
    pub fn declaration(inst: &InstitutionId, period: medmesh_payment::Period) -> String {
        format!("decl/{inst}/{}", period.key())
    }
    /// Prefix of an institution's declarations.
    pub fn declarations(inst: &InstitutionId) -> String {
        format!("decl/{inst}/")
    }
    /// A payment to an institution.
    pub fn payment(inst: &InstitutionId, reference: &Serial) -> String {
        format!("paid/{inst}/{reference}")
    }
    /// A person's individual account credited for a month (the crediting serial).
    pub fn account_credit(person: &KeyedHash, period: medmesh_payment::Period) -> String {
        format!("acctcredit/{person}/{}", period.key())
    }
    /// An institution's budget of a year.
    pub fn budget(inst: &InstitutionId, year: i32) -> String {
        format!("budget/{inst}/{year}")
    }
    /// The province's prepayment policy.
    pub const PREPAYMENT_POLICY: &str = "~prepaypolicy";
    /// A prepayment to an institution.
    pub fn prepayment(inst: &InstitutionId, reference: &Serial) -> String {
        format!("prepay/{inst}/{reference}")
    }
    /// Prefix of an institution's prepayments.
    pub fn prepayments(inst: &InstitutionId) -> String {
        format!("prepay/{inst}/")
    }
    /// An institution's prepayment account.
    pub fn prepayment_account(inst: &InstitutionId) -> String {
        format!("prepaid/{inst}")
    }
    /// Idempotency record of an institution's serial.
    pub fn idempotency(scope: &str, serial: &Serial) -> String {
        format!("idem/{scope}/{serial}")
    }
    /// A violation scored against personnel.
    pub fn violation(code: &PersonnelCode, id: &str) -> String {
        format!("viol/{code}/{id}")
    }
    /// Prefix of a person's violations.
    pub fn violations(code: &PersonnelCode) -> String {
        format!("viol/{code}/")
    }
    /// What the fund owes an institution.
    pub fn payable(inst: &InstitutionId) -> String {
        format!("payable/{inst}")
    }

    /// Treatment province: a non-local settlement's transfer, by the hospital's key.
    pub fn transfer(inst: &InstitutionId, serial: &Serial) -> String {
        format!("xfer/{inst}/{serial}")
    }
    /// Treatment province: index of transfers not yet done.
    pub fn open_transfer(inst: &InstitutionId, serial: &Serial) -> String {
        format!("xopen/{inst}/{serial}")
    }
    /// Prefix of [`open_transfer`].
    pub const OPEN_TRANSFERS: &str = "xopen/";
    /// Insured province: the reservation of a transfer.
    pub fn reservation(t: &TransferId) -> String {
        format!("rsv/{}", t.key())
    }
    /// Insured province: index of pending reservations.
    pub fn pending_reservation(t: &TransferId) -> String {
        format!("rsvopen/{}", t.key())
    }
    /// Prefix of [`pending_reservation`].
    pub const PENDING_RESERVATIONS: &str = "rsvopen/";
    /// Insured province: the person a reservation holds (kept apart from the reservation, which
    /// is sent back to the treatment province).
    pub fn reservation_person(t: &TransferId) -> String {
        format!("rsvperson/{}", t.key())
    }
    /// Treatment province: a non-local reversal, by its serial.
    pub fn reversal(inst: &InstitutionId, serial: &Serial) -> String {
        format!("xrev/{inst}/{serial}")
    }
    /// Treatment province: index of reversals not yet done.
    pub fn open_reversal(inst: &InstitutionId, serial: &Serial) -> String {
        format!("xropen/{inst}/{serial}")
    }
    /// Prefix of [`open_reversal`].
    pub const OPEN_REVERSALS: &str = "xropen/";
    /// Either side: a non-local transfer committed here in a month (by this group's log time),
    /// for reconciliation with the federation's lines.
    pub fn nonlocal_month(month: &str, t: &TransferId) -> String {
        format!("nlm/{month}/{}", t.key())
    }
    /// Prefix of [`nonlocal_month`] for one month.
    pub fn nonlocal_months(month: &str) -> String {
        format!("nlm/{month}/")
    }
    /// Insured province: what it owes a treatment province.
    pub fn owed(treatment: &ProvinceCode) -> String {
        format!("owed/{treatment}")
    }
    /// Province: sequence of the last shared-log entry copied from the federation.
    pub const SHARED_CURSOR: &str = "~shared/cursor";
    /// A joint-discipline entry, by subject.
    pub fn discipline(subject: &DisciplineSubject, id: &str) -> String {
        format!("{}{id}", disciplines(subject))
    }
    /// Index of a subject's joint-discipline entries by their last day in force, so that the
    /// entries in force on a day are found without reading the expired ones.
    pub fn discipline_until(subject: &DisciplineSubject, until: Date, id: &str) -> String {
        format!("{}{until}/{id}", disciplines_until(subject))
    }
    /// Prefix of [`discipline_until`] for a subject.
    pub fn disciplines_until(subject: &DisciplineSubject) -> String {
        match subject {
            DisciplineSubject::Institution(i) => format!("discu/inst/{i}/"),
            DisciplineSubject::Person(k) => format!("discu/person/{k}/"),
            DisciplineSubject::Enterprise(e) => format!("discu/ent/{e}/"),
        }
    }
    /// The lift of a joint-discipline entry, by subject (province and federation).
    pub fn discipline_lift(subject: &DisciplineSubject, id: &str) -> String {
        match subject {
            DisciplineSubject::Institution(i) => format!("discl/inst/{i}/{id}"),
            DisciplineSubject::Person(k) => format!("discl/person/{k}/{id}"),
            DisciplineSubject::Enterprise(e) => format!("discl/ent/{e}/{id}"),
        }
    }
    /// Prefix of a subject's joint-discipline entries.
    pub fn disciplines(subject: &DisciplineSubject) -> String {
        match subject {
            DisciplineSubject::Institution(i) => format!("disc/inst/{i}/"),
            DisciplineSubject::Person(k) => format!("disc/person/{k}/"),
            DisciplineSubject::Enterprise(e) => format!("disc/ent/{e}/"),
        }
    }

    /// Federation: the insured province of a directory key.
    pub fn fed_directory(key: &str) -> String {
        format!("fdir/{key}")
    }
    /// Federation: a province's endpoints.
    pub fn fed_province(p: &ProvinceCode) -> String {
        format!("fprov/{p}")
    }
    /// Prefix of [`fed_province`].
    pub const FED_PROVINCES: &str = "fprov/";
    /// Federation: a filing, by person and treatment province.
    pub fn fed_filing(person_key: &str, treatment: &ProvinceCode, insured: &ProvinceCode, id: &Serial) -> String {
        format!("ffile/{person_key}/{treatment}/{insured}/{id}")
    }
    /// Federation: prefix of a person's filings for a treatment province.
    pub fn fed_filings(person_key: &str, treatment: &ProvinceCode) -> String {
        format!("ffile/{person_key}/{treatment}/")
    }
    /// Federation: a filing by the insured province's serial (idempotency).
    pub fn fed_filing_id(insured: &ProvinceCode, id: &Serial) -> String {
        format!("ffid/{insured}/{id}")
    }
    /// Federation: the decision of a transfer.
    pub fn fed_decision(t: &TransferId) -> String {
        format!("fdec/{}", t.key())
    }
    /// Federation: the amount the insured province reserved for a transfer.
    pub fn fed_vouch(t: &TransferId) -> String {
        format!("fvch/{}", t.key())
    }
    /// Federation: what an insured province owes a treatment province.
    pub fn fed_position(insured: &ProvinceCode, treatment: &ProvinceCode) -> String {
        format!("fpos/{insured}/{treatment}")
    }
    /// Prefix of [`fed_position`].
    pub const FED_POSITIONS: &str = "fpos/";
    /// Federation: a province's prepaid account.
    pub fn fed_prepaid(p: &ProvinceCode) -> String {
        format!("fprepaid/{p}")
    }
    /// Prefix of [`fed_prepaid`].
    pub const FED_PREPAID: &str = "fprepaid/";
    /// Federation: a recorded top-up (idempotency).
    pub fn fed_topup(p: &ProvinceCode, serial: &Serial) -> String {
        format!("ftopup/{p}/{serial}")
    }
    /// Federation: one clearing line of a month, in (insured, treatment, institution, serial,
    /// kind) order, so that a month's lines page in statement order.
    pub fn fed_clearing_line(
        month: &str,
        insured: &ProvinceCode,
        treatment: &ProvinceCode,
        inst: &InstitutionId,
        serial: &Serial,
        kind: crate::shared::LineKind,
    ) -> String {
        format!("fclrl/{month}/{insured}/{treatment}/{inst}/{serial}/{}", kind.key())
    }
    /// Federation: prefix of a month's clearing lines.
    pub fn fed_clearing_lines(month: &str) -> String {
        format!("fclrl/{month}/")
    }
    /// Federation: the insured province of an institution's lines of a serial in a month,
    /// keyed by serial first so that the institutions holding a serial are one short read.
    pub fn fed_clearing_index(month: &str, treatment: &ProvinceCode, inst: &InstitutionId, serial: &Serial) -> String {
        format!("fclrx/{month}/{treatment}/{serial}/{inst}")
    }
    /// Federation: prefix of [`fed_clearing_index`] over the institutions holding a serial.
    pub fn fed_clearing_serial(month: &str, treatment: &ProvinceCode, serial: &Serial) -> String {
        format!("fclrx/{month}/{treatment}/{serial}/")
    }
    /// Federation: a month's statement totals of one province pair.
    pub fn fed_clearing_totals(month: &str, insured: &ProvinceCode, treatment: &ProvinceCode) -> String {
        format!("fclrs/{month}/{insured}/{treatment}")
    }
    /// Federation: prefix of a month's statement totals.
    pub fn fed_clearing_statements(month: &str) -> String {
        format!("fclrs/{month}/")
    }
    /// Federation: the month whose statement holds a transfer's settlement line.
    pub fn fed_clearing_at(t: &TransferId) -> String {
        format!("fclrat/{}", t.key())
    }
    /// Federation: a month's clearing record.
    pub fn fed_clearing_month(month: &str) -> String {
        format!("fclrm/{month}")
    }
    /// Federation: the latest month cleared (new lines never go into a month at or before it).
    pub const FED_CLEARED_LAST: &str = "fclrlast";
    /// Federation: how many clearing months have been settled (a `u64`, one more with each).
    pub const FED_SETTLED_SEQ: &str = "fclrseq";
    /// Federation: the last sequence of the shared log.
    pub const FED_SHARED_SEQ: &str = "fsharedseq";
    /// Federation: one entry of the shared log.
    pub fn fed_shared(seq: u64) -> String {
        format!("fshared/{seq:020}")
    }
    /// End of the shared log's key range.
    pub const FED_SHARED_END: &str = "fshared0";
    /// Federation: a resolved commitment it shared.
    pub fn fed_commitment(province: &ProvinceCode, id: &str) -> String {
        format!("fpledge/{province}/{id}")
    }
    /// Federation: the last sequence of a province's report inbox.
    pub fn fed_inbox_seq(to: &ProvinceCode) -> String {
        format!("finboxseq/{to}")
    }
    /// Federation: one report message in a province's inbox.
    pub fn fed_inbox(to: &ProvinceCode, seq: u64) -> String {
        format!("finbox/{to}/{seq:020}")
    }
    /// Federation: the last message of a kind (`r`eferral or `p`rogress) about one report
    /// between two provinces, so that one sent again is kept once.
    pub fn fed_report_message(m: &crate::shared::ReportMessage) -> String {
        let kind = match m.body {
            crate::shared::ReportMessageBody::Referral { .. } => 'r',
            crate::shared::ReportMessageBody::Progress(_) => 'p',
        };
        format!("frmsg/{}/{}/{}/{kind}", m.to, m.from, m.origin_id)
    }
}
