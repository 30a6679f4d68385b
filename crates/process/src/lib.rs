//! The one owner of child processes: every program Switchyard starts (llama-server,
//! sd-cli and sd-server, the short runs that test a binary or read its `--help`)
//! goes through here.
//!
//! - [`spawn_guarded`]: its own process group, the parent-death signal (Linux), the
//!   Job Object (Windows), so none outlives the app or the daemon, even killed.
//! - [`pidfile`]: a record per running child in the state folder, so the next start
//!   ends one a crash left behind on a platform without those guards (after checking
//!   that the pid is still that program, and that its owner is gone).
//! - [`stop_child`]: a signal to the whole group, a grace, a second signal, SIGKILL.
//! - [`CapturedProcess`]: a short run with its output kept and a deadline.
//! - [`describe_exit`] and [`failure::classify`]: how it ended and what its output
//!   says went wrong, in one set of words for every program.
//!
//! The `unsafe` (the parent-death signal, the Job Object) stays in `child-guard`.

mod captured;
mod exit;
pub mod failure;
pub mod pidfile;
mod spawn;
mod stop;

pub use captured::{output_within, CapturedProcess};
pub use exit::{describe_exit, describe_signal, last_lines};
pub use pidfile::{ChildKind, EndedLeftover, PidFile, PidRecord};
pub use spawn::spawn_guarded;
#[cfg(unix)]
pub use stop::{end_group, signal_group};
pub use stop::{stop_child, StopOutcome, StopPolicy, GONE_POLL};
