//! Ending a recording on SIGINT / SIGTERM: the handler only sets the recording's stop flag, so
//! the backend releases its probes and everything collected is still written.

use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Arc;

use crate::inherited::Inherited;

static STOP: AtomicPtr<AtomicBool> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn on_signal(_sig: libc::c_int) {
    let p = STOP.load(Ordering::SeqCst);
    if !p.is_null() {
        // SAFETY: the pointer comes from an Arc leaked in `stop_on_signals`, never freed.
        unsafe { (*p).store(true, Ordering::SeqCst) };
    }
}

/// Sets `flag` when the process receives SIGINT or SIGTERM (instead of dying), so a recording
/// ends early and still writes its results. A signal the process was started with ignored
/// (`nohup`, a background job of a non-interactive shell) stays ignored. Meant to be called
/// once, by the command line tool. A program started afterwards still gets the dispositions
/// the process was started with ([`Inherited`]).
pub fn stop_on_signals(flag: Arc<AtomicBool>) {
    let ptr = Arc::into_raw(flag) as *mut AtomicBool;
    // The previous flag (if any) is leaked on purpose: a handler may still be using it.
    STOP.swap(ptr, Ordering::SeqCst);
    let inherited = Inherited::get();
    for sig in [libc::SIGINT, libc::SIGTERM] {
        if inherited.ignores(sig) {
            continue;
        }
        // SAFETY: installing an async-signal-safe handler (one atomic store).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}
