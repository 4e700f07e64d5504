//! Abuse monitoring (SPEC §12): what the edge says and does when a token's traffic looks
//! wrong. `event` is the one shape of everything it reports; `webhook` delivers events to an
//! operator's URL off the request path; `secret_scanning` is GitHub's partner endpoint that
//! revokes leaked remote-write secrets.

pub mod event;
pub mod secret_scanning;
pub mod webhook;
