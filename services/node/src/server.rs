//! Starts a replica: storage, Raft, and the gRPC server with health (tied to the Raft state,
//! see [`crate::health`]) and reflection.

use std::sync::Arc;

use anyhow::Context;
use openraft::{BasicNode, Config, SnapshotPolicy};
use tonic::server::NamedService;
use tonic::transport::Server;

use crate::access::{guard, Policy};
use crate::api::admin::Admin;
use crate::api::agency::Agency;
use crate::api::disclosure::Disclosure;
use crate::api::federation::Federation;
use crate::api::hospital::Hospital;
use crate::api::mesh::MeshApi;
use crate::api::raft::RaftApi;
use crate::api::reports::Reports;
use crate::app::App;
use crate::config::NodeConfig;
use crate::network::{NetworkFactory, MAX_MESSAGE};
use crate::pb;
use crate::pki::{Tls, Transport};
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
        election_timeout_max: cfg.election_timeout_max().as_millis() as u64,
        // Snapshots are paced by `pace_snapshots` below, by the log's volume as well as its
        // length; openraft's own policy counts entries only.
        snapshot_policy: SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: cfg.snapshot_logs.min(1_000),
        snapshot_max_chunk_size: 1024 * 1024,
        // openraft's timeout for sending a snapshot chunk *and*, for the last one, the
        // receiver installing the whole snapshot before it answers: its 200 ms default expired
        // while a new replica installed a million claims' 5.5 GB (70 s), and the leader sent
        // the snapshot again from the start (BENCHMARKS.md, "A province at a million claims").
        install_snapshot_timeout: 30 * 60 * 1000,
        max_payload_entries: 64,
        ..Default::default()
    }
    .validate()
    .context("raft config")?;

    crate::clock::set_offset_ms(cfg.clock_offset_ms);
    if cfg.clock_offset_ms != 0 {
        tracing::warn!(
            offset_ms = cfg.clock_offset_ms,
            "CLOCK OFFSET: this replica's clock is shifted; for drills and tests of month-end work only"
        );
    }
    let transport = if cfg.insecure {
        tracing::warn!("INSECURE: this replica serves and calls in plaintext and checks no identity; never use this outside a throwaway local run");
        eprintln!("medmesh: WARNING: --insecure: plaintext, no identities, every rpc open to anyone");
        Transport::Insecure
    } else {
        let tls = Tls::load(&cfg.tls_ca, Some((&cfg.tls_cert, &cfg.tls_key))).context("tls")?;
        check_own_certificate(&cfg)?;
        Transport::Tls(Arc::new(tls))
    };
    let (log, sm) =
        medmesh_storage::open_with(&cfg.data_dir, medmesh_state::Role::of_province(&cfg.province), cfg.store_options())
            .await
            .map_err(|e| anyhow::anyhow!("opening storage: {e}"))?;
    let view = sm.view();
    let volume = log.volume();
    let raft = openraft::Raft::new(cfg.id, Arc::new(raft_config), NetworkFactory::new(transport.clone()), log, sm)
        .await
        .map_err(|e| anyhow::anyhow!("starting raft: {e}"))?;
    let store = view.clone();
    tokio::spawn(pace_snapshots(raft.clone(), volume, cfg.data_dir.clone(), cfg.snapshot_logs));
    let app = App::new(
        cfg.id,
        cfg.province.clone(),
        cfg.internal_advertised().to_string(),
        raft.clone(),
        view,
        transport.clone(),
        cfg.election_timeout_max(),
    );

    let peers = cfg.peer_map()?;
    let endpoints = cfg.public_endpoints();
    let province =
        medmesh_types::ProvinceCode::new(cfg.province.clone()).map_err(|e| anyhow::anyhow!("province: {e}"))?;
    let seal = if cfg.is_federation() {
        None
    } else {
        let text = std::fs::read_to_string(&cfg.seal_key)
            .with_context(|| format!("seal_key: reading {}", cfg.seal_key.display()))?;
        Some(Arc::new(medmesh_seal::SealKey::parse(&text).map_err(|e| anyhow::anyhow!("seal_key: {e}"))?))
    };
    let mesh = Arc::new(crate::mesh::Mesh::new(
        app.clone(),
        province.clone(),
        cfg.federation.clone(),
        cfg.directory_secret.clone(),
        endpoints,
        seal,
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
            <pb::disclosure_service_server::DisclosureServiceServer<Disclosure> as NamedService>::NAME,
            <pb::report_service_server::ReportServiceServer<Reports> as NamedService>::NAME,
        ],
        // A leader no majority answered for longer is alone.
        cfg.election_timeout_max(),
        {
            let app = Arc::downgrade(&app);
            move || app.upgrade().map(|a| a.leader_silent()).unwrap_or_default()
        },
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
    let internal: std::net::SocketAddr = cfg.internal_listen.parse().context("internal_listen")?;
    let policy = Arc::new(Policy::new(province.clone(), cfg.tls_deny.iter().cloned().collect(), cfg.insecure));
    let server = || -> anyhow::Result<Server> {
        let mut server = Server::builder();
        if let Transport::Tls(tls) = &transport {
            server = server.tls_config(tls.server()?).context("tls listener")?;
        }
        Ok(server)
    };
    tracing::info!(id = cfg.id, province = %cfg.province, %addr, %internal, tls = !cfg.insecure, "replica serving");
    // One shutdown signal for both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let public = server()?
        .add_service(guard(crate::health::with_reason(health_service.clone(), health_reason.clone()), policy.clone()))
        .add_service(guard(reflection_v1, policy.clone()))
        .add_service(guard(reflection_v1alpha, policy.clone()))
        .add_service(guard(
            contract_status(
                pb::hospital_service_server::HospitalServiceServer::new(Hospital { mesh: mesh.clone() })
                    .max_decoding_message_size(MAX_API_MESSAGE),
                MAX_API_MESSAGE,
            ),
            policy.clone(),
        ))
        .add_service(guard(
            contract_status(
                pb::agency_service_server::AgencyServiceServer::new(Agency { mesh: mesh.clone() })
                    .max_decoding_message_size(MAX_API_MESSAGE),
                MAX_API_MESSAGE,
            ),
            policy.clone(),
        ))
        .add_service(guard(
            contract_status(
                pb::federation_service_server::FederationServiceServer::new(Federation { mesh: mesh.clone() })
                    .max_decoding_message_size(MAX_API_MESSAGE),
                MAX_API_MESSAGE,
            ),
            policy.clone(),
        ))
        .add_service(guard(
            contract_status(
                pb::disclosure_service_server::DisclosureServiceServer::new(Disclosure { mesh: mesh.clone() })
                    .max_decoding_message_size(MAX_API_MESSAGE),
                MAX_API_MESSAGE,
            ),
            policy.clone(),
        ))
        .add_service(guard(
            contract_status(
                pb::report_service_server::ReportServiceServer::new(Reports { mesh: mesh.clone() })
                    .max_decoding_message_size(MAX_API_MESSAGE),
                MAX_API_MESSAGE,
            ),
            policy.clone(),
        ))
        .add_service(guard(
            pb::mesh_service_server::MeshServiceServer::new(MeshApi { mesh: mesh.clone() })
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            policy.clone(),
        ))
        .serve_with_shutdown(addr, stopped(stop_rx.clone()));
    let internal = server()?
        .add_service(guard(crate::health::with_reason(health_service, health_reason), policy.clone()))
        .add_service(guard(
            pb::raft_service_server::RaftServiceServer::new(RaftApi { app: app.clone() })
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            policy.clone(),
        ))
        .add_service(guard(
            pb::admin_service_server::AdminServiceServer::new(Admin { app: app.clone() }),
            policy.clone(),
        ))
        .serve_with_shutdown(internal, stopped(stop_rx.clone()));
    let ops = cfg.ops_listen.clone();
    let ops_stop = stopped(stop_rx.clone());
    let ops = async move {
        if ops.is_empty() {
            return Ok(());
        }
        let addr: std::net::SocketAddr = ops.parse().context("ops_listen")?;
        tracing::info!(%addr, "ops listener serving /metrics");
        crate::metrics::serve(addr, store, ops_stop).await
    };
    let http = cfg.http_listen.clone();
    let http_tls = match &transport {
        Transport::Tls(_) if !http.is_empty() => {
            Some(crate::gateway::tls_config(&cfg.tls_ca, &cfg.tls_cert, &cfg.tls_key).context("http_listen")?)
        }
        _ => None,
    };
    let http_stop = stopped(stop_rx.clone());
    let dashboard = if cfg.dashboard_users.as_os_str().is_empty() {
        None
    } else {
        let users = crate::dashboard::auth::load_users(&cfg.dashboard_users).context("dashboard_users")?;
        tracing::info!(users = users.len(), "dashboard on /dashboard/ of the HTTP listener");
        Some(Arc::new(crate::dashboard::Dashboard::new(
            users,
            mesh.clone(),
            policy.clone(),
            http_tls.is_some(),
            cfg.dashboard_risk_months,
        )))
    };
    let gateway = Arc::new(crate::gateway::Gateway::new(Hospital { mesh: mesh.clone() }, policy.clone(), dashboard));
    let http = async move {
        if http.is_empty() {
            return Ok(());
        }
        let addr: std::net::SocketAddr = http.parse().context("http_listen")?;
        crate::gateway::serve(addr, http_tls, gateway, http_stop).await
    };
    let served = tokio::try_join!(
        async { public.await.context("public grpc listener") },
        async { internal.await.context("internal grpc listener") },
        ops,
        http
    );
    let _ = raft.shutdown().await;
    served.map(|_| ())
}

/// Refuses to start with a certificate that does not name this replica: a replica's
/// certificate is its identity to its peers and to the other groups.
fn check_own_certificate(cfg: &NodeConfig) -> anyhow::Result<()> {
    let pem = std::fs::read(&cfg.tls_cert).with_context(|| format!("reading {}", cfg.tls_cert.display()))?;
    let (_, parsed) = x509_parser::pem::parse_x509_pem(&pem).map_err(|e| anyhow::anyhow!("tls_cert: {e}"))?;
    let id = crate::identity::Identity::from_der(&parsed.contents).map_err(|e| anyhow::anyhow!("tls_cert: {e}"))?;
    let want = crate::identity::Identity::Replica {
        group: medmesh_types::ProvinceCode::new(cfg.province.clone()).map_err(|e| anyhow::anyhow!("province: {e}"))?,
        id: cfg.id,
    };
    if id != want {
        anyhow::bail!("tls_cert: names {id}, but this replica is {want}");
    }
    Ok(())
}

/// Has this replica build a snapshot (which purges the log it covers) when
/// [`medmesh_storage::snapshot_due`] says so, looking whenever Raft's metrics change (the
/// snapshot's size is read only when a new snapshot appears). openraft ignores a trigger while
/// a build runs, so a long build is never started twice; this asks again at most once a second
/// until a new snapshot appears.
async fn pace_snapshots(
    raft: openraft::Raft<medmesh_storage::TypeConfig>,
    volume: medmesh_storage::LogVolume,
    data_dir: std::path::PathBuf,
    min_entries: u64,
) {
    let mut metrics = raft.metrics();
    // The snapshot index last seen, its size, and the log volume when it was first seen.
    let (mut seen, mut size, mut mark) = (None, 0, 0);
    let mut asked: Option<std::time::Instant> = None;
    loop {
        let (applied, snapshot) = {
            let m = metrics.borrow_and_update();
            (m.last_applied.map_or(0, |l| l.index), m.snapshot.map_or(0, |l| l.index))
        };
        if seen != Some(snapshot) {
            (seen, size, mark) = (Some(snapshot), medmesh_storage::snapshot_bytes(&data_dir), volume.bytes());
            asked = None;
        }
        let log = volume.bytes().saturating_sub(mark);
        let waiting = asked.is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1));
        if !waiting && medmesh_storage::snapshot_due(applied.saturating_sub(snapshot), log, size, min_entries) {
            if raft.trigger().snapshot().await.is_err() {
                return; // Raft has shut down.
            }
            asked = Some(std::time::Instant::now());
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
