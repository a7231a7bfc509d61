//! What apply checks of every command before it reads any state: signs, magnitudes and scales
//! of amounts and quantities, sizes of texts and lists. A command reaches apply by the
//! hospital API, by forwarding, by `RaftService.Propose` or from another province, so nothing
//! checked at a gRPC edge is taken for granted here. Identifiers, dates and ratios are checked
//! already when a command is decoded (their `Deserialize` refuses bad values).
//!
//! The bounds keep every sum apply computes far inside `Decimal`'s range: no command can make
//! apply overflow, and so no command can panic a replica.

use medmesh_settlement::{CatalogueItem, FeeLine, Policy, Split, MAX_LINES, MAX_QUANTITY};
use medmesh_types::{Money, MAX_YUAN};
use rust_decimal::Decimal;

use crate::command::Command;
use crate::federation::FederationCommand;
use crate::model::*;
use crate::shared::*;
use crate::DomainError;

/// Longest free-text field.
pub const MAX_TEXT: usize = 256;
/// Most items in one list of a command (directory entries, shared-log items, endpoints).
pub const MAX_LIST: usize = 10_000;

/// Checks a command's fields without reading state.
pub fn validate(cmd: &Command) -> Result<(), DomainError> {
    match cmd {
        Command::Province(c) => province(c),
        Command::Federation(c) => federation(c),
    }
}

/// Checks a province command's fields.
fn province(cmd: &ProvinceCommand) -> Result<(), DomainError> {
    match cmd {
        ProvinceCommand::PutPerson(p) => {
            // The key, the card hashes and the sealed fields are checked by their types when
            // the command is decoded; apply cannot open the seal and need not.
            masked("masked_id", &p.masked_id)?;
            amount("account_balance", p.account_balance)
        }
        ProvinceCommand::PutInstitution(i) => {
            text("name", &i.name, true)?;
            if !(1..=3).contains(&i.level) {
                return Err(DomainError::invalid("level", "must be 1, 2 or 3"));
            }
            if i.agreement_end < i.agreement_start {
                return Err(DomainError::invalid("agreement_end", "is before agreement_start"));
            }
            Ok(())
        }
        ProvinceCommand::PutPersonnel(p) => text("name", &p.name, true),
        ProvinceCommand::PutCatalogueItem(item) => catalogue_item("", item),
        ProvinceCommand::PutPolicy(p) => policy(p),
        ProvinceCommand::PutRule(r) => medmesh_monitor::compile(r)
            .map(|_| ())
            .map_err(|e| DomainError::invalid(format!("rule.{}", e.field), e.message)),
        ProvinceCommand::ReviewAlert { seq, accept, reason } => {
            if *seq == 0 {
                return Err(DomainError::invalid("seq", "must be positive"));
            }
            text("reason", reason, !*accept)
        }
        ProvinceCommand::PutKnowledge(k) => {
            let entry = match k {
                medmesh_monitor::Knowledge::Diagnosis(_) => "diagnosis",
                medmesh_monitor::Knowledge::Item(_) => "item",
            };
            k.check().map_err(|e| DomainError::invalid(format!("{entry}.{}", e.field), e.message))
        }
        ProvinceCommand::Contribute { amount: a, source, .. } => {
            text("source", source, false)?;
            positive("amount", *a)
        }
        ProvinceCommand::RecordViolation(v) => crate::rules::check_violation(v, None),
        ProvinceCommand::RegisterVisit { department, diagnosis, .. } => {
            text("department", department, false)?;
            text("diagnosis", diagnosis, true)
        }
        ProvinceCommand::UploadFees { lines, .. } | ProvinceCommand::SettleWithLines { lines, .. } => {
            if lines.is_empty() {
                return Err(DomainError::invalid("lines", "at least one fee line is required"));
            }
            if lines.len() > MAX_LINES {
                return Err(DomainError::too_large("lines", format!("at most {MAX_LINES} lines per upload")));
            }
            fee_lines("lines", lines)
        }
        ProvinceCommand::Settle { .. } | ProvinceCommand::Reverse { .. } => Ok(()),
        ProvinceCommand::RegisterNonLocalVisit { request, nonlocal } => {
            if !matches!(**request, ProvinceCommand::RegisterVisit { .. }) {
                return Err(DomainError::invalid("request", "must be a visit registration"));
            }
            province(request)?;
            nonlocal_visit(nonlocal)
        }
        ProvinceCommand::Reserve { person_key, claim, .. } => {
            if !is_directory_key(person_key) {
                return Err(DomainError::invalid("person_key", "is not a directory key"));
            }
            remote_claim(claim)
        }
        ProvinceCommand::ResolveReservation { .. } | ProvinceCommand::UnpostReservation { .. } => Ok(()),
        ProvinceCommand::TransferReserved { split: s, .. } => split(s),
        ProvinceCommand::FinishTransfer { reason, split: s, .. } => {
            text("reason", reason, false)?;
            s.as_ref().map_or(Ok(()), split)
        }
        ProvinceCommand::AttachFiling { .. } | ProvinceCommand::FinishReversal { .. } => Ok(()),
        ProvinceCommand::SyncShared { items } => list("items", items.len()),
        ProvinceCommand::RecordDiscipline(e) => text("reason", &e.reason, true),
        ProvinceCommand::LiftDiscipline { province, subject, id, reason } => {
            crate::rules::province("province", province)?;
            crate::discipline::check_subject(subject)?;
            crate::discipline::check_id(id)?;
            crate::discipline::check_reason(reason)
        }
        ProvinceCommand::ReceiveReports { province, items } => {
            crate::rules::province("province", province)?;
            list("items", items.len())?;
            for (i, (_, m)) in items.iter().enumerate() {
                crate::reports::check_message(m).map_err(|e| e.within(&format!("items[{i}]")))?;
            }
            Ok(())
        }
        ProvinceCommand::RecordCommitment { province, id, text, .. } => {
            crate::rules::province("province", province)?;
            medmesh_supervision::reports::check_id("id", id).map_err(crate::error::case_error)?;
            medmesh_supervision::reports::check_text("text", text, true).map_err(crate::error::case_error)
        }
        ProvinceCommand::ResolveCommitment { province, id, kept, finding, .. } => {
            crate::rules::province("province", province)?;
            medmesh_supervision::reports::check_id("id", id).map_err(crate::error::case_error)?;
            medmesh_supervision::reports::check_text("finding", finding, !kept).map_err(crate::error::case_error)
        }
        ProvinceCommand::RecordIncentive(i) => crate::credit::check_incentive(i),
        ProvinceCommand::Case(c) => crate::cases::validate(c),
        ProvinceCommand::Published { .. } => Ok(()),
        ProvinceCommand::Payment(c) => crate::payment::validate(c),
        ProvinceCommand::Inspection(c) => crate::inspection::validate(c),
        ProvinceCommand::Report(c) => crate::reports::validate(c),
        ProvinceCommand::PublishAggregate { period } => crate::aggregate::check_period("period", *period),
        ProvinceCommand::CreditAccounts { credits, .. } => {
            if credits.is_empty() {
                return Err(DomainError::invalid("credits", "at least one credit is required"));
            }
            if credits.len() > MAX_CREDITS {
                return Err(DomainError::too_large("credits", format!("at most {} persons per command", MAX_CREDITS)));
            }
            for (i, c) in credits.iter().enumerate() {
                positive(&format!("credits[{i}].amount"), c.amount)?;
            }
            Ok(())
        }
        ProvinceCommand::PrepaidSeen { topped_up, .. } => {
            if topped_up.is_negative() {
                return Err(DomainError::invalid("topped_up", "must not be negative"));
            }
            Ok(())
        }
        ProvinceCommand::ScanRule { rule_id, from, to, after, limit } => {
            text("rule_id", rule_id, true)?;
            if to < from {
                return Err(DomainError::invalid("to", format!("{to} is before from {from}")));
            }
            if after.len() > 300 || after.chars().any(char::is_control) {
                return Err(DomainError::invalid("page_token", "is not a token this scan returned"));
            }
            if !(1..=crate::monitoring::MAX_SCAN as u32).contains(limit) {
                return Err(DomainError::invalid("page_size", format!("must be 1 to {}", crate::monitoring::MAX_SCAN)));
            }
            Ok(())
        }
    }
}

/// Checks a federation command's fields.
fn federation(cmd: &FederationCommand) -> Result<(), DomainError> {
    match cmd {
        FederationCommand::RecordViolation(v) => crate::rules::check_violation(v, None),
        FederationCommand::PutRule(r) => medmesh_monitor::compile(r)
            .map(|_| ())
            .map_err(|e| DomainError::invalid(format!("rule.{}", e.field), e.message)),
        FederationCommand::RecordCaseOutcome(o) => {
            o.validate().map_err(|e| DomainError::invalid("outcome", e.to_string()))?;
            crate::rules::province("province", &o.province)
        }
        FederationCommand::RecordCreditLift(l) => {
            l.validate().map_err(|e| DomainError::invalid("lift", e.to_string()))?;
            crate::rules::province("province", &l.province)
        }
        FederationCommand::RecordDisciplineLift(l) => crate::discipline::check_lift(l),
        FederationCommand::SendReport(m) => crate::reports::check_message(m),
        FederationCommand::RecordCommitment(c) => crate::credit::check_shared(c),
        FederationCommand::RecordIncentive(i) => crate::credit::check_incentive(i),
        FederationCommand::RecordDeclarationReview(r) => crate::credit::check_review(r),
        FederationCommand::RecordAggregate { province, aggregate } => {
            crate::rules::province("province", province)?;
            crate::aggregate::check(aggregate)
        }
        FederationCommand::Reverse { .. } => Ok(()),
        FederationCommand::RecordDiscipline(e) => text("reason", &e.reason, true),
        FederationCommand::TopUp { amount: a, warning_below, .. } => {
            positive("amount", *a)?;
            warning_below.map_or(Ok(()), |w| amount("warning_below", w))
        }
        FederationCommand::RunClearing { month } | FederationCommand::SettleClearing { month } => {
            text("month", month, true)
        }
        FederationCommand::ConfirmClearing { month, .. } => text("month", month, true),
        FederationCommand::DisputeClearing { month, claimed, reason, .. } => {
            text("month", month, true)?;
            amount("claimed_amount", *claimed)?;
            text("reason", reason, true)
        }
        FederationCommand::ResolveDispute { month, note, .. } => {
            text("month", month, true)?;
            text("note", note, false)
        }
        FederationCommand::RegisterProvince(e) => {
            if e.endpoints.is_empty() || e.endpoints.len() > 16 {
                return Err(DomainError::invalid("endpoints", "must list 1 to 16 endpoints"));
            }
            for (i, ep) in e.endpoints.iter().enumerate() {
                text(&format!("endpoints[{i}]"), ep, true)?;
            }
            Ok(())
        }
        FederationCommand::Directory { entries } => {
            list("entries", entries.len())?;
            for (i, (key, _)) in entries.iter().enumerate() {
                if !is_directory_key(key) {
                    return Err(DomainError::invalid(format!("entries[{i}]"), "is not a directory key"));
                }
            }
            Ok(())
        }
        FederationCommand::File(f) => {
            if f.end < f.start {
                return Err(DomainError::invalid("end", format!("{} is before start {}", f.end, f.start)));
            }
            if !is_directory_key(&f.person_key) {
                return Err(DomainError::invalid("certificate", "is not a directory key"));
            }
            Ok(())
        }
        FederationCommand::Decide { amount: a, reason, .. } => {
            amount("amount", *a)?;
            text("reason", reason, false)
        }
        FederationCommand::Vouch { amount: a, .. } => amount("amount", *a),
        FederationCommand::Anchor { head, .. } => {
            if head.seq == 0 {
                return Err(DomainError::invalid("head.seq", "must be positive"));
            }
            if head.hash.len() != 64 || !head.hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Err(DomainError::invalid("head.hash", "must be 64 lowercase hex characters"));
            }
            Ok(())
        }
    }
}

fn text(field: &str, value: &str, required: bool) -> Result<(), DomainError> {
    if required && value.trim().is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_TEXT {
        return Err(DomainError::invalid(field, format!("longer than {MAX_TEXT} bytes")));
    }
    Ok(())
}

/// A masked identity number: 1 to 32 characters, the middle ones starred (never a raw
/// number: at least one `*` once longer than 7 characters, as `mask_identity` makes it).
fn masked(field: &str, value: &str) -> Result<(), DomainError> {
    let n = value.chars().count();
    if n == 0 || n > 32 || !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '*') || !value.contains('*') {
        return Err(DomainError::invalid(field, "must be a masked identity number (1 to 32 characters, starred)"));
    }
    Ok(())
}

fn list(field: &str, len: usize) -> Result<(), DomainError> {
    if len > MAX_LIST {
        return Err(DomainError::too_large(field, format!("at most {MAX_LIST} items")));
    }
    Ok(())
}

/// An amount in `0 ..= MAX_YUAN`, at most two decimals (a `Money` always is).
fn amount(field: &str, m: Money) -> Result<(), DomainError> {
    if m.is_negative() {
        return Err(DomainError::invalid(field, "must not be negative"));
    }
    if m.as_decimal() > Decimal::from(MAX_YUAN) {
        return Err(DomainError::invalid(field, format!("above the limit of {MAX_YUAN} yuan")));
    }
    Ok(())
}

fn positive(field: &str, m: Money) -> Result<(), DomainError> {
    amount(field, m)?;
    if m.is_zero() {
        return Err(DomainError::invalid(field, "must be positive"));
    }
    Ok(())
}

fn quantity(field: &str, q: Decimal) -> Result<(), DomainError> {
    if q <= Decimal::ZERO || q.normalize().scale() > 4 || q > Decimal::from(MAX_QUANTITY) {
        return Err(DomainError::invalid(
            field,
            format!("must be positive, at most {MAX_QUANTITY}, with at most 4 decimals"),
        ));
    }
    Ok(())
}

fn fee_lines(prefix: &str, lines: &[FeeLine]) -> Result<(), DomainError> {
    for (i, l) in lines.iter().enumerate() {
        quantity(&format!("{prefix}[{i}].quantity"), l.quantity)?;
        amount(&format!("{prefix}[{i}].unit_price"), l.unit_price)?;
        if l.amount().is_none() {
            return Err(DomainError::invalid(
                format!("{prefix}[{i}].unit_price"),
                format!("quantity × unit price must be at most {} yuan", medmesh_settlement::max_line_amount()),
            ));
        }
    }
    Ok(())
}

fn catalogue_item(prefix: &str, item: &CatalogueItem) -> Result<(), DomainError> {
    let f = |n: &str| format!("{prefix}{n}");
    text(&f("name"), &item.name, true)?;
    if let Some(c) = item.price_ceiling {
        amount(&f("price_ceiling"), c)?;
    }
    let r = &item.restrictions;
    if let (Some(a), Some(b)) = (r.min_age, r.max_age) {
        if a > b {
            return Err(DomainError::invalid(f("restrictions.min_age"), "is above max_age"));
        }
    }
    if r.min_age.is_some_and(|a| a > 150) || r.max_age.is_some_and(|a| a > 150) {
        return Err(DomainError::invalid(f("restrictions.max_age"), "ages are at most 150"));
    }
    if let Some(q) = r.max_quantity_per_day {
        quantity(&f("restrictions.max_quantity_per_day"), q)?;
    }
    if r.min_institution_level.is_some_and(|l| !(1..=3).contains(&l)) {
        return Err(DomainError::invalid(f("restrictions.min_institution_level"), "must be 1, 2 or 3"));
    }
    Ok(())
}

fn policy(p: &Policy) -> Result<(), DomainError> {
    if p.ratios.is_empty() {
        return Err(DomainError::invalid("ratios", "must define at least one ratio"));
    }
    if p.ratios.keys().any(|(_, level)| !(1..=3).contains(level)) {
        return Err(DomainError::invalid("ratios", "institution levels are 1, 2 or 3"));
    }
    amount("deductible", p.deductible)?;
    amount("annual_cap", p.annual_cap)?;
    amount("critical_illness_annual_cap", p.critical_illness.annual_cap)?;
    amount("assistance_cap", p.assistance.annual_cap)
}

fn nonlocal_visit(nl: &NonLocalVisit) -> Result<(), DomainError> {
    if nl.treatment == nl.insured {
        return Err(DomainError::invalid("nonlocal.insured", "is the treatment province"));
    }
    if !is_directory_key(&nl.person_key) {
        return Err(DomainError::invalid("nonlocal.person_key", "is not a directory key"));
    }
    masked("nonlocal.masked_id", &nl.masked_id)
}

fn remote_claim(c: &RemoteClaim) -> Result<(), DomainError> {
    if !(1..=3).contains(&c.institution_level) {
        return Err(DomainError::invalid("claim.institution_level", "must be 1, 2 or 3"));
    }
    if c.lines.is_empty() || c.lines.len() > MAX_LINES {
        return Err(DomainError::invalid("claim.lines", format!("must hold 1 to {MAX_LINES} lines")));
    }
    if c.items.len() > MAX_LINES {
        return Err(DomainError::invalid("claim.items", format!("at most {MAX_LINES} items")));
    }
    fee_lines("claim.lines", &c.lines)?;
    medmesh_settlement::check_amounts(&c.lines).map_err(|e| DomainError::invalid("claim.lines", e.to_string()))?;
    for (i, item) in c.items.iter().enumerate() {
        catalogue_item(&format!("claim.items[{i}]."), item)?;
    }
    for (line, rule) in &c.rule_self_pay {
        if !c.lines.iter().any(|l| &l.serial == line) {
            return Err(DomainError::invalid(
                "claim.rule_self_pay",
                format!("names line {line}, which the claim does not hold"),
            ));
        }
        if !medmesh_monitor::valid_rule_id(rule) {
            return Err(DomainError::invalid("claim.rule_self_pay", format!("names {rule:?}, which is not a rule id")));
        }
    }
    Ok(())
}

/// A non-local split from the insured province.
fn split(s: &Split) -> Result<(), DomainError> {
    s.check().map_err(|(field, why)| DomainError::invalid(field, why))?;
    if !s.medical_assistance.is_zero() {
        return Err(DomainError::invalid(
            "split.medical_assistance",
            "medical assistance for care in another province is paid at home, never through a non-local settlement",
        ));
    }
    Ok(())
}
