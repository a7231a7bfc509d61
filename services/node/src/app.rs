//! One replica: the Raft handle, the state view, the proposal batcher and leader forwarding.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use medmesh_state::audit::Origin;
use medmesh_state::{run_query, Answer, Batch, Command, CommandResult, Query};
use medmesh_storage::{NodeId, StateView, TypeConfig};
use medmesh_types::LogTime;
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::Raft;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch, Mutex, Semaphore};
use tonic::transport::Channel;
use tonic::Status;
use tracing::Instrument;

use crate::clock::{now_ms, offset_from_round_trip, GroupClock};
use crate::network::{channel, raft_client};
use crate::pb::raft_service_client::RaftServiceClient;
use crate::pb::{ClockRequest, Payload, RaftServiceProposeRequest, RaftServiceQueryRequest};

/// Most commands in one Raft entry.
pub const MAX_BATCH: usize = 512;
/// Most entries proposed and not yet committed at once.
pub const MAX_IN_FLIGHT: usize = 8;
/// How long a request may wait for a leader before it gets UNAVAILABLE.
pub const LEADER_WAIT: Duration = Duration::from_secs(10);
/// How long a leader keeps asking its followers to confirm a read index before a read is
/// UNAVAILABLE (see [`App::query_local`]): well below the mesh's call timeout, so a caller from
/// another group still hears UNAVAILABLE from a deposed leader in time to try the next replica.
pub const QUORUM_WAIT: Duration = Duration::from_secs(1);

/// How often the leadership watch re-reads the Raft metrics when they did not change (an
/// isolated leader's time since its last quorum acknowledgement grows without a change).
const LEADERSHIP_POLL: Duration = Duration::from_millis(100);

/// Exit code of a replica process whose storage failed (`EX_TEMPFAIL`): a supervisor restarts
/// it, and it serves again once the disk has room (or is replaced).
pub const EXIT_STORAGE_FAILURE: i32 = 75;

/// Why a replica could not take a proposal or query itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardError {
    /// This replica is not the leader.
    NotLeader,
    /// The group cannot serve (stopped, storage failure).
    Unavailable(String),
}

type Reply = Result<CommandResult, ForwardError>;
type Proposal = (Stamped, oneshot::Sender<Reply>);
/// What a read-index round answers (see [`read_rounds`]).
type ReadIndex = Result<(), RaftError<NodeId, CheckIsLeaderError<NodeId, openraft::BasicNode>>>;

/// A command with who asked for it (kept in the audit chain); what a follower forwards to its
/// leader.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Stamped {
    /// Who asked.
    pub origin: Origin,
    /// The command.
    pub command: Command,
}

/// A running replica.
pub struct App {
    /// Raft node id.
    pub id: NodeId,
    /// Province served.
    pub province: String,
    /// This replica's gRPC address.
    pub addr: String,
    /// The Raft handle.
    pub raft: Raft<TypeConfig>,
    /// Committed state.
    pub view: StateView,
    /// The group's clock as this replica measures it.
    pub clock: Arc<GroupClock>,
    /// How this replica reaches others (its own certificate).
    pub transport: crate::pki::Transport,
    proposals: mpsc::Sender<Proposal>,
    reads: mpsc::Sender<oneshot::Sender<ReadIndex>>,
    peers: Mutex<BTreeMap<String, RaftServiceClient<Channel>>>,
    leadership: watch::Receiver<Leadership>,
    lease: Duration,
    /// When this replica last accepted entries or a heartbeat from a leader, in milliseconds
    /// since `started` (see [`App::leader_silent`]).
    heard_leader_ms: AtomicU64,
    started: Instant,
    elections_allowed: AtomicBool,
}

/// Who leads as this replica sees it, and whether this replica leads without a majority: what
/// requests in flight wait on (see [`watch_leadership`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Leadership {
    leader: Option<NodeId>,
    /// This replica leads, but no majority has acknowledged it for longer than the lease.
    alone: bool,
}

impl App {
    /// Wraps a started Raft node and starts its batcher.
    pub fn new(
        id: NodeId,
        province: String,
        addr: String,
        raft: Raft<TypeConfig>,
        view: StateView,
        transport: crate::pki::Transport,
        lease: Duration,
    ) -> Arc<App> {
        let (tx, rx) = mpsc::channel(MAX_BATCH * MAX_IN_FLIGHT * 2);
        let clock = Arc::new(GroupClock::default());
        tokio::spawn(batcher(raft.clone(), rx, clock.clone()));
        let (reads, waiting) = mpsc::channel(MAX_BATCH * MAX_IN_FLIGHT * 2);
        tokio::spawn(read_rounds(raft.clone(), waiting));
        tokio::spawn(exit_on_storage_failure(raft.clone()));
        let (leading, leadership) = watch::channel(Leadership { leader: None, alone: false });
        tokio::spawn(watch_leadership(raft.clone(), lease, leading));
        let app = Arc::new(App {
            id,
            province,
            addr,
            raft,
            view,
            clock,
            transport,
            proposals: tx,
            reads,
            peers: Mutex::new(BTreeMap::new()),
            leadership,
            lease,
            heard_leader_ms: AtomicU64::new(0),
            started: Instant::now(),
            elections_allowed: AtomicBool::new(true),
        });
        tokio::spawn(keep_time(Arc::downgrade(&app)));
        tokio::spawn(pre_vote(Arc::downgrade(&app)));
        app
    }

    /// On the leader: measures the other voters' clocks, and proposes empty entries while the
    /// group's time lags the stamp by more than half of `MAX_CLOCK_STEP_MS` (see
    /// [`crate::clock`]).
    async fn keep_group_time(&self) {
        if self.leader().map(|(id, _)| id) != Some(self.id) {
            return;
        }
        let voters: Vec<(NodeId, String)> = self.voters().into_iter().filter(|(id, _)| *id != self.id).collect();
        self.clock.retain(&voters.iter().map(|(id, _)| *id).collect::<Vec<_>>());
        for (id, addr) in voters {
            let Ok(mut c) = self.peer(&addr).await else { continue };
            let sent = now_ms();
            let reply = tokio::time::timeout(Duration::from_millis(500), c.clock(ClockRequest {})).await;
            if let Ok(Ok(r)) = reply {
                self.clock.record(id, offset_from_round_trip(sent, r.into_inner().now_ms, now_ms()));
            }
        }
        for _ in 0..1_000 {
            let group: Option<LogTime> = medmesh_state::load(&self.view, medmesh_state::keys::TIME);
            let stamp = self.clock.stamp();
            if group.is_some_and(|g| stamp.millis() - g.millis() <= medmesh_state::MAX_CLOCK_STEP_MS / 2) {
                return;
            }
            if let Err(e) =
                self.raft.client_write(Batch { time: stamp, commands: Vec::new(), origins: Vec::new() }).await
            {
                tracing::debug!(error = %e, "time entry not written");
                return;
            }
        }
    }

    /// Whether this follower is cut off: its leader silent for longer than a group takes to
    /// begin an election, and the pre-vote found no majority without a leader either (so the
    /// others either hear a leader this replica cannot reach, or do not answer it).
    fn follower_cut_off(&self) -> bool {
        self.leader_silent() > crate::health::silent_leader_limit(self.lease)
            && !self.elections_allowed.load(Ordering::Relaxed)
    }

    /// Notes that a leader's entries or heartbeat were accepted just now.
    pub fn heard_from_leader(&self) {
        self.heard_leader_ms.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// How long since this replica last heard from a leader (zero while it leads).
    pub fn leader_silent(&self) -> Duration {
        if self.leadership.borrow().leader == Some(self.id) {
            return Duration::ZERO;
        }
        let heard = Duration::from_millis(self.heard_leader_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(heard)
    }

    /// The pre-vote (see `RaftService.Clock` in the proto): allows this replica's elections
    /// only while a majority of the voters, itself included, has not heard from a leader for
    /// the shortest election timeout. openraft 0.9 has no pre-vote of its own: a follower cut
    /// off from the group would start election after election, each with a higher term, and on
    /// its return the leader would see that term and step down. Here it cannot reach a
    /// majority, so it never campaigns.
    async fn guard_elections(&self) {
        if self.raft.metrics().borrow().state == openraft::ServerState::Leader {
            return;
        }
        let voters = self.voters();
        if !voters.iter().any(|(id, _)| *id == self.id) {
            return;
        }
        let timeout = self.lease / 2;
        let mut allowed = false;
        if self.leader_silent() >= timeout {
            let asks = voters.iter().filter(|(id, _)| *id != self.id).map(|(_, addr)| async move {
                let mut c = self.peer(addr).await.ok()?;
                let r = tokio::time::timeout(Duration::from_millis(250), c.clock(ClockRequest {})).await.ok()?.ok()?;
                Some(r.into_inner().leader_silent_ms >= timeout.as_millis() as u64)
            });
            let granted = futures::future::join_all(asks).await.into_iter().filter(|g| *g == Some(true)).count();
            allowed = (granted + 1) * 2 > voters.len();
        }
        if self.elections_allowed.swap(allowed, Ordering::Relaxed) != allowed {
            tracing::info!(allowed, "pre-vote: elections {}", if allowed { "allowed" } else { "held back" });
        }
        self.raft.runtime_config().elect(allowed);
    }

    /// The group's voters (this replica too, if it votes) with their addresses.
    fn voters(&self) -> Vec<(NodeId, String)> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let mem = m.membership_config.membership();
        mem.voter_ids().filter_map(|id| mem.get_node(&id).map(|n| (id, n.addr.clone()))).collect()
    }

    /// The current leader's id and address, if known.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        // Borrowed, not cloned: every request asks (the metrics hold the whole membership).
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let id = m.current_leader?;
        let addr = m.membership_config.membership().get_node(&id)?.addr.clone();
        Some((id, addr))
    }

    async fn peer(&self, addr: &str) -> Result<RaftServiceClient<Channel>, Status> {
        let mut peers = self.peers.lock().await;
        if let Some(c) = peers.get(addr) {
            return Ok(c.clone());
        }
        let c = raft_client(
            channel(addr, &self.transport).map_err(|e| Status::unavailable(format!("leader address {addr}: {e}")))?,
        );
        peers.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// Who asks for what this task proposes: the caller of the request being served (set by
    /// the access guard), or this replica itself for its background work.
    pub fn origin(&self) -> Origin {
        crate::access::ORIGIN
            .try_with(Origin::clone)
            .unwrap_or_else(|_| Origin::new(format!("medmesh://replica/{}/{}", self.province, self.id), "background"))
    }

    /// Proposes a command through the leader (locally or forwarded) and waits for it to be
    /// committed on a majority and applied. Retrying is safe: every command is idempotent.
    pub async fn propose(&self, cmd: impl Into<Command>) -> Result<CommandResult, Status> {
        let command = cmd.into();
        let span = tracing::info_span!("propose", command = command.kind());
        self.on_leader(Stamped { origin: self.origin(), command }).instrument(span).await
    }

    /// Proposes on this replica only, for this task's caller (a proposal from another group).
    pub async fn propose_local(&self, cmd: impl Into<Command>) -> Reply {
        self.propose_stamped(Stamped { origin: self.origin(), command: cmd.into() }).await
    }

    /// Proposes on this replica only (a proposal a follower forwarded, with its origin).
    ///
    /// On a leader the wait ends early when this replica stops leading (NOT leader: the caller
    /// sends it to the new leader) or leads without a majority for longer than its lease
    /// (UNAVAILABLE: a leader cut off by a partition answers at once instead of holding the
    /// call until the caller's timeout). Either way the outcome is unknown and the command is
    /// idempotent, so sending it again is safe.
    pub async fn propose_stamped(&self, cmd: Stamped) -> Reply {
        let mut leadership = self.leadership.clone();
        let leading = {
            let now = leadership.borrow_and_update();
            if now.leader == Some(self.id) && now.alone {
                return Err(self.leader_cut_off());
            }
            now.leader == Some(self.id)
        };
        let (tx, rx) = oneshot::channel();
        if self.proposals.send((cmd, tx)).await.is_err() {
            return Err(ForwardError::Unavailable("replica is shutting down".into()));
        }
        let reply =
            async { rx.await.unwrap_or_else(|_| Err(ForwardError::Unavailable("replica is shutting down".into()))) };
        if !leading {
            return reply.await;
        }
        tokio::select! {
            r = reply => r,
            lost = lost_leadership(&mut leadership, self.id) => Err(match lost {
                Lost::Deposed => ForwardError::NotLeader,
                Lost::Alone => self.leader_cut_off(),
            }),
        }
    }

    /// What a leader without a majority answers.
    fn leader_cut_off(&self) -> ForwardError {
        ForwardError::Unavailable(format!(
            "replica {} leads but no majority has answered it for over {} ms (cut off?); the outcome is unknown, retry with the same serial at another replica",
            self.id,
            self.lease.as_millis()
        ))
    }

    /// Runs a linearizable query on the leader (locally or forwarded).
    #[tracing::instrument(skip_all, fields(query = q.kind()))]
    pub async fn query(&self, q: Query) -> Result<Result<Answer, medmesh_state::DomainError>, Status> {
        self.on_leader(q).await
    }

    /// Runs `req` on the leader: here when this replica leads, forwarded otherwise, following
    /// leadership changes until [`LEADER_WAIT`] has passed.
    async fn on_leader<R: OnLeader>(&self, req: R) -> Result<R::Out, Status> {
        let deadline = Instant::now() + LEADER_WAIT;
        let mut last = String::from("no leader elected");
        loop {
            match self.leader() {
                Some((id, _)) if id == self.id => match req.clone().run_local(self).await {
                    Ok(r) => return Ok(r),
                    Err(ForwardError::NotLeader) => last = "leadership changed".into(),
                    Err(ForwardError::Unavailable(m)) => return Err(Status::unavailable(m)),
                },
                Some(_) if self.follower_cut_off() => {
                    return Err(Status::unavailable(format!(
                        "replica {} has not heard from a leader for over {} ms and no majority of its group answers it (cut off?){}",
                        self.id,
                        crate::health::silent_leader_limit(self.lease).as_millis(),
                        R::ON_TIMEOUT
                    )))
                }
                Some((leader, addr)) => {
                    let mut c = self.peer(&addr).await?;
                    let data = bincode::serialize(&req).expect("requests encode");
                    let mut leadership = self.leadership.clone();
                    leadership.mark_changed();
                    // A leader that died or was cut off never answers: stop waiting for it as
                    // soon as this replica sees another leader elected (or an election begin),
                    // and send the request there (it is idempotent).
                    let reply = tokio::select! {
                        r = R::send(&mut c, data) => Some(r),
                        _ = leader_changes(&mut leadership, leader) => None,
                    };
                    match reply {
                        None => last = format!("leader {addr} replaced while the request was on its way"),
                        Some(Ok(r)) => match bincode::deserialize::<Result<R::Out, ForwardError>>(&r) {
                            Ok(Ok(r)) => return Ok(r),
                            Ok(Err(ForwardError::NotLeader)) => last = format!("{addr} is no longer leader"),
                            Ok(Err(ForwardError::Unavailable(m))) => return Err(Status::unavailable(m)),
                            Err(e) => return Err(Status::internal(format!("bad reply from leader: {e}"))),
                        },
                        Some(Err(s)) => last = format!("leader {addr} unreachable: {}", s.message()),
                    }
                }
                None => {}
            }
            if Instant::now() > deadline {
                return Err(Status::unavailable(format!("{last}{}", R::ON_TIMEOUT)));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Confirms this replica leads and waits until it applied what was committed when the
    /// request arrived: a read-index round (see [`read_rounds`]) begun after this call.
    async fn read_index(&self) -> ReadIndex {
        let (tx, rx) = oneshot::channel();
        let stopped = || RaftError::Fatal(openraft::error::Fatal::Stopped);
        self.reads.send(tx).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Runs a query on this replica after confirming leadership and applying up to the read
    /// index.
    ///
    /// A leader that has not heard from a quorum in this round (just elected, or its followers
    /// slow to answer on a loaded machine) asks again with a growing pause for up to
    /// [`QUORUM_WAIT`]; only a leader still cut off from a majority after that is UNAVAILABLE.
    pub async fn query_local(&self, q: Query) -> QueryReply {
        let deadline = Instant::now() + QUORUM_WAIT;
        let mut pause = Duration::from_millis(20);
        loop {
            match self.read_index().await {
                Ok(()) => break,
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_))) => {
                    return Err(ForwardError::NotLeader)
                }
                Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e))) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "read index without a quorum; asking again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(RaftError::APIError(e)) => return Err(ForwardError::Unavailable(e.to_string())),
                Err(RaftError::Fatal(f)) => return Err(ForwardError::Unavailable(f.to_string())),
            }
        }
        let view = self.view.clone();
        tokio::task::spawn_blocking(move || run_query(&view, &q))
            .await
            .map_err(|e| ForwardError::Unavailable(e.to_string()))
    }
}

/// A request that runs on the leader.
trait OnLeader: Serialize + Clone + Send + Sync {
    /// What it produces.
    type Out: serde::de::DeserializeOwned + Send;
    /// Appended to the UNAVAILABLE message when no leader answered in time.
    const ON_TIMEOUT: &'static str;
    /// Runs it on this replica, which believes it leads.
    async fn run_local(self, app: &App) -> Result<Self::Out, ForwardError>;
    /// Forwards it to the leader.
    async fn send(c: &mut RaftServiceClient<Channel>, data: Vec<u8>) -> Result<Vec<u8>, Status>;
}

impl OnLeader for Stamped {
    type Out = CommandResult;
    const ON_TIMEOUT: &'static str = "; the outcome is unknown, retry with the same serial";
    async fn run_local(self, app: &App) -> Reply {
        app.propose_stamped(self).await
    }
    async fn send(c: &mut RaftServiceClient<Channel>, data: Vec<u8>) -> Result<Vec<u8>, Status> {
        c.propose(RaftServiceProposeRequest::wrap(data)).await.map(|r| r.into_inner().data())
    }
}

impl OnLeader for Query {
    type Out = Result<Answer, medmesh_state::DomainError>;
    const ON_TIMEOUT: &'static str = "";
    async fn run_local(self, app: &App) -> QueryReply {
        app.query_local(self).await
    }
    async fn send(c: &mut RaftServiceClient<Channel>, data: Vec<u8>) -> Result<Vec<u8>, Status> {
        c.query(RaftServiceQueryRequest::wrap(data)).await.map(|r| r.into_inner().data())
    }
}

/// How a leader stopped being one that can serve.
enum Lost {
    /// Another replica leads, or an election began.
    Deposed,
    /// No majority acknowledged it for longer than the lease.
    Alone,
}

/// Resolves when replica `me`, leading now, stops leading or is left alone.
async fn lost_leadership(leadership: &mut watch::Receiver<Leadership>, me: NodeId) -> Lost {
    loop {
        let now = *leadership.borrow_and_update();
        if now.leader != Some(me) {
            return Lost::Deposed;
        }
        if now.alone {
            return Lost::Alone;
        }
        if leadership.changed().await.is_err() {
            return Lost::Deposed;
        }
    }
}

/// Resolves when this replica no longer sees `leader` as the leader (never, once the watch
/// has stopped: the request's own answer or failure ends the wait then).
async fn leader_changes(leadership: &mut watch::Receiver<Leadership>, leader: NodeId) {
    loop {
        if leadership.changed().await.is_err() {
            return std::future::pending().await;
        }
        if leadership.borrow_and_update().leader != Some(leader) {
            return;
        }
    }
}

/// Publishes [`Leadership`] from the Raft metrics, waking waiters only when it changes.
async fn watch_leadership(raft: Raft<TypeConfig>, lease: Duration, tx: watch::Sender<Leadership>) {
    let mut metrics = raft.metrics();
    let mut tick = tokio::time::interval(LEADERSHIP_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let lease = lease.as_millis() as u64;
    loop {
        let now = {
            let m = metrics.borrow_and_update();
            Leadership {
                leader: m.current_leader,
                alone: m.current_leader == Some(m.id) && m.millis_since_quorum_ack.is_some_and(|ms| ms > lease),
            }
        };
        tx.send_if_modified(|l| {
            let changed = *l != now;
            *l = now;
            changed
        });
        let closed = tokio::select! {
            r = metrics.changed() => r.is_err(),
            _ = tick.tick() => false,
        };
        if closed {
            // The core stopped: nothing leads here any more.
            tx.send_replace(Leadership { leader: None, alone: false });
            return;
        }
    }
}

/// Runs the pre-vote while the replica lives (see [`App::guard_elections`]).
async fn pre_vote(app: std::sync::Weak<App>) {
    let every = match app.upgrade() {
        Some(a) => a.lease / 6,
        None => return,
    };
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(20)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(app) = app.upgrade() else { return };
        app.guard_elections().await;
    }
}

/// Keeps the group's time while the replica lives (see [`App::keep_group_time`]).
async fn keep_time(app: std::sync::Weak<App>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(app) = app.upgrade() else { return };
        app.keep_group_time().await;
    }
}

/// Reply to a forwarded query.
pub type QueryReply = Result<Result<Answer, medmesh_state::DomainError>, ForwardError>;

/// Ends the process when the Raft core stops on a storage error (disk full, failed fsync, a
/// corrupt file) or a panic. openraft stops the core for good on such an error: the replica no
/// longer acknowledges or applies anything, and nothing it acknowledged is lost (a log append
/// is acknowledged only after its fsync succeeded). A restart is the way back — RocksDB
/// recovers from its synced WAL and the leader catches the replica up — so the process exits
/// with [`EXIT_STORAGE_FAILURE`] and says why, rather than living on as a replica that answers
/// but cannot serve. Clients waiting on it got UNAVAILABLE with the storage error; clients of
/// other replicas are not affected while a majority remains.
async fn exit_on_storage_failure(raft: Raft<TypeConfig>) {
    let mut metrics = raft.metrics();
    loop {
        let state = metrics.borrow().running_state.clone();
        match state {
            Ok(()) => {}
            Err(openraft::error::Fatal::Stopped) => return,
            Err(fatal) => {
                let why = format!("raft stopped on a fatal error: {fatal}");
                tracing::error!(error = %fatal, exit_code = EXIT_STORAGE_FAILURE, "storage failure: this replica stops; restart it once the disk is fixed");
                eprintln!("medmesh: {why}; exiting with code {EXIT_STORAGE_FAILURE}");
                std::process::exit(EXIT_STORAGE_FAILURE);
            }
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// Confirms leadership for waiting reads, one round at a time, each round shared by every read
/// that was waiting when it began.
///
/// openraft's `ensure_linearizable` reads the commit index, has a majority acknowledge this
/// leader with an AppendEntries to each follower, and waits until that index is applied. One
/// round per read cost two RPCs per read; under load the rounds crowded out replication. A
/// round begun after a read arrived is as good for it as a round of its own: the commit index
/// it reads includes every write acknowledged before the read arrived, and the majority's
/// acknowledgement comes later still. So each round serves every read queued before it
/// began, and a read arriving during a round waits for the next one.
async fn read_rounds(raft: Raft<TypeConfig>, mut waiting: mpsc::Receiver<oneshot::Sender<ReadIndex>>) {
    while let Some(first) = waiting.recv().await {
        let mut round = vec![first];
        while let Ok(w) = waiting.try_recv() {
            round.push(w);
        }
        let answer = raft.ensure_linearizable().await.map(|_| ());
        for w in round {
            let _ = w.send(answer.clone());
        }
    }
}

/// Collects proposals into batches: one Raft entry carries up to [`MAX_BATCH`] commands, and up
/// to [`MAX_IN_FLIGHT`] entries are in flight, so throughput is not one fsync per command.
async fn batcher(raft: Raft<TypeConfig>, mut rx: mpsc::Receiver<Proposal>, clock: Arc<GroupClock>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let permit = match slots.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => return,
        };
        let mut items = vec![first];
        while items.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => items.push(p),
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        let time = clock.stamp();
        tokio::spawn(async move {
            let (stamped, waiters): (Vec<Stamped>, Vec<_>) = items.into_iter().unzip();
            let (origins, commands) = stamped.into_iter().map(|s| (s.origin, s.command)).unzip();
            let batch = Batch { time, commands, origins };
            match raft.client_write(batch).await {
                Ok(resp) => {
                    for (w, r) in waiters.into_iter().zip(resp.data) {
                        let _ = w.send(Ok(r));
                    }
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                    for w in waiters {
                        let _ = w.send(Err(ForwardError::NotLeader));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "proposal failed");
                    for w in waiters {
                        let _ = w.send(Err(ForwardError::Unavailable(e.to_string())));
                    }
                }
            }
            drop(permit);
        });
    }
}
