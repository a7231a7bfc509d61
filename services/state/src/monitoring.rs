//! The province's monitoring before payment (issue 11): the rule library and knowledge base as
//! records, the facts of a claim gathered from the store, the verdict applied at settlement,
//! and the alerts it raises.
//!
//! The rules and their evaluation are [`medmesh_monitor`]'s; this module stores and reads.
//! Every settlement of a visit runs the enabled rules over its claim inside apply, so every
//! replica reaches the same verdict: a blocking hit refuses the settlement naming the rule, a
//! self-pay hit moves the line to the patient's share, a flag (or a rule that failed to
//! evaluate) becomes an alert in the review queue once the settlement is recorded.
//!
//! The person's recent care, which rules such as split hospitalisation and duplicate charging
//! read, is indexed when a settlement is recorded and removed when it is reversed: `care/`, one
//! record per settled visit (its days, institution and the items billed each day) by person
//! and admission day, so one range read gives a person's window of care. Keys hold the
//! person's keyed hash, never an identity.

use std::collections::{BTreeMap, BTreeSet};

use medmesh_monitor::{
    compile, evaluate, ClaimInput, CompiledRule, DoctorFacts, Facts, History, Knowledge, KnowledgeBase, LineInput,
    Rule, Verdict,
};
use medmesh_settlement::CatalogueItem;
use medmesh_types::{Date, InstitutionId, KeyedHash, LogTime, ProvinceCode, Serial};
use serde::{Deserialize, Serialize};

use crate::kv::{decode, keys, load, scan_prefix, KvRead, Tx};
pub use crate::model::{Alert, AlertKind, AlertStatus};
use crate::model::{Institution, Outcome, Person, ScanReport, Settlement, Visit, VisitKind};
use crate::DomainError;

/// Most rules a province holds (national and its own).
pub const MAX_RULES: usize = 1_000;
/// How far back the person's care is read, in days.
pub const HISTORY_DAYS: i32 = 90;

/// A rule as the province holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRecord {
    /// The rule.
    pub rule: Rule,
    /// Recorded by the national administration (copied through the shared log), or by this
    /// province's agency.
    pub national: bool,
    /// When this version was recorded.
    pub recorded_at: LogTime,
}

/// A settled visit in the person's care index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CareRecord {
    /// The institution.
    pub institution: InstitutionId,
    /// The visit.
    pub visit: Serial,
    /// Outpatient or inpatient.
    pub kind: VisitKind,
    /// Admission day.
    pub admitted: Date,
    /// Discharge day (the settlement day).
    pub discharged: Date,
    /// What was billed: `(day number, item code)`, each once.
    pub billed: Vec<(i32, String)>,
    /// Where the care was given: `None` here, else the treatment province of a non-local
    /// settlement of this province's insured (recorded when the insured province reserved it:
    /// every fund-paid care of a person passes through the insured province, so its index is
    /// the person's whole, cross-regional history, and no identity leaves it).
    pub province: Option<ProvinceCode>,
}

/// Records a rule version: a new rule starts at version 1, a changed one takes the next
/// version, the same version again with the same content changes nothing. Answers whether a
/// version was recorded (false for the same version again).
pub(crate) fn put_rule(tx: &mut Tx<'_>, rule: &Rule, national: bool, now: LogTime) -> Result<bool, DomainError> {
    let key = keys::rule(&rule.id);
    match tx.load::<RuleRecord>(&key) {
        Some(old) if old.national != national => {
            let whose = if old.national { "a national rule" } else { "this province's own rule" };
            return Err(DomainError::precondition("rule.id", format!("{} is {whose}", rule.id)));
        }
        Some(old) if old.rule.version == rule.version => {
            return if old.rule == *rule {
                Ok(false)
            } else {
                Err(DomainError::exists(
                    "rule.version",
                    format!(
                        "version {} of rule {} was recorded with other content; record version {}",
                        rule.version,
                        rule.id,
                        rule.version + 1
                    ),
                ))
            };
        }
        Some(old) if rule.version != old.rule.version + 1 => {
            return Err(DomainError::invalid(
                "rule.version",
                format!("rule {} is at version {}; the next is {}", rule.id, old.rule.version, old.rule.version + 1),
            ));
        }
        Some(_) => {}
        None => {
            if rule.version != 1 {
                return Err(DomainError::invalid("rule.version", "a new rule starts at version 1"));
            }
            if scan_prefix(tx, keys::RULES, MAX_RULES).len() >= MAX_RULES {
                return Err(DomainError::too_large("rule.id", format!("a province holds at most {MAX_RULES} rules")));
            }
        }
    }
    let rec = RuleRecord { rule: rule.clone(), national, recorded_at: now };
    tx.store(&key, &rec);
    tx.store(&keys::rule_version(&rule.id, rule.version), &rec);
    // The rules in force with whether each is national, in id order.
    let mut in_force: Vec<(Rule, bool)> = tx.load(keys::RULES_IN_FORCE).unwrap_or_default();
    in_force.retain(|(r, _)| r.id != rule.id);
    if rule.enabled {
        let at = in_force.partition_point(|(r, _)| r.id < rule.id);
        in_force.insert(at, (rule.clone(), national));
    }
    // The set's version names its content, so settlement reads a short record to know whether
    // the set it compiled last is still the one in force.
    let bytes = crate::kv::encode(&in_force);
    tx.store(keys::RULES_VERSION, &content_version(&bytes));
    tx.put_raw(keys::RULES_IN_FORCE, bytes);
    Ok(true)
}

/// The version of the rules in force: a hash of the record's bytes.
fn content_version(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Records (or replaces) a knowledge-base entry; the knowledge base's version moves on.
pub(crate) fn put_knowledge(tx: &mut Tx<'_>, k: &Knowledge) -> Result<Outcome, DomainError> {
    match k {
        Knowledge::Diagnosis(d) => tx.store(&keys::kb_diagnosis(&d.code), d),
        Knowledge::Item(i) => tx.store(&keys::kb_item(&i.code), i),
    }
    // The version is a hash chain over every entry recorded, so it names the content.
    let before: String = tx.load(keys::KB_VERSION).unwrap_or_default();
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(before.as_bytes());
    h.update(crate::kv::encode(k));
    tx.store(keys::KB_VERSION, &hex::encode(h.finalize()));
    Ok(Outcome::Stored)
}

/// The whole knowledge base as of its version, read once per version and process: settlement
/// reads one small record instead of one per item. The version is a hash chain over every
/// entry ever recorded, so it names the content and the cache changes no answer.
fn knowledge_base(kv: &dyn KvRead) -> std::sync::Arc<KnowledgeBase> {
    use std::sync::{Arc, Mutex, OnceLock};
    type Cache = Mutex<BTreeMap<String, Arc<KnowledgeBase>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let Some(key) = load::<String>(kv, keys::KB_VERSION) else {
        return Arc::default();
    };
    let cache = CACHE.get_or_init(Default::default);
    if let Some(kb) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return kb;
    }
    let mut kb = KnowledgeBase::default();
    for (_, v) in scan_prefix(kv, "kbdx/", usize::MAX) {
        kb.add_diagnosis(decode(&v));
    }
    for (_, v) in scan_prefix(kv, "kbitem/", usize::MAX) {
        kb.add_item(decode(&v));
    }
    let kb = Arc::new(kb);
    if let Ok(mut c) = cache.lock() {
        if c.len() >= 64 {
            c.clear();
        }
        c.insert(key, kb.clone());
    }
    kb
}

/// Every rule the province holds (latest versions, by id).
pub fn rules(kv: &dyn KvRead) -> Vec<RuleRecord> {
    scan_prefix(kv, keys::RULES, MAX_RULES).iter().map(|(_, v)| decode(v)).collect()
}

/// The enabled rules, compiled, with a fault for each one that no longer compiles under this
/// build (each was checked when recorded).
#[derive(Default)]
pub(crate) struct RuleSet {
    /// The rules that compile, by id.
    pub rules: Vec<CompiledRule>,
    /// The others, as faults.
    pub faults: Vec<medmesh_monitor::Fault>,
    /// The rules this province runs on a visitor's claim: its own (not national) rules that
    /// read nothing of the person or the person's care, which only the insured province holds.
    pub visitor_rules: Vec<CompiledRule>,
    /// The faults among this province's own rules.
    pub visitor_faults: Vec<medmesh_monitor::Fault>,
}

/// The rules in force. Decoding and compiling them is a pure function of the stored record,
/// whose version is a hash of its content, so the last set is kept per process and reused
/// while the version is the same (apply runs the rules on every settlement and reads only the
/// version; the record, several kilobytes, changes only when a rule does).
fn rules_in_force(kv: &dyn KvRead) -> std::sync::Arc<RuleSet> {
    use std::sync::{Arc, Mutex, OnceLock};
    type Last = Mutex<Option<(String, Arc<RuleSet>)>>;
    static LAST: OnceLock<Last> = OnceLock::new();
    let Some(version) = load::<String>(kv, keys::RULES_VERSION) else {
        return Arc::new(RuleSet::default());
    };
    let last = LAST.get_or_init(|| Mutex::new(None));
    if let Ok(guard) = last.lock() {
        if let Some((v, set)) = guard.as_ref() {
            if *v == version {
                return set.clone();
            }
        }
    }
    let raw = kv.get(keys::RULES_IN_FORCE.as_bytes()).unwrap_or_default();
    // The set is cached under the hash of the bytes read, not under the version read before
    // them: a read outside apply (a quote on the leader) can see a rule recorded in between,
    // and a version that comes back (a rule enabled, then disabled) must find its own set.
    let version = content_version(&raw);
    let in_force: Vec<(Rule, bool)> = if raw.is_empty() { Vec::new() } else { decode(&raw) };
    let mut set = RuleSet::default();
    for (r, national) in in_force {
        let own = !national;
        match compile(&r) {
            Ok(c) => {
                if own && !c.reads.person {
                    set.visitor_rules.push(c.clone());
                }
                set.rules.push(c)
            }
            Err(e) => {
                let fault = medmesh_monitor::Fault {
                    rule: r.id.clone(),
                    version: r.version,
                    line: None,
                    message: e.to_string(),
                };
                if own {
                    set.visitor_faults.push(fault.clone());
                }
                set.faults.push(fault)
            }
        }
    }
    let set = Arc::new(set);
    if let Ok(mut guard) = last.lock() {
        *guard = Some((version, set.clone()));
    }
    set
}

/// The person's recent care around a visit, from the care indexes (this visit excluded).
///
/// `place` is where the claim is treated (`None`: here). Care elsewhere than `place` is remote:
/// for a local claim, the person's non-local care; for a non-local claim checked by the insured
/// province, the care here and in the other provinces.
fn history(
    kv: &dyn KvRead,
    person: &KeyedHash,
    v: &Visit,
    discharged: Date,
    kb: &KnowledgeBase,
    place: Option<&ProvinceCode>,
) -> History {
    let mut h = History::default();
    let this = (&v.institution, &v.serial);
    let claimed: BTreeSet<(i32, &str)> = v.lines.iter().map(|l| (l.date.days(), l.code.as_str())).collect();
    let limited: BTreeSet<&str> =
        claimed.iter().map(|(_, c)| *c).filter(|c| kb.item(c).is_some_and(|k| k.max_course_days.is_some())).collect();
    let mut course: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    let from = v.admitted.plus_days(-HISTORY_DAYS);
    let start = keys::care_from(person, from);
    let end = keys::care_from(person, discharged.plus_days(1));
    let inpatient = v.kind == VisitKind::Inpatient;
    for (_, bytes) in kv.scan(start.as_bytes(), end.as_bytes(), usize::MAX) {
        let c: CareRecord = decode(&bytes);
        if (&c.institution, &c.visit) == this {
            continue;
        }
        for (day, code) in &c.billed {
            if claimed.contains(&(*day, code.as_str())) {
                *h.billed_elsewhere.entry((code.clone(), *day)).or_insert(0) += 1;
            }
            if *day < v.admitted.days() && limited.contains(code.as_str()) {
                course.entry(code.clone()).or_default().insert(*day);
            }
        }
        let before = v.admitted.days() - c.admitted.days();
        if (0..=7).contains(&before) {
            h.visits_last_7_days += 1;
        }
        if (0..=30).contains(&before) {
            h.visits_last_30_days += 1;
        }
        if before == 0 && c.institution == v.institution {
            h.same_day_visits_here += 1;
        }
        let remote = c.province.as_ref() != place;
        if remote && c.admitted <= discharged && c.discharged >= v.admitted {
            h.remote_same_day += 1;
        }
        if c.kind == VisitKind::Inpatient {
            let gap = v.admitted.days() - c.discharged.days();
            if gap >= 0 && h.days_since_last_discharge.is_none_or(|g| gap < g) {
                h.days_since_last_discharge = Some(gap);
            }
            if inpatient && c.admitted < discharged && c.discharged > v.admitted {
                if remote {
                    h.remote_overlapping_stays += 1;
                } else {
                    h.overlapping_stays += 1;
                }
            }
            if c.province.is_some() && (0..=90).contains(&before) {
                h.nonlocal_stays_90_days += 1;
            }
        }
    }
    h.course_days_before = course.into_iter().map(|(c, d)| (c, d.len() as u32)).collect();
    h
}

/// What the monitoring needs to know of a local claim at settlement.
pub(crate) struct ClaimContext<'a> {
    /// The visit.
    pub visit: &'a Visit,
    /// The person: `None` for a visitor insured elsewhere, whose person and care only the
    /// insured province holds (the rules run on a visitor read neither).
    pub person: Option<&'a Person>,
    /// The institution.
    pub institution: &'a Institution,
    /// The catalogue entries of the claim's codes.
    pub items: &'a [CatalogueItem],
    /// This year's points of the billing doctor.
    pub doctor_points: u32,
    /// The settlement day (the discharge day of an inpatient).
    pub today: Date,
    /// Where the claim is treated: `None` here, else the treatment province of a non-local
    /// claim of this province's insured.
    pub place: Option<&'a ProvinceCode>,
}

/// The facts of a local claim.
pub(crate) fn facts(kv: &dyn KvRead, c: &ClaimContext<'_>) -> Facts {
    let v = c.visit;
    let discharged = if v.kind == VisitKind::Inpatient { c.today.max(v.admitted) } else { v.admitted };
    let kb = knowledge_base(kv);
    let history = match c.person {
        Some(p) => history(kv, &p.key, v, discharged, &kb, c.place),
        None => History::default(),
    };
    let input = ClaimInput {
        inpatient: v.kind == VisitKind::Inpatient,
        admitted: v.admitted,
        discharged,
        diagnosis: v.diagnosis.clone(),
        department: v.department.clone(),
        nonlocal: v.nonlocal.is_some() || c.place.is_some(),
        age: c.person.map_or(0, |p| v.admitted.years_since(p.birth_date).max(0) as u32),
        sex: c.person.map_or(medmesh_settlement::Sex::Female, |p| p.sex),
        insurance: c.person.map_or(medmesh_settlement::InsuranceType::Employee, |p| p.insurance),
        institution: v.institution.to_string(),
        institution_level: c.institution.level,
        doctor: DoctorFacts {
            code: v.doctor.to_string(),
            suspended: false,
            terminated: false,
            points: c.doctor_points,
        },
        lines: v
            .lines
            .iter()
            .map(|l| LineInput { line: l.clone(), catalogue: c.items.iter().find(|i| i.code == l.code).cloned() })
            .collect(),
    };
    Facts::build(&input, &kb, &history)
}

/// Runs the rules in force over a local claim.
pub(crate) fn check(kv: &dyn KvRead, c: &ClaimContext<'_>) -> Verdict {
    let set = rules_in_force(kv);
    if set.rules.is_empty() && set.faults.is_empty() {
        return Verdict::default();
    }
    let mut v = evaluate(&set.rules, &facts(kv, c));
    v.faults.extend(set.faults.iter().cloned());
    v
}

/// The catalogue entries of a visit's codes, each once, in code order.
pub(crate) fn items_of(kv: &dyn KvRead, v: &Visit) -> Vec<CatalogueItem> {
    let codes: BTreeSet<&medmesh_types::ItemCode> = v.lines.iter().map(|l| &l.code).collect();
    codes.into_iter().filter_map(|c| load::<CatalogueItem>(kv, &keys::item(c))).collect()
}

/// Runs this province's own rules that can judge a visitor's claim (those reading nothing of
/// the person or the person's care) over a non-local visit treated here, with what only this
/// province knows: its institution as registered, its catalogue, its doctor's points. The
/// insured province runs its rules and the national ones, with the person's whole history,
/// when it reserves the claim.
pub(crate) fn check_visitor(
    kv: &dyn KvRead,
    visit: &Visit,
    institution: &Institution,
    doctor_points: u32,
    today: Date,
) -> Verdict {
    let set = rules_in_force(kv);
    if set.visitor_rules.is_empty() && set.visitor_faults.is_empty() {
        return Verdict::default();
    }
    let items = items_of(kv, visit);
    let ctx = ClaimContext { visit, person: None, institution, items: &items, doctor_points, today, place: None };
    let mut v = evaluate(&set.visitor_rules, &facts(kv, &ctx));
    v.faults.extend(set.visitor_faults.iter().cloned());
    v
}

/// After a visitor's non-local settlement is recorded here: the flags and faults of this
/// province's rules join its review queue (the person's care is indexed at home).
pub(crate) fn visitor_settled(tx: &mut Tx<'_>, v: &Verdict, visit: &Visit, settlement: &Serial, now: LogTime) {
    raise_alerts(tx, v, visit, settlement, now, false);
}

/// A registered visit's claim with what the rules read of it: the institution, the visit, the
/// person (`None` for a visitor insured elsewhere) and the catalogue entries of its codes.
fn load_claim(
    kv: &dyn KvRead,
    institution: &InstitutionId,
    visit: &Serial,
) -> Result<(Institution, Visit, Option<Person>, Vec<CatalogueItem>), DomainError> {
    let inst: Institution = load(kv, &keys::institution(institution)).ok_or_else(|| {
        DomainError::not_found("institution_id", format!("institution {institution} is not registered"))
    })?;
    let v: Visit = load(kv, &keys::visit(institution, visit)).ok_or_else(|| {
        DomainError::not_found("visit_serial", format!("visit {visit} of institution {institution} is not registered"))
    })?;
    let person = match &v.nonlocal {
        Some(_) => None,
        None => Some(
            load::<Person>(kv, &keys::person(&v.person))
                .ok_or_else(|| DomainError::not_found("visit_serial", "the visit's patient is not registered here"))?,
        ),
    };
    let items = items_of(kv, &v);
    Ok((inst, v, person, items))
}

/// Runs one rule (recorded or not) over a registered visit's claim, as it would at settlement
/// on `today`. A visitor's claim can be judged here only by a rule that reads nothing of the
/// person or the person's care (FAILED_PRECONDITION naming the condition otherwise).
pub(crate) fn test_rule(
    kv: &dyn KvRead,
    rule: &Rule,
    institution: &InstitutionId,
    visit: &Serial,
    today: Date,
    doctor_points: impl FnOnce(&medmesh_types::PersonnelCode) -> u32,
) -> Result<Verdict, DomainError> {
    let compiled = compile(rule).map_err(|e| DomainError::invalid(format!("rule.{}", e.field), e.message))?;
    let (inst, v, person, items) = load_claim(kv, institution, visit)?;
    if person.is_none() && compiled.reads.person {
        return Err(DomainError::precondition(
            "rule.condition",
            format!(
                "reads the person or the person's care, which only the insured province holds: it does not run on visit {visit}, a visitor's"
            ),
        ));
    }
    let doctor_points = doctor_points(&v.doctor);
    let ctx = ClaimContext {
        visit: &v,
        person: person.as_ref(),
        institution: &inst,
        items: &items,
        doctor_points,
        today,
        place: None,
    };
    Ok(evaluate(&[compiled], &facts(kv, &ctx)))
}

/// The refusal of a blocking hit, naming the rule.
pub(crate) fn blocked(v: &Verdict) -> Result<(), DomainError> {
    match v.block() {
        Some(h) => Err(DomainError::precondition(
            "visit_serial",
            format!(
                "refused by monitoring rule {} v{}: {}{}",
                h.rule,
                h.version,
                h.title,
                h.line.as_ref().map(|l| format!(" (line {l})")).unwrap_or_default()
            ),
        )),
        None => Ok(()),
    }
}

/// The lines a verdict moves to the patient's share, with the rule.
pub(crate) fn self_pay(v: &Verdict, visit: &Visit) -> BTreeMap<Serial, String> {
    let serials: Vec<String> = visit.lines.iter().map(|l| l.serial.to_string()).collect();
    v.self_pay(&serials).into_iter().filter_map(|(s, h)| Serial::new(s).ok().map(|s| (s, h.rule.clone()))).collect()
}

/// After a settlement is recorded: its flags and faults join the review queue, and the visit
/// joins the person's care index.
pub(crate) fn settled(
    tx: &mut Tx<'_>,
    v: &Verdict,
    visit: &Visit,
    person: &KeyedHash,
    settlement: &Serial,
    place: Option<&ProvinceCode>,
    now: LogTime,
) {
    raise_alerts(tx, v, visit, settlement, now, false);
    let today = now.date();
    let discharged = if visit.kind == VisitKind::Inpatient { today.max(visit.admitted) } else { visit.admitted };
    let billed: BTreeSet<(i32, String)> = visit.lines.iter().map(|l| (l.date.days(), l.code.to_string())).collect();
    let care = CareRecord {
        institution: visit.institution.clone(),
        visit: visit.serial.clone(),
        kind: visit.kind,
        admitted: visit.admitted,
        discharged,
        billed: billed.into_iter().collect(),
        province: place.cloned(),
    };
    tx.store(&keys::care(person, visit.admitted, &visit.institution, &visit.serial), &care);
}

/// Adds a verdict's alerts to the review queue: every flag and fault (and, for a post-payment
/// scan, every hit: the claim was paid already). Answers how many were raised.
fn raise_alerts(
    tx: &mut Tx<'_>,
    v: &Verdict,
    visit: &Visit,
    settlement: &Serial,
    now: LogTime,
    every_hit: bool,
) -> u32 {
    let mut seq: u64 = tx.load(keys::ALERT_SEQ).unwrap_or(0);
    let first = seq;
    let mut raise = |rule: &str, version: u32, title: &str, severity: u8, line: &Option<String>, kind: AlertKind| {
        seq += 1;
        let a = Alert {
            seq,
            raised_at: now,
            institution: visit.institution.clone(),
            visit: visit.serial.clone(),
            settlement: settlement.clone(),
            rule: rule.to_string(),
            version,
            title: title.to_string(),
            severity,
            line: line.clone(),
            kind,
            status: AlertStatus::Open,
        };
        tx.store(&keys::alert(seq), &a);
    };
    let hits: Vec<&medmesh_monitor::Hit> = if every_hit { v.hits.iter().collect() } else { v.flags().collect() };
    for h in hits {
        raise(&h.rule, h.version, &h.title, h.severity, &h.line, AlertKind::Flag);
    }
    for f in &v.faults {
        raise(&f.rule, f.version, "the rule failed to evaluate", 3, &f.line, AlertKind::Fault(f.message.clone()));
    }
    if seq > first {
        tx.store(keys::ALERT_SEQ, &seq);
        crate::tally::tally(tx, now.date(), |t| t.alerts += (seq - first) as i64);
    }
    (seq - first) as u32
}

/// Most settlements one post-payment scan command reads.
pub const MAX_SCAN: usize = 1_000;

/// A post-payment scan step (issue 11.5): runs the rule in force under `rule_id` over the
/// settlements in force settled from `from` through `to` (a visitor's only for this province's
/// own rule that reads nothing of the person), reading at most `limit`
/// settlements after `after` (in key order); every hit and fault becomes an alert, once per
/// rule version and settlement however often the scan is run. Answers where to resume.
#[allow(clippy::too_many_arguments)] // the scan's parameters
pub(crate) fn scan(
    tx: &mut Tx<'_>,
    rule_id: &str,
    from: Date,
    to: Date,
    after: &str,
    limit: usize,
    now: LogTime,
    doctor_points: impl Fn(&dyn KvRead, &medmesh_types::PersonnelCode, Date) -> u32,
) -> Result<Outcome, DomainError> {
    let rec: RuleRecord =
        tx.load(&keys::rule(rule_id)).ok_or_else(|| DomainError::not_found("rule_id", format!("no rule {rule_id}")))?;
    let compiled = compile(&rec.rule).map_err(|e| DomainError::invalid(format!("rule.{}", e.field), e.message))?;
    let start = if after.is_empty() { "stl/".to_string() } else { format!("stl/{after}\u{0}") };
    let rows = tx.scan(start.as_bytes(), b"stl0", limit);
    let mut report = ScanReport { scanned: rows.len() as u32, checked: 0, raised: 0, next: String::new() };
    if rows.len() == limit {
        if let Some((k, _)) = rows.last() {
            report.next = String::from_utf8_lossy(&k[4..]).into_owned();
        }
    }
    for (_, bytes) in rows {
        let st: Settlement = decode(&bytes);
        // A visitor's settlement is judged here only by this province's own rules that read
        // nothing of the person (the insured province runs the national ones).
        let visitor = st.insured.is_some();
        if (visitor && (compiled.reads.person || rec.national)) || st.status != crate::model::SettlementStatus::Settled
        {
            continue;
        }
        if st.settled_on < from || st.settled_on > to {
            continue;
        }
        let marker = keys::scan_hit(rule_id, rec.rule.version, &st.institution, &st.serial);
        if tx.load::<()>(&marker).is_some() {
            continue;
        }
        let Ok((inst, v, person, items)) = load_claim(tx, &st.institution, &st.visit) else { continue };
        let points = doctor_points(tx, &v.doctor, st.settled_on);
        let ctx = ClaimContext {
            visit: &v,
            person: person.as_ref(),
            institution: &inst,
            items: &items,
            doctor_points: points,
            today: st.settled_on,
            place: None,
        };
        report.checked += 1;
        let verdict = evaluate(std::slice::from_ref(&compiled), &facts(tx, &ctx));
        let raised = raise_alerts(tx, &verdict, &v, &st.serial, now, true);
        if raised > 0 {
            tx.store(&marker, &());
            report.raised += raised;
        }
    }
    Ok(Outcome::Scanned(report))
}

/// After a local settlement is reversed: the visit leaves the person's care index.
pub(crate) fn reversed(tx: &mut Tx<'_>, visit: &Visit, person: &KeyedHash) {
    tx.put_delete(&keys::care(person, visit.admitted, &visit.institution, &visit.serial));
}

/// Reviews an open alert: accepted (the ground of a case) or dismissed with a reason. The same
/// review again answers the alert as it is; another review of a reviewed alert is refused.
pub(crate) fn review(tx: &mut Tx<'_>, seq: u64, accept: bool, reason: &str) -> Result<Outcome, DomainError> {
    let key = keys::alert(seq);
    let mut a: Alert = tx.load(&key).ok_or_else(|| DomainError::not_found("seq", format!("no alert {seq}")))?;
    let decided =
        if accept { AlertStatus::Accepted(reason.to_string()) } else { AlertStatus::Dismissed(reason.to_string()) };
    match &a.status {
        AlertStatus::Open => {
            a.status = decided;
            tx.store(&key, &a);
            Ok(Outcome::Alert(a))
        }
        s if *s == decided => Ok(Outcome::Alert(a)),
        _ => Err(DomainError::precondition("seq", format!("alert {seq} was already reviewed"))),
    }
}

/// The review queue from `from` on.
pub fn alerts(kv: &dyn KvRead, from: u64, limit: usize) -> Vec<Alert> {
    let start = keys::alert(from.max(1));
    let end = keys::alert(u64::MAX);
    kv.scan(start.as_bytes(), end.as_bytes(), limit).iter().map(|(_, v)| decode(v)).collect()
}
