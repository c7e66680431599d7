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

    /// Whether [`CancelHandle::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
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
    let cancelled = || CommandError::Cancelled {
        program: launch.program.to_owned(),
    };
    if launch.cancel.is_some_and(CancelHandle::is_cancelled) {
        return Err(cancelled());
    }
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
    let child = command
        .spawn()
        .map_err(|source| CommandError::SpawnFailed {
            program: launch.program.to_owned(),
            source,
        })?;
    let group = Pid::from_child(&child);
    let mut reaper = Reaper {
        child,
        group,
        reaped: false,
    };
    let output_error = |source| CommandError::Output {
        program: launch.program.to_owned(),
        source,
    };

    let stdout = reaper.child.stdout.take();
    let stderr = reaper.child.stderr.take();
    let (out, err, ending) = capture(
        &reaper,
        stdout,
        stderr,
        launch.timeout,
        launch.max_output,
        launch.cancel,
    )
    .map_err(output_error)?;
    let status = reaper.wait().map_err(output_error)?;
    if ending == Ending::Cancelled {
        return Err(cancelled());
    }
    let timed_out = ending == Ending::TimedOut;
    Ok(CommandOutput {
        status,
        stdout: out.bytes,
        stderr: err.bytes,
        timed_out,
        stdout_truncated: out.truncated,
        stderr_truncated: err.truncated,
        program: launch.program.to_owned(),
        timeout: launch.timeout,
    })
}

/// How the capture loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The program exited and its output was read.
    Exited,
    /// The deadline passed; the group was killed.
    TimedOut,
    /// The run was cancelled; the group was killed and the output abandoned.
    Cancelled,
}

/// Reads both pipes until the program has exited and the pipes are closed, the deadline
/// passes, or `cancel` fires. Leaves the child unreaped (the caller waits for it).
fn capture(
    reaper: &Reaper,
    mut stdout: Option<ChildStdout>,
    mut stderr: Option<ChildStderr>,
    timeout: Duration,
    max_output: usize,
    cancel: Option<&CancelHandle>,
) -> io::Result<(Capture, Capture, Ending)> {
    let mut out = Capture::new(max_output);
    let mut err = Capture::new(max_output);
    let mut buf = [0u8; 64 * 1024];
    // A pidfd turns "the program exited" into a poll event; it does not reap the child,
    // so the group id stays valid until we kill the leftovers.
    let pidfd = pidfd_open(reaper.group, PidfdFlags::empty()).ok();
    let mut deadline = Instant::now() + timeout;
    let mut timed_out = false;
    // Set once the program exited or was killed: only output is left to collect.
    let mut draining = false;

    loop {
        if cancel.is_some_and(CancelHandle::is_cancelled) {
            reaper.kill_group();
            return Ok((out, err, Ending::Cancelled));
        }
        if draining && stdout.is_none() && stderr.is_none() {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            if draining {
                break; // a process outside the group still holds a pipe: stop reading
            }
            reaper.kill_group();
            timed_out = true;
            draining = true;
            deadline = now + DRAIN_GRACE;
            continue;
        }
        let mut wait_for = deadline - now;
        if pidfd.is_none() && !draining {
            wait_for = wait_for.min(POLL_SLICE);
        }

        let ready = PollFlags::IN | PollFlags::HUP | PollFlags::ERR;
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(3);
        let out_at = stdout.as_ref().map(|p| {
            fds.push(PollFd::new(p, PollFlags::IN));
            fds.len() - 1
        });
        let err_at = stderr.as_ref().map(|p| {
            fds.push(PollFd::new(p, PollFlags::IN));
            fds.len() - 1
        });
        let pid_at = pidfd.as_ref().filter(|_| !draining).map(|p| {
            fds.push(PollFd::new(p, PollFlags::IN));
            fds.len() - 1
        });
        // Readable once cancelled: wakes the poll; the flag is checked at the loop's top.
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
            if let Some(pipe) = stdout.as_mut() {
                if !read_ready(pipe, &mut buf, &mut out)? {
                    stdout = None;
                }
            }
        }
        if err_ready {
            if let Some(pipe) = stderr.as_mut() {
                if !read_ready(pipe, &mut buf, &mut err)? {
                    stderr = None;
                }
            }
        }
        let exited = if draining {
            false
        } else if pidfd.is_some() {
            pid_ready
        } else {
            leader_exited(reaper.group)?
        };
        if exited {
            // Whatever the program left running in its group goes with it.
            reaper.kill_group();
            draining = true;
            deadline = deadline.min(Instant::now() + DRAIN_GRACE);
        }
    }
    let ending = if timed_out {
        Ending::TimedOut
    } else {
        Ending::Exited
    };
    Ok((out, err, ending))
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
