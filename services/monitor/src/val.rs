//! Facts as CEL values that are read on access.
//!
//! Binding a record through [`cel::Value`] converts it into a new hash map, and every range
//! over `lines` clones each line; with a claim's dozen records and a rule per line that
//! conversion was most of evaluation. A [`Rec`] is shared (`Arc`), clones for the price of a
//! reference count, and converts only the field a condition reads.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use cel::common::traits::Indexer;
use cel::common::types::{CelBool, CelInt, CelList, CelString, Type};
use cel::common::value::{CowVal, Val};
use cel::{ExecutionError, Value};

use crate::facts::Fact;

static RECORD_TYPE: Type = Type::new_struct_type("medmesh.monitor.Facts");

/// A record of facts.
#[derive(Debug, Clone)]
pub(crate) struct Rec(pub(crate) Arc<BTreeMap<&'static str, Fact>>);

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
        let name = idx.downcast_ref::<CelString>().map(|s| s.inner().to_string()).unwrap_or_default();
        match self.0.get(name.as_str()) {
            Some(f) => Ok(CowVal::Owned(value(f))),
            None => Err(ExecutionError::no_such_key(&name)),
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
fn value<'v>(f: &Fact) -> Box<dyn Val + 'v> {
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
