//! What another group may ask of a group: the commands and queries a replica of province
//! `from` may send to a group it is not part of, and only for what that province is part of.
//!
//! The edge (the Raft service) calls these for every proposal and query whose caller's
//! certificate names a replica of another group; a replica of the group itself forwards any
//! client request to its leader.
//!
//! | sent to | command | only when |
//! |---|---|---|
//! | insured province | `Reserve`, `ResolveReservation`, `UnpostReservation` | the transfer's treatment province is `from` |
//! | federation | `FedDecide` | `from` is the transfer's treatment or insured province (a commit carries the amount the insured province vouched for, checked in apply) |
//! | federation | `FedVouch` | `from` is the insured province |
//! | federation | `FedAnchor` | the chain is `from`'s own |
//! | federation | `FedReverse` | `from` is the transfer's treatment province |
//! | federation | `FedRegisterProvince` | the entry is `from`'s own |
//! | federation | `FedDirectory` | every entry names `from` as insured province |
//! | federation | `FedFile` | the filing's insured province is `from` |
//! | federation | `FedRecordDiscipline`, `FedRecordViolation`, `FedRecordCaseOutcome`, `FedRecordCreditLift`, `FedRecordDisciplineLift` | recorded by `from` |
//! | federation | `FedTopUp` | the account is `from`'s own |
//! | federation | `FedSendReport` | the message is from `from` |
//! | federation | `FedRecordCommitment`, `FedRecordIncentive`, `FedRecordDeclarationReview` | recorded by `from` |
//! | federation | `FedConfirmClearing` | the line's treatment province is `from` |
//! | federation | `FedDisputeClearing` | the line's treatment province is `from` |
//!
//! `FedRunClearing`, `FedSettleClearing`, `FedResolveDispute` and `FedPutRule` never come from
//! a province: the national administration calls the federation's replicas itself.
//!
//! Queries: a province may ask another province `RemotePerson` and `RemoteQuote` (the
//! treatment side of non-local care), and the federation `Directory`, `ProvinceEndpoints`,
//! `Provinces`, `Decision`, `SharedLog`, the aggregate `Positions`, `Prepaid` and `Clearing`
//! (forwarded for its agency or the nation, which the province checked), `Filings` (the
//! treatment side finding a visitor's filing, the insured side checking a claimed one), and
//! `ReportInbox` of `from` itself.

use medmesh_types::ProvinceCode;

use crate::command::Command;
use crate::federation::FederationCommand;
use crate::model::ProvinceCommand;
use crate::query::Query;

/// Checks that a replica of province `from` may propose `cmd` to another group.
pub fn foreign_command(cmd: &Command, from: &ProvinceCode) -> Result<(), String> {
    let ok = match cmd {
        Command::Province(c) => match c {
            ProvinceCommand::Reserve { transfer, .. }
            | ProvinceCommand::ResolveReservation { transfer, .. }
            | ProvinceCommand::UnpostReservation { transfer } => &transfer.treatment == from,
            _ => false,
        },
        Command::Federation(c) => federation(c, from),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("a replica of province {from} may not send {} here", cmd.kind()))
    }
}

/// Which federation commands a replica of province `from` may propose.
fn federation(cmd: &FederationCommand, from: &ProvinceCode) -> bool {
    match cmd {
        FederationCommand::Decide { transfer, insured, .. } => &transfer.treatment == from || insured == from,
        FederationCommand::Reverse { transfer, .. } => &transfer.treatment == from,
        FederationCommand::RegisterProvince(entry) => &entry.province == from,
        FederationCommand::Directory { entries } => entries.iter().all(|(_, p)| p == from),
        FederationCommand::File(filing) => &filing.insured == from,
        FederationCommand::RecordDiscipline(entry) => &entry.province == from,
        FederationCommand::RecordViolation(v) => &v.province == from,
        FederationCommand::RecordCaseOutcome(o) => &o.province == from,
        FederationCommand::RecordCreditLift(l) => &l.province == from,
        FederationCommand::RecordDisciplineLift(l) => &l.province == from,
        FederationCommand::RecordAggregate { province, .. } => province == from,
        FederationCommand::SendReport(m) => &m.from == from,
        FederationCommand::RecordCommitment(c) => &c.province == from,
        FederationCommand::RecordIncentive(i) => &i.province == from,
        FederationCommand::RecordDeclarationReview(r) => &r.province == from,
        FederationCommand::TopUp { province, .. } => province == from,
        FederationCommand::Vouch { insured, .. } => insured == from,
        FederationCommand::Anchor { province, .. } => province == from,
        FederationCommand::ConfirmClearing { treatment, .. } => treatment == from,
        FederationCommand::DisputeClearing { transfer, .. } => &transfer.treatment == from,
        FederationCommand::RunClearing { .. }
        | FederationCommand::SettleClearing { .. }
        | FederationCommand::ResolveDispute { .. }
        | FederationCommand::PutRule(_) => false,
    }
}

/// Checks that a replica of province `from` may run `q` on another group.
pub fn foreign_query(q: &Query, from: &ProvinceCode) -> Result<(), String> {
    let ok = match q {
        // A province reads its own report inbox only.
        Query::ReportInbox { province, .. } => province == from,
        // A quote of a claim treated in `from`.
        Query::RemoteQuote { transfer, .. } => &transfer.treatment == from,
        Query::RemotePerson { .. }
        // Rules are no personal data: a province replica reads the national rules for its agency.
        | Query::Rules
        | Query::Directory { .. }
        | Query::ProvinceEndpoints { .. }
        | Query::Provinces
        | Query::Decision { .. }
        | Query::SharedLog { .. }
        | Query::Positions
        | Query::Prepaid
        | Query::Clearing { .. }
        | Query::FedRecords { .. }
        // Aggregates are totals without personal data; the edge decides who sees which.
        | Query::NationalAggregates { .. }
        | Query::Anchors { .. } => true,
        // The treatment province looks up a visitor's filing; the insured province checks the
        // filing a treatment province claims (only a holder of the directory secret and the
        // certificate can name the key).
        Query::Filings { .. } => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("a replica of province {from} may not ask {} here", q.kind()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::{ProvinceEntry, TransferId};
    use medmesh_types::{InstitutionId, Serial};

    fn p(code: &str) -> ProvinceCode {
        ProvinceCode::new(code.to_string()).unwrap()
    }

    fn transfer(treatment: &str) -> TransferId {
        TransferId {
            treatment: p(treatment),
            institution: InstitutionId::new("H1".to_string()).unwrap(),
            serial: Serial::new("S1".to_string()).unwrap(),
        }
    }

    #[test]
    fn only_the_treatment_province_drives_a_reservation() {
        let cmd = ProvinceCommand::UnpostReservation { transfer: transfer("110000") };
        assert!(foreign_command(&Command::from(cmd.clone()), &p("110000")).is_ok());
        let err = foreign_command(&Command::from(cmd.clone()), &p("440000")).unwrap_err();
        assert!(err.contains("440000"), "{err}");
    }

    #[test]
    fn a_province_registers_only_its_own_endpoints() {
        let cmd = FederationCommand::RegisterProvince(ProvinceEntry { province: p("310000"), endpoints: vec![] });
        assert!(foreign_command(&Command::from(cmd.clone()), &p("310000")).is_ok());
        assert!(foreign_command(&Command::from(cmd.clone()), &p("110000")).is_err());
        let dir = FederationCommand::Directory { entries: vec![("k".into(), p("310000")), ("j".into(), p("110000"))] };
        assert!(
            foreign_command(&Command::from(dir.clone()), &p("310000")).is_err(),
            "one foreign entry spoils the batch"
        );
    }

    #[test]
    fn clearing_and_local_writes_never_come_from_another_group() {
        assert!(foreign_command(
            &Command::from(FederationCommand::RunClearing { month: "2026-11".into() }),
            &p("110000")
        )
        .is_err());
        assert!(foreign_command(
            &Command::from(FederationCommand::SettleClearing { month: "2026-11".into() }),
            &p("110000")
        )
        .is_err());
        // A dispute comes only from the line's treatment province; a decision never from one.
        let transfer = crate::TransferId {
            treatment: p("110000"),
            institution: medmesh_types::InstitutionId::new("H001").unwrap(),
            serial: medmesh_types::Serial::new("S1").unwrap(),
        };
        let dispute = Command::from(FederationCommand::DisputeClearing {
            month: "2026-11".into(),
            transfer: transfer.clone(),
            claimed: medmesh_types::Money::ZERO,
            reason: "r".into(),
        });
        assert!(foreign_command(&dispute, &p("110000")).is_ok());
        assert!(foreign_command(&dispute, &p("310000")).is_err());
        let resolve =
            FederationCommand::ResolveDispute { month: "2026-11".into(), transfer, uphold: true, note: String::new() };
        assert!(foreign_command(&Command::from(resolve), &p("110000")).is_err());
        assert!(foreign_command(&Command::from(ProvinceCommand::SyncShared { items: vec![] }), &p("110000")).is_err());
        assert!(foreign_query(&Query::Fund, &p("110000")).is_err());
        assert!(foreign_query(&Query::Positions, &p("110000")).is_ok());
        assert!(foreign_query(&Query::Filings { person_key: "k".into(), treatment: p("310000") }, &p("110000")).is_ok());
    }
}
