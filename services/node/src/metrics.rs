//! Prometheus metrics of a replica (issue 14.5), served as text at `/metrics` on the ops
//! listener (`ops_listen`, plain HTTP: bind it to loopback or an operators' network; it
//! serves nothing but the metrics and `/healthz`).
//!
//! What is measured:
//!
//! - Raft: term, leader, whether this replica leads, last log index, applied index; on the
//!   leader the committed index (what a majority holds) and each follower's lag in entries.
//! - Every rpc the access table admits: a latency histogram and a count by gRPC status code.
//! - Settlements by kind (local, non-local) and outcome (settled, refused), non-local
//!   transfers open, and the aggregates published on request.
//! - Monitoring rule hits at settlement, by rule and action: `block` (the settlement refused)
//!   and `self_pay` (lines moved to the patient's share). Flags settle and become alerts,
//!   counted in the published aggregates (`alerts`) and listed by `AgencyService/ListAlerts`.
//! - The store: what RocksDB holds in memory (memtables, block cache, pinned blocks, table
//!   readers), read at each scrape.
//! - Clearing at the federation: months cleared and settled through this replica, and the
//!   statements' lines of the last month cleared.
//!
//! Why the `prometheus` crate (TiKV's): it is the maintained client with labelled counters,
//! gauges and histograms and the text exposition format, without a global exporter thread or a
//! recorder to install; `axum` (already under tonic) serves the page. Label values come only
//! from fixed sets (the access table's methods, status codes, kinds) and the ids of recorded
//! monitoring rules (national ones and a province's own, at most `MAX_RULES` a province),
//! never from a request, so the number of series is bounded and no identity can reach a label.

use std::sync::OnceLock;
use std::time::Duration;

use medmesh_storage::NodeId;
use openraft::{BasicNode, RaftMetrics};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The replica's metrics.
pub struct Metrics {
    registry: Registry,
    raft_term: IntGauge,
    raft_leader: IntGauge,
    raft_is_leader: IntGauge,
    raft_last_log_index: IntGauge,
    raft_applied_index: IntGauge,
    raft_committed_index: IntGauge,
    raft_lag: IntGaugeVec,
    rpc_seconds: HistogramVec,
    rpc_total: IntCounterVec,
    settlements: IntCounterVec,
    transfers_open: IntGauge,
    aggregates_published: IntCounterVec,
    rule_hits: IntCounterVec,
    clearing: IntCounterVec,
    clearing_lines: IntGauge,
    store_memory: IntGaugeVec,
}

/// Registers `metric` (built from constant, valid names) in `registry` and hands it back.
fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: prometheus::Result<M>) -> M {
    let m = metric.expect("metric names are valid");
    registry.register(Box::new(m.clone())).expect("each metric is registered once");
    m
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    register(registry, IntGauge::new(name, help))
}

fn counters(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels))
}

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let raft_lag = register(
            &registry,
            IntGaugeVec::new(
                Opts::new("medmesh_raft_replication_lag_entries", "On the leader: entries a follower lacks"),
                &["peer"],
            ),
        );
        let rpc_seconds = register(
            &registry,
            HistogramVec::new(
                HistogramOpts::new("medmesh_rpc_duration_seconds", "Time to answer an rpc, by method")
                    .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
                &["method"],
            ),
        );
        let rpc_total = counters(
            &registry,
            "medmesh_rpc_requests_total",
            "Rpcs answered, by method and gRPC status code",
            &["method", "code"],
        );
        let settlements = counters(
            &registry,
            "medmesh_settlements_total",
            "Settle requests answered here, by kind (local, nonlocal; unknown when refused) and outcome (settled, refused)",
            &["kind", "outcome"],
        );
        let aggregates_published = counters(
            &registry,
            "medmesh_aggregates_published_total",
            "Aggregates published on request, by period kind",
            &["period"],
        );
        let rule_hits = counters(
            &registry,
            "medmesh_rule_hits_total",
            "Monitoring rule hits at settlements answered here, by rule and action (block: refused; self_pay: lines moved to the patient's share)",
            &["rule", "action"],
        );
        let clearing = counters(
            &registry,
            "medmesh_clearing_total",
            "Clearing months cleared or settled through this replica, by step",
            &["step"],
        );
        let store_memory = register(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "medmesh_store_memory_bytes",
                    "What RocksDB holds in memory, by part (memtables, block_cache, block_cache_pinned, table_readers)",
                ),
                &["part"],
            ),
        );
        Metrics {
            store_memory,
            clearing_lines: gauge(
                &registry,
                "medmesh_clearing_lines",
                "Lines in the statements of the last month cleared through this replica",
            ),
            rule_hits,
            clearing,
            raft_term: gauge(&registry, "medmesh_raft_term", "The current Raft term"),
            raft_leader: gauge(&registry, "medmesh_raft_leader_id", "The leader's node id (0: none known)"),
            raft_is_leader: gauge(&registry, "medmesh_raft_is_leader", "1 when this replica leads its group"),
            raft_last_log_index: gauge(
                &registry,
                "medmesh_raft_last_log_index",
                "The last index in this replica's log",
            ),
            raft_applied_index: gauge(&registry, "medmesh_raft_applied_index", "The last index applied here"),
            raft_committed_index: gauge(
                &registry,
                "medmesh_raft_committed_index",
                "On the leader: the highest index a majority holds",
            ),
            transfers_open: gauge(
                &registry,
                "medmesh_transfers_open",
                "Non-local transfers this province has open as treatment province (last recovery pass)",
            ),
            raft_lag,
            rpc_seconds,
            rpc_total,
            settlements,
            aggregates_published,
            registry,
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into memory cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Records what the store holds in memory.
    pub fn observe_store(&self, m: &medmesh_storage::StoreMemory) {
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for (part, v) in [
            ("memtables", m.memtables),
            ("block_cache", m.block_cache),
            ("block_cache_pinned", m.block_cache_pinned),
            ("table_readers", m.table_readers),
        ] {
            self.store_memory.with_label_values(&[part]).set(int(v));
        }
    }

    /// Records one Raft metrics snapshot.
    pub fn observe_raft(&self, m: &RaftMetrics<NodeId, BasicNode>) {
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.raft_term.set(int(m.current_term));
        self.raft_leader.set(m.current_leader.map_or(0, int));
        self.raft_is_leader.set(i64::from(m.current_leader == Some(m.id)));
        let last = m.last_log_index.unwrap_or(0);
        self.raft_last_log_index.set(int(last));
        self.raft_applied_index.set(int(m.last_applied.map_or(0, |l| l.index)));
        self.raft_lag.reset();
        for (peer, _, lag) in progress(m) {
            self.raft_lag.with_label_values(&[&peer.to_string()]).set(int(lag));
        }
        // Only the leader knows what a majority holds; 0 elsewhere, never a former leader's.
        self.raft_committed_index.set(int(committed_index(m).unwrap_or(0)));
    }

    /// Records an rpc answered in `took` with gRPC status `code` (0 for OK).
    pub fn rpc(&self, method: &'static str, took: Duration, code: &str) {
        self.rpc_seconds.with_label_values(&[method]).observe(took.as_secs_f64());
        self.rpc_total.with_label_values(&[method, code]).inc();
    }

    /// Records a settle request's outcome; the kind is unknown for a refused request.
    pub fn settlement(&self, nonlocal: Option<bool>, outcome: &'static str) {
        let kind = match nonlocal {
            Some(true) => "nonlocal",
            Some(false) => "local",
            None => "unknown",
        };
        self.settlements.with_label_values(&[kind, outcome]).inc();
    }

    /// Records the number of open transfers.
    pub fn transfers_open(&self, n: usize) {
        self.transfers_open.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Records the monitoring rule hits of a settle request: the rule that refused it (from
    /// its refusal), or the rules that moved lines to the patient's share (from its split).
    pub fn rule_hits(&self, refusal: Option<&tonic::Status>, split: Option<&crate::pb::Split>) {
        if let Some(rule) = refusal.and_then(blocking_rule) {
            self.rule_hits.with_label_values(&[rule, "block"]).inc();
        }
        for line in split.iter().flat_map(|s| s.lines.iter()).filter(|l| !l.rule_id.is_empty()) {
            self.rule_hits.with_label_values(&[line.rule_id.as_str(), "self_pay"]).inc();
        }
    }

    /// Records a clearing step (`cleared` or `settled`) of a month with `lines` lines.
    pub fn clearing(&self, step: &'static str, lines: usize) {
        self.clearing.with_label_values(&[step]).inc();
        if step == "cleared" {
            self.clearing_lines.set(i64::try_from(lines).unwrap_or(i64::MAX));
        }
    }

    /// Records an aggregate published on request.
    pub fn aggregate_published(&self, day: bool) {
        self.aggregates_published.with_label_values(&[if day { "day" } else { "month" }]).inc();
    }
}

/// The rule named by a settlement's refusal by a blocking monitoring rule
/// (`medmesh_state::monitoring`: "refused by monitoring rule {id} v{version}: ...").
pub fn blocking_rule(refusal: &tonic::Status) -> Option<&str> {
    if refusal.code() != tonic::Code::FailedPrecondition {
        return None;
    }
    let rest = refusal.message().split_once("refused by monitoring rule ")?.1;
    rest.split_once(' ').map(|(id, _)| id).filter(|id| !id.is_empty())
}

/// On the leader: each other replica's (id, matched index, lag in entries), by id; empty
/// elsewhere.
pub fn progress(m: &RaftMetrics<NodeId, BasicNode>) -> Vec<(NodeId, u64, u64)> {
    let last = m.last_log_index.unwrap_or(0);
    m.replication
        .iter()
        .flatten()
        .filter(|(peer, _)| **peer != m.id)
        .map(|(peer, log_id)| {
            let at = log_id.map_or(0, |l| l.index);
            (*peer, at, last.saturating_sub(at))
        })
        .collect()
}

/// On the leader: the highest index a majority of voters holds (`None` elsewhere).
pub fn committed_index(m: &RaftMetrics<NodeId, BasicNode>) -> Option<u64> {
    let rep = m.replication.as_ref()?;
    let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
    let matched: Vec<u64> = voters
        .iter()
        .map(|v| {
            if *v == m.id {
                m.last_log_index.unwrap_or(0)
            } else {
                rep.get(v).copied().flatten().map_or(0, |l| l.index)
            }
        })
        .collect();
    Some(committed(matched))
}

/// The index a majority holds, from every voter's matched index (the leader's own included):
/// with `n` voters, the `n/2 + 1`-th highest.
fn committed(mut matched: Vec<u64>) -> u64 {
    matched.sort_unstable_by(|a, b| b.cmp(a));
    matched.get(matched.len() / 2).copied().unwrap_or(0)
}

/// The replica's metrics (one registry per process).
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Serves `/metrics` and `/healthz` on `addr` until `stop` resolves.
pub async fn serve(
    addr: std::net::SocketAddr,
    store: medmesh_storage::StateView,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use axum::routing::get as route;
    let app = axum::Router::new()
        .route(
            "/metrics",
            route(move || async move {
                // The store's memory is read when asked: fresh, and only where someone scrapes.
                get().observe_store(&store.memory());
                ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], get().render())
            }),
        )
        .route("/healthz", route(|| async { "ok\n" }));
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("ops listener {addr}: {e}"))?;
    axum::serve(listener, app).with_graceful_shutdown(stop).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_index_is_what_a_majority_holds() {
        assert_eq!(committed(vec![10, 7, 3]), 7);
        assert_eq!(committed(vec![10, 10, 3]), 10);
        assert_eq!(committed(vec![10, 3, 2, 1, 9]), 3);
        assert_eq!(committed(vec![5]), 5);
        assert_eq!(committed(vec![]), 0);
    }

    #[test]
    fn a_blocking_rule_is_read_from_its_refusal() {
        let refusal = tonic::Status::failed_precondition(
            "visit_serial: refused by monitoring rule AG-CEILING v1: agency rule AG-CEILING",
        );
        assert_eq!(blocking_rule(&refusal), Some("AG-CEILING"));
        assert_eq!(blocking_rule(&tonic::Status::failed_precondition("visit_serial: visit is settled")), None);
        assert_eq!(blocking_rule(&tonic::Status::not_found("refused by monitoring rule X v1: t")), None);
    }

    #[test]
    fn the_page_carries_every_family_with_help_and_type() {
        let m = get();
        m.rpc("/medmesh.v1.HospitalService/Settle", Duration::from_millis(3), "0");
        m.settlement(Some(false), "settled");
        let page = m.render();
        for family in [
            "medmesh_raft_term",
            "medmesh_raft_is_leader",
            "medmesh_rpc_duration_seconds",
            "medmesh_rpc_requests_total",
            "medmesh_settlements_total",
            "medmesh_transfers_open",
        ] {
            assert!(page.contains(&format!("# HELP {family} ")), "{family} in\n{page}");
            assert!(page.contains(&format!("# TYPE {family} ")), "{family} in\n{page}");
        }
        assert!(page.contains(r#"medmesh_settlements_total{kind="local",outcome="settled"} "#), "{page}");
    }
}
