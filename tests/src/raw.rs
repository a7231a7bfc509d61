//! Raw gRPC calls: message bodies sent and received as bytes, exactly as given, so tests can
//! send what no generated client would (malformed or mutated protobuf).

use std::time::Duration;

use bytes::{Buf, BufMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::Status;

/// Sends and receives message bodies as raw bytes.
#[derive(Default)]
pub struct RawCodec;

pub struct Raw;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Calls `path` over `channel` with `body` as the request message.
pub async fn call(channel: Channel, path: &'static str, body: Vec<u8>) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    tokio::time::timeout(Duration::from_secs(10), async {
        grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
        grpc.unary(tonic::Request::new(body), PathAndQuery::from_static(path), RawCodec).await
    })
    .await
    .expect("an answer within 10 s")
    .map(|r| r.into_inner())
}
