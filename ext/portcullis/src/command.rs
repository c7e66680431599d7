//! Ruby bindings for `portcullis::command`: `Portcullis::Command`.
//!
//! The Ruby-facing constructor and keyword arguments live in `lib/portcullis/command.rb`;
//! this file converts Ruby values into a core `CommandTemplate` and back. Everything a
//! request can influence (values) is validated by the core.

use std::borrow::Cow;
use std::time::Duration;

use magnus::{
    prelude::*, r_hash::ForEach, Error, Integer, RArray, RClass, RHash, RModule, RString, Range,
    Ruby, Symbol, Value,
};

use crate::errors::{function, method}; // panic-guarded; see errors.rs
use portcullis::command::{
    CancelHandle, CommandError, CommandOutput, CommandTemplate, CommandTemplateBuilder, Param,
    Rlimits,
};
use portcullis::fs::{SafeRoot, SymlinkPolicy};

use crate::{errors, gvl};

const CLASS: &str = "CommandError";

/// `Portcullis::Command`: an immutable, thread-safe command template.
#[magnus::wrap(class = "Portcullis::Command", free_immediately, size)]
pub(crate) struct RbCommand(CommandTemplate);

impl RbCommand {
    /// Wraps a template built elsewhere (the configuration file); templates are immutable.
    pub(crate) fn from_template(template: CommandTemplate) -> Self {
        Self(template)
    }
}

/// A template definition problem found while converting Ruby values.
fn bad_template(ruby: &Ruby, message: impl AsRef<str>) -> Error {
    errors::raise_with_code(ruby, CLASS, "command.bad_template", message.as_ref())
}

/// String or Symbol (or anything with a sensible `to_s`: Integer) as a Rust string.
fn text(ruby: &Ruby, value: Value, what: &str) -> Result<String, Error> {
    if let Some(sym) = Symbol::from_value(value) {
        return Ok(sym.name()?.into_owned());
    }
    if let Some(s) = RString::from_value(value) {
        return s
            .to_string()
            .map_err(|_| bad_template(ruby, format!("{what} is not valid UTF-8")));
    }
    if value.is_kind_of(ruby.class_integer()) {
        return value.funcall("to_s", ());
    }
    Err(bad_template(
        ruby,
        format!(
            "{what} must be a String or Symbol, got {}",
            value.class().inspect()
        ),
    ))
}

fn param_from_spec(ruby: &Ruby, name: &str, spec: Value) -> Result<Param, Error> {
    let Some(spec) = RHash::from_value(spec) else {
        return Err(bad_template(
            ruby,
            format!("params[:{name}] must be a Hash like {{ one_of: [...] }}"),
        ));
    };
    let mut param: Option<Param> = None;
    let mut allow_dash = false;
    let mut max_len: Option<usize> = None;
    let mut problem: Option<Error> = None;
    spec.foreach(errors::each(|key: Value, value: Value| {
        let key = text(ruby, key, "a parameter option")?;
        let set = |param: &mut Option<Param>, new: Param| -> Result<(), Error> {
            if param.replace(new).is_some() {
                return Err(bad_template(
                    ruby,
                    format!("params[:{name}] has more than one type; give exactly one of one_of, pattern, integer, literal, path"),
                ));
            }
            Ok(())
        };
        match key.as_str() {
            "one_of" => set(&mut param, one_of(ruby, name, value)?)?,
            "pattern" => set(&mut param, pattern(ruby, value)?)?,
            "integer" => set(&mut param, integer(ruby, name, value)?)?,
            "path" => set(&mut param, path(ruby, name, value)?)?,
            "literal" => {
                if value.is_nil() || value.to_bool() {
                    set(&mut param, Param::literal())?;
                } else {
                    problem = Some(bad_template(ruby, format!("params[:{name}]: literal: must be true")));
                }
            }
            "allow_leading_dash" => allow_dash = value.to_bool(),
            "max_length" => {
                max_len = Some(usize::try_convert(value).map_err(|_| {
                    bad_template(ruby, format!("params[:{name}]: max_length must be a non-negative Integer"))
                })?)
            }
            other => {
                problem = Some(bad_template(
                    ruby,
                    format!("params[:{name}]: unknown option {other:?} (one_of, pattern, integer, literal, path, allow_leading_dash, max_length)"),
                ))
            }
        }
        Ok(if problem.is_some() { ForEach::Stop } else { ForEach::Continue })
    }))?;
    if let Some(e) = problem {
        return Err(e);
    }
    let Some(mut param) = param else {
        return Err(bad_template(
            ruby,
            format!(
                "params[:{name}] has no type; give one of one_of, pattern, integer, literal, path"
            ),
        ));
    };
    if allow_dash {
        param = param.allow_leading_dash();
    }
    if let Some(max_len) = max_len {
        param = param.max_len(max_len);
    }
    Ok(param)
}

fn one_of(ruby: &Ruby, name: &str, value: Value) -> Result<Param, Error> {
    if let Some(map) = RHash::from_value(value) {
        let mut pairs = Vec::with_capacity(map.len());
        map.foreach(errors::each(|k: Value, v: Value| {
            pairs.push((
                text(ruby, k, "a one_of choice")?,
                text(ruby, v, "a one_of target")?,
            ));
            Ok(ForEach::Continue)
        }))?;
        return Ok(Param::one_of(pairs));
    }
    if let Some(list) = RArray::from_value(value) {
        let values = list
            .into_iter()
            .map(|v| text(ruby, v, "a one_of choice"))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Param::one_of_values(values));
    }
    Err(bad_template(
        ruby,
        format!("params[:{name}]: one_of must be a Hash (request value => argument) or an Array"),
    ))
}

fn pattern(ruby: &Ruby, value: Value) -> Result<Param, Error> {
    let source = if value.is_kind_of(ruby.class_regexp()) {
        // Ruby's flags become inline flags; the syntax itself is the Rust regex crate's.
        let source: String = value.funcall("source", ())?;
        let options: i64 = value.funcall("options", ())?;
        let mut flags = String::new();
        if options & 1 != 0 {
            flags.push('i');
        }
        if options & 2 != 0 {
            flags.push('x');
        }
        if options & 4 != 0 {
            flags.push('s');
        }
        if flags.is_empty() {
            source
        } else {
            format!("(?{flags}){source}")
        }
    } else {
        text(ruby, value, "a pattern")?
    };
    Param::pattern(&source).map_err(|e| errors::to_ruby(ruby, CLASS, &e))
}

/// `path:` takes a `Portcullis::SafeRoot` (its directory and symlink policy are used) or
/// a directory as a String or Pathname.
fn path(ruby: &Ruby, name: &str, value: Value) -> Result<Param, Error> {
    let refuse = |why: String| bad_template(ruby, format!("params[:{name}]: path: {why}"));
    let (dir, policy): (String, SymlinkPolicy) = if let Some(s) = RString::from_value(value) {
        (
            s.to_string()
                .map_err(|_| refuse("the directory is not valid UTF-8".to_owned()))?,
            SymlinkPolicy::default(),
        )
    } else if value.respond_to("symlinks", false)? {
        let dir: String = value.funcall("path", ())?;
        let symlinks: Symbol = value.funcall("symlinks", ())?;
        let policy = match symlinks.name()?.as_ref() {
            "deny" => SymlinkPolicy::Deny,
            _ => SymlinkPolicy::Within,
        };
        (dir, policy)
    } else if value.respond_to("to_path", false)? {
        (value.funcall("to_path", ())?, SymlinkPolicy::default())
    } else {
        return Err(refuse(
            "must be a Portcullis::SafeRoot or a directory (String, Pathname)".to_owned(),
        ));
    };
    let root = SafeRoot::new(&dir).map_err(|e| refuse(e.to_string()))?;
    Ok(Param::path(root.with_symlinks(policy)))
}

fn integer(ruby: &Ruby, name: &str, value: Value) -> Result<Param, Error> {
    let Some(range) = Range::from_value(value) else {
        return Err(bad_template(
            ruby,
            format!("params[:{name}]: integer must be a Range like 1..10"),
        ));
    };
    // Only Integer or nil bounds: a Float bound would be truncated silently.
    let bound = |v: Value| -> Result<Option<i64>, Error> {
        let refuse = || {
            bad_template(
                ruby,
                format!("params[:{name}]: integer range bounds must be Integers (64-bit) or nil"),
            )
        };
        if v.is_nil() {
            Ok(None)
        } else if v.is_kind_of(ruby.class_integer()) {
            i64::try_convert(v).map(Some).map_err(|_| refuse())
        } else {
            Err(refuse())
        }
    };
    let lo = bound(range.beg::<Value>()?)?;
    let hi = bound(range.end::<Value>()?)?;
    let lo = lo.unwrap_or(i64::MIN);
    Ok(match (hi, range.excl()) {
        (None, _) => Param::integer(lo..),
        (Some(hi), false) => Param::integer(lo..=hi),
        (Some(hi), true) => Param::integer(lo..hi),
    })
}

fn rlimits(ruby: &Ruby, value: Value) -> Result<Rlimits, Error> {
    let mut limits = Rlimits::new();
    if value.is_nil() {
        return Ok(limits);
    }
    let Some(hash) = RHash::from_value(value) else {
        return Err(bad_template(
            ruby,
            "rlimits must be a Hash (cpu:, address_space:, file_size:, nproc:)",
        ));
    };
    hash.foreach(errors::each(|key: Value, v: Value| {
        let key = text(ruby, key, "an rlimit name")?;
        let n = u64::try_convert(v).map_err(|_| {
            bad_template(
                ruby,
                format!("rlimits[:{key}] must be a non-negative Integer"),
            )
        })?;
        limits = match key.as_str() {
            "cpu" => limits.cpu_seconds(n),
            "address_space" => limits.address_space(n),
            "file_size" => limits.file_size(n),
            "nproc" => limits.processes(n),
            other => {
                return Err(bad_template(
                    ruby,
                    format!("unknown rlimit {other:?} (cpu, address_space, file_size, nproc)"),
                ))
            }
        };
        Ok(ForEach::Continue)
    }))?;
    Ok(limits)
}

#[allow(clippy::too_many_arguments)] // mirrors the Ruby keyword arguments one to one
fn build(
    ruby: &Ruby,
    program: RString,
    args: RArray,
    params: RHash,
    env: RHash,
    timeout: Value,
    max_output: Value,
    allow_interpreter: bool,
    chdir: Value,
    limits: Value,
) -> Result<RbCommand, Error> {
    let program = text(ruby, program.as_value(), "the program")?;
    let mut builder: CommandTemplateBuilder = CommandTemplate::builder(program);
    for arg in args {
        builder = if let Some(sym) = Symbol::from_value(arg) {
            builder.placeholder(sym.name()?.into_owned())
        } else if let Some(s) = RString::from_value(arg) {
            let s = s
                .to_string()
                .map_err(|_| bad_template(ruby, "an argument is not valid UTF-8"))?;
            builder.arg_template(s)
        } else {
            return Err(bad_template(
                ruby,
                format!(
                    "arguments must be Strings (fixed, or with one {{name}} inside) or Symbols (placeholders), got {}",
                    arg.class().inspect()
                ),
            ));
        };
    }
    let mut declared = Vec::new();
    params.foreach(errors::each(|name: Value, spec: Value| {
        let name = text(ruby, name, "a parameter name")?;
        declared.push((name, spec));
        Ok(ForEach::Continue)
    }))?;
    for (name, spec) in declared {
        let param = param_from_spec(ruby, &name, spec)?;
        builder = builder.param(name, param);
    }
    let mut vars = Vec::new();
    env.foreach(errors::each(|k: Value, v: Value| {
        vars.push((
            text(ruby, k, "an environment variable name")?,
            text(ruby, v, "an environment variable value")?,
        ));
        Ok(ForEach::Continue)
    }))?;
    for (k, v) in vars {
        builder = builder.env(k, v);
    }
    if !timeout.is_nil() {
        let seconds = f64::try_convert(timeout)
            .map_err(|_| bad_template(ruby, "timeout must be a number of seconds"))?;
        let timeout = Duration::try_from_secs_f64(seconds).map_err(|_| {
            bad_template(
                ruby,
                format!("timeout {seconds} is not a usable number of seconds"),
            )
        })?;
        builder = builder.timeout(timeout);
    }
    if !max_output.is_nil() {
        let bytes = usize::try_convert(max_output)
            .map_err(|_| bad_template(ruby, "max_output must be a non-negative Integer (bytes)"))?;
        builder = builder.max_output(bytes);
    }
    if !chdir.is_nil() {
        let dir: String = if RString::from_value(chdir).is_some() {
            text(ruby, chdir, "chdir")?
        } else if chdir.respond_to("to_path", false)? {
            chdir.funcall("to_path", ())? // Pathname
        } else if chdir.respond_to("symlinks", false)? {
            chdir.funcall("path", ())? // Portcullis::SafeRoot
        } else {
            return Err(bad_template(
                ruby,
                "chdir must be a String, Pathname or Portcullis::SafeRoot",
            ));
        };
        builder = builder.chdir(dir);
    }
    builder = builder
        .rlimits(rlimits(ruby, limits)?)
        .allow_interpreter(allow_interpreter);
    builder
        .build()
        .map(RbCommand)
        .map_err(|e| errors::to_ruby(ruby, CLASS, &e))
}

/// One request value as text: String, Symbol or Integer. `Ok(None)` for `nil` (counts as
/// not given, so the core reports the missing parameter); anything else (an Array or Hash
/// from `?x[]=` tricks, a Float, …) is refused as an invalid value.
fn value_text(ruby: &Ruby, key: &str, value: Value) -> Result<Option<String>, Error> {
    let invalid = |why: &str| {
        errors::raise_with_code(
            ruby,
            CLASS,
            "command.invalid_value",
            &format!("parameter {key:?}: {why}"),
        )
    };
    if value.is_nil() {
        Ok(None)
    } else if let Some(s) = RString::from_value(value) {
        s.to_string()
            .map(Some)
            .map_err(|_| invalid("value is not valid UTF-8"))
    } else if let Some(n) = Integer::from_value(value) {
        match n.to_i64() {
            Ok(n) => Ok(Some(n.to_string())),
            Err(_) => value.funcall("to_s", ()).map(Some), // a Bignum: the core range check refuses it
        }
    } else if let Some(sym) = Symbol::from_value(value) {
        Ok(Some(sym.name()?.into_owned()))
    } else {
        Err(invalid(&format!(
            "value must be a String, Symbol or Integer, got {}",
            value.class().inspect()
        )))
    }
}

/// Request values, keyed by Symbol or String.
///
/// Fast path: look up each of the template's parameters by Symbol; when that accounts for
/// every key, no other key can be in the hash. Otherwise walk the hash (String keys,
/// unknown or duplicate names) and let the core report what is wrong.
fn values<'t>(
    ruby: &Ruby,
    template: &'t CommandTemplate,
    hash: RHash,
) -> Result<Vec<(Cow<'t, str>, String)>, Error> {
    let mut out = Vec::with_capacity(hash.len());
    for name in template.param_names() {
        if let Some(value) = hash.get(ruby.sym_new(name)) {
            if let Some(text) = value_text(ruby, name, value)? {
                out.push((Cow::Borrowed(name), text));
            }
            continue;
        }
        break;
    }
    if out.len() == hash.len() && out.len() == template.param_names().count() {
        return Ok(out);
    }
    out.clear();
    hash.foreach(errors::each(|key: Value, value: Value| {
        let key = if let Some(sym) = Symbol::from_value(key) {
            sym.name()?.into_owned()
        } else if let Some(s) = RString::from_value(key) {
            s.to_string().map_err(|_| {
                errors::raise_with_code(
                    ruby,
                    CLASS,
                    "command.unknown_param",
                    "parameter name is not valid UTF-8",
                )
            })?
        } else {
            return Err(errors::raise_with_code(
                ruby,
                CLASS,
                "command.unknown_param",
                "parameter names must be Symbols or Strings",
            ));
        };
        if let Some(text) = value_text(ruby, &key, value)? {
            out.push((Cow::Owned(key), text));
        }
        Ok(ForEach::Continue)
    }))?;
    Ok(out)
}

fn output_string(ruby: &Ruby, bytes: Vec<u8>) -> RString {
    match String::from_utf8(bytes) {
        Ok(text) => ruby.str_new(&text),
        Err(e) => ruby.str_from_slice(e.as_bytes()), // not UTF-8: a binary String
    }
}

impl RbCommand {
    /// `argv(**values)`: defined natively so the keyword hash is not copied again.
    fn argv(ruby: &Ruby, rb_self: &Self, args: &[Value]) -> Result<RArray, Error> {
        let hash = match args {
            [] => ruby.hash_new(),
            [hash] => RHash::from_value(*hash).ok_or_else(|| {
                errors::arg_error(ruby, "argv takes keyword arguments: argv(name: value, ...)")
            })?,
            _ => {
                return Err(errors::arg_error(
                    ruby,
                    "argv takes keyword arguments: argv(name: value, ...)",
                ))
            }
        };
        let values = values(ruby, &rb_self.0, hash)?;
        let argv = rb_self
            .0
            .argv(values)
            .map_err(|e| errors::to_ruby(ruby, CLASS, &e))?;
        let array = ruby.ary_new_capa(argv.len());
        for element in argv {
            array.push(ruby.str_new(&element))?;
        }
        Ok(array)
    }

    /// Returns `[status, signal, stdout, stderr, success, timed_out, stdout_truncated,
    /// stderr_truncated]` for `Portcullis::Command::Result.new`.
    fn run(ruby: &Ruby, rb_self: &Self, hash: RHash, check: bool) -> Result<RArray, Error> {
        let values = values(ruby, &rb_self.0, hash)?;
        let template = &rb_self.0;
        let cancel = CancelHandle::new().map_err(|e| {
            Error::new(
                ruby.exception_runtime_error(),
                format!("portcullis: cannot watch for interrupts: {e}"),
            )
        })?;
        // The child runs without the GVL, so other Ruby threads keep going; a Ruby
        // interrupt (Timeout, Thread#raise, Thread#kill) cancels it: the process group is
        // killed and reaped before the interrupt is raised here.
        let result = loop {
            let attempt = gvl::without_gvl_cancellable(
                || {
                    template
                        .run_cancellable(values.iter().map(|(k, v)| (k, v)), &cancel)
                        .and_then(|out| if check { out.check() } else { Ok(out) })
                },
                &cancel,
            )
            .map_err(gvl::panic_error)?;
            match attempt {
                Some(result) => break result,
                // An interrupt was pending before the program started: let Ruby run it
                // (raising, say, Timeout::Error), then start if it did not raise.
                None => ruby.thread_check_ints()?,
            }
        };
        if matches!(result, Err(CommandError::Cancelled { .. })) {
            // Raise the interrupt that cancelled the run (Timeout::Error, …); only if it
            // raised nothing is `command.cancelled` the answer.
            ruby.thread_check_ints()?;
        }
        let out: CommandOutput = result.map_err(|e| errors::to_ruby(ruby, CLASS, &e))?;
        let array = ruby.ary_new_capa(8);
        array.push(out.code())?;
        array.push(out.signal())?;
        let success = out.success();
        let truncated = (out.stdout_truncated, out.stderr_truncated);
        let timed_out = out.timed_out;
        array.push(output_string(ruby, out.stdout))?;
        array.push(output_string(ruby, out.stderr))?;
        array.push(success)?;
        array.push(timed_out)?;
        array.push(truncated.0)?;
        array.push(truncated.1)?;
        Ok(array)
    }

    fn program(&self) -> String {
        self.0.program().to_owned()
    }

    fn param_names(ruby: &Ruby, rb_self: &Self) -> Result<RArray, Error> {
        let array = ruby.ary_new();
        for name in rb_self.0.param_names() {
            array.push(ruby.to_symbol(name))?;
        }
        Ok(array)
    }

    fn timeout(&self) -> f64 {
        self.0.timeout().as_secs_f64()
    }
}

pub(crate) fn init(ruby: &Ruby, module: RModule) -> Result<(), Error> {
    let class: RClass = module.define_class("Command", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_singleton_method("_build", function!(build, 9))?;
    class.define_method("argv", method!(RbCommand::argv, -1))?;
    class.define_method("_run", method!(RbCommand::run, 2))?;
    class.define_method("program", method!(RbCommand::program, 0))?;
    class.define_method("param_names", method!(RbCommand::param_names, 0))?;
    class.define_method("timeout", method!(RbCommand::timeout, 0))?;
    Ok(())
}
