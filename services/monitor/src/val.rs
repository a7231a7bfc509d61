//! Facts as CEL values, converted once and then lent.
//!
//! Binding a record through [`cel::Value`] converts it into a new hash map, and every range
//! over `lines` clones each line; with a claim's dozen records and a rule per line that
//! conversion was most of evaluation. A [`Rec`] is shared (`Arc`), clones for the price of a
//! reference count, and converts a field the first time a condition reads it; later reads, by
//! any rule on the claim, borrow that value.
//!
//! [`Names`] resolves the one name a field read is bound to when its rule is compiled
//! (`claim.total_fen`, `line.code`; see `bind`) to the field's value in one lookup.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use cel::common::traits::Indexer;
use cel::common::types::{CelBool, CelInt, CelList, CelString, Type};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{ExecutionError, Value};

use crate::facts::Fact;

static RECORD_TYPE: Type = Type::new_struct_type("medmesh.monitor.Facts");

/// A field: its name, its fact, and its value once converted.
type Field = (&'static str, Fact, OnceLock<Box<dyn Val>>);

/// A record's fields.
#[derive(Debug)]
pub(crate) struct Fields(Vec<Field>);

/// A record of facts.
#[derive(Debug, Clone)]
pub(crate) struct Rec(Arc<Fields>);

impl Rec {
    pub(crate) fn new(fields: impl IntoIterator<Item = (&'static str, Fact)>) -> Rec {
        Rec(Arc::new(Fields(fields.into_iter().map(|(k, v)| (k, v, OnceLock::new())).collect())))
    }

    /// The field's value, converted on the first read. A record has a few dozen fields whose
    /// names differ mostly in length, so a scan comparing lengths first beats a search that
    /// compares whole names.
    fn field(&self, name: &str) -> Option<&(dyn Val + 'static)> {
        let (_, fact, cell) = self.0 .0.iter().find(|(k, _, _)| k.len() == name.len() && *k == name)?;
        Some(cell.get_or_init(|| value(fact)).as_ref())
    }
}

impl Val for Rec {
    fn get_type(&self) -> &Type {
        &RECORD_TYPE
    }

    fn cel_type() -> &'static Type {
        &RECORD_TYPE
    }

    fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(self.clone())
    }
}

impl Indexer for Rec {
    fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        let name = idx.downcast_ref::<CelString>().map(|s| s.inner()).unwrap_or_default();
        match self.field(name) {
            Some(v) => Ok(CowVal::Borrowed(v)),
            None => Err(ExecutionError::no_such_key(name)),
        }
    }

    fn steal<'v>(self: Box<Self>, idx: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        self.get(idx).map(CowVal::into_owned)
    }
}

/// One fact as a CEL value.
fn value(f: &Fact) -> Box<dyn Val> {
    match f {
        Fact::Int(v) => Box::new(CelInt::from(*v)),
        Fact::Str(v) => Box::new(CelString::from(v.clone())),
        Fact::Bool(v) => Box::new(CelBool::from(*v)),
        Fact::StrList(v) => {
            let items: Vec<Box<dyn Val>> =
                v.iter().map(|s| Box::new(CelString::from(s.clone())) as Box<dyn Val>).collect();
            Box::new(CelList::from(items))
        }
        Fact::Set(v) => {
            let m: HashMap<String, bool> = v.iter().map(|s| (s.clone(), true)).collect();
            let converted: Result<Box<dyn Val>, ExecutionError> = Value::from(m).try_into();
            converted.unwrap_or_else(|_| Box::new(CelBool::from(false)))
        }
    }
}

/// A list of records.
pub(crate) fn list<'v>(records: &[Rec]) -> Box<dyn Val + 'v> {
    Box::new(CelList::from(records.iter().map(|r| Box::new(r.clone()) as Box<dyn Val>).collect::<Vec<_>>()))
}

/// The records of a claim or of a line, resolving `record.field` to the field's value.
pub(crate) enum Names {
    /// `claim`, `person`, `institution`, `doctor` and `history`.
    Claim([Rec; 5]),
    /// `line`.
    Line(Rec),
}

impl VariableResolver for Names {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let (record, field) = variable.split_once('.')?;
        let rec = match (self, record) {
            (Names::Claim(r), "claim") => &r[0],
            (Names::Claim(r), "person") => &r[1],
            (Names::Claim(r), "institution") => &r[2],
            (Names::Claim(r), "doctor") => &r[3],
            (Names::Claim(r), "history") => &r[4],
            (Names::Line(r), "line") => r,
            _ => return None,
        };
        rec.field(field).map(CowVal::Borrowed)
    }
}
