//! Running as a Terraform plugin: the go-plugin handshake, the listener (a unix socket, or TCP on
//! loopback where go-plugin uses it: on Windows), AutoMTLS, the controller and stdio services,
//! graceful shutdown, and the `--debug` reattach mode.

#[cfg(unix)]
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use super::proto::Routes;
use super::proto::tfplugin6::provider_server::ProviderServer;
use futures_util::StreamExt as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
#[cfg(unix)]
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::framework::Provider;
use super::server::PluginService;
use super::tls;

pub use super::proto::go_plugin;

/// The cookie Terraform sets so that a plugin knows it was started by Terraform.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// Its value.
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// The plugin protocol version spoken.
pub const PROTOCOL_VERSION: u32 = 6;
/// go-plugin's own handshake version.
const CORE_PROTOCOL_VERSION: u32 = 1;

/// How the plugin was started.
pub enum Mode {
    /// By Terraform: handshake on stdout.
    Plugin,
    /// By hand with `--debug`: plaintext, prints the `TF_REATTACH_PROVIDERS` value.
    Debug {
        /// The provider's source address, e.g. `registry.terraform.io/example/example`.
        address: String,
    },
}

/// Why serving could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Not started by Terraform, and not in debug mode.
    #[error(
        "this binary is a Terraform plugin; Terraform starts it (run `terraform init` in a \
            configuration that uses it), or run it with --debug"
    )]
    NotAPlugin,
    /// Terraform asked for protocol versions that this plugin does not speak.
    #[error(
        "Terraform offered plugin protocol versions {0:?}; this provider speaks only version 6 \
            (Terraform 1.0 or later)"
    )]
    Protocol(String),
    /// The listener could not be created.
    #[error("cannot listen for Terraform: {0}")]
    Io(#[from] std::io::Error),
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] tls::TlsSetupError),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A 0700 directory for the socket, removed when dropped.
#[cfg(unix)]
struct SocketDir(PathBuf);

#[cfg(unix)]
impl SocketDir {
    fn create() -> std::io::Result<SocketDir> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        for _ in 0..16 {
            let name = format!("tf-plugin-{}-{:08x}", std::process::id(), rand::random::<u32>());
            let dir = base.join(name);
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(SocketDir(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("could not create a unique socket directory"))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

/// Set to `tcp`, the plugin listens on TCP loopback as it does on Windows (ours: it lets the
/// Windows transport be tried on any system).
pub const TRANSPORT_ENV: &str = "TFPLUGIN_TRANSPORT";

/// Where the plugin listens: a unix socket in a private directory, or a TCP port on loopback.
enum Listener {
    #[cfg(unix)]
    Unix(UnixListener, SocketDir),
    Tcp(TcpListener),
}

impl Listener {
    /// A unix socket, except on Windows (or when [`TRANSPORT_ENV`] says `tcp`), where go-plugin's
    /// server listens on the first free TCP port of 127.0.0.1 from `PLUGIN_MIN_PORT` to
    /// `PLUGIN_MAX_PORT` (10000 to 25000 when unset), and Terraform connects there.
    async fn open() -> std::io::Result<Listener> {
        #[cfg(unix)]
        if std::env::var(TRANSPORT_ENV).map_or(true, |t| t != "tcp") {
            let dir = SocketDir::create()?;
            let listener = UnixListener::bind(dir.path().join("plugin.sock"))?;
            return Ok(Listener::Unix(listener, dir));
        }
        let port = |key: &str, default: u16| {
            std::env::var(key).ok().and_then(|p| p.trim().parse::<u16>().ok()).unwrap_or(default)
        };
        let (min, max) = (port("PLUGIN_MIN_PORT", 10000), port("PLUGIN_MAX_PORT", 25000));
        for p in min..=max {
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", p)).await {
                return Ok(Listener::Tcp(listener));
            }
        }
        Err(std::io::Error::other(format!(
            "no free TCP port on 127.0.0.1 from {min} to {max} (PLUGIN_MIN_PORT, PLUGIN_MAX_PORT)"
        )))
    }

    /// go-plugin's network name and address.
    fn address(&self) -> (&'static str, String) {
        match self {
            #[cfg(unix)]
            Listener::Unix(_, dir) => {
                ("unix", dir.path().join("plugin.sock").display().to_string())
            }
            Listener::Tcp(l) => ("tcp", l.local_addr().map(|a| a.to_string()).unwrap_or_default()),
        }
    }
}

/// A listener's connections, one at a time.
trait Accept: Send + Sync + 'static {
    /// A connection Terraform made.
    type Io: AsyncRead + AsyncWrite + tonic::transport::server::Connected + Unpin + Send + 'static;
    fn accept(&self) -> impl std::future::Future<Output = std::io::Result<Self::Io>> + Send;
}

#[cfg(unix)]
impl Accept for UnixListener {
    type Io = tokio::net::UnixStream;
    async fn accept(&self) -> std::io::Result<Self::Io> {
        UnixListener::accept(self).await.map(|(s, _)| s)
    }
}

impl Accept for TcpListener {
    type Io = tokio::net::TcpStream;
    async fn accept(&self) -> std::io::Result<Self::Io> {
        let (s, _) = TcpListener::accept(self).await?;
        // gRPC's small frames must not wait for Nagle's algorithm.
        let _ = s.set_nodelay(true);
        Ok(s)
    }
}

#[cfg(unix)]
impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Controller {
    shutdown: CancellationToken,
}

#[tonic::async_trait]
impl go_plugin::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(
        &self,
        _r: Request<go_plugin::Empty>,
    ) -> Result<Response<go_plugin::Empty>, Status> {
        tracing::debug!("GRPCController.Shutdown: stopping the plugin");
        self.shutdown.cancel();
        Ok(Response::new(go_plugin::Empty {}))
    }
}

struct Stdio {
    shutdown: CancellationToken,
}

type StdioStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<go_plugin::StdioData, Status>> + Send>>;

#[tonic::async_trait]
impl go_plugin::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = StdioStream;
    /// Output is written straight to stderr (which go-plugin already reads), so this stream carries
    /// nothing; it stays open until shutdown, as go-plugin expects.
    async fn stream_stdio(
        &self,
        _r: Request<go_plugin::Empty>,
    ) -> Result<Response<StdioStream>, Status> {
        let token = self.shutdown.clone();
        let stream = futures_util::stream::once(async move {
            token.cancelled().await;
        })
        .filter_map(|()| async { None });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Checks the environment Terraform set up, serves the provider until Terraform shuts it down.
pub async fn serve(provider: Arc<dyn Provider>, mode: Mode) -> Result<(), ServeError> {
    let plugin_mode = matches!(mode, Mode::Plugin);
    if plugin_mode {
        if std::env::var(MAGIC_COOKIE_KEY).ok().as_deref() != Some(MAGIC_COOKIE_VALUE) {
            return Err(ServeError::NotAPlugin);
        }
        if let Ok(versions) = std::env::var("PLUGIN_PROTOCOL_VERSIONS")
            && !versions.is_empty()
            && !versions.split(',').any(|v| v.trim() == PROTOCOL_VERSION.to_string())
        {
            return Err(ServeError::Protocol(versions));
        }
    }

    let listener = Listener::open().await?;
    let shutdown = CancellationToken::new();
    let stop = CancellationToken::new();

    let client_cert = if plugin_mode {
        std::env::var("PLUGIN_CLIENT_CERT").ok().filter(|s| !s.is_empty())
    } else {
        None
    };
    let identity = client_cert.as_ref().map(|_| tls::ServerIdentity::generate()).transpose()?;

    let version = provider.version();
    let service = PluginService::new(provider, stop.clone());
    let routes = Routes::default()
        .with(
            ProviderServer::new(service)
                .max_decoding_message_size(256 * 1024 * 1024)
                .max_encoding_message_size(256 * 1024 * 1024),
        )
        .with(go_plugin::grpc_controller_server::GrpcControllerServer::new(Controller {
            shutdown: shutdown.clone(),
        }))
        .with(go_plugin::grpc_stdio_server::GrpcStdioServer::new(Stdio {
            shutdown: shutdown.clone(),
        }));
    let server = tonic::transport::Server::builder();

    match &mode {
        Mode::Plugin => {
            let cert =
                identity.as_ref().map(tls::ServerIdentity::handshake_cert).unwrap_or_default();
            let (network, at) = listener.address();
            tracing::info!(version, network, address = %at, "serving Terraform");
            write_handshake(&format!(
                "{CORE_PROTOCOL_VERSION}|{PROTOCOL_VERSION}|{network}|{at}|grpc|{cert}\n"
            ))?;
        }
        Mode::Debug { address } => print_reattach(address, listener.address()),
    }

    let signal = shutdown.clone().cancelled_owned();
    tokio::spawn(watch_signals(shutdown.clone(), plugin_mode));
    if plugin_mode {
        tokio::spawn(stop_when_orphaned(shutdown.clone(), stop.clone()));
    }

    let tls_config = match (&identity, &client_cert) {
        (Some(identity), Some(pem)) => Some(Arc::new(tls::server_config(identity, pem)?)),
        _ => None,
    };
    match listener {
        // The socket's folder is removed when `_dir` is dropped, after serving.
        #[cfg(unix)]
        Listener::Unix(l, _dir) => {
            run(server, routes, l, tls_config, shutdown.clone(), signal).await?
        }
        Listener::Tcp(l) => run(server, routes, l, tls_config, shutdown.clone(), signal).await?,
    }
    stop.cancel();
    Ok(())
}

/// Serves on `listener` until `signal`, over TLS when Terraform gave a client certificate.
async fn run<L: Accept>(
    server: tonic::transport::Server,
    routes: Routes,
    listener: L,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
    signal: impl std::future::Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    match tls {
        Some(config) => {
            let incoming = tls_incoming(listener, config, shutdown);
            server.serve_with_incoming_shutdown(routes, incoming, signal).await
        }
        None => {
            let incoming = plain_incoming(listener, shutdown);
            server.serve_with_incoming_shutdown(routes, incoming, signal).await
        }
    }
}

/// SIGTERM shuts the plugin down. Terraform interrupts the whole process group on Ctrl-C and then
/// asks the plugin to stop via StopProvider; SIGINT itself must not kill the plugin before that, so
/// it is ignored unless in debug mode.
#[cfg(unix)]
async fn watch_signals(shutdown: CancellationToken, plugin_mode: bool) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    loop {
        tokio::select! {
            () = received(&mut term) => break,
            () = received(&mut int) => if !plugin_mode { break },
        }
    }
    shutdown.cancel();
}

/// The next delivery of `signal`; never, where it could not be watched.
#[cfg(unix)]
async fn received(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => _ = signal.recv().await,
        None => std::future::pending().await,
    }
}

/// On Windows, Ctrl-C reaches the plugin's console too: it stops the plugin only in debug mode.
#[cfg(not(unix))]
async fn watch_signals(shutdown: CancellationToken, plugin_mode: bool) {
    if plugin_mode {
        return;
    }
    if tokio::signal::ctrl_c().await.is_ok() {
        shutdown.cancel();
    }
}

/// Terraform stops its plugins through `GRPCController.Shutdown`; a Terraform that is killed, or
/// dies on a closed output pipe, stops nothing, and its plugin would run on for good. The plugin
/// then belongs to init (or a subreaper): it stops what it is doing and shuts down, and exits if
/// that does not end.
#[cfg(unix)]
async fn stop_when_orphaned(shutdown: CancellationToken, stop: CancellationToken) {
    let parent = std::os::unix::process::parent_id();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        if std::os::unix::process::parent_id() != parent {
            break;
        }
    }
    tracing::warn!(
        terraform_pid = parent,
        "Terraform exited without stopping the provider: stopping"
    );
    stop.cancel();
    shutdown.cancel();
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    std::process::exit(1);
}

/// Where a process has no parent id to watch (Windows), the plugin relies on Terraform's shutdown.
#[cfg(not(unix))]
async fn stop_when_orphaned(_shutdown: CancellationToken, _stop: CancellationToken) {}

/// Accepts connections and completes TLS handshakes concurrently, logging and dropping failed ones.
fn tls_incoming<L: Accept>(
    listener: L,
    config: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
) -> tokio_stream::wrappers::ReceiverStream<
    Result<tokio_rustls::server::TlsStream<L::Io>, std::io::Error>,
> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Some(stream) = next_connection(&listener, &shutdown).await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match acceptor.accept(stream).await {
                    Ok(tls) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "refused a plugin connection: TLS handshake \
                            failed")
                    }
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Passes connections on as they come (debug mode, and a Terraform that asks for no TLS).
fn plain_incoming<L: Accept>(
    listener: L,
    shutdown: CancellationToken,
) -> tokio_stream::wrappers::ReceiverStream<Result<L::Io, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Some(stream) = next_connection(&listener, &shutdown).await {
            if tx.send(Ok(stream)).await.is_err() {
                break;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// The next connection, `None` once the plugin shuts down; failed accepts are logged and skipped.
async fn next_connection<L: Accept>(listener: &L, shutdown: &CancellationToken) -> Option<L::Io> {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(stream) => return Some(stream),
                Err(e) => tracing::warn!(error = %e, "accepting a plugin connection failed"),
            },
            () = shutdown.cancelled() => return None,
        }
    }
}

#[allow(clippy::print_stdout)]
fn write_handshake(line: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())?;
    out.flush()
}

#[allow(clippy::print_stdout)]
fn print_reattach(address: &str, (network, at): (&'static str, String)) {
    let value = serde_json::json!({
        address: {
            "Protocol": "grpc",
            "ProtocolVersion": PROTOCOL_VERSION,
            "Pid": std::process::id(),
            "Test": true,
            "Addr": {"Network": network, "String": at},
        }
    });
    println!(
        "Provider started in debug mode. To attach Terraform, export this in the shell where you \
            run it:\n"
    );
    println!("\tTF_REATTACH_PROVIDERS='{value}'\n");
    println!("Stop the provider with Ctrl-C.");
}
