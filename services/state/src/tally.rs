//! What happened in a province each day and each month beyond its fund ledger's running
//! totals (issue 14.1): settlements by institution level, visitors' care by insured province,
//! cash paid by patients, and the supervision work done (alerts, cases, points, discipline
//! entries, reports, inspections).
//!
//! Apply adds to the tally of the entry's day at the place the event happens (a retry that
//! changes nothing adds nothing): one record per day, so a day's tally is one point read and a
//! month's the sum of its days' ([`month`], at most 31 reads, done when a month is published
//! or asked for, never on the settlement path). A reversal counts on the day it is applied,
//! negatively, like the fund ledger: a period's figures are net of what was reversed within it
//! and an ended period never changes.
//!
//! This module reads and writes only its own records, so every module that records an event
//! may use it without an import cycle.

use medmesh_payment::Period;
use medmesh_types::{Date, InstitutionId, Money, ProvinceCode};

pub use crate::figures::{Flow, Tally};
use crate::kv::{decode, keys, scan_prefix, KvRead, Tx};
use crate::model::Institution;

/// Adds to the tally of `day`.
pub(crate) fn tally(tx: &mut Tx<'_>, day: Date, f: impl FnOnce(&mut Tally)) {
    let key = keys::tally_day(day);
    let mut t: Tally = tx.load(&key).unwrap_or_default();
    f(&mut t);
    tx.store(&key, &t);
}

/// The tally of a month: the sum of its days'.
pub fn month(kv: &dyn KvRead, period: Period) -> Tally {
    let mut sum = Tally::default();
    for (_, v) in scan_prefix(kv, &keys::tally_days(period), 31) {
        sum.merge(&decode(&v));
    }
    sum
}

/// Adds a settlement at `institution` (sign +1) or its reversal (sign −1) under the
/// institution's level (0 if it is not registered): its amount (fund share and account part)
/// and the patient's cash; a visitor's also under its insured province.
pub(crate) fn settlement(
    tx: &mut Tx<'_>,
    day: Date,
    sign: i64,
    institution: &InstitutionId,
    insured: Option<&ProvinceCode>,
    amount: Money,
    cash: Money,
) {
    let level = tx.load::<Institution>(&keys::institution(institution)).map(|i| i.level);
    let signed = |m: Money| if sign >= 0 { m } else { Money::ZERO - m };
    let flow = Flow { settlements: sign, amount: signed(amount) };
    tally(tx, day, |t| {
        t.by_level.entry(level.unwrap_or(0)).or_default().add(&flow);
        if let Some(p) = insured {
            t.nonlocal_in_by_province.entry(p.clone()).or_default().add(&flow);
        }
        t.cash_paid += signed(cash);
    });
}
