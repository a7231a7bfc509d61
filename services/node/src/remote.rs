//! Calls into other Raft groups: the federation and other provinces.
//!
//! A call goes to any replica of the group over its public listener's `MeshService`; a
//! replica that is not the leader answers "not leader" and the next one is tried, and a
//! replica slow to answer gets company: the request also goes to the next replica (see
//! [`Remote::call`]). Every command sent is idempotent, so a call whose outcome is unknown
//! (timeout, connection lost) is simply sent again.

use std::collections::BTreeMap;
use std::time::Duration;

use medmesh_state::{
    Answer, Command, CommandResult, DomainError, FederationCommand, ProvinceCommand, ProvinceEntry, Query,
};
use medmesh_types::ProvinceCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Mutex;
use tonic::transport::Channel;
use tonic::Status;

use crate::app::ForwardError;
use crate::pb::mesh_service_client::MeshServiceClient;
use crate::pb::{MeshServiceProposeRequest, MeshServiceQueryRequest, Payload};

/// How long one call to one replica may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// HTTP/2 pings on connections to other groups: every second, and a connection whose ping is
/// not answered within two is closed, failing its calls at once, so a call to a replica cut
/// off by a partition ends within about two seconds instead of waiting out [`CALL_TIMEOUT`].
/// (A shorter call timeout does the same for a partition but abandons slow answers under load,
/// where the retries add load: measured in BENCHMARKS.md.)
pub const PING_EVERY: Duration = Duration::from_secs(1);
/// See [`PING_EVERY`].
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a call waits for an answer before the request also goes to the next replica (see
/// [`Remote::call`]).
pub const HEDGE_AFTER: Duration = Duration::from_millis(300);
/// How long a call keeps sending its request to replicas that answered "not leader" or could
/// not be reached (one copy per [`HEDGE_AFTER`]): longer than an election takes, so a call
/// made while the group's leader is being replaced waits for the new one.
pub const PATIENCE: Duration = Duration::from_secs(3);

/// How long a replica that did not answer in time (or could not be reached) is tried after
/// the others: a leader cut off by a partition costs one timeout per process, not one per call.
pub const SUSPECT_FOR: Duration = Duration::from_secs(5);

/// Clients of the federation and of other provinces.
pub struct Remote {
    transport: crate::pki::Transport,
    federation: Vec<String>,
    provinces: Mutex<BTreeMap<ProvinceCode, Vec<String>>>,
    clients: Mutex<BTreeMap<String, MeshServiceClient<Channel>>>,
    /// The replica of each group that answered last (its leader, most likely): tried first.
    leaders: std::sync::Mutex<BTreeMap<String, String>>,
    /// Replicas that timed out or could not be reached, and when: tried last for
    /// [`SUSPECT_FOR`].
    suspects: std::sync::Mutex<BTreeMap<String, std::time::Instant>>,
}

enum Kind {
    Propose,
    Query,
}

impl Remote {
    /// Clients for a federation at `federation` (replica addresses), reached over `transport`.
    pub fn new(federation: Vec<String>, transport: crate::pki::Transport) -> Remote {
        Remote {
            transport,
            federation,
            provinces: Mutex::default(),
            clients: Mutex::default(),
            leaders: Default::default(),
            suspects: Default::default(),
        }
    }

    /// Whether a federation is configured.
    pub fn has_federation(&self) -> bool {
        !self.federation.is_empty()
    }

    async fn client(&self, addr: &str) -> Result<MeshServiceClient<Channel>, Status> {
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(addr) {
            return Ok(c.clone());
        }
        let c = MeshServiceClient::new(
            crate::network::channel_with_keepalive(addr, &self.transport, PING_EVERY, PING_TIMEOUT)
                .map_err(|e| Status::unavailable(format!("{addr}: {e}")))?,
        )
        .max_decoding_message_size(crate::network::MAX_MESSAGE)
        .max_encoding_message_size(crate::network::MAX_MESSAGE);
        clients.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// Sends `req` to the replicas at `addrs` until the leader answers.
    ///
    /// The replica that answered last goes first. While no answer has come for
    /// [`HEDGE_AFTER`], the request also goes to the next replica (every command is
    /// idempotent, so two copies do no harm): a follower answers "not leader" at once and costs
    /// little, a newly elected leader answers, and a leader that died or was cut off no longer
    /// holds the call until a timeout. Replicas that answered "not leader" or could not be
    /// reached are asked again, one copy per [`HEDGE_AFTER`], for [`PATIENCE`]; the first
    /// answer wins and the copies still in flight are dropped.
    async fn call<Req: Serialize, Out: DeserializeOwned>(
        &self,
        group: &str,
        addrs: &[String],
        kind: Kind,
        req: &Req,
    ) -> Result<Out, Status> {
        if addrs.is_empty() {
            return Err(Status::unavailable(format!("{group}: no endpoints known")));
        }
        let data = bincode::serialize(req).map_err(|e| Status::internal(e.to_string()))?;
        let preferred = self.leaders.lock().ok().and_then(|l| l.get(group).cloned());
        let order = self.order(addrs, preferred.as_ref());
        let mut tries = vec![0u32; order.len()];
        let mut busy = vec![false; order.len()];
        let mut pending = futures::stream::FuturesUnordered::new();
        let mut last = String::new();
        // The first copy goes at once; later ones when the timer fires (see below).
        let hedge = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(hedge);
        let give_up = tokio::time::Instant::now() + PATIENCE;
        // The next replica to send to: not in flight, tried least, first in `order`; none once
        // the patience is spent (but every replica gets its first copy).
        let pick = |tries: &[u32], busy: &[bool]| {
            (0..order.len())
                .filter(|i| !busy[*i] && (tries[*i] == 0 || tokio::time::Instant::now() < give_up))
                .min_by_key(|i| (tries[*i], *i))
        };
        loop {
            tokio::select! {
                Some(answer) = futures::StreamExt::next(&mut pending) => {
                    let (i, reply): (usize, Result<Vec<u8>, Status>) = answer;
                    busy[i] = false;
                    let addr = order[i];
                    match reply {
                        Ok(r) => match bincode::deserialize::<Result<Out, ForwardError>>(&r) {
                            Ok(Ok(out)) => {
                                if let Ok(mut s) = self.suspects.lock() {
                                    s.remove(addr.as_str());
                                }
                                if preferred.as_ref() != Some(addr) {
                                    if let Ok(mut l) = self.leaders.lock() {
                                        l.insert(group.to_string(), addr.clone());
                                    }
                                }
                                return Ok(out);
                            }
                            Ok(Err(ForwardError::NotLeader)) => last = format!("{addr} is not the leader"),
                            Ok(Err(ForwardError::Unavailable(m))) => last = format!("{addr}: {m}"),
                            Err(e) => return Err(Status::internal(format!("{group}: bad reply from {addr}: {e}"))),
                        },
                        Err(s) => {
                            // No answer in time, or no connection: try the others first for a while.
                            if matches!(
                                s.code(),
                                tonic::Code::Cancelled | tonic::Code::DeadlineExceeded | tonic::Code::Unavailable
                            ) {
                                self.suspect(addr);
                            }
                            last = format!("{addr}: {}", s.message())
                        }
                    }
                    if pending.is_empty() {
                        // Nothing in flight: a replica not asked yet goes at once, one asked
                        // before after a pause (an election in progress needs a moment).
                        match pick(&tries, &busy) {
                            Some(j) => {
                                let pause = if tries[j] == 0 { Duration::ZERO } else { HEDGE_AFTER };
                                hedge.as_mut().reset(tokio::time::Instant::now() + pause);
                            }
                            None => break,
                        }
                    }
                }
                () = &mut hedge => {
                    match pick(&tries, &busy) {
                        Some(j) => {
                            busy[j] = true;
                            tries[j] += 1;
                            pending.push(self.send_one(order[j], &kind, &data, j));
                        }
                        None if pending.is_empty() => break,
                        None => {}
                    }
                    hedge.as_mut().reset(tokio::time::Instant::now() + HEDGE_AFTER);
                }
            }
        }
        Err(Status::unavailable(format!("{group} unreachable ({last}); the outcome is unknown, retry")))
    }

    /// Sends one copy of a request to the replica at `addr`; `i` identifies it in the answer.
    async fn send_one(&self, addr: &str, kind: &Kind, data: &[u8], i: usize) -> (usize, Result<Vec<u8>, Status>) {
        let mut c = match self.client(addr).await {
            Ok(c) => c,
            Err(e) => return (i, Err(e)),
        };
        fn request<P: Payload>(data: &[u8]) -> tonic::Request<P> {
            let mut r = tonic::Request::new(P::wrap(data.to_vec()));
            r.set_timeout(CALL_TIMEOUT);
            // The other group's work joins this call's trace.
            crate::telemetry::inject(r.metadata_mut());
            r
        }
        let reply = match kind {
            Kind::Propose => c.propose(request::<MeshServiceProposeRequest>(data)).await.map(|r| r.into_inner().data()),
            Kind::Query => c.query(request::<MeshServiceQueryRequest>(data)).await.map(|r| r.into_inner().data()),
        };
        (i, reply)
    }

    /// The order to try `addrs` in: the replica that answered last first, then the others,
    /// and those suspected of being cut off last (each part in the given order).
    fn order<'a>(&self, addrs: &'a [String], preferred: Option<&String>) -> Vec<&'a String> {
        let suspects = self.suspects.lock().map(|s| s.clone()).unwrap_or_default();
        let suspect = |a: &String| suspects.get(a).is_some_and(|t| t.elapsed() < SUSPECT_FOR);
        let mut order: Vec<&String> = addrs.iter().filter(|a| Some(*a) == preferred && !suspect(a)).collect();
        order.extend(addrs.iter().filter(|a| Some(*a) != preferred && !suspect(a)));
        order.extend(addrs.iter().filter(|a| suspect(a)));
        order
    }

    /// Marks `addr` as not answering in time.
    fn suspect(&self, addr: &str) {
        if let Ok(mut s) = self.suspects.lock() {
            s.insert(addr.to_string(), std::time::Instant::now());
        }
    }

    /// Proposes a command to the federation.
    pub async fn fed_propose(&self, cmd: &FederationCommand) -> Result<CommandResult, Status> {
        self.call("federation", &self.federation, Kind::Propose, &Command::Federation(cmd.clone())).await
    }

    /// Runs a linearizable query on the federation.
    pub async fn fed_query(&self, q: &Query) -> Result<Result<Answer, DomainError>, Status> {
        self.call("federation", &self.federation, Kind::Query, q).await
    }

    async fn endpoints(&self, province: &ProvinceCode, refresh: bool) -> Result<Vec<String>, Status> {
        if !refresh {
            if let Some(e) = self.provinces.lock().await.get(province) {
                return Ok(e.clone());
            }
        }
        match self.fed_query(&Query::ProvinceEndpoints { province: province.clone() }).await? {
            Ok(Answer::Endpoints(list)) => {
                let e: Vec<String> = list.into_iter().flat_map(|e: ProvinceEntry| e.endpoints).collect();
                self.provinces.lock().await.insert(province.clone(), e.clone());
                Ok(e)
            }
            Ok(_) => Err(Status::internal("federation: unexpected answer to a province lookup")),
            Err(e) => Err(Status::unavailable(format!("province {province}: {}", e.message))),
        }
    }

    async fn province_call<Req: Serialize, Out: DeserializeOwned>(
        &self,
        province: &ProvinceCode,
        kind: fn() -> Kind,
        req: &Req,
    ) -> Result<Out, Status> {
        let addrs = self.endpoints(province, false).await?;
        let group = format!("province {province}");
        match self.call(&group, &addrs, kind(), req).await {
            Ok(v) => Ok(v),
            Err(_) => {
                // The province may have moved: read its endpoints again and retry once.
                let addrs = self.endpoints(province, true).await?;
                self.call(&group, &addrs, kind(), req).await
            }
        }
    }

    /// Proposes a command to another province's group.
    pub async fn province_propose(
        &self,
        province: &ProvinceCode,
        cmd: &ProvinceCommand,
    ) -> Result<CommandResult, Status> {
        self.province_call(province, || Kind::Propose, &Command::Province(cmd.clone())).await
    }

    /// Runs a linearizable query on another province's group.
    pub async fn province_query(
        &self,
        province: &ProvinceCode,
        q: &Query,
    ) -> Result<Result<Answer, DomainError>, Status> {
        self.province_call(province, || Kind::Query, q).await
    }
}
