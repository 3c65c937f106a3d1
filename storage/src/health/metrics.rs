//! What the health checks export: `curtain_link_health_checks_total{result}` (healthy,
//! failed) and `curtain_link_health_transitions_total{to}` (broken, healthy: status changes
//! whose alert was enqueued, once each).

/// The health checks' counters (registered in the process's registry).
#[derive(Clone)]
pub struct HealthMetrics {
    pub checks: prometheus::IntCounterVec,
    pub transitions: prometheus::IntCounterVec,
}

impl Default for HealthMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthMetrics {
    /// Definitions are constants: a failure here is a programming error every test catches.
    #[must_use]
    pub fn new() -> Self {
        let checks = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "curtain_link_health_checks_total",
                "Link health probes by result (healthy, failed).",
            ),
            &["result"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let transitions = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "curtain_link_health_transitions_total",
                "Link health status changes alerted, by new status (broken, healthy).",
            ),
            &["to"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for result in ["healthy", "failed"] {
            checks.with_label_values(&[result]);
        }
        for to in ["broken", "healthy"] {
            transitions.with_label_values(&[to]);
        }
        Self {
            checks,
            transitions,
        }
    }

    /// # Errors
    /// When the names are registered already.
    pub fn register(&self, registry: &prometheus::Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.checks.clone()))?;
        registry.register(Box::new(self.transitions.clone()))
    }
}
