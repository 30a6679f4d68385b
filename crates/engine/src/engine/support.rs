//! Help for the person and for whoever helps them: the About box's facts and the
//! "Report a problem" zip.

use std::path::PathBuf;

use super::{AppInfo, Engine};
use crate::binaries::BinaryKind;
use crate::errors::Result;
use crate::report::{write_report, ReportContents};

const LICENSE: &str = env!("CARGO_PKG_LICENSE");
const HOMEPAGE: &str = "https://github.com/switchyard-app/switchyard";

impl Engine {
    /// Version, pinned builds, license and folders, for the About box and "Open log
    /// folder". `version` is the app's own (the shell's package version).
    pub fn app_info(&self, version: &str) -> AppInfo {
        let layout = &self.inner.layout;
        AppInfo {
            version: version.to_owned(),
            engine_version: env!("CARGO_PKG_VERSION").to_owned(),
            llama_cpp_release: self.binaries().pinned_release(BinaryKind::LlamaServer),
            sd_release: self.binaries().pinned_release(BinaryKind::Diffusion),
            license: LICENSE.to_owned(),
            homepage: HOMEPAGE.to_owned(),
            data_dir: layout.root().display().to_string(),
            config_dir: self.inner.config_dir.display().to_string(),
            logs_dir: layout.logs().display().to_string(),
            reports_dir: self.reports_dir().display().to_string(),
        }
    }

    /// Where problem reports go: beside the logs they carry.
    pub fn reports_dir(&self) -> PathBuf {
        self.inner.layout.root().join("reports")
    }

    /// Writes a problem report (versions, system facts, redacted settings, server
    /// states without their secrets, log tails) as a zip into
    /// [`Self::reports_dir`]; returns its path.
    pub fn write_problem_report(&self, version: &str) -> Result<PathBuf> {
        let info = self.app_info(version);
        let versions = serde_json::json!({
            "app": info.version,
            "engine": info.engine_version,
            "llama_cpp_release": info.llama_cpp_release,
            "sd_release": info.sd_release,
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
        });
        let binaries = serde_json::json!({
            "llama_server": self.binary_status(BinaryKind::LlamaServer),
            "diffusion": self.binary_status(BinaryKind::Diffusion),
        });
        let settings = self.settings();
        let logs_dir = self.inner.layout.logs();
        let home = dirs::home_dir();
        let instances = self.llama().list();
        let contents = ReportContents {
            versions,
            system: serde_json::to_value(self.system_info()).unwrap_or_default(),
            settings: &settings,
            instances: &instances,
            binaries,
            logs_dir: &logs_dir,
            home_dir: home.as_deref(),
        };
        write_report(&self.reports_dir(), self.inner.clock.now_ms(), &contents)
    }
}
