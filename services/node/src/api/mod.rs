//! gRPC services: hospital, agency, federation and the mesh between groups (public
//! listener); Raft transport and admin (internal listener).

pub mod admin;
pub mod agency;
pub mod disclosure;
pub mod federation;
pub mod hospital;
pub mod mesh;
mod payment;
pub mod raft;
pub mod reports;

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

/// An outcome of the wrong kind: a bug, reported without panicking. Only the variant's name
/// is reported: an outcome or command may hold a certificate number, which must never reach a
/// status or a log.
pub(crate) fn unexpected<T: std::fmt::Debug>(what: T) -> Status {
    Status::internal(format!("unexpected result kind: {}", variant_name(&what)))
}

/// The name of an enum value's variant (its `Debug` text up to the first non-identifier
/// character), without any of its content.
pub(crate) fn variant_name<T: std::fmt::Debug>(what: &T) -> String {
    let text = format!("{what:?}");
    let text = text.trim_start_matches(['&', '"']);
    text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 9): an unexpected outcome never carries a certificate into a status.
    #[test]
    fn unexpected_outcomes_name_only_their_kind() {
        let cmd = medmesh_state::ProvinceCommand::RegisterVisit {
            institution: medmesh_types::InstitutionId::new("H001").unwrap(),
            serial: medmesh_types::Serial::new("V1").unwrap(),
            certificate_kind: medmesh_state::CertificateKind::IdCard,
            certificate: medmesh_types::KeyedHash::new("ab".repeat(32)).unwrap(),
            kind: medmesh_state::VisitKind::Outpatient,
            doctor: medmesh_types::PersonnelCode::new("D001").unwrap(),
            department: "x".into(),
            diagnosis: "J06.9".into(),
            admitted: medmesh_types::Date::parse("2025-03-01").unwrap(),
        };
        let s = unexpected(&cmd);
        assert_eq!(s.message(), "unexpected result kind: RegisterVisit");
        assert!(!s.message().contains("abab"));
        assert_eq!(unexpected("positions").message(), "unexpected result kind: positions");
    }
}
