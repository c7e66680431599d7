//! `CommandTemplate`: the program, its fixed arguments and its placeholders.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::param::Param;
use super::program::{self, Class};
use super::run::{self, CancelHandle, CommandOutput, Launch, Rlimits, RunningCommand};
use super::{shown, CommandError, DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT, MAX_TIMEOUT};

/// A program with fixed arguments and typed placeholders; requests only fill placeholders.
///
/// Built with [`CommandTemplate::builder`]; immutable afterwards and cheap to share
/// (`Send + Sync`). [`CommandTemplate::argv`] validates values and returns the argv;
/// [`CommandTemplate::run`] also runs it.
///
/// ```
/// use portcullis::command::{CommandTemplate, Param};
/// use std::time::Duration;
///
/// let greet = CommandTemplate::builder("/bin/echo")
///     .arg_template("--name={name}")
///     .param("name", Param::pattern("[a-z]+")?)
///     .timeout(Duration::from_secs(5))
///     .build()?;
/// let out = greet.run([("name", "ada")])?;
/// assert!(out.success());
/// assert_eq!(out.stdout, b"--name=ada\n");
/// # Ok::<(), portcullis::command::CommandError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CommandTemplate {
    /// As written; argv\[0\].
    program: String,
    /// The canonical file checked at build time; this is what is executed.
    resolved: PathBuf,
    args: Vec<Arg>,
    params: Vec<(String, Param)>,
    env: Vec<(String, String)>,
    chdir: PathBuf,
    timeout: Duration,
    max_output: usize,
    rlimits: Rlimits,
}

#[derive(Debug, Clone)]
enum Arg {
    Fixed(String),
    /// One whole argv element: `prefix` + the parameter's argument + `suffix`.
    Slot {
        param: usize,
        prefix: String,
        suffix: String,
    },
}

/// Collects a template's parts; [`CommandTemplateBuilder::build`] checks them all at once.
///
/// ```
/// use portcullis::command::{CommandTemplate, Param, Rlimits};
/// use std::time::Duration;
///
/// let template = CommandTemplate::builder("/bin/echo")
///     .args(["run", "--rm"])
///     .end_of_options()
///     .placeholder("image")
///     .param("image", Param::one_of_values(["worker", "api"]))
///     .env("LANG", "C.UTF-8")
///     .chdir("/tmp")
///     .timeout(Duration::from_secs(10))
///     .max_output(64 * 1024)
///     .rlimits(Rlimits::new().cpu_seconds(5))
///     .build()?;
/// # Ok::<(), portcullis::command::CommandError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CommandTemplateBuilder {
    program: String,
    args: Vec<ArgSpec>,
    params: Vec<(String, Param)>,
    env: Vec<(String, String)>,
    chdir: Option<PathBuf>,
    timeout: Duration,
    max_output: usize,
    rlimits: Rlimits,
    allow_interpreter: bool,
}

#[derive(Debug, Clone)]
enum ArgSpec {
    Fixed(String),
    Placeholder(String),
    Parsed(String),
}

impl CommandTemplate {
    /// Starts a template for `program`, which must be an absolute path to an executable
    /// file (checked by [`CommandTemplateBuilder::build`]).
    ///
    /// ```
    /// use portcullis::command::CommandTemplate;
    /// let list = CommandTemplate::builder("/bin/ls").arg("-l").build()?;
    /// # Ok::<(), portcullis::command::CommandError>(())
    /// ```
    pub fn builder(program: impl Into<String>) -> CommandTemplateBuilder {
        CommandTemplateBuilder {
            program: program.into(),
            args: Vec::new(),
            params: Vec::new(),
            env: Vec::new(),
            chdir: None,
            timeout: DEFAULT_TIMEOUT,
            max_output: DEFAULT_MAX_OUTPUT,
            rlimits: Rlimits::new(),
            allow_interpreter: false,
        }
    }

    /// The program path as written in the template (argv\[0\]).
    ///
    /// ```
    /// # use portcullis::command::CommandTemplate;
    /// let t = CommandTemplate::builder("/bin/echo").build()?;
    /// assert_eq!(t.program(), "/bin/echo");
    /// # Ok::<(), portcullis::command::CommandError>(())
    /// ```
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The file that is executed: the program path resolved (symlinks followed) when the
    /// template was built.
    ///
    /// ```
    /// # use portcullis::command::CommandTemplate;
    /// let t = CommandTemplate::builder("/bin/echo").build()?;
    /// assert!(t.resolved_program().is_absolute());
    /// # Ok::<(), portcullis::command::CommandError>(())
    /// ```
    pub fn resolved_program(&self) -> &Path {
        &self.resolved
    }

    /// The names of the template's parameters, in the order they were declared.
    ///
    /// ```
    /// # use portcullis::command::{CommandTemplate, Param};
    /// let t = CommandTemplate::builder("/bin/echo").placeholder("n").param("n", Param::integer(1..=3)).build()?;
    /// assert_eq!(t.param_names().collect::<Vec<_>>(), ["n"]);
    /// # Ok::<(), portcullis::command::CommandError>(())
    /// ```
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(|(name, _)| name.as_str())
    }

    /// The timeout after which a run is killed with its process group.
    ///
    /// ```
    /// # use portcullis::command::{CommandTemplate, DEFAULT_TIMEOUT};
    /// let t = CommandTemplate::builder("/bin/echo").build()?;
    /// assert_eq!(t.timeout(), DEFAULT_TIMEOUT);
    /// # Ok::<(), portcullis::command::CommandError>(())
    /// ```
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Validates `values` (name, value pairs) against the parameters and returns the full
    /// argv, program first. Every placeholder becomes exactly one element.
    ///
    /// ```
    /// use portcullis::command::{CommandTemplate, Param};
    /// let t = CommandTemplate::builder("/bin/echo")
    ///     .arg("--")
    ///     .placeholder("n")
    ///     .param("n", Param::integer(1..=10))
    ///     .build()?;
    /// assert_eq!(t.argv([("n", "7")])?, ["/bin/echo", "--", "7"]);
    /// assert!(t.argv([("n", "7; reboot")]).is_err());
    /// # Ok::<(), portcullis::command::CommandError>(())
    /// ```
    ///
    /// # Errors
    /// `command.unknown_param`, `command.duplicate_param`, `command.missing_param`, and
    /// each parameter's refusals (`command.invalid_value`, `command.option_injection`,
    /// `command.control_char`, `command.too_long`).
    pub fn argv<I, K, V>(&self, values: I) -> Result<Vec<String>, CommandError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let values: Vec<(K, V)> = values.into_iter().collect();
        let mut given: Vec<Option<&str>> = vec![None; self.params.len()];
        for (key, value) in &values {
            let key = key.as_ref();
            let slot = self
                .params
                .iter()
                .position(|(name, _)| name == key)
                .and_then(|i| given.get_mut(i))
                .ok_or_else(|| CommandError::UnknownParam { name: shown(key) })?;
            if slot.is_some() {
                return Err(CommandError::DuplicateParam {
                    name: key.to_owned(),
                });
            }
            *slot = Some(value.as_ref());
        }
        let mut arguments: Vec<Cow<'_, str>> = Vec::with_capacity(self.params.len());
        for ((name, param), value) in self.params.iter().zip(&given) {
            let value = value.ok_or_else(|| CommandError::MissingParam { name: name.clone() })?;
            arguments.push(param.apply(name, value)?);
        }

        let mut argv = Vec::with_capacity(self.args.len() + 1);
        argv.push(self.program.clone());
        for arg in &self.args {
            match arg {
                Arg::Fixed(text) => argv.push(text.clone()),
                Arg::Slot {
                    param,
                    prefix,
                    suffix,
                } => {
                    let (Some((name, spec)), Some(argument)) =
                        (self.params.get(*param), arguments.get(*param))
                    else {
                        return Err(CommandError::bad_template("placeholder without parameter"));
                    };
                    let mut element =
                        String::with_capacity(prefix.len() + argument.len() + suffix.len());
                    element.push_str(prefix);
                    element.push_str(argument);
                    element.push_str(suffix);
                    // With no prefix, an empty argument lets the suffix lead the element.
                    if prefix.is_empty() && element.starts_with('-') && !spec.allow_leading_dash {
                        return Err(CommandError::OptionInjection {
                            name: name.clone(),
                            value: shown(&element),
                        });
                    }
                    argv.push(element);
                }
            }
        }
        Ok(argv)
    }

    /// Validates `values`, runs the program and waits for it (at most the timeout), with
    /// stdout and stderr captured up to the output cap.
    ///
    /// The child gets: argv only (no shell); an environment holding only `PATH`
    /// ([`super::SAFE_PATH`]) and the template's variables; stdin on `/dev/null`; the
    /// template's working directory (default `/`); its own process group; the template's
    /// rlimits. On timeout the whole process group is killed with `SIGKILL` and the result
    /// says [`CommandOutput::timed_out`]. When the program exits, anything it left running
    /// in its process group is killed too. Output beyond the cap is read and discarded (the
    /// child is not blocked or killed for it) and reported as truncated.
    ///
    /// A non-zero exit is not an error here; [`CommandOutput::check`] turns it (and a
    /// timeout) into one.
    ///
    /// ```
    /// use portcullis::command::{CommandTemplate, Param};
    /// let echo = CommandTemplate::builder("/bin/echo")
    ///     .placeholder("text")
    ///     .param("text", Param::literal())
    ///     .build()?;
    /// let out = echo.run([("text", "a; b | $(c)")])?;
    /// assert_eq!(out.stdout, b"a; b | $(c)\n");
    /// # Ok::<(), portcullis::command::CommandError>(())
    /// ```
    ///
    /// # Errors
    /// The refusals of [`CommandTemplate::argv`], `command.spawn_failed` when the program
    /// cannot be started, `command.output` when capturing or waiting fails.
    pub fn run<I, K, V>(&self, values: I) -> Result<CommandOutput, CommandError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        self.launch(values, None)
    }

    /// Like [`CommandTemplate::run`], but [`CancelHandle::cancel`] (from any thread) stops
    /// the run at once: the program's process group is killed, the child reaped, and the
    /// result is `command.cancelled`.
    ///
    /// # Errors
    /// Those of [`CommandTemplate::run`], and `command.cancelled`.
    pub fn run_cancellable<I, K, V>(
        &self,
        values: I,
        cancel: &CancelHandle,
    ) -> Result<CommandOutput, CommandError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        self.launch(values, Some(cancel))
    }

    /// Starts the program with these values and returns at once; [`RunningCommand::wait`]
    /// collects its output, and can pause on a [`CancelHandle`] without stopping it (for
    /// callers that must look at what woke them, as the Ruby binding does). Dropping the
    /// [`RunningCommand`] kills the program's process group.
    ///
    /// # Errors
    /// Those of [`CommandTemplate::argv`], and `command.spawn_failed`.
    pub fn start<I, K, V>(&self, values: I) -> Result<RunningCommand, CommandError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let argv = self.argv(values)?;
        run::start(&self.launch_of(&argv, None))
    }

    fn launch<I, K, V>(
        &self,
        values: I,
        cancel: Option<&CancelHandle>,
    ) -> Result<CommandOutput, CommandError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let argv = self.argv(values)?;
        run::run(&self.launch_of(&argv, cancel))
    }

    fn launch_of<'a>(&'a self, argv: &'a [String], cancel: Option<&'a CancelHandle>) -> Launch<'a> {
        Launch {
            program: &self.program,
            resolved: &self.resolved,
            args: argv.get(1..).unwrap_or_default(),
            env: &self.env,
            chdir: &self.chdir,
            timeout: self.timeout,
            max_output: self.max_output,
            rlimits: self.rlimits,
            cancel,
        }
    }
}

impl CommandTemplateBuilder {
    /// Appends a fixed argument, taken literally (braces included).
    #[must_use]
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(ArgSpec::Fixed(arg.into()));
        self
    }

    /// Appends fixed arguments, taken literally.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args
            .extend(args.into_iter().map(|a| ArgSpec::Fixed(a.into())));
        self
    }

    /// Appends `--`, the end-of-options marker: put it before placeholders that are
    /// operands, for programs that honour it (values are still refused when they start
    /// with `-`, unless the parameter allows it).
    #[must_use]
    pub fn end_of_options(self) -> Self {
        self.arg("--")
    }

    /// Appends a placeholder that fills one whole argv element with parameter `name`.
    #[must_use]
    pub fn placeholder(mut self, name: impl Into<String>) -> Self {
        self.args.push(ArgSpec::Placeholder(name.into()));
        self
    }

    /// Appends one argv element written with at most one `{name}` placeholder inside it,
    /// such as `--name={name}` or `ref={rev}^{{commit}}`. `{{` and `}}` are literal braces;
    /// a brace pair around anything but a name (like `{}`) is literal too. Without a
    /// placeholder the element is fixed. Two placeholders in one element are refused
    /// (`command.bad_template`) when the template is built.
    #[must_use]
    pub fn arg_template(mut self, element: impl Into<String>) -> Self {
        self.args.push(ArgSpec::Parsed(element.into()));
        self
    }

    /// Declares parameter `name` (letters, digits, `_`; not starting with a digit) and its
    /// type. Every parameter must have a placeholder, and every placeholder a parameter.
    #[must_use]
    pub fn param(mut self, name: impl Into<String>, param: Param) -> Self {
        self.params.push((name.into(), param));
        self
    }

    /// Adds an environment variable to the child's otherwise empty environment. `PATH` is
    /// fixed to [`super::SAFE_PATH`] and cannot be set.
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Sets the child's working directory: an absolute path to an existing directory
    /// (default `/`).
    #[must_use]
    pub fn chdir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.chdir = Some(dir.into());
        self
    }

    /// Runs the child in `root`'s directory (its canonical path, as the root resolved it
    /// when opened).
    #[must_use]
    pub fn chdir_root(self, root: &crate::fs::SafeRoot) -> Self {
        self.chdir(root.path())
    }

    /// Sets how long the child may run before its process group is killed (default
    /// [`super::DEFAULT_TIMEOUT`]; more than zero, at most [`super::MAX_TIMEOUT`]).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how many bytes of stdout, and separately of stderr, are kept (default
    /// [`super::DEFAULT_MAX_OUTPUT`]). The rest is read and discarded.
    #[must_use]
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.max_output = bytes;
        self
    }

    /// Sets resource limits applied in the child before it executes the program.
    #[must_use]
    pub fn rlimits(mut self, rlimits: Rlimits) -> Self {
        self.rlimits = rlimits;
        self
    }

    /// Allows the program to be a shell, interpreter or launcher (`nice`, `xargs`, `find
    /// -exec`, `sed` without `--sandbox`, a script whose `#!` line makes its arguments
    /// code). Only for templates whose code-bearing arguments and launched program are all
    /// fixed: a parameter that reaches an interpreter's code argument, or names the program
    /// a launcher runs, is code injection, whatever its type.
    #[must_use]
    pub fn allow_interpreter(mut self, allow: bool) -> Self {
        self.allow_interpreter = allow;
        self
    }

    /// Checks everything and returns the template.
    ///
    /// # Errors
    /// `command.program` or `command.interpreter` for the program; `command.bad_template`
    /// for inconsistent placeholders and parameters, bad `one_of` targets, environment
    /// variables, working directory or timeout.
    pub fn build(self) -> Result<CommandTemplate, CommandError> {
        let checked = program::check(&self.program, self.allow_interpreter)?;
        let resolved = checked.resolved;

        let mut params: Vec<(String, Param)> = Vec::with_capacity(self.params.len());
        for (name, param) in self.params {
            if !is_identifier(&name) {
                return Err(CommandError::bad_template(format!(
                    "parameter name {} is not an identifier (letters, digits, '_')",
                    shown(&name)
                )));
            }
            if params.iter().any(|(n, _)| *n == name) {
                return Err(CommandError::bad_template(format!(
                    "parameter {name:?} is declared twice"
                )));
            }
            param.check_definition(&name)?;
            params.push((name, param));
        }

        let mut used = vec![false; params.len()];
        let mut args = Vec::with_capacity(self.args.len());
        for spec in self.args {
            let (name, prefix, suffix) = match spec {
                ArgSpec::Fixed(text) => {
                    check_fixed_text(&text)?;
                    args.push(Arg::Fixed(text));
                    continue;
                }
                ArgSpec::Placeholder(name) => (name, String::new(), String::new()),
                ArgSpec::Parsed(text) => match parse_element(&text)? {
                    Parsed::Fixed(fixed) => {
                        check_fixed_text(&fixed)?;
                        args.push(Arg::Fixed(fixed));
                        continue;
                    }
                    Parsed::Slot {
                        name,
                        prefix,
                        suffix,
                    } => (name, prefix, suffix),
                },
            };
            check_fixed_text(&prefix)?;
            check_fixed_text(&suffix)?;
            let Some(index) = params.iter().position(|(n, _)| *n == name) else {
                return Err(CommandError::bad_template(format!(
                    "placeholder {} has no parameter; declare it with .param()",
                    shown(&name)
                )));
            };
            if let Some(flag) = used.get_mut(index) {
                *flag = true;
            }
            args.push(Arg::Slot {
                param: index,
                prefix,
                suffix,
            });
        }
        if let Some(((name, _), _)) = params.iter().zip(&used).find(|(_, used)| !**used) {
            return Err(CommandError::bad_template(format!(
                "parameter {name:?} has no placeholder in the arguments"
            )));
        }
        check_arguments(&self.program, checked.class, &args, &params)?;

        let mut env: Vec<(String, String)> = Vec::with_capacity(self.env.len());
        for (name, value) in self.env {
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(CommandError::bad_template(format!(
                    "environment variable name {} is empty or contains '=' or NUL",
                    shown(&name)
                )));
            }
            if name == "PATH" {
                return Err(CommandError::bad_template(format!(
                    "PATH is fixed to {:?} and cannot be set",
                    super::SAFE_PATH
                )));
            }
            if value.contains('\0') {
                return Err(CommandError::bad_template(format!(
                    "environment variable {name:?} contains NUL"
                )));
            }
            if env.iter().any(|(n, _)| *n == name) {
                return Err(CommandError::bad_template(format!(
                    "environment variable {name:?} is set twice"
                )));
            }
            env.push((name, value));
        }

        let chdir = self.chdir.unwrap_or_else(|| PathBuf::from("/"));
        if !chdir.is_absolute() || !chdir.is_dir() {
            return Err(CommandError::bad_template(format!(
                "working directory {} must be an absolute path to an existing directory",
                chdir.display()
            )));
        }
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(CommandError::bad_template(format!(
                "timeout {:?} must be more than zero and at most {:?}",
                self.timeout, MAX_TIMEOUT
            )));
        }

        Ok(CommandTemplate {
            program: self.program,
            resolved,
            args,
            params,
            env,
            chdir,
            timeout: self.timeout,
            max_output: self.max_output,
            rlimits: self.rlimits,
        })
    }
}

/// Programs that are safe only with some arguments: `find` runs a program for `-exec`,
/// `-execdir`, `-ok`, `-okdir`; GNU `sed` runs shell commands from its script (`e`,
/// `s///e`) unless `--sandbox`. A value can never become one of those options (it cannot
/// start with `-`), unless the template lets it.
fn check_arguments(
    program: &str,
    class: Class,
    args: &[Arg],
    params: &[(String, Param)],
) -> Result<(), CommandError> {
    match class {
        Class::Find => {
            for arg in args {
                let reason = match arg {
                    Arg::Fixed(text)
                        if matches!(text.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") =>
                    {
                        format!("find {text}")
                    }
                    Arg::Slot { param, prefix, .. }
                        if prefix.starts_with('-')
                            || (prefix.is_empty()
                                && params
                                    .get(*param)
                                    .is_some_and(|(_, p)| p.allow_leading_dash)) =>
                    {
                        "find with a placeholder that can start with '-' (it could be -exec)"
                            .to_owned()
                    }
                    _ => continue,
                };
                return Err(CommandError::Launcher {
                    path: program.to_owned(),
                    launcher: reason,
                });
            }
        }
        Class::Sed => {
            let before_end = args
                .iter()
                .take_while(|a| !matches!(a, Arg::Fixed(t) if t == "--"));
            if !before_end
                .into_iter()
                .any(|a| matches!(a, Arg::Fixed(t) if t == "--sandbox"))
            {
                return Err(CommandError::Interpreter {
                    path: program.to_owned(),
                    interpreter: "sed without --sandbox (its e command and s///e flag run shell commands; add --sandbox)".to_owned(),
                });
            }
        }
        _ => {}
    }
    Ok(())
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Fixed text (and placeholder prefixes/suffixes) can hold anything but NUL: the template
/// author wrote it, and a NUL would silently cut the argument short.
fn check_fixed_text(text: &str) -> Result<(), CommandError> {
    if text.contains('\0') {
        return Err(CommandError::bad_template(format!(
            "argument {} contains NUL",
            shown(text)
        )));
    }
    Ok(())
}

enum Parsed {
    Fixed(String),
    Slot {
        name: String,
        prefix: String,
        suffix: String,
    },
}

/// Splits `--name={name}` into prefix, name and suffix (see `arg_template`).
fn parse_element(text: &str) -> Result<Parsed, CommandError> {
    let mut before = String::new();
    let mut after = String::new();
    let mut name: Option<String> = None;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let out = if name.is_some() {
            &mut after
        } else {
            &mut before
        };
        if let Some(tail) = rest.strip_prefix("{{") {
            out.push('{');
            rest = tail;
        } else if let Some(tail) = rest.strip_prefix("}}") {
            out.push('}');
            rest = tail;
        } else if let Some((candidate, tail)) = rest
            .strip_prefix('{')
            .and_then(|inner| inner.split_once('}'))
            .filter(|(candidate, _)| is_identifier(candidate))
        {
            if name.is_some() {
                return Err(CommandError::bad_template(format!(
                    "argument {} has more than one placeholder; each placeholder fills exactly one argv element",
                    shown(text)
                )));
            }
            name = Some(candidate.to_owned());
            rest = tail;
        } else {
            out.push(c);
            rest = rest.get(c.len_utf8()..).unwrap_or_default();
        }
    }
    Ok(match name {
        Some(name) => Parsed::Slot {
            name,
            prefix: before,
            suffix: after,
        },
        None => Parsed::Fixed(before),
    })
}

#[cfg(test)]
mod tests {
    use super::{parse_element, Parsed};

    #[test]
    fn element_parser() {
        let slot = |text: &str| match parse_element(text).unwrap() {
            Parsed::Slot {
                name,
                prefix,
                suffix,
            } => Some((name, prefix, suffix)),
            Parsed::Fixed(_) => None,
        };
        assert_eq!(
            slot("--name={name}"),
            Some(("name".into(), "--name=".into(), String::new()))
        );
        assert_eq!(
            slot("{a}}}x"),
            Some(("a".into(), String::new(), "}x".into()))
        );
        assert_eq!(slot("{{a}"), None);
        assert_eq!(slot("{a"), None);
        assert_eq!(slot("{1a}"), None);
        assert_eq!(slot("é{a}é"), Some(("a".into(), "é".into(), "é".into())));
        assert!(parse_element("{a}{b}").is_err());
        assert!(parse_element("{a}{{b}}").is_ok());
    }
}
