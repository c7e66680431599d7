//! Files strictly beneath a root directory, on disk, not only on paper.
//!
//! A [`SafeRoot`] opens its directory once and keeps the handle. Every operation takes a
//! name relative to that root, checks it lexically ([`check_name`]), then resolves it on
//! disk *relative to the handle* with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`
//! (or, where the kernel lacks openat2 or a seccomp filter blocks it, a component-by-
//! component `O_NOFOLLOW` walk that expands symlinks itself). It hands back open handles,
//! not path strings, so there is no window between checking a name and using it.
//!
//! What it closes: `../`, absolute names, the `start_with?` prefix bug (`public2` is not
//! inside `public`), symlinks out of the root (relative, absolute, `/proc/self/root`),
//! symlink loops, and directories swapped for symlinks while a request is in flight.
//!
//! ```
//! use portcullis::{fs::SafeRoot, ErrorCode};
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("hello.txt"), b"hi").unwrap();
//! let root = SafeRoot::new(dir.path()).unwrap();
//! assert_eq!(root.read("hello.txt").unwrap(), b"hi");
//! assert_eq!(root.open("../etc/passwd").unwrap_err().code(), "path.escape");
//! ```

mod error;
mod lexical;
mod resolve;

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{
    fstat, mkdirat, renameat_with, unlinkat, AtFlags, Dir, FileType, Mode, OFlags, RenameFlags,
};
use rustix::io::Errno;

pub use error::PathError;
use lexical::CheckedName;
pub use lexical::{check_name, MAX_COMPONENT_BYTES, MAX_PATH_BYTES};
use resolve::{open_beneath, Refusal, Resolver};

/// Whether symlinks beneath the root may be followed.
///
/// Absolute symlinks are refused under both policies (they name the host's `/`, not the
/// root), and `..` never climbs above the root whichever way it is reached.
///
/// ```
/// use portcullis::fs::SymlinkPolicy;
/// assert_eq!(SymlinkPolicy::default(), SymlinkPolicy::Within);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SymlinkPolicy {
    /// Follow relative symlinks while every step stays beneath the root (the default).
    #[default]
    Within,
    /// Refuse any name that goes through a symlink (`path.symlink`).
    Deny,
}

/// Something that can be used as a name beneath a root: `&str`, `String`, `&[u8]`,
/// `&OsStr`, `&Path` and their owned forms. Bytes that are not UTF-8 are refused with
/// `path.not_utf8`, not guessed at.
///
/// ```
/// use portcullis::fs::Name;
/// assert_eq!("a/b".name_bytes(), b"a/b");
/// assert_eq!(std::path::Path::new("a").name_bytes(), b"a");
/// ```
pub trait Name {
    /// The raw bytes of the name.
    fn name_bytes(&self) -> &[u8];
}

impl Name for str {
    fn name_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}
impl Name for String {
    fn name_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}
impl Name for [u8] {
    fn name_bytes(&self) -> &[u8] {
        self
    }
}
impl<const N: usize> Name for [u8; N] {
    fn name_bytes(&self) -> &[u8] {
        self
    }
}
impl Name for Vec<u8> {
    fn name_bytes(&self) -> &[u8] {
        self
    }
}
impl Name for OsStr {
    fn name_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}
impl Name for OsString {
    fn name_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}
impl Name for Path {
    fn name_bytes(&self) -> &[u8] {
        self.as_os_str().as_bytes()
    }
}
impl Name for PathBuf {
    fn name_bytes(&self) -> &[u8] {
        self.as_os_str().as_bytes()
    }
}
impl<T: Name + ?Sized> Name for &T {
    fn name_bytes(&self) -> &[u8] {
        (**self).name_bytes()
    }
}

/// How [`SafeRoot::create`] opens a file for writing.
///
/// ```
/// use portcullis::fs::CreateOptions;
/// let opts = CreateOptions::new().exclusive(true).mode(0o600);
/// assert_eq!(opts, CreateOptions { exclusive: true, append: false, mode: 0o600 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateOptions {
    /// Fail with `path.exists` if the name exists (`O_EXCL`); otherwise truncate or append.
    pub exclusive: bool,
    /// Append to an existing file instead of truncating it.
    pub append: bool,
    /// Permission bits for a new file, before the process umask. Execute, setuid, setgid
    /// and sticky bits are always stripped: a SafeRoot never creates runnable files.
    pub mode: u32,
}

impl Default for CreateOptions {
    fn default() -> Self {
        Self {
            exclusive: false,
            append: false,
            mode: 0o640,
        }
    }
}

impl CreateOptions {
    /// Truncating, non-exclusive, mode 0640.
    ///
    /// ```
    /// assert_eq!(portcullis::fs::CreateOptions::new().mode, 0o640);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets [`CreateOptions::exclusive`].
    ///
    /// ```
    /// assert!(portcullis::fs::CreateOptions::new().exclusive(true).exclusive);
    /// ```
    pub fn exclusive(mut self, yes: bool) -> Self {
        self.exclusive = yes;
        self
    }
    /// Sets [`CreateOptions::append`].
    ///
    /// ```
    /// assert!(portcullis::fs::CreateOptions::new().append(true).append);
    /// ```
    pub fn append(mut self, yes: bool) -> Self {
        self.append = yes;
        self
    }
    /// Sets [`CreateOptions::mode`] (execute bits are stripped when the file is created).
    ///
    /// ```
    /// assert_eq!(portcullis::fs::CreateOptions::new().mode(0o600).mode, 0o600);
    /// ```
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
}

/// Mode for directories made by [`SafeRoot::mkdir_p`] (before the umask).
const DIR_MODE: u32 = 0o750;
/// Bits a created file may carry: read and write only.
const FILE_MODE_MASK: u32 = 0o666;
/// Longest accepted upload extension.
const MAX_EXTENSION_LEN: usize = 16;

/// A directory that names are confined beneath, held open as a handle.
///
/// Cheap to share: `SafeRoot` is `Send + Sync`; put it in an `Arc` and use it from any
/// thread. See the [module documentation](self) for what it guarantees.
///
/// ```
/// use portcullis::fs::{SafeRoot, SymlinkPolicy};
/// let dir = tempfile::tempdir().unwrap();
/// let root = SafeRoot::new(dir.path()).unwrap().with_symlinks(SymlinkPolicy::Deny);
/// assert_eq!(root.symlinks(), SymlinkPolicy::Deny);
/// ```
#[derive(Debug)]
pub struct SafeRoot {
    dir: OwnedFd,
    path: PathBuf,
    policy: SymlinkPolicy,
    resolver: Resolver,
}

impl SafeRoot {
    /// Opens `dir` (which may itself be reached through symlinks: the administrator chose
    /// it) and keeps the handle; every later operation is relative to that handle, even if
    /// `dir` is renamed or replaced afterwards.
    ///
    /// ```
    /// use portcullis::{fs::SafeRoot, ErrorCode};
    /// let err = SafeRoot::new("/definitely/not/here").unwrap_err();
    /// assert_eq!(err.code(), "path.root_missing");
    /// ```
    pub fn new(dir: impl AsRef<Path>) -> Result<Self, PathError> {
        let dir = dir.as_ref();
        let shown = || error::display_name(dir.as_os_str().as_bytes());
        let handle = rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| match errno {
            Errno::NOENT => PathError::RootMissing { root: shown() },
            errno => os_error(shown(), errno),
        })?;
        // The canonical path is only for join/resolve_for_argv (display and argv); access
        // always goes through `handle`.
        let path = std::fs::canonicalize(dir).map_err(|source| PathError::Io {
            name: shown(),
            source,
        })?;
        Ok(Self {
            dir: handle,
            path,
            policy: SymlinkPolicy::default(),
            resolver: Resolver::Auto,
        })
    }

    /// Returns this root with the given symlink policy.
    ///
    /// ```
    /// use portcullis::fs::{SafeRoot, SymlinkPolicy};
    /// let dir = tempfile::tempdir().unwrap();
    /// let root = SafeRoot::new(dir.path()).unwrap().with_symlinks(SymlinkPolicy::Deny);
    /// assert_eq!(root.symlinks(), SymlinkPolicy::Deny);
    /// ```
    pub fn with_symlinks(mut self, policy: SymlinkPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Forces (or stops forcing) the portable component-by-component walk instead of
    /// `openat2`. The walk is what runs automatically where openat2 is unavailable; this
    /// switch exists so tests can run every fixture through both resolvers.
    ///
    /// ```
    /// use portcullis::fs::SafeRoot;
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(dir.path().join("a"), b"x").unwrap();
    /// let root = SafeRoot::new(dir.path()).unwrap().force_walk(true);
    /// assert_eq!(root.read("a").unwrap(), b"x");
    /// ```
    pub fn force_walk(mut self, yes: bool) -> Self {
        self.resolver = if yes { Resolver::Walk } else { Resolver::Auto };
        self
    }

    /// The symlink policy in force.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let root = portcullis::fs::SafeRoot::new(dir.path()).unwrap();
    /// assert_eq!(root.symlinks(), portcullis::fs::SymlinkPolicy::Within);
    /// ```
    pub fn symlinks(&self) -> SymlinkPolicy {
        self.policy
    }

    /// The root's canonical path when it was opened (for display; access uses the handle).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let root = portcullis::fs::SafeRoot::new(dir.path()).unwrap();
    /// assert!(root.path().is_absolute());
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn checked<'a>(&self, name: &'a [u8]) -> Result<CheckedName<'a>, PathError> {
        lexical::check(name)
    }

    fn resolve(
        &self,
        checked: &CheckedName<'_>,
        flags: OFlags,
        mode: Mode,
    ) -> Result<OwnedFd, PathError> {
        open_beneath(
            self.dir.as_fd(),
            checked.text,
            checked.climbs,
            flags,
            mode,
            self.policy,
            self.resolver,
        )
        .map_err(|refusal| refusal_error(checked.text, refusal))
    }

    /// Opens a regular file beneath the root for reading.
    ///
    /// Directories, FIFOs, devices and sockets are refused with `path.not_a_file` (a FIFO
    /// is opened non-blocking first, so it cannot hang the caller).
    ///
    /// ```
    /// use std::io::Read;
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(dir.path().join("a.txt"), b"hi").unwrap();
    /// let root = portcullis::fs::SafeRoot::new(dir.path()).unwrap();
    /// let mut s = String::new();
    /// root.open("a.txt").unwrap().read_to_string(&mut s).unwrap();
    /// assert_eq!(s, "hi");
    /// ```
    pub fn open(&self, name: impl Name) -> Result<File, PathError> {
        let checked = self.checked(name.name_bytes())?;
        let fd = self.resolve(&checked, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty())?;
        regular_file(checked.text, fd)
    }

    /// Reads a whole regular file beneath the root.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(dir.path().join("a"), b"x").unwrap();
    /// let root = portcullis::fs::SafeRoot::new(dir.path()).unwrap();
    /// assert_eq!(root.read("a").unwrap(), b"x");
    /// ```
    pub fn read(&self, name: impl Name) -> Result<Vec<u8>, PathError> {
        let bytes = name.name_bytes();
        let mut file = self.open(bytes)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(|source| io_error(bytes, source))?;
        Ok(data)
    }

    /// Opens (creating if needed) a regular file beneath the root for writing.
    ///
    /// A name ending in `.`, `..` or `/` is refused with `path.not_a_file`.
    /// New files get `options.mode` with execute/setuid/setgid/sticky bits removed, then
    /// the process umask applies. Existing files keep their mode.
    ///
    /// ```
    /// use std::io::Write;
    /// use portcullis::{fs::{CreateOptions, SafeRoot}, ErrorCode};
    /// let dir = tempfile::tempdir().unwrap();
    /// let root = SafeRoot::new(dir.path()).unwrap();
    /// root.create("out.txt", CreateOptions::new()).unwrap().write_all(b"x").unwrap();
    /// let again = root.create("out.txt", CreateOptions::new().exclusive(true));
    /// assert_eq!(again.unwrap_err().code(), "path.exists");
    /// ```
    pub fn create(&self, name: impl Name, options: CreateOptions) -> Result<File, PathError> {
        let checked = self.checked(name.name_bytes())?;
        if checked.last_normal.is_none() {
            // `.`, `..` or a trailing `/` name a directory, never a file to create.
            return Err(PathError::NotAFile {
                name: error::display_name(checked.text.as_bytes()),
            });
        }
        let mut flags = OFlags::WRONLY | OFlags::CREATE | OFlags::NONBLOCK;
        if options.exclusive {
            flags |= OFlags::EXCL;
        }
        flags |= if options.append {
            OFlags::APPEND
        } else {
            OFlags::TRUNC
        };
        let mode = Mode::from_bits_truncate(options.mode & FILE_MODE_MASK);
        let fd = self.resolve(&checked, flags, mode)?;
        regular_file(checked.text, fd)
    }

    /// Writes `data` to `name` (truncating, or refusing an existing name if `exclusive`).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let root = portcullis::fs::SafeRoot::new(dir.path()).unwrap();
    /// root.write("a", b"x", false).unwrap();
    /// assert_eq!(root.read("a").unwrap(), b"x");
    /// ```
    pub fn write(&self, name: impl Name, data: &[u8], exclusive: bool) -> Result<(), PathError> {
        let bytes = name.name_bytes();
        let mut file = self.create(bytes, CreateOptions::new().exclusive(exclusive))?;
        file.write_all(data)
            .map_err(|source| io_error(bytes, source))
    }

    /// Creates a directory and any missing parents (mode 0750 before the umask) and
    /// returns a handle to it. Each level is created with `mkdirat` relative to a parent
    /// handle that was itself resolved beneath the root.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let root = portcullis::fs::SafeRoot::new(dir.path()).unwrap();
    /// root.mkdir_p("a/b/c").unwrap();
    /// assert!(root.metadata("a/b/c").unwrap().is_dir());
    /// ```
    pub fn mkdir_p(&self, name: impl Name) -> Result<OwnedFd, PathError> {
        let checked = self.checked(name.name_bytes())?;
        let text = checked.text;
        let mut start = 0;
        for component in text.split('/') {
            let end = start + component.len();
            if !matches!(component, "" | "." | "..") {
                let parent = parent_text(text.get(..start).unwrap_or(""));
                let parent_name = lexical::check(parent.as_bytes())?;
                let dir = self.resolve(&parent_name, directory_path_flags(), Mode::empty())?;
                match mkdirat(&dir, component, Mode::from_bits_truncate(DIR_MODE)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(errno) => {
                        return Err(os_error(error::display_name(text.as_bytes()), errno))
                    }
                }
            }
            start = end + 1;
        }
        self.resolve(&checked, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
    }

    /// Metadata of what `name` resolves to (symlinks followed under the policy).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(dir.path().join("a"), b"xyz").unwrap();
    /// let root = portcullis::fs::SafeRoot::new(dir.path()).unwrap();
    /// assert_eq!(root.metadata("a").unwrap().len(), 3);
    /// ```
    pub fn metadata(&self, name: impl Name) -> Result<Metadata, PathError> {
        let checked = self.checked(name.name_bytes())?;
        let fd = self.resolve(&checked, OFlags::PATH, Mode::empty())?;
        File::from(fd)
            .metadata()
            .map_err(|source| io_error(checked.text.as_bytes(), source))
    }

    /// Opens `name` without reading it (an `O_PATH` handle): enough to `fstat` it or to
    /// prove it exists beneath the root.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let root = portcullis::fs::SafeRoot::new(dir.path()).unwrap();
    /// assert!(root.open_path(".").is_ok());
    /// ```
    pub fn open_path(&self, name: impl Name) -> Result<OwnedFd, PathError> {
        let checked = self.checked(name.name_bytes())?;
        self.resolve(&checked, OFlags::PATH, Mode::empty())
    }

    /// The entry names of a directory beneath the root, sorted, without `.` and `..`.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(dir.path().join("b"), b"").unwrap();
    /// std::fs::write(dir.path().join("a"), b"").unwrap();
    /// let root = portcullis::fs::SafeRoot::new(dir.path()).unwrap();
    /// assert_eq!(root.read_dir(".").unwrap(), ["a", "b"]);
    /// ```
    pub fn read_dir(&self, name: impl Name) -> Result<Vec<OsString>, PathError> {
        let checked = self.checked(name.name_bytes())?;
        let fd = self.resolve(&checked, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
        let shown = || error::display_name(checked.text.as_bytes());
        let mut dir = Dir::new(fd).map_err(|errno| os_error(shown(), errno))?;
        let mut names = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|errno| os_error(shown(), errno))?;
            let bytes = entry.file_name().to_bytes();
            if bytes != b"." && bytes != b".." {
                names.push(OsString::from_vec(bytes.to_vec()));
            }
        }
        names.sort();
        Ok(names)
    }

    /// Removes a file, a symlink (never its target) or an empty directory. The last
    /// component must be an ordinary name: `.`, `..` and a trailing `/` are refused with
    /// `path.not_a_file`.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(dir.path().join("a"), b"").unwrap();
    /// let root = portcullis::fs::SafeRoot::new(dir.path()).unwrap();
    /// root.remove("a").unwrap();
    /// assert!(!dir.path().join("a").exists());
    /// ```
    pub fn remove(&self, name: impl Name) -> Result<(), PathError> {
        let checked = self.checked(name.name_bytes())?;
        let shown = || error::display_name(checked.text.as_bytes());
        let Some(last) = checked.last_normal else {
            return Err(PathError::NotAFile { name: shown() });
        };
        let parent = parent_text(
            checked
                .text
                .get(..checked.text.len() - last.len())
                .unwrap_or(""),
        );
        let parent_name = lexical::check(parent.as_bytes())?;
        let dir = self
            .resolve(&parent_name, directory_path_flags(), Mode::empty())
            .map_err(|e| with_full_name(e, shown()))?;
        match unlinkat(&dir, last, AtFlags::empty()) {
            Ok(()) => Ok(()),
            Err(Errno::ISDIR) => {
                unlinkat(&dir, last, AtFlags::REMOVEDIR).map_err(|errno| os_error(shown(), errno))
            }
            Err(errno) => Err(os_error(shown(), errno)),
        }
    }

    /// The absolute path `root/name`, lexically normalized, **for logging and display
    /// only**: it is not race-safe (a symlink may appear on that path after this returns)
    /// and it does not look at the disk. Open through the `SafeRoot` instead.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let root = portcullis::fs::SafeRoot::new(dir.path()).unwrap();
    /// assert_eq!(root.join("a/./b/../c").unwrap(), root.path().join("a/c"));
    /// ```
    pub fn join(&self, name: impl Name) -> Result<PathBuf, PathError> {
        let checked = self.checked(name.name_bytes())?;
        let mut path = self.path.clone();
        for component in checked.normalized() {
            path.push(component);
        }
        Ok(path)
    }

    /// For handing a file to another program as an argument (the command capability):
    /// resolves `name` beneath the root exactly like [`SafeRoot::open`] would, then returns
    /// the absolute path of what it resolved to (read back from the open handle), which is
    /// checked to lie beneath the root's path.
    ///
    /// Residual race: the other program opens the *path* later, so a process that can
    /// rename or replace directories inside the root between this call and that open could
    /// redirect it. Use it only for roots that untrusted parties cannot write to, or pass
    /// an open descriptor instead where the program accepts one.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(dir.path().join("in.txt"), b"").unwrap();
    /// let root = portcullis::fs::SafeRoot::new(dir.path()).unwrap();
    /// assert_eq!(root.resolve_for_argv("in.txt").unwrap(), root.path().join("in.txt"));
    /// ```
    pub fn resolve_for_argv(&self, name: impl Name) -> Result<PathBuf, PathError> {
        let checked = self.checked(name.name_bytes())?;
        let fd = self.resolve(&checked, OFlags::PATH, Mode::empty())?;
        let shown = || error::display_name(checked.text.as_bytes());
        let real =
            std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|source| {
                PathError::Io {
                    name: shown(),
                    source,
                }
            })?;
        if real.starts_with(&self.path) {
            Ok(real)
        } else {
            // The root itself was moved after it was opened: its old path now names
            // something else, so no path can be handed out honestly.
            Err(PathError::Escape { name: shown() })
        }
    }

    /// Stores an upload under the SHA-256 of its content plus an extension taken from
    /// `original_name` and checked against `allowed_extensions` (case-insensitive, with or
    /// without the leading dot). The client's name is never used on disk. Returns the
    /// stored name, e.g. `"9f86d0….png"`.
    ///
    /// The file is written under a random temporary name (created `O_EXCL`) and renamed
    /// into place without replacing anything, so readers never see a partial file. Storing
    /// the same content twice returns the same name.
    ///
    /// ```
    /// use portcullis::{fs::SafeRoot, ErrorCode};
    /// let dir = tempfile::tempdir().unwrap();
    /// let root = SafeRoot::new(dir.path()).unwrap();
    /// let name = root.store_upload("../../Cat.PNG", b"png bytes", &[".png", ".jpg"]).unwrap();
    /// assert!(name.ends_with(".png") && name.len() == 64 + 4);
    /// let err = root.store_upload("shell.php", b"<?php", &[".png"]).unwrap_err();
    /// assert_eq!(err.code(), "path.extension");
    /// ```
    pub fn store_upload(
        &self,
        original_name: &str,
        bytes: &[u8],
        allowed_extensions: &[&str],
    ) -> Result<String, PathError> {
        let extension = upload_extension(original_name, allowed_extensions)?;
        let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
        let stored = format!("{}.{}", hex(digest.as_ref()), extension);
        let mut nonce = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce).map_err(
            |_| PathError::Io {
                name: stored.clone(),
                source: std::io::Error::other("no randomness for the temporary name"),
            },
        )?;
        let temporary = format!(".upload-{}.tmp", hex(&nonce));
        let written = self
            .create(temporary.as_str(), CreateOptions::new().exclusive(true))
            .and_then(|mut file| {
                file.write_all(bytes)
                    .map_err(|source| io_error(temporary.as_bytes(), source))
            });
        let outcome = written.and_then(|()| {
            match renameat_with(
                &self.dir,
                temporary.as_str(),
                &self.dir,
                stored.as_str(),
                RenameFlags::NOREPLACE,
            ) {
                Ok(()) => Ok(()),
                Err(Errno::EXIST) => {
                    // Same content already stored: same name, nothing to do.
                    let _ = unlinkat(&self.dir, temporary.as_str(), AtFlags::empty());
                    Ok(())
                }
                Err(errno) => Err(os_error(stored.clone(), errno)),
            }
        });
        if outcome.is_err() {
            let _ = unlinkat(&self.dir, temporary.as_str(), AtFlags::empty());
        }
        outcome.map(|()| stored)
    }
}

/// `O_PATH | O_DIRECTORY`: a handle to a directory that can anchor `*at` calls.
fn directory_path_flags() -> OFlags {
    OFlags::PATH | OFlags::DIRECTORY
}

/// `"a/b/"` -> `"a/b"`, `""` -> `"."`: the parent part of a name, as a name.
fn parent_text(prefix: &str) -> &str {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        "."
    } else {
        trimmed
    }
}

/// Errors about the parent directory are reported with the full name.
fn with_full_name(err: PathError, name: String) -> PathError {
    match err {
        PathError::NotFound { .. } => PathError::NotFound { name },
        PathError::NotADirectory { .. } => PathError::NotADirectory { name },
        PathError::Escape { .. } => PathError::Escape { name },
        PathError::Symlink { .. } => PathError::Symlink { name },
        other => other,
    }
}

/// Checks that `fd` is a regular file. It was opened `O_NONBLOCK` so that a FIFO could not
/// hang the open; the flag stays, since it has no effect on regular files (open(2)), and
/// clearing it would cost a syscall on every open.
fn regular_file(name: &str, fd: OwnedFd) -> Result<File, PathError> {
    let shown = || error::display_name(name.as_bytes());
    let stat = fstat(&fd).map_err(|errno| os_error(shown(), errno))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(PathError::NotAFile { name: shown() });
    }
    Ok(File::from(fd))
}

fn upload_extension(original_name: &str, allowed: &[&str]) -> Result<String, PathError> {
    let base = original_name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(original_name);
    let extension = match base.rsplit_once('.') {
        Some((_, ext)) => ext.to_ascii_lowercase(),
        None => String::new(),
    };
    let allowed_list: Vec<String> = allowed
        .iter()
        .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
        .collect();
    let well_formed = !extension.is_empty()
        && extension.len() <= MAX_EXTENSION_LEN
        && extension.bytes().all(|b| b.is_ascii_alphanumeric());
    if well_formed && allowed_list.contains(&extension) {
        Ok(extension)
    } else {
        Err(PathError::Extension {
            name: error::display_name(original_name.as_bytes()),
            extension: error::display_name(extension.as_bytes()),
            allowed: allowed_list.join(", "),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn io_error(name: &[u8], source: std::io::Error) -> PathError {
    PathError::Io {
        name: error::display_name(name),
        source,
    }
}

fn refusal_error(name: &str, refusal: Refusal) -> PathError {
    let name = error::display_name(name.as_bytes());
    match refusal {
        Refusal::Escape => PathError::Escape { name },
        Refusal::Symlink => PathError::Symlink { name },
        Refusal::Os(errno) => os_error(name, errno),
    }
}

fn os_error(name: String, errno: Errno) -> PathError {
    match errno {
        Errno::NOENT => PathError::NotFound { name },
        Errno::NOTDIR => PathError::NotADirectory { name },
        Errno::ISDIR | Errno::NXIO => PathError::NotAFile { name },
        Errno::EXIST => PathError::Exists { name },
        Errno::NAMETOOLONG => PathError::TooLong { name },
        Errno::XDEV => PathError::Escape { name },
        Errno::LOOP => PathError::Symlink { name },
        other => PathError::Io {
            name,
            source: std::io::Error::from(other),
        },
    }
}
