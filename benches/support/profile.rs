//! The provider's own time per RPC within a plan with refresh, from its debug timing lines.

use crate::*;

/// Where the time of a plan with refresh goes: the provider's own time per RPC (from its debug timing
/// lines) against the wall time of the whole `terraform plan`.
pub fn profile(ctx: &mut Ctx, cli: &Cli, n: usize) {
    let server = LocalServer::start(&["--provision-delay", "0s", "--stop-delay", "0s"]);
    let config = counted_clusters(&server, n, "p", 0);
    let w = workdir(cli, &config);
    w.terraform(&["apply", "-auto-approve", "-no-color", "-parallelism=20"]).ok();
    // At the default parallelism, calls wait for a core and for each other; one at a time, each
    // handler's time is its own. The third kind runs at the default parallelism with Terraform's Go
    // runtime held to one core (GOMAXPROCS=1), which leaves the other to the provider and coiled-local:
    // what the reads wait for at the default parallelism shows against it.
    // Each RPC's figures are the medians over `runs` plans: one plan's mean moves with a few calls
    // that waited.
    let runs = ctx.runs.min(3);
    let mut result = json!({"n": n, "plans": runs});
    let default: &[&str] = &["plan", "-no-color"];
    let one_core: &[(&str, &str)] = &[("GOMAXPROCS", "1")];
    for (key, args, env) in [
        ("", default, &[][..]),
        ("_p1", &["plan", "-no-color", "-parallelism=1"][..], &[][..]),
        ("_go1", default, one_core),
    ] {
        let mut walls = Vec::new();
        let mut per_plan: BTreeMap<&str, Vec<(usize, f64, f64)>> = BTreeMap::new();
        for run in 0..runs {
            let log = w.path().join(format!("profile{key}-{run}.log"));
            let t = Instant::now();
            let mut vars =
                vec![("TF_LOG_PROVIDER", "debug"), ("TF_LOG_PATH", log.to_str().unwrap())];
            vars.extend_from_slice(env);
            w.terraform_env(args, &vars).ok();
            walls.push(t.elapsed().as_secs_f64());
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            for (label, times) in rpc_times(&text) {
                let mean = if times.is_empty() {
                    0.0
                } else {
                    times.iter().sum::<f64>() / times.len() as f64
                };
                let mid = if times.is_empty() { 0.0 } else { median(times.clone()) };
                per_plan.entry(label).or_default().push((times.len(), mean, mid));
            }
        }
        let mut per_rpc = serde_json::Map::new();
        for (label, plans) in per_plan {
            let calls = plans.iter().map(|p| p.0).max().unwrap_or(0);
            let mean_us = median(plans.iter().map(|p| p.1).collect());
            let median_us = median(plans.iter().map(|p| p.2).collect());
            per_rpc.insert(
                label.to_string(),
                json!({"calls": calls, "mean_us": mean_us, "median_us": median_us}),
            );
        }
        let wall = median(walls);
        eprintln!(
            "profile {} N={n}{key}: plan {wall:.2}s wall; provider time per RPC: {}",
            cli.version,
            Value::Object(per_rpc.clone())
        );
        result[format!("plan_wall_s{key}")] = json!(wall);
        result[format!("provider_rpc{key}")] = Value::Object(per_rpc);
    }
    ctx.results.insert(format!("profile_{}", cli.version), result);
}

/// The provider's own time in each RPC of one plan, from its debug timing lines, by RPC.
fn rpc_times(log: &str) -> Vec<(&'static str, Vec<f64>)> {
    [
        ("UpgradeResourceState", "upgraded state"),
        ("ReadResource (incl. the HTTP read)", "read resource"),
        ("PlanResourceChange", "planned change"),
        ("ValidateResourceConfig", "validated configuration"),
    ]
    .into_iter()
    .map(|(label, message)| {
        let times = log
            .lines()
            .filter(|l| l.contains(&format!(": {message}:")))
            .filter_map(|l| {
                l.split("elapsed_us=")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|v| v.parse::<f64>().ok())
            })
            .collect();
        (label, times)
    })
    .collect()
}
