//! Looking at the processes a test left running (Linux: `/proc`).

/// The pids of the processes whose parent is `parent` and whose name starts with
/// `prefix` (`"sd"`: sd-cli and sd-server).
///
/// # Panics
/// Without `/proc` (the tests that use it run on Linux).
pub fn children_named(parent: u32, prefix: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap_or_else(|error| panic!("/proc: {error}"))
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                let Some((name, rest)) = stat
                    .split_once(" (")
                    .and_then(|(_, rest)| rest.rsplit_once(')'))
                else {
                    return false;
                };
                let ppid = rest
                    .split_whitespace()
                    .nth(1)
                    .and_then(|ppid| ppid.parse::<u32>().ok());
                name.starts_with(prefix) && ppid == Some(parent)
            })
        })
        .collect()
}
