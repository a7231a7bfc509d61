//! Monitoring rules, knowledge-base entries, verdicts and alerts on the wire, both ways.

use medmesh_monitor::{Action, Category, Diagnosis, Fault, Hit, ItemKind, ItemKnowledge, Knowledge, Rule, Target};
use medmesh_state::monitoring::{Alert, AlertKind, AlertStatus, RuleRecord};
use rust_decimal::Decimal;
use tonic::Status;

use super::{bad, opt_sex, sex_pb};
use crate::pb;

/// A rule from the wire (its fields are checked again, and compiled, in apply).
pub fn rule(r: Option<pb::MonitoringRule>) -> Result<Rule, Status> {
    let r = r.ok_or_else(|| bad("rule", "is required"))?;
    let category = match pb::RuleCategory::try_from(r.category) {
        Ok(pb::RuleCategory::Policy) => Category::Policy,
        Ok(pb::RuleCategory::Management) => Category::Management,
        Ok(pb::RuleCategory::Medical) => Category::Medical,
        _ => return Err(bad("rule.category", "must be POLICY, MANAGEMENT or MEDICAL")),
    };
    let target = match pb::RuleTarget::try_from(r.target) {
        Ok(pb::RuleTarget::Claim) => Target::Claim,
        Ok(pb::RuleTarget::Line) => Target::Line,
        _ => return Err(bad("rule.target", "must be CLAIM or LINE")),
    };
    let action = match pb::RuleAction::try_from(r.action) {
        Ok(pb::RuleAction::Block) => Action::Block,
        Ok(pb::RuleAction::SelfPay) => Action::SelfPay,
        Ok(pb::RuleAction::Flag) => Action::Flag,
        _ => return Err(bad("rule.action", "must be BLOCK, SELF_PAY or FLAG")),
    };
    let severity = u8::try_from(r.severity).map_err(|_| bad("rule.severity", "must be 1 to 5"))?;
    let rule = Rule {
        id: r.id,
        version: r.version,
        category,
        target,
        action,
        severity,
        title: r.title,
        condition: r.condition,
        enabled: r.enabled,
    };
    medmesh_monitor::compile(&rule).map_err(|e| bad(&format!("rule.{}", e.field), e.message))?;
    Ok(rule)
}

fn rule_fields(r: &Rule) -> pb::MonitoringRule {
    pb::MonitoringRule {
        id: r.id.clone(),
        version: r.version,
        category: match r.category {
            Category::Policy => pb::RuleCategory::Policy,
            Category::Management => pb::RuleCategory::Management,
            Category::Medical => pb::RuleCategory::Medical,
        } as i32,
        target: match r.target {
            Target::Claim => pb::RuleTarget::Claim,
            Target::Line => pb::RuleTarget::Line,
        } as i32,
        action: action_pb(r.action),
        severity: u32::from(r.severity),
        title: r.title.clone(),
        condition: r.condition.clone(),
        enabled: r.enabled,
        national: false,
        recorded_at_ms: 0,
    }
}

/// A rule for the wire (also the form `medmesh dev` records the shipped rules in).
pub fn rule_pb(r: &Rule) -> pb::MonitoringRule {
    rule_fields(r)
}

/// A recorded rule for the wire.
pub fn rule_record_pb(r: &RuleRecord) -> pb::MonitoringRule {
    pb::MonitoringRule { national: r.national, recorded_at_ms: r.recorded_at.millis(), ..rule_fields(&r.rule) }
}

fn action_pb(a: Action) -> i32 {
    let a = match a {
        Action::Block => pb::RuleAction::Block,
        Action::SelfPay => pb::RuleAction::SelfPay,
        Action::Flag => pb::RuleAction::Flag,
    };
    a as i32
}

/// A hit for the wire.
pub fn hit_pb(h: &Hit) -> pb::RuleHit {
    pb::RuleHit {
        rule_id: h.rule.clone(),
        version: h.version,
        action: action_pb(h.action),
        severity: u32::from(h.severity),
        title: h.title.clone(),
        line_serial: h.line.clone().unwrap_or_default(),
    }
}

/// A fault for the wire.
pub fn fault_pb(f: &Fault) -> pb::RuleFault {
    pb::RuleFault {
        rule_id: f.rule.clone(),
        version: f.version,
        line_serial: f.line.clone().unwrap_or_default(),
        message: f.message.clone(),
    }
}

/// A knowledge-base entry from the wire.
pub fn knowledge(r: pb::PutKnowledgeRequest) -> Result<Knowledge, Status> {
    let byte = |field: &str, v: Option<u32>| -> Result<Option<u8>, Status> {
        v.map(|v| u8::try_from(v).map_err(|_| bad(field, "is out of range"))).transpose()
    };
    match r.entry {
        Some(pb::put_knowledge_request::Entry::Diagnosis(d)) => Ok(Knowledge::Diagnosis(Diagnosis {
            sex: opt_sex("diagnosis.sex", d.sex)?,
            code: d.code,
            name: d.name,
            min_age: d.min_age,
            max_age: d.max_age,
        })),
        Some(pb::put_knowledge_request::Entry::Item(i)) => {
            let kind = match pb::ItemKind::try_from(i.kind) {
                Ok(pb::ItemKind::Drug) => ItemKind::Drug,
                Ok(pb::ItemKind::Service) => ItemKind::Service,
                Ok(pb::ItemKind::Consumable) => ItemKind::Consumable,
                Ok(pb::ItemKind::Bed) => ItemKind::Bed,
                _ => return Err(bad("item.kind", "must be DRUG, SERVICE, CONSUMABLE or BED")),
            };
            let max_per_day = if i.max_per_day.trim().is_empty() {
                None
            } else {
                Some(
                    i.max_per_day
                        .trim()
                        .parse::<Decimal>()
                        .map_err(|_| bad("item.max_per_day", "is not a decimal number"))?,
                )
            };
            Ok(Knowledge::Item(ItemKnowledge {
                sex: opt_sex("item.sex", i.sex)?,
                min_level: byte("item.min_level", i.min_level)?,
                code: i.code,
                kind,
                min_age: i.min_age,
                max_age: i.max_age,
                indications: i.indications,
                max_per_day,
                max_course_days: i.max_course_days,
                inpatient_only: i.inpatient_only,
                once_per_day: i.once_per_day,
                part_of: i.part_of,
                incompatible: i.incompatible,
            }))
        }
        None => Err(bad("entry", "give a diagnosis or an item")),
    }
}

/// A knowledge-base entry for the wire (the form `medmesh dev` records the demo subset in).
pub fn knowledge_pb(k: &Knowledge) -> pb::PutKnowledgeRequest {
    let entry = match k {
        Knowledge::Diagnosis(d) => pb::put_knowledge_request::Entry::Diagnosis(pb::KnowledgeDiagnosis {
            code: d.code.clone(),
            name: d.name.clone(),
            sex: d.sex.map(sex_pb).unwrap_or(0),
            min_age: d.min_age,
            max_age: d.max_age,
        }),
        Knowledge::Item(i) => pb::put_knowledge_request::Entry::Item(pb::KnowledgeItem {
            code: i.code.clone(),
            kind: match i.kind {
                ItemKind::Drug => pb::ItemKind::Drug,
                ItemKind::Service => pb::ItemKind::Service,
                ItemKind::Consumable => pb::ItemKind::Consumable,
                ItemKind::Bed => pb::ItemKind::Bed,
            } as i32,
            sex: i.sex.map(sex_pb).unwrap_or(0),
            min_age: i.min_age,
            max_age: i.max_age,
            indications: i.indications.clone(),
            max_per_day: i.max_per_day.map(|q| q.to_string()).unwrap_or_default(),
            max_course_days: i.max_course_days,
            min_level: i.min_level.map(u32::from),
            inpatient_only: i.inpatient_only,
            once_per_day: i.once_per_day,
            part_of: i.part_of.clone(),
            incompatible: i.incompatible.clone(),
        }),
    };
    pb::PutKnowledgeRequest { entry: Some(entry) }
}

/// An alert for the wire.
pub fn alert_pb(a: &Alert) -> pb::Alert {
    let (status, status_reason) = match &a.status {
        AlertStatus::Open => (pb::AlertStatus::Open, String::new()),
        AlertStatus::Dismissed(why) => (pb::AlertStatus::Dismissed, why.clone()),
        AlertStatus::Accepted(case) => (pb::AlertStatus::Accepted, case.clone()),
    };
    pb::Alert {
        seq: a.seq,
        raised_at_ms: a.raised_at.millis(),
        institution_id: a.institution.to_string(),
        visit_serial: a.visit.to_string(),
        settlement_serial: a.settlement.to_string(),
        rule_id: a.rule.clone(),
        rule_version: a.version,
        title: a.title.clone(),
        severity: u32::from(a.severity),
        line_serial: a.line.clone().unwrap_or_default(),
        fault: match &a.kind {
            AlertKind::Flag => String::new(),
            AlertKind::Fault(m) => m.clone(),
        },
        status: status as i32,
        status_reason,
    }
}
