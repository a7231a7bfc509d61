//! Read-only queries over committed state.

use medmesh_settlement::{Accumulators, Split};
use medmesh_types::{Date, InstitutionId, LogTime, Money, Serial};
use serde::{Deserialize, Serialize};

use crate::apply::{quote, resolve_person};
use crate::kv::{decode, keys, load, KvRead};
use crate::model::*;
use crate::DomainError;

/// Most settlements one statement query returns.
pub const MAX_STATEMENT: usize = 10_000;
/// Longest statement period in days.
pub const MAX_STATEMENT_DAYS: i32 = 366;

/// A read-only question to the province.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    /// Identity and entitlement of the holder of a certificate.
    Identity {
        /// The asking institution: only an institution with an agreement in force may look up
        /// a person.
        institution: InstitutionId,
        /// Certificate kind.
        kind: CertificateKind,
        /// Certificate number.
        number: String,
        /// Evaluated at this time (accumulator year).
        now: LogTime,
    },
    /// A quote for an open visit: nothing moves, nothing accumulates.
    PreSettle {
        /// Institution.
        institution: InstitutionId,
        /// Visit serial.
        visit: Serial,
        /// Pay the person's share from the individual account.
        use_individual_account: bool,
        /// Quote at this time.
        now: LogTime,
    },
    /// One settlement (the expense document).
    Settlement {
        /// Institution.
        institution: InstitutionId,
        /// Settlement serial.
        serial: Serial,
    },
    /// An institution's settlements settled in `[from, to]`.
    Statement {
        /// Institution.
        institution: InstitutionId,
        /// First day.
        from: Date,
        /// Last day.
        to: Date,
    },
    /// The fund ledger and what the fund owes institutions.
    Fund,
    /// Payment qualification of personnel from their recorded violations.
    Qualification {
        /// National personnel code.
        code: medmesh_types::PersonnelCode,
        /// Evaluated at this time.
        now: LogTime,
    },
}

impl Query {
    /// The query's name, for logs and traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Query::Identity { .. } => "identity",
            Query::PreSettle { .. } => "pre_settle",
            Query::Settlement { .. } => "settlement",
            Query::Statement { .. } => "statement",
            Query::Fund => "fund",
            Query::Qualification { .. } => "qualification",
        }
    }
}

/// The entitlement view of a person (no raw identity number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityView {
    /// The person; `Display` masks the number.
    pub person: Person,
    /// This year's accumulators.
    pub accumulators: Accumulators,
    /// The accumulator year.
    pub year: i32,
}

/// The fund view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundView {
    /// The ledger.
    pub ledger: FundLedger,
    /// Sum of what the fund owes institutions.
    pub payables: Money,
}

/// An answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)] // one per query
pub enum Answer {
    /// Identity and entitlement.
    Identity(IdentityView),
    /// A quote.
    Quote(Split),
    /// A settlement.
    Settlement(Settlement),
    /// A statement.
    Statement(Vec<Settlement>),
    /// The fund.
    Fund(FundView),
    /// A qualification.
    Qualification(medmesh_supervision::QualificationView),
}

/// Answers a query.
pub fn run_query(kv: &dyn KvRead, q: &Query) -> Result<Answer, DomainError> {
    match q {
        Query::Identity { institution, kind, number, now } => {
            crate::apply::active_institution(kv, institution, now.date())?;
            let person = match resolve_person(kv, *kind, number) {
                Ok(p) => p,
                Err(e) if e.code == crate::ErrorCode::FailedPrecondition => {
                    // Entitlement lookups still show an inactive person, with the status.
                    let id = match kind {
                        CertificateKind::IdCard => number.clone(),
                        _ => load::<String>(kv, &keys::cert(kind.key(), number)).unwrap_or_default(),
                    };
                    let id = medmesh_types::PersonId::new(id)
                        .map_err(|e| DomainError::invalid("certificate", e.to_string()))?;
                    load(kv, &keys::person(&id)).ok_or(e)?
                }
                Err(e) => return Err(e),
            };
            let year = now.date().year();
            let accumulators = load(kv, &keys::accumulators(&person.id, year)).unwrap_or_default();
            Ok(Answer::Identity(IdentityView { person, accumulators, year }))
        }
        Query::PreSettle { institution, visit, use_individual_account, now } => {
            let (_, _, split) = quote(kv, institution, visit, *use_individual_account, *now)?;
            Ok(Answer::Quote(split))
        }
        Query::Settlement { institution, serial } => {
            load(kv, &keys::settlement(institution, serial)).map(Answer::Settlement).ok_or_else(|| {
                DomainError::not_found(
                    "serial",
                    format!("settlement {serial} of institution {institution} does not exist"),
                )
            })
        }
        Query::Statement { institution, from, to } => {
            if to < from {
                return Err(DomainError::invalid("to", "is before from"));
            }
            if to.days() - from.days() > MAX_STATEMENT_DAYS {
                return Err(DomainError::invalid(
                    "to",
                    format!("a statement covers at most {MAX_STATEMENT_DAYS} days"),
                ));
            }
            let start = keys::statement_day(institution, *from);
            let end = keys::statement_day(institution, to.plus_days(1));
            let rows = kv.scan(start.as_bytes(), end.as_bytes(), MAX_STATEMENT + 1);
            if rows.len() > MAX_STATEMENT {
                return Err(DomainError::too_large(
                    "to",
                    format!("more than {MAX_STATEMENT} settlements; ask for a shorter period"),
                ));
            }
            let mut out = Vec::with_capacity(rows.len());
            for (k, _) in rows {
                let k = String::from_utf8_lossy(&k).to_string();
                let serial = k.rsplit('/').next().unwrap_or_default().to_string();
                let serial = Serial::new(serial).map_err(|e| DomainError::invalid("serial", e.to_string()))?;
                if let Some(s) = load::<Settlement>(kv, &keys::settlement(institution, &serial)) {
                    out.push(s);
                }
            }
            Ok(Answer::Statement(out))
        }
        Query::Qualification { code, now } => {
            Ok(Answer::Qualification(crate::apply::qualification(kv, code, now.date())?))
        }
        Query::Fund => {
            let ledger: FundLedger = load(kv, keys::FUND).unwrap_or_default();
            let payables = kv
                .scan(b"payable/", b"payable0", usize::MAX)
                .into_iter()
                .map(|(_, v)| decode::<Payable>(&v).amount)
                .sum();
            Ok(Answer::Fund(FundView { ledger, payables }))
        }
    }
}
