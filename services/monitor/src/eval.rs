//! Running compiled rules over a claim's facts.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use cel::{Context, Env, Value};
use serde::{Deserialize, Serialize};

use crate::facts::Facts;
use crate::rule::{Action, Category, CompiledRule, Target};
use crate::val::{list, Names, Rec};

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

/// Runs the enabled rules over the facts. Hits and faults come in rule order, then line order.
pub fn evaluate(rules: &[CompiledRule], facts: &Facts) -> Verdict {
    let rec = |r: &BTreeMap<&'static str, crate::Fact>| Rec::new(r.iter().map(|(k, v)| (*k, v.clone())));
    let records =
        [rec(&facts.claim), rec(&facts.person), rec(&facts.institution), rec(&facts.doctor), rec(&facts.history)];
    let lines: Vec<Rec> = facts.lines.iter().map(|l| Rec::new(l.field_list())).collect();
    // `record.field` resolves in one lookup to a value converted once per claim (see `val`
    // and `bind`); the records stay bound too, for a condition that uses one whole
    // (`has(claim.x)`).
    let line_names: Vec<Names> = lines.iter().map(|l| Names::Line(l.clone())).collect();
    let names = Names::Claim(records.clone());
    let mut ctx = Context::with_env(env());
    for (name, record) in ["claim", "person", "institution", "doctor", "history"].into_iter().zip(records) {
        ctx.add_variable_as_val(name, Box::new(record));
    }
    ctx.set_variable_resolver(&names);
    ctx.add_variable_as_val("lines", list(&lines));
    let enabled: Vec<(usize, &CompiledRule)> = rules.iter().enumerate().filter(|(_, r)| r.rule.enabled).collect();
    // (rule index, line index, outcome): binding a line costs a conversion of its facts, so
    // each line is bound once and every line rule runs under it; the results are put back in
    // rule order afterwards.
    let mut results: Vec<(usize, usize, Result<bool, String>)> = Vec::new();
    for (i, r) in enabled.iter().filter(|(_, r)| r.rule.target == Target::Claim) {
        results.push((*i, 0, run(r, &ctx)));
    }
    if enabled.iter().any(|(_, r)| r.rule.target == Target::Line) {
        for (n, value) in lines.into_iter().enumerate() {
            let mut inner = ctx.new_inner_scope();
            inner.set_variable_resolver(&line_names[n]);
            inner.add_variable_as_val("line", Box::new(value));
            for (i, r) in enabled.iter().filter(|(_, r)| r.rule.target == Target::Line) {
                results.push((*i, n, run(r, &inner)));
            }
        }
    }
    results.sort_by_key(|(i, n, _)| (*i, *n));
    let mut v = Verdict::default();
    for (i, n, outcome) in results {
        let rule = &rules[i].rule;
        let line = match rule.target {
            Target::Claim => None,
            Target::Line => facts.lines.get(n).map(|l| l.serial.clone()),
        };
        match outcome {
            Ok(false) => {}
            Ok(true) => v.hits.push(Hit {
                rule: rule.id.clone(),
                version: rule.version,
                category: rule.category,
                action: rule.action,
                severity: rule.severity,
                title: rule.title.clone(),
                line,
            }),
            Err(message) => v.faults.push(Fault { rule: rule.id.clone(), version: rule.version, line, message }),
        }
    }
    v
}

/// Whether the rule is broken, or why it could not be evaluated.
fn run(r: &CompiledRule, ctx: &Context<'_, '_>) -> Result<bool, String> {
    match Value::resolve(&r.program, ctx) {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("the condition gave {:?}, not true or false", other.type_of())),
        Err(e) => Err(e.to_string()),
    }
}
