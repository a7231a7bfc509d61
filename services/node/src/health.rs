//! gRPC health that tells the truth: a task watches the Raft metrics and sets the overall
//! service (`""`) and every public service NOT_SERVING while the replica cannot serve — the
//! Raft core has stopped (a storage error stops it), no leader is known, or, on the leader, no
//! quorum has acknowledged it lately — and SERVING again when that passes. Each transition is
//! logged with its reason; the reason also travels to clients in the `medmesh-health-reason`
//! response header (see [`WithReason`]), which `medmesh health` prints.
//!
//! [`LIVENESS`] is a separate health entry that is NOT_SERVING only when the Raft core has
//! stopped: restarting the process can fix that, but not a lost quorum.

use std::time::Duration;

use medmesh_storage::{NodeId, TypeConfig};
use openraft::{BasicNode, Raft, RaftMetrics};
use tokio::sync::watch;
use tonic::body::Body;
use tonic::codegen::http;

use crate::map_response::MapResponse;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

/// Response header carrying why a replica does not serve (absent while it serves).
pub const REASON_HEADER: &str = "medmesh-health-reason";

/// Health entry for liveness probes: NOT_SERVING only when the Raft core has stopped.
pub const LIVENESS: &str = "medmesh.liveness";

/// How often the task re-reads the metrics even when they did not change.
const POLL: Duration = Duration::from_millis(250);

/// Why a replica cannot serve: the reason, and whether a restart could help (the core stopped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhealthy {
    /// Human-readable reason, stable while the condition lasts (no counters in it).
    pub reason: String,
    /// The Raft core has stopped: this process will not recover by itself.
    pub core_stopped: bool,
}

impl Unhealthy {
    fn new(reason: impl Into<String>, core_stopped: bool) -> Unhealthy {
        Unhealthy { reason: reason.into(), core_stopped }
    }
}

/// How long a follower may not hear from its leader before it counts as having none: one and
/// a half leases (`lease`, the longest election timeout), the earliest its group would begin an
/// election.
pub fn silent_leader_limit(lease: Duration) -> Duration {
    lease * 3 / 2
}

/// Judges one metrics snapshot: `None` when the replica can serve. A leader counts as healthy
/// while a quorum has acknowledged it within `quorum_ack_limit`; a follower while it has heard
/// from its leader (`leader_silent` ago) within [`silent_leader_limit`]. (A follower cut off
/// from the others keeps the leader it knew: the pre-vote, see `App::guard_elections`, keeps it
/// from campaigning.)
pub fn assess(
    m: &RaftMetrics<NodeId, BasicNode>,
    quorum_ack_limit: Duration,
    leader_silent: Duration,
) -> Option<Unhealthy> {
    if let Err(fatal) = &m.running_state {
        return Some(Unhealthy::new(format!("raft core stopped: {fatal}"), true));
    }
    let limit = quorum_ack_limit.as_millis() as u64;
    match m.current_leader {
        None => Some(Unhealthy::new("no leader known", false)),
        Some(leader) if leader == m.id => match m.millis_since_quorum_ack {
            Some(ms) if ms <= limit => None,
            Some(_) => Some(Unhealthy::new(
                format!("leader without a quorum: no majority acknowledged it for more than {limit} ms"),
                false,
            )),
            None => Some(Unhealthy::new("leader not yet acknowledged by a quorum", false)),
        },
        Some(_) if leader_silent > silent_leader_limit(quorum_ack_limit) => Some(Unhealthy::new(
            format!(
                "no leader known: the leader has not been heard from for more than {} ms",
                silent_leader_limit(quorum_ack_limit).as_millis()
            ),
            false,
        )),
        Some(_) => None,
    }
}

/// Sets every entry in `services` (and `""`) NOT_SERVING now, then keeps them in step with the
/// Raft state from a background task. Returns the current reason (`None` while serving).
pub async fn start(
    raft: Raft<TypeConfig>,
    reporter: HealthReporter,
    services: Vec<&'static str>,
    quorum_ack_limit: Duration,
    leader_silent: impl Fn() -> Duration + Send + 'static,
) -> watch::Receiver<Option<String>> {
    let starting = Unhealthy::new("starting", false);
    apply(&reporter, &services, Some(&starting)).await;
    let (tx, rx) = watch::channel(Some(starting.reason.clone()));
    tokio::spawn(async move {
        let mut metrics = raft.metrics();
        let mut tick = tokio::time::interval(POLL);
        let mut last = Some(starting);
        loop {
            let closed = tokio::select! {
                r = metrics.changed() => r.is_err(),
                _ = tick.tick() => false,
            };
            let now = if closed {
                Some(Unhealthy::new("raft core stopped", true))
            } else {
                let m = metrics.borrow_and_update();
                crate::metrics::get().observe_raft(&m);
                assess(&m, quorum_ack_limit, leader_silent())
            };
            if now != last {
                match &now {
                    Some(u) => tracing::warn!(reason = %u.reason, "health: NOT_SERVING"),
                    None => {
                        tracing::info!(was = last.as_ref().map(|u| u.reason.as_str()).unwrap_or(""), "health: SERVING")
                    }
                }
                apply(&reporter, &services, now.as_ref()).await;
                let _ = tx.send(now.as_ref().map(|u| u.reason.clone()));
                last = now;
            }
            if closed {
                return;
            }
        }
    });
    rx
}

async fn apply(reporter: &HealthReporter, services: &[&'static str], state: Option<&Unhealthy>) {
    let status = if state.is_some() { ServingStatus::NotServing } else { ServingStatus::Serving };
    for s in std::iter::once(&"").chain(services) {
        reporter.set_service_status(*s, status).await;
    }
    let live = if state.is_some_and(|u| u.core_stopped) { ServingStatus::NotServing } else { ServingStatus::Serving };
    reporter.set_service_status(LIVENESS, live).await;
}

/// Wraps the health service so that every answer carries [`REASON_HEADER`] while the replica
/// does not serve; `reason` as returned by [`start`].
pub fn with_reason<S>(
    inner: S,
    reason: watch::Receiver<Option<String>>,
) -> MapResponse<S, impl Fn(http::Response<Body>) -> http::Response<Body> + Clone + Send + Sync + 'static> {
    MapResponse::new(inner, move |mut resp: http::Response<Body>| {
        if let Some(value) = reason.borrow().as_deref().and_then(header_value) {
            resp.headers_mut().insert(REASON_HEADER, value);
        }
        resp
    })
}

/// A header value: printable ASCII only, other characters replaced by `?`.
fn header_value(s: &str) -> Option<http::HeaderValue> {
    let clean: String = s.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect();
    http::HeaderValue::from_str(&clean).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::error::Fatal;

    fn metrics(id: NodeId, leader: Option<NodeId>, ack: Option<u64>) -> RaftMetrics<NodeId, BasicNode> {
        let mut m = RaftMetrics::new_initial(id);
        m.current_leader = leader;
        m.millis_since_quorum_ack = ack;
        m
    }

    const LIMIT: Duration = Duration::from_millis(1500);

    #[test]
    fn a_follower_that_knows_its_leader_serves() {
        assert_eq!(assess(&metrics(2, Some(1), None), LIMIT, Duration::ZERO), None);
    }

    #[test]
    fn a_follower_whose_leader_fell_silent_does_not_serve() {
        assert_eq!(assess(&metrics(2, Some(1), None), LIMIT, Duration::from_millis(2250)), None);
        let u = assess(&metrics(2, Some(1), None), LIMIT, Duration::from_millis(2251)).expect("not serving");
        assert!(u.reason.starts_with("no leader known"), "{}", u.reason);
        assert_eq!(assess(&metrics(2, Some(1), None), LIMIT, Duration::from_secs(60)), Some(u), "the reason is stable");
    }

    #[test]
    fn a_leader_acknowledged_lately_serves() {
        assert_eq!(assess(&metrics(1, Some(1), Some(150)), LIMIT, Duration::ZERO), None);
        assert_eq!(assess(&metrics(1, Some(1), Some(1500)), LIMIT, Duration::ZERO), None);
    }

    #[test]
    fn no_leader_is_not_serving() {
        let u = assess(&metrics(2, None, None), LIMIT, Duration::ZERO).expect("not serving");
        assert_eq!(u.reason, "no leader known");
        assert!(!u.core_stopped);
    }

    #[test]
    fn a_leader_without_quorum_is_not_serving() {
        let u = assess(&metrics(1, Some(1), Some(1501)), LIMIT, Duration::ZERO).expect("not serving");
        assert!(u.reason.starts_with("leader without a quorum"), "{}", u.reason);
        assert_eq!(assess(&metrics(1, Some(1), Some(60_000)), LIMIT, Duration::ZERO), Some(u), "the reason is stable");
        assert!(assess(&metrics(1, Some(1), None), LIMIT, Duration::ZERO).is_some());
    }

    #[test]
    fn a_stopped_core_is_not_serving_even_with_a_leader() {
        let mut m = metrics(2, Some(1), None);
        m.running_state = Err(Fatal::Stopped);
        let u = assess(&m, LIMIT, Duration::ZERO).expect("not serving");
        assert!(u.reason.starts_with("raft core stopped"), "{}", u.reason);
        assert!(u.core_stopped);
    }

    #[test]
    fn reasons_become_valid_header_values() {
        assert_eq!(header_value("no leader known").unwrap(), "no leader known");
        assert_eq!(header_value("disk\nfull ü").unwrap(), "disk?full ?");
    }
}
