//! fs (to be filled in).
