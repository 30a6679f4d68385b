//! CPU time and memory of a process tree, from Linux's /proc.

use std::collections::HashMap;
use std::fs;

use anyhow::{Context, Result};

/// One process's counters at one moment.
#[derive(Debug, Clone)]
pub struct ProcessSample {
    pub name: String,
    /// User + system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    pub rss_bytes: u64,
    /// Proportional set size: shared pages split between the processes using them,
    /// so the sum over a tree is honest.
    pub pss_bytes: u64,
}

/// `(pid, parent pid, name)` of every process.
fn all_processes() -> Vec<(u32, u32, String)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (name, rest) = split_stat(&stat)?;
            let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid, name.to_owned()))
        })
        .collect()
}

/// `/proc/PID/stat` is `pid (name) state ppid …`; the name may hold spaces and
/// parentheses, so split at the last `)`.
fn split_stat(stat: &str) -> Option<(&str, &str)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    Some((stat.get(open + 1..close)?, stat.get(close + 2..)?))
}

/// The pid and every descendant.
pub fn tree(root: u32) -> Vec<u32> {
    let processes = all_processes();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, ppid, _) in &processes {
        children.entry(*ppid).or_default().push(*pid);
    }
    let mut found = vec![root];
    let mut next = 0;
    while next < found.len() {
        if let Some(kids) = children.get(&found[next]) {
            found.extend(kids);
        }
        next += 1;
    }
    found
}

/// The first descendant of `root` (or `root` itself) named `name`.
pub fn find_in_tree(root: u32, name: &str) -> Option<u32> {
    let names: HashMap<u32, String> = all_processes()
        .into_iter()
        .map(|(pid, _, name)| (pid, name))
        .collect();
    tree(root)
        .into_iter()
        .find(|pid| names.get(pid).is_some_and(|n| n == name))
}

pub fn sample(pid: u32) -> Result<ProcessSample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    let (name, rest) = split_stat(&stat).context("unreadable /proc stat")?;
    // After the name: state(0) ppid(1) … utime(11) stime(12).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks =
        |index: usize| -> u64 { fields.get(index).and_then(|v| v.parse().ok()).unwrap_or(0) };
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    Ok(ProcessSample {
        name: name.to_owned(),
        cpu_ticks: ticks(11) + ticks(12),
        rss_bytes: kib_field(&rollup, "Rss:") * 1024,
        pss_bytes: kib_field(&rollup, "Pss:") * 1024,
    })
}

fn kib_field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Clock ticks per second (USER_HZ); 100 on every Linux this runs on.
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_parentheses_are_split_at_the_last_one() {
        let (name, rest) = split_stat("42 (Web (Content)) S 1 42 42 0").unwrap();
        assert_eq!(name, "Web (Content)");
        assert_eq!(rest.split_whitespace().nth(1), Some("1"));
    }

    #[test]
    fn this_process_is_in_its_own_tree_and_has_memory() {
        let me = std::process::id();
        assert_eq!(tree(me)[0], me);
        let sample = sample(me).unwrap();
        assert!(sample.rss_bytes > 0 && sample.pss_bytes > 0);
    }
}
