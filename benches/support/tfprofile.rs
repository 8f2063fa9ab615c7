//! Where Terraform's own CPU goes in a plan with refresh, ours against the fair peer: a `perf` profile
//! of the `terraform` process alone (Go keeps frame pointers and its symbols, so call graphs resolve),
//! read as the inclusive share of the functions that do per-instance work. Skipped without `perf`.

use crate::*;

/// The functions whose inclusive CPU is reported, each with what it does for one instance. Shares
/// overlap: a function's time includes that of the functions it calls.
pub const FUNCTIONS: &[(&str, &str)] = &[
    (
        "NodePlannableResourceInstance).managedResourceExecute",
        "an instance's upgrade, refresh and plan, all of it",
    ),
    (
        "configschema.(*Block).ImpliedType",
        "building the resource type from its schema, again at each use",
    ),
    ("math/big.(*Float).Append", "writing numbers as decimal text (state JSON, comparisons)"),
    ("states.(*ResourceInstanceObject).Encode", "encoding an instance's state as JSON"),
    ("cty/msgpack.Marshal", "encoding values as msgpack for the provider"),
    ("cty/msgpack.Unmarshal", "decoding the provider's msgpack answers"),
    ("views.(*OperationHuman).Plan", "rendering the plan"),
    ("runtime.gcDrain", "garbage collection: marking, by the background workers"),
];

/// The kind of the clusters with `wait_for_workers = 1`.
const WAIT_1: &str = "coiled_cluster, wait_for_workers = 1";

/// Sampling frequency of the profile, in Hz.
const FREQ: f64 = 999.0;

/// Profiles one `terraform plan` of `n` applied clusters and one of `n` fair peers, on `cli`.
pub fn tf_profile(ctx: &mut Ctx, cli: &Cli, n: usize) {
    if !Command::new("perf")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!(
            "tfprofile {}: no `perf` on this machine (Debian: linux-perf), skipped",
            cli.version
        );
        return;
    }
    let (_server, provider, triggers) = peer_setup(cli);
    let scratch = tempfile::tempdir().unwrap();
    // `perf record` in front of the CLI, with the workdir's own environment.
    let wrapper = scratch.path().join("terraform");
    let script = format!(
        "#!/bin/sh\nexec perf record -q -F {FREQ} -g -o \"$PERF_DATA\" -- \"{}\" \"$@\"\n",
        cli.path.display()
    );
    cpu::write_script(&wrapper, &script);
    let mut kinds = serde_json::Map::new();
    let mut runs: Vec<(&str, String)> = plan_kinds(cli, &provider, &triggers, n)
        .into_iter()
        .filter(|(k, _)| against_peer(k))
        .collect();
    // The same clusters with an integer where the default is 0.3, a decimal that Terraform holds at its
    // full precision and writes out digit by digit.
    let integer = runs[0]
        .1
        .replace("name      = \"b", "name      = \"w")
        .replace("n_workers = 0\n", "n_workers = 0\n  wait_for_workers = 1\n");
    runs.insert(1, (WAIT_1, integer));
    for (kind, body) in runs {
        let mut w = workdir(cli, &header(&body));
        w.terraform(&["apply", "-auto-approve", "-no-color", "-parallelism=20"]).ok();
        w.terraform(&["plan", "-no-color"]).ok(); // warm: the binaries and state in the page cache
        let data = scratch.path().join("perf.data");
        w.cli = Cli { path: wrapper.clone(), version: cli.version.clone() };
        let run = w.terraform_env(&["plan", "-no-color"], &[("PERF_DATA", data.to_str().unwrap())]);
        let Some((samples, shares)) = read_profile(&data).filter(|_| run.code == 0) else {
            eprintln!(
                "tfprofile {} {kind}: no profile (perf may not be allowed here), skipped:\n{}",
                cli.version,
                run.all()
            );
            return;
        };
        let per_instance_ms = |share: f64| share / 100.0 * samples / FREQ * 1000.0 / n as f64;
        eprintln!(
            "tfprofile {} N={n} {kind}: Terraform's own CPU {:.2} ms per instance",
            cli.version,
            per_instance_ms(100.0)
        );
        let functions: serde_json::Map<String, Value> = shares
            .into_iter()
            .map(|(f, share)| (f.to_string(), json!(per_instance_ms(share))))
            .collect();
        kinds.insert(kind.to_string(), json!({"samples": samples, "total_ms": per_instance_ms(100.0), "functions_ms": functions}));
    }
    ctx.results.insert(
        format!("tfprofile_{}", cli.version),
        json!({"n": n, "freq_hz": FREQ, "kinds": kinds}),
    );
}

/// The `terraform` process's sample count, and the inclusive share (percent) of each of `FUNCTIONS`.
fn read_profile(data: &Path) -> Option<(f64, Vec<(&'static str, f64)>)> {
    let report = |args: &[&str]| -> String {
        let out = Command::new("perf")
            .arg("report")
            .arg("-i")
            .arg(data)
            .args(["--comm", "terraform", "--stdio"])
            .args(args)
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
    };
    // "  4409  terraform": the samples of the process itself (its own threads, no provider's).
    let count = report(&["--sort", "comm", "-g", "none", "-F", "sample,comm"]);
    let samples: f64 = count
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.split_whitespace().next()?.parse().ok())?;
    // "  40.11%  0.02%  [.] github.com/…/terraform.(*NodePlannableResourceInstance).managedResourceExecute"
    let text = report(&["--children", "--sort", "sym", "-g", "none"]);
    let shares = FUNCTIONS
        .iter()
        .map(|(needle, _)| {
            let best = text
                .lines()
                .filter(|l| l.trim_end().ends_with(needle))
                .filter_map(|l| {
                    l.split_whitespace().next()?.trim_end_matches('%').parse::<f64>().ok()
                })
                .fold(0.0, f64::max);
            (*needle, best)
        })
        .collect();
    Some((samples, shares))
}

/// The page's section: per CLI, Terraform's CPU per instance in each function, ours against the peer.
pub fn section(r: &Value) -> String {
    let profiles: Vec<(&str, &Value)> = r
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("tfprofile_")?, v)))
        .collect();
    if profiles.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "\n## Where Terraform's own CPU goes\n\nA `perf` profile (999 Hz, with call graphs) of the \
            `terraform` process alone, provider processes left out, during one `terraform plan` of \
            N applied instances, ours and the fair peer, one after the other: each function's CPU \
            including the functions it calls (so rows overlap), over N. The first row is all of \
            the process's CPU over N, its fixed cost included.\n\n| Terraform | N | function | \
            what it does | coiled_cluster | coiled_cluster, `wait_for_workers = 1` | fair peer \
            |\n|---|---|---|---|---|---|---|\n",
    );
    for (version, p) in profiles {
        let kinds = [&p["kinds"]["coiled_cluster"], &p["kinds"][WAIT_1], &p["kinds"][PEER]];
        let ms = |v: &Value| v.as_f64().map(|m| format!("{m:.2} ms")).unwrap_or_else(|| "–".into());
        let cells = |pick: &dyn Fn(&Value) -> &Value| {
            kinds.iter().map(|k| ms(pick(k))).collect::<Vec<_>>().join(" | ")
        };
        md.push_str(&format!(
            "| {version} | {} | (all) | Terraform's whole plan | {} |\n",
            p["n"],
            cells(&|k| &k["total_ms"])
        ));
        for (f, what) in FUNCTIONS {
            md.push_str(&format!(
                "| {version} | {} | `{f}` | {what} | {} |\n",
                p["n"],
                cells(&|k| &k["functions_ms"][*f])
            ));
        }
    }
    md
}
