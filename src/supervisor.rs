//! Background duties (the dispatcher, the PostgreSQL bridge, the reconciler, the expiry
//! sweeper, event pruning, the funding source's listener), each a named task under one
//! supervisor.
//!
//! A duty that fails (returns an error or panics) is logged and started again after a back-off
//! that doubles up to [`MAX_BACKOFF`], so one bad moment never silently ends a duty. On
//! shutdown each duty is told to stop, and they are awaited in the reverse order of their
//! start (consumers before what feeds them), each within the time left; one that does not stop
//! in time is aborted and named in the log.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// First wait before a failed duty starts again.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait before a failed duty starts again.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A duty's view of shutdown.
#[derive(Debug, Clone)]
pub struct Stopping(watch::Receiver<bool>);

/// The sending side of a [`Stopping`]: whoever holds it says when to stop.
#[derive(Debug, Clone)]
pub struct Signal(std::sync::Arc<watch::Sender<bool>>);

impl Signal {
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// A new stop signal and the first of its receivers.
pub fn signal() -> (Signal, Stopping) {
    let (sender, receiver) = watch::channel(false);
    (Signal(std::sync::Arc::new(sender)), Stopping(receiver))
}

impl Stopping {
    /// Resolves once shutdown began (at once if it already has).
    pub async fn stopped(&mut self) {
        // An error means the supervisor is gone: that is a stop too.
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }
}

/// The running duties.
pub struct Supervisor {
    stop: Signal,
    stopping: Stopping,
    duties: Vec<(&'static str, JoinHandle<()>)>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.duties.iter().map(|(name, _)| name))
            .finish()
    }
}

impl Default for Supervisor {
    fn default() -> Self {
        let (stop, stopping) = signal();
        Supervisor {
            stop,
            stopping,
            duties: Vec::new(),
        }
    }
}

impl Supervisor {
    /// A handle duties (and sockets) watch for shutdown.
    pub fn stopping(&self) -> Stopping {
        self.stopping.clone()
    }

    /// Starts `duty` under `name`. `duty` is called again for each restart; it should return
    /// `Ok` only once `Stopping` says so.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, duty: F)
    where
        F: Fn(Stopping) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let stopping = self.stopping();
        let handle = tokio::spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            loop {
                let mut watch = stopping.clone();
                let outcome = tokio::spawn(duty(stopping.clone())).await;
                if watch.is_stopped() {
                    return;
                }
                match outcome {
                    Ok(Ok(())) => {
                        tracing::warn!(
                            duty = name,
                            "duty ended before shutdown; starting it again"
                        );
                    }
                    Ok(Err(e)) => {
                        tracing::error!(duty = name, error = %e, retry_in = ?backoff, "duty failed; starting it again");
                    }
                    Err(e) => {
                        tracing::error!(duty = name, error = %e, retry_in = ?backoff, "duty panicked; starting it again");
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = watch.stopped() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        });
        self.duties.push((name, handle));
    }

    /// Starts a duty that runs `pass` every `period` (the first pass after `first`), logging a
    /// failed pass and going on.
    pub fn every<F, Fut>(&mut self, name: &'static str, first: Duration, period: Duration, pass: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let pass = std::sync::Arc::new(pass);
        self.spawn(name, move |mut stopping| {
            let pass = pass.clone();
            async move {
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + first, period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stopping.stopped() => return Ok(()),
                    }
                    if let Err(e) = pass().await {
                        tracing::warn!(duty = name, error = %e, "pass failed; trying again next time");
                    }
                }
            }
        });
    }

    /// Tells every duty to stop, then awaits them newest first within `within`; any still
    /// running then is aborted.
    pub async fn stop(self, within: Duration) {
        self.stop.stop();
        let deadline = tokio::time::Instant::now() + within;
        for (name, mut handle) in self.duties.into_iter().rev() {
            if tokio::time::timeout_at(deadline, &mut handle)
                .await
                .is_err()
            {
                tracing::warn!(duty = name, "duty did not stop in time; aborted");
                handle.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_failing_duty_is_started_again_and_all_stop_on_request() {
        let runs = Arc::new(AtomicUsize::new(0));
        let (started_twice, mut second_start) = tokio::sync::mpsc::channel::<()>(1);
        let mut supervisor = Supervisor::default();
        let counted = runs.clone();
        supervisor.spawn("flaky", move |mut stopping| {
            let (runs, started_twice) = (counted.clone(), started_twice.clone());
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("the first run fails");
                }
                let _ = started_twice.send(()).await;
                stopping.stopped().await;
                Ok(())
            }
        });
        second_start.recv().await.unwrap();
        supervisor.stop(Duration::from_secs(5)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_duty_that_ignores_the_stop_is_aborted() {
        let mut supervisor = Supervisor::default();
        supervisor.spawn("deaf", |_| async {
            std::future::pending::<()>().await;
            Ok(())
        });
        // Returns (within the bound) although the duty never looks at `Stopping`.
        supervisor.stop(Duration::from_millis(50)).await;
    }
}
