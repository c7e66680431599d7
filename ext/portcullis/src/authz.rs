//! Ruby bindings for `portcullis::authz`.

use magnus::{Error, RModule, Ruby};

pub(crate) fn init(_ruby: &Ruby, _module: RModule) -> Result<(), Error> {
    Ok(())
}
