//! Who is calling: the identity a client certificate carries in a URI subject alternative
//! name.
//!
//! | URI | identity |
//! |---|---|
//! | `medmesh://province/{p}/institution/{id}` | [`Identity::Institution`]: a hospital or pharmacy of province `p` |
//! | `medmesh://agency/{p}` | [`Identity::Agency`]: the medical security agency of province `p` |
//! | `medmesh://national` | [`Identity::National`]: the national administration |
//! | `medmesh://replica/{g}/{n}` | [`Identity::Replica`]: replica `n` of group `g` (`000000` is the federation) |
//! | `medmesh://operator/{g}` | [`Identity::Operator`]: the operator of group `g`'s replicas |
//!
//! A certificate with no such URI, or with two, identifies nobody. The certificate chain,
//! validity period and signature are checked by rustls before a request reaches here; this
//! module only reads the name.

use std::fmt;

use medmesh_types::{InstitutionId, ProvinceCode};

/// Scheme of identity URIs.
pub const SCHEME: &str = "medmesh://";

/// A caller's identity, from its certificate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Identity {
    /// A designated medical institution of a province.
    Institution {
        /// Its province.
        province: ProvinceCode,
        /// Its code.
        institution: InstitutionId,
    },
    /// A province's medical security agency.
    Agency {
        /// The province.
        province: ProvinceCode,
    },
    /// The national administration.
    National,
    /// A replica of a Raft group.
    Replica {
        /// The group (a province code; `000000` is the federation).
        group: ProvinceCode,
        /// Raft node id.
        id: u64,
    },
    /// The operator of a group's replicas (membership, status).
    Operator {
        /// The group.
        group: ProvinceCode,
    },
    /// A province's designated report officer: the one role that reads a reporter's sealed
    /// identity (issue 13.2).
    ReportOfficer {
        /// The province.
        province: ProvinceCode,
    },
}

impl Identity {
    /// Parses an identity URI.
    pub fn parse(uri: &str) -> Result<Identity, String> {
        let rest = uri.strip_prefix(SCHEME).ok_or_else(|| format!("identity {uri:?}: not a {SCHEME} URI"))?;
        let parts: Vec<&str> = rest.split('/').collect();
        let province = |s: &str| ProvinceCode::new(s.to_string()).map_err(|e| format!("identity {uri:?}: {e}"));
        match parts.as_slice() {
            ["province", p, "institution", id] => Ok(Identity::Institution {
                province: province(p)?,
                institution: InstitutionId::new(id.to_string()).map_err(|e| format!("identity {uri:?}: {e}"))?,
            }),
            ["agency", p] => Ok(Identity::Agency { province: province(p)? }),
            ["national"] => Ok(Identity::National),
            ["replica", g, n] => match n.parse::<u64>() {
                Ok(id) if id > 0 => Ok(Identity::Replica { group: province(g)?, id }),
                _ => Err(format!("identity {uri:?}: replica id must be a positive integer")),
            },
            ["operator", g] => Ok(Identity::Operator { group: province(g)? }),
            ["report-officer", p] => Ok(Identity::ReportOfficer { province: province(p)? }),
            _ => Err(format!("identity {uri:?}: unknown form")),
        }
    }

    /// The identity's URI.
    pub fn uri(&self) -> String {
        match self {
            Identity::Institution { province, institution } => {
                format!("{SCHEME}province/{province}/institution/{institution}")
            }
            Identity::Agency { province } => format!("{SCHEME}agency/{province}"),
            Identity::National => format!("{SCHEME}national"),
            Identity::Replica { group, id } => format!("{SCHEME}replica/{group}/{id}"),
            Identity::Operator { group } => format!("{SCHEME}operator/{group}"),
            Identity::ReportOfficer { province } => format!("{SCHEME}report-officer/{province}"),
        }
    }

    /// A short file-name-safe name (`institution-110000-H110000001`, `replica-000000-2`).
    pub fn file_name(&self) -> String {
        match self {
            Identity::Institution { province, institution } => format!("institution-{province}-{institution}"),
            Identity::Agency { province } => format!("agency-{province}"),
            Identity::National => "national".into(),
            Identity::Replica { group, id } => format!("replica-{group}-{id}"),
            Identity::Operator { group } => format!("operator-{group}"),
            Identity::ReportOfficer { province } => format!("report-officer-{province}"),
        }
    }

    /// The role's name, as the access table and refusals name it.
    pub fn role(&self) -> Role {
        match self {
            Identity::Institution { .. } => Role::Institution,
            Identity::Agency { .. } => Role::Agency,
            Identity::National => Role::National,
            Identity::Replica { .. } => Role::Replica,
            Identity::Operator { .. } => Role::Operator,
            Identity::ReportOfficer { .. } => Role::ReportOfficer,
        }
    }

    /// Reads the identity from a DER certificate (already verified by rustls).
    pub fn from_der(der: &[u8]) -> Result<Identity, String> {
        use x509_parser::prelude::*;
        let (_, cert) = X509Certificate::from_der(der).map_err(|_| "certificate: not a valid X.509 certificate")?;
        let san = cert
            .subject_alternative_name()
            .map_err(|_| "certificate: malformed subject alternative names")?
            .ok_or("certificate: names no medmesh identity (no subject alternative names)")?;
        let uris: Vec<&str> = san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::URI(u) if u.starts_with(SCHEME) => Some(*u),
                _ => None,
            })
            .collect();
        match uris.as_slice() {
            [one] => Identity::parse(one),
            [] => Err("certificate: names no medmesh identity (no medmesh:// URI)".into()),
            _ => Err("certificate: names more than one medmesh identity".into()),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

/// The kinds of caller the access table distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// A medical institution.
    Institution,
    /// A provincial agency.
    Agency,
    /// The national administration.
    National,
    /// A replica.
    Replica,
    /// A group's operator.
    Operator,
    /// A province's report officer.
    ReportOfficer,
}

impl Role {
    /// Every role, in table order.
    pub const ALL: [Role; 6] =
        [Role::Institution, Role::Agency, Role::National, Role::Replica, Role::Operator, Role::ReportOfficer];

    /// The role's name in the access table.
    pub fn name(self) -> &'static str {
        match self {
            Role::Institution => "institution",
            Role::Agency => "agency",
            Role::National => "national",
            Role::Replica => "replica",
            Role::Operator => "operator",
            Role::ReportOfficer => "report_officer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip() {
        for uri in [
            "medmesh://province/110000/institution/H110000001",
            "medmesh://agency/310000",
            "medmesh://national",
            "medmesh://replica/000000/2",
            "medmesh://operator/440000",
        ] {
            assert_eq!(Identity::parse(uri).unwrap().uri(), uri);
        }
    }

    #[test]
    fn malformed_uris_are_refused() {
        for uri in [
            "https://agency/110000",
            "medmesh://agency/11000",
            "medmesh://agency/110000/x",
            "medmesh://replica/110000/0",
            "medmesh://replica/110000/-1",
            "medmesh://province/110000/institution/",
            "medmesh://",
            "medmesh://nationals",
        ] {
            assert!(Identity::parse(uri).is_err(), "{uri}");
        }
    }
}
