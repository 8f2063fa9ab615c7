//! Behaviour as the public `coiled` client shows it: replays after a gateway error, WebSocket timeouts.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Scenario, clis, flat};

#[test]
fn regression_a_create_answered_502_after_it_happened_is_adopted_once() {
    let config = "resource \"coiled_cluster\" \"c\" {\n  software = \"dask\"\n  name      = \"gated\"\n  n_workers = 1\n}\n";
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], config);
        s.server.put("/_local/faults", &json!({"create_then_502": 1}));
        s.apply();
        s.assert_no_changes();
        let posts = s.server.get("/_local/requests").1.as_array().unwrap().iter().filter(|r| r["method"] == "POST").count();
        assert_eq!(posts, 1, "the create is not sent again once the lookup finds it");
        assert_eq!(s.server.running_named("gated").len(), 1);
    }
}

#[test]
fn the_backend_options_write_is_bounded_by_its_timeouts_block() {
    let config = r#"resource "coiled_backend_options" "team" {
  backend               = "aws"
  aws_access_key_id     = "AKIAEXAMPLE"
  aws_secret_access_key = "SECRET-SENTINEL-1"
  timeouts {
    create = "2s"
  }
}
"#;
    for cli in clis() {
        let s = Scenario::new(cli, &[], config);
        s.tf.terraform(&["plan", "-no-color"]).ok();
        s.server.put("/_local/faults", &json!({"latency_ms": 4000}));
        let started = Instant::now();
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        s.server.put("/_local/faults", &json!({}));
        assert_ne!(out.code, 0, "{}", out.all());
        assert!(started.elapsed() < Duration::from_secs(40), "took {:?}", started.elapsed());
        let text = flat(&out.all());
        assert!(text.contains("Unable to Set Backend Options") && (text.contains("timeout") || text.contains("gave up")), "{text}");
    }
}
