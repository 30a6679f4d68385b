//! What every HTTP listener Switchyard opens shares (the LLM endpoints, the image
//! API, the daemon's control API): who may talk to it ([`guard`]: Host, Origin,
//! CORS) and how much of the machine one client can hold ([`serve`]: connections
//! and header time; [`body`]: body bytes and body time).

pub mod body;
pub mod guard;
pub mod serve;

/// Raises this process's open-file limit to its hard limit (Linux starts processes
/// at a soft 1,024): a flood of connections, each capped per listener, must leave
/// room to spawn servers and open models. Says what it could not do in the log.
pub fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        match getrlimit(Resource::RLIMIT_NOFILE) {
            Ok((soft, hard)) if soft < hard => {
                if let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                    tracing::warn!(%error, soft, hard, "cannot raise the open-file limit");
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot read the open-file limit"),
        }
    }
}
