//! command (to be filled in).
