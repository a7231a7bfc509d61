//! The dashboard's pages and charts: pure functions from the rpcs' answers to HTML (maud) and
//! SVG (plotters), with no IO.
//!
//! Every figure a table shows is the rpc's own decimal text or integer, never recomputed in
//! floating point; totals are summed in `Money`. Each figure cell carries `data-figure`
//! (and `data-province`, or `data-insured` and `data-treatment` in the flow matrix) so that a
//! test, or a person's script, can read the page back. Charts plot counts and tenths of a
//! month as integers: plotters places them, and no money is drawn.

use std::collections::BTreeMap;

use maud::{html, Markup, PreEscaped, DOCTYPE};
use medmesh_types::Money;
use plotters::prelude::*;

use crate::pb;

/// The figures of one province's row in the national table, in order: (`data-figure`, heading).
pub const PROVINCE_FIGURES: &[(&str, &str)] = &[
    ("settlements", "Settlements here"),
    ("nonlocal_in_settlements", "Non-local in"),
    ("nonlocal_in_amount", "Non-local in, yuan"),
    ("nonlocal_out_settlements", "Non-local out"),
    ("nonlocal_out_amount", "Non-local out, yuan"),
    ("pooling_paid", "Pooling paid, yuan"),
    ("closing_balance", "Balance, yuan"),
    ("months_covered", "Months covered"),
    ("alerts", "Alerts"),
    ("cases_opened", "Cases opened"),
    ("cases_executed", "Cases executed"),
    ("recovered", "Recovered, yuan"),
];

/// The text of figure `name` of an aggregate (as the rpc answered it).
pub fn figure(a: &pb::Aggregate, name: &str) -> String {
    let none = pb::GetFundReportResponse::default();
    let f = a.fund.as_ref().unwrap_or(&none);
    match name {
        "settlements" => f.settlements.to_string(),
        "nonlocal_in_settlements" => f.nonlocal_in_settlements.to_string(),
        "nonlocal_in_amount" => f.nonlocal_in_amount.clone(),
        "nonlocal_out_settlements" => f.nonlocal_out_settlements.to_string(),
        "nonlocal_out_amount" => f.nonlocal_out_amount.clone(),
        "pooling_paid" => f.pooling_paid.clone(),
        "closing_balance" => f.closing_balance.clone(),
        "months_covered" => f.months_covered.clone(),
        "alerts" => a.alerts.to_string(),
        "cases_opened" => a.cases_opened.to_string(),
        "cases_executed" => a.cases_executed.to_string(),
        "recovered" => f.recovered.clone(),
        "cash_paid" => a.cash_paid.clone(),
        "points" => a.points.to_string(),
        "discipline_entries" => a.discipline_entries.to_string(),
        "reports_received" => a.reports_received.to_string(),
        "inspections" => a.inspections.to_string(),
        _ => String::new(),
    }
}

/// The sum of figure `name` over `aggs`: integers as integers, amounts in `Money` (two
/// decimals); empty for a figure that does not add up (months covered).
pub fn total(aggs: &[pb::Aggregate], name: &str) -> String {
    if name == "months_covered" {
        return String::new();
    }
    let texts: Vec<String> = aggs.iter().map(|a| figure(a, name)).collect();
    if texts.iter().all(|t| t.parse::<i64>().is_ok()) {
        let sum = texts.iter().filter_map(|t| t.parse::<i64>().ok()).try_fold(0i64, i64::checked_add);
        return sum.map(|s| s.to_string()).unwrap_or_default();
    }
    let mut sum = Money::ZERO;
    for t in &texts {
        match Money::parse_signed_yuan(t) {
            Ok(m) => sum += m,
            Err(_) => return String::new(),
        }
    }
    sum.to_string()
}

/// Months covered in tenths ("14.2" is 142); `None` when empty or malformed.
pub fn tenths(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, tenth) = digits.split_once('.').unwrap_or((digits, "0"));
    if whole.is_empty() || tenth.len() != 1 || !whole.bytes().chain(tenth.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = whole.parse::<i64>().ok()?.checked_mul(10)?.checked_add(tenth.parse::<i64>().ok()?)?;
    Some(if negative { -t } else { t })
}

/// Whether a province's fund is below the warning line of `risk_months`.
pub fn at_risk(a: &pb::Aggregate, risk_months: u32) -> bool {
    let covered = a.fund.as_ref().and_then(|f| tenths(&f.months_covered));
    covered.is_some_and(|t| t < i64::from(risk_months) * 10)
}

/// The person signed in, shown in the header.
pub struct Viewer<'a> {
    /// Sign-in name.
    pub user: &'a str,
    /// "the national administration" or "the agency of 110000".
    pub role: String,
}

/// What the national page shows.
pub struct NationalPage<'a> {
    /// Who looks.
    pub viewer: Viewer<'a>,
    /// The month, YYYY-MM.
    pub month: String,
    /// The month before and after (links).
    pub prev: String,
    /// The month after, if it has begun.
    pub next: Option<String>,
    /// The month's aggregates, by province.
    pub aggregates: Vec<pb::Aggregate>,
    /// The month's non-local flow matrix.
    pub flows: Vec<pb::ProvinceFlow>,
    /// Each day of the month so far, with the aggregates published for it.
    pub days: Vec<(String, Vec<pb::Aggregate>)>,
    /// Below this many months of expenditure a fund is flagged.
    pub risk_months: u32,
    /// Said above the figures (for example, that nobody published the month yet).
    pub notice: Option<String>,
}

/// What a province's page shows.
pub struct ProvincePage<'a> {
    /// Who looks.
    pub viewer: Viewer<'a>,
    /// The province.
    pub province: String,
    /// The month, YYYY-MM.
    pub month: String,
    /// The month before.
    pub prev: String,
    /// The month after, if it has begun.
    pub next: Option<String>,
    /// The month's published aggregate.
    pub aggregate: Option<pb::Aggregate>,
    /// Each day of the month so far, with the province's published aggregate (if any).
    pub days: Vec<(String, Vec<pb::Aggregate>)>,
    /// The fund now (AgencyService/GetFund), when the province's own agency looks at one of
    /// its own replicas.
    pub fund: Option<pb::GetFundResponse>,
    /// Why the fund now is not shown, when it is not.
    pub fund_note: String,
    /// Below this many months of expenditure a fund is flagged.
    pub risk_months: u32,
    /// Said above the figures.
    pub notice: Option<String>,
    /// Whether the viewer may go back to the national view.
    pub national_link: bool,
}

const STYLE: &str = "
body{font-family:sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#123c69;color:#fff;padding:.6em 1.2em;display:flex;align-items:center;gap:1.5em}
header h1{font-size:1.2em;margin:0;flex:1}
header form{margin:0}
main{padding:1em 1.2em;max-width:1200px}
section{background:#fff;border:1px solid #d8dde3;border-radius:6px;padding:.8em 1em;margin:0 0 1em}
h2{font-size:1.05em;margin:.2em 0 .6em}
table{border-collapse:collapse;font-size:.9em}
th,td{border:1px solid #d8dde3;padding:.25em .5em;text-align:right}
th{background:#eef1f5}
td.name,th.name{text-align:left}
tr.risk td{background:#fde8e8}
.notice{background:#fff4d6;border:1px solid #e8c766;padding:.5em .8em;border-radius:4px}
.error{background:#fde8e8;border:1px solid #e39a9a;padding:.5em .8em;border-radius:4px}
nav.months{margin:0 0 1em}
nav.months a{margin-right:1em}
.charts{display:flex;flex-wrap:wrap;gap:1em}
label{display:block;margin:.6em 0 .2em}
input{font-size:1em;padding:.3em}
button{font-size:1em;padding:.3em .9em}
";

fn page(title: &str, viewer: Option<&Viewer>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · medmesh" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "medmesh · " (title) }
                    @if let Some(v) = viewer {
                        span #viewer { (v.user) " (" (v.role) ")" }
                        form method="post" action="/dashboard/logout" {
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The sign-in page; `message` says why it is shown (an error, or that a page needs a session).
pub fn sign_in(message: Option<&str>, next: &str) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            section {
                @if let Some(m) = message { p.error #message { (m) } }
                form method="post" action="/dashboard/login" {
                    input type="hidden" name="next" value=(next);
                    label for="name" { "Name" }
                    input #name type="text" name="name" autocomplete="username" required;
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                    p { button #sign-in type="submit" { "Sign in" } }
                }
            }
        },
    )
}

/// A page that says what went wrong.
pub fn error(title: &str, message: &str, viewer: Option<&Viewer>) -> Markup {
    page(
        title,
        viewer,
        html! {
            section {
                p.error #message { (message) }
                p { a href="/dashboard/" { "Back to the dashboard" } }
            }
        },
    )
}

fn month_nav(base: &str, prev: &str, month: &str, next: Option<&str>) -> Markup {
    html! {
        nav.months {
            a #prev href={ (base) "?month=" (prev) } { "← " (prev) }
            strong #month { (month) }
            @if let Some(n) = next { " " a #next href={ (base) "?month=" (n) } { (n) " →" } }
        }
    }
}

/// The national view.
pub fn national(p: &NationalPage) -> Markup {
    let provinces: Vec<String> = p.aggregates.iter().map(|a| a.province.clone()).collect();
    page(
        "National view",
        Some(&p.viewer),
        html! {
            (month_nav("/dashboard/national", &p.prev, &p.month, p.next.as_deref()))
            @if let Some(n) = &p.notice { p.notice #notice { (n) } }
            section #provinces {
                h2 { "Provinces in " (p.month) " (published aggregates; fund flagged below " (p.risk_months) " months of expenditure)" }
                table {
                    tr {
                        th.name { "Province" }
                        @for (_, heading) in PROVINCE_FIGURES { th { (heading) } }
                        th.name { "Published" }
                    }
                    @for a in &p.aggregates {
                        tr class=[at_risk(a, p.risk_months).then_some("risk")] data-province=(a.province) {
                            td.name { a href={ "/dashboard/province/" (a.province) "?month=" (p.month) } { (a.province) } }
                            @for (name, _) in PROVINCE_FIGURES {
                                td data-province=(a.province) data-figure=(name) { (figure(a, name)) }
                            }
                            td.name { "v" (a.version) @if a.r#final { ", final" } }
                        }
                    }
                    @if !p.aggregates.is_empty() {
                        tr {
                            th.name { "All" }
                            @for (name, _) in PROVINCE_FIGURES {
                                th data-province="total" data-figure=(name) { (total(&p.aggregates, name)) }
                            }
                            th {}
                        }
                    }
                }
            }
            div.charts {
                section #volumes { h2 { "Settlements per day" } (PreEscaped(volumes_chart(&p.days, &provinces))) }
                section #health { h2 { "Fund health" } (PreEscaped(health_chart(&p.aggregates, p.risk_months))) }
            }
            section #flows {
                h2 { "Non-local flows in " (p.month) " (rows: insured province, whose fund pays; columns: treatment province)" }
                (flow_matrix(&p.flows))
            }
            section #violations {
                h2 { "Violations and cases" }
                table {
                    tr {
                        th.name { "Province" } th { "Alerts" } th { "Cases opened" } th { "Cases executed" }
                        th { "Recovered, yuan" } th { "Points" } th { "Discipline entries" } th { "Reports" } th { "Inspections" }
                    }
                    @for a in &p.aggregates {
                        tr {
                            td.name { (a.province) }
                            @for name in ["alerts", "cases_opened", "cases_executed", "recovered", "points", "discipline_entries", "reports_received", "inspections"] {
                                td data-province=(a.province) data-figure={ "v_" (name) } { (figure(a, name)) }
                            }
                        }
                    }
                }
                (PreEscaped(violations_chart(&p.aggregates)))
            }
        },
    )
}

/// The non-local flow matrix as a table: a row per insured province, a column per treatment
/// province, each cell the settlements and the amount.
pub fn flow_matrix(flows: &[pb::ProvinceFlow]) -> Markup {
    let mut insured: Vec<&str> = flows.iter().map(|f| f.insured_province.as_str()).collect();
    let mut treatment: Vec<&str> = flows.iter().map(|f| f.treatment_province.as_str()).collect();
    insured.sort_unstable();
    insured.dedup();
    treatment.sort_unstable();
    treatment.dedup();
    let cell: BTreeMap<(&str, &str), &pb::ProvinceFlow> =
        flows.iter().map(|f| ((f.insured_province.as_str(), f.treatment_province.as_str()), f)).collect();
    html! {
        @if flows.is_empty() {
            p #no-flows { "No non-local care in this period." }
        } @else {
            table #flow-matrix {
                tr { th.name { "Insured \\ treatment" } @for t in &treatment { th { (t) } } }
                @for i in &insured {
                    tr {
                        th.name { (i) }
                        @for t in &treatment {
                            @match cell.get(&(*i, *t)) {
                                Some(f) => {
                                    td data-figure="flow" data-insured=(i) data-treatment=(t) data-amount=(f.amount) {
                                        (f.settlements) " · " (f.amount)
                                    }
                                }
                                None => { td {} }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A province's view.
pub fn province(p: &ProvincePage) -> Markup {
    let base = format!("/dashboard/province/{}", p.province);
    let series = vec![p.province.clone()];
    page(
        &format!("Province {}", p.province),
        Some(&p.viewer),
        html! {
            @if p.national_link { p { a href={ "/dashboard/national?month=" (p.month) } { "← National view" } } }
            (month_nav(&base, &p.prev, &p.month, p.next.as_deref()))
            @if let Some(n) = &p.notice { p.notice #notice { (n) } }
            section #fund-now {
                h2 { "The fund now" }
                @if let Some(f) = &p.fund {
                    @if !f.risk_warning.is_empty() { p.error #risk-warning { (f.risk_warning) } }
                    table {
                        @for (name, label, value) in [
                            ("balance", "Pooling balance, yuan", f.balance.clone()),
                            ("contributions", "Contributions, yuan", f.contributions.clone()),
                            ("pooling_paid", "Pooling paid, yuan", f.pooling_paid.clone()),
                            ("payables", "Owed to institutions, yuan", f.payables.clone()),
                            ("months_covered", "Months covered", f.months_covered.clone()),
                            ("risk_threshold_months", "Warning below, months", f.risk_threshold_months.to_string()),
                            ("settlements", "Settlements", f.settlements.to_string()),
                            ("nonlocal_settlements", "Non-local settlements of its insured", f.nonlocal_settlements.to_string()),
                        ] {
                            tr { th.name { (label) } td data-province=(p.province) data-figure={ "now_" (name) } { (value) } }
                        }
                    }
                } @else {
                    p #fund-note { (p.fund_note) }
                }
            }
            @if let Some(a) = &p.aggregate {
                section #month-figures {
                    h2 { (p.month) " as published (version " (a.version) @if a.r#final { ", final" } ")" }
                    @if at_risk(a, p.risk_months) { p.error { "Fund below " (p.risk_months) " months of expenditure" } }
                    table {
                        @for (name, label) in PROVINCE_FIGURES.iter().chain([("cash_paid", "Paid in cash, yuan"), ("points", "Points"), ("discipline_entries", "Discipline entries"), ("reports_received", "Reports"), ("inspections", "Inspections")].iter()) {
                            tr { th.name { (label) } td data-province=(a.province) data-figure=(name) { (figure(a, name)) } }
                        }
                    }
                    h2 { "By institution level" }
                    table {
                        tr { th { "Level" } th { "Settlements" } th { "Amount, yuan" } }
                        @for l in &a.by_level {
                            tr { td { (l.level) } td data-figure="level_settlements" { (l.settlements) } td data-figure="level_amount" { (l.amount) } }
                        }
                    }
                    h2 { "Visitors by insured province" }
                    (flow_matrix(&a.nonlocal_in_by_province))
                }
            }
            section #volumes { h2 { "Settlements per day" } (PreEscaped(volumes_chart(&p.days, &series))) }
        },
    )
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(18, 60, 105),
    RGBColor(214, 96, 77),
    RGBColor(66, 146, 98),
    RGBColor(153, 112, 171),
    RGBColor(230, 171, 2),
    RGBColor(27, 158, 119),
    RGBColor(117, 112, 179),
    RGBColor(102, 102, 102),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Draws into an SVG string; a drawing error becomes a note in its place.
fn svg(
    width: u32,
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> Result<(), String>,
) -> String {
    let mut out = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|_| draw(&root))
            .and_then(|_| root.present().map_err(|e| e.to_string()))
    };
    match result {
        Ok(()) => out,
        Err(e) => html! { p.error { "chart: " (e) } }.into_string(),
    }
}

/// A chart on integer coordinates.
type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    plotters::coord::cartesian::Cartesian2d<
        plotters::coord::types::RangedCoordi64,
        plotters::coord::types::RangedCoordi64,
    >,
>;

/// A chart with four units across for each of `labels` (a province), labelled under the
/// middle of its slot, from 0 to `max` upwards, the y axis labelled in units of `per_label`.
fn by_province<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    labels: &[String],
    max: i64,
    y_desc: &str,
    per_label: i64,
) -> Result<Chart<'a, 'b>, String> {
    let n = i64::try_from(labels.len()).unwrap_or(0);
    let mut chart = ChartBuilder::on(root)
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(44)
        .build_cartesian_2d(0i64..(n * 4).max(4), 0i64..max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .x_labels(labels.len().max(1) * 4 + 1)
        .x_label_formatter(&|x| {
            if x % 4 == 2 {
                labels.get(usize::try_from(x / 4).unwrap_or(usize::MAX)).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .y_label_formatter(&|y| format!("{}", y / per_label))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

/// Draws the legend of `chart`'s labelled series at `position`.
fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, position: SeriesLabelPosition) -> Result<(), String> {
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .position(position)
        .draw()
        .map_err(|e| e.to_string())
}

/// Settlements per day, a line per province (`provinces`, in order).
pub fn volumes_chart(days: &[(String, Vec<pb::Aggregate>)], provinces: &[String]) -> String {
    let n = i64::try_from(days.len()).unwrap_or(0).max(1);
    let value = |aggs: &[pb::Aggregate], p: &str| {
        aggs.iter().find(|a| a.province == p).and_then(|a| a.fund.as_ref()).map_or(0, |f| f.settlements.max(0))
    };
    let max = days.iter().flat_map(|(_, aggs)| provinces.iter().map(move |p| value(aggs, p))).max().unwrap_or(0).max(1);
    svg(560, 300, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(44)
            .build_cartesian_2d(1i64..(n + 1).max(2), 0i64..max.saturating_add(max / 10).saturating_add(1))
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().x_desc("day of the month").y_desc("settlements").draw().map_err(|e| e.to_string())?;
        for (i, p) in provinces.iter().enumerate() {
            let c = colour(i);
            let points: Vec<(i64, i64)> =
                days.iter().enumerate().map(|(d, (_, aggs))| (d as i64 + 1, value(aggs, p))).collect();
            chart
                .draw_series(LineSeries::new(points, c.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(p.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
        }
        if provinces.is_empty() {
            return Ok(());
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// Months of expenditure each province's balance covers, a bar each, red below the line.
pub fn health_chart(aggs: &[pb::Aggregate], risk_months: u32) -> String {
    let bars: Vec<(&str, i64)> = aggs
        .iter()
        .map(|a| (a.province.as_str(), a.fund.as_ref().and_then(|f| tenths(&f.months_covered)).unwrap_or(0)))
        .collect();
    let line = i64::from(risk_months) * 10;
    // Bars above four times the warning line (at least two years) are cut at the top: the
    // table has the figure, the chart shows who is near the line.
    let cap = (line * 4).max(240);
    let max = bars.iter().map(|b| b.1).max().unwrap_or(0).clamp(line, cap).saturating_add(10);
    let n = i64::try_from(bars.len()).unwrap_or(0);
    svg(560, 300, |root| {
        let labels: Vec<String> = bars.iter().map(|b| b.0.to_string()).collect();
        let mut chart = by_province(root, &labels, max, "months of expenditure covered", 10)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                let x = i as i64 * 4;
                let c = if *v < line { RGBColor(200, 40, 40) } else { colour(0) };
                Rectangle::new([(x + 1, 0), (x + 3, (*v).clamp(0, max))], c.filled())
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                vec![(0, line), ((n * 4).max(4), line)],
                RGBColor(200, 40, 40).stroke_width(1),
            ))
            .map_err(|e| e.to_string())?
            .label(format!("warning below {risk_months} months"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RGBColor(200, 40, 40)));
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// A count an aggregate holds.
type Count = fn(&pb::Aggregate) -> i64;

/// Alerts, cases opened and cases executed per province, three bars each.
pub fn violations_chart(aggs: &[pb::Aggregate]) -> String {
    let max = aggs.iter().map(|a| a.alerts.max(a.cases_opened).max(a.cases_executed)).max().unwrap_or(0).max(1);
    svg(720, 280, |root| {
        let labels: Vec<String> = aggs.iter().map(|a| a.province.clone()).collect();
        let mut chart = by_province(root, &labels, max.saturating_add(max / 10).saturating_add(1), "", 1)?;
        let kinds: [(&str, Count); 3] =
            [("alerts", |a| a.alerts), ("cases opened", |a| a.cases_opened), ("cases executed", |a| a.cases_executed)];
        for (k, (label, get)) in kinds.iter().enumerate() {
            let c = colour(k + 1);
            let offset = k as i64;
            chart
                .draw_series(aggs.iter().enumerate().map(|(i, a)| {
                    let x = i as i64 * 4 + offset;
                    Rectangle::new([(x, 0), (x + 1, get(a).max(0))], c.filled())
                }))
                .map_err(|e| e.to_string())?
                .label(*label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], c.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agg(province: &str, settlements: i64, balance: &str, covered: &str, alerts: i64) -> pb::Aggregate {
        pb::Aggregate {
            province: province.into(),
            period: "2026-12".into(),
            version: 1,
            fund: Some(pb::GetFundReportResponse {
                settlements,
                closing_balance: balance.into(),
                months_covered: covered.into(),
                nonlocal_in_amount: "12.30".into(),
                ..Default::default()
            }),
            alerts,
            ..Default::default()
        }
    }

    #[test]
    fn totals_add_counts_as_integers_and_amounts_to_the_fen() {
        let aggs = [agg("110000", 3, "1000.10", "14.2", 1), agg("310000", 4, "0.25", "2.0", 0)];
        assert_eq!(total(&aggs, "settlements"), "7");
        assert_eq!(total(&aggs, "closing_balance"), "1000.35");
        assert_eq!(total(&aggs, "nonlocal_in_amount"), "24.60");
        assert_eq!(total(&aggs, "months_covered"), "");
        assert_eq!(tenths("14.2"), Some(142));
        assert_eq!(tenths(""), None);
        assert_eq!(tenths("-1.5"), Some(-15));
        assert_eq!(tenths("3"), Some(30));
        assert_eq!(tenths("1.x"), None);
        assert!(!at_risk(&aggs[0], 6));
        assert!(at_risk(&aggs[1], 6));
    }

    #[test]
    fn the_national_page_carries_every_figure_and_escapes_what_it_shows() {
        let page = NationalPage {
            viewer: Viewer { user: "<nhsa>", role: "the national administration".into() },
            month: "2026-12".into(),
            prev: "2026-11".into(),
            next: None,
            aggregates: vec![agg("110000", 3, "1000.10", "14.2", 1), agg("310000", 4, "0.25", "2.0", 2)],
            flows: vec![pb::ProvinceFlow {
                insured_province: "310000".into(),
                treatment_province: "110000".into(),
                settlements: 1,
                amount: "12.30".into(),
            }],
            days: vec![("2026-12-01".into(), vec![agg("110000", 2, "1", "1.0", 0)])],
            risk_months: 6,
            notice: None,
        };
        let html = national(&page).into_string();
        assert!(html.contains("&lt;nhsa&gt;") && !html.contains("<nhsa>"));
        assert!(html.contains(r#"data-province="110000" data-figure="closing_balance">1000.10<"#), "{html}");
        assert!(html.contains(r#"data-province="total" data-figure="settlements">7<"#));
        assert!(html.contains(r#"data-insured="310000" data-treatment="110000" data-amount="12.30""#));
        assert!(html.contains(r#"<tr class="risk" data-province="310000""#));
        assert_eq!(html.matches("<svg").count(), 3, "three charts");
    }

    #[test]
    fn charts_draw_without_data() {
        for s in [volumes_chart(&[], &[]), health_chart(&[], 6), violations_chart(&[])] {
            assert!(s.starts_with("<svg"), "{s}");
        }
    }
}
