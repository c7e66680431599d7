//! authz (to be filled in).
