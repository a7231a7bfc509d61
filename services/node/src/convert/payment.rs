//! Declarations, deductions, payments, statements and prepayments on the wire, both ways.

use medmesh_payment::cycle::DeclarationStatus;
use medmesh_payment::{
    Budget, BudgetTerms, Declaration, DeductionInput, MonthAccount, Period, PrepaymentKind, PrepaymentPolicy, Sizing,
};
use medmesh_state::payment::PaymentStatement;
use medmesh_state::{PaymentCommand, PaymentRecord, Prepayment, PREPAYMENT_PURPOSE};
use tonic::Status;

use super::{bad, institution, money, money_or_zero, serial};
use crate::pb;

/// A month, `YYYY-MM`.
pub fn period(field: &str, v: &str) -> Result<Period, Status> {
    Period::parse(v).ok_or_else(|| bad(field, "must be a month, YYYY-MM (2000-01 to 2199-12)"))
}

/// A prepayment kind.
pub fn prepayment_kind(field: &str, v: i32) -> Result<PrepaymentKind, Status> {
    match pb::PrepaymentKind::try_from(v) {
        Ok(pb::PrepaymentKind::General) => Ok(PrepaymentKind::General),
        Ok(pb::PrepaymentKind::CentralProcurement) => Ok(PrepaymentKind::CentralProcurement),
        _ => Err(bad(field, "must be GENERAL or CENTRAL_PROCUREMENT")),
    }
}

fn prepayment_kind_pb(k: PrepaymentKind) -> i32 {
    let v = match k {
        PrepaymentKind::General => pb::PrepaymentKind::General,
        PrepaymentKind::CentralProcurement => pb::PrepaymentKind::CentralProcurement,
    };
    v as i32
}

/// A month's account.
pub fn month_account_pb(m: &MonthAccount) -> pb::MonthAccount {
    pb::MonthAccount {
        settled: m.settled.to_string(),
        settlements: m.settlements,
        reversed: m.reversed.to_string(),
        reversals: m.reversals,
        recovered: m.recovered.to_string(),
        late_lines: m.late,
        net: m.net().to_string(),
    }
}

/// A declaration.
pub fn declaration_pb(d: &Declaration) -> pb::Declaration {
    let deductions = d
        .deductions
        .iter()
        .map(|x| {
            let (contest, contest_reason, resolution_reason) = match &x.contest {
                None => (pb::ContestStatus::Unspecified, String::new(), String::new()),
                Some(c) => match &c.resolution {
                    None => (pb::ContestStatus::Open, c.reason.clone(), String::new()),
                    Some(r) if r.accepted => (pb::ContestStatus::Accepted, c.reason.clone(), r.reason.clone()),
                    Some(r) => (pb::ContestStatus::Rejected, c.reason.clone(), r.reason.clone()),
                },
            };
            pb::Deduction {
                settlement_serial: x.settlement.to_string(),
                amount: x.amount.to_string(),
                reason: x.reason.clone(),
                alert_seq: x.alert.unwrap_or(0),
                contest: contest as i32,
                contest_reason,
                resolution_reason,
            }
        })
        .collect();
    let status = match d.status {
        DeclarationStatus::Declared => pb::DeclarationStatus::Declared,
        DeclarationStatus::Reviewed => pb::DeclarationStatus::Reviewed,
    };
    pb::Declaration {
        institution_id: d.institution.to_string(),
        period: d.period.to_string(),
        serial: d.serial.to_string(),
        declared_at_ms: d.declared_at.millis(),
        account: Some(month_account_pb(&d.account)),
        declared: d.declared.to_string(),
        deducted: d.deducted().to_string(),
        approved: d.approved().to_string(),
        paid: d.paid.to_string(),
        offset: d.offset.to_string(),
        outstanding: d.outstanding().to_string(),
        status: status as i32,
        note: d.note.clone(),
        deductions,
        payment_references: d.payments.iter().map(ToString::to_string).collect(),
        contest_until: d.contest_until().map(|t| t.to_string()).unwrap_or_default(),
    }
}

/// A payment.
pub fn payment_pb(p: &PaymentRecord) -> pb::PaymentRecord {
    pb::PaymentRecord {
        institution_id: p.institution.to_string(),
        period: p.period.to_string(),
        reference: p.reference.to_string(),
        amount: p.amount.to_string(),
        offset: p.offset.to_string(),
        paid_at_ms: p.at.millis(),
    }
}

/// A month's statement.
pub fn statement_pb(s: &PaymentStatement) -> pb::PaymentStatement {
    pb::PaymentStatement {
        institution_id: s.institution.to_string(),
        period: s.period.to_string(),
        account: Some(month_account_pb(&s.account)),
        declaration: s.declaration.as_ref().map(declaration_pb),
        payments: s.payments.iter().map(payment_pb).collect(),
    }
}

/// How a prepayment was sized.
pub fn sizing_pb(s: &Sizing) -> pb::PrepaymentSizing {
    pb::PrepaymentSizing {
        from_period: s.from.map(|p| p.to_string()).unwrap_or_default(),
        to_period: s.to.map(|p| p.to_string()).unwrap_or_default(),
        months: s.months,
        base: s.base.to_string(),
        amount: s.amount.to_string(),
        rule: s.rule.clone(),
    }
}

/// A prepayment.
pub fn prepayment_pb(p: &Prepayment) -> pb::Prepayment {
    pb::Prepayment {
        institution_id: p.institution.to_string(),
        reference: p.reference.to_string(),
        kind: prepayment_kind_pb(p.kind),
        purpose: PREPAYMENT_PURPOSE.to_string(),
        amount: p.amount.to_string(),
        sizing: Some(sizing_pb(&p.sizing)),
        granted_at_ms: p.granted_at.millis(),
        offset: p.offset.to_string(),
        repaid: p.repaid.to_string(),
        remaining: p.remaining().to_string(),
        written_off_case_id: p.written_off.as_ref().map(|w| w.case_id.clone()).unwrap_or_default(),
        write_off_reason: p.written_off.as_ref().map(|w| w.reason.clone()).unwrap_or_default(),
    }
}

/// The prepayment policy from the wire.
pub fn prepayment_policy(p: Option<pb::PrepaymentPolicy>) -> Result<PrepaymentPolicy, Status> {
    let p = p.ok_or_else(|| bad("policy", "is required"))?;
    Ok(PrepaymentPolicy {
        min_months_covered: p.min_months_covered,
        history_years: p.history_years,
        clean_months: p.clean_months,
        procurement_percent: p.procurement_percent,
    })
}

/// The prepayment policy on the wire.
pub fn prepayment_policy_pb(p: &PrepaymentPolicy) -> pb::PrepaymentPolicy {
    pb::PrepaymentPolicy {
        min_months_covered: p.min_months_covered,
        history_years: p.history_years,
        clean_months: p.clean_months,
        procurement_percent: p.procurement_percent,
    }
}

/// A review.
pub fn review_declaration(
    r: pb::ReviewDeclarationRequest,
    province: &medmesh_types::ProvinceCode,
) -> Result<PaymentCommand, Status> {
    if r.deductions.len() > medmesh_payment::cycle::MAX_DEDUCTIONS {
        return Err(Status::resource_exhausted(format!(
            "deductions: at most {} lines per review",
            medmesh_payment::cycle::MAX_DEDUCTIONS
        )));
    }
    let deductions = r
        .deductions
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Ok(DeductionInput {
                settlement: serial(&format!("deductions[{i}].settlement_serial"), &d.settlement_serial)?,
                amount: money(&format!("deductions[{i}].amount"), &d.amount)?,
                reason: d.reason.clone(),
                alert: (d.alert_seq != 0).then_some(d.alert_seq),
            })
        })
        .collect::<Result<Vec<_>, Status>>()?;
    Ok(PaymentCommand::Review {
        institution: institution("institution_id", &r.institution_id)?,
        period: period("period", &r.period)?,
        deductions,
        note: r.note,
        province: province.clone(),
    })
}

/// A payment.
pub fn pay_institution(r: pb::PayInstitutionRequest) -> Result<PaymentCommand, Status> {
    Ok(PaymentCommand::Pay {
        institution: institution("institution_id", &r.institution_id)?,
        period: period("period", &r.period)?,
        reference: serial("reference", &r.reference)?,
        amount: money_or_zero("amount", &r.amount)?,
        offset: money_or_zero("offset", &r.offset)?,
    })
}

/// A grant.
pub fn grant_prepayment(r: pb::GrantPrepaymentRequest) -> Result<PaymentCommand, Status> {
    Ok(PaymentCommand::Prepay {
        institution: institution("institution_id", &r.institution_id)?,
        reference: serial("reference", &r.reference)?,
        kind: prepayment_kind("kind", r.kind)?,
        procurement: money_or_zero("procurement_amount", &r.procurement_amount)?,
    })
}

/// A repayment.
pub fn repay_prepayment(r: pb::RepayPrepaymentRequest) -> Result<PaymentCommand, Status> {
    Ok(PaymentCommand::Repay {
        institution: institution("institution_id", &r.institution_id)?,
        reference: serial("reference", &r.reference)?,
        receipt: serial("receipt", &r.receipt)?,
        amount: money("amount", &r.amount)?,
    })
}

/// A write-off.
pub fn write_off_prepayment(r: pb::WriteOffPrepaymentRequest) -> Result<PaymentCommand, Status> {
    Ok(PaymentCommand::WriteOff {
        institution: institution("institution_id", &r.institution_id)?,
        reference: serial("reference", &r.reference)?,
        case_id: r.case_id,
        reason: r.reason,
    })
}

/// A budget.
pub fn budget_pb(b: &Budget) -> pb::Budget {
    let tenths = b.used_tenths();
    pb::Budget {
        institution_id: b.institution.to_string(),
        year: b.year,
        amount: b.amount.to_string(),
        thresholds: b.thresholds.clone(),
        overspend_fund_percent: b.overspend_fund_percent,
        consumed: b.consumed.to_string(),
        used_percent: format!("{}{}.{}", if tenths < 0 { "-" } else { "" }, tenths.abs() / 10, tenths.abs() % 10),
        warnings: b
            .warnings
            .iter()
            .map(|w| pb::BudgetWarning {
                threshold: w.threshold,
                reached_on: w.on.to_string(),
                consumed: w.consumed.to_string(),
            })
            .collect(),
        closed: b.closed.as_ref().map(|c| pb::BudgetYearEnd {
            overspend: c.overspend.to_string(),
            fund_bears: c.fund_bears.to_string(),
            institution_bears: c.institution_bears.to_string(),
            underspend: c.underspend.to_string(),
            closed_on: c.on.to_string(),
        }),
    }
}

/// A budget from the wire.
pub fn put_budget(r: pb::PutBudgetRequest) -> Result<PaymentCommand, Status> {
    Ok(PaymentCommand::PutBudget {
        institution: institution("institution_id", &r.institution_id)?,
        year: r.year,
        terms: BudgetTerms {
            amount: money("amount", &r.amount)?,
            thresholds: r.thresholds,
            overspend_fund_percent: r.overspend_fund_percent,
        },
    })
}
