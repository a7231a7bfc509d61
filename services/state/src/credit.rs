//! Credit ratings of institutions and personnel (issue 13.3): the store around the pure model of
//! [`medmesh_supervision::credit`]. The model reads the case outcomes and joint-discipline
//! entries the federation's shared log copies into every province, so every province rates an
//! institution alike, its own or another's.

use medmesh_supervision::cases::CaseOutcome;
use medmesh_supervision::credit::{rate, Lift, ListedPeriod, Rating};
use medmesh_types::{Date, InstitutionId};

use crate::kv::{decode, keys, scan_prefix, KvRead};
use crate::model::Institution;
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
    let registered = crate::kv::load::<Institution>(kv, &keys::institution(inst)).is_some();
    if !registered && outcomes.is_empty() && listed.is_empty() {
        return Err(DomainError::not_found(field, format!("no institution {inst} is known here")));
    }
    Ok(rate(&outcomes, &lifts, &listed, today))
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
        })
        .collect();
    format!("score {} of 100 as of {} ({})", r.score, r.as_of, counted.join(", "))
}
