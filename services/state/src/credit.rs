//! Credit ratings of institutions, personnel, enterprises and insured persons (issue 13.3): the store around the pure model of
//! [`medmesh_supervision::credit`]. The model reads the case outcomes and joint-discipline
//! entries the federation's shared log copies into every province, so every province rates an
//! institution alike, its own or another's.

use medmesh_supervision::cases::CaseOutcome;
use medmesh_supervision::credit::{
    rate_all, rate_institution, rate_person, rate_personnel_all, with_incentives, Commitment, CommitmentOutcome, Grade,
    Incentive, Lift, ListedPeriod, Party, Rating, ReviewedDeclaration,
};
use medmesh_types::{Date, EnterpriseCode, InstitutionId, ProvinceCode};

use crate::error::case_error;
use crate::kv::{decode, keys, scan_prefix, KvRead, Tx};
use crate::model::Institution;
use crate::model::Outcome;
use crate::shared::{DisciplineEntry, DisciplineLift, DisciplineSubject};
use crate::DomainError;

/// Most outcomes or discipline entries read for one institution.
pub const MAX_READ: usize = 10_000;

/// A subject's joint-discipline entries as the model sees them (with their lifts).
fn listed(kv: &dyn KvRead, subject: &DisciplineSubject) -> Vec<ListedPeriod> {
    scan_prefix(kv, &keys::disciplines(subject), MAX_READ)
        .iter()
        .map(|(_, v)| {
            let e: DisciplineEntry = decode(v);
            let lift = crate::kv::load::<DisciplineLift>(kv, &keys::discipline_lift(subject, &e.id));
            ListedPeriod {
                province: e.province.to_string(),
                id: e.id,
                from: e.from,
                until: e.until,
                lifted_on: lift.map(|l| l.lifted_on),
            }
        })
        .collect()
}

/// An institution's rating on `today`; NOT_FOUND naming `field` when this province knows
/// nothing of it (neither its own institution nor one with a shared outcome or entry).
pub fn rating(kv: &dyn KvRead, inst: &InstitutionId, today: Date, field: &str) -> Result<Rating, DomainError> {
    let outcomes: Vec<CaseOutcome> =
        scan_prefix(kv, &keys::case_outcomes(inst), MAX_READ).iter().map(|(_, v)| decode(v)).collect();
    let lifts: Vec<Lift> =
        scan_prefix(kv, &keys::credit_lifts(inst), MAX_READ).iter().map(|(_, v)| decode(v)).collect();
    let listed = listed(kv, &DisciplineSubject::Institution(inst.clone()));
    let party = Party::Institution(inst.clone());
    let pledges = commitments(kv, &party);
    let trusted = incentives(kv, &party);
    let reviewed: Vec<ReviewedDeclaration> =
        scan_prefix(kv, &keys::declaration_reviews(inst), MAX_READ).iter().map(|(_, v)| decode(v)).collect();
    let registered = crate::kv::load::<Institution>(kv, &keys::institution(inst)).is_some();
    if !registered && outcomes.is_empty() && listed.is_empty() && pledges.is_empty() && trusted.is_empty() {
        return Err(DomainError::not_found(field, format!("no institution {inst} is known here")));
    }
    Ok(with_incentives(rate_institution(&outcomes, &lifts, &listed, &pledges, &reviewed, today), &trusted))
}

/// A pharmaceutical enterprise's rating on `today` from what names it (joint-discipline
/// entries, commitments, incentive entries); NOT_FOUND naming `field` when nothing does.
pub fn enterprise_rating(
    kv: &dyn KvRead,
    code: &EnterpriseCode,
    today: Date,
    field: &str,
) -> Result<Rating, DomainError> {
    let listed = listed(kv, &DisciplineSubject::Enterprise(code.clone()));
    let party = Party::Enterprise(code.clone());
    let pledges = commitments(kv, &party);
    let trusted = incentives(kv, &party);
    if listed.is_empty() && pledges.is_empty() && trusted.is_empty() {
        return Err(DomainError::not_found(
            field,
            format!("no record names enterprise {code} here (record its credit commitment first: RecordCommitment)"),
        ));
    }
    Ok(with_incentives(rate_all(&[], &[], &listed, &pledges, today), &trusted))
}

/// An insured person's rating on `today` from the joint-discipline entries naming their
/// directory key (every province's); NOT_FOUND naming `field` when the person is neither
/// insured here (`insured_here`) nor named by an entry.
pub fn person_rating(
    kv: &dyn KvRead,
    directory_key: &str,
    insured_here: bool,
    today: Date,
    field: &str,
) -> Result<Rating, DomainError> {
    let listed = listed(kv, &DisciplineSubject::Person(directory_key.to_string()));
    if !insured_here && listed.is_empty() {
        return Err(DomainError::not_found(
            field,
            "no insured person here holds this certificate and no entry names it",
        ));
    }
    Ok(rate_person(&listed, today))
}

/// A party's rating on `today` (see [`rating`], [`personnel_rating`], [`enterprise_rating`]),
/// NOT_FOUND naming the party's field when unknown here.
pub fn party_rating(kv: &dyn KvRead, party: &Party, today: Date) -> Result<Rating, DomainError> {
    match party {
        Party::Institution(i) => rating(kv, i, today, party.field()),
        Party::Personnel(p) => personnel_rating(kv, p, today, party.field()),
        Party::Enterprise(e) => enterprise_rating(kv, e, today, party.field()),
    }
}

/// A party's notification-commitments known here: this province's own (open or resolved) and
/// every other province's resolved ones, by province and id.
pub fn commitments(kv: &dyn KvRead, party: &Party) -> Vec<Commitment> {
    scan_prefix(kv, &keys::commitments(party), MAX_READ).iter().map(|(_, v)| decode(v)).collect()
}

/// A party's joint-incentive entries known here (every province's), by province and id.
pub fn incentives(kv: &dyn KvRead, party: &Party) -> Vec<Incentive> {
    scan_prefix(kv, &keys::incentives(party), MAX_READ).iter().map(|(_, v)| decode(v)).collect()
}

/// Checks that `party` is one of this province's own: an institution or personnel registered
/// here (an enterprise has no register here; its code is checked when parsed).
fn own_party(kv: &dyn KvRead, party: &Party) -> Result<(), DomainError> {
    let known = match party {
        Party::Institution(i) => crate::kv::load::<Institution>(kv, &keys::institution(i)).is_some(),
        Party::Personnel(p) => crate::kv::load::<crate::model::Personnel>(kv, &keys::personnel(p)).is_some(),
        Party::Enterprise(_) => true,
    };
    if known {
        return Ok(());
    }
    Err(DomainError::not_found(party.field(), format!("{party} is not registered in this province")))
}

/// Claims `id` for `party` in one of this province's id spaces (`index`): the same party
/// again is fine; another party's id is ALREADY_EXISTS naming `id`.
fn claim_id(tx: &mut Tx<'_>, index: &str, id: &str, party: &Party, what: &str) -> Result<(), DomainError> {
    match tx.load::<Party>(index) {
        Some(p) if &p == party => Ok(()),
        Some(p) => Err(DomainError::exists("id", format!("{what} {id} was recorded for {p}"))),
        None => {
            tx.store(index, party);
            Ok(())
        }
    }
}

/// Checks a resolved commitment that crossed a boundary (to the federation, or from it).
pub(crate) fn check_shared(c: &Commitment) -> Result<(), DomainError> {
    crate::rules::province("province", &c.province)?;
    c.validate().map_err(case_error)?;
    if c.outcome.is_none() {
        return Err(DomainError::invalid("outcome", "only a resolved commitment is shared"));
    }
    Ok(())
}

fn answer(c: Commitment) -> Outcome {
    Outcome::Commitment(Box::new(c))
}

/// Records a notification-commitment of one of this province's institutions or personnel, or
/// of an enterprise, from `today`. Ids are unique in the province.
pub(crate) fn record_commitment(
    tx: &mut Tx<'_>,
    province: &ProvinceCode,
    party: &Party,
    id: &str,
    text: &str,
    verify_by: Date,
    today: Date,
) -> Result<Outcome, DomainError> {
    let key = keys::commitment(party, province, id);
    if let Some(old) = tx.load::<Commitment>(&key) {
        if old.text == text && old.verify_by == verify_by {
            return Ok(answer(old));
        }
        return Err(DomainError::exists("id", format!("commitment {id} was recorded with other content")));
    }
    own_party(tx, party)?;
    if verify_by < today {
        return Err(DomainError::invalid("verify_by", format!("{verify_by} is before today, {today}")));
    }
    let c = Commitment {
        province: province.clone(),
        id: id.to_string(),
        party: party.clone(),
        made_on: today,
        verify_by,
        text: text.to_string(),
        outcome: None,
    };
    c.validate().map_err(case_error)?;
    claim_id(tx, &keys::commitment_id(id), id, party, "commitment")?;
    tx.store(&key, &c);
    Ok(answer(c))
}

/// Resolves one of this province's commitments once, kept or breached, from `today`; the
/// resolved commitment goes to the outbox for the federation to share.
pub(crate) fn resolve_commitment(
    tx: &mut Tx<'_>,
    province: &ProvinceCode,
    party: &Party,
    id: &str,
    kept: bool,
    finding: &str,
    today: Date,
) -> Result<Outcome, DomainError> {
    let key = keys::commitment(party, province, id);
    let mut c: Commitment = tx
        .load(&key)
        .ok_or_else(|| DomainError::not_found("id", format!("no commitment {id} of {party} was recorded here")))?;
    if let Some(o) = &c.outcome {
        if o.kept == kept && o.finding == finding {
            return Ok(answer(c));
        }
        return Err(DomainError::precondition("id", format!("commitment {id} was resolved on {}", o.on)));
    }
    c.outcome = Some(CommitmentOutcome { kept, on: today, finding: finding.to_string() });
    c.validate().map_err(case_error)?;
    tx.store(&key, &c);
    crate::kv::outbox(tx, crate::shared::SharedItem::Commitment(c.clone()));
    Ok(answer(c))
}

/// A person's rating on `today` from their violations (every province's, copied through the
/// shared log); NOT_FOUND naming `field` when this province knows nothing of them (neither
/// registered here nor scored anywhere).
pub fn personnel_rating(
    kv: &dyn KvRead,
    code: &medmesh_types::PersonnelCode,
    today: Date,
    field: &str,
) -> Result<Rating, DomainError> {
    let violations: Vec<medmesh_supervision::Violation> =
        scan_prefix(kv, &keys::violations(code), MAX_READ).iter().map(|(_, v)| decode(v)).collect();
    let party = Party::Personnel(code.clone());
    let pledges = commitments(kv, &party);
    let trusted = incentives(kv, &party);
    let registered = crate::kv::load::<crate::model::Personnel>(kv, &keys::personnel(code)).is_some();
    if !registered && violations.is_empty() && pledges.is_empty() && trusted.is_empty() {
        return Err(DomainError::not_found(field, format!("no personnel {code} is known here")));
    }
    Ok(with_incentives(rate_personnel_all(&violations, &pledges, today), &trusted))
}

/// Checks a reviewed declaration that crossed a boundary (to the federation, or from it).
pub(crate) fn check_review(r: &ReviewedDeclaration) -> Result<(), DomainError> {
    crate::rules::province("province", &r.province)?;
    r.validate().map_err(case_error)
}

/// Keeps `r` under `key` when it is newer than what is there (a higher version); the same
/// version with other content is ALREADY_EXISTS naming `period`. Answers whether it was kept.
pub(crate) fn newer_review(tx: &mut Tx<'_>, key: &str, r: &ReviewedDeclaration) -> Result<bool, DomainError> {
    match tx.load::<ReviewedDeclaration>(key) {
        Some(old) if old.version > r.version || &old == r => Ok(false),
        Some(old) if old.version == r.version => Err(DomainError::exists(
            "period",
            format!("version {} of the review of {} was shared with other figures", r.version, r.period),
        )),
        _ => {
            tx.store(key, r);
            Ok(true)
        }
    }
}

/// The reviewing province: records the credit input of a reviewed declaration and shares it —
/// at the review when it deducted anything, and again with each deduction withdrawn.
pub(crate) fn reviewed(tx: &mut Tx<'_>, province: &ProvinceCode, d: &medmesh_payment::Declaration) {
    let Some(at) = d.reviewed_at else { return };
    let key = keys::declaration_review(&d.institution, province, &d.period.to_string());
    let version = d
        .deductions
        .iter()
        .filter(|x| x.contest.as_ref().and_then(|c| c.resolution.as_ref()).is_some_and(|r| r.accepted))
        .count();
    if version == 0 && d.deductions.is_empty() {
        return;
    }
    let r = ReviewedDeclaration {
        province: province.clone(),
        institution: d.institution.clone(),
        period: d.period.to_string(),
        declared: d.declared,
        deducted: d.deducted(),
        reviewed_on: at.date(),
        version: u32::try_from(version).unwrap_or(u32::MAX),
    };
    if matches!(newer_review(tx, &key, &r), Ok(true)) {
        crate::kv::outbox(tx, crate::shared::SharedItem::DeclarationReview(r));
    }
}

/// Checks an incentive entry that crossed a boundary (to the federation, or from it).
pub(crate) fn check_incentive(i: &Incentive) -> Result<(), DomainError> {
    crate::rules::province("province", &i.province)?;
    i.validate().map_err(case_error)
}

/// Records an entry of the joint incentive list for one of this province's own parties (an
/// enterprise with a record here) graded A today; it goes to the outbox for the federation to
/// share. The same entry again answers it; another entry under the id is ALREADY_EXISTS.
pub(crate) fn record_incentive(tx: &mut Tx<'_>, i: &Incentive, today: Date) -> Result<Outcome, DomainError> {
    let key = keys::incentive(&i.party, &i.province, &i.id);
    if let Some(old) = tx.load::<Incentive>(&key) {
        if &old == i {
            return Ok(Outcome::Incentive(Box::new(old)));
        }
        return Err(DomainError::exists("id", format!("incentive entry {} was recorded with other content", i.id)));
    }
    if i.until < today {
        return Err(DomainError::invalid("until", format!("{} is before today, {today}", i.until)));
    }
    own_party(tx, &i.party)?;
    let r = party_rating(tx, &i.party, today)?;
    if r.grade != Grade::A {
        return Err(DomainError::precondition(
            i.party.field(),
            format!("{} is graded {}, not A: {}", i.party, r.grade.letter(), summary(&r)),
        ));
    }
    claim_id(tx, &keys::incentive_id(&i.id), &i.id, &i.party, "incentive entry")?;
    tx.store(&key, i);
    crate::kv::outbox(tx, crate::shared::SharedItem::Incentive(i.clone()));
    Ok(Outcome::Incentive(Box::new(i.clone())))
}

/// A rating in a few words, for a refusal: the score and what forces or lowers it.
pub fn summary(r: &Rating) -> String {
    let counted: Vec<String> = r
        .entries
        .iter()
        .filter(|e| e.counted)
        .map(|e| match &e.source {
            medmesh_supervision::credit::Source::Case { province, case_id } => format!("case {province}/{case_id}"),
            medmesh_supervision::credit::Source::Discipline { province, id } => {
                format!("discipline entry {province}/{id}")
            }
            medmesh_supervision::credit::Source::Violation { province, id } => format!("violation {province}/{id}"),
            medmesh_supervision::credit::Source::Qualification => "payment qualification".to_string(),
            medmesh_supervision::credit::Source::Commitment { province, id } => format!("commitment {province}/{id}"),
            medmesh_supervision::credit::Source::Incentive { province, id } => {
                format!("incentive entry {province}/{id}")
            }
            medmesh_supervision::credit::Source::Declaration { province, period } => {
                format!("declaration {province}/{period}")
            }
        })
        .collect();
    format!("score {} of 100 as of {} ({})", r.score, r.as_of, counted.join(", "))
}
