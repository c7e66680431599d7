//! The Ruby extension: thin wrappers over the `portcullis` core crate.
//!
//! Rule of the house: this crate converts types and maps errors. Policy decisions live in
//! the core; if you find yourself writing one here, move it there.

mod authz;
mod command;
mod config;
mod egress;
mod errors;
mod fs;
mod guard;
mod gvl;
mod identity;
mod lockdown;
mod source;
mod test_hooks;

use magnus::{Error, Ruby};

#[magnus::init(name = "portcullis")]
fn init(ruby: &Ruby) -> Result<(), Error> {
    // A panic while defining the classes is a load error, not magnus's `fatal`.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| define(ruby)))
        .unwrap_or_else(|p| Err(errors::panic_error(&errors::panic_message(&*p))))
}

fn define(ruby: &Ruby) -> Result<(), Error> {
    let module = ruby.define_module("Portcullis")?;
    identity::init(ruby, module)?;
    source::init(ruby, module)?;
    authz::init(ruby, module)?;
    egress::init(ruby, module)?;
    fs::init(ruby, module)?;
    command::init(ruby, module)?;
    config::init(ruby, module)?;
    test_hooks::init(ruby, module)?;
    guard::init(ruby, module)?;
    lockdown::init(ruby, module)?;
    errors::init(module)?;
    Ok(())
}
