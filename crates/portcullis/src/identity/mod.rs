//! identity (to be filled in).
