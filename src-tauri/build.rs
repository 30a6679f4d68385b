use tauri_build::{AppManifest, Attributes};

/// Every command the window may call; each needs an `allow-*` permission in a
/// capability, so nothing is reachable by accident.
const COMMANDS: &[&str] = &[
    "system_info",
    "app_info",
    "engine_status",
    "get_settings",
    "save_settings",
    "startup_warnings",
    "list_models",
    "list_downloads",
    "disk_usage",
    "hub_files",
    "guess_model_file",
    "inspect_model",
    "add_model",
    "pause_download",
    "resume_download",
    "cancel_download",
    "verify_model",
    "delete_model",
    "ensure_binary",
    "binary_status",
    "list_instances",
    "create_instance",
    "update_instance",
    "remove_instance",
    "start_instance",
    "stop_instance",
    "restart_instance",
    "instance_logs",
    "chat",
    "estimate_model",
    "preview_instance",
    "start_image_server",
    "stop_image_server",
    "image_server",
    "image_capabilities",
    "set_image_api_key",
    "image_api_key_set",
    "generate_image",
    "image_job",
    "cancel_image_job",
    "save_image",
    "orchestrator_status",
    "clear_saved_state",
    "restart_saved_llm",
    "image_server_status",
    "first_run_proposal",
    "install_curated_model",
    "instance_for_model",
    "finish_first_run",
    "open_logs_folder",
    "report_problem",
    "attached_daemon",
    "daemon_instance",
    "daemon_up",
    "daemon_down",
    "daemon_restart",
    "daemon_logs",
    "daemon_reload",
];

fn main() {
    let attributes = Attributes::new()
        .capabilities_path_pattern("src-tauri/capabilities/**/*.json")
        .app_manifest(AppManifest::new().commands(COMMANDS));
    if let Err(error) = tauri_build::try_build(attributes) {
        // A build script has no caller to return to: report and fail the build.
        eprintln!("tauri-build failed: {error:#}");
        std::process::exit(1);
    }
}
