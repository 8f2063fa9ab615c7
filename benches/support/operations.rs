//! What users feel beyond the provider's own CPU: the API requests each operation makes, plans and
//! applies over a wide-area round trip, and how a plan's cost grows with the number of clusters.

use crate::*;

/// Terraform's default parallelism: how many resources it works on at once.
const PARALLELISM: f64 = 10.0;

/// The server's request counters, reset.
fn reset(server: &LocalServer) {
    server.delete("/_local/stats");
}

/// API requests since the last reset.
fn requests(server: &LocalServer) -> f64 {
    server.get("/_local/stats").1["requests"].as_f64().unwrap_or(0.0)
}

/// `terraform args`, which must succeed; the API requests it made and its wall time.
fn measured(server: &LocalServer, w: &Workdir, args: &[&str]) -> (f64, f64) {
    reset(server);
    let t = Instant::now();
    w.terraform(args).ok();
    (requests(server), t.elapsed().as_secs_f64())
}

/// A `.tfquery.hcl` listing every cluster of the workspace whose name starts with `prefix`.
fn query_file(w: &Workdir, prefix: &str) {
    w.write(
        "all.tfquery.hcl",
        &format!(
            "list \"coiled_cluster\" \"all\" {{\n  provider = coiled\n  config {{\n    name_prefix = \"{prefix}\"\n  }}\n}}\n"
        ),
    );
}

/// The requests of each operation on N clusters: the apply that creates them (also timed, as before),
/// a plan with refresh, a scale of each by one worker, an import of each (`import` blocks from
/// Terraform 1.5, `terraform import` of ten one by one before) and a query listing them (Terraform
/// 1.14 and later).
pub fn requests_per_operation(ctx: &mut Ctx, cli: &Cli, n: usize) {
    let server = LocalServer::start(&["--provision-delay", "0s", "--stop-delay", "0s"]);
    let w = workdir(cli, &counted_clusters(&server, n, "a", 1));
    let (apply, wall) = measured(&server, &w, &["apply", "-auto-approve", "-no-color"]);
    let stats = server.get("/_local/stats").1;
    let per = |requests: f64, of: usize| requests / of as f64;
    eprintln!(
        "apply {} N={n}: {wall:.2}s, {:.2} requests per cluster, {:.0} requests/s",
        cli.version,
        per(apply, n),
        apply / wall
    );
    ctx.results.insert(
        format!("apply_{}", cli.version),
        json!({"n": n, "wall_s": wall, "requests_per_cluster": per(apply, n), "requests_per_s": apply / wall, "by_route": stats["by_route"]}),
    );
    // Each operation's requests per cluster, and by route.
    let mut ops = serde_json::Map::new();
    let mut record = |op: &str, requests: f64, of: usize| {
        let routes = server.get("/_local/stats").1["by_route"].clone();
        ops.insert(
            op.into(),
            json!({"per_cluster": per(requests, of), "of": of, "by_route": routes}),
        );
    };
    record("apply (create)", apply, n);
    let (plan, _) = measured(&server, &w, &["plan", "-no-color"]);
    record("plan with refresh", plan, n);
    w.write("main.tf", &counted_clusters(&server, n, "a", 2));
    let (scale, _) = measured(&server, &w, &["apply", "-auto-approve", "-no-color"]);
    record("apply (scale up by one worker)", scale, n);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(w.path().join("terraform.tfstate")).unwrap())
            .unwrap();
    let ids: Vec<String> = (0..n)
        .map(|i| {
            state["resources"][0]["instances"][i]["attributes"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    std::fs::remove_file(w.path().join("terraform.tfstate")).unwrap();
    if cli.at_least(1, 5) {
        let blocks: String = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                format!("import {{\n  to = coiled_cluster.c[{i}]\n  id = \"{id}\"\n}}\n")
            })
            .collect();
        w.write("imports.tf", &blocks);
        let (import, _) = measured(&server, &w, &["apply", "-auto-approve", "-no-color"]);
        record("import (`import` blocks, with their apply)", import, n);
        std::fs::remove_file(w.path().join("imports.tf")).unwrap();
    } else {
        let some = ids.len().min(10);
        reset(&server);
        for (i, id) in ids.iter().take(some).enumerate() {
            w.terraform(&["import", "-no-color", &format!("coiled_cluster.c[{i}]"), id]).ok();
        }
        record("import (`terraform import`, one by one)", requests(&server), some);
    }
    if cli.at_least(1, 14) {
        query_file(&w, "a-");
        let (query, _) = measured(&server, &w, &["query", "-no-color"]);
        record("query (`terraform query` listing them)", query, n);
    }
    for (op, v) in &ops {
        eprintln!("requests {} N={n}: {op}: {}", cli.version, v);
    }
    ctx.results.insert(format!("requests_{}", cli.version), json!({"n": n, "per_cluster": ops}));
}

/// Plan with refresh and apply of N clusters with every answer `latency` away (`coiled-local
/// --latency`), against the ideal for Terraform's parallelism: the same operation without latency,
/// plus N / parallelism rounds of the requests each cluster makes one after another.
pub fn over_latency(ctx: &mut Ctx, cli: &Cli, n: usize, latencies_ms: &[u64]) {
    let mut rows = Vec::new();
    for &ms in latencies_ms {
        let latency = format!("{ms}ms");
        let server = LocalServer::start(&[
            "--provision-delay",
            "0s",
            "--stop-delay",
            "0s",
            "--latency",
            &latency,
        ]);
        let w = workdir(cli, &counted_clusters(&server, n, "l", 0));
        let (apply, apply_s) = measured(&server, &w, &["apply", "-auto-approve", "-no-color"]);
        let mut plans = Vec::new();
        let mut plan_requests = 0.0;
        for _ in 0..ctx.runs.min(3) {
            let (r, s) = measured(&server, &w, &["plan", "-no-color"]);
            plans.push(s);
            plan_requests = r;
        }
        let plan_s = median(plans);
        eprintln!(
            "latency {} N={n} {ms} ms: apply {apply_s:.2}s ({:.2} requests per cluster), plan {plan_s:.2}s ({:.2} per cluster)",
            cli.version,
            apply / n as f64,
            plan_requests / n as f64
        );
        rows.push(json!({"latency_ms": ms, "apply_s": apply_s, "apply_requests_per_cluster": apply / n as f64, "plan_s": plan_s, "plan_requests_per_cluster": plan_requests / n as f64}));
    }
    ctx.results.insert(
        format!("latency_{}", cli.version),
        json!({"n": n, "parallelism": PARALLELISM, "rows": rows}),
    );
}

/// The seconds N resources take at Terraform's parallelism beyond `base_s`, when each makes `serial`
/// requests one after another, each a round trip of `latency_ms`.
pub fn ideal_s(base_s: f64, n: f64, parallelism: f64, serial: f64, latency_ms: f64) -> f64 {
    base_s + (n / parallelism).ceil() * serial * latency_ms / 1000.0
}

/// Plan with refresh at growing N: the provider's CPU and peak memory per instance (beyond those of a
/// plan of one), and the requests of a query listing them all. Above `seed_above` clusters the server
/// is seeded directly: the clusters are created over its API with the body the provider sent for the
/// first, and the state written from the first one's, then refreshed once.
pub fn linearity(ctx: &mut Ctx, cli: &Cli, sizes: &[usize], seed_above: usize) {
    let mut rows = Vec::new();
    for &n in sizes {
        let server = LocalServer::start(&["--provision-delay", "0s", "--stop-delay", "0s"]);
        let logs = tempfile::tempdir().unwrap();
        let log = logs.path().join("cpu");
        let config = counted_clusters(&server, n, "s", 0);
        let w = workdir_logging_cpu(cli, &config, Some((&log, COILED_IN_MIRROR)));
        if n > seed_above {
            seed(&server, &w, n);
        } else {
            w.terraform(&["apply", "-auto-approve", "-no-color", "-parallelism=20"]).ok();
        }
        let runs = if n >= 1000 { ctx.runs.min(3) } else { ctx.runs };
        let (mut cpu_s, mut walls, mut requests_per) = (Vec::new(), Vec::new(), 0.0);
        for _ in 0..runs {
            let _ = std::fs::remove_file(&log);
            let (r, wall) = measured(&server, &w, &["plan", "-no-color"]);
            walls.push(wall);
            requests_per = r / n as f64;
            cpu_s.push(cpu::logged_cpu_s(&log));
        }
        let (_, rss) = peak_rss_kib("terraform-provider-coiled", || {
            w.terraform(&["plan", "-no-color"]).ok();
        });
        let query = cli.at_least(1, 14).then(|| {
            query_file(&w, "s-");
            let (r, _) = measured(&server, &w, &["query", "-no-color"]);
            std::fs::remove_file(w.path().join("all.tfquery.hcl")).unwrap();
            r
        });
        let (cpu, wall) = (median(cpu_s), median(walls));
        eprintln!(
            "linearity {} N={n}: plan {wall:.2}s, provider CPU {cpu:.3}s, peak RSS {rss} KiB, {requests_per:.2} requests per cluster, query {query:?} requests",
            cli.version
        );
        rows.push(json!({"n": n, "wall_s": wall, "provider_cpu_s": cpu, "peak_rss_kib": rss, "plan_requests_per_cluster": requests_per, "query_requests": query}));
    }
    ctx.results.insert(
        format!("linearity_{}", cli.version),
        json!({"rows": rows, "own_provider_only": true}),
    );
}

/// Makes `w`'s N clusters exist without Terraform creating them one by one: the first is applied,
/// the others created over the API with the body it was created with, and the state holds the first
/// one's instance for each (its id and name changed), refreshed once so that it records each cluster
/// as read.
fn seed(server: &LocalServer, w: &Workdir, n: usize) {
    let config = std::fs::read_to_string(w.path().join("main.tf")).unwrap();
    w.write("main.tf", &config.replace(&format!("count     = {n}"), "count     = 1"));
    server.delete("/_local/requests");
    w.terraform(&["apply", "-auto-approve", "-no-color"]).ok();
    let log = server.get("/_local/requests").1;
    let body = log
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["method"] == "POST" && r["path"] == "/api/v2/clusters/account/alice/")
        .map(|r| r["body"].clone())
        .expect("the first cluster's create");
    let path = w.path().join("terraform.tfstate");
    let mut state: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let first = state["resources"][0]["instances"][0].clone();
    let mut instances = vec![first.clone()];
    for i in 1..n {
        let mut b = body.clone();
        b["name"] = json!(format!("s-{i}"));
        let (code, created) = server.post("/api/v2/clusters/account/alice/", &b);
        assert_eq!(code, 201, "seeding cluster {i}: {created}");
        let mut instance = first.clone();
        instance["index_key"] = json!(i);
        instance["attributes"]["id"] = json!(created["id"].to_string());
        instance["attributes"]["name"] = json!(format!("s-{i}"));
        instances.push(instance);
    }
    state["resources"][0]["instances"] = Value::Array(instances);
    state["serial"] = json!(state["serial"].as_u64().unwrap_or(0) + 1);
    std::fs::write(&path, serde_json::to_string(&state).unwrap()).unwrap();
    w.write("main.tf", &config);
    w.terraform(&["apply", "-refresh-only", "-auto-approve", "-no-color", "-parallelism=20"]).ok();
    let plan = w.terraform(&["plan", "-detailed-exitcode", "-no-color"]);
    assert_eq!(plan.code, 0, "the seeded state plans a change:\n{}", plan.all());
}

/// The requests of each operation on a table, by route.
fn requests_table(r: &Value) -> String {
    let mut md = String::from(
        "\n## Requests per operation\n\nAPI requests `coiled-local` received during each operation \
            on N clusters of one workspace (one worker each; the scale adds one), per cluster, \
            with the routes they went to. An operation is one `terraform` command: its plan and \
            its apply each run a provider process. The user's memberships and the workspace's \
            backend options and Dask configuration overrides are read at most once per process, \
            when first needed (rule `read-once` in the [wire ledger](wire-ledger.md)); a create \
            looks its name up, creates and polls until ready, once a second.\n\n| Terraform | \
            operation | N | requests per cluster | by route |\n|---|---|---|---|---|\n",
    );
    for (key, v) in r.as_object().unwrap().iter().filter(|(k, _)| k.starts_with("requests_")) {
        let version = key.trim_start_matches("requests_");
        for (op, o) in v["per_cluster"].as_object().unwrap() {
            let routes: Vec<String> = o["by_route"]
                .as_object()
                .map(|m| m.iter().map(|(route, count)| format!("`{route}` {count}")).collect())
                .unwrap_or_default();
            md.push_str(&format!(
                "| {version} | {op} | {} | {:.2} | {} |\n",
                o["of"],
                o["per_cluster"].as_f64().unwrap_or(f64::NAN),
                routes.join(", ")
            ));
        }
    }
    md
}

/// The requests a cluster makes one after another in an operation: its refresh in a plan; its name
/// lookup, create and first poll in an apply.
const SERIAL: [(&str, f64); 2] = [("plan", 1.0), ("apply", 3.0)];

/// The latency table.
fn latency_table(r: &Value) -> String {
    let mut md = String::from(
        "\n## Over a wide-area network\n\n`coiled-local --latency` answers every request one round \
            trip later. N clusters are applied (no workers; provisioning takes no time), then \
            planned with refresh (median of three), at Terraform's default parallelism of 10. The \
            ideal is the same operation with no latency plus N / 10 rounds of the requests each \
            cluster makes one after another, a round trip each: one for a plan (its refresh), \
            three for an apply (its name lookup, create and first poll). It is an estimate, not a \
            bound: Terraform's own work overlaps the waiting, so a plan can come in under it. \
            Beyond it, an apply waits for what its clusters share, one read after another before \
            the first create: the memberships, the overrides and the backend options, once in the \
            plan's provider process and once in the apply's, and the one listing that shows the \
            name lookups' 404s are Coiled's: seven round trips. A plan of clusters that do not \
            change reads none of them: its refreshes start at once, ten at a time.\n\n| Terraform \
            | round trip | N | apply | ideal | requests per cluster | plan with refresh | ideal | \
            requests per cluster |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for (key, v) in r.as_object().unwrap().iter().filter(|(k, _)| k.starts_with("latency_")) {
        let version = key.trim_start_matches("latency_");
        let n = v["n"].as_f64().unwrap_or(f64::NAN);
        let p = v["parallelism"].as_f64().unwrap_or(PARALLELISM);
        let rows = v["rows"].as_array().unwrap();
        let base = |field: &str| {
            rows.iter()
                .find(|row| row["latency_ms"] == 0)
                .and_then(|row| row[field].as_f64())
                .unwrap_or(f64::NAN)
        };
        for row in rows {
            let ms = row["latency_ms"].as_f64().unwrap_or(f64::NAN);
            let f = |k: &str| row[k].as_f64().unwrap_or(f64::NAN);
            let [(_, plan_serial), (_, apply_serial)] = SERIAL;
            md.push_str(&format!(
                "| {version} | {ms:.0} ms | {n} | {:.2} s | {:.2} s | {:.2} | {:.2} s | {:.2} s | {:.2} |\n",
                f("apply_s"),
                ideal_s(base("apply_s"), n, p, apply_serial, ms),
                f("apply_requests_per_cluster"),
                f("plan_s"),
                ideal_s(base("plan_s"), n, p, plan_serial, ms),
                f("plan_requests_per_cluster"),
            ));
        }
    }
    md
}

/// Per instance, beyond a plan of one: `(at(n) - at(1)) / (n - 1)`.
fn per_instance(rows: &[Value], n: u64, field: &str) -> f64 {
    let at = |n: u64| {
        rows.iter()
            .find(|row| row["n"] == n)
            .and_then(|row| row[field].as_f64())
            .unwrap_or(f64::NAN)
    };
    (at(n) - at(1)) / (n as f64 - 1.0)
}

/// The linearity table.
fn linearity_table(r: &Value) -> String {
    let mut md = String::from(
        "\n## Linear cost\n\nPlan with refresh of N applied clusters (N = 5,000 seeded directly: \
            created over `coiled-local`'s API with the body the provider sent for the first, the \
            state written from the first's and refreshed once, and checked to plan no change). The \
            provider's CPU is logged by a wrapper, as in \"Where a plan's CPU goes\" below; its \
            peak RSS is sampled. Per instance is beyond a plan of one cluster, which leaves the \
            fixed cost out. A query lists the clusters (`terraform query`, Terraform 1.14 and \
            later): the clusters' list is read a page of 100 at a time.\n\n| Terraform | N | plan \
            wall time | provider CPU | per instance | provider peak RSS | per instance | requests \
            per cluster | query requests |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut both_logged = false;
    for (key, v) in r.as_object().unwrap().iter().filter(|(k, _)| k.starts_with("linearity_")) {
        let version = key.trim_start_matches("linearity_");
        both_logged |= v["own_provider_only"] != true;
        let rows = v["rows"].as_array().unwrap();
        for row in rows {
            let n = row["n"].as_u64().unwrap_or(0);
            let f = |k: &str| row[k].as_f64().unwrap_or(f64::NAN);
            let (cpu, rss) = if n > 1 {
                (
                    format!("{:.3} ms", per_instance(rows, n, "provider_cpu_s") * 1000.0),
                    format!("{:.2} KiB", per_instance(rows, n, "peak_rss_kib")),
                )
            } else {
                ("–".into(), "–".into())
            };
            let query = row["query_requests"].as_f64().map_or("–".into(), |q| format!("{q:.0}"));
            md.push_str(&format!(
                "| {version} | {n} | {:.2} s | {:.3} s | {cpu} | {:.1} MiB | {rss} | {:.2} | {query} |\n",
                f("wall_s"),
                f("provider_cpu_s"),
                f("peak_rss_kib") / 1024.0,
                f("plan_requests_per_cluster"),
            ));
        }
    }
    if both_logged {
        md.push_str(OTHER_PROVIDER_LOGGED);
    }
    md
}

/// What results measured before the wrapper logged one provider only held.
pub const OTHER_PROVIDER_LOGGED: &str = "
In this run, the wrapper's log also held the CPU of the other provider in the configuration, which
Terraform starts to read its schema and which then idles until the plan ends: the Go runtime's idle
CPU grows with the plan's wall time, so it inflates the figures of long plans (N = 5,000) and adds its
variance to every difference. Runs since log the measured provider alone; `perf` below counts it
alone too.
";

/// The linearity profile: `perf`'s counts, and where the largest plan's samples fall.
fn profile_table(r: &Value) -> String {
    let mut md = String::from(
        "\nThe same plans counted by `perf stat` (median of three; every provider process of the \
            plan summed; N = 5,000 seeded again): the task clock is exact to the microsecond, \
            where the wrapper's CPU seconds above are rounded to the millisecond, and per instance \
            they are a difference of two small numbers at N = 200. Context switches show whether \
            anything per instance grows with N; the symbols are where `perf record` sampled the \
            provider during the largest plan (2% or more).\n\n| Terraform | N | provider task \
            clock | per instance | context switches | per instance |\n|---|---|---|---|---|---|\n",
    );
    let mut symbols = String::new();
    let mut any = false;
    for (key, v) in r.as_object().unwrap().iter().filter(|(k, _)| k.starts_with("perf_")) {
        any = true;
        let version = key.trim_start_matches("perf_");
        let rows = v["rows"].as_array().unwrap();
        for row in rows {
            let n = row["n"].as_u64().unwrap_or(0);
            let f = |k: &str| row[k].as_f64().unwrap_or(f64::NAN);
            let (clock, switches) = if n > 1 {
                (
                    format!("{:.3} ms", per_instance(rows, n, "task_clock_ms")),
                    format!("{:.2}", per_instance(rows, n, "context_switches")),
                )
            } else {
                ("–".into(), "–".into())
            };
            md.push_str(&format!(
                "| {version} | {n} | {:.1} ms | {clock} | {:.0} | {switches} |\n",
                f("task_clock_ms"),
                f("context_switches")
            ));
        }
        let top: Vec<String> = v["top_symbols"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str())
            .map(|s| format!("`{s}`"))
            .collect();
        symbols.push_str(&format!("\n- Terraform {version}: {}", top.join(", ")));
    }
    if !any {
        return String::new();
    }
    md + "\nWhere the largest plan's samples fall:\n" + &symbols + "\n" + PROFILE_READING
}

/// How to read the profile against the linearity table.
const PROFILE_READING: &str = "
The provider does the same work for each instance at every N: the context switches per instance stay
the same, and the samples fall in the kernel's task switching, libc's allocator and memory copies,
none in a function of the provider whose cost depends on N. A plan of 5,000 is mostly Terraform's own
work (its wall time above), so its RPCs arrive further apart than in a plan of 200, and the CPU per
instance moves from one run to the next. Where the wrapper's figures above and these counts disagree
on a target, these are the provider's alone (see the note under the table above when it applies).
";

/// The sections of this module's measurements.
pub fn section(r: &Value) -> String {
    requests_table(r) + &latency_table(r) + &linearity_table(r) + &profile_table(r)
}

/// The targets of this module's measurements, and the guard on the provider's CPU.
pub fn targets(r: &Value) -> String {
    let mut s = String::new();
    let yes = |ok: bool| if ok { "yes" } else { "no" };
    let object = r.as_object().unwrap();
    for (key, v) in object.iter().filter(|(k, _)| k.starts_with("apply_")) {
        let version = key.trim_start_matches("apply_");
        let per = v["requests_per_cluster"].as_f64().unwrap_or(f64::NAN);
        s.push_str(&format!(
            "| apply of {} new clusters ≤ 3.2 API requests per cluster (Terraform {version}) | {per:.2} | {} |\n",
            v["n"],
            yes(per <= 3.2)
        ));
    }
    for (key, v) in object.iter().filter(|(k, _)| k.starts_with("latency_")) {
        let version = key.trim_start_matches("latency_");
        let worst = v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|row| row["plan_requests_per_cluster"].as_f64())
            .fold(0.0, f64::max);
        s.push_str(&format!(
            "| a plan with refresh makes at most one request per resource, at every round trip (Terraform {version}) | {worst:.2} | {} |\n",
            yes(worst <= 1.0)
        ));
    }
    for (key, v) in object.iter().filter(|(k, _)| k.starts_with("linearity_")) {
        let version = key.trim_start_matches("linearity_");
        let rows = v["rows"].as_array().unwrap();
        let (Some(small), Some(large)) = (
            rows.iter().filter_map(|row| row["n"].as_u64()).find(|n| *n > 1),
            rows.iter().filter_map(|row| row["n"].as_u64()).max(),
        ) else {
            continue;
        };
        for (field, what) in [("provider_cpu_s", "CPU"), ("peak_rss_kib", "peak RSS")] {
            let x = per_instance(rows, large, field) / per_instance(rows, small, field);
            s.push_str(&format!(
                "| provider {what} per instance at N = {large} at most 1.15× that at N = {small} (Terraform {version}) | {x:.2}× | {} |\n",
                yes(x <= 1.15)
            ));
        }
        if let Some(q) =
            rows.iter().find(|row| row["n"] == large).and_then(|row| row["query_requests"].as_f64())
        {
            let bound = (large as f64 / 100.0).ceil() + 3.0;
            s.push_str(&format!(
                "| a query of {large} clusters in at most N / 100 + 3 requests (Terraform {version}) | {q:.0} | {} |\n",
                yes(q <= bound)
            ));
        }
    }
    for (key, v) in object.iter().filter(|(k, _)| k.starts_with("perf_")) {
        let version = key.trim_start_matches("perf_");
        let rows = v["rows"].as_array().unwrap();
        let ns: Vec<u64> =
            rows.iter().filter_map(|row| row["n"].as_u64()).filter(|n| *n > 1).collect();
        let (Some(small), Some(large)) = (ns.iter().min(), ns.iter().max()) else { continue };
        let x = per_instance(rows, *large, "task_clock_ms")
            / per_instance(rows, *small, "task_clock_ms");
        s.push_str(&format!(
            "| provider task clock per instance (perf) at N = {large} at most 1.15× that at N = {small} (Terraform {version}) | {x:.2}× | {} |\n",
            yes(x <= 1.15)
        ));
    }
    // The guard: the provider's CPU per instance against the Go peer's, from the CPU split's runs.
    for version in object
        .keys()
        .filter_map(|k| k.strip_prefix("cpu_split_"))
        .filter_map(|k| k.strip_suffix("_n1"))
    {
        let small = &r[format!("cpu_split_{version}_n1")]["results"];
        let Some(large) = object
            .iter()
            .filter(|(k, v)| {
                k.starts_with(&format!("cpu_split_{version}_n")) && v["n"].as_u64() > Some(1)
            })
            .map(|(_, v)| v)
            .max_by_key(|v| v["n"].as_u64())
        else {
            continue;
        };
        let added = large["n"].as_f64().unwrap_or(f64::NAN) - 1.0;
        let per = |kind: &str| {
            (large["results"][kind]["provider_cpu_s"].as_f64().unwrap_or(f64::NAN)
                - small[kind]["provider_cpu_s"].as_f64().unwrap_or(f64::NAN))
                / added
        };
        let x = per("coiled_cluster") / per(crate::PEER);
        s.push_str(&format!(
            "| provider CPU per instance ≤ 0.35× the Go `null_resource` peer's (Terraform {version}) | {x:.2}× | {} |\n",
            yes(x <= 0.35)
        ));
    }
    s
}

/// The same plans as [`linearity`], counted by `perf` (when this machine has it): the provider's
/// task clock and context switches per instance, exact where the wrapper's CPU seconds are rounded and
/// differences of small numbers; and at the largest N, the symbols the provider's samples fall in.
pub fn linearity_profile(ctx: &mut Ctx, cli: &Cli, sizes: &[usize], seed_above: usize) {
    if Command::new("perf").arg("--version").output().is_err() {
        eprintln!("linearity profile: no perf on this machine, skipped");
        return;
    }
    let mut rows = Vec::new();
    let mut symbols = Vec::new();
    for &n in sizes {
        let server = LocalServer::start(&["--provision-delay", "0s", "--stop-delay", "0s"]);
        let w = workdir_with_null(cli, &counted_clusters(&server, n, "s", 0));
        // The provider runs under whatever `prefix` holds (`perf stat …`, `perf record …` or nothing).
        let bin = w.mirror().join(COILED_IN_MIRROR);
        let real = bin.with_extension("real");
        std::fs::rename(&bin, &real).unwrap();
        let prefix = w.path().join("prefix");
        std::fs::write(&prefix, "").unwrap();
        let script =
            format!("#!/bin/bash\nexec $(cat {}) {} \"$@\"\n", prefix.display(), real.display());
        cpu::write_script(&bin, &script);
        w.terraform(&["init", "-no-color"]).ok();
        if n > seed_above {
            seed(&server, &w, n);
        } else {
            w.terraform(&["apply", "-auto-approve", "-no-color", "-parallelism=20"]).ok();
        }
        let log = w.path().join("perf.log");
        let (mut clocks, mut switches) = (Vec::new(), Vec::new());
        for _ in 0..ctx.runs.min(3) {
            let _ = std::fs::remove_file(&log);
            let stat = format!(
                "perf stat -x, -e task-clock,context-switches -o {} --append --",
                log.display()
            );
            std::fs::write(&prefix, stat).unwrap();
            w.terraform(&["plan", "-no-color"]).ok();
            // Every provider process of the plan, summed.
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let sum = |event: &str| -> f64 {
                text.lines()
                    .filter(|l| l.contains(event))
                    .filter_map(|l| l.split(',').next()?.parse::<f64>().ok())
                    .sum()
            };
            clocks.push(sum(",task-clock,"));
            switches.push(sum(",context-switches,"));
        }
        let (clock_ms, switches) = (median(clocks), median(switches));
        eprintln!(
            "linearity profile {} N={n}: task clock {clock_ms:.1} ms, {switches} context switches",
            cli.version
        );
        rows.push(json!({"n": n, "task_clock_ms": clock_ms, "context_switches": switches}));
        if Some(&n) == sizes.iter().max() {
            let data = w.path().join("perf.data");
            std::fs::write(&prefix, format!("perf record -q -F 2000 -g -o {} --", data.display()))
                .unwrap();
            w.terraform(&["plan", "-no-color"]).ok();
            let report = Command::new("perf")
                .args([
                    "report",
                    "-i",
                    data.to_str().unwrap(),
                    "--no-children",
                    "--sort",
                    "dso,sym",
                ])
                .args(["--stdio", "-g", "none", "--percent-limit", "2"])
                .output()
                .unwrap();
            symbols = String::from_utf8_lossy(&report.stdout)
                .lines()
                .filter(|l| l.trim_start().chars().next().is_some_and(|c| c.is_ascii_digit()))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
        }
    }
    ctx.results
        .insert(format!("perf_{}", cli.version), json!({"rows": rows, "top_symbols": symbols}));
}
