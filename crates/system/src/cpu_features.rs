//! SIMD features of this CPU, named as llama.cpp's build variants name them.

/// The features detected at run time on this CPU.
pub fn detect() -> Vec<String> {
    detect_for_arch().into_iter().map(str::to_owned).collect()
}

#[cfg(target_arch = "x86_64")]
fn detect_for_arch() -> Vec<&'static str> {
    let mut found = Vec::new();
    macro_rules! check {
        ($($feature:tt => $label:literal),* $(,)?) => {
            $(if std::arch::is_x86_feature_detected!($feature) { found.push($label); })*
        };
    }
    check!(
        "sse4.2" => "SSE4.2",
        "avx" => "AVX",
        "avx2" => "AVX2",
        "fma" => "FMA",
        "f16c" => "F16C",
        "avx512f" => "AVX-512F",
        "avx512bw" => "AVX-512BW",
        "avx512vnni" => "AVX-512VNNI",
        "avx512bf16" => "AVX-512BF16",
    );
    found
}

#[cfg(target_arch = "aarch64")]
fn detect_for_arch() -> Vec<&'static str> {
    let mut found = Vec::new();
    macro_rules! check {
        ($($feature:tt => $label:literal),* $(,)?) => {
            $(if std::arch::is_aarch64_feature_detected!($feature) { found.push($label); })*
        };
    }
    check!(
        "neon" => "NEON",
        "dotprod" => "DOTPROD",
        "i8mm" => "I8MM",
        "sve" => "SVE",
        "fp16" => "FP16",
    );
    found
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detect_for_arch() -> Vec<&'static str> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn agrees_with_proc_cpuinfo_on_avx2() {
        // The kernel's flag list is an independent witness of what the CPU has.
        let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") else {
            return; // not Linux
        };
        let kernel_says = cpuinfo
            .lines()
            .find(|line| line.starts_with("flags"))
            .is_some_and(|flags| flags.split_whitespace().any(|flag| flag == "avx2"));
        assert_eq!(super::detect().iter().any(|f| f == "AVX2"), kernel_says);
    }
}
