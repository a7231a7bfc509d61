//! The one error type of the state machine, carried in Raft responses and mapped to a gRPC
//! status at the edge.

use serde::{Deserialize, Serialize};

/// The kind of a domain error; the node maps each to the gRPC code of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The request is malformed: a field is missing, out of range or badly formatted.
    InvalidArgument,
    /// A referenced record does not exist.
    NotFound,
    /// The request is well-formed but the state does not allow it (inactive insurance,
    /// expired agreement, suspended personnel, already reversed, ...).
    FailedPrecondition,
    /// A serial was already used with different content, or a record already exists.
    AlreadyExists,
    /// A size limit was exceeded.
    ResourceExhausted,
}

/// A rejected command or query: the field at fault and why. Nothing of the command was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct DomainError {
    /// The kind of error.
    pub code: ErrorCode,
    /// The request field at fault, as a path (`lines[2].quantity`).
    pub field: String,
    /// Why, in lowercase words.
    pub message: String,
}

impl DomainError {
    fn new(code: ErrorCode, field: impl Into<String>, message: impl Into<String>) -> DomainError {
        DomainError { code, field: field.into(), message: message.into() }
    }

    /// A malformed field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> DomainError {
        DomainError::new(ErrorCode::InvalidArgument, field, message)
    }

    /// A referenced record that does not exist.
    pub fn not_found(field: impl Into<String>, message: impl Into<String>) -> DomainError {
        DomainError::new(ErrorCode::NotFound, field, message)
    }

    /// A state that forbids the request.
    pub fn precondition(field: impl Into<String>, message: impl Into<String>) -> DomainError {
        DomainError::new(ErrorCode::FailedPrecondition, field, message)
    }

    /// A serial reused with different content.
    pub fn exists(field: impl Into<String>, message: impl Into<String>) -> DomainError {
        DomainError::new(ErrorCode::AlreadyExists, field, message)
    }

    /// A size limit.
    pub fn too_large(field: impl Into<String>, message: impl Into<String>) -> DomainError {
        DomainError::new(ErrorCode::ResourceExhausted, field, message)
    }

    /// The same error about a field of `path` (`items[2]` and `summary` make
    /// `items[2].summary`).
    pub fn within(self, path: &str) -> DomainError {
        DomainError { field: format!("{path}.{}", self.field), ..self }
    }
}

/// The one mapping of a settlement error to a domain error; `prefix` is the path of the lines
/// in the request at hand (`""` for a hospital's visit, `"claim."` for a claim another
/// province sent).
pub(crate) fn settle_error(prefix: &str, e: medmesh_settlement::SettleError) -> DomainError {
    use medmesh_settlement::SettleError as E;
    match e {
        E::UnknownItem { index, code } => {
            DomainError::not_found(format!("{prefix}lines[{index}].code"), format!("{code} has no catalogue entry"))
        }
        E::BadQuantity { index } => DomainError::invalid(
            format!("{prefix}lines[{index}].quantity"),
            "must be positive, at most 100000, with at most 4 decimals",
        ),
        E::DuplicateLine { index, serial } => {
            DomainError::invalid(format!("{prefix}lines[{index}].serial"), format!("{serial} appears twice"))
        }
        E::NoLines => DomainError::precondition(format!("{prefix}lines"), "no fee lines were uploaded"),
        E::LineTooLarge { index } => DomainError::invalid(
            format!("{prefix}lines[{index}].unit_price"),
            format!("quantity × unit price must be at most {} yuan", medmesh_settlement::max_line_amount()),
        ),
        E::ClaimTooLarge => DomainError::invalid(
            format!("{prefix}lines"),
            format!("the lines add up to more than {} yuan", medmesh_settlement::max_claim_total()),
        ),
        E::NoRatio { insurance, level } => DomainError::precondition(
            "policy",
            format!("the policy has no ratio for {insurance:?} insurance at institution level {level}"),
        ),
    }
}

/// A supervision rule's refusal (cases, reports, flight inspections) as the store's error: a bad
/// field is INVALID_ARGUMENT, a step the record's state forbids FAILED_PRECONDITION.
pub(crate) fn case_error(e: medmesh_supervision::cases::CaseError) -> DomainError {
    use medmesh_supervision::cases::CaseError;
    match e {
        CaseError::Invalid { field, message } => DomainError::invalid(field, message),
        CaseError::State { field, message } => DomainError::precondition(field, message),
    }
}
