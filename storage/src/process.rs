//! The process collector of both binaries: prometheus' own (`process_*`: memory, threads,
//! open files, start time), except `process_cpu_seconds_total`, counted here in fractions of a
//! second. The crate's collector (0.14) divides the kernel's clock ticks by their rate in
//! integers, so it counts whole seconds: a process using less than a second of CPU in a rate
//! window showed 0 cores on the dashboards' CPU panels, and more showed in steps of one.

use prometheus::core::{Collector, Desc};
use prometheus::process_collector::ProcessCollector;
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Opts};

const CPU: &str = "process_cpu_seconds_total";

pub struct ProcessMetrics {
    inner: ProcessCollector,
    cpu: Counter,
    ticks_per_second: f64,
}

impl ProcessMetrics {
    /// The collector of this process.
    #[must_use]
    pub fn for_self() -> Self {
        let cpu = Counter::with_opts(Opts::new(
            CPU,
            "Total user and system CPU time spent in seconds.",
        ))
        .unwrap_or_else(|e| panic!("metric {CPU}: {e}"));
        #[expect(
            clippy::cast_precision_loss,
            reason = "clock ticks per second: 100 on Linux"
        )]
        let ticks_per_second = procfs::ticks_per_second().max(1) as f64;
        Self {
            inner: ProcessCollector::for_self(),
            cpu,
            ticks_per_second,
        }
    }
}

impl Collector for ProcessMetrics {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs: Vec<&Desc> = self
            .inner
            .desc()
            .into_iter()
            .filter(|d| d.fq_name != CPU)
            .collect();
        descs.extend(self.cpu.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        if let Ok(stat) = procfs::process::Process::myself().and_then(|p| p.stat()) {
            #[expect(
                clippy::cast_precision_loss,
                reason = "clock ticks: exact below 2^53 (285,000 years at 1,000 ticks a second)"
            )]
            let total = (stat.utime + stat.stime) as f64 / self.ticks_per_second;
            // Two scrapes at once may both read: only a rise is added, so it never goes down.
            let rise = total - self.cpu.get();
            if rise > 0.0 {
                self.cpu.inc_by(rise);
            }
        }
        let mut families: Vec<MetricFamily> = self
            .inner
            .collect()
            .into_iter()
            .filter(|f| f.name() != CPU)
            .collect();
        families.extend(self.cpu.collect());
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn cpu_seconds(registry: &prometheus::Registry) -> f64 {
        let families = registry.gather();
        let cpu: Vec<_> = families.iter().filter(|f| f.name() == CPU).collect();
        assert_eq!(cpu.len(), 1, "one {CPU} family");
        cpu[0].get_metric()[0].get_counter().get_value()
    }

    #[test]
    fn cpu_seconds_count_fractions_of_a_second_beside_the_other_process_metrics() {
        let registry = prometheus::Registry::new();
        registry
            .register(Box::new(ProcessMetrics::for_self()))
            .unwrap();
        let names: Vec<String> = registry
            .gather()
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        assert!(
            names.iter().any(|n| n == "process_resident_memory_bytes"),
            "{names:?}"
        );
        assert!(
            names.iter().any(|n| n == "process_start_time_seconds"),
            "{names:?}"
        );
        // Burn CPU until the counter shows a fraction: whole seconds never do.
        let start = cpu_seconds(&registry);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut x = 0_u64;
        let mut seen = start;
        while Instant::now() < deadline && (seen.fract() == 0.0 || seen - start < 0.05) {
            for i in 0..1_000_000_u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
            seen = cpu_seconds(&registry);
        }
        assert!(
            seen.fract() != 0.0 && seen - start >= 0.05,
            "{start} -> {seen}"
        );
        assert!(seen - start < 5.5, "{start} -> {seen}");
    }
}
