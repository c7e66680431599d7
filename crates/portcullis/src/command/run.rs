//! Running a built argv: empty environment, no stdin, own process group, timeout, output cap.

use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::process::{
    kill_process, kill_process_group, pidfd_open, waitid, Pid, PidfdFlags, Signal, WaitId,
    WaitIdOptions,
};

use super::{CommandError, SAFE_PATH};

/// After the program exits (or is killed), how long to keep reading output that is still
/// in flight. Only a process that left the group (`setsid`) can hold a pipe open this long.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// Without a pidfd (kernels before 5.3), how often to check whether the program exited.
const POLL_SLICE: Duration = Duration::from_millis(5);

/// Resource limits set in the child just before it executes the program (soft and hard
/// limit both set to the value, so the program cannot raise them). A value above the
/// current hard limit makes the spawn fail (`command.spawn_failed`) unless the process may
/// raise limits. The process limit counts all processes of the user and is not enforced
/// for root.
///
/// ```
/// use portcullis::command::Rlimits;
/// let limits = Rlimits::new()
///     .cpu_seconds(10)
///     .address_space(512 * 1024 * 1024)
///     .file_size(10 * 1024 * 1024)
///     .processes(64);
/// assert!(!limits.is_empty());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rlimits {
    cpu_seconds: Option<u64>,
    address_space: Option<u64>,
    file_size: Option<u64>,
    processes: Option<u64>,
}

impl Rlimits {
    /// No limits (the child inherits the parent's).
    pub fn new() -> Self {
        Self::default()
    }

    /// `RLIMIT_CPU`: CPU seconds (user + system) before the kernel kills the program.
    #[must_use]
    pub fn cpu_seconds(mut self, seconds: u64) -> Self {
        self.cpu_seconds = Some(seconds);
        self
    }

    /// `RLIMIT_AS`: bytes of virtual address space.
    #[must_use]
    pub fn address_space(mut self, bytes: u64) -> Self {
        self.address_space = Some(bytes);
        self
    }

    /// `RLIMIT_FSIZE`: the largest file the program may write, in bytes.
    #[must_use]
    pub fn file_size(mut self, bytes: u64) -> Self {
        self.file_size = Some(bytes);
        self
    }

    /// `RLIMIT_NPROC`: processes of the user (not enforced for root).
    #[must_use]
    pub fn processes(mut self, count: u64) -> Self {
        self.processes = Some(count);
        self
    }

    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn pairs(&self) -> [(rustix::process::Resource, Option<u64>); 4] {
        use rustix::process::Resource;
        [
            (Resource::Cpu, self.cpu_seconds),
            (Resource::As, self.address_space),
            (Resource::Fsize, self.file_size),
            (Resource::Nproc, self.processes),
        ]
    }

    /// Runs in the forked child: only `setrlimit` system calls, no allocation, no locks.
    fn apply_in_child(&self) -> io::Result<()> {
        for (resource, value) in self.pairs() {
            if let Some(value) = value {
                rustix::process::setrlimit(
                    resource,
                    rustix::process::Rlimit {
                        current: Some(value),
                        maximum: Some(value),
                    },
                )?;
            }
        }
        Ok(())
    }

    #[allow(unsafe_code)]
    fn install(self, command: &mut Command) {
        // SAFETY: `pre_exec` runs the closure in the child between fork and exec, where
        // only async-signal-safe work is allowed. The closure owns a `Copy` value and only
        // issues `setrlimit` system calls through rustix (raw syscalls: no allocation, no
        // locks, no libc state); an error is a plain errno converted without allocating.
        unsafe {
            command.pre_exec(move || self.apply_in_child());
        }
    }
}

/// Stops a running command from another thread: [`CommandTemplate::run_cancellable`]
/// watches it, and [`CancelHandle::cancel`] makes the run kill the program's process
/// group, reap it and return `command.cancelled` at once. Clones share the same state.
/// The Ruby binding cancels through it when a Ruby interrupt (`Timeout.timeout`,
/// `Thread#raise`, `Thread#kill`) reaches the thread running the command.
///
/// ```
/// use portcullis::command::{CancelHandle, CommandTemplate};
/// let sleep = CommandTemplate::builder("/bin/sleep").arg("30").build()?;
/// let cancel = CancelHandle::new()?;
/// let stopper = cancel.clone();
/// std::thread::spawn(move || {
///     std::thread::sleep(std::time::Duration::from_millis(50));
///     stopper.cancel();
/// });
/// let err = sleep.run_cancellable::<[(&str, &str); 0], _, _>([], &cancel).unwrap_err();
/// assert_eq!(portcullis::ErrorCode::code(&err), "command.cancelled");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`CommandTemplate::run_cancellable`]: super::CommandTemplate::run_cancellable
#[derive(Debug, Clone)]
pub struct CancelHandle {
    inner: Arc<CancelState>,
}

#[derive(Debug)]
struct CancelState {
    cancelled: AtomicBool,
    /// Readable once cancelled, so a run blocked in `poll` wakes at once.
    wake: OwnedFd,
}

impl CancelHandle {
    /// A fresh handle (one eventfd).
    pub fn new() -> io::Result<Self> {
        let wake = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Self {
            inner: Arc::new(CancelState {
                cancelled: AtomicBool::new(false),
                wake,
            }),
        })
    }

    /// Asks the run to stop. Safe to call from any thread, any number of times, before or
    /// during the run; a run started after it returns `command.cancelled` without
    /// starting the program.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        // A full counter (EAGAIN) still leaves the eventfd readable: nothing to handle.
        let _ = rustix::io::write(&self.inner.wake, &1u64.to_ne_bytes());
    }

    /// Whether [`CancelHandle::cancel`] was called (since the last [`CancelHandle::reset`]).
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Arms the handle again after a [`RunningCommand::wait`] it paused: a `cancel` from
    /// before this call no longer counts.
    pub fn reset(&self) {
        self.inner.cancelled.store(false, Ordering::SeqCst);
        let mut counter = [0u8; 8];
        // EAGAIN (nothing to drain) is the expected failure.
        let _ = rustix::io::read(&self.inner.wake, &mut counter);
    }
}

/// What a run produced.
///
/// ```
/// use portcullis::command::CommandTemplate;
/// let out = CommandTemplate::builder("/bin/false").build()?.run::<[(&str, &str); 0], _, _>([])?;
/// assert!(!out.success());
/// assert_eq!(out.code(), Some(1));
/// assert_eq!(portcullis::ErrorCode::code(&out.check().unwrap_err()), "command.failed");
/// # Ok::<(), portcullis::command::CommandError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CommandOutput {
    /// How the program ended (a timeout shows as killed by `SIGKILL`).
    pub status: ExitStatus,
    /// Captured stdout, at most the template's output cap.
    pub stdout: Vec<u8>,
    /// Captured stderr, at most the template's output cap.
    pub stderr: Vec<u8>,
    /// The program ran past the timeout and its process group was killed.
    pub timed_out: bool,
    /// Stdout went past the cap; the rest was discarded.
    pub stdout_truncated: bool,
    /// Stderr went past the cap; the rest was discarded.
    pub stderr_truncated: bool,
    program: String,
    timeout: Duration,
}

impl CommandOutput {
    /// Exit status 0 and no timeout.
    pub fn success(&self) -> bool {
        self.status.success() && !self.timed_out
    }

    /// The exit code, or `None` when the program was killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The signal that killed the program, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    /// Whether stdout or stderr went past the cap.
    pub fn truncated(&self) -> bool {
        self.stdout_truncated || self.stderr_truncated
    }

    /// Returns the output when the run succeeded.
    ///
    /// # Errors
    /// `command.timeout` when the run timed out, `command.failed` when the program exited
    /// non-zero or was killed.
    pub fn check(self) -> Result<Self, CommandError> {
        if self.timed_out {
            return Err(CommandError::Timeout {
                program: self.program,
                after: self.timeout,
            });
        }
        if !self.status.success() {
            return Err(CommandError::Failed {
                program: self.program,
                status: self.status.to_string(),
            });
        }
        Ok(self)
    }
}

/// Everything `run` needs, borrowed from the template.
#[derive(Debug)]
pub(super) struct Launch<'a> {
    pub(super) program: &'a str,
    pub(super) resolved: &'a Path,
    pub(super) args: &'a [String],
    pub(super) env: &'a [(String, String)],
    pub(super) chdir: &'a Path,
    pub(super) timeout: Duration,
    pub(super) max_output: usize,
    pub(super) rlimits: Rlimits,
    pub(super) cancel: Option<&'a CancelHandle>,
}

/// Owns the child until it is reaped; if anything goes wrong first, the whole group is
/// killed and the child reaped, so no run leaves a process behind.
#[derive(Debug)]
struct Reaper {
    child: Child,
    group: Pid,
    reaped: bool,
}

impl Reaper {
    /// Kills the program's process group, and the program itself in case it moved to
    /// another group (`setpgid`). Its pid cannot have been reused: it is not reaped yet.
    fn kill_group(&self) {
        // ESRCH (already gone) is the expected failure; nothing to do then.
        let _ = kill_process_group(self.group, Signal::KILL);
        let _ = kill_process(self.group, Signal::KILL);
    }

    fn wait(&mut self) -> io::Result<ExitStatus> {
        // Even a failed wait ends our claim on the pid: ECHILD means someone else in this
        // process reaped it (a `waitpid(-1)`), and the pid may already be reused, so Drop
        // must not signal it.
        self.reaped = true;
        self.child.wait()
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill_group();
            let _ = self.child.wait();
        }
    }
}

#[derive(Debug)]
struct Capture {
    bytes: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Capture {
    fn new(cap: usize) -> Self {
        Self {
            bytes: Vec::new(),
            cap,
            truncated: false,
        }
    }

    fn push(&mut self, data: &[u8]) {
        let room = self.cap.saturating_sub(self.bytes.len());
        let kept = data.get(..room).unwrap_or(data);
        self.bytes.extend_from_slice(kept);
        if kept.len() < data.len() {
            self.truncated = true;
        }
    }
}

/// Reads once from a pipe that poll reported ready; `false` at end of file.
fn read_ready(pipe: &mut impl Read, buf: &mut [u8], capture: &mut Capture) -> io::Result<bool> {
    match pipe.read(buf) {
        Ok(0) => Ok(false),
        Ok(n) => {
            capture.push(buf.get(..n).unwrap_or_default());
            Ok(true)
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
            ) =>
        {
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

pub(super) fn run(launch: &Launch<'_>) -> Result<CommandOutput, CommandError> {
    if launch.cancel.is_some_and(CancelHandle::is_cancelled) {
        return Err(CommandError::Cancelled {
            program: launch.program.to_owned(),
        });
    }
    let mut running = start(launch)?;
    match launch.cancel {
        // Dropping `running` kills the group and reaps the child.
        Some(cancel) => running.wait(cancel)?.ok_or_else(|| running.cancelled()),
        None => running.wait_unwatched(),
    }
}

/// Starts the program: empty environment plus the allowlist, no stdin, its own process
/// group, the rlimits; its output is collected by [`RunningCommand::wait`].
pub(super) fn start(launch: &Launch<'_>) -> Result<RunningCommand, CommandError> {
    let mut command = Command::new(launch.resolved);
    command
        .arg0(launch.program)
        .args(launch.args)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(launch.chdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if !launch.rlimits.is_empty() {
        launch.rlimits.install(&mut command);
    }
    let mut child = command
        .spawn()
        .map_err(|source| CommandError::SpawnFailed {
            program: launch.program.to_owned(),
            source,
        })?;
    let group = Pid::from_child(&child);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    // A pidfd turns "the program exited" into a poll event; it does not reap the child,
    // so the group id stays valid until we kill the leftovers.
    let pidfd = pidfd_open(group, PidfdFlags::empty()).ok();
    Ok(RunningCommand {
        program: launch.program.to_owned(),
        timeout: launch.timeout,
        reaper: Reaper {
            child,
            group,
            reaped: false,
        },
        stdout,
        stderr,
        out: Capture::new(launch.max_output),
        err: Capture::new(launch.max_output),
        pidfd,
        deadline: Instant::now() + launch.timeout,
        timed_out: false,
        draining: false,
    })
}

/// A program that is running (from [`super::CommandTemplate::start`]). [`wait`] collects
/// its output until it ends, and can pause when a [`CancelHandle`] fires **without**
/// stopping the program, so a caller that was only woken up (Ruby delivering a signal to
/// its thread, say) can go back to waiting. Dropping it kills the program's process group
/// and reaps the child: nothing outlives it.
///
/// ```
/// use portcullis::command::{CancelHandle, CommandTemplate};
/// let echo = CommandTemplate::builder("/bin/echo").arg("hi").build()?;
/// let cancel = CancelHandle::new()?;
/// let mut running = echo.start::<[(&str, &str); 0], _, _>([])?;
/// let out = loop {
///     cancel.reset();
///     if let Some(out) = running.wait(&cancel)? {
///         break out;
///     }
///     // woken by `cancel`: decide here whether to stop (drop) or to wait on
/// };
/// assert_eq!(out.stdout, b"hi\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`wait`]: RunningCommand::wait
#[derive(Debug)]
pub struct RunningCommand {
    program: String,
    timeout: Duration,
    reaper: Reaper,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    out: Capture,
    err: Capture,
    pidfd: Option<OwnedFd>,
    deadline: Instant,
    timed_out: bool,
    /// Set once the program exited or was killed: only output is left to collect.
    draining: bool,
}

impl RunningCommand {
    /// Collects output until the program has ended (`Ok(Some(output))`; a timeout kills the
    /// group and shows as `timed_out`), or until `cancel` fires (`Ok(None)`: the program
    /// keeps running; [`CancelHandle::reset`] and call again, or drop this to stop it). The
    /// template's timeout counts from the start, across pauses. Each call makes progress:
    /// it waits once even when `cancel` has already fired.
    ///
    /// # Errors
    /// `command.output` when reading the pipes or reaping the child fails.
    pub fn wait(&mut self, cancel: &CancelHandle) -> Result<Option<CommandOutput>, CommandError> {
        match self.collect(Some(cancel)) {
            Ok(true) => self.finish().map(Some),
            Ok(false) => Ok(None),
            Err(source) => Err(self.output_error(source)),
        }
    }

    /// Collects output until the program has ended, watching nothing else: at most its
    /// timeout (plus a short drain).
    ///
    /// # Errors
    /// `command.output` when reading the pipes or reaping the child fails.
    pub fn wait_unwatched(&mut self) -> Result<CommandOutput, CommandError> {
        match self.collect(None) {
            Ok(_) => self.finish(),
            Err(source) => Err(self.output_error(source)),
        }
    }

    /// The error for a run its caller stopped (`command.cancelled`).
    pub fn cancelled(&self) -> CommandError {
        CommandError::Cancelled {
            program: self.program.clone(),
        }
    }

    fn output_error(&self, source: io::Error) -> CommandError {
        CommandError::Output {
            program: self.program.clone(),
            source,
        }
    }

    fn finish(&mut self) -> Result<CommandOutput, CommandError> {
        let status = self
            .reaper
            .wait()
            .map_err(|source| self.output_error(source))?;
        Ok(CommandOutput {
            status,
            stdout: std::mem::take(&mut self.out.bytes),
            stderr: std::mem::take(&mut self.err.bytes),
            timed_out: self.timed_out,
            stdout_truncated: self.out.truncated,
            stderr_truncated: self.err.truncated,
            program: self.program.clone(),
            timeout: self.timeout,
        })
    }

    /// Reads both pipes until the program has exited and the pipes are closed (`true`), the
    /// deadline passes (the group is killed, then the rest is drained), or `cancel` has
    /// fired after at least one wait (`false`). Leaves the child unreaped.
    fn collect(&mut self, cancel: Option<&CancelHandle>) -> io::Result<bool> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            if self.draining && self.stdout.is_none() && self.stderr.is_none() {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= self.deadline {
                if self.draining {
                    return Ok(true); // a process outside the group still holds a pipe: stop reading
                }
                self.reaper.kill_group();
                self.timed_out = true;
                self.draining = true;
                self.deadline = now + DRAIN_GRACE;
                continue;
            }
            let mut wait_for = self.deadline - now;
            if self.pidfd.is_none() && !self.draining {
                wait_for = wait_for.min(POLL_SLICE);
            }

            let ready = PollFlags::IN | PollFlags::HUP | PollFlags::ERR;
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(4);
            let out_at = self.stdout.as_ref().map(|p| {
                fds.push(PollFd::new(p, PollFlags::IN));
                fds.len() - 1
            });
            let err_at = self.stderr.as_ref().map(|p| {
                fds.push(PollFd::new(p, PollFlags::IN));
                fds.len() - 1
            });
            let pid_at = self.pidfd.as_ref().filter(|_| !self.draining).map(|p| {
                fds.push(PollFd::new(p, PollFlags::IN));
                fds.len() - 1
            });
            // Readable once cancelled: wakes the poll; the flag is checked below.
            if let Some(cancel) = cancel {
                fds.push(PollFd::new(&cancel.inner.wake, PollFlags::IN));
            }
            match poll(&mut fds, Some(&timespec(wait_for))) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let is_ready = |at: Option<usize>| {
                at.and_then(|i| fds.get(i))
                    .is_some_and(|f| f.revents().intersects(ready))
            };
            let (out_ready, err_ready, pid_ready) =
                (is_ready(out_at), is_ready(err_at), is_ready(pid_at));
            drop(fds);

            if out_ready {
                if let Some(pipe) = self.stdout.as_mut() {
                    if !read_ready(pipe, &mut buf, &mut self.out)? {
                        self.stdout = None;
                    }
                }
            }
            if err_ready {
                if let Some(pipe) = self.stderr.as_mut() {
                    if !read_ready(pipe, &mut buf, &mut self.err)? {
                        self.stderr = None;
                    }
                }
            }
            let exited = if self.draining {
                false
            } else if self.pidfd.is_some() {
                pid_ready
            } else {
                leader_exited(self.reaper.group)?
            };
            if exited {
                // Whatever the program left running in its group goes with it.
                self.reaper.kill_group();
                self.draining = true;
                self.deadline = self.deadline.min(Instant::now() + DRAIN_GRACE);
            }
            if cancel.is_some_and(CancelHandle::is_cancelled) {
                return Ok(false);
            }
        }
    }
}

/// Whether the child has exited, without reaping it.
fn leader_exited(pid: Pid) -> io::Result<bool> {
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    Ok(waitid(WaitId::Pid(pid), options)?.is_some())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ErrorCode;

    /// A pipe whose read fails the way a broken descriptor does.
    struct Broken;

    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(5)) // EIO
        }
    }

    /// A pipe that is interrupted once, then has data, then ends.
    struct Flaky(u8);

    impl Read for Flaky {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0 += 1;
            match self.0 {
                1 => Err(io::ErrorKind::Interrupted.into()),
                2 => {
                    buf[..3].copy_from_slice(b"abc");
                    Ok(3)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn a_failing_pipe_is_an_error_and_becomes_command_output() {
        let mut capture = Capture::new(16);
        let mut buf = [0u8; 8];
        let err = read_ready(&mut Broken, &mut buf, &mut capture).unwrap_err();
        let err = CommandError::Output {
            program: "/bin/tool".to_owned(),
            source: err,
        };
        assert_eq!(err.code(), "command.output");
        assert!(err.to_string().contains("/bin/tool"), "{err}");
    }

    #[test]
    fn interrupted_reads_retry_and_captures_stop_at_the_cap() {
        let mut capture = Capture::new(2);
        let mut buf = [0u8; 8];
        let mut pipe = Flaky(0);
        assert!(read_ready(&mut pipe, &mut buf, &mut capture).unwrap());
        assert!(read_ready(&mut pipe, &mut buf, &mut capture).unwrap());
        assert!(!read_ready(&mut pipe, &mut buf, &mut capture).unwrap());
        assert_eq!(capture.bytes, b"ab");
        assert!(capture.truncated);
    }
}
