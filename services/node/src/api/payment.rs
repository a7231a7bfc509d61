//! Paying institutions (issue 12): the steps the hospital and agency services share, one
//! implementation each.

use medmesh_state::{Answer, Outcome, PaymentCommand, ProvinceCommand, Query};
use medmesh_types::InstitutionId;
use tonic::Status;

use super::{answer, outcome, unexpected};
use crate::convert;
use crate::mesh::Mesh;
use crate::pb;

/// Proposes a step that answers a declaration.
pub(crate) async fn declaration(mesh: &Mesh, cmd: PaymentCommand) -> Result<pb::Declaration, Status> {
    match outcome(mesh.app.propose(ProvinceCommand::Payment(cmd)).await?)? {
        Outcome::Declaration(d) => Ok(convert::declaration_pb(&d)),
        other => Err(unexpected(other)),
    }
}

/// Proposes a step that answers a prepayment.
pub(crate) async fn prepayment(mesh: &Mesh, cmd: PaymentCommand) -> Result<pb::Prepayment, Status> {
    match outcome(mesh.app.propose(ProvinceCommand::Payment(cmd)).await?)? {
        Outcome::Prepayment(p) => Ok(convert::prepayment_pb(&p)),
        other => Err(unexpected(other)),
    }
}

/// An institution's month.
pub(crate) async fn statement(mesh: &Mesh, institution_id: &str, period: &str) -> Result<pb::PaymentStatement, Status> {
    let institution = convert::institution("institution_id", institution_id)?;
    let period = convert::period("period", period)?;
    match answer(mesh.app.query(Query::PaymentStatement { institution, period }).await?)? {
        Answer::PaymentStatement(s) => Ok(convert::statement_pb(&s)),
        other => Err(unexpected(other)),
    }
}

/// A page of an institution's declarations and the token of the next.
pub(crate) async fn declarations(
    mesh: &Mesh,
    institution_id: &str,
    page_token: &str,
    page_size: u32,
) -> Result<(Vec<pb::Declaration>, String), Status> {
    let institution = convert::institution("institution_id", institution_id)?;
    let after = if page_token.is_empty() {
        None
    } else {
        Some(
            medmesh_payment::Period::parse(page_token)
                .ok_or_else(|| Status::invalid_argument("page_token: is not a token this list gave"))?,
        )
    };
    let limit = convert::page_size(page_size);
    match answer(mesh.app.query(Query::Declarations { institution, after, limit }).await?)? {
        Answer::Declarations(list) => {
            let next = if list.len() == limit { list.last().map(|d| d.period.to_string()) } else { None };
            Ok((list.iter().map(convert::declaration_pb).collect(), next.unwrap_or_default()))
        }
        other => Err(unexpected(other)),
    }
}

/// An institution's prepayments: every one, what remains on them, why payments are stopped.
pub(crate) async fn prepayments(
    mesh: &Mesh,
    institution_id: &str,
) -> Result<(Vec<pb::Prepayment>, String, String), Status> {
    let institution: InstitutionId = convert::institution("institution_id", institution_id)?;
    match answer(mesh.app.query(Query::Prepayments { institution, limit: medmesh_state::MAX_ROWS }).await?)? {
        Answer::Prepayments(account, list) => Ok((
            list.iter().map(convert::prepayment_pb).collect(),
            account.outstanding.to_string(),
            account.stopped.unwrap_or_default(),
        )),
        other => Err(unexpected(other)),
    }
}

/// Proposes a step that answers a budget.
pub(crate) async fn budget_step(mesh: &Mesh, cmd: PaymentCommand) -> Result<pb::Budget, Status> {
    match outcome(mesh.app.propose(ProvinceCommand::Payment(cmd)).await?)? {
        Outcome::Budget(b) => Ok(convert::budget_pb(&b)),
        other => Err(unexpected(other)),
    }
}

/// An institution's budget of a year.
pub(crate) async fn budget(mesh: &Mesh, institution_id: &str, year: i32) -> Result<pb::Budget, Status> {
    let institution = convert::institution("institution_id", institution_id)?;
    match answer(mesh.app.query(Query::Budget { institution, year }).await?)? {
        Answer::Budget(b) => Ok(convert::budget_pb(&b)),
        other => Err(unexpected(other)),
    }
}
