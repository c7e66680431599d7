//! Ruby bindings for `portcullis::fs`: `Portcullis::SafeRoot`.
//!
//! The native methods convert names and data to owned Rust values, run the core operation
//! without the GVL, and hand back Ruby values (or raw descriptors, which
//! `lib/portcullis/safe_root.rb` wraps with `File.for_fd`). No policy lives here.

use std::os::fd::IntoRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::Arc;

use magnus::{prelude::*, Error, RArray, RModule, RString, Ruby};

use crate::errors::{function, method}; // panic-guarded; see errors.rs
use portcullis::fs::{CreateOptions, PathError, SafeRoot, SymlinkPolicy};

use crate::{errors, gvl};

/// `Portcullis::SafeRoot`: the core root handle, shared by reference.
#[magnus::wrap(class = "Portcullis::SafeRoot", free_immediately, size)]
pub(crate) struct RbSafeRoot(Arc<SafeRoot>);

impl RbSafeRoot {
    /// Wraps a root opened elsewhere (the configuration file); the handle stays shared.
    pub(crate) fn from_shared(root: Arc<SafeRoot>) -> Self {
        Self(root)
    }
}

/// How `_open_fd` opens: must match `MODES` in lib/portcullis/safe_root.rb.
const OPEN_READ: u8 = 0;
const OPEN_TRUNCATE: u8 = 1;
const OPEN_APPEND: u8 = 2;
const OPEN_EXCLUSIVE: u8 = 3;

/// A Ruby String's bytes, copied (any encoding, binary included).
pub(crate) fn bytes_of(string: RString) -> Vec<u8> {
    // SAFETY: the slice is copied at once, before any Ruby call could move or free the
    // string's buffer; `string` is on the stack, so the GC keeps it alive meanwhile.
    #[allow(unsafe_code)]
    let copied = unsafe { string.as_slice() }.to_vec();
    copied
}

fn path_error(ruby: &Ruby, err: &PathError) -> Error {
    errors::to_ruby(ruby, "PathError", err)
}

/// Runs `work` without the GVL, then maps its `PathError` (or a caught panic) to Ruby.
fn off_gvl<R: Send>(
    ruby: &Ruby,
    work: impl FnOnce() -> Result<R, PathError> + Send,
) -> Result<R, Error> {
    match gvl::without_gvl(work) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(path_error(ruby, &err)),
        Err(panic) => Err(gvl::panic_error(panic)),
    }
}

fn new(ruby: &Ruby, dir: String, symlinks: String, force_walk: bool) -> Result<RbSafeRoot, Error> {
    let policy = match symlinks.as_str() {
        "within" => SymlinkPolicy::Within,
        "deny" => SymlinkPolicy::Deny,
        other => {
            return Err(errors::arg_error(
                ruby,
                format!("symlinks: must be :within or :deny, not {other:?}"),
            ))
        }
    };
    let root = off_gvl(ruby, move || SafeRoot::new(&dir))?;
    Ok(RbSafeRoot(Arc::new(
        root.with_symlinks(policy).force_walk(force_walk),
    )))
}

fn open_fd(ruby: &Ruby, rb_self: &RbSafeRoot, name: RString, how: u8) -> Result<i32, Error> {
    if ![OPEN_READ, OPEN_TRUNCATE, OPEN_APPEND, OPEN_EXCLUSIVE].contains(&how) {
        return Err(errors::arg_error(ruby, format!("unknown open mode {how}")));
    }
    let name = bytes_of(name);
    let root = &rb_self.0;
    let file = off_gvl(ruby, move || match how {
        OPEN_READ => root.open(&name),
        OPEN_APPEND => root.create(&name, CreateOptions::new().append(true)),
        OPEN_EXCLUSIVE => root.create(&name, CreateOptions::new().exclusive(true)),
        _ => root.create(&name, CreateOptions::new()), // OPEN_TRUNCATE
    })?;
    // Ownership of the descriptor passes to Ruby's File (autoclose).
    Ok(file.into_raw_fd())
}

fn open_path_fd(ruby: &Ruby, rb_self: &RbSafeRoot, name: RString) -> Result<i32, Error> {
    let name = bytes_of(name);
    let root = &rb_self.0;
    let fd = off_gvl(ruby, move || root.open_path(&name))?;
    Ok(fd.into_raw_fd())
}

fn read(ruby: &Ruby, rb_self: &RbSafeRoot, name: RString) -> Result<RString, Error> {
    let name = bytes_of(name);
    let root = &rb_self.0;
    let data = off_gvl(ruby, move || root.read(&name))?;
    Ok(ruby.str_from_slice(&data))
}

fn write(
    ruby: &Ruby,
    rb_self: &RbSafeRoot,
    name: RString,
    data: RString,
    exclusive: bool,
) -> Result<usize, Error> {
    let name = bytes_of(name);
    let data = bytes_of(data);
    let root = &rb_self.0;
    off_gvl(ruby, move || {
        root.write(&name, &data, exclusive).map(|()| data.len())
    })
}

fn exist(ruby: &Ruby, rb_self: &RbSafeRoot, name: RString) -> Result<bool, Error> {
    let name = bytes_of(name);
    let root = &rb_self.0;
    off_gvl(ruby, move || match root.metadata(&name) {
        Ok(_) => Ok(true),
        Err(PathError::NotFound { .. } | PathError::NotADirectory { .. }) => Ok(false),
        Err(other) => Err(other),
    })
}

fn entries(ruby: &Ruby, rb_self: &RbSafeRoot, name: RString) -> Result<RArray, Error> {
    let name = bytes_of(name);
    let root = &rb_self.0;
    let names = off_gvl(ruby, move || root.read_dir(&name))?;
    let array = ruby.ary_new_capa(names.len());
    for entry in names {
        use std::os::unix::ffi::OsStrExt;
        array.push(ruby.str_from_slice(entry.as_bytes()))?;
    }
    Ok(array)
}

fn mkdir_p(ruby: &Ruby, rb_self: &RbSafeRoot, name: RString) -> Result<(), Error> {
    let name = bytes_of(name);
    let root = &rb_self.0;
    off_gvl(ruby, move || root.mkdir_p(&name).map(drop))
}

fn remove(ruby: &Ruby, rb_self: &RbSafeRoot, name: RString) -> Result<(), Error> {
    let name = bytes_of(name);
    let root = &rb_self.0;
    off_gvl(ruby, move || root.remove(&name))
}

/// `[size, mtime_seconds, mtime_nanoseconds, permission_bits, kind]`, built into
/// `Portcullis::SafeRoot::Metadata` by the Ruby side.
fn metadata(
    ruby: &Ruby,
    rb_self: &RbSafeRoot,
    name: RString,
) -> Result<(u64, i64, i64, u32, magnus::Symbol), Error> {
    let name = bytes_of(name);
    let root = &rb_self.0;
    let meta = off_gvl(ruby, move || root.metadata(&name))?;
    let kind = if meta.is_file() {
        "file"
    } else if meta.is_dir() {
        "directory"
    } else {
        "other"
    };
    Ok((
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.permissions().mode() & 0o7777,
        ruby.to_symbol(kind),
    ))
}

fn store_upload(
    ruby: &Ruby,
    rb_self: &RbSafeRoot,
    original_name: RString,
    data: RString,
    extensions: Vec<String>,
) -> Result<String, Error> {
    // The client's name is only mined for its extension; lossy decoding is fine here.
    let original = String::from_utf8_lossy(&bytes_of(original_name)).into_owned();
    let data = bytes_of(data);
    let root = &rb_self.0;
    off_gvl(ruby, move || {
        let allowed: Vec<&str> = extensions.iter().map(String::as_str).collect();
        root.store_upload(&original, &data, &allowed)
    })
}

fn join(ruby: &Ruby, rb_self: &RbSafeRoot, name: RString) -> Result<String, Error> {
    let name = bytes_of(name);
    rb_self
        .0
        .join(&name)
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| path_error(ruby, &e))
}

fn resolve_for_argv(ruby: &Ruby, rb_self: &RbSafeRoot, name: RString) -> Result<String, Error> {
    let name = bytes_of(name);
    let root = &rb_self.0;
    let path = off_gvl(ruby, move || root.resolve_for_argv(&name))?;
    Ok(path.to_string_lossy().into_owned())
}

fn path(rb_self: &RbSafeRoot) -> String {
    rb_self.0.path().to_string_lossy().into_owned()
}

fn symlinks(ruby: &Ruby, rb_self: &RbSafeRoot) -> magnus::Symbol {
    match rb_self.0.symlinks() {
        SymlinkPolicy::Deny => ruby.to_symbol("deny"),
        _ => ruby.to_symbol("within"),
    }
}

pub(crate) fn init(ruby: &Ruby, module: RModule) -> Result<(), Error> {
    let class = module.define_class("SafeRoot", ruby.class_object())?;
    class.define_singleton_method("_new", function!(new, 3))?;
    class.define_method("_open_fd", method!(open_fd, 2))?;
    class.define_method("_open_path_fd", method!(open_path_fd, 1))?;
    class.define_method("_read", method!(read, 1))?;
    class.define_method("_write", method!(write, 3))?;
    class.define_method("_exist?", method!(exist, 1))?;
    class.define_method("_entries", method!(entries, 1))?;
    class.define_method("_mkdir_p", method!(mkdir_p, 1))?;
    class.define_method("_remove", method!(remove, 1))?;
    class.define_method("_metadata", method!(metadata, 1))?;
    class.define_method("_store_upload", method!(store_upload, 3))?;
    class.define_method("_join", method!(join, 1))?;
    class.define_method("_resolve_for_argv", method!(resolve_for_argv, 1))?;
    class.define_method("path", method!(path, 0))?;
    class.define_method("symlinks", method!(symlinks, 0))?;
    Ok(())
}
