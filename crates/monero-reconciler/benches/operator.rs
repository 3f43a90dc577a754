//! What the operator costs: building the objects for many custom resources (time and
//! peak memory), and the API requests of a reconcile, above all of one with nothing to
//! do. Prints numbers; asserts nothing about speed.
//!
//! Run: `cargo bench -p monero-reconciler --bench operator`. Each size of the build
//! part runs in a fresh process of this binary (`--child-build N`) so that the sizes do
//! not share a peak resident memory (VmHWM). The request counts come from the
//! in-memory API server of the reconcile tests (tests/common/fakeapi.rs); nothing
//! leaves the process. The operator's idle memory is measured by
//! hack/bench-operator-idle.sh.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/fakeapi.rs"]
mod fakeapi;
use fakeapi::FixedProbe;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fakeapi::{FakeApi, Seen};
use monero_crd::{MoneroMiningNodeSet, MoneroNetwork, MoneroNodeSet};
use monero_reconciler::build::{self, Context, Desired, Images};
use monero_reconciler::controller::caches::Caches;
use monero_reconciler::controller::metrics::Metrics;
use monero_reconciler::controller::{Config, Managed, State, reconcile};
use monero_reconciler::render::{Rendered, to_yaml};
use serde_json::{Value, json};

const SIZES: [usize; 2] = [1_000, 10_000];
/// Timed runs per size (the median is reported): more for the small size, whose
/// runs take only ~20 ms and vary more.
fn runs(n: usize) -> usize {
    if n < 10_000 { 31 } else { 7 }
}
/// No-op reconciles per kind after the first two (checks they stay at zero writes).
const NOOP_REPEATS: usize = 50;

// ---------------------------------------------------------------- helpers

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn status_kib(field: &str) -> u64 {
    monero_testkit::proc_status_kib(std::process::id(), field).unwrap()
}

// ---------------------------------------------------------------- 1. build

/// The custom resources of one run, decoded from JSON as the watcher would.
enum Cr {
    NodeSet(Box<MoneroNodeSet>),
    Network(Box<MoneroNetwork>),
    Mining(Box<MoneroMiningNodeSet>),
}

/// `n` custom resources, a third of each kind, with distinct names spread over 100
/// namespaces: MoneroNodeSet with 3 replicas, MoneroNetwork with 5 (`--regtest`),
/// MoneroMiningNodeSet with 4 and a typed xmrig config.
fn custom_resources(n: usize) -> Vec<Cr> {
    (0..n)
        .map(|i| {
            let metadata = json!({"name": format!("set-{i}"), "namespace": format!("bench-{}", i % 100),
                                  "uid": format!("uid-{i}"), "generation": 1});
            match i % 3 {
                0 => Cr::NodeSet(Box::new(
                    serde_json::from_value(json!({
                        "apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNodeSet",
                        "metadata": metadata,
                        "spec": {"replicas": 3, "monerod": {"args": ["--public", "--out-peers=64"]}}
                    }))
                    .unwrap(),
                )),
                1 => Cr::Network(Box::new(
                    serde_json::from_value(json!({
                        "apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNetwork",
                        "metadata": metadata,
                        "spec": {"replicas": 5, "template": {"spec": {"monerod": {"args": ["--regtest"]}}}}
                    }))
                    .unwrap(),
                )),
                _ => Cr::Mining(Box::new(
                    serde_json::from_value(json!({
                        "apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroMiningNodeSet",
                        "metadata": metadata,
                        "spec": {"replicas": 4, "xmrig": {"config": {
                            "pools": [{"url": "pool.example.org:3333", "user": "4Wallet.$(id)", "tls": true}],
                            "cpu": {"maxThreadsHint": 50},
                            "donateLevel": 0}}}
                    }))
                    .unwrap(),
                )),
            }
        })
        .collect()
}

fn build_all(crs: &[Cr], ctx: &Context) -> Vec<Desired> {
    crs.iter()
        .map(|cr| match cr {
            Cr::NodeSet(o) => build::node_set(o, ctx),
            Cr::Network(o) => build::network(o, ctx),
            Cr::Mining(o) => build::mining_set(o, ctx),
        })
        .collect::<Result<_, _>>()
        .unwrap()
}

fn source(cr: &Cr) -> String {
    let (kind, meta) = match cr {
        Cr::NodeSet(o) => ("MoneroNodeSet", &o.metadata),
        Cr::Network(o) => ("MoneroNetwork", &o.metadata),
        Cr::Mining(o) => ("MoneroMiningNodeSet", &o.metadata),
    };
    format!(
        "{kind}/{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    )
}

/// One size, in this process (a fresh one): prints a `RESULT` line for the parent.
fn child_build(n: usize) {
    let hwm_start = status_kib("VmHWM:");
    let t = Instant::now();
    let crs = custom_resources(n);
    let decode = t.elapsed();
    let hwm_crs = status_kib("VmHWM:");
    let ctx = Context::new(Images::default());

    let mut build_times = Vec::with_capacity(runs(n));
    // One untimed run first: lazily initialised statics and the allocator's first
    // growth are not what a steady operator pays.
    let mut kept = build_all(&crs, &ctx);
    for _ in 0..runs(n) {
        drop(std::mem::take(&mut kept));
        let t = Instant::now();
        kept = build_all(&crs, &ctx);
        build_times.push(t.elapsed());
    }
    let samples: Vec<String> = build_times
        .iter()
        .map(|d| format!("{:.1}", ms(*d)))
        .collect();
    let children: usize = kept.iter().map(|d| d.children.len()).sum();
    let hwm_built = status_kib("VmHWM:");

    let rendered: Vec<Rendered> = crs
        .iter()
        .zip(kept)
        .map(|(cr, d)| Rendered {
            source: source(cr),
            children: d.children,
        })
        .collect();
    let mut yaml_times = Vec::with_capacity(runs(n));
    let mut yaml_bytes = 0;
    for _ in 0..runs(n) {
        let t = Instant::now();
        let yaml = to_yaml(&rendered).unwrap();
        yaml_times.push(t.elapsed());
        yaml_bytes = yaml.len();
    }
    let hwm_yaml = status_kib("VmHWM:");
    println!(
        "RESULT n={n} children={children} decode_ms={:.3} build_ms={:.3} yaml_ms={:.3} yaml_bytes={yaml_bytes} \
         hwm_start_kib={hwm_start} hwm_crs_kib={hwm_crs} hwm_built_kib={hwm_built} hwm_yaml_kib={hwm_yaml} build_samples_ms={}",
        ms(decode),
        ms(median(&mut build_times)),
        ms(median(&mut yaml_times)),
        samples.join(","),
    );
}

fn field(line: &str, name: &str) -> f64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

fn build_part() {
    let exe = std::env::current_exe().unwrap();
    let mut lines = Vec::new();
    for n in SIZES {
        let out = Command::new(&exe)
            .args(["--child-build", &n.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "child for {n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("RESULT "))
            .unwrap()
            .to_string();
        lines.push(line);
    }
    println!(
        "\n## Build: custom resources in, objects out (medians of {} runs at 1,000, {} at 10,000)\n",
        runs(1_000),
        runs(10_000)
    );
    println!(
        "| custom resources | objects built | decode JSON ms (once) | build ms | build µs per CR | to_yaml ms | YAML MiB | VmHWM MiB: start / CRs decoded / objects built / YAML |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for l in &lines {
        let n = field(l, "n");
        println!(
            "| {n:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} / {:.1} / {:.1} |",
            field(l, "children"),
            field(l, "decode_ms"),
            field(l, "build_ms"),
            field(l, "build_ms") * 1e3 / n,
            field(l, "yaml_ms"),
            field(l, "yaml_bytes") / 1048576.0,
            field(l, "hwm_start_kib") / 1024.0,
            field(l, "hwm_crs_kib") / 1024.0,
            field(l, "hwm_built_kib") / 1024.0,
            field(l, "hwm_yaml_kib") / 1024.0,
        );
    }
    let (a, b) = (&lines[0], &lines[1]);
    println!(
        "\nratio 10,000 / 1,000: build {:.2}, to_yaml {:.2}, peak memory growth over start {:.2} (built) and {:.2} (with YAML)",
        field(b, "build_ms") / field(a, "build_ms"),
        field(b, "yaml_ms") / field(a, "yaml_ms"),
        (field(b, "hwm_built_kib") - field(b, "hwm_start_kib"))
            / (field(a, "hwm_built_kib") - field(a, "hwm_start_kib")),
        (field(b, "hwm_yaml_kib") - field(b, "hwm_start_kib"))
            / (field(a, "hwm_yaml_kib") - field(a, "hwm_start_kib")),
    );
    println!(
        "build throughput at 10,000: {:.0} custom resources per second on one core",
        field(b, "n") / field(b, "build_ms") * 1e3
    );
}

// ---------------------------------------------------------------- 2. requests per reconcile

const NS: &str = "bench";
const GROUP_PATH: &str = "/apis/utxo.com.br/v1alpha1/namespaces/bench";

/// Whether a GET reads a collection (a list) rather than one object: the same
/// rule as the fake server's.
fn is_list(s: &Seen) -> bool {
    let segs: Vec<&str> = s.path.trim_matches('/').split('/').collect();
    let rest = match segs.first() {
        Some(&"api") => &segs[2.min(segs.len())..],
        Some(&"apis") => &segs[3.min(segs.len())..],
        _ => return false,
    };
    rest.len() == 1 || rest.len() == 3
}

#[derive(Default, Clone, Copy)]
struct Count {
    get: usize,
    list: usize,
    apply: usize,
    delete: usize,
    other_write: usize,
    event: usize,
}

impl Count {
    fn of(seen: &[Seen]) -> Count {
        let mut c = Count::default();
        for s in seen {
            match s.method.as_str() {
                _ if s.is_event() => c.event += 1,
                "GET" if is_list(s) => c.list += 1,
                "GET" => c.get += 1,
                "PATCH" => c.apply += 1,
                "DELETE" => c.delete += 1,
                _ => c.other_write += 1,
            }
        }
        c
    }
    fn total(&self) -> usize {
        self.get + self.list + self.apply + self.delete + self.other_write + self.event
    }
    fn writes(&self) -> usize {
        self.apply + self.delete + self.other_write
    }
}

struct KindResult {
    kind: &'static str,
    replicas: i32,
    children: usize,
    first: Count,
    noop: Count,
    noop_paths: Vec<String>,
    repeat_writes: usize,
    noop_median: Duration,
}

async fn requests_for<K: Managed>(
    plural: &str,
    workload: &str,
    replicas: i32,
    obj: Value,
) -> KindResult {
    let (client, api) = FakeApi::start();
    let st = State::new(
        client.clone(),
        Config::default(),
        Metrics::new().unwrap(),
        Arc::new(FixedProbe),
        "bench-0".into(),
    );
    // The caches `controller::run` reads from, filled by one LIST per kind
    // (the fake cannot stream watches) before each reconcile measured, as
    // the watches would have by then.
    let (caches, mut feeds) = Caches::new();
    st.use_caches(caches);
    let name = obj["metadata"]["name"].as_str().unwrap().to_string();
    let path = format!("{GROUP_PATH}/{plural}/{name}");
    let mut obj = obj;
    obj["metadata"]["namespace"] = json!(NS);
    obj["metadata"]["uid"] = json!(format!("uid-{name}"));
    obj["metadata"]["generation"] = json!(1);
    api.put(&path, obj);
    // Running, ready pods, so that the status part does all its work.
    for i in 0..replicas {
        let pod = format!("{name}-{i}");
        api.put(
            &format!("/api/v1/namespaces/{NS}/pods/{pod}"),
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": pod, "namespace": NS, "labels": {
                       "app.kubernetes.io/name": workload, "app.kubernetes.io/instance": name,
                       "app.kubernetes.io/managed-by": "monero-operator"}},
                   "status": {"podIP": format!("10.0.0.{}", i + 1),
                              "conditions": [{"type": "Ready", "status": "True"}]}}),
        );
    }
    let latest =
        || -> Arc<K> { Arc::new(serde_json::from_value(api.get(&path).unwrap()).unwrap()) };
    let children = latest()
        .build(&Config::default().build)
        .unwrap()
        .children
        .len();

    feeds.resync(&client).await.unwrap();
    api.clear_seen();
    reconcile(latest(), st.clone()).await.unwrap();
    let first = Count::of(&api.seen());

    feeds.resync(&client).await.unwrap();
    api.clear_seen();
    reconcile(latest(), st.clone()).await.unwrap();
    let seen = api.seen();
    let noop = Count::of(&seen);
    let noop_paths = seen
        .iter()
        .map(|s| {
            let verb = if s.method == "GET" && is_list(s) {
                "LIST"
            } else {
                s.method.as_str()
            };
            let selector = s
                .query
                .split('&')
                .find_map(|kv| kv.strip_prefix("labelSelector="))
                .map(|v| {
                    let v = v
                        .replace("%3D", "=")
                        .replace("%2C", ",")
                        .replace("%2F", "/");
                    format!(" (labelSelector {v})")
                })
                .unwrap_or_default();
            format!("{verb} {}{selector}", s.path)
        })
        .collect();

    api.clear_seen();
    let mut times = Vec::with_capacity(NOOP_REPEATS);
    for _ in 0..NOOP_REPEATS {
        let obj = latest();
        let t = Instant::now();
        reconcile(obj, st.clone()).await.unwrap();
        times.push(t.elapsed());
    }
    let repeated = Count::of(&api.seen());
    let repeat_writes = repeated.writes() + repeated.event;
    KindResult {
        kind: K::KIND,
        replicas,
        children,
        first,
        noop,
        noop_paths,
        repeat_writes,
        noop_median: median(&mut times),
    }
}

fn requests_part() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let results = rt.block_on(async {
        vec![
            requests_for::<MoneroNodeSet>(
                "moneronodesets",
                build::MONEROD_WORKLOAD,
                3,
                json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNodeSet",
                       "metadata": {"name": "nodes"},
                       "spec": {"replicas": 3, "monerod": {"args": ["--public"]}}}),
            )
            .await,
            requests_for::<MoneroNetwork>(
                "moneronetworks",
                build::MONEROD_WORKLOAD,
                3,
                json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNetwork",
                       "metadata": {"name": "regtest"},
                       "spec": {"replicas": 3, "template": {"spec": {"monerod": {"args": ["--regtest"]}}}}}),
            )
            .await,
            // The sample network's size: one Service per node, so one GET per node.
            requests_for::<MoneroNetwork>(
                "moneronetworks",
                build::MONEROD_WORKLOAD,
                20,
                json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroNetwork",
                       "metadata": {"name": "regtest20"},
                       "spec": {"replicas": 20, "template": {"spec": {"monerod": {"args": ["--regtest"]}}}}}),
            )
            .await,
            requests_for::<MoneroMiningNodeSet>(
                "monerominingnodesets",
                build::XMRIG_WORKLOAD,
                2,
                json!({"apiVersion": "utxo.com.br/v1alpha1", "kind": "MoneroMiningNodeSet",
                       "metadata": {"name": "miners"},
                       "spec": {"replicas": 2, "xmrig": {"config": {
                           "pools": [{"url": "pool.example.org:3333", "user": "4Wallet.$(id)", "tls": true}]}}}}),
            )
            .await,
        ]
    });
    println!("\n## API requests per reconcile (in-memory API server, ready pods present)\n");
    println!(
        "| kind | replicas | objects built | first reconcile: GET / LIST / apply / Event | no-op reconcile: GET / LIST / writes / Event | no-op total | writes+Events in {NOOP_REPEATS} more no-ops | no-op median ms (in-process fake) |"
    );
    println!("| --- | ---: | ---: | --- | --- | ---: | ---: | ---: |");
    for r in &results {
        println!(
            "| {} | {} | {} | {} / {} / {} / {} | {} / {} / {} / {} | {} | {} | {:.2} |",
            r.kind,
            r.replicas,
            r.children,
            r.first.get,
            r.first.list,
            r.first.apply + r.first.delete + r.first.other_write,
            r.first.event,
            r.noop.get,
            r.noop.list,
            r.noop.writes(),
            r.noop.event,
            r.noop.total(),
            r.repeat_writes,
            ms(r.noop_median),
        );
    }
    for r in results.iter().filter(|r| r.replicas < 20) {
        println!(
            "\n{} ({} replicas) no-op reconcile, in order:",
            r.kind, r.replicas
        );
        for p in &r.noop_paths {
            println!("  {p}");
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child-build") {
        child_build(args[i + 1].parse().unwrap());
        return;
    }
    let own = status_kib("VmRSS:");
    println!(
        "monero-reconciler bench (this process: {:.1} MiB resident at start)",
        mib(own)
    );
    build_part();
    requests_part();
}
