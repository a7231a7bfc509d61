//! Running compiled rules over a claim's facts.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use cel::{Context, Env, Value};
use serde::{Deserialize, Serialize};

use crate::facts::{record, Facts};
use crate::rule::{Action, Category, CompiledRule, Target};

/// A broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    /// Rule id.
    pub rule: String,
    /// Its version.
    pub version: u32,
    /// Family.
    pub category: Category,
    /// What it does.
    pub action: Action,
    /// 1–5.
    pub severity: u8,
    /// Its title.
    pub title: String,
    /// The line's serial, for a line rule.
    pub line: Option<String>,
}

/// A rule that could not be evaluated on this claim: an alert for review, never a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// Rule id.
    pub rule: String,
    /// Its version.
    pub version: u32,
    /// The line's serial, for a line rule.
    pub line: Option<String>,
    /// What went wrong.
    pub message: String,
}

/// What the rules found, in rule order (then line order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Broken rules.
    pub hits: Vec<Hit>,
    /// Rules that failed to evaluate.
    pub faults: Vec<Fault>,
}

impl Verdict {
    /// The first blocking hit, if any: the settlement is refused naming it.
    pub fn block(&self) -> Option<&Hit> {
        self.hits.iter().find(|h| h.action == Action::Block)
    }

    /// The first self-pay hit of each line (`serials` are the claim's lines; a claim-level
    /// self-pay hit covers all of them).
    pub fn self_pay<'a>(&'a self, serials: &[String]) -> BTreeMap<String, &'a Hit> {
        let mut out = BTreeMap::new();
        for h in self.hits.iter().filter(|h| h.action == Action::SelfPay) {
            match &h.line {
                Some(s) => {
                    out.entry(s.clone()).or_insert(h);
                }
                None => {
                    for s in serials {
                        out.entry(s.clone()).or_insert(h);
                    }
                }
            }
        }
        out
    }

    /// Hits to put in the review queue.
    pub fn flags(&self) -> impl Iterator<Item = &Hit> {
        self.hits.iter().filter(|h| h.action == Action::Flag)
    }

    /// Whether nothing was found and nothing failed.
    pub fn is_clean(&self) -> bool {
        self.hits.is_empty() && self.faults.is_empty()
    }
}

fn env() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(Env::stdlib())).clone()
}

/// Runs the enabled rules over the facts.
pub fn evaluate(rules: &[CompiledRule], facts: &Facts) -> Verdict {
    let mut ctx = Context::with_env(env());
    ctx.add_variable_from_value("claim", record(&facts.claim));
    ctx.add_variable_from_value("person", record(&facts.person));
    ctx.add_variable_from_value("institution", record(&facts.institution));
    ctx.add_variable_from_value("doctor", record(&facts.doctor));
    ctx.add_variable_from_value("history", record(&facts.history));
    let lines: Vec<Value> = facts.lines.iter().map(|l| record(&l.fields())).collect();
    ctx.add_variable_from_value("lines", Value::List(Arc::new(lines.clone())));
    let mut v = Verdict::default();
    for r in rules.iter().filter(|r| r.rule.enabled) {
        match r.rule.target {
            Target::Claim => run(r, &ctx, None, &mut v),
            Target::Line => {
                for (facts, value) in facts.lines.iter().zip(&lines) {
                    let mut inner = ctx.new_inner_scope();
                    inner.add_variable_from_value("line", value.clone());
                    run(r, &inner, Some(&facts.serial), &mut v);
                }
            }
        }
    }
    v
}

fn run(r: &CompiledRule, ctx: &Context<'_, '_>, line: Option<&String>, v: &mut Verdict) {
    let rule = &r.rule;
    match r.program.execute(ctx) {
        Ok(Value::Bool(false)) => {}
        Ok(Value::Bool(true)) => v.hits.push(Hit {
            rule: rule.id.clone(),
            version: rule.version,
            category: rule.category,
            action: rule.action,
            severity: rule.severity,
            title: rule.title.clone(),
            line: line.cloned(),
        }),
        Ok(other) => v.faults.push(Fault {
            rule: rule.id.clone(),
            version: rule.version,
            line: line.cloned(),
            message: format!("the condition gave {:?}, not true or false", other.type_of()),
        }),
        Err(e) => v.faults.push(Fault {
            rule: rule.id.clone(),
            version: rule.version,
            line: line.cloned(),
            message: e.to_string(),
        }),
    }
}
