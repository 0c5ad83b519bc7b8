//! What HIS counts for operators, in Prometheus' text format at `/metrics`:
//! sessions, requests by name and outcome with their latency, and the
//! switch's operations by outcome. Labels only take values HIS knows (the
//! platform's request names, its error codes, the catalog's operations), so
//! a client cannot grow the series by sending made-up names.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::platform::{Adapter, Controls, EventSink, OpOutcome, Operation, Reply};

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Latency {
    /// Observations at or under each bound of [`BUCKETS`].
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Latency {
    fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        for (b, bound) in self.buckets.iter_mut().zip(BUCKETS) {
            if s <= bound {
                *b += 1;
            }
        }
        self.count += 1;
        self.sum += s;
    }
}

/// One request name's answers.
#[derive(Debug, Default)]
struct Answers {
    /// By outcome (`ok` or the error code).
    outcomes: BTreeMap<String, u64>,
    latency: Latency,
}

#[derive(Debug, Default)]
struct Counts {
    /// By request name. Looked up by `&str`: a key is made only the first
    /// time a name or outcome is seen, not at every response.
    requests: BTreeMap<String, Answers>,
    /// By operation and outcome (`ok`, `error`, `abandoned`).
    operations: BTreeMap<(&'static str, &'static str), u64>,
    /// The session store's commits: how long each took, and how many failed.
    store: Option<(Latency, u64)>,
}

/// HIS's counters. Shared by the server, which sees requests and their
/// responses, and the adapter wrapper, which sees the switch's answers.
#[derive(Debug, Default)]
pub struct Metrics {
    counts: Mutex<Counts>,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request answered after `took`; `outcome` is `ok` or its error code.
    pub fn request(&self, name: &str, outcome: &str, took: Duration) {
        let mut c = self.counts();
        if !c.requests.contains_key(name) {
            c.requests.insert(name.to_string(), Answers::default());
        }
        let Some(a) = c.requests.get_mut(name) else {
            return;
        };
        match a.outcomes.get_mut(outcome) {
            Some(n) => *n += 1,
            None => {
                a.outcomes.insert(outcome.to_string(), 1);
            }
        }
        a.latency.observe(took);
    }

    /// A commit of the session store, which took `took`.
    pub fn store_commit(&self, took: Duration, ok: bool) {
        let mut c = self.counts();
        let (latency, errors) = c.store.get_or_insert_with(Default::default);
        latency.observe(took);
        if !ok {
            *errors += 1;
        }
    }

    fn operation(&self, op: &'static str, outcome: &'static str) {
        *self.counts().operations.entry((op, outcome)).or_default() += 1;
    }

    /// The text `/metrics` serves, with the gauges given.
    pub fn render(&self, sessions: usize, connections: usize) -> String {
        let c = self.counts();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP hisflow_sessions Sessions HIS holds, attached or not."
        );
        let _ = writeln!(out, "# TYPE hisflow_sessions gauge");
        let _ = writeln!(out, "hisflow_sessions {sessions}");
        let _ = writeln!(out, "# HELP hisflow_connections Open MediaBar connections.");
        let _ = writeln!(out, "# TYPE hisflow_connections gauge");
        let _ = writeln!(out, "hisflow_connections {connections}");
        let _ = writeln!(
            out,
            "# HELP hisflow_requests_total Requests answered, by request and outcome (ok, or the error code)."
        );
        let _ = writeln!(out, "# TYPE hisflow_requests_total counter");
        for (name, a) in &c.requests {
            for (outcome, n) in &a.outcomes {
                let _ = writeln!(
                    out,
                    "hisflow_requests_total{{request=\"{}\",outcome=\"{}\"}} {n}",
                    escape(name),
                    escape(outcome)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP hisflow_request_duration_seconds Time from a request's frame to its response."
        );
        let _ = writeln!(out, "# TYPE hisflow_request_duration_seconds histogram");
        for (name, a) in &c.requests {
            let labels = format!("request=\"{}\",", escape(name));
            histogram(
                &mut out,
                "hisflow_request_duration_seconds",
                &labels,
                &a.latency,
            );
        }
        let _ = writeln!(
            out,
            "# HELP hisflow_switch_operations_total Switch operations, by operation and outcome (ok, error, or abandoned when its state's timeout passed)."
        );
        let _ = writeln!(out, "# TYPE hisflow_switch_operations_total counter");
        for ((op, outcome), n) in &c.operations {
            let _ = writeln!(
                out,
                "hisflow_switch_operations_total{{operation=\"{op}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        if let Some((latency, errors)) = &c.store {
            let _ = writeln!(
                out,
                "# HELP hisflow_store_commit_seconds Time of each commit of the session store (one transaction for what every session queued)."
            );
            let _ = writeln!(out, "# TYPE hisflow_store_commit_seconds histogram");
            histogram(&mut out, "hisflow_store_commit_seconds", "", latency);
            let _ = writeln!(
                out,
                "# HELP hisflow_store_errors_total Commits of the session store that failed."
            );
            let _ = writeln!(out, "# TYPE hisflow_store_errors_total counter");
            let _ = writeln!(out, "hisflow_store_errors_total {errors}");
        }
        out
    }
}

/// The series of one histogram; `labels` is empty or ends with a comma.
fn histogram(out: &mut String, name: &str, labels: &str, l: &Latency) {
    for (bound, n) in BUCKETS.iter().zip(l.buckets) {
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {}", l.count);
    let bare = match labels.trim_end_matches(',') {
        "" => String::new(),
        l => format!("{{{l}}}"),
    };
    let _ = writeln!(out, "{name}_sum{bare} {}", l.sum);
    let _ = writeln!(out, "{name}_count{bare} {}", l.count);
}

/// A label value as the text format writes it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// An adapter whose answers are counted.
pub struct Metered {
    inner: Arc<dyn Adapter>,
    metrics: Arc<Metrics>,
}

impl Metered {
    pub fn new(inner: Arc<dyn Adapter>, metrics: Arc<Metrics>) -> Metered {
        Metered { inner, metrics }
    }
}

impl Adapter for Metered {
    fn kind(&self) -> &str {
        self.inner.kind()
    }

    fn call(&self, agent: &str, op: &Operation) -> Reply {
        let name = op.name();
        match self.inner.call(agent, op) {
            Reply::Ready(o) => {
                self.metrics.operation(name, outcome(&o));
                Reply::Ready(o)
            }
            Reply::Pending(fut) => Reply::Pending(Box::pin(Counted {
                fut,
                op: name,
                metrics: Some(self.metrics.clone()),
            })),
        }
    }

    fn subscribe(&self, events: EventSink) {
        self.inner.subscribe(events)
    }

    fn controls(&self) -> Option<&dyn Controls> {
        self.inner.controls()
    }

    fn reachable(&self) -> Option<bool> {
        self.inner.reachable()
    }
}

fn outcome(o: &OpOutcome) -> &'static str {
    if o.is_ok() { "ok" } else { "error" }
}

/// A pending answer that counts itself when it comes, or as abandoned when
/// the engine drops it first (its state's timeout).
struct Counted {
    fut: Pin<Box<dyn Future<Output = OpOutcome> + Send>>,
    op: &'static str,
    metrics: Option<Arc<Metrics>>,
}

impl Future for Counted {
    type Output = OpOutcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<OpOutcome> {
        let polled = self.fut.as_mut().poll(cx);
        if let Poll::Ready(o) = &polled
            && let Some(m) = self.metrics.take()
        {
            m.operation(self.op, outcome(o));
        }
        polled
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(m) = self.metrics.take() {
            m.operation(self.op, "abandoned");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_has_every_series_with_its_buckets() {
        let m = Metrics::default();
        m.request("session.request.login", "ok", Duration::from_millis(30));
        m.request("session.request.login", "ok", Duration::from_millis(3));
        m.request(
            "session.request.logout",
            "NeedInfo",
            Duration::from_millis(700),
        );
        m.operation("agent.login", "ok");
        let text = m.render(2, 1);
        assert!(text.contains("hisflow_sessions 2\n"));
        assert!(text.contains(
            "hisflow_requests_total{request=\"session.request.login\",outcome=\"ok\"} 2\n"
        ));
        assert!(text.contains(
            "hisflow_requests_total{request=\"session.request.logout\",outcome=\"NeedInfo\"} 1\n"
        ));
        // 3 ms under every bound, 30 ms from 0.05 on.
        assert!(text.contains("hisflow_request_duration_seconds_bucket{request=\"session.request.login\",le=\"0.005\"} 1\n"));
        assert!(text.contains("hisflow_request_duration_seconds_bucket{request=\"session.request.login\",le=\"0.05\"} 2\n"));
        assert!(text.contains("hisflow_request_duration_seconds_bucket{request=\"session.request.logout\",le=\"0.5\"} 0\n"));
        assert!(text.contains("hisflow_request_duration_seconds_bucket{request=\"session.request.logout\",le=\"1\"} 1\n"));
        assert!(text.contains(
            "hisflow_request_duration_seconds_count{request=\"session.request.login\"} 2\n"
        ));
        assert!(text.contains(
            "hisflow_switch_operations_total{operation=\"agent.login\",outcome=\"ok\"} 1\n"
        ));
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
