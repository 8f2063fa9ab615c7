//! The protocol buffers this crate speaks, compiled from `proto/` at build time, and the one
//! service that routes each gRPC call to the service it names.

use std::convert::Infallible;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::server::NamedService;

/// Terraform's plugin protocol, version 6.10 (`proto/tfplugin6.proto`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod tfplugin6 {
    tonic::include_proto!("tfplugin6");
}

/// go-plugin's controller and stdio services (`proto/go_plugin.proto`).
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod go_plugin {
    tonic::include_proto!("plugin");
}

type BoxFuture =
    std::pin::Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

/// One route: a gRPC service and the name its calls carry as the first path segment.
trait Route: Send + Sync {
    fn name(&self) -> &'static str;
    fn call(&self, request: http::Request<Body>) -> BoxFuture;
}

/// A generated tonic service, as [`Routes::with`] takes it.
pub trait GrpcService:
    tower_service::Service<
        http::Request<Body>,
        Response = http::Response<Body>,
        Error = Infallible,
        Future: Send + 'static,
    > + NamedService
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> GrpcService for S where
    S: tower_service::Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = Infallible,
            Future: Send + 'static,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static
{
}

struct Named<S>(S);

impl<S: GrpcService> Route for Named<S> {
    fn name(&self) -> &'static str {
        S::NAME
    }

    fn call(&self, request: http::Request<Body>) -> BoxFuture {
        let mut service = self.0.clone();
        Box::pin(service.call(request))
    }
}

/// Routes `/{service}/{method}` calls to the services added with [`Routes::with`]; anything else is
/// answered with gRPC status `UNIMPLEMENTED`, as a gRPC server must. This is all the routing a
/// plugin needs, without a web framework in the provider's dependency tree.
#[derive(Clone, Default)]
pub struct Routes {
    routes: std::sync::Arc<Vec<std::sync::Arc<dyn Route>>>,
}

impl Routes {
    /// Adds a generated tonic service.
    #[must_use]
    pub fn with<S: GrpcService>(self, service: S) -> Self {
        let mut routes = Vec::clone(&self.routes);
        routes.push(std::sync::Arc::new(Named(service)));
        Self { routes: std::sync::Arc::new(routes) }
    }

    fn find(&self, path: &str) -> Option<&dyn Route> {
        let service = path.strip_prefix('/')?.split('/').next()?;
        self.routes.iter().find(|r| r.name() == service).map(AsRef::as_ref)
    }
}

impl tower_service::Service<http::Request<Body>> for Routes {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> BoxFuture {
        match self.find(request.uri().path()) {
            Some(route) => route.call(request),
            None => {
                let why = format!("no service for {}", request.uri().path());
                let response = tonic::Status::unimplemented(why).into_http();
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_routed_by_their_first_path_segment() {
        let routes = Routes::default()
            .with(go_plugin::grpc_controller_server::GrpcControllerServer::new(Nothing));
        assert!(routes.find("/plugin.GRPCController/Shutdown").is_some());
        assert!(routes.find("/plugin.GRPCStdio/StreamStdio").is_none());
        assert!(routes.find("/tfplugin6.Provider/GetProviderSchema").is_none());
        assert!(routes.find("").is_none());
    }

    #[tokio::test]
    async fn an_unknown_service_is_unimplemented() {
        use tower_service::Service as _;
        let mut routes = Routes::default();
        let request =
            http::Request::builder().uri("/nope.Service/Call").body(Body::empty()).unwrap();
        let response = routes.call(request).await.unwrap();
        assert_eq!(response.headers().get("grpc-status").unwrap(), "12");
    }

    #[derive(Clone)]
    struct Nothing;

    #[tonic::async_trait]
    impl go_plugin::grpc_controller_server::GrpcController for Nothing {
        async fn shutdown(
            &self,
            _r: tonic::Request<go_plugin::Empty>,
        ) -> Result<tonic::Response<go_plugin::Empty>, tonic::Status> {
            Ok(tonic::Response::new(go_plugin::Empty {}))
        }
    }
}
