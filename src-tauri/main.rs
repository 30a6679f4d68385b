//! Switchyard's desktop shell: maps commands to the engine, forwards engine events
//! to the window, and owns the tray and window behaviour. No business logic here.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod binary_commands;
mod bridge;
#[cfg(test)]
mod command_list;
mod commands;
mod daemon_commands;
mod help_commands;
mod image_commands;
mod ipc_error;
mod llama_commands;
mod model_commands;
mod monitor_commands;
mod router_commands;
mod settings;
mod tray;
mod window;

use std::time::Duration;

use switchyard_engine::settings::Settings;
use switchyard_engine::{Engine, EngineDeps};
use tauri::{App, Manager, RunEvent};
use tauri_plugin_autostart::MacosLauncher;

use crate::settings::StartupWarnings;

/// How often the System tab's figures refresh.
const MONITOR_INTERVAL: Duration = Duration::from_secs(2);
/// How often the app looks for a `switchyard daemon` on its data folder (cheap
/// without one: a file that does not exist).
const DAEMON_WATCH_INTERVAL: Duration = Duration::from_secs(2);
/// Passed by the login item: start in the tray without showing the window.
const MINIMIZED_FLAG: &str = "--minimized";

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SWITCHYARD_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let app = tauri::Builder::default()
        // First, so a second launch only focuses the running window.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            window::show(app)
        }))
        .plugin(tauri_plugin_store::Builder::new().build())
        .plugin(tauri_plugin_opener::init())
        .plugin(window::navigation_guard())
        .plugin(tauri_plugin_autostart::init(
            MacosLauncher::LaunchAgent,
            Some(vec![MINIMIZED_FLAG]),
        ))
        .setup(|app| Ok(setup(app)?))
        .on_window_event(window::on_event)
        .invoke_handler(tauri::generate_handler![
            commands::system_info,
            commands::app_info,
            commands::engine_status,
            commands::get_settings,
            commands::save_settings,
            commands::startup_warnings,
            model_commands::list_models,
            model_commands::list_downloads,
            model_commands::disk_usage,
            model_commands::hub_files,
            model_commands::guess_model_file,
            model_commands::inspect_model,
            model_commands::add_model,
            model_commands::pause_download,
            model_commands::resume_download,
            model_commands::cancel_download,
            model_commands::verify_model,
            model_commands::delete_model,
            binary_commands::ensure_binary,
            binary_commands::binary_status,
            llama_commands::list_instances,
            llama_commands::create_instance,
            llama_commands::update_instance,
            llama_commands::remove_instance,
            llama_commands::start_instance,
            llama_commands::stop_instance,
            llama_commands::restart_instance,
            llama_commands::instance_logs,
            llama_commands::chat,
            llama_commands::estimate_model,
            llama_commands::preview_instance,
            image_commands::start_image_server,
            image_commands::stop_image_server,
            image_commands::image_server,
            image_commands::image_capabilities,
            image_commands::set_image_api_key,
            image_commands::image_api_key_set,
            image_commands::generate_image,
            image_commands::image_job,
            image_commands::cancel_image_job,
            image_commands::save_image,
            monitor_commands::orchestrator_status,
            monitor_commands::clear_saved_state,
            monitor_commands::restart_saved_llm,
            monitor_commands::image_server_status,
            help_commands::first_run_proposal,
            help_commands::install_curated_model,
            help_commands::instance_for_model,
            help_commands::finish_first_run,
            help_commands::open_logs_folder,
            help_commands::report_problem,
            daemon_commands::attached_daemon,
            daemon_commands::daemon_instance,
            daemon_commands::daemon_up,
            daemon_commands::daemon_down,
            daemon_commands::daemon_restart,
            daemon_commands::daemon_logs,
            daemon_commands::daemon_reload,
            router_commands::endpoint_url,
            router_commands::routed_models,
            router_commands::load_model,
            router_commands::unload_model,
            router_commands::pin_model,
            router_commands::set_endpoint_api_key,
            router_commands::endpoint_api_key_set,
        ])
        .build(tauri::generate_context!())?;

    app.run(|app, event| {
        if let RunEvent::ExitRequested { api, .. } = event {
            // Stop the servers before the process ends; the second request (after
            // shutdown) goes through.
            if let Some(engine) = app.try_state::<Engine>() {
                if !engine.is_shutting_down() {
                    api.prevent_exit();
                    let engine = engine.inner().clone();
                    let app = app.clone();
                    tauri::async_runtime::spawn(async move {
                        engine.shutdown().await;
                        app.exit(0);
                    });
                }
            }
        }
    });
    Ok(())
}

fn setup(app: &mut App) -> anyhow::Result<()> {
    let handle = app.handle().clone();
    let mut warnings = StartupWarnings::default();
    let mut deps = EngineDeps::for_host(Settings::default())?;
    deps.settings = settings::load(&deps.config_dir, &mut warnings);

    let engine = match Engine::new(deps.clone()) {
        Ok(engine) => engine,
        // The chosen data folder is unusable (unplugged disk, permissions): start
        // on the default one and tell the user, rather than not starting at all.
        Err(error) if deps.settings.data_dir.is_some() => {
            tracing::error!(%error, "data folder unusable; using the default");
            warnings.0.push(error.report());
            deps.settings.data_dir = None;
            Engine::new(deps)?
        }
        Err(error) => return Err(error.into()),
    };
    tracing::info!(data_dir = %engine.layout().root().display(), "engine ready");
    // Managed before anything can call a command.
    app.manage(engine.clone());
    app.manage(warnings);

    bridge::spawn(handle.clone(), &engine);
    tauri::async_runtime::spawn({
        let engine = engine.clone();
        async move { engine.run_monitor(MONITOR_INTERVAL).await }
    });
    tauri::async_runtime::spawn({
        let engine = engine.clone();
        async move { engine.run_daemon_watch(DAEMON_WATCH_INTERVAL).await }
    });
    // The Switchyard endpoint. A taken port (the daemon of this data folder may
    // serve it) leaves the window without it, not without the app.
    tauri::async_runtime::spawn({
        let engine = engine.clone();
        async move {
            match engine.serve_endpoint().await {
                Ok(address) => tracing::info!(%address, "Switchyard endpoint listening"),
                Err(error) => tracing::warn!(%error, "Switchyard endpoint not served"),
            }
        }
    });
    // Servers that ran when the app last closed, if Settings say so; each start
    // reports through events, so the window shows them come up.
    tauri::async_runtime::spawn({
        let engine = engine.clone();
        async move { engine.restore_llm_servers().await }
    });
    if let Err(error) = tray::create(&handle) {
        // No tray (e.g. no status-notifier host): the window still works.
        tracing::warn!(%error, "tray icon unavailable");
    }
    if std::env::args().any(|arg| arg == MINIMIZED_FLAG) {
        if let Some(window) = app.get_webview_window(window::MAIN) {
            window.hide()?;
        }
    }
    Ok(())
}
