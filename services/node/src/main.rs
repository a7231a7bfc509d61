//! The `medmesh` binary: `node` runs one replica, `dev` runs a local mesh, `health` checks an
//! endpoint.

#![allow(clippy::result_large_err)] // tonic::Status is the gRPC error type

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use medmesh_node::identity::Identity;
use medmesh_node::pki::{self, Pki, Tls, Transport};
use medmesh_node::{cli, config::NodeConfig, dev, health, network, server, telemetry};

/// Longest a replica takes to stop once asked.
const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(name = "medmesh", version, about = "Settles and supervises medical security funds across provinces")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// How a client command reaches a replica: the CA, and the caller's certificate and key.
/// The `MEDMESH_TLS_*` variables are a replica's own, so inside a replica's container these
/// commands present the replica's certificate.
#[derive(clap::Args)]
struct ClientTls {
    /// CA certificate (PEM) the replica's certificate must be signed by.
    #[arg(long, env = "MEDMESH_TLS_CA")]
    ca: Option<PathBuf>,
    /// Client certificate (PEM) naming the caller's medmesh identity.
    #[arg(long, env = "MEDMESH_TLS_CERT")]
    cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, env = "MEDMESH_TLS_KEY")]
    key: Option<PathBuf>,
    /// Plaintext, for a replica started with --insecure.
    #[arg(long)]
    insecure: bool,
}

impl ClientTls {
    fn transport(&self) -> anyhow::Result<Transport> {
        if self.insecure {
            return Ok(Transport::Insecure);
        }
        let ca = self.ca.as_deref().ok_or_else(|| anyhow::anyhow!("--ca (or MEDMESH_TLS_CA) is required"))?;
        let pair = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            (None, None) => None,
            _ => anyhow::bail!("--cert and --key go together"),
        };
        Ok(Transport::Tls(std::sync::Arc::new(Tls::load(ca, pair)?)))
    }
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Re-walks a province's audit chain and checks it against the federation's anchors;
    /// exits 0 when it verifies, 1 (naming the first broken entry) when it does not.
    Verify {
        /// The province.
        #[arg(long)]
        province: String,
        /// A replica of the province (public address) to read the chain from, as its agency or
        /// the national administration.
        #[arg(long, conflicts_with = "data_dir")]
        addr: Option<String>,
        /// Or: a stopped replica's data directory (or a copy of it) to read the chain from.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// A replica (public address) to read the federation's anchors from; defaults to
        /// --addr. Without it and with --data-dir, only the chain itself is checked.
        #[arg(long)]
        federation: Option<String>,
        #[command(flatten)]
        tls: ClientTls,
    },
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// Each replica's Raft status — state, term, leader, last log, applied and (from the
    /// leader) committed index and lag — asked at the group's internal listeners as its
    /// operator. Exits 1 when no replica leads.
    Status {
        /// The replicas' internal addresses (repeat the flag or separate by commas).
        #[arg(long, value_delimiter = ',', required = true)]
        addr: Vec<String>,
        /// table or json.
        #[arg(long, value_enum, default_value = "table")]
        output: cli::Output,
        #[command(flatten)]
        tls: ClientTls,
    },
    /// Adds a replica (as a learner; a voter once caught up with --voter) through a replica
    /// of the group.
    AddReplica {
        /// A replica of the group (internal address).
        #[arg(long)]
        addr: String,
        /// The new replica's id.
        #[arg(long)]
        id: u64,
        /// The new replica's internal address.
        #[arg(long)]
        replica_addr: String,
        /// Promote it to voter once it has caught up.
        #[arg(long)]
        voter: bool,
        /// table or json.
        #[arg(long, value_enum, default_value = "table")]
        output: cli::Output,
        #[command(flatten)]
        tls: ClientTls,
    },
    /// Has a replica build a snapshot of its state now (the log it covers is purged), and
    /// prints the index it covers.
    Snapshot {
        /// The replica (internal address).
        #[arg(long)]
        addr: String,
        /// table or json.
        #[arg(long, value_enum, default_value = "table")]
        output: cli::Output,
        #[command(flatten)]
        tls: ClientTls,
    },
    /// Removes a replica through a replica of the group.
    RemoveReplica {
        /// A replica of the group (internal address).
        #[arg(long)]
        addr: String,
        /// The replica to remove.
        #[arg(long)]
        id: u64,
        /// table or json.
        #[arg(long, value_enum, default_value = "table")]
        output: cli::Output,
        #[command(flatten)]
        tls: ClientTls,
    },
}

#[derive(Subcommand)]
enum RulesCmd {
    /// Records monitoring rules at a province as its agency, from a JSON file: an array of
    /// MonitoringRule in the proto3 JSON mapping (`medmesh rules shipped` writes one).
    Load {
        /// A replica of the province (public address).
        #[arg(long)]
        addr: String,
        /// The rules file.
        #[arg(long)]
        file: PathBuf,
        /// table or json.
        #[arg(long, value_enum, default_value = "table")]
        output: cli::Output,
        #[command(flatten)]
        tls: ClientTls,
    },
    /// Prints the shipped rule library as a rules file.
    Shipped,
}

#[derive(Subcommand)]
enum ClearingCmd {
    /// Clears an ended month at the federation, as the national administration.
    Run {
        /// A federation replica (public address).
        #[arg(long)]
        addr: String,
        /// The month, YYYY-MM.
        #[arg(long)]
        month: String,
        /// table or json.
        #[arg(long, value_enum, default_value = "table")]
        output: cli::Output,
        #[command(flatten)]
        tls: ClientTls,
    },
    /// A month's clearing: statements and net positions (every line with --lines), as the
    /// nation or a province's agency.
    Show {
        /// A federation replica (public address).
        #[arg(long)]
        addr: String,
        /// The month, YYYY-MM.
        #[arg(long)]
        month: String,
        /// Read and print every line, a page at a time.
        #[arg(long)]
        lines: bool,
        /// table or json.
        #[arg(long, value_enum, default_value = "table")]
        output: cli::Output,
        #[command(flatten)]
        tls: ClientTls,
    },
}

#[derive(Subcommand)]
enum InspectionCmd {
    /// Draws a recorded inspection plan by revealing its nonce, as the province's agency; the
    /// draw is recorded once (a second draw is refused).
    Draw {
        /// A replica of the province (public address).
        #[arg(long)]
        addr: String,
        /// The plan's id.
        #[arg(long)]
        plan_id: String,
        /// The secret nonce whose commitment the plan published.
        #[arg(long)]
        nonce: String,
        /// table or json.
        #[arg(long, value_enum, default_value = "table")]
        output: cli::Output,
        #[command(flatten)]
        tls: ClientTls,
    },
}

#[derive(Subcommand)]
enum DashboardCmd {
    /// Reads a password from the first line of standard input and prints its argon2id hash
    /// (a PHC string) for a `[[user]]` of the `dashboard_users` file.
    HashPassword,
}

#[derive(Subcommand)]
enum PkiCmd {
    /// Issues a certificate for a medmesh identity, creating the directory's CA if it has none.
    Issue {
        /// The PKI directory (ca.pem, ca.key and the issued files).
        #[arg(long)]
        dir: PathBuf,
        /// The identity URI, e.g. medmesh://replica/110000/1, medmesh://agency/110000,
        /// medmesh://province/110000/institution/H110000-01, medmesh://national,
        /// medmesh://operator/110000.
        #[arg(long)]
        identity: String,
        /// Host names or IP addresses the certificate serves (besides 127.0.0.1 and localhost).
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
    /// Writes a new random seal key for a province (`seal_key`, `MEDMESH_SEAL_KEY`) to a file
    /// readable only by its owner; refuses to replace an existing file.
    SealKey {
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Prints the SHA-256 fingerprint of a certificate, as `tls_deny` lists it.
    Fingerprint {
        /// Certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
    },
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs one replica from a config file, with MEDMESH_* environment overrides.
    Node {
        /// TOML config file; defaults apply without one.
        #[arg(long, env = "MEDMESH_CONFIG")]
        config: Option<PathBuf>,
        /// Stop (gracefully) when the process with this pid is no longer the parent; set by
        /// `medmesh dev` and other launchers so that replicas never outlive them.
        #[arg(long, env = "MEDMESH_PARENT_PID")]
        parent_pid: Option<u32>,
        /// Serve in plaintext with no identity checks (a throwaway local run; logged loudly).
        #[arg(long)]
        insecure: bool,
    },
    /// Runs a local mesh (the federation and provinces × 3 replicas, separate processes) with
    /// demo data.
    Dev {
        /// Number of provinces (besides the federation's group).
        #[arg(long, default_value_t = 3)]
        provinces: usize,
        /// Replica r of province p listens on base_port + 10p + r.
        #[arg(long, default_value_t = 7100)]
        base_port: u16,
        /// Data directory.
        #[arg(long, default_value = ".medmesh-dev")]
        data_dir: PathBuf,
        /// Demo insured persons per province.
        #[arg(long, default_value_t = 200)]
        persons: u32,
        /// Plaintext, no identity checks (a throwaway run; logged loudly).
        #[arg(long)]
        insecure: bool,
    },
    /// Development certificates.
    Pki {
        #[command(subcommand)]
        cmd: PkiCmd,
    },
    /// The audit chain.
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// A group's replicas and membership (as its operator, at the internal listeners).
    Cluster {
        #[command(subcommand)]
        cmd: ClusterCmd,
    },
    /// Monitoring rules (as a province's agency).
    Rules {
        #[command(subcommand)]
        cmd: RulesCmd,
    },
    /// Clearing between provinces (at the federation).
    Clearing {
        #[command(subcommand)]
        cmd: ClearingCmd,
    },
    /// Double-random inspections (as a province's agency).
    Inspection {
        #[command(subcommand)]
        cmd: InspectionCmd,
    },
    /// The dashboard's users.
    Dashboard {
        #[command(subcommand)]
        cmd: DashboardCmd,
    },
    /// Loads the demo data (policy, institutions, personnel, catalogue, persons, an opening
    /// contribution) into a province through its agency API; loading twice changes nothing.
    LoadDemo {
        /// Any replica of the province, host:port.
        #[arg(long, default_value = "127.0.0.1:7111")]
        addr: String,
        /// Province code the replica serves.
        #[arg(long, default_value = "110000")]
        province: String,
        /// Demo insured persons.
        #[arg(long, default_value_t = 200)]
        persons: u32,
        /// Also file the demo persons for non-local care in these provinces (comma-separated
        /// codes; the mesh's federation must know them).
        #[arg(long, value_delimiter = ',')]
        file_for: Vec<String>,
        /// The province's agency certificate.
        #[command(flatten)]
        tls: ClientTls,
    },
    /// Checks that an endpoint serves (gRPC health); exits non-zero if not, printing why.
    Health {
        /// Endpoint host:port.
        #[arg(long, default_value = "127.0.0.1:7111")]
        addr: String,
        /// Health entry to check: "" (the default) is the whole replica — NOT_SERVING while
        /// its Raft core has stopped, no leader is known or, on the leader, no quorum answers;
        /// "medmesh.liveness" is NOT_SERVING only when the Raft core has stopped (for liveness
        /// probes); a service name such as "medmesh.v1.HospitalService" checks that service.
        #[arg(long, default_value = "")]
        service: String,
        /// TLS (a certificate is optional: health needs none).
        #[command(flatten)]
        tls: ClientTls,
    },
}

/// Arenas glibc's malloc may keep in a replica (`MALLOC_ARENA_MAX`).
const MALLOC_ARENAS: &str = "2";

/// Bounds glibc's malloc arenas of a replica: `medmesh node` without `MALLOC_ARENA_MAX` (or
/// `GLIBC_TUNABLES`) in its environment executes itself again with `MALLOC_ARENA_MAX=2`, same
/// process id, same arguments, before any thread starts.
///
/// Why: glibc gives each thread that meets a locked arena a new one, up to eight per core, and
/// each keeps the memory it once held. A replica's tokio workers, RocksDB's background threads
/// and the blocking pool settle claims on many threads, so under load resident memory was 300
/// to 360 MiB a replica at 200,000 claims, of which RocksDB held about 95 MiB (its cache and
/// memtables, bounded in config); with two arenas it stays near 250 MiB at the same rate
/// (BENCHMARKS.md, "Where resident memory goes"). glibc reads the variable only when the
/// process starts, and setting it in-process needs `mallopt`, which is `unsafe` (forbidden in
/// this workspace), hence the exec. An operator's own value is kept.
fn bound_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        let node = std::env::args_os().nth(1).is_some_and(|a| a == "node");
        let set = std::env::var_os("MALLOC_ARENA_MAX").is_some() || std::env::var_os("GLIBC_TUNABLES").is_some();
        if node && !set {
            if let Ok(exe) = std::env::current_exe() {
                let err = std::process::Command::new(exe)
                    .args(std::env::args_os().skip(1))
                    .env("MALLOC_ARENA_MAX", MALLOC_ARENAS)
                    .exec();
                // Only reached when the exec failed: run on with glibc's defaults.
                eprintln!("medmesh: could not execute itself again with MALLOC_ARENA_MAX={MALLOC_ARENAS}: {err}");
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    bound_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Node { config, parent_pid, insecure } => {
            let mut cfg = NodeConfig::load(config.as_deref())?;
            if insecure {
                cfg.insecure = true;
            }
            let _telemetry = telemetry::init(&format!("medmesh-{}-{}", cfg.province, cfg.id))?;
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            server::run(cfg, async move {
                let orphaned = async {
                    match parent_pid {
                        Some(pid) => dev::parent_gone(pid).await,
                        None => std::future::pending().await,
                    }
                };
                let why = tokio::select! {
                    _ = tokio::signal::ctrl_c() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                    _ = orphaned => "the parent process ended",
                };
                tracing::info!(reason = why, "stopping");
                // Graceful shutdown waits for open calls; never longer than this.
                tokio::spawn(async {
                    tokio::time::sleep(STOP_GRACE).await;
                    tracing::error!("still running {STOP_GRACE:?} after the stop request; exiting");
                    std::process::exit(1);
                });
            })
            .await
        }
        Cmd::Dev { provinces, base_port, data_dir, persons, insecure } => {
            let _telemetry = telemetry::init("medmesh-dev")?;
            dev::run(dev::DevOptions { provinces, base_port, data_dir, persons, insecure }).await
        }
        Cmd::Pki { cmd: PkiCmd::Issue { dir, identity, hosts } } => {
            let identity = Identity::parse(&identity).map_err(|e| anyhow::anyhow!("--identity: {e}"))?;
            let files = Pki::open_or_create(&dir)?.ensure(&identity, &hosts)?;
            println!(
                "{identity}: --cacert {} --cert {} --key {}",
                files.ca.display(),
                files.cert.display(),
                files.key.display()
            );
            Ok(())
        }
        Cmd::Pki { cmd: PkiCmd::SealKey { out } } => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let key = medmesh_seal::SealKey::generate().map_err(|e| anyhow::anyhow!("seal key: {e}"))?;
            let mut f = std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(&out)
                .map_err(|e| anyhow::anyhow!("--out {}: {e}", out.display()))?;
            f.write_all(key.as_bytes())?;
            println!("seal key written to {}", out.display());
            Ok(())
        }
        Cmd::Dashboard { cmd: DashboardCmd::HashPassword } => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = line.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                anyhow::bail!("password: an empty line; give the password on standard input");
            }
            println!("{}", medmesh_node::dashboard::auth::hash_password(password)?);
            Ok(())
        }
        Cmd::Pki { cmd: PkiCmd::Fingerprint { cert } } => {
            let text = std::fs::read_to_string(&cert)?;
            println!("{}", pki::fingerprint_of_pem(&text)?);
            Ok(())
        }
        Cmd::LoadDemo { addr, province, persons, file_for, tls } => {
            let transport = tls.transport()?;
            medmesh_node::demo::load(network::channel(&addr, &transport)?, &province, persons)
                .await
                .map_err(|s| anyhow::anyhow!("{addr}: {}", s.message()))?;
            println!("demo data of {province} loaded through {addr}");
            if !file_for.is_empty() {
                medmesh_node::demo::file(network::channel(&addr, &transport)?, &province, persons, &file_for)
                    .await
                    .map_err(|s| anyhow::anyhow!("{addr}: filing: {}", s.message()))?;
                println!("demo persons of {province} filed for care in {}", file_for.join(", "));
            }
            Ok(())
        }
        Cmd::Audit { cmd: AuditCmd::Verify { province, addr, data_dir, federation, tls } } => {
            use medmesh_node::audit;
            let code =
                medmesh_types::ProvinceCode::new(province.clone()).map_err(|e| anyhow::anyhow!("--province: {e}"))?;
            let anchors_from = federation.or_else(|| addr.clone());
            let anchors = match &anchors_from {
                Some(a) => audit::anchors(network::channel(a, &tls.transport()?)?, &code).await,
                None => Ok(Vec::new()),
            };
            let result = match anchors {
                Err(e) => Err(e),
                Ok(anchors) => match (&addr, &data_dir) {
                    (Some(a), _) => audit::verify_online(network::channel(a, &tls.transport()?)?, &anchors).await,
                    (None, Some(d)) => audit::verify_offline(d, &province, &anchors).await,
                    (None, None) => anyhow::bail!("--addr or --data-dir: say where the chain is"),
                },
            };
            match result {
                Ok(v) => {
                    let head = v.head.map(|h| format!("entry {} {}", h.seq, h.hash)).unwrap_or_else(|| "empty".into());
                    println!(
                        "audit chain of {province}: {} entries verified (head {head}); {} anchors match{}",
                        v.entries,
                        v.anchors,
                        if anchors_from.is_none() { " (no federation asked)" } else { "" }
                    );
                    Ok(())
                }
                Err(e) => {
                    eprintln!("audit chain of {province}: NOT VERIFIED: {e}");
                    std::process::exit(1);
                }
            }
        }
        Cmd::Cluster { cmd } => match cmd {
            ClusterCmd::Status { addr, output, tls } => {
                let s = cli::status(&addr, &tls.transport()?).await;
                print!("{}", cli::render(&s, output, cli::table));
                if !s.replicas.iter().any(|r| r.state == "Leader") {
                    anyhow::bail!("no replica of {addr:?} leads");
                }
                Ok(())
            }
            ClusterCmd::AddReplica { addr, id, replica_addr, voter, output, tls } => {
                let c = cli::add_replica(&addr, &tls.transport()?, id, &replica_addr, voter).await?;
                print!("{}", cli::render(&c, output, |c| format!("{}\n", c.message)));
                Ok(())
            }
            ClusterCmd::Snapshot { addr, output, tls } => {
                let c = cli::snapshot(&addr, &tls.transport()?).await?;
                print!("{}", cli::render(&c, output, |c| format!("{}\n", c.message)));
                Ok(())
            }
            ClusterCmd::RemoveReplica { addr, id, output, tls } => {
                let c = cli::remove_replica(&addr, &tls.transport()?, id).await?;
                print!("{}", cli::render(&c, output, |c| format!("{}\n", c.message)));
                Ok(())
            }
        },
        Cmd::Rules { cmd } => match cmd {
            RulesCmd::Load { addr, file, output, tls } => {
                let text =
                    std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("--file {}: {e}", file.display()))?;
                let rules = cli::ops::parse_rules(&text)?;
                let loaded = cli::ops::load_rules(&addr, &tls.transport()?, rules).await?;
                print!("{}", cli::render(&loaded, output, cli::ops::rules_table));
                Ok(())
            }
            RulesCmd::Shipped => {
                print!("{}", cli::ops::shipped_rules_json());
                Ok(())
            }
        },
        Cmd::Clearing { cmd } => match cmd {
            ClearingCmd::Run { addr, month, output, tls } => {
                let v = cli::ops::clearing_run(&addr, &tls.transport()?, &month).await?;
                print!("{}", cli::render(&v, output, cli::ops::clearing_table));
                Ok(())
            }
            ClearingCmd::Show { addr, month, lines, output, tls } => {
                let v = cli::ops::clearing_show(&addr, &tls.transport()?, &month, lines).await?;
                print!("{}", cli::render(&v, output, cli::ops::clearing_table));
                Ok(())
            }
        },
        Cmd::Inspection { cmd } => match cmd {
            InspectionCmd::Draw { addr, plan_id, nonce, output, tls } => {
                let d = cli::ops::inspection_draw(&addr, &tls.transport()?, &plan_id, &nonce).await?;
                print!("{}", cli::render(&d, output, cli::ops::draw_table));
                Ok(())
            }
        },
        Cmd::Health { addr, service, tls } => {
            let ch = network::channel(&addr, &tls.transport()?)?;
            let mut c = tonic_health::pb::health_client::HealthClient::new(ch);
            let r = tokio::time::timeout(
                Duration::from_secs(3),
                c.check(tonic_health::pb::HealthCheckRequest { service: service.clone() }),
            )
            .await
            .map_err(|_| anyhow::anyhow!("{addr}: no answer within 3s"))??;
            let reason = r.metadata().get(health::REASON_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
            let status = r.into_inner().status;
            let name = tonic_health::pb::health_check_response::ServingStatus::try_from(status)
                .map(|s| s.as_str_name())
                .unwrap_or("UNKNOWN_STATUS");
            let what = if service.is_empty() { addr } else { format!("{addr} {service}") };
            if status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32 {
                println!("{what}: SERVING");
                Ok(())
            } else {
                match reason {
                    Some(reason) => anyhow::bail!("{what}: {name}: {reason}"),
                    None => anyhow::bail!("{what}: {name}"),
                }
            }
        }
    }
}
