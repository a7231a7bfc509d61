//! gRPC services: hospital, agency, Raft transport and admin.

pub mod admin;
pub mod agency;
pub mod federation;
pub mod hospital;
pub mod raft;

use medmesh_state::{Answer, CommandResult, DomainError, Outcome};
use tonic::Status;

use crate::convert::status;

/// Unwraps a command result into its outcome, or the gRPC status naming the field.
pub(crate) fn outcome(r: CommandResult) -> Result<Outcome, Status> {
    r.map_err(status)
}

/// Unwraps a query answer.
pub(crate) fn answer(r: Result<Answer, DomainError>) -> Result<Answer, Status> {
    r.map_err(status)
}

/// An outcome of the wrong kind: a bug, reported without panicking.
pub(crate) fn unexpected<T: std::fmt::Debug>(what: T) -> Status {
    Status::internal(format!("unexpected result kind: {what:?}"))
}
