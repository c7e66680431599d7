//! Running Rust work without holding Ruby's GVL, so other Puma threads keep going.
//!
//! magnus has no GVL-release API, so this calls `rb_thread_call_without_gvl` directly.
//! The closure must not touch any Ruby object: it gets owned Rust data and returns owned
//! Rust data; Ruby objects are built after the GVL is back.
#![allow(unsafe_code)] // the one FFI call below; its safety argument is written next to it
#![allow(dead_code)] // used by the capability bindings that call into slow core work

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use portcullis::command::CancelHandle;

use crate::errors::panic_message;

struct Slot<F, R> {
    work: Option<F>,
    result: Option<std::thread::Result<R>>,
}

extern "C" fn trampoline<F: FnOnce() -> R, R>(data: *mut c_void) -> *mut c_void {
    // SAFETY: `data` is the `&mut Slot<F, R>` passed by `without_gvl` below, alive for the
    // whole call, and only this function touches it while the GVL is released.
    let slot = unsafe { &mut *(data as *mut Slot<F, R>) };
    if let Some(work) = slot.work.take() {
        // A panic must never unwind across the C frame of the Ruby VM.
        slot.result = Some(catch_unwind(AssertUnwindSafe(work)));
    }
    std::ptr::null_mut()
}

/// Runs `work` through `rb_thread_call_without_gvl2` with `cancel` (if any) as the
/// unblocking function. `Ok(None)`: an interrupt was pending on entry, so Ruby did not
/// release the GVL and `work` did not run (it is handed back). `Err`: `work` panicked.
fn call_without_gvl2<F, R>(work: F, cancel: Option<&CancelHandle>) -> Result<Result<R, F>, String>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    let mut slot = Slot {
        work: Some(work),
        result: None,
    };
    let (ubf, data2): (rb_sys::rb_unblock_function_t, *mut c_void) = match cancel {
        Some(cancel) => (
            Some(cancel_unblock),
            cancel as *const CancelHandle as *mut c_void,
        ),
        None => (None, std::ptr::null_mut()),
    };
    // SAFETY: `trampoline::<F, R>` matches the expected signature and `slot` outlives the
    // call. Without `cancel`, no unblocking function is given, so Ruby waits for `work` to
    // finish (such work is bounded). With it, `cancel` outlives the call and
    // `cancel_unblock` only reads it through a shared reference.
    unsafe {
        rb_sys::rb_thread_call_without_gvl2(
            Some(trampoline::<F, R>),
            &mut slot as *mut Slot<F, R> as *mut c_void,
            ubf,
            data2,
        );
    }
    match (slot.result, slot.work) {
        (Some(Ok(r)), _) => Ok(Ok(r)),
        (Some(Err(p)), _) => Err(panic_message(&*p)),
        (None, Some(work)) => Ok(Err(work)),
        (None, None) => Err("portcullis: work did not run".to_owned()),
    }
}

/// Runs `work` with the GVL released and returns its result. A panic inside `work` is
/// caught and returned as `Err(message)` instead of crossing into the VM.
///
/// Uses `rb_thread_call_without_gvl2`, which does not process Ruby interrupts when `work`
/// returns: an exception from `Thread#raise` or `Timeout` must not unwind (longjmp) through
/// the Rust frames still on the stack here. A pending interrupt is raised once the method
/// has returned to Ruby. If one was already pending on entry, Ruby does not release the
/// GVL; `work` (bounded by design) then runs with the GVL held.
pub(crate) fn without_gvl<F, R>(work: F) -> Result<R, String>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    match call_without_gvl2(work, None)? {
        Ok(r) => Ok(r),
        Err(work) => catch_unwind(AssertUnwindSafe(work)).map_err(|p| panic_message(&*p)),
    }
}

/// The unblocking function for [`without_gvl_cancellable`]: Ruby calls it, from whichever
/// thread delivers an interrupt (`Thread#raise`, `Timeout`, `Thread#kill`, a signal), while
/// `work` runs.
extern "C" fn cancel_unblock(data: *mut c_void) {
    // SAFETY: `data` is the `&CancelHandle` passed to `call_without_gvl2`, which outlives
    // the blocking region during which Ruby may call this; `cancel` is thread-safe and
    // cannot panic.
    let cancel = unsafe { &*(data as *const CancelHandle) };
    // A panic must not unwind out of an `extern "C"` function (it aborts); cancelling
    // is best effort here, the work's own timeout still holds.
    let _ = catch_unwind(AssertUnwindSafe(|| cancel.cancel()));
}

/// Like [`without_gvl`], for work that watches `cancel`: a Ruby interrupt delivered while
/// it runs calls [`CancelHandle::cancel`], so the work can stop at once. Returns
/// `Ok(None)` if an interrupt was already pending and `work` did not run; the caller should
/// let Ruby process it (`Ruby::thread_check_ints`).
pub(crate) fn without_gvl_cancellable<F, R>(
    work: F,
    cancel: &CancelHandle,
) -> Result<Option<R>, String>
where
    F: FnOnce() -> R + Send,
    R: Send,
{
    Ok(call_without_gvl2(work, Some(cancel))?.ok())
}

/// Maps a panic reported by [`without_gvl`] or [`without_gvl_cancellable`] to the
/// `Portcullis::Error` (`internal.panic`) every binding raises for one.
pub(crate) fn panic_error(message: String) -> magnus::Error {
    crate::errors::panic_error(&message)
}
