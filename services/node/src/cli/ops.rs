//! `medmesh rules …`, `medmesh clearing …` and `medmesh inspection draw`: an agency's and the
//! nation's routine work from the command line, through the public gRPC APIs (so the access
//! table decides, as for any client).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::network;
use crate::pb;
use crate::pb::agency_service_client::AgencyServiceClient;
use crate::pb::federation_service_client::FederationServiceClient;
use crate::pki::Transport;

/// A refused or failed call, as a one-line error naming the replica.
fn failed(addr: &str, s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{addr}: {}: {}", crate::wire_status::code_name(s.code()), s.message())
}

/// A progress bar of `len` steps, drawn on standard error only when it is a terminal.
pub(crate) fn bar(len: u64, what: &str) -> ProgressBar {
    let b = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    b.set_style(style);
    b.set_message(what.to_string());
    b
}

/// Reads rules: a JSON array of `MonitoringRule` in the proto3 JSON mapping (the proto's field
/// names; enums by name or number). An error names the rule's index and the field.
pub fn parse_rules(text: &str) -> anyhow::Result<Vec<pb::MonitoringRule>> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| anyhow::anyhow!("rules file: {}: {}", e.path(), e.inner()))
}

/// The shipped rule library ([`medmesh_monitor::shipped_rules`]) as a rules file.
pub fn shipped_rules_json() -> String {
    let rules: Vec<pb::MonitoringRule> = medmesh_monitor::shipped_rules().iter().map(crate::convert::rule_pb).collect();
    serde_json::to_string_pretty(&rules).unwrap_or_default() + "\n"
}

/// One rule as the province recorded it.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRow {
    /// Its id.
    pub id: String,
    /// The version recorded.
    pub version: u32,
    /// block, self-pay or flag.
    pub action: String,
    /// Whether it runs at settlement.
    pub enabled: bool,
    /// Its title.
    pub title: String,
}

/// What `rules load` did.
#[derive(Debug, Clone, Serialize)]
pub struct RulesLoaded {
    /// The rules loaded, as the province now holds them.
    pub rules: Vec<RuleRow>,
}

/// Records `rules` at the province replica `addr` as its agency (`PutRule` each, in order,
/// stopping at the first refusal), then reads them back.
pub async fn load_rules(
    addr: &str,
    transport: &Transport,
    rules: Vec<pb::MonitoringRule>,
) -> anyhow::Result<RulesLoaded> {
    let mut c = AgencyServiceClient::new(network::channel(addr, transport)?);
    let ids: Vec<String> = rules.iter().map(|r| r.id.clone()).collect();
    let progress = bar(rules.len() as u64, "loading rules");
    for (i, rule) in rules.into_iter().enumerate() {
        let id = rule.id.clone();
        c.put_rule(pb::PutRuleRequest { rule: Some(rule) }).await.map_err(|s| {
            progress.abandon();
            anyhow::anyhow!("rule {i} ({id:?}) refused, {i} loaded before it: {}", failed(addr, s))
        })?;
        progress.inc(1);
    }
    progress.finish_and_clear();
    let held = c.list_rules(pb::ListRulesRequest {}).await.map_err(|s| failed(addr, s))?.into_inner().rules;
    let rows = ids
        .iter()
        .filter_map(|id| held.iter().find(|r| &r.id == id))
        .map(|r| RuleRow {
            id: r.id.clone(),
            version: r.version,
            action: pb::RuleAction::try_from(r.action).map(|a| a.as_str_name().to_string()).unwrap_or_default(),
            enabled: r.enabled,
            title: r.title.clone(),
        })
        .collect();
    Ok(RulesLoaded { rules: rows })
}

/// `rules load` as a table.
pub fn rules_table(l: &RulesLoaded) -> String {
    let mut out = format!(
        "{} rules loaded\n{:<10} {:>7}  {:<20} {:<7} TITLE\n",
        l.rules.len(),
        "ID",
        "VERSION",
        "ACTION",
        "ENABLED"
    );
    for r in &l.rules {
        let action = r.action.strip_prefix("RULE_ACTION_").unwrap_or(&r.action);
        out.push_str(&format!("{:<10} {:>7}  {:<20} {:<7} {}\n", r.id, r.version, action, r.enabled, r.title));
    }
    out
}

/// A statement between two provinces.
#[derive(Debug, Clone, Serialize)]
pub struct StatementRow {
    /// The insured province (it pays).
    pub insured_province: String,
    /// The treatment province (it is paid).
    pub treatment_province: String,
    /// Lines.
    pub line_count: u64,
    /// Total.
    pub total: String,
    /// Total of the confirmed lines.
    pub confirmed_total: String,
}

/// A province's net position.
#[derive(Debug, Clone, Serialize)]
pub struct NetRow {
    /// The province.
    pub province: String,
    /// What it owes.
    pub owed: String,
    /// What it is owed.
    pub receivable: String,
    /// Receivable less owed.
    pub net: String,
}

/// One line of a statement.
#[derive(Debug, Clone, Serialize)]
pub struct LineRow {
    /// The insured province.
    pub insured_province: String,
    /// The treatment province.
    pub treatment_province: String,
    /// The treating institution.
    pub institution_id: String,
    /// Its settlement serial.
    pub serial: String,
    /// The amount.
    pub amount: String,
    /// The line's kind.
    pub kind: String,
    /// Confirmed by the insured province.
    pub confirmed: bool,
    /// Its dispute, if any.
    pub dispute_status: String,
}

/// A month's clearing.
#[derive(Debug, Clone, Serialize)]
pub struct ClearingView {
    /// The month.
    pub month: String,
    /// Its status.
    pub status: String,
    /// When it was cleared (ms since the epoch; 0: not yet).
    pub cleared_at_ms: i64,
    /// When it was settled (0: not yet).
    pub settled_at_ms: i64,
    /// Statements per province pair.
    pub statements: Vec<StatementRow>,
    /// Net positions per province.
    pub provinces: Vec<NetRow>,
    /// Every line, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<LineRow>>,
}

fn view(c: &pb::Clearing) -> ClearingView {
    ClearingView {
        month: c.month.clone(),
        status: c.status.clone(),
        cleared_at_ms: c.cleared_at_ms,
        settled_at_ms: c.settled_at_ms,
        statements: c
            .statements
            .iter()
            .map(|s| StatementRow {
                insured_province: s.insured_province.clone(),
                treatment_province: s.treatment_province.clone(),
                line_count: s.line_count,
                total: s.total.clone(),
                confirmed_total: s.confirmed_total.clone(),
            })
            .collect(),
        provinces: c
            .provinces
            .iter()
            .map(|p| NetRow {
                province: p.province.clone(),
                owed: p.owed.clone(),
                receivable: p.receivable.clone(),
                net: p.net.clone(),
            })
            .collect(),
        lines: None,
    }
}

fn lines_of(c: &pb::Clearing, into: &mut Vec<LineRow>) {
    for s in &c.statements {
        for l in &s.lines {
            into.push(LineRow {
                insured_province: s.insured_province.clone(),
                treatment_province: s.treatment_province.clone(),
                institution_id: l.institution_id.clone(),
                serial: l.serial.clone(),
                amount: l.amount.clone(),
                kind: l.kind.clone(),
                confirmed: l.confirmed,
                dispute_status: l.dispute_status.clone(),
            });
        }
    }
}

/// Clears `month` (`RunClearing`, as the national administration) at the federation replica
/// `addr`.
pub async fn clearing_run(addr: &str, transport: &Transport, month: &str) -> anyhow::Result<ClearingView> {
    let mut c = FederationServiceClient::new(network::channel(addr, transport)?);
    let r = c.run_clearing(pb::RunClearingRequest { month: month.to_string() }).await.map_err(|s| failed(addr, s))?;
    let clearing = r.into_inner().clearing.ok_or_else(|| anyhow::anyhow!("{addr}: the answer holds no clearing"))?;
    Ok(view(&clearing))
}

/// Reads `month`'s clearing at the federation replica `addr`, every page when `lines` is
/// asked for (with a progress bar over the lines).
pub async fn clearing_show(
    addr: &str,
    transport: &Transport,
    month: &str,
    lines: bool,
) -> anyhow::Result<ClearingView> {
    let mut c = FederationServiceClient::new(network::channel(addr, transport)?);
    let page =
        |token: String| pb::GetClearingRequest { month: month.to_string(), page_size: 10_000, page_token: token };
    let first = c.get_clearing(page(String::new())).await.map_err(|s| failed(addr, s))?.into_inner();
    let clearing = first.clearing.ok_or_else(|| anyhow::anyhow!("{addr}: the answer holds no clearing"))?;
    let mut v = view(&clearing);
    if lines {
        let total: u64 = clearing.statements.iter().map(|s| s.line_count).sum();
        let progress = bar(total, "reading lines");
        let mut all = Vec::new();
        lines_of(&clearing, &mut all);
        progress.set_position(all.len() as u64);
        let mut token = first.next_page_token;
        while !token.is_empty() {
            let next = c.get_clearing(page(token)).await.map_err(|s| failed(addr, s))?.into_inner();
            if let Some(cl) = &next.clearing {
                lines_of(cl, &mut all);
            }
            progress.set_position(all.len() as u64);
            token = next.next_page_token;
        }
        progress.finish_and_clear();
        v.lines = Some(all);
    }
    Ok(v)
}

/// A clearing as a table.
pub fn clearing_table(v: &ClearingView) -> String {
    let mut out = format!("clearing {}  status {}\n", v.month, v.status);
    out.push_str(&format!("{:<8} {:<9} {:>7} {:>16} {:>16}\n", "INSURED", "TREATMENT", "LINES", "TOTAL", "CONFIRMED"));
    for s in &v.statements {
        out.push_str(&format!(
            "{:<8} {:<9} {:>7} {:>16} {:>16}\n",
            s.insured_province, s.treatment_province, s.line_count, s.total, s.confirmed_total
        ));
    }
    out.push_str(&format!("{:<8} {:>16} {:>16} {:>16}\n", "PROVINCE", "OWED", "RECEIVABLE", "NET"));
    for p in &v.provinces {
        out.push_str(&format!("{:<8} {:>16} {:>16} {:>16}\n", p.province, p.owed, p.receivable, p.net));
    }
    if let Some(lines) = &v.lines {
        out.push_str(&format!(
            "{:<8} {:<9} {:<12} {:<16} {:>14} CONFIRMED\n",
            "INSURED", "TREATMENT", "INSTITUTION", "SERIAL", "AMOUNT"
        ));
        for l in lines {
            out.push_str(&format!(
                "{:<8} {:<9} {:<12} {:<16} {:>14} {}\n",
                l.insured_province, l.treatment_province, l.institution_id, l.serial, l.amount, l.confirmed
            ));
        }
    }
    out
}

/// A recorded draw.
#[derive(Debug, Clone, Serialize)]
pub struct DrawView {
    /// The plan.
    pub plan_id: String,
    /// The revealed nonce.
    pub nonce: String,
    /// The beacon the draw used.
    pub beacon: String,
    /// The beacon's sequence number.
    pub beacon_seq: u64,
    /// The draw algorithm's version.
    pub version: u32,
    /// When it was drawn (ms since the epoch, from the log).
    pub drawn_time_ms: i64,
    /// Targets and their inspectors, in draw order.
    pub assignments: Vec<Assignment>,
}

/// A drawn target and its inspectors.
#[derive(Debug, Clone, Serialize)]
pub struct Assignment {
    /// The target institution.
    pub target: String,
    /// Its inspectors, in draw order.
    pub inspectors: Vec<String>,
}

/// Draws plan `plan_id` by revealing `nonce` (`DrawInspection`, as the province's agency).
pub async fn inspection_draw(
    addr: &str,
    transport: &Transport,
    plan_id: &str,
    nonce: &str,
) -> anyhow::Result<DrawView> {
    let mut c = AgencyServiceClient::new(network::channel(addr, transport)?);
    let r = c
        .draw_inspection(pb::DrawInspectionRequest { plan_id: plan_id.to_string(), nonce: nonce.to_string() })
        .await
        .map_err(|s| failed(addr, s))?;
    let d = r.into_inner().draw.ok_or_else(|| anyhow::anyhow!("{addr}: the answer holds no draw"))?;
    Ok(DrawView {
        plan_id: plan_id.to_string(),
        nonce: d.nonce,
        beacon: d.beacon,
        beacon_seq: d.beacon_seq,
        version: d.version,
        drawn_time_ms: d.drawn_time_ms,
        assignments: d
            .assignments
            .into_iter()
            .map(|a| Assignment { target: a.target, inspectors: a.inspectors })
            .collect(),
    })
}

/// A draw as a table: one line per target, its inspectors in draw order.
pub fn draw_table(d: &DrawView) -> String {
    let mut out = format!("plan {}  nonce {}  beacon {} (#{})\n", d.plan_id, d.nonce, d.beacon, d.beacon_seq);
    for a in &d.assignments {
        out.push_str(&format!("{}: {}\n", a.target, a.inspectors.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_rules_read_back_as_a_rules_file() {
        let text = shipped_rules_json();
        let rules = parse_rules(&text).unwrap();
        assert_eq!(rules.len(), medmesh_monitor::shipped_rules().len());
        assert!(rules.iter().all(|r| !r.id.is_empty() && !r.condition.is_empty()));
    }

    #[test]
    fn a_bad_rules_file_names_the_rule_and_field() {
        let e = parse_rules(r#"[{"id": "R1", "severity": "high"}]"#).unwrap_err().to_string();
        assert!(e.contains("[0].severity"), "{e}");
        let e = parse_rules(r#"{"id": "R1"}"#).unwrap_err().to_string();
        assert!(e.starts_with("rules file: "), "{e}");
    }
}
