//! Counting, histograms, and the report.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::{Options, Protocol};

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    fn of(histogram: &Histogram<u64>) -> Self {
        let millis = |micros: u64| micros as f64 / 1000.0;
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            count: histogram.len(),
            p50: millis(histogram.value_at_quantile(0.50)),
            p95: millis(histogram.value_at_quantile(0.95)),
            p99: millis(histogram.value_at_quantile(0.99)),
            max: millis(histogram.max()),
        }
    }

    fn json(&self) -> Value {
        json!({"count": self.count, "p50": self.p50, "p95": self.p95, "p99": self.p99, "max": self.max})
    }
}

/// What one run measured.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub protocol: &'static str,
    pub rooms: usize,
    pub clients: usize,
    pub duration_s: f64,
    pub ack: Latency,
    pub arrival: Latency,
    pub edits_sent: u64,
    pub edits_acked: u64,
    pub deliveries: u64,
    pub deliveries_per_sec: f64,
    pub edits_per_sec: f64,
    pub errors: u64,
    pub disconnects: u64,
    pub lost_edits: u64,
    /// Plain: keystrokes the final text holds more than once.
    pub doubled_edits: u64,
    pub converged: bool,
    pub generator_cpu_percent: f64,
}

/// What the final check of the rooms found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Every client's text equals its room's.
    pub converged: bool,
    /// Edits the rooms do not hold (or never acknowledged).
    pub lost_edits: u64,
    /// Plain: keystrokes a room holds more than once.
    pub doubled_edits: u64,
}

impl Report {
    /// The report as one JSON object.
    #[must_use]
    pub fn json(&self) -> Value {
        json!({
            "protocol": self.protocol,
            "rooms": self.rooms,
            "clients": self.clients,
            "duration_s": self.duration_s,
            "ack_ms": self.ack.json(),
            "arrival_ms": self.arrival.json(),
            "edits_sent": self.edits_sent,
            "edits_acked": self.edits_acked,
            "deliveries": self.deliveries,
            "deliveries_per_sec": self.deliveries_per_sec,
            "edits_per_sec": self.edits_per_sec,
            "errors": self.errors,
            "disconnects": self.disconnects,
            "lost_edits": self.lost_edits,
            "doubled_edits": self.doubled_edits,
            "converged": self.converged,
            "generator_cpu_percent": self.generator_cpu_percent,
        })
    }

    /// A table for people.
    #[must_use]
    pub fn table(&self, title: &str) -> String {
        let line = |name: &str, latency: &Latency| {
            format!(
                "  {name:<18} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10}\n",
                latency.p50, latency.p95, latency.p99, latency.max, latency.count
            )
        };
        let mut table = format!(
            "{title}: {} rooms × {} clients ({}), {:.1} s measured\n",
            self.rooms,
            self.clients / self.rooms.max(1),
            self.protocol,
            self.duration_s
        );
        table.push_str("  latency (ms)             p50       p95       p99       max    samples\n");
        table.push_str(&line("edit → ack", &self.ack));
        table.push_str(&line("edit → arrival", &self.arrival));
        table.push_str(&format!(
            "  edits sent {} · acked {} · {:.0} edits/s · {:.0} deliveries/s\n",
            self.edits_sent, self.edits_acked, self.edits_per_sec, self.deliveries_per_sec
        ));
        table.push_str(&format!(
            "  errors {} · disconnects {} · lost edits {} · doubled {} · converged {} · generator CPU {:.0}%\n",
            self.errors,
            self.disconnects,
            self.lost_edits,
            self.doubled_edits,
            if self.converged { "yes" } else { "NO" },
            self.generator_cpu_percent
        ));
        table
    }
}

/// Shared counters.
pub struct Stats {
    ack: Mutex<Histogram<u64>>,
    arrival: Mutex<Histogram<u64>>,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub deliveries: AtomicU64,
    pub errors: AtomicU64,
    pub disconnects: AtomicU64,
}

fn histogram() -> Histogram<u64> {
    // Microseconds up to an hour, three significant digits: constant, valid bounds.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Stats {
    pub fn new() -> Self {
        Self {
            ack: Mutex::new(histogram()),
            arrival: Mutex::new(histogram()),
            sent: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
        }
    }

    pub fn record_ack(&self, latency: Duration) {
        self.acked.fetch_add(1, Ordering::Relaxed);
        let _ = lock(&self.ack).record(micros(latency));
    }

    pub fn record_arrivals(&self, latencies: &[Duration]) {
        self.deliveries
            .fetch_add(latencies.len() as u64, Ordering::Relaxed);
        let mut arrival = lock(&self.arrival);
        for latency in latencies {
            let _ = arrival.record(micros(*latency));
        }
    }

    pub fn progress_line(&self, elapsed: Duration) -> String {
        let ack = Latency::of(&lock(&self.ack));
        let arrival = Latency::of(&lock(&self.arrival));
        format!(
            "[{:>5.1}s] sent {} acked {} delivered {} · ack p99 {:.1} ms · arrival p99 {:.1} ms · errors {}",
            elapsed.as_secs_f64(),
            self.sent.load(Ordering::Relaxed),
            self.acked.load(Ordering::Relaxed),
            self.deliveries.load(Ordering::Relaxed),
            ack.p99,
            arrival.p99,
            self.errors.load(Ordering::Relaxed)
        )
    }

    pub fn report(
        &self,
        options: &Options,
        measured: Duration,
        cpu: f64,
        wall: Duration,
        tally: Tally,
    ) -> Report {
        let Tally {
            converged,
            lost_edits,
            doubled_edits,
        } = tally;
        let seconds = measured.as_secs_f64().max(0.001);
        let ack = Latency::of(&lock(&self.ack));
        let arrival = Latency::of(&lock(&self.arrival));
        Report {
            protocol: match options.protocol {
                Protocol::Plain => "plain",
                Protocol::V1 => "v1",
            },
            rooms: options.rooms,
            clients: options.rooms * options.clients_per_room,
            duration_s: seconds,
            ack,
            arrival,
            edits_sent: self.sent.load(Ordering::Relaxed),
            edits_acked: self.acked.load(Ordering::Relaxed),
            deliveries: arrival.count,
            deliveries_per_sec: arrival.count as f64 / seconds,
            edits_per_sec: ack.count as f64 / seconds,
            errors: self.errors.load(Ordering::Relaxed),
            disconnects: self.disconnects.load(Ordering::Relaxed),
            lost_edits,
            doubled_edits,
            converged,
            generator_cpu_percent: 100.0 * cpu / wall.as_secs_f64().max(0.001),
        }
    }
}

/// This process's CPU time so far (user + system), from `/proc/self/stat`; 0 elsewhere.
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Linux reports them in USER_HZ, which is 100 on every supported architecture.
    (ticks(11) + ticks(12)) / 100.0
}
