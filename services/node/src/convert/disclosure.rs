//! Conversions of what a province discloses (issue 13.4): the fund's monthly report and its
//! executed cases, anonymised.

use medmesh_payment::Period;
use medmesh_state::aggregate::{AggPeriod, Aggregate, Flow};
use medmesh_state::disclosure::FundReport;
use medmesh_supervision::cases::{Case, CaseSource};
use medmesh_types::ProvinceCode;
use tonic::Status;

use crate::pb;

/// A `YYYY-MM` month.
pub fn month(field: &str, text: &str) -> Result<Period, Status> {
    Period::parse(text).ok_or_else(|| Status::invalid_argument(format!("{field}: must be a month, YYYY-MM")))
}

/// Tenths as one decimal ("14.2"); empty for none.
fn tenths(t: Option<i64>) -> String {
    t.map(|t| format!("{}.{}", t / 10, t % 10)).unwrap_or_default()
}

/// A fund report on the wire.
pub fn fund_report_pb(province: &str, r: &FundReport) -> pb::GetFundReportResponse {
    pb::GetFundReportResponse {
        province: province.to_string(),
        month: r.period.to_string(),
        r#final: r.closed,
        contributions: r.contributions.to_string(),
        assistance_funded: r.assistance_funded.to_string(),
        pooling_paid: r.pooling_paid.to_string(),
        critical_illness_paid: r.critical_illness_paid.to_string(),
        assistance_paid: r.assistance_paid.to_string(),
        accounts_paid: r.accounts_paid.to_string(),
        settlements: r.settlements,
        reversals: r.reversals,
        nonlocal_out_settlements: r.nonlocal_out_settlements,
        nonlocal_out_amount: r.nonlocal_out_amount.to_string(),
        nonlocal_in_settlements: r.nonlocal_in_settlements,
        nonlocal_in_amount: r.nonlocal_in_amount.to_string(),
        recovered: r.recovered.to_string(),
        deducted: r.deducted.to_string(),
        fines_imposed: r.fines_imposed.to_string(),
        institution_payments: r.institution_payments.to_string(),
        prepaid_out: r.prepaid_out.to_string(),
        closing_balance: r.closing_balance.to_string(),
        closing_assistance_balance: r.closing_assistance_balance.to_string(),
        monthly_expenditure: r.monthly_expenditure.to_string(),
        months_covered: tenths(r.months_covered_tenths),
        rewards_paid: r.rewards_paid.to_string(),
    }
}

/// A day (`YYYY-MM-DD`) or a month (`YYYY-MM`).
pub fn agg_period(field: &str, text: &str) -> Result<AggPeriod, Status> {
    AggPeriod::parse(text)
        .ok_or_else(|| Status::invalid_argument(format!("{field}: must be a day, YYYY-MM-DD, or a month, YYYY-MM")))
}

fn flow_pb(insured: &ProvinceCode, treatment: &str, f: &Flow) -> pb::ProvinceFlow {
    pb::ProvinceFlow {
        insured_province: insured.to_string(),
        treatment_province: treatment.to_string(),
        settlements: f.settlements,
        amount: f.amount.to_string(),
    }
}

/// A province's aggregate on the wire.
pub fn aggregate_pb(province: &str, a: &Aggregate) -> pb::Aggregate {
    let t = &a.tally;
    pb::Aggregate {
        province: province.to_string(),
        period: a.period.to_string(),
        version: a.version,
        r#final: a.closed,
        fund: Some(fund_report_pb(province, &a.fund)),
        by_level: t
            .by_level
            .iter()
            .map(|(level, f)| pb::LevelFigures {
                level: u32::from(*level),
                settlements: f.settlements,
                amount: f.amount.to_string(),
            })
            .collect(),
        nonlocal_in_by_province: t.nonlocal_in_by_province.iter().map(|(p, f)| flow_pb(p, province, f)).collect(),
        cash_paid: t.cash_paid.to_string(),
        alerts: t.alerts,
        cases_opened: t.cases_opened,
        cases_executed: t.cases_executed,
        points: t.points,
        discipline_entries: t.discipline_entries,
        reports_received: t.reports_received,
        inspections: t.inspections,
    }
}

/// The non-local flow matrix on the wire.
pub fn flows_pb(rows: &[(ProvinceCode, ProvinceCode, Flow)]) -> Vec<pb::ProvinceFlow> {
    rows.iter().map(|(i, t, f)| flow_pb(i, t.as_str(), f)).collect()
}

/// An executed case as published: no personnel, no settlements; `None` for a case not
/// executed.
pub fn disclosed_case_pb(c: &Case) -> Option<pb::DisclosedCase> {
    let o = c.outcome()?;
    let source = match c.source {
        CaseSource::Alert(_) => "alert",
        CaseSource::Report(_) => "report",
        CaseSource::Inspection(_) => "inspection",
    };
    let shared = super::case_outcome_pb(&o);
    Some(pb::DisclosedCase {
        case_id: o.case_id,
        institution_id: shared.institution_id,
        source: source.into(),
        violation_type: shared.violation_type,
        recovered: shared.recovered,
        fine: shared.fine,
        agreement: shared.agreement,
        decided_on: shared.decided_on,
        executed_on: shared.executed_on,
        reason: o.reason,
    })
}
