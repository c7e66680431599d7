//! Test-only entry points that panic on purpose, so spec/panic_guard_spec.rb can check that
//! no panic crosses into Ruby (the fixes elsewhere leave no reachable panic to test with).
//!
//! Registered only when `PORTCULLIS_TEST_PANIC_HOOK=1` is set when the extension loads;
//! otherwise `Portcullis::TestHooks` does not exist.

use magnus::{prelude::*, Error, RModule, Ruby, Value};

use crate::errors::{self, function};
use crate::gvl;

/// The variable that enables the hooks at load time.
const ENABLE: &str = "PORTCULLIS_TEST_PANIC_HOOK";

/// `Portcullis::TestHooks.panic(where)`: panics in the binding itself (`"binding"`), in
/// work run without the GVL (`"without_gvl"`), or in a hash iteration callback (`"each"`).
#[allow(clippy::panic)] // panicking is the point: the guards must turn it into an error
fn panic_in(ruby: &Ruby, place: String) -> Result<Value, Error> {
    match place.as_str() {
        "binding" => panic!("test panic in a binding"),
        "without_gvl" => {
            let r: Result<(), String> = gvl::without_gvl(|| panic!("test panic without the GVL"));
            r.map_err(gvl::panic_error)?;
        }
        "each" => {
            let hash = ruby.hash_new();
            hash.aset("k", 1)?;
            hash.foreach(errors::each(|_k: Value, _v: Value| {
                panic!("test panic in a hash callback")
            }))?;
        }
        other => return Err(errors::arg_error(ruby, format!("unknown place {other:?}"))),
    }
    Ok(ruby.qnil().as_value())
}

pub(crate) fn init(_ruby: &Ruby, module: RModule) -> Result<(), Error> {
    if std::env::var_os(ENABLE).is_some_and(|v| v == "1") {
        let hooks = module.define_module("TestHooks")?;
        hooks.define_singleton_method("panic", function!(panic_in, 1))?;
    }
    Ok(())
}
