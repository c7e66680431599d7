//! Maps core errors onto the Ruby exception classes defined in `lib/portcullis/error.rb`.
#![allow(dead_code)] // shared helpers; each capability binding uses the ones it needs
//!
//! Every raised exception carries the core error's stable `#code`.

use magnus::{exception::ExceptionClass, prelude::*, value::Lazy, Error, RModule, Ruby};
use portcullis::ErrorCode;

fn class(ruby: &Ruby, name: &str) -> ExceptionClass {
    // The classes are defined in Ruby before the extension is loaded; fall back to
    // StandardError so a broken load path still raises rather than aborting.
    static PORTCULLIS: Lazy<RModule> = Lazy::new(|ruby| {
        ruby.class_object()
            .const_get("Portcullis")
            .unwrap_or_else(|_| {
                ruby.define_module("Portcullis")
                    .unwrap_or_else(|_| unreachable!())
            })
    });
    ruby.get_inner(&PORTCULLIS)
        .const_get::<_, ExceptionClass>(name)
        .unwrap_or_else(|_| ruby.exception_standard_error())
}

/// Builds a Ruby exception of class `Portcullis::<class_name>` with `message` and `code`.
pub(crate) fn raise_with_code(ruby: &Ruby, class_name: &str, code: &str, message: &str) -> Error {
    let klass = class(ruby, class_name);
    match klass.new_instance((message,)) {
        Ok(exc) => {
            if let Err(e) =
                exc.funcall::<_, _, magnus::Value>("instance_variable_set", ("@code", code))
            {
                return e;
            }
            Error::from(exc)
        }
        Err(e) => e,
    }
}

/// Converts any core error into its Ruby exception class, keeping its code.
pub(crate) fn to_ruby<E: ErrorCode>(ruby: &Ruby, class_name: &str, err: &E) -> Error {
    raise_with_code(ruby, class_name, err.code(), &err.to_string())
}

/// `Portcullis::ArgumentError`-style failures in the binding itself (wrong Ruby type, …)
/// use Ruby's own `ArgumentError`/`TypeError`; this is the shorthand for the former.
pub(crate) fn arg_error(ruby: &Ruby, message: impl Into<String>) -> Error {
    Error::new(ruby.exception_arg_error(), message.into())
}
