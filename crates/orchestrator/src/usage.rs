//! What the orchestrator counts for each running LLM server when it decides: what
//! the server reported (its RSS when known) once loaded, else its estimate.

use serde::Serialize;
use ts_rs::TS;

use switchyard_llama::InstanceStatus;

/// Where a server's counted memory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum UsageBasis {
    /// The process's resident set, or the buffers llama-server reported.
    Measured,
    /// The estimate for its running configuration (still loading).
    Estimated,
}

/// One running LLM server's memory as the orchestrator counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct InstanceUsage {
    pub name: String,
    #[ts(type = "number")]
    pub ram_bytes: u64,
    #[ts(type = "number")]
    pub vram_bytes: u64,
    pub basis: UsageBasis,
}

impl InstanceUsage {
    pub fn of(status: &InstanceStatus) -> Self {
        let (ram_bytes, vram_bytes, basis) = if let Some(measured) = &status.measured {
            let ram = measured.rss_bytes.unwrap_or_else(|| measured.ram.total());
            (ram, measured.vram.total(), UsageBasis::Measured)
        } else {
            let (ram, vram) = status
                .running
                .as_ref()
                .and_then(|running| running.estimate.as_ref())
                .map_or((0, 0), |estimate| {
                    (estimate.ram_bytes(), estimate.vram_bytes())
                });
            (ram, vram, UsageBasis::Estimated)
        };
        Self {
            name: status.spec.name.clone(),
            ram_bytes,
            vram_bytes,
            basis,
        }
    }
}
