//! Provider-defined functions through Terraform 1.8 and later (`provider::coiled::…`); older CLIs do
//! not know the syntax, and the provider keeps working for them (every other suite runs on 1.0.3).

use serde_json::json;

use crate::common::{Scenario, clis, flat};

const FUNCTIONS: &str = r#"
locals {
  ingress = [
    { ports = [8787, 8786], cidr = "10.1.0.2/16" },
    { ports = [8786], cidr = "10.1.0.0/16" },
    { ports = [8787], cidr = "10.32.0.0/16" },
  ]
}
output "rows" { value = provider::coiled::firewall_rules(local.ingress) }
output "canonical" { value = provider::coiled::canonical_cidr("2001:DB8::1/32") }
"#;

#[test]
fn functions_compute_what_the_resources_show_offline() {
    for cli in clis().iter().filter(|c| c.at_least(1, 8)) {
        let s = Scenario::new(cli, &[], FUNCTIONS);
        s.reset_stats();
        s.apply();
        assert_eq!(
            s.output("rows"),
            json!([
                {"protocol": "tcp", "port": 8787, "source": "10.1.0.0/16"},
                {"protocol": "tcp", "port": 8786, "source": "10.1.0.0/16"},
                {"protocol": "tcp", "port": 8787, "source": "10.32.0.0/16"}
            ]),
            "merged, canonical, in the order firewall_rules shows"
        );
        assert_eq!(s.output("canonical"), "2001:db8::/32");
        assert_eq!(s.api_requests(), 0, "functions read nothing from Coiled");
        s.assert_no_changes();

        s.set(&FUNCTIONS.replace("10.32.0.0/16", "10.32.0.300/16"));
        let out = s.tf.terraform(&["plan", "-no-color"]);
        let text = flat(&out.all());
        assert!(out.code != 0 && text.contains("Invalid function argument") && text.contains("ingress[2].cidr"), "{text}");
        s.set(&FUNCTIONS.replace("2001:DB8::1/32", "not-a-block"));
        let text = flat(&s.tf.terraform(&["plan", "-no-color"]).all());
        assert!(text.contains("Invalid function argument") && text.contains("not-a-block"), "{text}");
    }
}
