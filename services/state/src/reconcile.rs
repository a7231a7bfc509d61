//! Reconciliation of a month's clearing (issue 12.4): the federation's lines against a
//! province's own ledger, transfer by transfer, listing every difference.
//!
//! Two walks cover a month between them, each bounded per page:
//!
//! - **The federation's lines of the month** that involve the province ([`check_line`]): a
//!   settlement line needs a committed record here of the same amount, reversed on both sides or
//!   on neither; a reversal line needs the record reversed here; an upheld dispute's adjustment
//!   line is listed as [`DifferenceKind::Adjusted`] (agreed by the nation, unknown to the
//!   province's own ledger).
//! - **The province's own non-local records committed in the month** by its log time
//!   ([`check_record`]): each needs a commit at the federation. A record whose line is in another
//!   month (the two groups' months may differ near a month's end) is checked with that month's
//!   lines; only a line the federation removed (a reversal while the month was open) is checked
//!   here, since no month's lines show it any more.
//!
//! A transfer still in flight (decided at the federation, its second phase not yet applied
//! here) shows as a difference until it lands; reconciling again then finds none.

use medmesh_payment::Period;
use medmesh_types::{LogTime, Money, ProvinceCode};
use serde::{Deserialize, Serialize};

use crate::kv::{decode, keys, load, KvRead, Tx};
use crate::model::{Settlement, SettlementStatus};
use crate::shared::*;
use crate::{Answer, DomainError, MAX_ROWS};

/// What a province's own ledger holds of one non-local transfer, committed here: the treatment
/// province's settlement or the insured province's posted reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalRecord {
    /// What the insured province pays for it: fund share plus individual account.
    pub amount: Money,
    /// Reversed here.
    pub reversed: bool,
}

/// What the federation holds of one transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FedRecord {
    /// The decision, if one was recorded.
    pub decision: Option<DecisionRecord>,
    /// The month of its settlement line, while it has one.
    pub line_month: Option<String>,
}

/// How the two sides differ on a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DifferenceKind {
    /// The federation has a line; this province has no committed record.
    NotHere,
    /// This province has a committed record; the federation recorded no commit.
    NotAtFederation,
    /// Both have it, for different amounts.
    Amount,
    /// Reversed here, in force at the federation.
    ReversedHere,
    /// Reversed at the federation, in force here.
    ReversedAtFederation,
    /// An upheld dispute's adjustment line: agreed by the nation, not in the province's ledger.
    Adjusted,
}

impl DifferenceKind {
    /// The name in the API.
    pub fn name(self) -> &'static str {
        match self {
            DifferenceKind::NotHere => "NOT_HERE",
            DifferenceKind::NotAtFederation => "NOT_AT_FEDERATION",
            DifferenceKind::Amount => "AMOUNT",
            DifferenceKind::ReversedHere => "REVERSED_HERE",
            DifferenceKind::ReversedAtFederation => "REVERSED_AT_FEDERATION",
            DifferenceKind::Adjusted => "ADJUSTED",
        }
    }
}

/// One difference between the federation and a province on a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    /// The transfer.
    pub transfer: TransferId,
    /// How they differ.
    pub kind: DifferenceKind,
    /// The federation's line (its kind), when the difference was found on one.
    pub line: Option<LineKind>,
    /// What the federation has: the line's amount, or what it recorded at commit.
    pub federation_amount: Money,
    /// What this province's ledger has (zero without a committed record).
    pub local_amount: Money,
}

/// Checks one of the federation's lines against this province's record of its transfer.
/// `fed_reversed`: the federation recorded a reversal of the transfer.
pub fn check_line(
    transfer: &TransferId,
    line: &ClearingLine,
    fed_reversed: bool,
    local: Option<&LocalRecord>,
) -> Option<Difference> {
    let local_amount = local.map(|l| l.amount).unwrap_or(Money::ZERO);
    let found = |kind| {
        Some(Difference {
            transfer: transfer.clone(),
            kind,
            line: Some(line.kind),
            federation_amount: line.amount,
            local_amount,
        })
    };
    match (line.kind, local) {
        (LineKind::Dispute, _) => found(DifferenceKind::Adjusted),
        (_, None) => found(DifferenceKind::NotHere),
        (LineKind::Settlement, Some(l)) if l.amount != line.amount => found(DifferenceKind::Amount),
        (LineKind::Settlement, Some(l)) if fed_reversed && !l.reversed => found(DifferenceKind::ReversedAtFederation),
        (LineKind::Settlement, Some(l)) if !fed_reversed && l.reversed => found(DifferenceKind::ReversedHere),
        (LineKind::Reversal, Some(l)) if !l.reversed => found(DifferenceKind::ReversedAtFederation),
        _ => None,
    }
}

/// Checks one of this province's records committed in the month against the federation.
pub fn check_record(transfer: &TransferId, local: &LocalRecord, fed: &FedRecord) -> Option<Difference> {
    let found = |kind, federation_amount| {
        Some(Difference { transfer: transfer.clone(), kind, line: None, federation_amount, local_amount: local.amount })
    };
    match &fed.decision {
        Some(d) if d.decision == Decision::Commit => {
            let removed = d.reversed.is_some() && fed.line_month.is_none();
            if removed && !local.reversed {
                found(DifferenceKind::ReversedAtFederation, d.amount)
            } else {
                None
            }
        }
        _ => found(DifferenceKind::NotAtFederation, Money::ZERO),
    }
}

/// The lines of a clearing page of the pairs with province `own`, with their transfers.
pub fn lines_of(view: ClearingView, own: &ProvinceCode) -> Vec<(TransferId, ClearingLine)> {
    let mut lines = Vec::new();
    for st in view.statements.into_iter().filter(|s| &s.insured == own || &s.treatment == own) {
        for line in st.lines {
            let t = TransferId {
                treatment: st.treatment.clone(),
                institution: line.institution.clone(),
                serial: line.serial.clone(),
            };
            lines.push((t, line));
        }
    }
    lines
}

/// The differences on a page of lines, given both sides' records of their transfers in the
/// same order.
pub fn diff_lines(
    lines: &[(TransferId, ClearingLine)],
    fed: &[FedRecord],
    local: &[Option<LocalRecord>],
) -> Vec<Difference> {
    lines
        .iter()
        .zip(fed.iter().zip(local.iter()))
        .filter_map(|((t, line), (f, l))| {
            let reversed = f.decision.as_ref().is_some_and(|d| d.reversed.is_some());
            check_line(t, line, reversed, l.as_ref())
        })
        .collect()
}

/// The differences on a page of this province's records of the month, given both sides'
/// records in the same order (a record reversed since is still one of the month's).
pub fn diff_records(transfers: &[TransferId], fed: &[FedRecord], local: &[Option<LocalRecord>]) -> Vec<Difference> {
    transfers
        .iter()
        .zip(fed.iter().zip(local.iter()))
        .filter_map(|(t, (f, l))| l.as_ref().and_then(|l| check_record(t, l, f)))
        .collect()
}

/// Either side: indexes a non-local transfer committed here now under this group's month.
pub(crate) fn index(tx: &mut Tx<'_>, transfer: &TransferId, now: LogTime) {
    tx.store(&keys::nonlocal_month(&Period::of(now.date()).to_string(), transfer), transfer);
}

/// A province's record of a non-local transfer committed here, if it has one: as the
/// treatment province (`own` is `transfer.treatment`) its settlement, else its reservation.
pub(crate) fn local_record(kv: &dyn KvRead, own: &ProvinceCode, transfer: &TransferId) -> Option<LocalRecord> {
    if &transfer.treatment == own {
        let s: Settlement = load(kv, &keys::settlement(&transfer.institution, &transfer.serial))?;
        s.insured.as_ref()?;
        Some(LocalRecord {
            amount: s.split.fund_total() + s.split.individual_account,
            reversed: matches!(s.status, SettlementStatus::Reversed { .. }),
        })
    } else {
        let r: Reservation = load(kv, &keys::reservation(transfer))?;
        match r.status {
            ReservationStatus::Posted => Some(LocalRecord { amount: r.amount(), reversed: false }),
            ReservationStatus::Reversed => Some(LocalRecord { amount: r.amount(), reversed: true }),
            ReservationStatus::Pending | ReservationStatus::Voided => None,
        }
    }
}

fn check_batch(transfers: &[TransferId]) -> Result<(), DomainError> {
    if transfers.len() > MAX_ROWS {
        return Err(DomainError::invalid("transfers", format!("at most {MAX_ROWS} at once")));
    }
    Ok(())
}

/// Federation: its records of `transfers`, in order.
pub(crate) fn fed_records(kv: &dyn KvRead, transfers: &[TransferId]) -> Result<Answer, DomainError> {
    check_batch(transfers)?;
    Ok(Answer::FedRecords(
        transfers
            .iter()
            .map(|t| FedRecord {
                decision: load(kv, &keys::fed_decision(t)),
                line_month: crate::clearing::line_month(kv, t),
            })
            .collect(),
    ))
}

/// Province `own`: its committed records of `transfers`, in order.
pub(crate) fn local_records(
    kv: &dyn KvRead,
    own: &ProvinceCode,
    transfers: &[TransferId],
) -> Result<Answer, DomainError> {
    check_batch(transfers)?;
    Ok(Answer::LocalRecords(transfers.iter().map(|t| local_record(kv, own, t)).collect()))
}

/// Province: up to `limit` transfers committed here in `month` after the cursor `after`.
pub(crate) fn month_transfers(kv: &dyn KvRead, month: &str, after: &str, limit: usize) -> Result<Answer, DomainError> {
    let month = crate::clearing::check_month(month)?.to_string();
    if !(1..=MAX_ROWS).contains(&limit) {
        return Err(DomainError::invalid("page_size", format!("must be 1 to {MAX_ROWS}")));
    }
    let prefix = keys::nonlocal_months(&month);
    let start = if after.is_empty() { prefix.clone() } else { format!("{prefix}{after}\u{0}") };
    let mut end = prefix.clone().into_bytes();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let rows = kv.scan(start.as_bytes(), &end, limit + 1);
    let more = rows.len() > limit;
    let transfers: Vec<TransferId> = rows.iter().take(limit).map(|(_, v)| decode(v)).collect();
    let next = match transfers.last() {
        Some(t) if more => t.key(),
        _ => String::new(),
    };
    Ok(Answer::MonthTransfers { transfers, next })
}

#[cfg(test)]
mod tests {
    use medmesh_types::{InstitutionId, LogTime, Serial};

    use super::*;

    fn t() -> TransferId {
        TransferId {
            treatment: ProvinceCode::new("110000").unwrap(),
            institution: InstitutionId::new("H110000-01").unwrap(),
            serial: Serial::new("S1").unwrap(),
        }
    }

    fn y(s: &str) -> Money {
        Money::parse_signed_yuan(s).unwrap()
    }

    fn line(kind: LineKind, amount: &str) -> ClearingLine {
        let t = t();
        ClearingLine {
            institution: t.institution,
            serial: t.serial,
            amount: y(amount),
            kind,
            confirmed: false,
            dispute: None,
        }
    }

    fn local(amount: &str, reversed: bool) -> LocalRecord {
        LocalRecord { amount: y(amount), reversed }
    }

    fn decided(decision: Decision, amount: &str, reversed: bool) -> Option<DecisionRecord> {
        Some(DecisionRecord {
            transfer: t(),
            insured: ProvinceCode::new("310000").unwrap(),
            amount: y(amount),
            decision,
            reason: String::new(),
            decided_at: LogTime(0),
            reversed: reversed.then(|| Serial::new("R1").unwrap()),
        })
    }

    fn kind(d: Option<Difference>) -> Option<&'static str> {
        d.map(|d| d.kind.name())
    }

    #[test]
    fn a_settlement_line_agrees_only_with_the_same_amount_in_the_same_state() {
        let s = line(LineKind::Settlement, "80.00");
        assert_eq!(kind(check_line(&t(), &s, false, Some(&local("80.00", false)))), None);
        assert_eq!(kind(check_line(&t(), &s, true, Some(&local("80.00", true)))), None);
        assert_eq!(kind(check_line(&t(), &s, false, None)), Some("NOT_HERE"));
        let d = check_line(&t(), &s, false, Some(&local("79.99", false))).unwrap();
        assert_eq!((d.kind.name(), d.federation_amount, d.local_amount), ("AMOUNT", y("80.00"), y("79.99")));
        assert_eq!(kind(check_line(&t(), &s, true, Some(&local("80.00", false)))), Some("REVERSED_AT_FEDERATION"));
        assert_eq!(kind(check_line(&t(), &s, false, Some(&local("80.00", true)))), Some("REVERSED_HERE"));
    }

    #[test]
    fn a_reversal_line_needs_the_record_reversed_here_and_an_adjustment_is_always_listed() {
        let r = line(LineKind::Reversal, "-80.00");
        assert_eq!(kind(check_line(&t(), &r, true, Some(&local("80.00", true)))), None);
        assert_eq!(kind(check_line(&t(), &r, true, Some(&local("80.00", false)))), Some("REVERSED_AT_FEDERATION"));
        assert_eq!(kind(check_line(&t(), &r, true, None)), Some("NOT_HERE"));
        let a = check_line(&t(), &line(LineKind::Dispute, "10.00"), false, Some(&local("80.00", false))).unwrap();
        assert_eq!((a.kind.name(), a.federation_amount, a.local_amount), ("ADJUSTED", y("10.00"), y("80.00")));
    }

    #[test]
    fn a_record_needs_a_commit_at_the_federation_and_a_removed_line_needs_its_reversal_here() {
        let committed = |reversed, month: Option<&str>| FedRecord {
            decision: decided(Decision::Commit, "80.00", reversed),
            line_month: month.map(str::to_string),
        };
        let l = local("80.00", false);
        assert_eq!(kind(check_record(&t(), &l, &committed(false, Some("2026-11")))), None);
        // The line's month checks amounts and reversals; a record's walk does not repeat it.
        assert_eq!(kind(check_record(&t(), &local("1.00", false), &committed(false, Some("2026-10")))), None);
        let none = FedRecord { decision: None, line_month: None };
        let d = check_record(&t(), &l, &none).unwrap();
        assert_eq!(
            (d.kind.name(), d.federation_amount, d.local_amount),
            ("NOT_AT_FEDERATION", Money::ZERO, y("80.00"))
        );
        let aborted = FedRecord { decision: decided(Decision::Abort, "0", false), line_month: None };
        assert_eq!(kind(check_record(&t(), &l, &aborted)), Some("NOT_AT_FEDERATION"));
        // Reversed while its month was open: the line is gone, so the record's walk checks it.
        assert_eq!(kind(check_record(&t(), &l, &committed(true, None))), Some("REVERSED_AT_FEDERATION"));
        assert_eq!(kind(check_record(&t(), &local("80.00", true), &committed(true, None))), None);
    }
}
