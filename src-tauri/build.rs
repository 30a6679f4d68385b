use tauri_build::{AppManifest, Attributes};

// The one list of commands (shared with the app's tests, which check the rest).
#[path = "command_list.rs"]
mod command_list;

fn main() {
    let attributes = Attributes::new()
        .capabilities_path_pattern("src-tauri/capabilities/**/*.json")
        .app_manifest(AppManifest::new().commands(command_list::COMMANDS));
    if let Err(error) = tauri_build::try_build(attributes) {
        // A build script has no caller to return to: report and fail the build.
        eprintln!("tauri-build failed: {error:#}");
        std::process::exit(1);
    }
}
