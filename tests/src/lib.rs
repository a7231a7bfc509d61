//! Harness for cluster tests: real `medmesh` processes on loopback, real RocksDB on disk.
//!
//! Tests wait on conditions with deadlines, never on sleeps.

#![allow(clippy::result_large_err)] // tonic::Status is the gRPC error type

use std::ops::Not;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use medmesh_node::dev::{internal_of, spawn_replica, wait_for_leader};
use medmesh_node::identity::Identity;
use medmesh_node::network::channel;
use medmesh_node::pb::admin_service_client::AdminServiceClient;
use medmesh_node::pb::hospital_service_client::HospitalServiceClient;
use medmesh_node::pb::{StatusRequest, StatusResponse};
use medmesh_node::pki::{Pki, Transport};
use tokio::process::Child;
use tonic::transport::Channel;

/// The `medmesh` binary built alongside the tests (`target/<profile>/medmesh`).
pub fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("MEDMESH_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join("medmesh");
    assert!(bin.exists(), "{} is missing: run `cargo build --release --bins` first", bin.display());
    bin
}

/// A base port such that base+1..base+199 are free now (public listeners below base+50,
/// internal ones 50 above each: [`medmesh_node::dev::internal_of`]; HTTP gateways 140 above:
/// [`medmesh_node::dev::http_of`]). Bases are multiples of 200 in 10000–32400, so the
/// ranges of two meshes never overlap and all lie below Linux's ephemeral range (32768 and
/// up): no outgoing connection of another test can take a port between this check and the
/// replica's bind.
pub fn free_base_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    loop {
        let base: u16 = rng.gen_range(50..163) * 200;
        if (1..200).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
}

/// The directory secret of test meshes.
pub const DIRECTORY_SECRET: &str = "medmesh-test-directory-secret";

/// This test process's certificate authority (in a temporary directory that lives as long as
/// the process).
pub fn pki() -> &'static Pki {
    static PKI: std::sync::OnceLock<(tempfile::TempDir, Pki)> = std::sync::OnceLock::new();
    &PKI.get_or_init(|| {
        let dir = tempfile::tempdir().expect("pki dir");
        let pki = Pki::open_or_create(dir.path()).expect("test CA");
        (dir, pki)
    })
    .1
}

/// A transport presenting `identity` (its certificate issued by [`pki`] on first use).
pub fn transport(identity: &Identity) -> Transport {
    static CACHE: std::sync::Mutex<std::collections::BTreeMap<Identity, Transport>> =
        std::sync::Mutex::new(std::collections::BTreeMap::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.entry(identity.clone()).or_insert_with(|| pki().transport(identity).expect("test certificate")).clone()
}

/// Parses an identity URI (test shorthand).
pub fn id(uri: &str) -> Identity {
    Identity::parse(uri).expect("identity URI")
}

/// The agency of `province`.
pub fn agency(province: &str) -> Identity {
    medmesh_node::dev::agency(province).expect("province code")
}

/// Demo institution `n` of `province`.
pub fn institution(province: &str, n: u32) -> Identity {
    medmesh_node::dev::institution(province, &medmesh_node::demo::institution(province, n)).expect("institution")
}

/// The operator of group `group`.
pub fn operator(group: &str) -> Identity {
    medmesh_node::dev::operator(group).expect("group code")
}

/// The report officer of `province`.
pub fn report_officer(province: &str) -> Identity {
    id(&format!("medmesh://report-officer/{province}"))
}

/// The national administration.
pub fn national() -> Identity {
    Identity::National
}

/// An identity the access table admits to `path` on a replica of `group` (for tests that
/// exercise something other than access itself).
pub fn caller_for(path: &str, group: &str) -> Identity {
    let method = path.rsplit('/').next().unwrap_or(path);
    if path.contains("HospitalService/") {
        institution(group, 1)
    } else if path.contains("AgencyService/") {
        agency(group)
    } else if path.contains("FederationService/") {
        match method {
            "RunClearing" | "SettleClearing" | "ResolveClearingDispute" => national(),
            "ConfirmClearingLine" | "DisputeClearingLine" => institution(group, 1),
            _ => agency(if group == medmesh_state::FEDERATION { "110000" } else { group }),
        }
    } else if path.contains("ReportService/") {
        if method == "OpenReporter" {
            report_officer(group)
        } else {
            agency(group)
        }
    } else if path.contains("DisclosureService/") {
        institution(group, 1)
    } else if path.contains("RaftService/") {
        id(&format!("medmesh://replica/{group}/1"))
    } else if path.contains("MeshService/") {
        let other = if group == medmesh_state::FEDERATION { "110000" } else { medmesh_state::FEDERATION };
        id(&format!("medmesh://replica/{other}/1"))
    } else {
        operator(group)
    }
}

/// An amount in yuan as the API writes it (negative where an adjustment gives money back).
pub fn yuan(s: &str) -> medmesh_types::Money {
    medmesh_types::Money::parse_signed_yuan(s).unwrap_or_else(|e| panic!("{s:?} is not an amount: {e:?}"))
}

/// Asserts that a call was refused with `code`, its message naming `field` first.
pub fn fails(r: Result<impl std::fmt::Debug, tonic::Status>, code: tonic::Code, field: &str) {
    let e = r.expect_err("refused");
    assert!(e.code() == code && e.message().starts_with(&format!("{field}:")), "want {code:?} naming {field}: {e:?}");
}

/// Settles one demo claim at institution 1 of `province` on `day` — demo person 1's outpatient
/// visit `V1` with three demo fee lines, settled as `S1` using the individual account — and
/// answers its split and what the fund paid the institution for it: every part of the split
/// but the patient's cash.
pub async fn settle_demo_claim(
    h: &mut HospitalServiceClient<Channel>,
    province: &str,
    day: &str,
) -> (medmesh_node::pb::Split, medmesh_types::Money) {
    use medmesh_node::{demo, pb};
    let institution_id = demo::institution(province, 1);
    h.register_visit(demo::visit_request(province, "V1", 1, 1, day)).await.expect("visit V1");
    let lines = demo::fee_lines(3, day);
    h.upload_fees(pb::UploadFeesRequest { institution_id: institution_id.clone(), visit_serial: "V1".into(), lines })
        .await
        .expect("fees of V1");
    let settle = pb::SettleRequest {
        lines: Vec::new(),
        institution_id,
        serial: "S1".into(),
        visit_serial: "V1".into(),
        use_individual_account: true,
    };
    let split = h.settle(settle).await.expect("settlement S1").into_inner().split.expect("a split");
    let paid = yuan(&split.pooling_fund) + yuan(&split.critical_illness) + yuan(&split.individual_account);
    (split, paid)
}

/// Settles one non-local demo claim at institution 1 of `treatment` on `day`: demo person 2,
/// insured in `insured`, visit `visit` with two demo fee lines, settled as `serial` without the
/// individual account; answers the split.
pub async fn settle_nonlocal_demo_claim(
    h: &mut HospitalServiceClient<Channel>,
    treatment: &str,
    insured: &str,
    (visit, serial): (&str, &str),
    day: &str,
) -> medmesh_node::pb::Split {
    use medmesh_node::{demo, pb};
    let institution_id = demo::institution(treatment, 1);
    h.register_visit(demo::nonlocal_visit_request(treatment, insured, visit, 2, 1, day))
        .await
        .expect("non-local visit");
    let lines = demo::fee_lines(2, day);
    h.upload_fees(pb::UploadFeesRequest { institution_id: institution_id.clone(), visit_serial: visit.into(), lines })
        .await
        .expect("fees of the non-local visit");
    let settle = pb::SettleRequest {
        lines: Vec::new(),
        institution_id,
        serial: serial.into(),
        visit_serial: visit.into(),
        use_individual_account: false,
    };
    h.settle(settle).await.expect("non-local settlement").into_inner().split.expect("a split")
}

/// The `medmesh` binary run with `args`, then `--ca`, `--cert` and `--key` naming `identity`'s
/// certificate from this process's certificate authority.
pub fn medmesh_as(identity: &Identity, args: &[&str]) -> std::process::Command {
    let files = pki().ensure(identity, &[]).expect("certificate");
    let mut c = std::process::Command::new(binary());
    c.args(args).arg("--ca").arg(&files.ca).arg("--cert").arg(&files.cert).arg("--key").arg(&files.key);
    c
}

/// A channel to `addr` as `identity`.
pub fn channel_as(addr: &str, identity: &Identity) -> Channel {
    channel(addr, &transport(identity)).expect("channel")
}

/// Polls `f` until it returns `Some`, or fails after `timeout` with `what`.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One replica process.
pub struct Replica {
    /// Raft id.
    pub id: u64,
    /// Public gRPC address.
    pub addr: String,
    /// Internal (Raft and admin) gRPC address.
    pub internal: String,
    /// Its directory (data and log).
    pub dir: PathBuf,
    peers: String,
    child: Option<Child>,
    env: Vec<(&'static str, String)>,
}

impl Replica {
    /// Whether the process runs.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

/// A province group of replica processes.
pub struct Group {
    /// Province code.
    pub province: String,
    /// Replicas, by index.
    pub replicas: Vec<Replica>,
    exe: PathBuf,
    _root: Option<tempfile::TempDir>,
}

impl Group {
    /// Starts `n` replicas of `province` under a fresh temporary directory.
    pub fn start(province: &str, n: u64, base_port: u16, env: &[(&'static str, String)]) -> Group {
        Group::start_prepared(province, n, base_port, env, |_| {})
    }

    /// Like [`Group::start`], calling `prepare` with each replica just before it starts (to
    /// put its data directory on a filesystem of its own, for example).
    pub fn start_prepared(
        province: &str,
        n: u64,
        base_port: u16,
        env: &[(&'static str, String)],
        mut prepare: impl FnMut(&Replica),
    ) -> Group {
        let root = tempfile::tempdir().expect("tempdir");
        let addrs: Vec<String> = (1..=n).map(|r| format!("127.0.0.1:{}", base_port as u64 + r)).collect();
        let peers = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={}", i + 1, internal_of(a).expect("address")))
            .collect::<Vec<_>>()
            .join(",");
        let mut env = env.to_vec();
        env.push(("MEDMESH_ENDPOINTS", addrs.join(",")));
        let mut g = Group { province: province.into(), replicas: Vec::new(), exe: binary(), _root: None };
        for r in 1..=n {
            g.replicas.push(Replica {
                id: r,
                addr: addrs[r as usize - 1].clone(),
                internal: internal_of(&addrs[r as usize - 1]).expect("address"),
                dir: root.path().join(format!("r{r}")),
                peers: peers.clone(),
                child: None,
                env: env.clone(),
            });
            prepare(g.replica(r));
            g.restart(r);
        }
        g._root = Some(root);
        g
    }

    /// Adds a replica process that joins (no bootstrap); the caller adds it to the membership.
    pub fn spawn_joiner(&mut self, id: u64, addr: String) {
        let dir = self._root.as_ref().expect("root").path().join(format!("r{id}"));
        let mut env = self.replicas[0].env.clone();
        env.push(("MEDMESH_BOOTSTRAP", "false".into()));
        let internal = internal_of(&addr).expect("address");
        self.replicas.push(Replica { id, addr, internal, dir, peers: String::new(), child: None, env });
        self.restart(id);
    }

    fn replica_mut(&mut self, id: u64) -> &mut Replica {
        self.replicas.iter_mut().find(|r| r.id == id).expect("replica id")
    }

    /// The replica with `id`.
    pub fn replica(&self, id: u64) -> &Replica {
        self.replicas.iter().find(|r| r.id == id).expect("replica id")
    }

    /// (Re)starts replica `id` on its data directory.
    pub fn restart(&mut self, id: u64) {
        let province = self.province.clone();
        let exe = self.exe.clone();
        let r = self.replica_mut(id);
        assert!(r.child.is_none(), "replica {id} already runs");
        let mut env = r.env.clone();
        if !env.iter().any(|(k, _)| *k == "MEDMESH_INSECURE") {
            env.extend(pki().replica_env(&province, r.id, &[]).expect("replica certificate"));
        } else if !env.iter().any(|(k, _)| *k == "MEDMESH_SEAL_KEY") {
            env.extend(pki().seal_env(&province).expect("seal key"));
        }
        if !env.iter().any(|(k, _)| *k == "MEDMESH_DIRECTORY_SECRET") {
            env.push(("MEDMESH_DIRECTORY_SECRET", DIRECTORY_SECRET.into()));
        }
        let child = spawn_replica(&exe, &province, r.id, &r.addr, &r.peers, &r.dir, &env).expect("spawn replica");
        r.child = Some(child);
    }

    /// Sets an environment variable of every replica for its next (re)start.
    pub fn set_env(&mut self, key: &'static str, value: &str) {
        for r in &mut self.replicas {
            r.env.retain(|(k, _)| *k != key);
            r.env.push((key, value.to_string()));
        }
    }

    /// Kills replica `id` with SIGKILL and waits for it to exit.
    pub async fn kill(&mut self, id: u64) {
        if let Some(mut c) = self.replica_mut(id).child.take() {
            c.start_kill().expect("kill");
            let _ = c.wait().await;
        }
    }

    /// The exit status of replica `id` if its process has ended by itself (it then counts as
    /// not running, and may be restarted).
    pub fn exited(&mut self, id: u64) -> Option<std::process::ExitStatus> {
        let r = self.replica_mut(id);
        let status = r.child.as_mut()?.try_wait().expect("wait on replica")?;
        r.child = None;
        Some(status)
    }

    /// What replica `id` has logged so far.
    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.replica(id).dir.join("replica.log")).unwrap_or_default()
    }

    /// Stops replica `id` with SIGSTOP (a stalled host: its sockets stay open, nothing
    /// answers).
    pub fn pause(&self, id: u64) {
        self.signal(id, "-STOP");
    }

    /// Resumes a replica stopped with [`Group::pause`].
    pub fn resume(&self, id: u64) {
        self.signal(id, "-CONT");
    }

    fn signal(&self, id: u64, sig: &str) {
        if let Some(pid) = self.replica(id).child.as_ref().and_then(|c| c.id()) {
            let ok = std::process::Command::new("kill").arg(sig).arg(pid.to_string()).status().expect("kill runs");
            assert!(ok.success(), "kill {sig} {pid}");
        }
    }

    /// Addresses of running replicas.
    pub fn running_addrs(&self) -> Vec<String> {
        self.replicas.iter().filter(|r| r.running()).map(|r| r.addr.clone()).collect()
    }

    /// Waits for an agreed leader among the running replicas of the initial membership and
    /// returns its id.
    pub async fn leader(&self) -> u64 {
        let addrs: Vec<String> =
            self.replicas.iter().filter(|r| r.running() && r.peers.is_empty().not()).map(|r| r.addr.clone()).collect();
        let addr = match wait_for_leader(&addrs, &transport(&operator(&self.province)), Duration::from_secs(60)).await {
            Ok(a) => a,
            Err(e) => {
                // Say why: the end of each replica's log (a bind failure, a crash).
                let logs: Vec<String> = self
                    .replicas
                    .iter()
                    .map(|r| {
                        let log = self.log(r.id);
                        let tail: Vec<&str> = log.lines().rev().take(8).collect();
                        format!("replica {}:\n{}", r.id, tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
                    })
                    .collect();
                panic!("leader: {e}\n{}", logs.join("\n"));
            }
        };
        self.replicas.iter().find(|r| r.addr == addr).map(|r| r.id).expect("leader is a replica")
    }

    /// Status of a replica, if it answers.
    pub async fn status(&self, id: u64) -> Option<StatusResponse> {
        let mut c = AdminServiceClient::new(self.internal_as(id, &operator(&self.province)));
        tokio::time::timeout(Duration::from_millis(500), c.status(StatusRequest {}))
            .await
            .ok()?
            .ok()
            .map(|r| r.into_inner())
    }

    /// Waits until every running replica has applied the same index as the leader.
    pub async fn wait_converged(&self) -> u64 {
        let ids: Vec<u64> = self.replicas.iter().filter(|r| r.running()).map(|r| r.id).collect();
        wait_until(Duration::from_secs(60), "replicas to converge", || async {
            let mut applied = Vec::new();
            for id in &ids {
                applied.push(self.status(*id).await?.last_applied);
            }
            (applied.windows(2).all(|w| w[0] == w[1]) && applied[0] > 0).then(|| applied[0])
        })
        .await
    }

    /// Stops every replica (SIGKILL; durability makes that safe).
    pub async fn stop_all(&mut self) {
        let ids: Vec<u64> = self.replicas.iter().map(|r| r.id).collect();
        for id in ids {
            self.kill(id).await;
        }
    }

    /// A hospital client to replica `id`, as demo institution 1 of the province.
    pub fn hospital(&self, id: u64) -> HospitalServiceClient<Channel> {
        HospitalServiceClient::new(self.channel_as(id, &institution(&self.province, 1)))
    }

    /// A channel to replica `id` as the province's agency.
    pub fn agency(&self, id: u64) -> Channel {
        self.channel_as(id, &agency(&self.province))
    }

    /// A channel to replica `id`'s public listener as `identity`.
    pub fn channel_as(&self, id: u64, identity: &Identity) -> Channel {
        channel_as(&self.replica(id).addr, identity)
    }

    /// A channel to replica `id`'s internal listener (Raft, admin) as `identity`.
    pub fn internal_as(&self, id: u64, identity: &Identity) -> Channel {
        channel_as(&self.replica(id).internal, identity)
    }
}

/// A whole mesh: the federation's group and province groups, each three replica processes,
/// with demo data and filings loaded through the public API.
pub struct Mesh {
    /// The federation group.
    pub federation: Group,
    /// Province groups, in the order given.
    pub provinces: Vec<Group>,
}

impl Mesh {
    /// Starts the federation and `provinces` (group `i` at `base + 10 (i + 1)`), loads
    /// `persons` demo persons per province and files them for care in the other provinces.
    pub async fn start(provinces: &[&str], persons: u32) -> Mesh {
        Mesh::start_with_env(provinces, persons, &[]).await
    }

    /// [`Mesh::start`] with `env` set for every replica, the federation's included.
    pub async fn start_with_env(provinces: &[&str], persons: u32, env: &[(&'static str, String)]) -> Mesh {
        let base = free_base_port();
        let federation = Group::start(medmesh_state::FEDERATION, 3, base, env);
        let fed_addrs = federation.replicas.iter().map(|r| r.addr.clone()).collect::<Vec<_>>().join(",");
        let mut env = env.to_vec();
        env.push(("MEDMESH_FEDERATION", fed_addrs));
        let groups: Vec<Group> =
            provinces.iter().enumerate().map(|(i, p)| Group::start(p, 3, base + 10 * (i as u16 + 1), &env)).collect();
        federation.leader().await;
        let codes: Vec<String> = provinces.iter().map(|p| p.to_string()).collect();
        for g in &groups {
            let leader = g.leader().await;
            medmesh_node::demo::load(g.agency(leader), &g.province, persons).await.expect("demo data");
            medmesh_node::demo::file(g.agency(leader), &g.province, persons, &codes).await.expect("demo filings");
        }
        // Each province registers its endpoints with the federation in the background; non-local
        // care is routed only once the insured province is registered.
        let fed = federation.channel_as(federation.leader().await, &national());
        wait_until(Duration::from_secs(60), "every province to register with the federation", || {
            let mut c = medmesh_node::pb::federation_service_client::FederationServiceClient::new(fed.clone());
            let codes = codes.clone();
            async move {
                let listed = c.list_provinces(medmesh_node::pb::ListProvincesRequest::default()).await.ok()?;
                let have: Vec<String> = listed.into_inner().provinces.into_iter().map(|p| p.province).collect();
                codes.iter().all(|c| have.contains(c)).then_some(())
            }
        })
        .await;
        Mesh { federation, provinces: groups }
    }

    /// The group of a province.
    pub fn province(&self, code: &str) -> &Group {
        self.provinces.iter().find(|g| g.province == code).expect("province in the mesh")
    }
}

/// Data directory of a replica (for opening its RocksDB after it stopped).
pub fn data_dir(r: &Replica) -> PathBuf {
    r.dir.join("data")
}

/// Reads every state record of a stopped replica's RocksDB.
pub async fn read_state(dir: &Path, role: medmesh_state::Role) -> medmesh_state::MemKv {
    let (_log, sm) = medmesh_storage::open(dir, role).await.expect("open replica store");
    let view = sm.view();
    let mut kv = medmesh_state::MemKv::default();
    use medmesh_state::KvRead;
    for (k, v) in view.scan(b"", &[0xff; 8], usize::MAX) {
        kv.0.insert(k, v);
    }
    kv
}
/// The replica endpoints `medmesh dev` prints on its standard output, in order, read until it
/// says it is ready (at most 120 s).
pub async fn dev_endpoints(stdout: tokio::process::ChildStdout) -> Vec<String> {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut lines = BufReader::new(stdout).lines();
    let mut endpoints = Vec::new();
    tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(addr) = line.split_whitespace().last().filter(|a| a.starts_with("127.0.0.1:")) {
                endpoints.push(addr.to_string());
            }
            if line.starts_with("ready") {
                break;
            }
        }
    })
    .await
    .expect("medmesh dev becomes ready");
    endpoints
}

pub mod checker;
pub mod month;
pub mod raw;
pub mod workload;
