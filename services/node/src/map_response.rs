//! One wrapper for gRPC services whose answers pass through a function before they leave the
//! replica (the health reason header, the contract's statuses). tonic's router needs each
//! service to keep its `NamedService` name, which tower's own `MapResponse` does not carry.

use std::convert::Infallible;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::NamedService;

/// `inner`, with every response passed through `map`.
#[derive(Clone)]
pub struct MapResponse<S, F> {
    inner: S,
    map: F,
}

impl<S, F> MapResponse<S, F> {
    /// Wraps `inner`.
    pub fn new(inner: S, map: F) -> MapResponse<S, F> {
        MapResponse { inner, map }
    }
}

impl<S: NamedService, F> NamedService for MapResponse<S, F> {
    const NAME: &'static str = S::NAME;
}

impl<S, F> tonic::codegen::Service<http::Request<Body>> for MapResponse<S, F>
where
    S: tonic::codegen::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
    F: Fn(http::Response<Body>) -> http::Response<Body> + Clone + Send + Sync + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = tonic::codegen::BoxFuture<http::Response<Body>, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let fut = self.inner.call(req);
        let map = self.map.clone();
        Box::pin(async move { Ok(map(fut.await?)) })
    }
}
