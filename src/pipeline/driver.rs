//! The forwarders' own thread: one current-thread tokio runtime that runs every forwarder, its
//! delivery tasks and the HTTP client's connection tasks.
//!
//! Why not the server's runtime: forwarding needs little CPU but many short turns (a spool
//! read comes back, a merged body is built, the request is written, the answer is read), and
//! each turn waited in the server runtime's run queue behind every request task decoding a
//! body. With 64 busy connections on one core that was tens of milliseconds per turn, and the
//! single in-order delivery of remote_write spent most of its time queued, not sending:
//! 0.35 M samples/s delivered while 2.8 M were accepted. On a thread of its own the kernel
//! schedules the forwarder when its socket or the spool read is ready (a thread that slept
//! is run promptly), so a turn costs what it costs.

use std::io;
use std::sync::Mutex;
use std::time::Duration;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// How long tasks still running at exit get to finish before the runtime drops them.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// The thread and a handle to spawn onto its runtime.
#[derive(Debug)]
pub(crate) struct Driver {
    /// Where forwarders are spawned.
    handle: Handle,
    /// Dropped or sent: the runtime stops (so a dropped pipeline leaves no thread behind).
    exit: Mutex<Option<oneshot::Sender<()>>>,
    /// Joined by `stop`.
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Driver {
    /// Starts the thread and its runtime.
    pub(crate) fn start() -> io::Result<Driver> {
        let runtime = Builder::new_current_thread()
            .enable_all()
            .thread_name("forward")
            .build()?;
        let handle = runtime.handle().clone();
        let (exit, exited) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("forward".into())
            .spawn(move || {
                // Tasks spawned on a current-thread runtime run while this `block_on` polls.
                runtime.block_on(async {
                    let _ = exited.await;
                });
                runtime.shutdown_timeout(EXIT_GRACE);
            })?;
        Ok(Driver {
            handle,
            exit: Mutex::new(Some(exit)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `task` on the forwarders' thread.
    pub(crate) fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(task)
    }

    /// Stops the runtime and joins the thread (call after the forwarders have finished).
    pub(crate) async fn stop(&self) {
        drop(self.exit.lock().unwrap_or_else(|p| p.into_inner()).take());
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}
