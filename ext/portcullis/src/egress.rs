//! Ruby bindings for `portcullis::egress`.

use magnus::{Error, RModule, Ruby};

pub(crate) fn init(_ruby: &Ruby, _module: RModule) -> Result<(), Error> {
    Ok(())
}
