//! openraft's network over tonic: one lazily connected channel per peer, shared by every
//! client openraft asks for.

use medmesh_storage::{NodeId, TypeConfig};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

use crate::pb::raft_service_client::RaftServiceClient;
use crate::pb::{Payload, RaftServiceAppendEntriesRequest, RaftServiceInstallSnapshotRequest, RaftServiceVoteRequest};
use crate::pki::Transport;

/// Largest gRPC message a replica accepts; snapshot chunks are kept well below it.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Opens a lazily connected channel to a replica at `addr` (`host:port`): over mTLS with the
/// transport's certificate (the server must present a certificate for `host` signed by the
/// CA), or in plaintext for an `--insecure` run.
pub fn channel(addr: &str, transport: &Transport) -> Result<Channel, tonic::transport::Error> {
    channel_with_keepalive(addr, transport, std::time::Duration::from_secs(5), std::time::Duration::from_secs(5))
}

/// [`channel`] with HTTP/2 pings every `interval`, the connection closed (and the calls on it
/// failed UNAVAILABLE) when a ping is not answered within `timeout`: how soon a caller notices
/// a replica cut off by a partition, whose connection otherwise hangs silently.
pub fn channel_with_keepalive(
    addr: &str,
    transport: &Transport,
    interval: std::time::Duration,
    timeout: std::time::Duration,
) -> Result<Channel, tonic::transport::Error> {
    let endpoint = match transport {
        Transport::Tls(tls) => Endpoint::from_shared(format!("https://{addr}"))?.tls_config(tls.client())?,
        Transport::Insecure => Endpoint::from_shared(format!("http://{addr}"))?,
    };
    Ok(endpoint
        .connect_timeout(std::time::Duration::from_millis(500))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(interval)
        .keep_alive_timeout(timeout)
        .connect_lazy())
}

/// A Raft client to a replica.
pub fn raft_client(ch: Channel) -> RaftServiceClient<Channel> {
    RaftServiceClient::new(ch).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE)
}

/// Creates [`Network`]s for openraft; peers are reached with the replica's own certificate.
///
/// openraft 0.9 asks for a new client not only per replication stream and election but for
/// every follower on every linearizable read (`ensure_linearizable`). A new channel per client
/// meant a new TCP connection and mTLS handshake per read and follower, which under load took
/// most of a leader's CPU and made the confirmations miss their deadline (BENCHMARKS.md, "Where
/// the time goes"). So the factory keeps one channel per peer address and hands out clones:
/// requests multiplex over the channel's HTTP/2 connection, which tonic re-establishes by
/// itself after it breaks.
#[derive(Clone)]
pub struct NetworkFactory {
    transport: Transport,
    channels: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, Channel>>>,
}

impl NetworkFactory {
    /// A factory whose peers are reached through `transport`.
    pub fn new(transport: Transport) -> NetworkFactory {
        NetworkFactory { transport, channels: Default::default() }
    }

    /// The channel to `addr`: the one made before, or a new one (`None` for an address that
    /// is not `host:port`).
    fn channel(&self, addr: &str) -> Option<Channel> {
        let mut channels = self.channels.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = channels.get(addr) {
            return Some(c.clone());
        }
        let c = channel(addr, &self.transport).ok()?;
        channels.insert(addr.to_string(), c.clone());
        Some(c)
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = Network;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Network {
        Network { target, client: self.channel(&node.addr).map(raft_client) }
    }
}

/// A connection to one peer.
pub struct Network {
    target: NodeId,
    client: Option<RaftServiceClient<Channel>>,
}

fn enc<T: Serialize, P: Payload>(v: &T, ttl: std::time::Duration) -> tonic::Request<P> {
    let mut request = tonic::Request::new(P::wrap(bincode::serialize(v).expect("raft messages encode")));
    request.set_timeout(ttl);
    request
}

impl Network {
    async fn call<Req, Resp, E>(
        &mut self,
        kind: &'static str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let Some(client) = self.client.as_mut() else {
            return Err(RPCError::Unreachable(Unreachable::new(&std::io::Error::other("bad peer address"))));
        };
        let ttl = option.hard_ttl();
        let reply = match kind {
            "append" => client
                .append_entries(enc::<_, RaftServiceAppendEntriesRequest>(req, ttl))
                .await
                .map(|r| r.into_inner().data()),
            "vote" => client.vote(enc::<_, RaftServiceVoteRequest>(req, ttl)).await.map(|r| r.into_inner().data()),
            _ => client
                .install_snapshot(enc::<_, RaftServiceInstallSnapshotRequest>(req, ttl))
                .await
                .map(|r| r.into_inner().data()),
        };
        let reply = reply.map_err(|s| match s.code() {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                RPCError::Unreachable(Unreachable::new(&s))
            }
            _ => RPCError::Network(NetworkError::new(&s)),
        })?;
        let res: Result<Resp, RaftError<NodeId, E>> =
            bincode::deserialize(&reply).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// The pauses before openraft sends to a follower again after a call to it failed or timed
/// out: 50 ms, doubling up to 500 ms (openraft's default is 500 ms from the first failure).
///
/// openraft 0.9 gives every AppendEntries call the heartbeat interval (100 ms by default) as
/// its timeout. Under load a call carrying a full batch can take longer, and with the default
/// backoff the follower then received nothing for half a second; with both followers so, the
/// leader lost its majority and every proposal waited. A dead peer still costs little: one
/// attempt per 500 ms once the pauses have grown.
pub fn backoff() -> openraft::network::Backoff {
    openraft::network::Backoff::new(std::iter::successors(Some(std::time::Duration::from_millis(50)), |d| {
        Some((*d * 2).min(std::time::Duration::from_millis(500)))
    }))
}

impl RaftNetwork<TypeConfig> for Network {
    fn backoff(&self) -> openraft::network::Backoff {
        backoff()
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call("append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        self.call("snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call("vote", &rpc, &option).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn the_backoff_grows_from_50_ms_to_500_ms_and_stays() {
        let pauses: Vec<Duration> = super::backoff().take(1_000).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(&pauses[..6], &[ms(50), ms(100), ms(200), ms(400), ms(500), ms(500)]);
        assert!(pauses[6..].iter().all(|p| *p == ms(500)));
    }
}
