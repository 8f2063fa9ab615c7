//! What a new user meets in the first hour: each test pins a defect found by trying the documented
//! paths, through the real Terraform CLIs against `coiled-local`.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Cli, HEADER, LocalServer, Scenario, Workdir, clis, flat};

/// Creates a cluster as another user of the workspace would, outside Terraform.
fn colleague_creates(server: &LocalServer, body: serde_json::Value) -> i64 {
    let (code, created) =
        server.post("/api/v2/clusters/account/alice/", &crate::common::client_body(&body));
    assert!((200..300).contains(&code), "the create failed with {code}: {created}");
    created["id"].as_i64().unwrap()
}

#[test]
fn regression_unnamed_cluster_applies_with_a_stable_name() {
    let config = "resource \"coiled_cluster\" \"anon\" {\n  software = \"dask\"\n  n_workers = 1\n}\noutput \"name\" { value = coiled_cluster.anon.name }\n";
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], config);
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok();
        assert!(
            plan.stdout.contains("name") && plan.stdout.contains("(known after apply)"),
            "{}",
            plan.stdout
        );
        s.apply();
        let name = s.output("name").as_str().unwrap().to_string();
        assert!(name.starts_with("alice-") && name.len() == "alice-".len() + 6, "{name}");
        s.assert_no_changes();
        // A saved plan applies too, and so does a replacement under create_before_destroy.
        s.set(
            &config
                .replace("n_workers = 1", "n_workers = 1\n  tags = { team = \"a\" }\n  lifecycle {\n    create_before_destroy = true\n  }"),
        );
        s.tf.terraform(&["plan", "-no-color", "-out", "saved.plan"]).ok();
        s.tf.terraform(&["apply", "-no-color", "saved.plan"]).ok();
        let second = s.output("name").as_str().unwrap().to_string();
        assert_ne!(second, name, "the replacement draws its own name");
        s.assert_no_changes();
    }
}

#[test]
fn regression_a_colleagues_cluster_is_never_taken_over_under_faults() {
    let config = "resource \"coiled_cluster\" \"mine\" {\n  software = \"dask\"\n  name      = \"victim3\"\n  n_workers = 1\n  tags      = { owner = \"me\" }\n}\n";
    let newest = clis().len() - 1;
    for (n, cli) in clis().iter().enumerate() {
        let mut matrix = vec![json!({"seed": 3, "rate_drop": 0.4, "rate_502": 0.3})];
        if n == newest {
            matrix.push(json!({"seed": 4, "rate_500": 0.3, "rate_503": 0.3, "retry_after": 0}));
            matrix.push(json!({"lose_create_responses": 2}));
        }
        for faults in matrix {
            let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], config);
            let victim = colleague_creates(
                &s.server,
                json!({"name": "victim3", "workers": 1, "tags": {"owner": "colleague"}}),
            );
            s.server.put("/_local/faults", &faults);
            let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
            s.server.put("/_local/faults", &json!({}));
            assert_ne!(out.code, 0, "{faults} ({}):\n{}", cli.version, out.all());
            let text = flat(&out.all());
            assert!(
                text.contains("Cluster Already Exists")
                    || text.contains("Unable to Create Cluster"),
                "{faults} ({}): {text}",
                cli.version
            );
            assert!(!text.contains("Creation complete"), "{text}");
            let listed = s.tf.terraform(&["state", "list"]).stdout;
            assert!(
                !listed.contains("coiled_cluster.mine"),
                "the colleague's cluster went into state: {listed}"
            );
            let running = s.server.running_named("victim3");
            assert_eq!(running.len(), 1, "{running:?}");
            assert_eq!(running[0]["id"], victim);
            let (_, d) = s.server.get(&format!("/api/v2/clusters/account/alice/id/{victim}"));
            assert_eq!(d["tags"]["owner"], "colleague");
            assert_eq!(d["desired_workers"], 1, "never scaled");
            // The next apply does not touch it either.
            let again = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
            assert_ne!(again.code, 0);
            assert!(flat(&again.all()).contains("Cluster Already Exists"), "{}", again.all());
            assert_eq!(s.server.running_named("victim3").len(), 1);
        }
    }
}

const IMPORTABLE: &str = r#"resource "coiled_cluster" "etl" {
  name               = "etl"
  n_workers          = 2
  software           = "dask"
  worker_vm_types    = ["m6i.xlarge", "m5.xlarge"]
  scheduler_vm_types = ["m6i.large"]
  tags               = { team = "data", cost = "42" }
  environ            = { MODE = "batch" }
  idle_timeout       = "2 hours"
  backend_options {
    region = "us-east-2"
    ingress {
      ports = [8786]
      cidr  = "10.1.0.0/16"
    }
  }
}
"#;

#[test]
fn regression_import_of_a_matching_configuration_plans_no_replacement() {
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], IMPORTABLE);
        s.apply();
        let id = {
            let state: serde_json::Value = serde_json::from_str(&s.state_text()).unwrap();
            state["resources"][0]["instances"][0]["attributes"]["id"].as_str().unwrap().to_string()
        };
        for key in [id.clone(), "etl".to_string(), "alice/etl".to_string()] {
            s.reimport("coiled_cluster.etl", &key);
            let plan = s.tf.terraform(&["plan", "-no-color"]).ok();
            assert!(
                !plan.stdout.contains("replace"),
                "import by {key} plans a replacement ({}):\n{}",
                cli.version,
                plan.stdout
            );
            s.reset_stats();
            s.apply();
            s.assert_no_changes();
            assert_eq!(s.server.running_named("etl").len(), 1);
        }
        // What the API reports is checked: another region or other tags do replace.
        s.set(&IMPORTABLE.replace("us-east-2", "eu-west-1"));
        assert!(s.plan_changes().contains("must be replaced"));
        s.set(&IMPORTABLE.replace("cost = \"42\"", "cost = \"43\""));
        assert!(s.plan_changes().contains("must be replaced"));
    }
}

#[test]
fn regression_unreachable_servers_fail_promptly_with_advice() {
    let cluster = "resource \"coiled_cluster\" \"x\" {\n  software = \"dask\"\n  name = \"x\"\n}\n";
    // A port nobody listens on, and a listener that accepts but never answers.
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let config = |url: String, extra: &str| {
        format!(
            "{HEADER}provider \"coiled\" {{\n  server = \"{url}\"\n  token  = \"t-1\"\n{extra}}}\n{cluster}"
        )
    };
    let cli = &clis()[clis().len() - 1];
    let w = Workdir::new(cli, &config(format!("http://{refused}"), ""));
    let started = Instant::now();
    let out = w.terraform(&["plan", "-no-color"]);
    let took = started.elapsed();
    assert_ne!(out.code, 0);
    let text = flat(&out.all());
    assert!(
        text.contains("connection refused")
            && text.contains("COILED_SERVER")
            && text.contains("VPN"),
        "{text}"
    );
    assert!(text.contains(&format!("http://{refused}")), "{text}");
    // The default budget is 30 s: kept trying that long, and no longer than about that.
    assert!(
        took < Duration::from_secs(50) && took > Duration::from_secs(25),
        "default budget: took {took:?}"
    );
    assert!(text.contains("gave up after 30 s") || text.contains("gave up after 31 s"), "{text}");
    for cli in clis() {
        let w = Workdir::new(
            cli,
            &config(format!("http://{silent_addr}"), "  unreachable_timeout = \"4s\"\n"),
        );
        let started = Instant::now();
        let out = w.terraform(&["plan", "-no-color"]);
        assert_ne!(out.code, 0);
        let text = flat(&out.all());
        assert!(
            text.contains("timed out after 4 s") && text.contains("unreachable_timeout"),
            "{text}"
        );
        assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    }
    drop(silent);
}

/// A server on loopback that answers each request, by its request line, with a status line, a
/// content type and a body; the configuration of a cluster whose provider points at it.
fn not_quite_coiled(answer: fn(&str) -> (&'static str, &'static str, &'static str)) -> String {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = std::io::BufReader::new(stream);
            let (mut first, mut line) = (String::new(), String::new());
            let _ = reader.read_line(&mut first);
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let (status, kind, body) = answer(&first);
            let _ = write!(
                reader.get_mut(),
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let cluster = "resource \"coiled_cluster\" \"x\" {\n  software = \"dask\"\n  name = \"x\"\n}\n";
    format!(
        "{HEADER}provider \"coiled\" {{\n  server = \"http://{addr}\"\n  token  = \"t-1\"\n}}\n{cluster}"
    )
}

/// A server that answers every request with a web page (a portal, a proxy's login page) is named
/// as not being Coiled's API, with where its URL came from.
#[test]
fn a_server_answering_web_pages_is_named_as_not_coiled() {
    let config = not_quite_coiled(|_| ("200 OK", "text/html", "<html><body>Welcome</body></html>"));
    for cli in clis() {
        let out = Workdir::new(cli, &config).terraform(&["plan", "-no-color"]);
        assert_ne!(out.code, 0);
        let text = flat(&out.all());
        assert!(
            text.contains("unexpected answer from")
                && text.contains("an HTML page, not JSON")
                && text.contains("If it is not Coiled's API")
                && text.contains("the provider's `server` argument"),
            "{}: {text}",
            cli.version
        );
    }
}

/// A token whose user is a member of no workspace, with no workspace configured, fails the plan with
/// the reason the apply would give, instead of planning a create that cannot happen.
#[test]
fn no_workspace_to_default_to_fails_the_plan() {
    let config = not_quite_coiled(|request| {
        if request.contains("/api/v2/user/me/memberships") {
            ("200 OK", "application/json", "[]")
        } else {
            ("404 Not Found", "application/json", r#"{"detail": "Not found."}"#)
        }
    });
    for cli in clis() {
        let w = Workdir::new(cli, &config);
        let out = w.terraform_env(&["plan", "-no-color"], &[("COILED_WORKSPACE", "")]);
        assert_ne!(out.code, 0, "{}", out.all());
        let text = flat(&out.all());
        assert!(
            text.contains("Unable to Determine Workspace")
                && text.contains("member of no workspace"),
            "{}: {text}",
            cli.version
        );
    }
}

#[test]
fn regression_bad_credentials_fail_at_plan() {
    let cluster = "resource \"coiled_cluster\" \"x\" {\n  software = \"dask\"\n  name = \"x\"\n}\n";
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s"], cluster);
        s.tf.write(
            "main.tf",
            &Scenario::config(&s.server, cluster)
                .replace(&format!("\"{}\"", s.server.token), "\"wrong-token\""),
        );
        let out = s.tf.terraform(&["plan", "-no-color"]);
        assert_ne!(out.code, 0, "{}", out.all());
        assert!(flat(&out.all()).contains("rejected the token"), "{}", out.all());
        s.set(&cluster.replace("name = \"x\"", "name = \"x\"\n  workspace = \"bob\""));
        let out = s.tf.terraform(&["plan", "-no-color"]);
        assert_ne!(out.code, 0, "{}", out.all());
        let text = flat(&out.all());
        assert!(
            text.contains("Not a Member of the Workspace")
                && text.contains("\"bob\"")
                && text.contains("alice"),
            "{text}"
        );
        assert!(s.server.clusters().is_empty());
    }
}

use crate::cluster::ACCOUNT as TEAM_A;

#[test]
fn regression_backend_options_say_when_they_take_over_or_drift() {
    for cli in clis() {
        let s = Scenario::new(cli, &[], TEAM_A);
        let first = s.tf.terraform(&["plan", "-no-color"]).ok();
        assert!(
            !first.all().contains("Will Be Replaced"),
            "defaults are not worth a warning:\n{}",
            first.all()
        );
        s.apply();
        // A second configuration on the same workspace.
        let other = Workdir::new(
            cli,
            &Scenario::config(&s.server, &TEAM_A.replace("10.1.0.0/16", "10.9.0.0/16")),
        );
        let plan = other.terraform(&["plan", "-no-color"]).ok();
        let text = flat(&plan.all());
        assert!(
            text.contains("Existing Backend Options Will Be Replaced")
                && text.contains("10.1.0.0/16 (ports 8786,8787)"),
            "{text}"
        );
        other.terraform(&["apply", "-auto-approve", "-no-color"]).ok();
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok();
        let text = flat(&plan.all());
        assert!(
            text.contains("Backend Options Changed Outside Terraform")
                && text.contains("10.9.0.0/16"),
            "{text}"
        );
    }
}

#[test]
fn regression_a_stopping_cluster_is_waited_for_and_name_clashes_are_explained() {
    let config = "resource \"coiled_cluster\" \"c\" {\n  software = \"dask\"\n  name      = \"fixed\"\n  n_workers = 1\n  tags      = { v = \"1\" }\n}\n";
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "2s"], config);
        s.apply();
        // Replacement, destroy first: the new cluster waits for the old one to finish stopping.
        s.set(&config.replace("v = \"1\"", "v = \"2\""));
        s.apply();
        s.assert_no_changes();
        // Create before destroy with a fixed name: the clash is explained, with no import advice.
        s.set(
            &config
                .replace("v = \"1\"", "v = \"3\"")
                .replace("tags", "lifecycle {\n    create_before_destroy = true\n  }\n  tags"),
        );
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        assert_ne!(out.code, 0);
        let text = flat(&out.all());
        assert!(text.contains("create_before_destroy") && !text.contains("<address>"), "{text}");
        assert_eq!(s.server.running_named("fixed").len(), 1);
    }
}

#[test]
fn regression_the_cluster_data_source_refuses_stopped_clusters_unless_asked() {
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], "");
        let id = colleague_creates(&s.server, json!({"name": "old", "workers": 1}));
        std::thread::sleep(Duration::from_millis(200));
        s.server.delete(&format!("/api/v2/clusters/account/alice/id/{id}?reason=done"));
        std::thread::sleep(Duration::from_millis(300));
        let data = format!(
            "data \"coiled_cluster\" \"old\" {{\n  id = \"{id}\"\n}}\noutput \"addr_null\" {{ value = data.coiled_cluster.old.scheduler_address == null }}\noutput \"status\" {{ value = data.coiled_cluster.old.status }}\n"
        );
        s.set(&data);
        let out = s.tf.terraform(&["plan", "-no-color"]);
        assert_ne!(out.code, 0);
        assert!(
            flat(&out.all()).contains("Cluster Not Running") && out.all().contains("allow_stopped"),
            "{}",
            out.all()
        );
        s.set(&data.replace("\n}", "\n  allow_stopped = true\n}"));
        s.apply();
        assert_eq!(s.output("addr_null"), serde_json::Value::Bool(true));
        assert_eq!(s.output("status"), "stopped");
        s.set("data \"coiled_cluster\" \"none\" {\n  id = \"99999\"\n}\n");
        let out = s.tf.terraform(&["plan", "-no-color"]);
        let text = flat(&out.all());
        assert!(
            text.contains("No cluster with id 99999") && !text.contains("not found: Not found."),
            "{text}"
        );
    }
}

fn refused(
    cli: &Cli,
    server: &LocalServer,
    provider_extra: &str,
    resources: &str,
    env: &[(&str, &str)],
) -> String {
    let config = format!(
        "{HEADER}provider \"coiled\" {{\n  server = \"{}\"\n  token  = \"{}\"\n  retire_workers = false\n{provider_extra}}}\n{resources}",
        server.url, server.token
    );
    let w = Workdir::new(cli, &config);
    let out = w.terraform_env(&["plan", "-no-color"], env);
    assert_ne!(out.code, 0, "accepted:\n{}", out.all());
    assert!(!out.all().contains("panic"), "{}", out.all());
    flat(&out.all())
}

#[test]
fn regression_error_wording_a_user_can_act_on() {
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s"], "");
        let cluster =
            "resource \"coiled_cluster\" \"c\" {\n  software = \"dask\"\n  name = \"c\"\n}\n";
        let text = refused(
            cli,
            &s.server,
            "",
            &cluster.replace("name = \"c\"", "name = \"c\"\n  idle_timeout = \"forever\""),
            &[],
        );
        assert!(
            text.contains("Invalid Idle Timeout")
                && text.contains("\"forever\" is not a duration Dask understands"),
            "{text}"
        );
        let text = refused(
            cli,
            &s.server,
            "",
            &cluster
                .replace("name = \"c\"", "name = \"c\"\n  timeouts {\n    create = \"abc\"\n  }"),
            &[],
        );
        assert!(
            text.contains("\"abc\" is not a duration") && !text.contains("expected number"),
            "{text}"
        );
        // A server with a path.
        let w = Workdir::new(
            cli,
            &format!(
                "{HEADER}provider \"coiled\" {{\n  server = \"{}/api/v2\"\n  token  = \"{}\"\n}}\n{cluster}",
                s.server.url, s.server.token
            ),
        );
        let text = flat(&w.terraform(&["plan", "-no-color"]).all());
        assert!(text.contains("Invalid Coiled Server") && text.contains("has a path"), "{text}");
        // A malformed Coiled config file names itself.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("coiled.yaml"), "coiled:\n  token: [unclosed\n").unwrap();
        let w = Workdir::new(
            cli,
            &format!(
                "{HEADER}provider \"coiled\" {{\n  server = \"{}\"\n}}\n{cluster}",
                s.server.url
            ),
        );
        let text = flat(
            &w.terraform_env(
                &["plan", "-no-color"],
                &[("DASK_CONFIG", dir.path().to_str().unwrap())],
            )
            .all(),
        );
        assert!(
            text.contains("Unreadable Coiled Configuration File")
                && text.contains("coiled.yaml")
                && text.contains("not valid YAML"),
            "{text}"
        );
        // One clear error for missing AWS credentials.
        let text = refused(
            cli,
            &s.server,
            "",
            "resource \"coiled_backend_options\" \"b\" {\n  backend = \"aws\"\n}\n",
            &[],
        );
        assert_eq!(text.matches("Missing AWS Credentials").count(), 1, "{text}");
        assert!(text.contains("aws_access_key_id and aws_secret_access_key are missing"), "{text}");
        // Import IDs.
        s.set(cluster);
        for (id, expect) in [("/imp1", "Invalid Import ID"), ("12345", "No cluster with id 12345")]
        {
            let out = s.tf.terraform(&["import", "-no-color", "coiled_cluster.c", id]);
            assert_ne!(out.code, 0);
            let text = flat(&out.all());
            assert!(
                text.contains(expect)
                    && !text.contains("the  workspace")
                    && !text.contains("Not found."),
                "{id}: {text}"
            );
        }
    }
}

/// A minimal HTTP CONNECT proxy on loopback that counts the tunnels it opens. Runs until the test ends.
fn connect_proxy() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut client) = conn else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let mut words = text.split_whitespace();
                if words.next() != Some("CONNECT") {
                    let _ = client
                        .write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
                    return;
                }
                // The proxy resolves names as a corporate proxy would; `coiled.test` is loopback.
                let target = words.next().unwrap_or_default().replace("coiled.test:", "127.0.0.1:");
                let Ok(upstream) = std::net::TcpStream::connect(&target) else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    return;
                };
                seen.fetch_add(1, Ordering::SeqCst);
                client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
                let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let (mut c1, mut u1) = (client, upstream);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut u2);
                    let _ = u2.shutdown(std::net::Shutdown::Write);
                });
                let _ = std::io::copy(&mut u1, &mut c1);
                let _ = c1.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (format!("http://{addr}"), count)
}

#[test]
fn regression_the_websocket_uses_the_ca_bundle_and_the_proxy_and_loopback_never_does() {
    let dir = tempfile::tempdir().unwrap();
    crate::common::write_private_ca_certificate(dir.path());
    let server = LocalServer::start(&[
        "--tls-cert",
        dir.path().join("cert.pem").to_str().unwrap(),
        "--tls-key",
        dir.path().join("key.pem").to_str().unwrap(),
    ]);
    let ca_path = dir.path().join("ca.pem");
    let (proxy, tunnels) = connect_proxy();
    for cli in clis() {
        let config = |url: &str| {
            format!(
                "{HEADER}provider \"coiled\" {{\n  server = \"{url}\"\n  token  = \"{}\"\n  ca_bundle_file = \"{}\"\n  retire_workers = false\n}}\n{}",
                server.token,
                ca_path.display(),
                TEAM_A.replace("10.1.0.0/16", &format!("10.{}.0.0/16", cli.version.len()))
            )
        };
        // A server known by a name only the proxy resolves: the REST calls and the WebSocket each
        // open a tunnel.
        let named = server.url.replace("127.0.0.1", "coiled.test");
        let w = Workdir::new(cli, &config(&named));
        let before = tunnels.load(std::sync::atomic::Ordering::SeqCst);
        let started = Instant::now();
        let out =
            w.terraform_env(&["apply", "-auto-approve", "-no-color"], &[("HTTPS_PROXY", &proxy)]);
        assert_eq!(out.code, 0, "{}", out.all());
        assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
        let opened = tunnels.load(std::sync::atomic::Ordering::SeqCst) - before;
        assert!(
            opened >= 2,
            "REST and the WebSocket both go through the proxy: {opened} tunnel(s)"
        );
        // A loopback server is never reached through a proxy, whatever the variables say.
        let before = tunnels.load(std::sync::atomic::Ordering::SeqCst);
        w.write("main.tf", &config(&server.url).replace("8786, 8787", "8786"));
        let proxies = [
            ("HTTPS_PROXY", proxy.as_str()),
            ("HTTP_PROXY", proxy.as_str()),
            ("ALL_PROXY", proxy.as_str()),
        ];
        let out = w.terraform_env(&["apply", "-auto-approve", "-no-color"], &proxies);
        assert_eq!(out.code, 0, "{}", out.all());
        assert_eq!(tunnels.load(std::sync::atomic::Ordering::SeqCst), before);
        // A proxy URL that cannot be used is refused, with its password masked.
        w.write("main.tf", &config(&named));
        let out = w.terraform_env(
            &["plan", "-no-color"],
            &[("HTTPS_PROXY", "http://user:pr0xy-s3cret@proxy.invalid:notaport")],
        );
        assert_ne!(out.code, 0);
        assert!(out.all().contains("***") && !out.all().contains("pr0xy-s3cret"), "{}", out.all());
        // Without the CA, the certificate error comes at once: not after minutes of retries.
        w.write(
            "main.tf",
            &config(&server.url)
                .replace(&format!("  ca_bundle_file = \"{}\"\n", ca_path.display()), "")
                .replace("8786, 8787", "8787"),
        );
        let started = Instant::now();
        let out = w.terraform(&["apply", "-auto-approve", "-no-color"]);
        assert_ne!(out.code, 0);
        assert!(flat(&out.all()).contains("certificate"), "{}", out.all());
        assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    }
}

/// The quick start as the README gives it (`scripts/quickstart.sh`, here in a directory of its own and
/// with the binaries the tests use): it shows the applied firewall and an empty second plan; run
/// again, it reuses what is there; with Terraform's state deleted while `coiled-local` runs on, it
/// fails with the way out; `stop` stops `coiled-local`, whatever happened.
#[test]
fn the_quick_start_runs_as_the_readme_says() {
    struct StopOnDrop<'a>(&'a dyn Fn(&[&str]) -> (bool, String));
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            (self.0)(&["stop"]);
        }
    }
    let dir = tempfile::Builder::new().prefix("quickstart-").tempdir().unwrap();
    let qs = dir.path().join("qs");
    let bins = crate::common::local_bin().parent().unwrap().to_path_buf();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/quickstart.sh");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&script)
            .args(args)
            .env("QUICKSTART_DIR", &qs)
            .env("QUICKSTART_BIN_DIR", &bins)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let _stop = StopOnDrop(&run);
    let (ok, first) = run(&[]);
    assert!(ok, "{first}");
    for shown in ["10.1.0.0/16", "No changes", "Where to go next"] {
        assert!(first.contains(shown), "{shown}: {first}");
    }
    let (ok, again) = run(&[]);
    assert!(ok && again.contains("Already running at"), "{again}");
    std::fs::remove_file(qs.join("work/terraform.tfstate")).unwrap();
    let (ok, lost) = run(&[]);
    assert!(
        !ok && flat(&lost).contains("Cluster Already Exists")
            && lost.contains("scripts/quickstart.sh stop && rm -rf"),
        "{lost}"
    );
    let (ok, stopped) = run(&["stop"]);
    assert!(ok && stopped.contains("coiled-local stopped"), "{stopped}");
}

/// A cluster whose own rules equal the account's default: the server reports them as the cluster's
/// own (`firewall_source = "cluster"`), and an import trusts that, so the configuration that made it
/// plans no replacement.
#[test]
fn regression_an_import_trusts_the_reported_source_of_rules_equal_to_the_account_default() {
    let config = format!(
        "{TEAM_A}{}",
        r#"resource "coiled_cluster" "own" {
  name      = "own"
  software  = "dask"
  n_workers = 1
  backend_options {
    ingress {
      ports = [8786, 8787]
      cidr  = "10.1.0.0/16"
    }
  }
  depends_on = [coiled_backend_options.team]
}
"#
    );
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], &config);
        s.apply();
        let id = s.server.running_named("own")[0]["id"].to_string();
        s.reimport("coiled_cluster.own", &format!("alice/{id}"));
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok().stdout;
        assert!(!plan.contains("replace") && !plan.contains("destroy"), "{}: {plan}", cli.version);
        s.apply();
        s.assert_no_changes();
        assert_eq!(s.server.running_named("own")[0]["id"].to_string(), id, "the same cluster");
    }
}

/// A stopped cluster kept in state (`when_stopped = "keep"`) cannot be scaled, but a plan that
/// replaces it may change its worker count: `-replace` and a replacing argument start a new one.
#[test]
fn regression_a_kept_stopped_cluster_is_replaced_with_a_new_worker_count() {
    let config = |n: i64, tag: &str| {
        format!(
            "resource \"coiled_cluster\" \"k\" {{\n  name         = \"kept\"\n  software     = \"dask\"\n  n_workers    = {n}\n  when_stopped = \"keep\"\n  tags         = {{ v = \"{tag}\" }}\n}}\n"
        )
    };
    for cli in clis() {
        let s =
            Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], &config(1, "a"));
        s.apply();
        let stop = |s: &Scenario| {
            let id = s.server.running_named("kept")[0]["id"].clone();
            s.server.delete(&format!("/api/v2/clusters/account/alice/id/{id}?reason=done"));
            std::thread::sleep(Duration::from_millis(300));
            s.tf.terraform(&["apply", "-refresh-only", "-auto-approve", "-no-color"]).ok();
        };
        let workers = |s: &Scenario| {
            let id = s.server.running_named("kept")[0]["id"].clone();
            s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}")).1["desired_workers"]
                .clone()
        };
        stop(&s);
        // A plain scale: a warning at plan, an error at apply, state as it was.
        s.set(&config(2, "a"));
        let plan = flat(&s.tf.terraform(&["plan", "-no-color"]).ok().all());
        assert!(plan.contains("Cluster Is Stopped"), "{plan}");
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        assert_ne!(out.code, 0);
        assert!(flat(&out.all()).contains("Cluster Is Stopped"), "{}", out.all());
        assert_eq!(s.instance("coiled_cluster")["attributes"]["n_workers"], 1);
        // `-replace`, as the message says: a new cluster with the new count.
        let out =
            s.tf.terraform(&["apply", "-auto-approve", "-no-color", "-replace=coiled_cluster.k"]);
        assert_eq!(out.code, 0, "{}: {}", cli.version, out.all());
        assert_eq!(workers(&s), 2);
        s.assert_no_changes();
        // A replacing argument with a new count, once it is stopped again.
        stop(&s);
        s.set(&config(3, "b"));
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        assert_eq!(out.code, 0, "{}: {}", cli.version, out.all());
        assert_eq!(workers(&s), 3);
        s.assert_no_changes();
    }
}

/// No membership marked as the default: the workspace named as the user is chosen, as Coiled's client
/// chooses it (`Cloud.default_workspace`), and with none of that name the error lists the choices.
#[test]
fn regression_the_default_workspace_falls_back_to_the_users_name() {
    let config = "resource \"coiled_cluster\" \"c\" {\n  name      = \"fallback\"\n  software  = \"dask\"\n  n_workers = 0\n}\n";
    for cli in clis() {
        let s = Scenario::new(
            cli,
            &["--provision-delay", "0s", "--member-of", "team", "--no-default-workspace"],
            config,
        );
        s.apply();
        assert_eq!(s.instance("coiled_cluster")["attributes"]["workspace"], "alice");
        let memberships = s.server.get("/api/v2/user/me/memberships").1;
        assert!(
            memberships.as_array().unwrap().iter().all(|m| m["is_default_account"] == false),
            "{memberships}"
        );
    }
}
