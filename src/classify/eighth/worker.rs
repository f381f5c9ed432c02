//! The long-lived thread that decodes the second half of a two-thread decode.
//!
//! A thread spawned per photo starts where the kernel's fork balancing puts it, which on a
//! busy phone (or next to the benchmark's peer process) is often the parent's own core: the
//! two halves then share one core until the load balancer moves one, by which time the
//! ~8 ms decode is over (seen: no two-thread gain at all in the benchmark run with the peer,
//! 1.4x without it). A sleeping thread that is woken instead is placed on an idle core by the
//! wake-up path. One thread is enough: a decode uses at most two; a second decode arriving
//! while it is busy waits for it, and the caller's half never waits on another caller's job.

use std::sync::OnceLock;

use crossbeam_channel::{Receiver, Sender};

type Job = Box<dyn FnOnce() + Send + 'static>;

static WORKER: OnceLock<Option<Sender<Job>>> = OnceLock::new();

fn sender() -> Option<&'static Sender<Job>> {
    WORKER
        .get_or_init(|| {
            let (tx, rx) = crossbeam_channel::unbounded::<Job>();
            let spawned = std::thread::Builder::new().name("fotovakt-decode".into()).spawn(move || {
                for job in rx {
                    // a panicking job (a bug) disconnects its caller, who then decodes
                    // alone; the thread stays for the next photo
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            });
            match spawned {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::warn!(error = %e, "no decode thread; decoding on one thread");
                    None
                }
            }
        })
        .as_ref()
}

/// Run `f` on the decode thread; its result arrives on the receiver (disconnected if `f`
/// panicked). `None`: there is no decode thread, run it yourself.
pub(super) fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<Receiver<T>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    sender()?.send(job).ok()?;
    Some(rx)
}
