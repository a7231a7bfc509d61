//! Replica configuration: a TOML file, then environment overrides.
//!
//! Environment variables (each overrides the file):
//!
//! | variable | field |
//! |---|---|
//! | `MEDMESH_ID` | `id` |
//! | `MEDMESH_PROVINCE` | `province` |
//! | `MEDMESH_LISTEN` | `listen` |
//! | `MEDMESH_ADVERTISE` | `advertise` |
//! | `MEDMESH_INTERNAL_LISTEN` | `internal_listen` |
//! | `MEDMESH_INTERNAL_ADVERTISE` | `internal_advertise` |
//! | `MEDMESH_ENDPOINTS` | `endpoints` (comma-separated `host:port`) |
//! | `MEDMESH_DATA_DIR` | `data_dir` |
//! | `MEDMESH_PEERS` | `peers` (comma-separated `id=host:port`) |
//! | `MEDMESH_BOOTSTRAP` | `bootstrap` (`true`/`false`) |
//! | `MEDMESH_SNAPSHOT_LOGS` | `snapshot_logs` |
//! | `MEDMESH_BLOCK_CACHE_MIB` | `block_cache_mib` |
//! | `MEDMESH_WRITE_BUFFER_MIB` | `write_buffer_mib` |
//! | `MEDMESH_COMPRESSION` | `compression` (`lz4`/`none`) |
//! | `MEDMESH_HEARTBEAT_MS` | `heartbeat_ms` |
//! | `MEDMESH_ELECTION_TIMEOUT_MS` | `election_timeout_ms` |
//! | `MEDMESH_FEDERATION` | `federation` (comma-separated `host:port`) |
//! | `MEDMESH_DIRECTORY_SECRET` | `directory_secret` |
//! | `MEDMESH_TLS_CA` | `tls_ca` |
//! | `MEDMESH_TLS_CERT` | `tls_cert` |
//! | `MEDMESH_TLS_KEY` | `tls_key` |
//! | `MEDMESH_TLS_DENY` | `tls_deny` (comma-separated SHA-256 fingerprints) |
//! | `MEDMESH_INSECURE` | `insecure` (`true`/`false`) |
//! | `MEDMESH_SEAL_KEY` | `seal_key` |
//! | `MEDMESH_CLOCK_OFFSET_MS` | `clock_offset_ms` |
//! | `MEDMESH_OPS_LISTEN` | `ops_listen` |
//! | `MEDMESH_HTTP_LISTEN` | `http_listen` |
//! | `MEDMESH_DASHBOARD_USERS` | `dashboard_users` |
//! | `MEDMESH_DASHBOARD_RISK_MONTHS` | `dashboard_risk_months` |

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// Configuration of one replica.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Raft node id, unique in the group, positive.
    pub id: u64,
    /// Province code served by this group (six digits, e.g. `110000`).
    pub province: String,
    /// Address the public gRPC listener binds (`host:port`): the hospital, agency, federation
    /// and mesh services, health and reflection.
    pub listen: String,
    /// Address clients and other groups use to reach the public listener; defaults to
    /// `listen`.
    pub advertise: String,
    /// Address the internal listener binds (`host:port`): Raft and admin only, for the
    /// group's replicas and its operator. Keep it off networks clients reach.
    pub internal_listen: String,
    /// Address the group's replicas use to reach the internal listener (the address in the
    /// Raft membership); defaults to `internal_listen`.
    pub internal_advertise: String,
    /// Public addresses of every replica of the group, registered with the federation so that
    /// other groups can reach any of them; defaults to this replica's `advertise` alone.
    pub endpoints: Vec<String>,
    /// Directory of the RocksDB database and snapshots.
    pub data_dir: PathBuf,
    /// Initial voters as `id=host:port` of their internal listeners; used only to bootstrap a
    /// fresh group.
    pub peers: Vec<String>,
    /// Bootstrap the group from `peers` if this replica's log is empty and its id is the lowest
    /// in `peers`. Set false for a replica that joins an existing group.
    pub bootstrap: bool,
    /// Build a snapshot (and purge the log) once at least this many entries have been applied
    /// since the last one *and* the log appended since is at least half the last snapshot's
    /// size, so the cost of rebuilding a large state is paid for by as much new log
    /// ([`medmesh_storage::snapshot_due`]). Default 5,000.
    pub snapshot_logs: u64,
    /// MiB of RocksDB's block cache (data, index and filter blocks of every column family).
    /// With `write_buffer_mib` it bounds what the store holds in memory however large the
    /// province grows (BENCHMARKS.md, "A province at a million claims"). Default 64, at least 8.
    pub block_cache_mib: u64,
    /// MiB of RocksDB memtables, all column families together (a flush starts beyond it).
    /// Default 64, at least 8.
    pub write_buffer_mib: u64,
    /// How RocksDB compresses table blocks on disk: `lz4` (the default) or `none`
    /// ([`medmesh_storage::Compression`]). Can be changed on a replica with data: old files
    /// keep their own and are rewritten by compaction.
    pub compression: medmesh_storage::Compression,
    /// Leader heartbeat interval in milliseconds.
    pub heartbeat_ms: u64,
    /// Minimum election timeout in milliseconds (the maximum is twice this).
    pub election_timeout_ms: u64,
    /// Replica addresses of the federation group. Empty: this province settles only local
    /// care. A replica whose `province` is `000000` is itself a federation replica.
    pub federation: Vec<String>,
    /// Secret shared by the provinces (not by the federation's readers) that keys the hash of
    /// certificates in the federation's directory. Every province must use the same value.
    /// Required: there is no built-in default (`medmesh dev` generates one).
    pub directory_secret: String,
    /// The CA certificate (PEM) every peer and client certificate must be signed by.
    pub tls_ca: PathBuf,
    /// This replica's certificate (PEM): it must name `medmesh://replica/{province}/{id}` and
    /// the host names clients use to reach it.
    pub tls_cert: PathBuf,
    /// The certificate's private key (PEM).
    pub tls_key: PathBuf,
    /// Refused certificates, by the SHA-256 fingerprint of their DER encoding (hex), as
    /// `medmesh pki fingerprint` prints it.
    pub tls_deny: Vec<String>,
    /// Serve and call in plaintext with no identity checks. For a throwaway local run only:
    /// off by default, and logged loudly when on.
    pub insecure: bool,
    /// The province's seal key file (64 hex characters; see `medmesh_seal`): identity and card
    /// numbers are stored only as keyed hashes and sealed fields under it. Every replica of a
    /// province loads the same file; losing it loses the register's names and numbers.
    /// Required for a province replica (`medmesh dev` and `deploy/make-pki.sh` generate one);
    /// the federation holds no identities and needs none.
    pub seal_key: PathBuf,
    /// Shifts this replica's clock by this many milliseconds (signed; 0 by default). For
    /// drills and tests of month-end work — declarations, clearing — without waiting for the
    /// calendar: every replica of a group runs with the same offset, and the group's time then
    /// follows it (backwards only for a fresh group: apply never moves time back). Logged
    /// loudly at start when not 0. At most ten years either way.
    pub clock_offset_ms: i64,
    /// Address of the ops listener (`host:port`, plain HTTP): Prometheus metrics at `/metrics`
    /// and `/healthz`, nothing else ([`crate::metrics`]). Empty (the default): no ops listener.
    /// Bind it to loopback or an operators' network.
    pub ops_listen: String,
    /// Address of the HTTP/JSON listener for hospital systems (`host:port`): the hospital rpcs
    /// as JSON over HTTPS with the same certificates and roles as gRPC ([`crate::gateway`]).
    /// Empty (the default): none.
    pub http_listen: String,
    /// The dashboard's users (a TOML file of `[[user]]` tables: `name`, `role` = `national` or
    /// `agency`, `province` for an agency, `password_hash` from `medmesh dashboard
    /// hash-password`); the dashboard is served under `/dashboard/` of `http_listen`. Empty
    /// (the default): no dashboard.
    pub dashboard_users: PathBuf,
    /// The national view flags a province whose fund balance covers fewer months of
    /// expenditure than this (each agency's own view uses its province's policy). Default 6.
    pub dashboard_risk_months: u32,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            id: 1,
            province: "110000".into(),
            listen: "127.0.0.1:7111".into(),
            advertise: String::new(),
            internal_listen: "127.0.0.1:7161".into(),
            internal_advertise: String::new(),
            endpoints: Vec::new(),
            data_dir: PathBuf::from("./data/node-1"),
            peers: Vec::new(),
            bootstrap: true,
            snapshot_logs: 5_000,
            block_cache_mib: (medmesh_storage::MemoryBudget::default().block_cache >> 20) as u64,
            write_buffer_mib: (medmesh_storage::MemoryBudget::default().write_buffers >> 20) as u64,
            compression: medmesh_storage::Compression::default(),
            heartbeat_ms: 100,
            election_timeout_ms: 300,
            federation: Vec::new(),
            directory_secret: String::new(),
            tls_ca: PathBuf::new(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            tls_deny: Vec::new(),
            insecure: false,
            seal_key: PathBuf::new(),
            clock_offset_ms: 0,
            ops_listen: String::new(),
            http_listen: String::new(),
            dashboard_users: PathBuf::new(),
            dashboard_risk_months: 6,
        }
    }
}

impl NodeConfig {
    /// Reads the file (if any), applies environment overrides and validates.
    pub fn load(path: Option<&std::path::Path>) -> anyhow::Result<NodeConfig> {
        let mut c = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            }
            None => NodeConfig::default(),
        };
        c.apply_env(|k| std::env::var(k).ok())?;
        c.validate()?;
        Ok(c)
    }

    /// Applies `MEDMESH_*` overrides from `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        if let Some(v) = get("MEDMESH_ID") {
            self.id = v.parse().context("MEDMESH_ID")?;
        }
        if let Some(v) = get("MEDMESH_PROVINCE") {
            self.province = v;
        }
        if let Some(v) = get("MEDMESH_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = get("MEDMESH_ADVERTISE") {
            self.advertise = v;
        }
        if let Some(v) = get("MEDMESH_INTERNAL_LISTEN") {
            self.internal_listen = v;
        }
        if let Some(v) = get("MEDMESH_INTERNAL_ADVERTISE") {
            self.internal_advertise = v;
        }
        if let Some(v) = get("MEDMESH_ENDPOINTS") {
            self.endpoints = v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        }
        if let Some(v) = get("MEDMESH_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("MEDMESH_PEERS") {
            self.peers = v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        }
        if let Some(v) = get("MEDMESH_BOOTSTRAP") {
            self.bootstrap = v.parse().context("MEDMESH_BOOTSTRAP")?;
        }
        if let Some(v) = get("MEDMESH_SNAPSHOT_LOGS") {
            self.snapshot_logs = v.parse().context("MEDMESH_SNAPSHOT_LOGS")?;
        }
        if let Some(v) = get("MEDMESH_BLOCK_CACHE_MIB") {
            self.block_cache_mib = v.parse().context("MEDMESH_BLOCK_CACHE_MIB")?;
        }
        if let Some(v) = get("MEDMESH_WRITE_BUFFER_MIB") {
            self.write_buffer_mib = v.parse().context("MEDMESH_WRITE_BUFFER_MIB")?;
        }
        if let Some(v) = get("MEDMESH_COMPRESSION") {
            self.compression = v.parse().map_err(anyhow::Error::msg).context("MEDMESH_COMPRESSION")?;
        }
        if let Some(v) = get("MEDMESH_HEARTBEAT_MS") {
            self.heartbeat_ms = v.parse().context("MEDMESH_HEARTBEAT_MS")?;
        }
        if let Some(v) = get("MEDMESH_ELECTION_TIMEOUT_MS") {
            self.election_timeout_ms = v.parse().context("MEDMESH_ELECTION_TIMEOUT_MS")?;
        }
        if let Some(v) = get("MEDMESH_CLOCK_OFFSET_MS") {
            self.clock_offset_ms = v.parse().context("MEDMESH_CLOCK_OFFSET_MS")?;
        }
        if let Some(v) = get("MEDMESH_OPS_LISTEN") {
            self.ops_listen = v;
        }
        if let Some(v) = get("MEDMESH_HTTP_LISTEN") {
            self.http_listen = v;
        }
        if let Some(v) = get("MEDMESH_DASHBOARD_USERS") {
            self.dashboard_users = v.into();
        }
        if let Some(v) = get("MEDMESH_DASHBOARD_RISK_MONTHS") {
            self.dashboard_risk_months = v.parse().context("MEDMESH_DASHBOARD_RISK_MONTHS")?;
        }
        if let Some(v) = get("MEDMESH_FEDERATION") {
            self.federation = v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        }
        if let Some(v) = get("MEDMESH_DIRECTORY_SECRET") {
            self.directory_secret = v;
        }
        if let Some(v) = get("MEDMESH_TLS_CA") {
            self.tls_ca = v.into();
        }
        if let Some(v) = get("MEDMESH_TLS_CERT") {
            self.tls_cert = v.into();
        }
        if let Some(v) = get("MEDMESH_TLS_KEY") {
            self.tls_key = v.into();
        }
        if let Some(v) = get("MEDMESH_TLS_DENY") {
            self.tls_deny = v.split(',').map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty()).collect();
        }
        if let Some(v) = get("MEDMESH_INSECURE") {
            self.insecure = v.parse().context("MEDMESH_INSECURE")?;
        }
        if let Some(v) = get("MEDMESH_SEAL_KEY") {
            self.seal_key = v.into();
        }
        Ok(())
    }

    /// The address clients and other groups reach this replica's public listener at.
    pub fn advertised(&self) -> &str {
        if self.advertise.is_empty() {
            &self.listen
        } else {
            &self.advertise
        }
    }

    /// The address the group's replicas reach this replica's internal listener at.
    pub fn internal_advertised(&self) -> &str {
        if self.internal_advertise.is_empty() {
            &self.internal_listen
        } else {
            &self.internal_advertise
        }
    }

    /// RocksDB's tuning: memory bounds from `block_cache_mib` and `write_buffer_mib`, and
    /// `compression`.
    pub fn store_options(&self) -> medmesh_storage::StoreOptions {
        let bytes = |mib: u64| usize::try_from(mib << 20).unwrap_or(usize::MAX);
        medmesh_storage::StoreOptions {
            memory: medmesh_storage::MemoryBudget {
                block_cache: bytes(self.block_cache_mib),
                write_buffers: bytes(self.write_buffer_mib),
            },
            compression: self.compression,
        }
    }

    /// The longest election timeout, twice `election_timeout_ms`: also the leader's lease as
    /// openraft keeps it (followers vote for no one else while it runs), and how long a leader
    /// may go without a majority's acknowledgement before it counts as cut off.
    pub fn election_timeout_max(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.election_timeout_ms * 2)
    }

    /// The group's public addresses, as registered with the federation.
    pub fn public_endpoints(&self) -> Vec<String> {
        if self.endpoints.is_empty() {
            vec![self.advertised().to_string()]
        } else {
            self.endpoints.clone()
        }
    }

    /// Whether this replica belongs to the federation group.
    pub fn is_federation(&self) -> bool {
        self.province == medmesh_state::FEDERATION
    }

    /// Parsed `peers`.
    pub fn peer_map(&self) -> anyhow::Result<BTreeMap<u64, String>> {
        let mut out = BTreeMap::new();
        for p in &self.peers {
            let (id, addr) = p.split_once('=').with_context(|| format!("peers: {p:?} is not id=host:port"))?;
            let id: u64 = id.trim().parse().with_context(|| format!("peers: bad id in {p:?}"))?;
            if id == 0 || addr.trim().is_empty() {
                bail!("peers: {p:?} needs a positive id and an address");
            }
            out.insert(id, addr.trim().to_string());
        }
        Ok(out)
    }

    /// Checks the configuration.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.id == 0 {
            bail!("id: must be positive");
        }
        medmesh_types::ProvinceCode::new(self.province.clone()).map_err(|e| anyhow::anyhow!("province: {e}"))?;
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            bail!("listen: {:?} is not host:port with a numeric host", self.listen);
        }
        match self.internal_listen.parse::<std::net::SocketAddr>() {
            Err(_) => bail!("internal_listen: {:?} is not host:port with a numeric host", self.internal_listen),
            Ok(a) if Some(a) == self.listen.parse().ok() => {
                bail!("internal_listen: must differ from listen (Raft and admin are never served publicly)")
            }
            Ok(_) => {}
        }
        for (i, a) in self.endpoints.iter().enumerate() {
            if !a.contains(':') {
                bail!("endpoints[{i}]: {a:?} is not host:port");
            }
        }
        if self.heartbeat_ms == 0 || self.election_timeout_ms <= self.heartbeat_ms * 2 {
            bail!("election_timeout_ms: must be more than twice heartbeat_ms");
        }
        if self.snapshot_logs == 0 {
            bail!("snapshot_logs: must be positive");
        }
        for (name, mib) in [("block_cache_mib", self.block_cache_mib), ("write_buffer_mib", self.write_buffer_mib)] {
            if !(8..=1 << 20).contains(&mib) {
                bail!("{name}: {mib} MiB is outside 8 to 1048576");
            }
        }
        for (i, a) in self.federation.iter().enumerate() {
            if !a.contains(':') {
                bail!("federation[{i}]: {a:?} is not host:port");
            }
        }
        if self.directory_secret.len() < 16 {
            bail!("directory_secret: must be at least 16 characters (set MEDMESH_DIRECTORY_SECRET; every province uses the same)");
        }
        if !self.insecure {
            for (name, path) in [("tls_ca", &self.tls_ca), ("tls_cert", &self.tls_cert), ("tls_key", &self.tls_key)] {
                if path.as_os_str().is_empty() {
                    bail!(
                        "{name}: required (set MEDMESH_{}; `medmesh pki` issues development certificates)",
                        name.to_uppercase()
                    );
                }
            }
        }
        if !self.ops_listen.is_empty() && self.ops_listen.parse::<std::net::SocketAddr>().is_err() {
            bail!("ops_listen: {:?} is not host:port with an IP address", self.ops_listen);
        }
        if !self.http_listen.is_empty() && self.http_listen.parse::<std::net::SocketAddr>().is_err() {
            bail!("http_listen: {:?} is not host:port with an IP address", self.http_listen);
        }
        if !self.dashboard_users.as_os_str().is_empty() && self.http_listen.is_empty() {
            bail!("dashboard_users: the dashboard is served on http_listen, which is not set");
        }
        if !self.dashboard_users.as_os_str().is_empty() && self.insecure {
            bail!("dashboard_users: an insecure replica checks no roles, so it serves no dashboard");
        }
        if !(1..=120).contains(&self.dashboard_risk_months) {
            bail!("dashboard_risk_months: {} is not 1 to 120", self.dashboard_risk_months);
        }
        if self.clock_offset_ms.unsigned_abs() > 10 * 366 * 86_400_000 {
            bail!("clock_offset_ms: {} is more than ten years", self.clock_offset_ms);
        }
        for (i, f) in self.tls_deny.iter().enumerate() {
            if f.len() != 64 || !f.chars().all(|c| c.is_ascii_hexdigit()) {
                bail!("tls_deny[{i}]: {f:?} is not a SHA-256 fingerprint (64 hex digits)");
            }
        }
        if !self.is_federation() && self.seal_key.as_os_str().is_empty() {
            bail!("seal_key: required for a province replica (set MEDMESH_SEAL_KEY to a file of 64 hex characters; `medmesh pki seal-key` makes one)");
        }
        let peers = self.peer_map()?;
        if !peers.is_empty() && !peers.contains_key(&self.id) {
            bail!("peers: must include this replica's id {}", self.id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_values() {
        let mut c = NodeConfig::default();
        c.apply_env(|k| match k {
            "MEDMESH_ID" => Some("2".into()),
            "MEDMESH_DIRECTORY_SECRET" => Some("a-secret-of-sixteen".into()),
            "MEDMESH_INSECURE" => Some("true".into()),
            "MEDMESH_SEAL_KEY" => Some("/etc/medmesh/seal.key".into()),
            "MEDMESH_PEERS" => Some("1=127.0.0.1:1, 2=127.0.0.1:2".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.id, 2);
        assert_eq!(c.peer_map().unwrap().len(), 2);
        c.validate().unwrap();
    }

    #[test]
    fn bad_values_name_the_field() {
        let c = NodeConfig::default();
        assert!(c.validate().unwrap_err().to_string().starts_with("directory_secret"));
        let c = NodeConfig { directory_secret: "0123456789abcdef".into(), ..NodeConfig::default() };
        assert!(c.validate().unwrap_err().to_string().starts_with("tls_ca"));
        let c = NodeConfig { province: "12".into(), ..NodeConfig::default() };
        assert!(c.validate().unwrap_err().to_string().starts_with("province"));
        let c = NodeConfig { directory_secret: "0123456789abcdef".into(), insecure: true, ..NodeConfig::default() };
        assert!(c.validate().unwrap_err().to_string().starts_with("seal_key"));
        let fed = NodeConfig { province: "000000".into(), ..c.clone() };
        fed.validate().unwrap();
        let ok = NodeConfig { seal_key: "/etc/medmesh/seal.key".into(), ..c };
        ok.validate().unwrap();
        let c = NodeConfig { peers: vec!["x".into()], ..ok.clone() };
        assert!(c.validate().unwrap_err().to_string().starts_with("peers"));
    }

    /// The documented example parses, and validates once the secret comes from the
    /// environment as it says.
    #[test]
    fn the_example_file_is_valid() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/node.example.toml");
        let mut c: NodeConfig = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(c.validate().unwrap_err().to_string().starts_with("directory_secret"));
        c.apply_env(|k| (k == "MEDMESH_DIRECTORY_SECRET").then(|| "0123456789abcdef".to_string())).unwrap();
        c.validate().unwrap();
    }
}
