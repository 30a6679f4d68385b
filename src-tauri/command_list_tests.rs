//! The places a command is named besides [`COMMANDS`], read as text and compared
//! with it both ways: each failure names the commands missing or left over.

use std::collections::BTreeSet;

use super::COMMANDS;

const CAPABILITY: &str = include_str!("capabilities/default.json");
const MAIN: &str = include_str!("main.rs");
const IPC_TS: &str = include_str!("../ui/src/lib/ipc.ts");

fn listed() -> BTreeSet<String> {
    COMMANDS.iter().map(|name| (*name).to_owned()).collect()
}

/// Fails with what `found` (in `place`) lacks and has beyond the list.
fn assert_same(place: &str, found: &[String]) {
    let set: BTreeSet<String> = found.iter().cloned().collect();
    assert_eq!(
        set.len(),
        found.len(),
        "{place} names a command twice: {found:?}"
    );
    let listed = listed();
    let missing: Vec<&String> = listed.difference(&set).collect();
    let extra: Vec<&String> = set.difference(&listed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{place} differs from src-tauri/command_list.rs: missing {missing:?}, not in the list {extra:?}"
    );
}

#[test]
fn the_list_has_each_command_once() {
    assert_eq!(listed().len(), COMMANDS.len(), "a command is listed twice");
}

/// `allow-<name with dashes>` for each command, nothing else but core permissions.
fn capability_commands(json: &str) -> Vec<String> {
    let capability: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|error| panic!("capability JSON: {error}"));
    capability["permissions"]
        .as_array()
        .unwrap_or_else(|| panic!("the capability has no permissions list"))
        .iter()
        .filter_map(serde_json::Value::as_str)
        .filter(|permission| !permission.starts_with("core:"))
        .map(|permission| {
            permission
                .strip_prefix("allow-")
                .unwrap_or_else(|| panic!("`{permission}`: only allow-<command> is expected"))
                .replace('-', "_")
        })
        .collect()
}

#[test]
fn the_capability_allows_exactly_the_listed_commands() {
    assert_same(
        "capabilities/default.json",
        &capability_commands(CAPABILITY),
    );
}

/// The last path segment of each entry of `generate_handler![…]`.
fn handler_commands(main_rs: &str) -> Vec<String> {
    let (_, after) = main_rs
        .split_once("generate_handler![")
        .unwrap_or_else(|| panic!("main.rs has no generate_handler!"));
    let (entries, _) = after
        .split_once(']')
        .unwrap_or_else(|| panic!("generate_handler! is not closed"));
    entries
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| entry.rsplit("::").next().unwrap_or(entry).to_owned())
        .collect()
}

#[test]
fn the_handler_registers_exactly_the_listed_commands() {
    assert_same("generate_handler! in main.rs", &handler_commands(MAIN));
}

/// The names the window calls: the string literal that opens each `call(…)` or
/// `call<T>(…)` (the one door to `invoke`). Other calls (`call<T>(command, …)`,
/// the helper itself) start with no literal and are skipped.
fn ipc_commands(ipc_ts: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = ipc_ts;
    while let Some(at) = rest.find("call") {
        let before = rest[..at].chars().next_back();
        let after = &rest[at + "call".len()..];
        rest = after;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
            continue;
        }
        if !(after.starts_with('<') || after.starts_with('(')) {
            continue;
        }
        let Some(open) = after.find('(') else { break };
        let argument = after[open + 1..].trim_start();
        let Some(quote) = argument
            .chars()
            .next()
            .filter(|c| matches!(c, '\'' | '"' | '`'))
        else {
            continue;
        };
        if let Some((name, _)) = argument[1..].split_once(quote) {
            found.push(name.to_owned());
        }
    }
    found
}

#[test]
fn the_window_calls_exactly_the_listed_commands() {
    assert_same("ui/src/lib/ipc.ts", &ipc_commands(IPC_TS));
}

#[test]
fn the_readers_find_what_they_should() {
    let ts = "async function call<T>(command: string) { return invoke<T>(command); }\n\
              a: () => call<Foo<Bar>>('first'),\n\
              b: (x: string) => call<X | null>(\n  'second', { x }),\n\
              c: () => call(\"third\"),\n\
              d: () => recall('not_this'),";
    assert_eq!(ipc_commands(ts), ["first", "second", "third"]);
    let main = "tauri::generate_handler![\n  a::one,\n  b::two,\n]";
    assert_eq!(handler_commands(main), ["one", "two"]);
    let capability = r#"{"permissions": ["core:event:allow-listen", "allow-two-words"]}"#;
    assert_eq!(capability_commands(capability), ["two_words"]);
}
