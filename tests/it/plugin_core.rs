//! The plugin core through real Terraform CLIs: schema, logs, handshake rules, debug mode, configuration.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{HEADER, PROVIDER_BIN, Scenario, Workdir, clis};

fn provider_block(extra: &str) -> String {
    format!("{HEADER}provider \"coiled\" {{\n  server = \"http://127.0.0.1:9\"\n{extra}}}\n")
}

#[test]
fn schema_is_served_to_every_cli() {
    for cli in clis() {
        let w = Workdir::new(cli, &provider_block("  token = \"abc-123\"\n"));
        let out = w.terraform(&["providers", "schema", "-json"]).ok();
        let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("schema JSON");
        let p = &v["provider_schemas"]["registry.terraform.io/coiled/coiled"];
        let attrs = &p["provider"]["block"]["attributes"];
        assert_eq!(attrs["token"]["sensitive"], true, "{}", cli.version);
        assert_eq!(attrs["server"]["optional"], true);
        assert!(
            attrs["workspace"]["description"].as_str().unwrap().contains("DASK_COILED__WORKSPACE")
        );
        for t in ["coiled_backend_options", "coiled_cluster"] {
            assert!(
                p["resource_schemas"][t]["block"]["attributes"].is_object(),
                "{t} missing ({})",
                cli.version
            );
            assert!(
                p["data_source_schemas"][t]["block"]["attributes"].is_object(),
                "data source {t} missing ({})",
                cli.version
            );
        }
        let bo = &p["resource_schemas"]["coiled_backend_options"]["block"];
        assert_eq!(bo["attributes"]["aws_secret_access_key"]["sensitive"], true);
        assert_eq!(bo["block_types"]["ingress"]["nesting_mode"], "set");
        if cli.at_least(1, 11) {
            assert_eq!(
                bo["attributes"]["aws_secret_access_key_wo"]["write_only"], true,
                "{}",
                cli.version
            );
        }
    }
}

#[test]
fn tf_log_shows_provider_lines_and_stdout_stays_clean() {
    for cli in clis() {
        let w = Workdir::new(cli, &provider_block("  token = \"abc-123\"\n"));
        let out = w.terraform_env(&["plan", "-no-color"], &[("TF_LOG", "debug")]).ok();
        assert!(
            out.stderr
                .contains("provider.terraform-provider-coiled_v0.1.0: serving provider schema"),
            "{}: {}",
            cli.version,
            out.stderr
        );
        assert!(out.stderr.contains("@module=coiled"));
        assert!(!out.all().contains("abc-123"), "token leaked into logs");
        let quiet = w.terraform(&["plan", "-no-color"]).ok();
        assert!(!quiet.all().contains("serving provider schema"));
    }
}

#[test]
fn token_from_the_coiled_config_file_is_used() {
    for cli in clis() {
        let mut w = Workdir::new(cli, &provider_block(""));
        let home = w.path().join("../home");
        std::fs::create_dir_all(home.join(".config/dask")).unwrap();
        std::fs::write(
            home.join(".config/dask/coiled.yaml"),
            "coiled:\n  token: file-token\n  server: http://127.0.0.1:9\n",
        )
        .unwrap();
        w.set_env("HOME", &home.display().to_string());
        w.terraform(&["plan", "-no-color"]).ok();
    }
}

#[test]
fn run_by_hand_it_says_it_is_a_plugin() {
    let out = Command::new(PROVIDER_BIN).env_remove("TF_PLUGIN_MAGIC_COOKIE").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "stdout belongs to the handshake");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Terraform plugin"));
}

#[test]
fn wrong_protocol_versions_are_refused() {
    let out = Command::new(PROVIDER_BIN)
        .env(tfplugin::serve::MAGIC_COOKIE_KEY, tfplugin::serve::MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "4,5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("version 6"));
}

#[test]
fn debug_mode_prints_a_working_reattach_value() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(PROVIDER_BIN)
        .arg("--debug")
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut reattach = String::new();
    for _ in 0..10 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some(rest) = line.trim().strip_prefix("TF_REATTACH_PROVIDERS='") {
            reattach = rest.trim_end_matches('\'').to_string();
            break;
        }
    }
    assert!(!reattach.is_empty(), "no reattach line printed");
    let v: serde_json::Value = serde_json::from_str(&reattach).unwrap();
    assert_eq!(v["registry.terraform.io/coiled/coiled"]["ProtocolVersion"], 6);
    let cli = &clis()[0];
    let w = Workdir::new(cli, &provider_block("  token = \"abc-123\"\n"));
    let out = w.terraform_env(&["plan", "-no-color"], &[("TF_REATTACH_PROVIDERS", &reattach)]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(out.code, 0, "{}", out.all());
}

#[test]
fn missing_token_names_every_place_it_may_come_from() {
    for cli in clis() {
        let w = Workdir::new(
            cli,
            &format!(
                "{}resource \"coiled_cluster\" \"x\" {{\n  software = \"dask\"\n  name = \"x\"\n}}\n",
                provider_block("")
            ),
        );
        let out = w.terraform(&["plan", "-no-color"]);
        assert_ne!(out.code, 0);
        let all = out.all().split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(all.contains("Missing Coiled API Token"), "{}: {all}", cli.version);
        for place in ["COILED_TOKEN", "DASK_COILED__TOKEN", "coiled.yaml", "`token`"] {
            assert!(all.contains(place), "{place} not named: {all}");
        }
    }
}

#[test]
fn unknown_provider_configuration_does_not_break_the_plan() {
    // The server comes from a resource that does not exist yet: planning must still work.
    let config = format!(
        "{HEADER}resource \"terraform_data\" \"server\" {{\n  input = \"http://127.0.0.1:9\"\n}}\nprovider \"coiled\" {{\n  server = terraform_data.server.output\n  token  = \"abc-123\"\n}}\nresource \"coiled_cluster\" \"x\" {{\n  software = \"dask\"\n  name = \"x\"\n}}\n"
    );
    for cli in clis().iter().filter(|c| c.at_least(1, 4)) {
        let w = Workdir::new(cli, &config);
        let out = w.terraform(&["plan", "-no-color"]).ok();
        assert!(out.stdout.contains("coiled_cluster.x will be created"), "{}", out.all());
    }
}

/// A Terraform that is killed (or dies on a closed output pipe) stops nothing: its provider, left in the
/// middle of a read, notices that Terraform is gone and exits instead of running on for good.
#[test]
fn the_provider_exits_when_terraform_is_killed() {
    let config = "resource \"coiled_cluster\" \"c\" {\n  software  = \"dask\"\n  name      = \"orphan\"\n  n_workers = 0\n}\n";
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], config);
        s.apply();
        s.server.delete("/_local/requests");
        s.server.put("/_local/faults", &json!({"latency_ms": 60000}));
        let child = s.tf.spawn(&["plan", "-no-color"], &[]);
        let group = child.id();
        let _cleanup = KillGroup(group);
        let reading = || {
            s.server
                .get("/_local/requests")
                .1
                .as_array()
                .is_some_and(|l| l.iter().any(|r| r["method"] == "GET"))
        };
        let started = Instant::now();
        while !reading() && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let orphans: Vec<u32> = group_members(group)
            .into_iter()
            .filter(|(_, provider)| *provider)
            .map(|(pid, _)| pid)
            .collect();
        assert!(reading() && !orphans.is_empty(), "no provider reading ({})", cli.version);
        // Terraform alone is killed, as `kill -9` or a closed pipe would end it: not its plugins.
        for (pid, _) in group_members(group).into_iter().filter(|(_, provider)| !*provider) {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        // Only its exit: the pipes may stay open while a plugin that inherited them runs.
        let mut child = child;
        assert!(!child.wait().unwrap().success());
        let gone = Instant::now();
        while orphans.iter().any(|pid| alive(*pid)) && gone.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let left: Vec<u32> = orphans.iter().copied().filter(|pid| alive(*pid)).collect();
        for pid in &left {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        assert!(
            left.is_empty(),
            "provider processes {left:?} still running 15 s after Terraform was killed ({})",
            cli.version
        );
        s.server.put("/_local/faults", &json!({}));
    }
}

/// Kills what is left of a process group when dropped, a failed assertion included.
struct KillGroup(u32);

impl Drop for KillGroup {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(Stdio::null())
            .status();
    }
}

/// The processes of process group `group`, each with whether it runs this provider's binary.
fn group_members(group: u32) -> Vec<(u32, bool)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            // After the command name: state, ppid, pgrp.
            let pgrp: u32 = stat_after_name(pid)?.get(2)?.parse().ok()?;
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
            let provider = exe.file_name()?.to_str()?.starts_with("terraform-provider-coiled");
            (pgrp == group).then_some((pid, provider))
        })
        .collect()
}

/// Whether process `pid` still runs (a zombie, already exited, does not).
fn alive(pid: u32) -> bool {
    stat_after_name(pid).and_then(|f| f.first().map(|state| state != "Z")).unwrap_or(false)
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces): the state first.
fn stat_after_name(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat.rsplit_once(')')?.1.split_whitespace().map(str::to_string).collect())
}

/// The transport go-plugin uses on Windows, TCP on loopback, tried here on Linux (the switch is ours):
/// Terraform connects to the port the handshake names, and a cluster's whole life runs over it.
#[test]
fn the_windows_transport_serves_terraform_over_loopback_tcp() {
    let cluster = "resource \"coiled_cluster\" \"c\" {\n  name      = \"over-tcp\"\n  software  = \"dask\"\n  n_workers = 1\n}\n";
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], cluster);
        let tcp = [(tfplugin::serve::TRANSPORT_ENV, "tcp"), ("TF_LOG_PROVIDER", "info")];
        let out = s.tf.terraform_env(&["apply", "-auto-approve", "-no-color"], &tcp).ok();
        assert!(
            out.stderr.contains("serving Terraform") && out.stderr.contains("network=tcp"),
            "{}: {}",
            cli.version,
            out.stderr
        );
        assert!(
            out.stderr.contains(&format!("version={}", env!("CARGO_PKG_VERSION"))),
            "{}",
            out.stderr
        );
        let plan = s.tf.terraform_env(&["plan", "-detailed-exitcode", "-no-color"], &tcp);
        assert_eq!(plan.code, 0, "{}", plan.all());
        s.tf.terraform_env(&["destroy", "-auto-approve", "-no-color"], &tcp).ok();
    }
}

/// As go-plugin's server does, the plugin takes the first free port from `PLUGIN_MIN_PORT` to
/// `PLUGIN_MAX_PORT`, on 127.0.0.1 only.
#[test]
fn the_tcp_listener_takes_the_first_free_port_of_the_range() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (min, max) = (port.to_string(), (port + 20).to_string());
    let (mut child, line) = crate::common::start_plugin(&[
        (tfplugin::serve::TRANSPORT_ENV, "tcp"),
        ("PLUGIN_MIN_PORT", min.as_str()),
        ("PLUGIN_MAX_PORT", max.as_str()),
    ]);
    let _ = child.kill();
    let _ = child.wait();
    let fields: Vec<&str> = line.trim().split('|').collect();
    assert_eq!(&fields[..3], &["1", "6", "tcp"], "{line}");
    let addr: std::net::SocketAddr = fields[3].parse().unwrap();
    assert!(addr.ip().is_loopback() && addr.port() > port && addr.port() <= port + 20, "{line}");
}

/// `--version` prints the package's version, the one place it is declared.
#[test]
fn the_version_is_the_packages() {
    let out = Command::new(PROVIDER_BIN).arg("--version").output().unwrap();
    let cargo =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let declared =
        cargo.lines().find_map(|l| l.strip_prefix("version = \"")).unwrap().trim_end_matches('"');
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!("terraform-provider-coiled {declared}")
    );
    assert!(out.stdout.is_empty());
}
