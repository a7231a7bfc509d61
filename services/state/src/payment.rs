//! Paying institutions in a province (issue 12): the store around the pure rules of
//! [`medmesh_payment`].
//!
//! - Every settlement, reversal and case recovery is counted in a month account per
//!   institution ([`MonthAccount`], `imonth/{inst}/{YYYYMM}`): a settlement in its month, a
//!   recovery in the month it is executed, a reversal in its settlement's month, or in the
//!   month open at the time when that month was declared already (a late line). The pooling
//!   fund's own expenditure is counted per month too (`fundm/{YYYYMM}`), for its risk level.
//! - A declaration copies the month's account once the month is over; the review deducts lines
//!   (the amount goes from the institution's payable back to the pool: `FundLedger::deducted`);
//!   an accepted contest gives it back; a payment takes money off the payable and out of the
//!   fund (`FundLedger::institution_payments`), and what it settles from a prepayment back into
//!   the pool (`FundLedger::prepaid_offset`). The fund never pays more than its payable to the
//!   institution, whatever the declarations say.
//! - A prepayment (2024 notice) leaves the pool (`FundLedger::prepaid_out`) when the conditions
//!   hold; it is offset against monthly payments or repaid; one that cannot be recovered is
//!   written off to a case, and payments to the institution stop.
//!
//! Every step reads a bounded number of records: a month account, a declaration, at most
//! `history_years × 12` month accounts, an institution's prepayments.

use medmesh_payment::prepay::{self, Conditions};
use medmesh_payment::{Budget, Declaration, MonthAccount, PayError, Period, PrepaymentKind, PrepaymentPolicy, Sizing};
use medmesh_types::{Date, InstitutionId, LogTime, Money, Serial};

use crate::kv::{decode, keys, load, scan_prefix, KvRead, Tx};
use crate::model::*;
use crate::DomainError;

/// Most case outcomes of one institution read to find its last case.
const MAX_OUTCOMES_READ: usize = 10_000;

fn pay_error(e: PayError) -> DomainError {
    match e {
        PayError::Invalid { field, message } => DomainError::invalid(field, message),
        PayError::State { field, message } => DomainError::precondition(field, message),
        PayError::NotFound { field, message } => DomainError::not_found(field, message),
    }
}

fn update_month(tx: &mut Tx<'_>, inst: &InstitutionId, period: Period, f: impl FnOnce(&mut MonthAccount)) {
    let key = keys::month_account(inst, period);
    let mut m: MonthAccount = tx.load(&key).unwrap_or_default();
    f(&mut m);
    tx.store(&key, &m);
}

/// Adds `spent` (negative for a reversal) to the pooling fund's expenditure of `today`'s month:
/// the figure of its risk level.
pub(crate) fn add_fund_month(tx: &mut Tx<'_>, today: Date, spent: Money) {
    if spent.is_zero() {
        return;
    }
    let key = keys::fund_month(Period::of(today));
    let m: Money = tx.load(&key).unwrap_or_default();
    tx.store(&key, &(m + spent));
}

/// Adds `delta` to the consumption of the institution's budget of `year`, if it has one.
fn consume_budget(tx: &mut Tx<'_>, inst: &InstitutionId, year: i32, delta: Money, today: Date) {
    let key = keys::budget(inst, year);
    if let Some(mut b) = tx.load::<Budget>(&key) {
        if b.closed.is_none() {
            b.consume(delta, today);
            tx.store(&key, &b);
        }
    }
}

/// Counts a settlement made today: `owed` is what the fund owes the institution for it, `spent`
/// what the pool paid (pooling and critical illness; zero for a non-local patient).
pub(crate) fn count_settled(tx: &mut Tx<'_>, inst: &InstitutionId, today: Date, owed: Money, spent: Money) {
    update_month(tx, inst, Period::of(today), |m| {
        m.settled += owed;
        m.settlements += 1;
    });
    add_fund_month(tx, today, spent);
    consume_budget(tx, inst, today.year(), owed, today);
}

/// Counts a reversal made today of a settlement of `settled_on` (see the module docs).
pub(crate) fn count_reversed(
    tx: &mut Tx<'_>,
    inst: &InstitutionId,
    settled_on: Date,
    today: Date,
    owed: Money,
    spent: Money,
) {
    let own = Period::of(settled_on);
    let now = Period::of(today);
    let late = own != now && tx.load::<Declaration>(&keys::declaration(inst, own)).is_some();
    update_month(tx, inst, if late { now } else { own }, |m| {
        m.reversed += owed;
        m.reversals += 1;
        if late {
            m.late += 1;
        }
    });
    add_fund_month(tx, today, Money::ZERO - spent);
    consume_budget(tx, inst, settled_on.year(), Money::ZERO - owed, today);
}

/// Counts a recovery executed today.
pub(crate) fn count_recovered(tx: &mut Tx<'_>, inst: &InstitutionId, today: Date, amount: Money) {
    update_month(tx, inst, Period::of(today), |m| m.recovered += amount);
    consume_budget(tx, inst, today.year(), Money::ZERO - amount, today);
}

fn load_declaration(tx: &Tx<'_>, inst: &InstitutionId, period: Period) -> Result<Declaration, DomainError> {
    tx.load(&keys::declaration(inst, period))
        .ok_or_else(|| DomainError::not_found("period", format!("institution {inst} has not declared {period}")))
}

fn registered(kv: &dyn KvRead, inst: &InstitutionId) -> Result<Institution, DomainError> {
    load(kv, &keys::institution(inst))
        .ok_or_else(|| DomainError::not_found("institution_id", format!("institution {inst} is not registered")))
}

/// Runs `run` once per `reference` of `scope`: a retry answers the first outcome, another
/// request with the same reference is refused naming `field`.
fn once(
    tx: &mut Tx<'_>,
    scope: &str,
    field: &str,
    reference: &Serial,
    cmd: &ProvinceCommand,
    run: impl FnOnce(&mut Tx<'_>) -> Result<Outcome, DomainError>,
) -> Result<Outcome, DomainError> {
    crate::rules::idempotent(tx, scope, reference, cmd, run).map_err(|e| match e.code {
        crate::ErrorCode::AlreadyExists => {
            DomainError::exists(field, format!("{reference} was already used by a different request"))
        }
        _ => e,
    })
}

/// Applies a payment command (`cmd` is the whole command, for idempotency digests).
pub(crate) fn execute(
    tx: &mut Tx<'_>,
    step: &PaymentCommand,
    cmd: &ProvinceCommand,
    now: LogTime,
) -> Result<Outcome, DomainError> {
    let today = now.date();
    match step {
        PaymentCommand::Declare { institution, serial, period } => {
            crate::rules::idempotent(tx, institution.as_str(), serial, cmd, |tx| {
                registered(tx, institution)?;
                if let Some(d) = tx.load::<Declaration>(&keys::declaration(institution, *period)) {
                    return Err(DomainError::precondition(
                        "period",
                        format!("{period} was already declared by institution {institution} (serial {})", d.serial),
                    ));
                }
                let account: MonthAccount = tx.load(&keys::month_account(institution, *period)).unwrap_or_default();
                let d =
                    Declaration::new(institution.clone(), *period, serial.clone(), account, now).map_err(pay_error)?;
                tx.store(&keys::declaration(institution, *period), &d);
                Ok(Outcome::Declaration(Box::new(d)))
            })
        }
        PaymentCommand::Review { institution, period, deductions, note, province } => {
            let mut d = load_declaration(tx, institution, *period)?;
            let total = {
                let kv: &Tx<'_> = tx;
                d.review(deductions.clone(), note, now, |serial| deductible(kv, institution, *period, serial))
                    .map_err(pay_error)?
            };
            if !total.is_zero() {
                let pkey = keys::payable(institution);
                let mut pay: Payable = tx.load(&pkey).unwrap_or_default();
                if pay.amount < total {
                    return Err(DomainError::precondition(
                        "deductions",
                        format!(
                            "they add up to {total} but the fund owes institution {institution} only {}",
                            pay.amount
                        ),
                    ));
                }
                pay.amount -= total;
                tx.store(&pkey, &pay);
                let mut fund: FundLedger = tx.load(keys::FUND).unwrap_or_default();
                fund.deducted += total;
                tx.store(keys::FUND, &fund);
            }
            crate::credit::reviewed(tx, province, &d);
            tx.store(&keys::declaration(institution, *period), &d);
            Ok(Outcome::Declaration(Box::new(d)))
        }
        PaymentCommand::Contest { institution, period, settlement, reason } => {
            let mut d = load_declaration(tx, institution, *period)?;
            d.contest(settlement, reason, now).map_err(pay_error)?;
            tx.store(&keys::declaration(institution, *period), &d);
            Ok(Outcome::Declaration(Box::new(d)))
        }
        PaymentCommand::Resolve { institution, period, settlement, accept, reason, province } => {
            let mut d = load_declaration(tx, institution, *period)?;
            let back = d.resolve(settlement, *accept, reason, now).map_err(pay_error)?;
            if !back.is_zero() {
                let pkey = keys::payable(institution);
                let mut pay: Payable = tx.load(&pkey).unwrap_or_default();
                pay.amount += back;
                tx.store(&pkey, &pay);
                let mut fund: FundLedger = tx.load(keys::FUND).unwrap_or_default();
                fund.deducted -= back;
                tx.store(keys::FUND, &fund);
                crate::credit::reviewed(tx, province, &d);
            }
            tx.store(&keys::declaration(institution, *period), &d);
            Ok(Outcome::Declaration(Box::new(d)))
        }
        PaymentCommand::Pay { institution, period, reference, amount, offset } => {
            once(tx, &format!("~pay/{institution}"), "reference", reference, cmd, |tx| {
                pay(tx, institution, *period, reference, *amount, *offset, now)
            })
        }
        PaymentCommand::PutPolicy(p) => {
            p.validate().map_err(pay_error)?;
            tx.store(keys::PREPAYMENT_POLICY, p);
            Ok(Outcome::PrepaymentPolicy(p.clone()))
        }
        PaymentCommand::Prepay { institution, reference, kind, procurement } => {
            once(tx, &format!("~prepay/{institution}"), "reference", reference, cmd, |tx| {
                let sizing = assess(tx, institution, *kind, *procurement, today)?;
                let p = Prepayment {
                    institution: institution.clone(),
                    reference: reference.clone(),
                    kind: *kind,
                    amount: sizing.amount,
                    sizing,
                    granted_at: now,
                    offset: Money::ZERO,
                    repaid: Money::ZERO,
                    written_off: None,
                };
                let akey = keys::prepayment_account(institution);
                let mut account: PrepaymentAccount = tx.load(&akey).unwrap_or_default();
                account.open.push(reference.clone());
                account.outstanding += p.amount;
                tx.store(&akey, &account);
                let mut fund: FundLedger = tx.load(keys::FUND).unwrap_or_default();
                fund.prepaid_out += p.amount;
                tx.store(keys::FUND, &fund);
                tx.store(&keys::prepayment(institution, reference), &p);
                Ok(Outcome::Prepayment(Box::new(p)))
            })
        }
        PaymentCommand::Repay { institution, reference, receipt, amount } => {
            once(tx, &format!("~repay/{institution}"), "receipt", receipt, cmd, |tx| {
                let pkey = keys::prepayment(institution, reference);
                let mut p: Prepayment = tx.load(&pkey).ok_or_else(|| {
                    DomainError::not_found(
                        "reference",
                        format!("institution {institution} has no prepayment {reference}"),
                    )
                })?;
                if *amount > p.remaining() {
                    return Err(DomainError::precondition(
                        "amount",
                        format!("{amount} is more than the {} remaining of prepayment {reference}", p.remaining()),
                    ));
                }
                p.repaid += *amount;
                let akey = keys::prepayment_account(institution);
                let mut account: PrepaymentAccount = tx.load(&akey).unwrap_or_default();
                account.outstanding -= *amount;
                if p.remaining().is_zero() {
                    account.open.retain(|r| r != reference);
                    if p.written_off.is_some() {
                        // Recovered after all: payments may resume (unless another is stopped).
                        account.stopped = written_off_other(tx, institution, &account, reference);
                    }
                }
                tx.store(&akey, &account);
                let mut fund: FundLedger = tx.load(keys::FUND).unwrap_or_default();
                fund.prepaid_repaid += *amount;
                tx.store(keys::FUND, &fund);
                tx.store(&pkey, &p);
                Ok(Outcome::Prepayment(Box::new(p)))
            })
        }
        PaymentCommand::PutBudget { institution, year, terms } => {
            registered(tx, institution)?;
            let key = keys::budget(institution, *year);
            let previous: Option<Budget> = tx.load(&key);
            let (Some(first), Some(last)) = (Period::new(*year, 1), Period::new(*year, 12)) else {
                return Err(DomainError::invalid("year", "must be 2000 to 2199"));
            };
            let consumed = if previous.is_none() {
                // What the year consumed before it had a budget.
                months(first, Period::of(today).min(last), |p| {
                    load::<MonthAccount>(tx, &keys::month_account(institution, p)).map(|m| m.net())
                })
                .into_iter()
                .fold(Money::ZERO, |s, (_, m)| s + m)
            } else {
                Money::ZERO
            };
            let b =
                Budget::put(previous, institution.clone(), *year, terms.clone(), consumed, today).map_err(pay_error)?;
            tx.store(&key, &b);
            Ok(Outcome::Budget(Box::new(b)))
        }
        PaymentCommand::CloseBudgetYear { institution, year } => {
            let key = keys::budget(institution, *year);
            let mut b: Budget = tx.load(&key).ok_or_else(|| {
                DomainError::not_found("year", format!("institution {institution} has no budget for {year}"))
            })?;
            let end = b.close_year(today).map_err(pay_error)?;
            if !end.institution_bears.is_zero() {
                let pkey = keys::payable(institution);
                let mut pay: Payable = tx.load(&pkey).unwrap_or_default();
                let taken = pay.withhold(end.institution_bears);
                tx.store(&pkey, &pay);
                let mut fund: FundLedger = tx.load(keys::FUND).unwrap_or_default();
                fund.budget_withheld += taken;
                fund.recovery_due += end.institution_bears - taken;
                tx.store(keys::FUND, &fund);
                // The month open now declares less by it.
                update_month(tx, institution, Period::of(today), |m| m.recovered += end.institution_bears);
            }
            tx.store(&key, &b);
            Ok(Outcome::Budget(Box::new(b)))
        }
        PaymentCommand::WriteOff { institution, reference, case_id, reason } => {
            let pkey = keys::prepayment(institution, reference);
            let mut p: Prepayment = tx.load(&pkey).ok_or_else(|| {
                DomainError::not_found("reference", format!("institution {institution} has no prepayment {reference}"))
            })?;
            if let Some(w) = &p.written_off {
                return Err(DomainError::precondition(
                    "reference",
                    format!("prepayment {reference} was already written off to case {}", w.case_id),
                ));
            }
            if p.remaining().is_zero() {
                return Err(DomainError::precondition("reference", format!("prepayment {reference} was recovered")));
            }
            let case: medmesh_supervision::cases::Case = tx
                .load(&keys::case(case_id))
                .ok_or_else(|| DomainError::not_found("case_id", format!("no case {case_id}")))?;
            if &case.institution != institution {
                return Err(DomainError::precondition(
                    "case_id",
                    format!("case {case_id} is about institution {}, not {institution}", case.institution),
                ));
            }
            p.written_off = Some(WrittenOff { case_id: case_id.clone(), reason: reason.clone(), at: now });
            let akey = keys::prepayment_account(institution);
            let mut account: PrepaymentAccount = tx.load(&akey).unwrap_or_default();
            account.stopped = Some(format!(
                "prepayment {reference} ({} remaining) could not be recovered; case {case_id} is in judicial proceedings",
                p.remaining()
            ));
            tx.store(&akey, &account);
            tx.store(&pkey, &p);
            Ok(Outcome::Prepayment(Box::new(p)))
        }
    }
}

/// Why payments stay stopped once `repaid` is recovered: another written-off prepayment still
/// open.
fn written_off_other(
    tx: &Tx<'_>,
    inst: &InstitutionId,
    account: &PrepaymentAccount,
    repaid: &Serial,
) -> Option<String> {
    account.open.iter().filter(|r| *r != repaid).find_map(|r| {
        let p: Prepayment = tx.load(&keys::prepayment(inst, r))?;
        p.written_off
            .map(|w| format!("prepayment {r} could not be recovered; case {} is in judicial proceedings", w.case_id))
    })
}

/// The most a review may deduct from `serial`: its fund share, if it is a local settlement in
/// force of the institution in `period` that no case recovered on.
fn deductible(kv: &dyn KvRead, inst: &InstitutionId, period: Period, serial: &Serial) -> Result<Money, String> {
    let s: Settlement = load(kv, &keys::settlement(inst, serial))
        .ok_or_else(|| format!("settlement {serial} of institution {inst} does not exist"))?;
    if Period::of(s.settled_on) != period {
        return Err(format!("settlement {serial} was made on {}, not in {period}", s.settled_on));
    }
    if s.insured.is_some() {
        return Err(format!(
            "settlement {serial} is non-local: its fund share is the insured province's, corrected through clearing"
        ));
    }
    if s.status != SettlementStatus::Settled {
        return Err(format!("settlement {serial} is not in force (reversed)"));
    }
    if let Some(case) = load::<String>(kv, &keys::recovered_settlement(inst, serial)) {
        return Err(format!("case {case} recovered on settlement {serial} already"));
    }
    Ok(s.split.fund_total() + s.split.individual_account)
}

fn pay(
    tx: &mut Tx<'_>,
    inst: &InstitutionId,
    period: Period,
    reference: &Serial,
    amount: Money,
    offset: Money,
    now: LogTime,
) -> Result<Outcome, DomainError> {
    let akey = keys::prepayment_account(inst);
    let mut account: PrepaymentAccount = tx.load(&akey).unwrap_or_default();
    if let Some(why) = &account.stopped {
        return Err(DomainError::precondition("institution_id", format!("payments to {inst} are stopped: {why}")));
    }
    let mut d = load_declaration(tx, inst, period)?;
    d.pay(reference, amount, offset).map_err(pay_error)?;
    if offset > account.outstanding {
        return Err(DomainError::precondition(
            "offset",
            format!("{offset} is more than the {} of prepayments outstanding to {inst}", account.outstanding),
        ));
    }
    let pkey = keys::payable(inst);
    let mut payable: Payable = tx.load(&pkey).unwrap_or_default();
    if amount + offset > payable.amount {
        return Err(DomainError::precondition(
            "amount",
            format!(
                "{} is more than the fund owes institution {inst} ({}: recoveries and reversals are netted)",
                amount + offset,
                payable.amount
            ),
        ));
    }
    payable.amount -= amount + offset;
    tx.store(&pkey, &payable);
    // The offset settles the oldest prepayments first.
    let mut left = offset;
    let mut open = Vec::new();
    for r in std::mem::take(&mut account.open) {
        let key = keys::prepayment(inst, &r);
        if let Some(mut p) = tx.load::<Prepayment>(&key) {
            let take = left.min(p.remaining());
            if !take.is_zero() {
                p.offset += take;
                left -= take;
                tx.store(&key, &p);
            }
            if !p.remaining().is_zero() {
                open.push(r);
            }
        }
    }
    account.open = open;
    account.outstanding -= offset;
    tx.store(&akey, &account);
    let mut fund: FundLedger = tx.load(keys::FUND).unwrap_or_default();
    fund.institution_payments += amount;
    fund.prepaid_offset += offset;
    tx.store(keys::FUND, &fund);
    let record =
        PaymentRecord { institution: inst.clone(), period, reference: reference.clone(), amount, offset, at: now };
    tx.store(&keys::payment(inst, reference), &record);
    tx.store(&keys::declaration(inst, period), &d);
    Ok(Outcome::Paid(Box::new((record, d))))
}

/// The province's prepayment policy (defaults until one is put).
pub fn policy(kv: &dyn KvRead) -> PrepaymentPolicy {
    load(kv, keys::PREPAYMENT_POLICY).unwrap_or_default()
}

/// Sizes a prepayment of `kind` to `inst` on `today` and checks the 2024 notice's conditions
/// (what [`PaymentCommand::Prepay`] grants and a quote shows).
pub fn assess(
    kv: &dyn KvRead,
    inst: &InstitutionId,
    kind: PrepaymentKind,
    procurement: Money,
    today: Date,
) -> Result<Sizing, DomainError> {
    let policy = policy(kv);
    let institution = registered(kv, inst)?;
    let this_month = Period::of(today);
    let sizing = match kind {
        PrepaymentKind::General => {
            if !procurement.is_zero() {
                return Err(DomainError::invalid("procurement_amount", "is for a central procurement prepayment only"));
            }
            let from = this_month.minus_months(12 * policy.history_years);
            let monthly = months(from, this_month.prev(), |p| {
                load::<MonthAccount>(kv, &keys::month_account(inst, p)).map(|m| m.net())
            });
            prepay::size_general(&monthly, this_month, institution.agreement_start, policy.history_years)
        }
        PrepaymentKind::CentralProcurement => prepay::size_special(procurement, policy.procurement_percent),
    }
    .map_err(pay_error)?;
    let fund: FundLedger = load(kv, keys::FUND).unwrap_or_default();
    let account: PrepaymentAccount = load(kv, &keys::prepayment_account(inst)).unwrap_or_default();
    let outstanding = account.open.iter().find(|r| {
        load::<Prepayment>(kv, &keys::prepayment(inst, r)).is_some_and(|p| p.kind == kind && !p.remaining().is_zero())
    });
    let last_case = scan_prefix(kv, &keys::case_outcomes(inst), MAX_OUTCOMES_READ)
        .iter()
        .map(|(_, v)| decode::<medmesh_supervision::cases::CaseOutcome>(v).decided_on)
        .max();
    let conditions = Conditions {
        fund_balance: fund.with_prepaid(),
        fund_monthly_expenditure: fund_monthly_expenditure(kv, today).2,
        agreement: crate::rules::active_institution(kv, inst, today).map(|_| ()).map_err(|e| e.message),
        last_case,
        outstanding: outstanding.map(|r| r.to_string()),
        stopped: account.stopped.clone(),
        poor_credit: crate::credit::rating(kv, inst, today, "institution_id")
            .ok()
            .filter(|r| r.grade == medmesh_supervision::credit::Grade::D)
            .map(|r| crate::credit::summary(&r)),
        today,
    };
    prepay::check_conditions(&policy, &conditions).map_err(pay_error)?;
    if sizing.amount > fund.balance() {
        return Err(DomainError::precondition(
            "fund",
            format!("the pooling fund's balance {} does not cover {}", fund.balance(), sizing.amount),
        ));
    }
    Ok(sizing)
}

/// The months `from..=to` with a value (at most 36 point reads).
fn months(from: Period, to: Period, get: impl Fn(Period) -> Option<Money>) -> Vec<(Period, Money)> {
    let mut out = Vec::new();
    let mut p = from;
    while p <= to {
        if let Some(m) = get(p) {
            out.push((p, m));
        }
        p = p.next();
    }
    out
}

/// An institution's budget of `year`.
pub fn budget(kv: &dyn KvRead, inst: &InstitutionId, year: i32) -> Result<Budget, DomainError> {
    load(kv, &keys::budget(inst, year))
        .ok_or_else(|| DomainError::not_found("year", format!("institution {inst} has no budget for {year}")))
}

/// The pooling fund's risk level: months of its average monthly expenditure (over the 12 full
/// months before the group's current month; local care and the fund share of its insured's
/// non-local care) that its balance with its prepaid account covers
/// ([`crate::FundLedger::with_prepaid`]), against the policy's `min_months_covered`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FundRisk {
    /// Average monthly expenditure (pooling and critical illness) over the window.
    pub monthly_expenditure: Money,
    /// Months covered, in tenths (rounded down); `None` when nothing was spent.
    pub months_covered_tenths: Option<i64>,
    /// The threshold, in months.
    pub threshold_months: u32,
    /// Why the fund is at risk; `None` when it is not.
    pub warning: Option<String>,
}

/// The pooling fund's average monthly expenditure (pooling and critical illness) over the 12
/// full months before `today`'s month, with the window: the figure of its risk level and of the
/// prepayment condition.
fn fund_monthly_expenditure(kv: &dyn KvRead, today: Date) -> (Period, Period, Money) {
    let to = Period::of(today).prev();
    (to.minus_months(11), to, monthly_expenditure_to(kv, to))
}

/// The pooling fund's average monthly expenditure over the 12 months ending with `to`.
pub(crate) fn monthly_expenditure_to(kv: &dyn KvRead, to: Period) -> Money {
    let from = to.minus_months(11);
    let spent = months(from, to, |p| load::<Money>(kv, &keys::fund_month(p)));
    let (total, n) = prepay::total_over(&spent, from, to);
    prepay::average(total, n)
}

/// The fund's risk level on `today` (the group's time; `None` before the first command).
pub fn fund_risk(kv: &dyn KvRead, balance: Money, today: Option<Date>) -> FundRisk {
    let threshold_months = policy(kv).min_months_covered;
    let Some(today) = today else { return FundRisk { threshold_months, ..FundRisk::default() } };
    let (from, to, monthly_expenditure) = fund_monthly_expenditure(kv, today);
    let Some(tenths) = prepay::months_covered_tenths(balance, monthly_expenditure) else {
        return FundRisk { monthly_expenditure, months_covered_tenths: None, threshold_months, warning: None };
    };
    let warning = (tenths < i64::from(threshold_months) * 10).then(|| {
        format!(
            "the pooling fund's balance with its prepaid account, {balance}, covers {}.{} months of its average monthly expenditure {monthly_expenditure} ({from} to {to}), below {threshold_months}",
            tenths / 10,
            tenths % 10
        )
    });
    FundRisk { monthly_expenditure, months_covered_tenths: Some(tenths), threshold_months, warning }
}

/// An institution's month: its account so far, its declaration and the payments against it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PaymentStatement {
    /// The institution.
    pub institution: InstitutionId,
    /// The month.
    pub period: Period,
    /// The month's account now (a declaration keeps the one it declared).
    pub account: MonthAccount,
    /// The declaration, once made.
    pub declaration: Option<Declaration>,
    /// The payments against it, in order.
    pub payments: Vec<PaymentRecord>,
}

/// The statement of `inst` for `period`.
pub fn statement(kv: &dyn KvRead, inst: &InstitutionId, period: Period) -> Result<PaymentStatement, DomainError> {
    registered(kv, inst)?;
    let declaration: Option<Declaration> = load(kv, &keys::declaration(inst, period));
    let payments = declaration
        .as_ref()
        .map(|d| d.payments.iter().filter_map(|r| load(kv, &keys::payment(inst, r))).collect())
        .unwrap_or_default();
    Ok(PaymentStatement {
        institution: inst.clone(),
        period,
        account: load(kv, &keys::month_account(inst, period)).unwrap_or_default(),
        declaration,
        payments,
    })
}

/// An institution's declarations after `after` (all when `None`), oldest first.
pub fn declarations(kv: &dyn KvRead, inst: &InstitutionId, after: Option<Period>, limit: usize) -> Vec<Declaration> {
    let prefix = keys::declarations(inst);
    let start = match after {
        Some(p) => format!("{}\u{0}", keys::declaration(inst, p)),
        None => prefix.clone(),
    };
    let mut end = prefix.into_bytes();
    if let Some(b) = end.last_mut() {
        *b += 1;
    }
    kv.scan(start.as_bytes(), &end, limit).iter().map(|(_, v)| decode(v)).collect()
}

/// An institution's prepayment account and prepayments (at most `limit`).
pub fn prepayments(kv: &dyn KvRead, inst: &InstitutionId, limit: usize) -> (PrepaymentAccount, Vec<Prepayment>) {
    let list = scan_prefix(kv, &keys::prepayments(inst), limit).iter().map(|(_, v)| decode(v)).collect();
    (load(kv, &keys::prepayment_account(inst)).unwrap_or_default(), list)
}

/// Checks a payment command's fields before any state is read.
pub(crate) fn validate(cmd: &PaymentCommand) -> Result<(), DomainError> {
    let text = |field: &str, t: &str| medmesh_payment::cycle::check_text(field, t).map_err(pay_error);
    let money = |field: &str, m: Money| {
        if m.is_negative() {
            Err(DomainError::invalid(field, "must not be negative"))
        } else if m.as_decimal() > rust_decimal::Decimal::from(medmesh_types::MAX_YUAN) {
            Err(DomainError::invalid(field, format!("above the limit of {} yuan", medmesh_types::MAX_YUAN)))
        } else {
            Ok(())
        }
    };
    match cmd {
        PaymentCommand::Declare { .. } => Ok(()),
        PaymentCommand::Review { deductions, note, province, .. } => {
            crate::rules::province("province", province)?;
            if deductions.len() > medmesh_payment::cycle::MAX_DEDUCTIONS {
                return Err(DomainError::too_large(
                    "deductions",
                    format!("at most {} lines per review", medmesh_payment::cycle::MAX_DEDUCTIONS),
                ));
            }
            if note.len() > medmesh_payment::cycle::MAX_TEXT_LEN {
                return Err(DomainError::invalid("note", "is too long"));
            }
            for (i, d) in deductions.iter().enumerate() {
                money(&format!("deductions[{i}].amount"), d.amount)?;
                text(&format!("deductions[{i}].reason"), &d.reason)?;
            }
            Ok(())
        }
        PaymentCommand::Contest { reason, .. } => text("reason", reason),
        PaymentCommand::Resolve { reason, province, .. } => {
            crate::rules::province("province", province)?;
            text("reason", reason)
        }
        PaymentCommand::Pay { amount, offset, .. } => {
            money("amount", *amount)?;
            money("offset", *offset)
        }
        PaymentCommand::PutPolicy(p) => p.validate().map_err(pay_error),
        PaymentCommand::Prepay { procurement, .. } => money("procurement_amount", *procurement),
        PaymentCommand::Repay { amount, .. } => {
            money("amount", *amount)?;
            if amount.is_zero() {
                return Err(DomainError::invalid("amount", "must be positive"));
            }
            Ok(())
        }
        PaymentCommand::PutBudget { terms, .. } => money("amount", terms.amount),
        PaymentCommand::CloseBudgetYear { .. } => Ok(()),
        PaymentCommand::WriteOff { case_id, reason, .. } => {
            medmesh_supervision::cases::check_case_id(case_id)
                .map_err(|e| DomainError::invalid("case_id", e.to_string()))?;
            text("reason", reason)
        }
    }
}
