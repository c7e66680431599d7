//! egress (to be filled in).
