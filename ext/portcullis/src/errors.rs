//! Maps core errors onto the Ruby exception classes defined in `lib/portcullis/error.rb`.
#![allow(dead_code)] // shared helpers; each capability binding uses the ones it needs
//!
//! Every raised exception carries the core error's stable `#code`.

//!
//! It is also where no panic crosses into Ruby. magnus 0.8's own `method!`/`function!`
//! wrappers catch a panic, but turn it into Ruby's `fatal`, which no `rescue` catches: the
//! process dies (`CertSource.new(:tls, max_certs: 2**62)` once did). The [`method`] and
//! [`function`] macros here take the same arguments as magnus's and register the same C
//! signatures, but run the binding under [`guard`], so a panic becomes a rescuable
//! `Portcullis::Error` with code `internal.panic`. Every binding imports them instead of
//! magnus's (spec/panic_guard_spec.rb checks that); hash iteration callbacks go through
//! [`each`], and work without the GVL through `gvl.rs`, which maps a panic the same way.

use std::panic::{catch_unwind, AssertUnwindSafe};

use magnus::{
    exception::ExceptionClass, prelude::*, r_hash::ForEach, value::Lazy, Error, RModule, Ruby,
    Value,
};
use portcullis::ErrorCode;

/// The code of the error a caught panic becomes.
pub(crate) const PANIC_CODE: &str = "internal.panic";

/// The text a panic payload carries (`panic!("...")` gives `&str` or `String`).
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}

/// The `Portcullis::Error` (code `internal.panic`) a caught panic becomes.
pub(crate) fn panic_error(message: &str) -> Error {
    let text = format!(
        "portcullis: internal error (a bug in Portcullis, please report it): {message}; \
         the operation was not performed"
    );
    match Ruby::get() {
        Ok(ruby) => raise_with_code(&ruby, "Error", PANIC_CODE, &text),
        // Bindings run on Ruby threads, so this is not reached; without a Ruby handle there
        // is no class to build an exception from, and a Jump would be worse.
        Err(_) => Error::new(ruby_handle().exception_runtime_error(), text),
    }
}

#[allow(unsafe_code)] // fallback for the unreachable branch above; see its SAFETY note
fn ruby_handle() -> Ruby {
    // SAFETY: called only from a binding, which Ruby invokes on a Ruby thread with the GVL.
    unsafe { Ruby::get_unchecked() }
}

/// Runs one binding call; a panic in it (argument conversion included) becomes
/// [`panic_error`] instead of unwinding into magnus, which would make it `fatal`.
pub(crate) fn guard(work: impl FnOnce() -> Result<Value, Error>) -> Result<Value, Error> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|p| Err(panic_error(&panic_message(&*p))))
}

/// Wraps an `RHash::foreach` callback: magnus would turn a panic in it into `fatal`; this
/// turns it into [`panic_error`], which `foreach` hands back as an ordinary error.
pub(crate) fn each<K, V>(
    mut callback: impl FnMut(K, V) -> Result<ForEach, Error>,
) -> impl FnMut(K, V) -> Result<ForEach, Error> {
    move |k, v| {
        catch_unwind(AssertUnwindSafe(|| callback(k, v)))
            .unwrap_or_else(|p| Err(panic_error(&panic_message(&*p))))
    }
}

/// magnus's `method!`, with [`guard`] around the call. Same arguments, same C signature.
macro_rules! guarded_method {
    ($name:expr, -1) => {{
        #[allow(unsafe_code)] // the C signature magnus registers methods with
        unsafe extern "C" fn anon(
            argc: ::std::os::raw::c_int,
            argv: *const ::magnus::Value,
            rb_self: ::magnus::Value,
        ) -> ::magnus::Value {
            #[allow(unused_imports)] // one of the two applies, as in magnus's macros
            use ::magnus::method::{MethodCAry, RubyMethodCAry};
            // SAFETY: argc/argv come from Ruby's method call, as in magnus's `method!`.
            let call = || {
                $crate::errors::guard(|| unsafe { $name.call_convert_value(argc, argv, rb_self) })
            };
            // SAFETY: called by Ruby with the GVL; magnus raises the Err after `call` returned.
            unsafe { ::magnus::method::Function0::call_handle_error(call) }
        }
        anon as unsafe extern "C" fn(
            ::std::os::raw::c_int,
            *const ::magnus::Value,
            ::magnus::Value,
        ) -> ::magnus::Value
    }};
    ($name:expr, 0) => { $crate::errors::guarded_method!(@n $name, Method0, RubyMethod0;) };
    ($name:expr, 1) => { $crate::errors::guarded_method!(@n $name, Method1, RubyMethod1; a) };
    ($name:expr, 2) => { $crate::errors::guarded_method!(@n $name, Method2, RubyMethod2; a b) };
    ($name:expr, 3) => { $crate::errors::guarded_method!(@n $name, Method3, RubyMethod3; a b c) };
    ($name:expr, 4) => { $crate::errors::guarded_method!(@n $name, Method4, RubyMethod4; a b c d) };
    ($name:expr, 5) => {
        $crate::errors::guarded_method!(@n $name, Method5, RubyMethod5; a b c d e)
    };
    ($name:expr, 6) => {
        $crate::errors::guarded_method!(@n $name, Method6, RubyMethod6; a b c d e f)
    };
    ($name:expr, 7) => {
        $crate::errors::guarded_method!(@n $name, Method7, RubyMethod7; a b c d e f g)
    };
    ($name:expr, 8) => {
        $crate::errors::guarded_method!(@n $name, Method8, RubyMethod8; a b c d e f g h)
    };
    ($name:expr, 9) => {
        $crate::errors::guarded_method!(@n $name, Method9, RubyMethod9; a b c d e f g h i)
    };
    ($name:expr, 10) => {
        $crate::errors::guarded_method!(@n $name, Method10, RubyMethod10; a b c d e f g h i j)
    };
    ($name:expr, 11) => {
        $crate::errors::guarded_method!(@n $name, Method11, RubyMethod11; a b c d e f g h i j k)
    };
    ($name:expr, 12) => {
        $crate::errors::guarded_method!(@n $name, Method12, RubyMethod12; a b c d e f g h i j k l)
    };
    ($name:expr, 13) => {
        $crate::errors::guarded_method!(@n $name, Method13, RubyMethod13; a b c d e f g h i j k l m)
    };
    ($name:expr, 14) => {
        $crate::errors::guarded_method!(@n $name, Method14, RubyMethod14; a b c d e f g h i j k l m n)
    };
    ($name:expr, 15) => {
        $crate::errors::guarded_method!(@n $name, Method15, RubyMethod15; a b c d e f g h i j k l m n o)
    };
    (@n $name:expr, $plain:ident, $with_ruby:ident; $($arg:ident)*) => {{
        #[allow(unsafe_code)] // the C signature magnus registers methods with
        unsafe extern "C" fn anon(
            rb_self: ::magnus::Value,
            $($arg: ::magnus::Value),*
        ) -> ::magnus::Value {
            #[allow(unused_imports)] // one of the two applies, as in magnus's macros
            use ::magnus::method::{$plain, $with_ruby};
            let call = || $crate::errors::guard(|| $name.call_convert_value(rb_self, $($arg),*));
            // SAFETY: called by Ruby with the GVL; magnus raises the Err after `call` returned.
            unsafe { ::magnus::method::Function0::call_handle_error(call) }
        }
        anon as unsafe extern "C" fn(
            ::magnus::Value,
            $($crate::errors::guarded_method!(@value $arg)),*
        ) -> ::magnus::Value
    }};
    (@value $arg:ident) => { ::magnus::Value };
}

/// magnus's `function!`, with [`guard`] around the call. Same arguments, same C signature.
macro_rules! guarded_function {
    ($name:expr, -1) => {{
        #[allow(unsafe_code)] // the C signature magnus registers functions with
        unsafe extern "C" fn anon(
            argc: ::std::os::raw::c_int,
            argv: *const ::magnus::Value,
            _rb_self: ::magnus::Value,
        ) -> ::magnus::Value {
            #[allow(unused_imports)] // one of the two applies, as in magnus's macros
            use ::magnus::method::{FunctionCAry, RubyFunctionCAry};
            // SAFETY: argc/argv come from Ruby's method call, as in magnus's `function!`.
            let call = || $crate::errors::guard(|| unsafe { $name.call_convert_value(argc, argv) });
            // SAFETY: called by Ruby with the GVL; magnus raises the Err after `call` returned.
            unsafe { ::magnus::method::Function0::call_handle_error(call) }
        }
        anon as unsafe extern "C" fn(
            ::std::os::raw::c_int,
            *const ::magnus::Value,
            ::magnus::Value,
        ) -> ::magnus::Value
    }};
    ($name:expr, 0) => { $crate::errors::guarded_function!(@n $name, Function0, RubyFunction0;) };
    ($name:expr, 1) => { $crate::errors::guarded_function!(@n $name, Function1, RubyFunction1; a) };
    ($name:expr, 2) => {
        $crate::errors::guarded_function!(@n $name, Function2, RubyFunction2; a b)
    };
    ($name:expr, 3) => {
        $crate::errors::guarded_function!(@n $name, Function3, RubyFunction3; a b c)
    };
    ($name:expr, 4) => {
        $crate::errors::guarded_function!(@n $name, Function4, RubyFunction4; a b c d)
    };
    ($name:expr, 5) => {
        $crate::errors::guarded_function!(@n $name, Function5, RubyFunction5; a b c d e)
    };
    ($name:expr, 6) => {
        $crate::errors::guarded_function!(@n $name, Function6, RubyFunction6; a b c d e f)
    };
    ($name:expr, 7) => {
        $crate::errors::guarded_function!(@n $name, Function7, RubyFunction7; a b c d e f g)
    };
    ($name:expr, 8) => {
        $crate::errors::guarded_function!(@n $name, Function8, RubyFunction8; a b c d e f g h)
    };
    ($name:expr, 9) => {
        $crate::errors::guarded_function!(@n $name, Function9, RubyFunction9; a b c d e f g h i)
    };
    ($name:expr, 10) => {
        $crate::errors::guarded_function!(@n $name, Function10, RubyFunction10; a b c d e f g h i j)
    };
    ($name:expr, 11) => {
        $crate::errors::guarded_function!(@n $name, Function11, RubyFunction11; a b c d e f g h i j k)
    };
    ($name:expr, 12) => {
        $crate::errors::guarded_function!(@n $name, Function12, RubyFunction12; a b c d e f g h i j k l)
    };
    ($name:expr, 13) => {
        $crate::errors::guarded_function!(@n $name, Function13, RubyFunction13; a b c d e f g h i j k l m)
    };
    ($name:expr, 14) => {
        $crate::errors::guarded_function!(@n $name, Function14, RubyFunction14; a b c d e f g h i j k l m n)
    };
    ($name:expr, 15) => {
        $crate::errors::guarded_function!(@n $name, Function15, RubyFunction15; a b c d e f g h i j k l m n o)
    };
    (@n $name:expr, $plain:ident, $with_ruby:ident; $($arg:ident)*) => {{
        #[allow(unsafe_code)] // the C signature magnus registers functions with
        unsafe extern "C" fn anon(
            _rb_self: ::magnus::Value,
            $($arg: ::magnus::Value),*
        ) -> ::magnus::Value {
            #[allow(unused_imports)] // one of the two applies, as in magnus's macros
            use ::magnus::method::{$plain, $with_ruby};
            let call = || $crate::errors::guard(|| $name.call_convert_value($($arg),*));
            // SAFETY: called by Ruby with the GVL; magnus raises the Err after `call` returned.
            unsafe { ::magnus::method::Function0::call_handle_error(call) }
        }
        anon as unsafe extern "C" fn(
            ::magnus::Value,
            $($crate::errors::guarded_method!(@value $arg)),*
        ) -> ::magnus::Value
    }};
}

pub(crate) use guarded_function;
pub(crate) use guarded_function as function;
pub(crate) use guarded_method;
pub(crate) use guarded_method as method;

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
            if let Err(e) = exc.funcall::<_, _, Value>("instance_variable_set", ("@code", code)) {
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

/// `Portcullis._http_status(code)`: the core's answer for an error code (400, 401, 403,
/// 404, 409, 500, 502 or 504; unknown codes are 403). Ruby's `Portcullis::Error#http_status`.
fn http_status(code: String) -> u16 {
    portcullis::Answer::for_code(&code).status()
}

pub(crate) fn init(module: RModule) -> Result<(), Error> {
    use magnus::prelude::*;
    module.define_singleton_method("_http_status", guarded_function!(http_status, 1))?;
    Ok(())
}
