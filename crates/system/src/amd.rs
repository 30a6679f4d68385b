//! AMD GPUs through the amdgpu driver's sysfs files
//! (`/sys/class/drm/card*/device/mem_info_vram_*`), which need no ROCm install.

use std::fs;
use std::path::{Path, PathBuf};

use super::{GpuBackend, GpuIdentity, GpuMemory, GpuVendor};

const AMD_PCI_VENDOR: &str = "0x1002";

/// The DRM class folder to scan; tests point it at a folder they build.
#[derive(Debug, Clone)]
pub struct AmdSysfs {
    drm_root: PathBuf,
}

/// One AMD card found in sysfs: its identity and where to read its memory.
#[derive(Debug, Clone)]
pub struct AmdCard {
    pub name: String,
    pub driver: Option<String>,
    device_dir: PathBuf,
}

impl Default for AmdSysfs {
    fn default() -> Self {
        Self::new("/sys/class/drm")
    }
}

impl AmdSysfs {
    pub fn new(drm_root: impl Into<PathBuf>) -> Self {
        Self {
            drm_root: drm_root.into(),
        }
    }

    /// AMD cards with VRAM counters, in card-number order. Anything unreadable is
    /// skipped: a machine without AMD GPUs (or without sysfs) simply has none.
    pub fn cards(&self) -> Vec<AmdCard> {
        let Ok(entries) = fs::read_dir(&self.drm_root) else {
            return Vec::new();
        };
        let mut cards: Vec<(u32, AmdCard)> = entries
            .flatten()
            .filter_map(|entry| {
                let file_name = entry.file_name();
                // `card0` is a GPU; `card0-DP-1` is one of its connectors.
                let number: u32 = file_name.to_str()?.strip_prefix("card")?.parse().ok()?;
                let device_dir = entry.path().join("device");
                if read_trimmed(&device_dir.join("vendor"))? != AMD_PCI_VENDOR
                    || !device_dir.join("mem_info_vram_total").exists()
                {
                    return None;
                }
                Some((number, AmdCard::read(device_dir)))
            })
            .collect();
        cards.sort_by_key(|(number, _)| *number);
        cards.into_iter().map(|(_, card)| card).collect()
    }
}

impl AmdCard {
    fn read(device_dir: PathBuf) -> Self {
        let name = read_trimmed(&device_dir.join("product_name"))
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| {
                let device_id = read_trimmed(&device_dir.join("device")).unwrap_or_default();
                format!("AMD Radeon GPU (device {device_id})")
            });
        let driver = fs::read_link(device_dir.join("driver"))
            .ok()
            .and_then(|link| Some(link.file_name()?.to_string_lossy().into_owned()));
        Self {
            name,
            driver,
            device_dir,
        }
    }

    pub fn identity(&self, index: u32) -> GpuIdentity {
        GpuIdentity {
            index,
            vendor: GpuVendor::Amd,
            name: self.name.clone(),
            driver: self.driver.clone(),
            backends: vec![GpuBackend::Rocm, GpuBackend::Vulkan],
            unified_memory: false,
            memory_bandwidth_bytes_per_second: None,
        }
    }

    /// Reads the VRAM counters now.
    pub fn memory(&self, index: u32) -> GpuMemory {
        let total = read_u64(&self.device_dir.join("mem_info_vram_total")).unwrap_or(0);
        let used = read_u64(&self.device_dir.join("mem_info_vram_used"));
        let utilization = read_u64(&self.device_dir.join("gpu_busy_percent"))
            .and_then(|percent| u16::try_from(percent).ok())
            .map(f32::from);
        GpuMemory {
            index,
            total_bytes: total,
            used_bytes: used,
            free_bytes: used.map(|used| total.saturating_sub(used)),
            utilization_percent: utilization,
        }
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_owned())
}

fn read_u64(path: &Path) -> Option<u64> {
    read_trimmed(path)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, text: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join(file), text).unwrap();
    }

    /// Builds a drm folder shaped like the kernel's: two AMD cards (one without a
    /// product name), an Intel iGPU, and a connector entry.
    fn fake_drm() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let card1 = root.path().join("card1/device");
        write(&card1, "vendor", "0x1002\n");
        write(&card1, "device", "0x744c\n");
        write(&card1, "mem_info_vram_total", "25753026560\n");
        write(&card1, "mem_info_vram_used", "1073741824\n");
        write(&card1, "gpu_busy_percent", "7\n");
        let card0 = root.path().join("card0/device");
        write(&card0, "vendor", "0x1002\n");
        write(&card0, "product_name", "AMD Radeon RX 6800 XT\n");
        write(&card0, "mem_info_vram_total", "17163091968\n");
        let intel = root.path().join("card2/device");
        write(&intel, "vendor", "0x8086\n");
        write(&root.path().join("card1-DP-1"), "status", "connected\n");
        root
    }

    #[test]
    fn finds_amd_cards_in_order_and_ignores_others() {
        let root = fake_drm();
        let cards = AmdSysfs::new(root.path()).cards();
        let names: Vec<&str> = cards.iter().map(|card| card.name.as_str()).collect();
        assert_eq!(
            names,
            ["AMD Radeon RX 6800 XT", "AMD Radeon GPU (device 0x744c)"]
        );
        assert_eq!(cards[0].identity(3).index, 3);
        assert_eq!(cards[0].identity(0).vendor, GpuVendor::Amd);
    }

    #[test]
    fn reads_vram_counters_fresh() {
        let root = fake_drm();
        let cards = AmdSysfs::new(root.path()).cards();
        let memory = cards[1].memory(1);
        assert_eq!(memory.total_bytes, 25_753_026_560);
        assert_eq!(memory.used_bytes, Some(1_073_741_824));
        assert_eq!(memory.free_bytes, Some(25_753_026_560 - 1_073_741_824));
        assert_eq!(memory.utilization_percent, Some(7.0));

        write(
            &root.path().join("card1/device"),
            "mem_info_vram_used",
            "2147483648\n",
        );
        assert_eq!(cards[1].memory(1).used_bytes, Some(2_147_483_648));

        // No `used` counter: the total is known, the rest is honestly unknown.
        let memory = cards[0].memory(0);
        assert_eq!((memory.used_bytes, memory.free_bytes), (None, None));
    }

    #[test]
    fn missing_sysfs_means_no_cards() {
        assert!(AmdSysfs::new("/nonexistent/drm").cards().is_empty());
    }
}
