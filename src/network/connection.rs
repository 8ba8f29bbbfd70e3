//! One connection to one broker: a cheap, cloneable handle and the task that owns the socket.
//!
//! ```text
//!  callers ──(Outgoing: frame + oneshot)──► mpsc ──► connection task ──► socket
//!     ▲                                                   │
//!     └───────────── oneshot (response frame) ◄───────────┘ (matched by correlation id)
//! ```
//!
//! The task assigns the correlation id, registers the request in its in-flight map and only
//! then writes the frame, so a response can never arrive for an unregistered request. Many
//! requests may be in flight at once (pipelining); responses are matched by correlation id
//! whatever their order.
//!
//! # Cancel safety
//! [`BrokerConnection::send`] is cancel safe: dropping its future never corrupts the
//! connection. Frames are written whole by the task, never by the caller. A request whose
//! caller went away before the task picked it up is not written at all; one already written
//! stays registered, and its response is read and discarded when it arrives.
//!
//! # Failure
//! Any I/O error, malformed frame, oversize frame or request timeout ends the task. Every
//! request in flight or queued then fails with one shared error ([`Error::Connection`],
//! retriable), except the request that timed out, which gets [`Error::RequestTimeout`].
//! The handle reports [`BrokerConnection::is_closed`]; the pool makes a new connection.
//!
//! # SASL re-authentication (KIP-368)
//! When the broker announced a session lifetime at authentication, the write loop
//! re-authenticates at 85–95 % of it: it stops taking new requests from the queue (callers
//! wait there, nothing is dropped), writes SaslHandshake and SaslAuthenticate itself and
//! waits for their answers while the read loop keeps delivering the answers of requests
//! already in flight (the broker answers in order, so those come first), then goes on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;
use tracing::{debug, trace, warn, Instrument};

use crate::error::{Error, ErrorCode, Result};
use crate::metrics::network::{NetworkMetrics, RequestSeries};
use crate::protocol::{self, ApiVersions, Frame, CORRELATION_ID_OFFSET};
use crate::security::sasl::{AuthChannel, Authenticator, SaslVersions};

/// Anything a connection can run over: a TCP stream now, a TLS stream later.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Transport for T {}

/// Settings a connection needs, taken from the client config.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSettings {
    pub client_id: String,
    pub request_timeout: Duration,
    pub max_response_size: usize,
    /// The client's network metrics (connections, requests per broker and API).
    pub metrics: Arc<NetworkMetrics>,
}

/// The highest ApiVersions version this client sends (v3 is the first flexible one and
/// carries the client software name and version).
const API_VERSIONS_MAX: i16 = 3;

/// Queue depth between callers and the connection task.
const QUEUE_DEPTH: usize = 256;

/// What a caller hands to the connection task.
struct Outgoing {
    frame: Frame,
    api_key: i16,
    /// `false` for produce requests with acks=0: the broker sends nothing back.
    expect_response: bool,
    timeout: Duration,
    reply: oneshot::Sender<Result<Bytes>>,
}

/// A request written and waiting for its response.
struct InFlight {
    api_key: i16,
    /// When it was written, and the series its latency and response size go to.
    sent_at: Instant,
    series: Arc<RequestSeries>,
    deadline: Instant,
    timeout: Duration,
    reply: oneshot::Sender<Result<Bytes>>,
}

/// A cheap, cloneable handle to one broker connection.
#[derive(Clone)]
pub(crate) struct BrokerConnection {
    tx: mpsc::Sender<Outgoing>,
    addr: Arc<str>,
    settings: Arc<ConnectionSettings>,
    versions: Arc<ApiVersions>,
}

impl std::fmt::Debug for BrokerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConnection").field("addr", &self.addr).finish()
    }
}

/// When and how the connection task re-authenticates (KIP-368).
struct ReauthPlan {
    sasl: Arc<Authenticator>,
    versions: SaslVersions,
    lifetime: Duration,
}

impl BrokerConnection {
    /// Starts the task that owns `io` and negotiates API versions over it.
    #[cfg(test)]
    pub(crate) async fn start(
        io: impl Transport,
        addr: &str,
        settings: Arc<ConnectionSettings>,
    ) -> Result<BrokerConnection> {
        Self::start_authenticated(io, addr, settings, None).await
    }

    /// Starts the task that owns `io`, negotiates API versions over it and, with `sasl`,
    /// authenticates; a session lifetime from the broker makes the task re-authenticate.
    pub(crate) async fn start_authenticated(
        io: impl Transport,
        addr: &str,
        settings: Arc<ConnectionSettings>,
        sasl: Option<Arc<Authenticator>>,
    ) -> Result<BrokerConnection> {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let (plan_tx, plan_rx) = oneshot::channel();
        let addr: Arc<str> = Arc::from(addr);
        let span = tracing::debug_span!("connection", broker = %addr);
        settings.metrics.connection_creations.inc();
        tokio::spawn(
            ConnectionTask {
                addr: addr.clone(),
                max_frame: settings.max_response_size,
                client_id: settings.client_id.clone(),
                request_timeout: settings.request_timeout,
                metrics: settings.metrics.clone(),
            }
            .run(io, rx, plan_rx)
            .instrument(span),
        );
        let mut conn = BrokerConnection {
            tx,
            addr,
            settings,
            versions: Arc::new(ApiVersions::default()),
        };
        conn.versions = Arc::new(conn.negotiate_versions().await?);
        if let Some(sasl) = sasl {
            let versions = SaslVersions {
                handshake: conn.version_for::<kafka_protocol::messages::SaslHandshakeRequest>()?,
                authenticate: conn.version_for::<kafka_protocol::messages::SaslAuthenticateRequest>()?,
            };
            let lifetime = sasl
                .authenticate(&mut &conn, versions, &conn.settings.client_id, &conn.addr)
                .await
                .inspect_err(|e| {
                    if matches!(e, Error::Authentication { .. }) {
                        conn.settings.metrics.authentication_failures.inc();
                    }
                })?;
            if let Some(lifetime) = lifetime {
                let _ = plan_tx.send(ReauthPlan { sasl, versions, lifetime });
            }
        }
        Ok(conn)
    }

    /// ApiVersions at our highest version; a broker that does not know it answers
    /// UNSUPPORTED_VERSION in the v0 format with its own range, and we ask again within it.
    async fn negotiate_versions(&self) -> Result<ApiVersions> {
        let mut version = API_VERSIONS_MAX;
        loop {
            let req = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("ferrokafka"))
                .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
            let frame = protocol::encode_request(&req, version, &self.settings.client_id, &self.addr)?;
            let bytes = self
                .submit(frame.into(), ApiVersionsRequest::KEY, true, self.settings.request_timeout)
                .await?;
            // A broker that does not know our version answers in the v0 format (as the Java
            // client also assumes), so a body that does not parse at our version is read as v0.
            let resp: ApiVersionsResponse =
                match protocol::decode_api_versions_response(bytes.clone(), version, &self.addr) {
                    Ok(r) => r,
                    Err(e) => match protocol::decode_api_versions_response(bytes, 0, &self.addr) {
                        Ok(r) if r.error_code == ErrorCode::UnsupportedVersion.code() => r,
                        _ => return Err(e),
                    },
                };
            match ErrorCode::from_code(resp.error_code) {
                None => return Ok(ApiVersions::from_response(&resp)),
                Some(ErrorCode::UnsupportedVersion) => {
                    let theirs = ApiVersions::from_response(&resp).range(ApiVersionsRequest::KEY);
                    match theirs {
                        Some((min, max)) if max < version && max >= min && max >= 0 => {
                            debug!(broker = %self.addr, max, "ApiVersions downgrade");
                            version = max;
                        }
                        _ => {
                            return Err(Error::UnsupportedVersion {
                                broker: self.addr.to_string(),
                                api: "ApiVersions",
                                client_min: 0,
                                client_max: API_VERSIONS_MAX,
                                broker_range: theirs,
                            });
                        }
                    }
                }
                Some(code) => {
                    return Err(Error::broker(code, "ApiVersions", None, None, None));
                }
            }
        }
    }

    /// Whether the connection task has ended; a closed connection fails every request.
    /// The broker's address (`host:port`).
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// The version of `R` to use on this connection: the highest both sides support.
    pub(crate) fn version_for<R: Request>(&self) -> Result<i16> {
        self.versions.negotiate::<R>(&self.addr)
    }

    /// The broker's API version table from the handshake.
    pub(crate) fn api_versions(&self) -> &ApiVersions {
        &self.versions
    }

    /// Sends `req` at the highest common version and waits for its response.
    /// Cancel safe (see the module docs).
    pub(crate) async fn send<R: Request>(&self, req: &R) -> Result<R::Response> {
        let version = self.version_for::<R>()?;
        self.send_at(req, version).await
    }

    /// Sends `req` at an explicit `version` (already negotiated) and waits for the response.
    pub(crate) async fn send_at<R: Request>(&self, req: &R, version: i16) -> Result<R::Response> {
        self.send_at_with_timeout(req, version, self.settings.request_timeout).await
    }

    /// As [`Self::send_at`], with a per-request timeout (long-poll fetches add their wait).
    pub(crate) async fn send_at_with_timeout<R: Request>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let frame = protocol::encode_request(req, version, &self.settings.client_id, &self.addr)?;
        let bytes = self.submit(frame.into(), R::KEY, true, timeout).await?;
        protocol::decode_response::<R>(bytes, version, &self.addr)
    }

    /// Sends `req` at `version` and returns the raw response frame (correlation id first),
    /// for a caller that decodes it itself (our bounded Metadata decoder), within the
    /// request timeout.
    pub(crate) async fn send_raw<R: Request>(&self, req: &R, version: i16) -> Result<Bytes> {
        self.send_raw_with_timeout(req, version, self.settings.request_timeout).await
    }

    /// Sends `req` and returns the raw response frame (correlation id first) for a caller
    /// that decodes it itself (the consumer's own bounded Fetch decoder).
    pub(crate) async fn send_raw_with_timeout<R: Request>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<Bytes> {
        let frame = protocol::encode_request(req, version, &self.settings.client_id, &self.addr)?;
        self.submit(frame.into(), R::KEY, true, timeout).await
    }

    /// Sends a pre-encoded frame of API `api_key` (built without copying its large parts, as
    /// the producer's requests are) and returns the raw response frame for the caller's own
    /// decoder; `expect_response` false for acks=0 produce requests (resolves with `None`
    /// once written).
    pub(crate) async fn send_frame(
        &self,
        frame: Frame,
        api_key: i16,
        expect_response: bool,
    ) -> Result<Option<Bytes>> {
        let bytes = self.submit(frame, api_key, expect_response, self.settings.request_timeout).await?;
        Ok(expect_response.then_some(bytes))
    }

    /// Sends a request that gets no response (produce with acks=0); resolves once written.
    #[cfg(test)]
    pub(crate) async fn send_no_response<R: Request>(&self, req: &R, version: i16) -> Result<()> {
        let frame = protocol::encode_request(req, version, &self.settings.client_id, &self.addr)?;
        self.submit(frame.into(), R::KEY, false, self.settings.request_timeout).await.map(|_| ())
    }

    async fn submit(
        &self,
        frame: Frame,
        api_key: i16,
        expect_response: bool,
        timeout: Duration,
    ) -> Result<Bytes> {
        let (reply, rx) = oneshot::channel();
        let out = Outgoing { frame, api_key, expect_response, timeout, reply };
        if self.tx.send(out).await.is_err() {
            return Err(self.closed_error());
        }
        // The task always answers before dropping the sender; a dropped sender means the
        // task itself is gone (the runtime shut down).
        rx.await.unwrap_or_else(|_| Err(self.closed_error()))
    }

    fn closed_error(&self) -> Error {
        Error::Connection {
            broker: self.addr.to_string(),
            cause: Arc::new(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "connection is closed",
            )),
        }
    }
}

/// The first authentication goes through the handle, like any request.
impl AuthChannel for &BrokerConnection {
    async fn round_trip(&mut self, frame: Frame, api_key: i16) -> Result<Bytes> {
        self.submit(frame, api_key, true, self.settings.request_timeout).await
    }
}

/// Requests written and awaiting responses, keyed by correlation id.
#[derive(Default)]
struct InFlightMap {
    map: HashMap<i32, InFlight>,
}

/// The task that owns one socket.
struct ConnectionTask {
    addr: Arc<str>,
    max_frame: usize,
    client_id: String,
    request_timeout: Duration,
    metrics: Arc<NetworkMetrics>,
}

/// What the write loop needs to write a request: the writer, the next correlation id and
/// the in-flight map it registers requests in before writing them.
struct Writer<'a, W> {
    task: &'a ConnectionTask,
    wr: W,
    next_id: i32,
    in_flight: &'a Mutex<InFlightMap>,
    new_deadline: &'a Notify,
    /// This connection's request series by API key, looked up once each.
    series: HashMap<i16, Arc<RequestSeries>>,
}

impl<W: AsyncWrite + Unpin + Send> Writer<'_, W> {
    /// Assigns the correlation id, registers the request (when it expects a response), writes
    /// the frame. Returns the reply sender of a request that expects no response.
    async fn write(&mut self, mut out: Outgoing) -> std::result::Result<Option<oneshot::Sender<Result<Bytes>>>, Error> {
        let corr = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(0);
        out.frame.head[CORRELATION_ID_OFFSET..CORRELATION_ID_OFFSET + 4].copy_from_slice(&corr.to_be_bytes());
        let api = protocol::api_name(out.api_key);
        let bytes = out.frame.len();
        trace!(api, correlation_id = corr, bytes, "write");
        let series = match self.series.get(&out.api_key) {
            Some(s) => s.clone(),
            None => {
                let s = self.task.metrics.request_series(&self.task.addr, out.api_key, api);
                self.series.insert(out.api_key, s.clone());
                s
            }
        };
        series.requests.inc();
        series.bytes_out.add(bytes as u64);
        let reply = if out.expect_response {
            // Register before writing.
            series.in_flight.add(1);
            let now = Instant::now();
            self.in_flight.lock().unwrap().map.insert(
                corr,
                InFlight {
                    api_key: out.api_key,
                    sent_at: now,
                    series,
                    deadline: now + out.timeout,
                    timeout: out.timeout,
                    reply: out.reply,
                },
            );
            self.new_deadline.notify_one();
            None
        } else {
            Some(out.reply)
        };
        write_frame(&mut self.wr, &out.frame).await.map_err(|e| self.task.io_error(e))?;
        Ok(reply)
    }
}

/// Re-authentication: the write loop writes the SASL requests itself and waits for each
/// answer, so nothing else is written meanwhile.
impl<W: AsyncWrite + Unpin + Send> AuthChannel for Writer<'_, W> {
    async fn round_trip(&mut self, frame: Frame, api_key: i16) -> Result<Bytes> {
        let (reply, rx) = oneshot::channel();
        let timeout = self.task.request_timeout;
        self.write(Outgoing { frame, api_key, expect_response: true, timeout, reply }).await?;
        self.wr.flush().await.map_err(|e| self.task.io_error(e))?;
        rx.await.unwrap_or(Err(Error::Closed))
    }
}

/// When to re-authenticate: at 85–95 % of the session lifetime, as the Java client does, but
/// never sooner than 1.2 s from now: a broker treats a SaslHandshake less than a second after
/// the previous re-authentication began as an ordinary request and refuses it
/// (ILLEGAL_SASL_STATE).
fn reauth_at(lifetime: Duration) -> Instant {
    let share = rand::RngExt::random_range(&mut rand::rng(), 0.85..0.95);
    Instant::now() + lifetime.mul_f64(share).max(Duration::from_millis(1200))
}

impl ConnectionTask {
    async fn run(self, io: impl Transport, mut rx: mpsc::Receiver<Outgoing>, plan: oneshot::Receiver<ReauthPlan>) {
        let (rd, wr) = tokio::io::split(io);
        let in_flight = Mutex::new(InFlightMap::default());
        let new_deadline = Notify::new();
        let ended = tokio::select! {
            e = self.write_loop(wr, &mut rx, &in_flight, &new_deadline, plan) => e,
            e = self.read_loop(rd, &in_flight) => e,
            e = self.timeout_loop(&in_flight, &new_deadline) => e,
        };
        // Fail everything still waiting: first refuse new work, then drain what is queued.
        rx.close();
        let shared = ended;
        let mut failed = 0usize;
        let pending: Vec<_> = in_flight.lock().unwrap().map.drain().collect();
        for (_, f) in pending {
            f.series.in_flight.add(-1);
            let _ = f.reply.send(Err(shared.clone()));
            failed += 1;
        }
        while let Ok(out) = rx.try_recv() {
            let _ = out.reply.send(Err(shared.clone()));
            failed += 1;
        }
        self.metrics.connection_closes.inc();
        if failed > 0 || !matches!(&shared, Error::Connection { cause, .. } if cause.kind() == std::io::ErrorKind::UnexpectedEof) {
            debug!(error = %shared, failed, "connection closed");
        }
    }

    fn io_error(&self, e: std::io::Error) -> Error {
        Error::Connection { broker: self.addr.to_string(), cause: Arc::new(e) }
    }

    async fn write_loop(
        &self,
        wr: impl AsyncWrite + Unpin + Send,
        rx: &mut mpsc::Receiver<Outgoing>,
        in_flight: &Mutex<InFlightMap>,
        new_deadline: &Notify,
        plan: oneshot::Receiver<ReauthPlan>,
    ) -> Error {
        let mut w = Writer { task: self, wr, next_id: 0, in_flight, new_deadline, series: HashMap::new() };
        let mut plan = Some(plan);
        let mut reauth: Option<(ReauthPlan, Instant)> = None;
        // Far enough never to fire; only polled while `reauth` is set.
        let never = Instant::now() + Duration::from_secs(86400 * 365);
        loop {
            let next_reauth = reauth.as_ref().map_or(never, |r| r.1);
            let out = tokio::select! {
                p = async { plan.as_mut().expect("polled only while set").await }, if plan.is_some() => {
                    plan = None;
                    if let Ok(p) = p {
                        let at = reauth_at(p.lifetime);
                        reauth = Some((p, at));
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(next_reauth), if reauth.is_some() => {
                    let (p, _) = reauth.take().expect("set");
                    debug!(mechanism = p.sasl.mechanism(), "re-authenticating (KIP-368)");
                    match p.sasl.authenticate(&mut w, p.versions, &self.client_id, &self.addr).await {
                        Ok(Some(lifetime)) => {
                            self.metrics.reauthentications.inc();
                            let at = reauth_at(lifetime);
                            reauth = Some((ReauthPlan { lifetime, ..p }, at));
                        }
                        Ok(None) => self.metrics.reauthentications.inc(),
                        Err(e) => {
                            if matches!(e, Error::Authentication { .. }) {
                                self.metrics.authentication_failures.inc();
                            }
                            warn!(error = %e, "re-authentication failed; closing the connection");
                            return e;
                        }
                    }
                    continue;
                }
                out = rx.recv() => out,
            };
            let Some(out) = out else {
                // Every handle is gone: close quietly.
                return Error::Closed;
            };
            if out.reply.is_closed() {
                // The caller gave up before the request was written: never send it.
                continue;
            }
            match w.write(out).await {
                Ok(Some(reply)) => {
                    let _ = reply.send(Ok(Bytes::new()));
                }
                Ok(None) => {}
                Err(e) => return e,
            }
            // Write out what queued up meanwhile before flushing (no-op on a raw TCP socket,
            // needed for buffered transports such as TLS).
            if rx.is_empty() {
                if let Err(e) = w.wr.flush().await {
                    return self.io_error(e);
                }
            }
        }
    }

    async fn read_loop(&self, mut rd: impl AsyncRead + Unpin, in_flight: &Mutex<InFlightMap>) -> Error {
        let shared = |e: Error| e;
        loop {
            let mut size_buf = [0u8; 4];
            if let Err(e) = rd.read_exact(&mut size_buf).await {
                let e = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    std::io::Error::new(e.kind(), "the broker closed the connection")
                } else {
                    e
                };
                return shared(self.io_error(e));
            }
            let size = i32::from_be_bytes(size_buf);
            if let Some(detail) = wrong_protocol(&size_buf) {
                return shared(Error::WrongProtocol { broker: self.addr.to_string(), detail });
            }
            if size < 4 {
                return shared(Error::Protocol {
                    broker: self.addr.to_string(),
                    detail: format!("frame size {size} is smaller than a response header"),
                });
            }
            if size as usize > self.max_frame {
                return shared(Error::FrameTooLarge {
                    broker: self.addr.to_string(),
                    size: size as i64,
                    max: self.max_frame,
                });
            }
            let frame = match read_frame(&mut rd, size as usize).await {
                Ok(f) => f,
                Err(got) => {
                    return shared(self.io_error(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("the broker closed the connection mid-frame: got {got} of {size} bytes"),
                    )));
                }
            };
            let corr = protocol::response_correlation_id(&frame).unwrap_or(-1);
            let Some(req) = in_flight.lock().unwrap().map.remove(&corr) else {
                return shared(Error::Protocol {
                    broker: self.addr.to_string(),
                    detail: format!("response with unknown correlation id {corr}"),
                });
            };
            trace!(api = protocol::api_name(req.api_key), correlation_id = corr, bytes = size, "read");
            req.series.in_flight.add(-1);
            req.series.bytes_in.add(size as u64 + 4);
            req.series.latency.record_duration(req.sent_at.elapsed());
            // The caller may be gone (dropped future): the response is then discarded.
            let _ = req.reply.send(Ok(frame));
        }
    }

    async fn timeout_loop(&self, in_flight: &Mutex<InFlightMap>, new_deadline: &Notify) -> Error {
        loop {
            let earliest = in_flight.lock().unwrap().map.iter().map(|(c, f)| (f.deadline, *c)).min();
            match earliest {
                None => new_deadline.notified().await,
                Some((deadline, corr)) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => {
                            let expired = in_flight.lock().unwrap().map.remove(&corr);
                            if let Some(f) = expired {
                                f.series.in_flight.add(-1);
                                let api = protocol::api_name(f.api_key);
                                warn!(api, correlation_id = corr, timeout = ?f.timeout, "request timed out; closing the connection");
                                let err = Error::RequestTimeout {
                                    broker: self.addr.to_string(),
                                    api,
                                    timeout: f.timeout,
                                };
                                let _ = f.reply.send(Err(err));
                                return self.io_error(std::io::Error::new(
                                    std::io::ErrorKind::TimedOut,
                                    format!("closed after a {api} request timed out"),
                                ));
                            }
                        }
                        _ = new_deadline.notified() => {}
                    }
                }
            }
        }
    }
}

/// Writes a whole frame, head and tail chunks, with vectored writes (no copy of the tail).
async fn write_frame(wr: &mut (impl AsyncWrite + Unpin), frame: &Frame) -> std::io::Result<()> {
    if frame.tail.is_empty() {
        return wr.write_all(&frame.head).await;
    }
    let mut slices: Vec<std::io::IoSlice<'_>> = Vec::with_capacity(frame.tail.len() + 1);
    slices.push(std::io::IoSlice::new(&frame.head));
    slices.extend(frame.tail.iter().filter(|b| !b.is_empty()).map(|b| std::io::IoSlice::new(b)));
    let mut bufs = &mut slices[..];
    while !bufs.is_empty() {
        let n = wr.write_vectored(bufs).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        std::io::IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}

/// Reads exactly `size` bytes, growing the buffer as data arrives so that a frame that
/// announces a large size but never comes does not reserve the whole size up front.
/// On a short read returns how many bytes arrived.
async fn read_frame(rd: &mut (impl AsyncRead + Unpin), size: usize) -> std::result::Result<Bytes, usize> {
    const FIRST_CHUNK: usize = 64 * 1024;
    let mut buf = BytesMut::with_capacity(size.min(FIRST_CHUNK));
    while buf.len() < size {
        if buf.capacity() == buf.len() {
            let grow = buf.len().max(FIRST_CHUNK).min(size - buf.len());
            buf.reserve(grow);
        }
        let want = size - buf.len();
        let n = {
            let mut limited = (&mut *rd).take(want as u64);
            limited.read_buf(&mut buf).await.map_err(|_| buf.len())?
        };
        if n == 0 {
            return Err(buf.len());
        }
    }
    Ok(buf.freeze())
}

/// Recognises a TLS record or an HTTP response where a Kafka size prefix was expected.
fn wrong_protocol(first4: &[u8; 4]) -> Option<String> {
    let mut b = &first4[..];
    let (content_type, major) = (b.get_u8(), b.get_u8());
    if (0x14..=0x17).contains(&content_type) && major == 0x03 {
        return Some(
            "the peer answered with a TLS record; this port expects TLS (security_protocol SSL or SASL_SSL)"
                .into(),
        );
    }
    if first4 == b"HTTP" {
        return Some("the peer answered with HTTP; this is not a Kafka listener".into());
    }
    None
}

#[cfg(test)]
mod tests;
