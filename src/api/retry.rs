//! Retries: one loop for every kind of call, the per-operation deadline and stop signal ([`Op`]),
//! backoff with full jitter ([`RetryPolicy`]), the kinds of call ([`Call`]) and `Retry-After`.
//!
//! The loop adds no hidden timeout: it ends at the operation's deadline, on cancellation, on an
//! error that retrying cannot fix, or when a server that cannot be reached at all has been tried
//! for [`RetryPolicy::unreachable`].

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::ApiError;

/// The limits of one operation: a deadline and the provider-wide stop signal.
#[derive(Clone, Debug)]
pub struct Op {
    /// No retry or wait goes past this.
    pub deadline: Instant,
    /// Cancelled on `StopProvider`.
    pub stop: CancellationToken,
}

impl Op {
    /// An operation allowed `timeout` from now.
    pub fn new(timeout: Duration, stop: CancellationToken) -> Op {
        Op { deadline: Instant::now() + timeout, stop }
    }
    /// Sleeps for `d`, or less when the deadline comes first; errors on cancellation.
    pub async fn sleep(&self, d: Duration) -> Result<(), ApiError> {
        tokio::select! {
            () = tokio::time::sleep(d.min(self.remaining())) => Ok(()),
            () = self.stop.cancelled() => Err(ApiError::Cancelled),
        }
    }
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Backoff between retries: exponential from `base`, capped at `max`, with full jitter.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// First delay's upper bound.
    pub base: Duration,
    pub max: Duration,
    /// How long a server that cannot be reached at all (refused, unresolved, silent) is retried
    /// before the request fails with [`ApiError::Unreachable`]. Throttling and 5xx answers are not
    /// bounded by this: a server that answers is waited for until the operation's deadline.
    pub unreachable: Duration,
}

/// Default of [`RetryPolicy::unreachable`].
pub const DEFAULT_UNREACHABLE: Duration = Duration::from_secs(30);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_millis(200),
            max: Duration::from_secs(15),
            unreachable: DEFAULT_UNREACHABLE,
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt` (1-based retry count), given the server's `Retry-After`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.max * 4);
        }
        let exp = self.base.saturating_mul(1u32 << attempt.min(16)).min(self.max);
        Duration::from_secs_f64(exp.as_secs_f64() * rand::random::<f64>())
            .max(Duration::from_millis(10))
    }
}

/// The kinds of call, each with its retry policy and per-attempt time limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Safe to send again (GET, and DELETEs whose repetition changes nothing): retried on
    /// throttling, gateway errors and lost connections.
    Idempotent,
    /// A change that must not happen twice (adding workers): retried only where the answer proves
    /// it was not carried out (429, 503, a connection never made).
    Write,
    /// A cluster create: as [`Call::Write`], with the 300 s answer timeout of Coiled's client,
    /// since the server does real work before answering. The caller recovers lost answers by name.
    Create,
}

impl Call {
    /// How long one attempt waits for its answer.
    pub fn timeout(self) -> Duration {
        match self {
            Call::Idempotent | Call::Write => Duration::from_secs(60),
            Call::Create => Duration::from_secs(300),
        }
    }
}

/// Parses `Retry-After` in either of its forms (seconds, or an HTTP date).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    httpdate::parse_http_date(v)
        .ok()
        .map(|t| t.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

/// How one attempt failed.
#[derive(Debug)]
pub(crate) struct FailedAttempt {
    /// The error, returned when no retry follows.
    pub error: ApiError,
    /// The server's `Retry-After`, if it sent one.
    pub retry_after: Option<Duration>,
    /// Set when the server was not reached at all: the URL, and what happened in words. Such
    /// failures are retried within the unreachable budget.
    pub unreachable: Option<(String, String)>,
    /// Whether sending again may succeed (for a reached server).
    pub retryable: bool,
}

impl FailedAttempt {
    /// A failure that retrying cannot fix.
    pub fn fatal(error: ApiError) -> FailedAttempt {
        FailedAttempt { error, retry_after: None, unreachable: None, retryable: false }
    }
}

/// Runs `attempt` until it succeeds, fails for good, the operation's deadline passes or Terraform
/// asks to stop. `what` names the call in logs.
pub(crate) async fn run<T, F, Fut>(
    op: &Op,
    policy: &RetryPolicy,
    what: &str,
    mut attempt: F,
) -> Result<T, ApiError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, FailedAttempt>>,
{
    let mut n = 0u32;
    let mut unreachable_since: Option<Instant> = None;
    loop {
        if op.stop.is_cancelled() {
            return Err(ApiError::Cancelled);
        }
        n += 1;
        let started = Instant::now();
        let failure = tokio::select! {
            r = attempt(n) => match r {
                Ok(v) => return Ok(v),
                Err(f) => f,
            },
            () = op.stop.cancelled() => return Err(ApiError::Cancelled),
        };
        if let Some((url, reason)) = failure.unreachable {
            let since = *unreachable_since.get_or_insert(started);
            // Keep trying until the budget is spent: the last wait is cut short, not skipped.
            let left = policy.unreachable.saturating_sub(since.elapsed());
            let delay = policy.delay(n, None).min(left);
            if left.is_zero() || Instant::now() + delay >= op.deadline {
                return Err(ApiError::Unreachable {
                    url,
                    reason,
                    waited_s: since.elapsed().as_secs_f64().round() as u64,
                });
            }
            let delay_ms = delay.as_millis() as u64;
            tracing::info!(
                what, attempt = n, delay_ms, reason = %reason,
                "coiled api unreachable; retrying"
            );
            op.sleep(delay).await?;
            continue;
        }
        unreachable_since = None;
        if !failure.retryable {
            return Err(failure.error);
        }
        let delay = policy.delay(n, failure.retry_after);
        if Instant::now() + delay >= op.deadline {
            return Err(ApiError::Timeout { attempts: n, last: Box::new(failure.error) });
        }
        let (delay_ms, error) = (delay.as_millis() as u64, &failure.error);
        tracing::info!(what, attempt = n, delay_ms, error = %error, "retrying coiled api request");
        op.sleep(delay).await?;
    }
}
