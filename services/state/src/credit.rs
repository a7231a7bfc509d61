//! Credit ratings of institutions and personnel (issue 13.3): the store around the pure model of
//! [`medmesh_supervision::credit`]. The model reads the case outcomes and joint-discipline
//! entries the federation's shared log copies into every province, so every province rates an
//! institution alike, its own or another's.

use medmesh_supervision::cases::CaseOutcome;
use medmesh_supervision::credit::{rate_all, Commitment, CommitmentOutcome, Lift, ListedPeriod, Rating};
use medmesh_types::{Date, InstitutionId, ProvinceCode};

use crate::error::case_error;
use crate::kv::{decode, keys, scan_prefix, KvRead, Tx};
use crate::model::Institution;
use crate::model::Outcome;
use crate::shared::{DisciplineEntry, DisciplineLift, DisciplineSubject};
use crate::DomainError;

/// Most outcomes or discipline entries read for one institution.
pub const MAX_READ: usize = 10_000;

/// An institution's rating on `today`; NOT_FOUND naming `field` when this province knows
/// nothing of it (neither its own institution nor one with a shared outcome or entry).
pub fn rating(kv: &dyn KvRead, inst: &InstitutionId, today: Date, field: &str) -> Result<Rating, DomainError> {
    let outcomes: Vec<CaseOutcome> =
        scan_prefix(kv, &keys::case_outcomes(inst), MAX_READ).iter().map(|(_, v)| decode(v)).collect();
    let lifts: Vec<Lift> =
        scan_prefix(kv, &keys::credit_lifts(inst), MAX_READ).iter().map(|(_, v)| decode(v)).collect();
    let subject = DisciplineSubject::Institution(inst.clone());
    let listed: Vec<ListedPeriod> = scan_prefix(kv, &keys::disciplines(&subject), MAX_READ)
        .iter()
        .map(|(_, v)| {
            let e: DisciplineEntry = decode(v);
            let lift = crate::kv::load::<DisciplineLift>(kv, &keys::discipline_lift(&subject, &e.id));
            ListedPeriod {
                province: e.province.to_string(),
                id: e.id,
                from: e.from,
                until: e.until,
                lifted_on: lift.map(|l| l.lifted_on),
            }
        })
        .collect();
    let pledges = commitments(kv, inst);
    let registered = crate::kv::load::<Institution>(kv, &keys::institution(inst)).is_some();
    if !registered && outcomes.is_empty() && listed.is_empty() && pledges.is_empty() {
        return Err(DomainError::not_found(field, format!("no institution {inst} is known here")));
    }
    Ok(rate_all(&outcomes, &lifts, &listed, &pledges, today))
}

/// An institution's notification-commitments known here: this province's own (open or
/// resolved) and every other province's resolved ones, by province and id.
pub fn commitments(kv: &dyn KvRead, inst: &InstitutionId) -> Vec<Commitment> {
    scan_prefix(kv, &keys::commitments(inst), MAX_READ).iter().map(|(_, v)| decode(v)).collect()
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

/// Records a notification-commitment of one of this province's institutions from `today`.
pub(crate) fn record_commitment(
    tx: &mut Tx<'_>,
    province: &ProvinceCode,
    inst: &InstitutionId,
    id: &str,
    text: &str,
    verify_by: Date,
    today: Date,
) -> Result<Outcome, DomainError> {
    let key = keys::commitment(inst, province, id);
    if let Some(old) = tx.load::<Commitment>(&key) {
        if old.text == text && old.verify_by == verify_by {
            return Ok(answer(old));
        }
        return Err(DomainError::exists("id", format!("commitment {id} was recorded with other content")));
    }
    if tx.load::<Institution>(&keys::institution(inst)).is_none() {
        return Err(DomainError::not_found(
            "institution_id",
            format!("institution {inst} is not an institution of this province"),
        ));
    }
    if verify_by < today {
        return Err(DomainError::invalid("verify_by", format!("{verify_by} is before today, {today}")));
    }
    let c = Commitment {
        province: province.clone(),
        id: id.to_string(),
        institution: inst.clone(),
        made_on: today,
        verify_by,
        text: text.to_string(),
        outcome: None,
    };
    c.validate().map_err(case_error)?;
    tx.store(&key, &c);
    Ok(answer(c))
}

/// Resolves one of this province's commitments once, kept or breached, from `today`; the
/// resolved commitment goes to the outbox for the federation to share.
pub(crate) fn resolve_commitment(
    tx: &mut Tx<'_>,
    province: &ProvinceCode,
    inst: &InstitutionId,
    id: &str,
    kept: bool,
    finding: &str,
    today: Date,
) -> Result<Outcome, DomainError> {
    let key = keys::commitment(inst, province, id);
    let mut c: Commitment = tx.load(&key).ok_or_else(|| {
        DomainError::not_found("id", format!("no commitment {id} of institution {inst} was recorded here"))
    })?;
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
    let registered = crate::kv::load::<crate::model::Personnel>(kv, &keys::personnel(code)).is_some();
    if !registered && violations.is_empty() {
        return Err(DomainError::not_found(field, format!("no personnel {code} is known here")));
    }
    Ok(medmesh_supervision::credit::rate_personnel(&violations, today))
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
        })
        .collect();
    format!("score {} of 100 as of {} ({})", r.score, r.as_of, counted.join(", "))
}
