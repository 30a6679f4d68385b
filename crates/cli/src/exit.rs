//! Exit codes that mean something to scripts (docs/cli.md lists them).

use std::process::ExitCode;

use switchyard_engine::{ErrorCode, ErrorReport};

pub const FAILURE: u8 = 1;
/// clap's own code for a command line it cannot read (clap exits with it itself).
#[allow(dead_code)]
pub const USAGE: u8 = 2;
pub const NOT_FOUND: u8 = 3;
pub const INVALID_CONFIG: u8 = 4;
pub const NOT_HEALTHY: u8 = 5;
pub const DAEMON_UNREACHABLE: u8 = 6;
pub const OWNED_ELSEWHERE: u8 = 7;
pub const START_FAILED: u8 = 8;

/// The exit code for an engine error.
pub fn code_for(report: &ErrorReport) -> u8 {
    match report.code {
        ErrorCode::NotFound | ErrorCode::ResultExpired => NOT_FOUND,
        ErrorCode::InvalidInstanceFile | ErrorCode::InvalidInput | ErrorCode::InvalidSetting => {
            INVALID_CONFIG
        }
        ErrorCode::ServerNotRunning
        | ErrorCode::ServerCrashed
        | ErrorCode::ServerFailed
        | ErrorCode::DaemonNotRunning => NOT_HEALTHY,
        ErrorCode::DaemonUnreachable => DAEMON_UNREACHABLE,
        ErrorCode::InstanceOwned | ErrorCode::DownloadBusy => OWNED_ELSEWHERE,
        ErrorCode::ServerStartFailed
        | ErrorCode::PortInUse
        | ErrorCode::InsufficientResources
        | ErrorCode::BinaryUnavailable
        | ErrorCode::BinaryRejected => START_FAILED,
        _ => FAILURE,
    }
}

pub fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_usage_stays_clap_s() {
        let codes = [
            FAILURE,
            USAGE,
            NOT_FOUND,
            INVALID_CONFIG,
            NOT_HEALTHY,
            DAEMON_UNREACHABLE,
            OWNED_ELSEWHERE,
            START_FAILED,
        ];
        let unique: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), codes.len());
        assert_eq!(USAGE, 2);
    }
}
