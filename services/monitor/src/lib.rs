//! Intelligent monitoring for medmesh ("two libraries": a knowledge base and a rule library),
//! after the 2020 guidance on reforming fund supervision and the national rule framework.
//!
//! - A [`Rule`] is data: an id and version, a family ([`Category`]: policy, management,
//!   medical), what it looks at ([`Target`]: the whole claim or each fee line), an [`Action`]
//!   (block the settlement, move the line to the patient's own share, or flag it for review), a
//!   severity and a condition written in CEL (the Common Expression Language). The condition is
//!   true when the claim breaks the rule.
//! - [`compile`] refuses a rule whose condition does not parse, names a fact that does not exist,
//!   uses a float, ranges over something that is not a list, or nests comprehensions too deep;
//!   see [`schema`] for the facts and what a condition may use.
//! - [`KnowledgeBase`] holds what the rules read about diagnoses (ICD-10, sex and age
//!   constraints) and items (sex and age restrictions, indications, daily and course limits,
//!   incompatible items, the packages an item belongs to).
//! - [`Facts::build`] turns a claim, the people and institution around it, the knowledge base
//!   and the person's recent history into integer facts: money in fen, quantities in
//!   ten-thousandths of a unit, days as day numbers. No float enters an expression.
//! - [`evaluate`] runs compiled rules over facts and returns a [`Verdict`]: the hits in rule
//!   order, and the rules that failed to evaluate ([`Fault`]), which the caller must treat as
//!   alerts (never as a pass).
//!
//! Evaluation is deterministic: the facts hold lists in a fixed order, a condition may range
//! only over lists (never over a map, whose order CEL does not fix), and nothing reads a clock
//! or randomness. This crate does no IO and must never depend on tokio, tonic, rocksdb or
//! openraft.
#![forbid(unsafe_code)]

mod bind;
mod eval;
mod facts;
mod kb;
mod library;
mod rule;
pub mod schema;
mod val;

pub use eval::{evaluate, Fault, Hit, Verdict};
pub use facts::{ClaimInput, DoctorFacts, Fact, Facts, History, LineFacts, LineInput};
pub use kb::{Diagnosis, ItemKind, ItemKnowledge, Knowledge, KnowledgeBase, MAX_KB_LIST};
pub use library::{demo_knowledge_base, shipped_rules};
pub use rule::{compile, valid_rule_id, Action, Category, CompiledRule, Rule, RuleError, Target, MAX_CONDITION};

#[cfg(test)]
mod tests;
