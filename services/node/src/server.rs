//! Starts a replica: storage, Raft, and the gRPC server with health (tied to the Raft state,
//! see [`crate::health`]) and reflection.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use openraft::{BasicNode, Config, SnapshotPolicy};
use tonic::server::NamedService;
use tonic::transport::Server;

use crate::api::admin::Admin;
use crate::api::agency::Agency;
use crate::api::federation::Federation;
use crate::api::hospital::Hospital;
use crate::api::raft::RaftApi;
use crate::app::App;
use crate::config::NodeConfig;
use crate::network::{NetworkFactory, MAX_MESSAGE};
use crate::pb;
use crate::wire_status::contract_status;

/// Largest request the public APIs accept; larger ones get RESOURCE_EXHAUSTED (see
/// [`crate::wire_status`]).
pub const MAX_API_MESSAGE: usize = 4 * 1024 * 1024;

/// Runs a replica until `shutdown` resolves.
pub async fn run(
    cfg: NodeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let raft_config = Config {
        cluster_name: format!("medmesh-{}", cfg.province),
        heartbeat_interval: cfg.heartbeat_ms,
        election_timeout_min: cfg.election_timeout_ms,
        election_timeout_max: cfg.election_timeout_ms * 2,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_logs),
        max_in_snapshot_log_to_keep: cfg.snapshot_logs.min(1_000),
        snapshot_max_chunk_size: 1024 * 1024,
        max_payload_entries: 64,
        ..Default::default()
    }
    .validate()
    .context("raft config")?;

    let (log, sm) = medmesh_storage::open(&cfg.data_dir, medmesh_state::Role::of_province(&cfg.province))
        .await
        .map_err(|e| anyhow::anyhow!("opening storage: {e}"))?;
    let view = sm.view();
    let raft = openraft::Raft::new(cfg.id, Arc::new(raft_config), NetworkFactory, log, sm)
        .await
        .map_err(|e| anyhow::anyhow!("starting raft: {e}"))?;
    let app = App::new(cfg.id, cfg.province.clone(), cfg.advertised().to_string(), raft.clone(), view);

    let peers = cfg.peer_map()?;
    let endpoints: Vec<String> =
        if peers.is_empty() { vec![cfg.advertised().to_string()] } else { peers.values().cloned().collect() };
    let province =
        medmesh_types::ProvinceCode::new(cfg.province.clone()).map_err(|e| anyhow::anyhow!("province: {e}"))?;
    let mesh = Arc::new(crate::mesh::Mesh::new(
        app.clone(),
        province,
        cfg.federation.clone(),
        cfg.directory_secret.clone(),
        endpoints,
    ));
    if cfg.bootstrap && peers.keys().next() == Some(&cfg.id) {
        let fresh = raft.metrics().borrow().last_log_index.is_none();
        if fresh {
            let members = peers
                .iter()
                .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
                .collect::<std::collections::BTreeMap<_, _>>();
            match raft.initialize(members).await {
                Ok(()) => tracing::info!(province = %cfg.province, "group bootstrapped"),
                Err(e) => tracing::info!(error = %e, "bootstrap skipped"),
            }
        }
    }

    let (health, health_service) = tonic_health::server::health_reporter();
    let health_reason = crate::health::start(
        raft.clone(),
        health,
        vec![
            <pb::hospital_service_server::HospitalServiceServer<Hospital> as NamedService>::NAME,
            <pb::agency_service_server::AgencyServiceServer<Agency> as NamedService>::NAME,
            <pb::federation_service_server::FederationServiceServer<Federation> as NamedService>::NAME,
        ],
        // The longest election timeout: a leader no majority answered for longer is alone.
        Duration::from_millis(cfg.election_timeout_ms * 2),
    )
    .await;
    mesh.clone().spawn_background();
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let addr: std::net::SocketAddr = cfg.listen.parse().context("listen")?;
    tracing::info!(id = cfg.id, province = %cfg.province, %addr, "replica serving");
    Server::builder()
        .add_service(crate::health::with_reason(health_service, health_reason))
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(contract_status(
            pb::hospital_service_server::HospitalServiceServer::new(Hospital { mesh: mesh.clone() })
                .max_decoding_message_size(MAX_API_MESSAGE),
            MAX_API_MESSAGE,
        ))
        .add_service(contract_status(
            pb::agency_service_server::AgencyServiceServer::new(Agency { mesh: mesh.clone() })
                .max_decoding_message_size(MAX_API_MESSAGE),
            MAX_API_MESSAGE,
        ))
        .add_service(contract_status(
            pb::federation_service_server::FederationServiceServer::new(Federation { mesh: mesh.clone() })
                .max_decoding_message_size(MAX_API_MESSAGE),
            MAX_API_MESSAGE,
        ))
        .add_service(
            pb::raft_service_server::RaftServiceServer::new(RaftApi { app: app.clone() })
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(pb::admin_service_server::AdminServiceServer::new(Admin { app: app.clone() }))
        .serve_with_shutdown(addr, shutdown)
        .await
        .context("grpc server")?;
    let _ = raft.shutdown().await;
    Ok(())
}
