//! The facts a rule's condition may read, and the static check every condition passes before
//! it is recorded.
//!
//! A condition sees these names (all integers are `int`; money is in fen, quantities in
//! ten-thousandths of a unit, days are day numbers since 1970-01-01, `-1` means "none"):
//!
//! | name | what |
//! |---|---|
//! | `claim` | the visit: `kind` (`"outpatient"`/`"inpatient"`), `admitted`, `discharged`, `stay_days`, `diagnosis` (ICD-10), `diagnosis_known`, `diagnosis_sex` (`"F"`, `"M"` or `""`), `diagnosis_min_age`, `diagnosis_max_age`, `department`, `nonlocal`, `total_fen`, `line_count`, `bed_days_e4`, `codes` (the set of item codes billed: use `code in claim.codes`) |
//! | `person` | `age` (whole years on admission), `sex` (`"F"`/`"M"`), `insurance` (`"employee"`/`"resident"`) — never an identity |
//! | `institution` | `id`, `level` (1–3) |
//! | `doctor` | `code`, `suspended`, `terminated`, `points` (this year's) |
//! | `history` | the person's recent care: `days_since_last_discharge`, `visits_last_7_days`, `visits_last_30_days`, `same_day_visits_here`, `overlapping_stays` (this province), `remote_overlapping_stays`, `remote_same_day`, `nonlocal_stays_90_days` (other provinces, from the federation's index) |
//! | `lines` | the fee lines, in upload order, each as `line` below |
//! | `line` | (line rules only) `serial`, `code`, `kind` (`"drug"`, `"service"`, `"consumable"`, `"bed"` or `""`), `class` (`"A"`, `"B"`, `"C"`), `quantity_e4`, `unit_price_fen`, `amount_fen`, `day`, `price_ceiling_fen`, and from the knowledge base `kb_known`, `kb_sex`, `kb_min_age`, `kb_max_age`, `kb_indications` (ICD-10 prefixes), `kb_max_per_day_e4`, `kb_max_course_days`, `kb_min_level`, `kb_inpatient_only`, `kb_once_per_day`, `kb_part_of` (packages that include it), `kb_incompatible`; and derived: `day_quantity_e4` (the code's quantity that day in this claim), `same_code_same_day_lines`, `same_day_index` (0 for the first line of its code that day), `course_days` (distinct days billed, this claim and the course before it), `billed_elsewhere` (lines of the same code and day on the person's other visits), `incompatible_same_day`, `package_same_day` |
//!
//! The check ([`check`]) refuses: a name or field not in the table; a float literal or
//! `double()` (money is never a float); a function outside [`FUNCTIONS`]; a comprehension
//! (`all`, `exists`, `exists_one`, `map`, `filter`) over anything but a list, because CEL does
//! not fix the order of a map and apply must be deterministic; a range over `lines` inside a
//! line rule or inside another range over `lines` (its cost is the square of the claim's lines;
//! the derived line facts answer those questions); comprehensions nested more than
//! [`MAX_NESTING`] deep; more than [`MAX_NODES`] nodes; map and message literals.

use cel::common::ast::{Expr, IdedExpr, LiteralValue};

use crate::rule::Target;

/// Deepest nesting of comprehensions (each ranges over at most a claim's lines).
pub const MAX_NESTING: usize = 2;
/// Largest expression, in syntax nodes.
pub const MAX_NODES: usize = 400;

/// The functions and operators a condition may call.
pub const FUNCTIONS: &[&str] = &[
    "_&&_",
    "_||_",
    "!_",
    "@not_strictly_false",
    "_==_",
    "_!=_",
    "_<_",
    "_<=_",
    "_>_",
    "_>=_",
    "_+_",
    "_-_",
    "_*_",
    "_/_",
    "_%_",
    "-_",
    "_?_:_",
    "_[_]",
    "@in",
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "int",
    "string",
];

/// A record of facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// `claim`.
    Claim,
    /// `person`.
    Person,
    /// `institution`.
    Institution,
    /// `doctor`.
    Doctor,
    /// `history`.
    History,
    /// One fee line.
    Line,
}

/// The type of a fact or sub-expression, as far as the check needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// Integer.
    Int,
    /// String.
    Str,
    /// Boolean.
    Bool,
    /// A list of strings.
    StrList,
    /// A set of strings (a map to `true`): membership only, never iterated.
    Set,
    /// A record.
    Rec(Record),
    /// A list of records.
    RecList(Record),
    /// A list whose elements the check does not know (a literal, or a comprehension's result).
    AnyList,
    /// Anything else (the result of a call the check does not type).
    Unknown,
}

use Ty::*;

const CLAIM: &[(&str, Ty)] = &[
    ("kind", Str),
    ("admitted", Int),
    ("discharged", Int),
    ("stay_days", Int),
    ("diagnosis", Str),
    ("diagnosis_known", Bool),
    ("diagnosis_sex", Str),
    ("diagnosis_min_age", Int),
    ("diagnosis_max_age", Int),
    ("department", Str),
    ("nonlocal", Bool),
    ("total_fen", Int),
    ("line_count", Int),
    ("bed_days_e4", Int),
    ("codes", Set),
];
const PERSON: &[(&str, Ty)] = &[("age", Int), ("sex", Str), ("insurance", Str)];
const INSTITUTION: &[(&str, Ty)] = &[("id", Str), ("level", Int)];
const DOCTOR: &[(&str, Ty)] = &[("code", Str), ("suspended", Bool), ("terminated", Bool), ("points", Int)];
const HISTORY: &[(&str, Ty)] = &[
    ("days_since_last_discharge", Int),
    ("visits_last_7_days", Int),
    ("visits_last_30_days", Int),
    ("same_day_visits_here", Int),
    ("overlapping_stays", Int),
    ("remote_overlapping_stays", Int),
    ("remote_same_day", Int),
    ("nonlocal_stays_90_days", Int),
];
const LINE: &[(&str, Ty)] = &[
    ("serial", Str),
    ("code", Str),
    ("kind", Str),
    ("class", Str),
    ("quantity_e4", Int),
    ("unit_price_fen", Int),
    ("amount_fen", Int),
    ("day", Int),
    ("price_ceiling_fen", Int),
    ("kb_known", Bool),
    ("kb_sex", Str),
    ("kb_min_age", Int),
    ("kb_max_age", Int),
    ("kb_indications", StrList),
    ("kb_max_per_day_e4", Int),
    ("kb_max_course_days", Int),
    ("kb_min_level", Int),
    ("kb_inpatient_only", Bool),
    ("kb_once_per_day", Bool),
    ("kb_part_of", StrList),
    ("kb_incompatible", StrList),
    ("day_quantity_e4", Int),
    ("same_code_same_day_lines", Int),
    ("same_day_index", Int),
    ("course_days", Int),
    ("billed_elsewhere", Int),
    ("incompatible_same_day", Bool),
    ("package_same_day", Bool),
];

/// The fields of a record, in the order the facts list them.
pub fn fields(r: Record) -> &'static [(&'static str, Ty)] {
    match r {
        Record::Claim => CLAIM,
        Record::Person => PERSON,
        Record::Institution => INSTITUTION,
        Record::Doctor => DOCTOR,
        Record::History => HISTORY,
        Record::Line => LINE,
    }
}

fn field(r: Record, name: &str) -> Option<Ty> {
    fields(r).iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

fn root(name: &str, target: Target) -> Option<Ty> {
    Some(match name {
        "claim" => Rec(Record::Claim),
        "person" => Rec(Record::Person),
        "institution" => Rec(Record::Institution),
        "doctor" => Rec(Record::Doctor),
        "history" => Rec(Record::History),
        "lines" => RecList(Record::Line),
        "line" if target == Target::Line => Rec(Record::Line),
        _ => return None,
    })
}

fn record_name(r: Record) -> &'static str {
    match r {
        Record::Claim => "claim",
        Record::Person => "person",
        Record::Institution => "institution",
        Record::Doctor => "doctor",
        Record::History => "history",
        Record::Line => "line",
    }
}

/// The line facts drawn from the person's other care (the rest of a line's facts are the claim's
/// own and the knowledge base's).
pub const PERSONAL_LINE_FIELDS: &[&str] = &["billed_elsewhere", "course_days"];

/// What a condition that passed the check reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reads {
    /// The person or the person's care: `person`, `history`, or a line's facts drawn from the
    /// person's other visits ([`PERSONAL_LINE_FIELDS`]). Only the insured province holds these,
    /// so a rule that reads none of them can also run where a visitor is treated.
    pub person: bool,
}

/// Checks a parsed condition for a rule of `target`, answering what it reads; the error says
/// what is wrong.
pub fn check(expr: &IdedExpr, target: Target) -> Result<Reads, String> {
    let line_loops = usize::from(target == Target::Line);
    let mut c = Checker { target, scope: Vec::new(), nodes: 0, depth: 0, line_loops, reads: Reads::default() };
    c.walk(expr)?;
    Ok(c.reads)
}

struct Checker {
    target: Target,
    scope: Vec<(String, Ty)>,
    nodes: usize,
    depth: usize,
    /// Enclosing iterations over the claim's lines (a line rule is one).
    line_loops: usize,
    /// What the condition reads, so far.
    reads: Reads,
}

impl Checker {
    fn walk(&mut self, e: &IdedExpr) -> Result<Ty, String> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(format!("is longer than {MAX_NODES} syntax nodes"));
        }
        match &e.expr {
            Expr::Unspecified => Err("has an empty expression".into()),
            Expr::Ident(name) => {
                if let Some((_, t)) = self.scope.iter().rev().find(|(n, _)| n == name) {
                    return Ok(*t);
                }
                if matches!(name.as_str(), "person" | "history") {
                    self.reads.person = true;
                }
                root(name, self.target).ok_or_else(|| {
                    if name == "line" {
                        "names `line`, which only a line rule (target line) sees".to_string()
                    } else {
                        format!("names `{name}`, which is not a fact (claim, person, institution, doctor, history, lines, line)")
                    }
                })
            }
            Expr::Select(s) => {
                let t = self.walk(&s.operand)?;
                // A field of the person's care, read from a line or from what may be one.
                if matches!(t, Rec(Record::Line) | Unknown) && PERSONAL_LINE_FIELDS.contains(&s.field.as_str()) {
                    self.reads.person = true;
                }
                let ft = match t {
                    Rec(r) => {
                        field(r, &s.field).ok_or_else(|| format!("`{}` has no field `{}`", record_name(r), s.field))?
                    }
                    Unknown => Unknown,
                    other => return Err(format!("selects `{}` from a {other:?}, which has no fields", s.field)),
                };
                Ok(if s.test { Bool } else { ft })
            }
            Expr::Literal(l) => match l {
                LiteralValue::Double(_) => {
                    Err("uses a floating-point number; money is in fen and quantities in ten-thousandths".into())
                }
                LiteralValue::Bytes(_) => Err("uses a bytes literal".into()),
                LiteralValue::Boolean(_) => Ok(Bool),
                LiteralValue::Int(_) | LiteralValue::UInt(_) => Ok(Int),
                LiteralValue::String(_) => Ok(Str),
                LiteralValue::Null => Ok(Unknown),
            },
            Expr::List(l) => {
                for el in &l.elements {
                    self.walk(el)?;
                }
                Ok(AnyList)
            }
            Expr::Map(_) | Expr::Struct(_) => Err("uses a map or message literal".into()),
            Expr::Call(c) => {
                if !FUNCTIONS.contains(&c.func_name.as_str()) {
                    return Err(format!("calls `{}`, which rules may not use", c.func_name));
                }
                let target = match &c.target {
                    Some(t) => Some(self.walk(t)?),
                    None => None,
                };
                let mut args = Vec::with_capacity(c.args.len());
                for a in &c.args {
                    args.push(self.walk(a)?);
                }
                if c.func_name == "_[_]" && matches!(args.first(), Some(Rec(_))) {
                    return Err("indexes a record; read its fields as `record.field`".into());
                }
                Ok(match c.func_name.as_str() {
                    "_+_" if args.iter().all(|t| *t == Str) => Str,
                    "_+_" if args.iter().any(|t| matches!(t, StrList | AnyList | RecList(_))) => AnyList,
                    "_+_" | "_-_" | "_*_" | "_/_" | "_%_" | "-_" | "size" | "int" => Int,
                    "string" => Str,
                    // Either branch: a type only when both agree.
                    "_?_:_" => match (args.get(1), args.get(2)) {
                        (Some(a), Some(b)) if a == b => *a,
                        _ => Unknown,
                    },
                    "_[_]" => match args.first().or(target.as_ref()) {
                        Some(StrList) => Str,
                        Some(RecList(r)) => Rec(*r),
                        Some(Set) => Bool,
                        _ => Unknown,
                    },
                    _ => Bool,
                })
            }
            Expr::Comprehension(c) => {
                if c.iter_var2.is_some() {
                    return Err("uses a two-variable comprehension".into());
                }
                let range = self.walk(&c.iter_range)?;
                let elem = match range {
                    StrList => Str,
                    RecList(r) => Rec(r),
                    AnyList => Unknown,
                    other => {
                        return Err(format!(
                        "ranges (all, exists, exists_one, map, filter) over a {other:?}; only lists may be ranged over"
                    ))
                    }
                };
                let over_lines = range == RecList(Record::Line);
                if over_lines && self.line_loops > 0 {
                    return Err("ranges over `lines` inside a line rule or inside another range over `lines`, \
                                which costs the square of the claim's lines; use the derived line facts \
                                (day_quantity_e4, same_code_same_day_lines, incompatible_same_day ...)"
                        .into());
                }
                self.depth += 1;
                if self.depth > MAX_NESTING {
                    return Err(format!("nests comprehensions more than {MAX_NESTING} deep"));
                }
                self.line_loops += usize::from(over_lines);
                let accu = self.walk(&c.accu_init)?;
                let base = self.scope.len();
                self.scope.push((c.accu_var.clone(), accu));
                self.scope.push((c.iter_var.clone(), elem));
                self.walk(&c.loop_cond)?;
                self.walk(&c.loop_step)?;
                self.scope.truncate(base + 1);
                let result = self.walk(&c.result);
                self.scope.truncate(base);
                self.depth -= 1;
                self.line_loops -= usize::from(over_lines);
                // A filter keeps the range's elements; other results are what the check infers.
                Ok(match (result?, range) {
                    (AnyList, RecList(r)) => RecList(r),
                    (AnyList, StrList) => StrList,
                    (t, _) => t,
                })
            }
        }
    }
}
