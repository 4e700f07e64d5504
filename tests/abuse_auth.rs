//! Abuse monitoring's edge-wide `auth_storm` (SPEC §12), alone in its test binary because it
//! bounds the growth of the process's RSS (other tests in the same process would blur it).

mod common;
mod rw_support;

#[path = "abuse/support.rs"]
mod support;

#[path = "abuse/auth.rs"]
mod auth;
