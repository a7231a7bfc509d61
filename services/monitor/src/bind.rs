//! A condition's field reads, bound to one name each.
//!
//! CEL resolves `claim.total_fen` as a qualified name on every evaluation: it splits the
//! selection into segments, joins them into a string and tries the longest name, then shorter
//! ones, in each scope, before selecting the field on the record (`Context::resolve_qualified`
//! in the `cel` crate). That was a third of a rule's evaluation. [`bind`] rewrites each read of
//! a record's field into one identifier, `claim.total_fen`, which the evaluation resolves in one
//! lookup to the field's value (see `val::Names`), with no allocation.
//!
//! Only reads of the records a condition is given are rewritten; a name a comprehension binds
//! (`lines.exists(claim, claim.code == "X")`) shadows a record of that name, and its reads are
//! left for CEL to resolve. `has(claim.x)` is left as it is too.

use cel::common::ast::{EntryExpr, Expr};
use cel::IdedExpr;

/// The records a condition reads by field.
const RECORDS: [&str; 6] = ["claim", "person", "institution", "doctor", "history", "line"];

/// The condition with every read of a record's field as one identifier.
pub(crate) fn bind(expr: &IdedExpr) -> IdedExpr {
    let mut e = expr.clone();
    rewrite(&mut e, &mut Vec::new());
    e
}

fn rewrite(e: &mut IdedExpr, shadowed: &mut Vec<String>) {
    match &mut e.expr {
        Expr::Select(s) => {
            if !s.test {
                if let Expr::Ident(root) = &s.operand.expr {
                    if RECORDS.contains(&root.as_str()) && !shadowed.iter().any(|v| v == root) {
                        let name = format!("{root}.{}", s.field);
                        e.expr = Expr::Ident(name);
                        return;
                    }
                }
            }
            rewrite(&mut s.operand, shadowed);
        }
        Expr::Call(c) => {
            if let Some(t) = c.target.as_deref_mut() {
                rewrite(t, shadowed);
            }
            for a in &mut c.args {
                rewrite(a, shadowed);
            }
        }
        Expr::Comprehension(c) => {
            rewrite(&mut c.iter_range, shadowed);
            rewrite(&mut c.accu_init, shadowed);
            let outer = shadowed.len();
            shadowed.push(c.iter_var.clone());
            shadowed.extend(c.iter_var2.clone());
            shadowed.push(c.accu_var.clone());
            rewrite(&mut c.loop_cond, shadowed);
            rewrite(&mut c.loop_step, shadowed);
            rewrite(&mut c.result, shadowed);
            shadowed.truncate(outer);
        }
        Expr::List(l) => {
            for el in &mut l.elements {
                rewrite(el, shadowed);
            }
        }
        Expr::Map(m) => {
            for entry in &mut m.entries {
                entry_rewrite(&mut entry.expr, shadowed);
            }
        }
        Expr::Struct(s) => {
            for entry in &mut s.entries {
                entry_rewrite(&mut entry.expr, shadowed);
            }
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn entry_rewrite(e: &mut EntryExpr, shadowed: &mut Vec<String>) {
    match e {
        EntryExpr::StructField(f) => rewrite(&mut f.value, shadowed),
        EntryExpr::MapEntry(m) => {
            rewrite(&mut m.key, shadowed);
            rewrite(&mut m.value, shadowed);
        }
    }
}
