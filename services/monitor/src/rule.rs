//! A rule as recorded, and its compiled form.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::schema::Reads;

/// Longest condition, in bytes.
pub const MAX_CONDITION: usize = 2048;
/// Longest title, in bytes.
pub const MAX_TITLE: usize = 200;

/// The three families of the national rule framework.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Category {
    /// 政策类: what the policy pays for (restrictions, indications, levels, prices).
    Policy,
    /// 管理类: how care is billed (duplicates, decomposition, dates, frequency, personnel).
    Management,
    /// 医疗类: whether the care is medically plausible (sex, age, diagnosis, quantities).
    Medical,
}

/// What a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Target {
    /// The whole claim, once.
    Claim,
    /// Each fee line, with `line` bound to it.
    Line,
}

/// What a broken rule does at settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Refuse the settlement, naming the rule.
    Block,
    /// The line (or, for a claim rule, every line) moves to the patient's own share, with the
    /// rule as the reason.
    SelfPay,
    /// Settle, and put an alert in the review queue.
    Flag,
}

/// A monitoring rule, as an agency or the national administration records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Identifier: 1–32 characters of letters, digits, `.`, `_` and `-`.
    pub id: String,
    /// Version, from 1; a changed rule is recorded under the next version.
    pub version: u32,
    /// Family.
    pub category: Category,
    /// Claim or line.
    pub target: Target,
    /// Block, self-pay or flag.
    pub action: Action,
    /// 1 (lowest) to 5.
    pub severity: u8,
    /// What the rule catches, for reviewers and institutions.
    pub title: String,
    /// CEL condition, true when the claim (or line) breaks the rule; see [`crate::schema`].
    pub condition: String,
    /// A disabled rule is kept (and can be tested) but not run at settlement.
    pub enabled: bool,
}

/// Why a rule cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RuleError {
    /// The rule's field at fault.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> RuleError {
    RuleError { field, message: message.into() }
}

/// A rule whose condition parsed and passed the check.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    /// The rule.
    pub rule: Rule,
    /// The condition, its field reads bound to one name each (see `bind`).
    pub(crate) program: Arc<cel::IdedExpr>,
    /// What its condition reads.
    pub reads: crate::schema::Reads,
}

/// Whether `id` is a well-formed rule id: 1 to 32 letters, digits, `.`, `_` or `-`.
pub fn valid_rule_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks a rule and compiles its condition.
pub fn compile(rule: &Rule) -> Result<CompiledRule, RuleError> {
    if !valid_rule_id(&rule.id) {
        return Err(refuse("id", "must be 1 to 32 letters, digits, '.', '_' or '-'"));
    }
    if rule.version == 0 {
        return Err(refuse("version", "must be at least 1"));
    }
    if !(1..=5).contains(&rule.severity) {
        return Err(refuse("severity", "must be 1 to 5"));
    }
    if rule.title.trim().is_empty() || rule.title.len() > MAX_TITLE {
        return Err(refuse("title", format!("must be 1 to {MAX_TITLE} bytes")));
    }
    if rule.condition.trim().is_empty() || rule.condition.len() > MAX_CONDITION {
        return Err(refuse("condition", format!("must be 1 to {MAX_CONDITION} bytes")));
    }
    let (program, reads) = program(rule.target, &rule.condition)?;
    Ok(CompiledRule { rule: rule.clone(), program, reads })
}

/// Most conditions kept compiled in one process.
const CACHE_SIZE: usize = 10_000;

/// The compiled condition, from this process's cache when it was compiled before: apply
/// runs the rules in force on every settlement, and parsing is most of a rule's cost.
/// Compiling is a pure function of the text, so the cache changes no answer.
fn program(target: Target, condition: &str) -> Result<(Arc<cel::IdedExpr>, Reads), RuleError> {
    type Cache = Mutex<BTreeMap<(Target, String), (Arc<cel::IdedExpr>, Reads)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (target, condition.to_string());
    if let Some(p) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(p);
    }
    let program = cel::Program::compile(condition).map_err(|e| {
        let first = e.errors.first().map(|e| e.msg.clone()).unwrap_or_else(|| "does not parse".into());
        refuse("condition", format!("does not parse: {first}"))
    })?;
    let reads = crate::schema::check(program.expression(), target).map_err(|m| refuse("condition", m))?;
    let program = Arc::new(crate::bind::bind(program.expression()));
    if let Ok(mut c) = cache.lock() {
        if c.len() >= CACHE_SIZE {
            c.clear();
        }
        c.insert(key, (program.clone(), reads));
    }
    Ok((program, reads))
}
