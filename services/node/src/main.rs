//! The `medmesh` binary: `node` runs one replica, `dev` runs a local mesh, `health` checks an
//! endpoint.

#![allow(clippy::result_large_err)] // tonic::Status is the gRPC error type

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use medmesh_node::{config::NodeConfig, dev, health, network, server, telemetry};

/// Longest a replica takes to stop once asked.
const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(name = "medmesh", version, about = "Settles and supervises medical security funds across provinces")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
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
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Node { config, parent_pid } => {
            let cfg = NodeConfig::load(config.as_deref())?;
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
        Cmd::Dev { provinces, base_port, data_dir, persons } => {
            let _telemetry = telemetry::init("medmesh-dev")?;
            dev::run(dev::DevOptions { provinces, base_port, data_dir, persons }).await
        }
        Cmd::LoadDemo { addr, province, persons, file_for } => {
            medmesh_node::demo::load(network::channel(&addr)?, &province, persons)
                .await
                .map_err(|s| anyhow::anyhow!("{addr}: {}", s.message()))?;
            println!("demo data of {province} loaded through {addr}");
            if !file_for.is_empty() {
                medmesh_node::demo::file(network::channel(&addr)?, &province, persons, &file_for)
                    .await
                    .map_err(|s| anyhow::anyhow!("{addr}: filing: {}", s.message()))?;
                println!("demo persons of {province} filed for care in {}", file_for.join(", "));
            }
            Ok(())
        }
        Cmd::Health { addr, service } => {
            let ch = network::channel(&addr)?;
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
