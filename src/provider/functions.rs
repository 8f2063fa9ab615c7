//! Provider-defined functions (Terraform 1.8 and later), pure and offline: the firewall rows a list
//! of ingress rules makes, exactly as the resources show them, and the canonical form of a CIDR
//! block.

use tfplugin::function::{Function, FunctionError, Param};
use tfplugin::value::{Type, Value};

use super::ingress::RuleSet;

/// `provider::coiled::firewall_rules(ingress)`.
pub struct FirewallRules;

/// `provider::coiled::canonical_cidr(text)`.
pub struct CanonicalCidr;

fn ingress_type() -> Type {
    Type::list(Type::object([("ports", Type::list(Type::Number)), ("cidr", Type::String)]))
}

fn row_type() -> Type {
    Type::list(Type::object([
        ("protocol", Type::String),
        ("port", Type::Number),
        ("source", Type::String),
    ]))
}

impl Function for FirewallRules {
    fn name(&self) -> &'static str {
        "firewall_rules"
    }
    fn summary(&self) -> &'static str {
        "The firewall rows a list of ingress rules makes."
    }
    fn description(&self) -> &'static str {
        "Takes a list of `{ ports, cidr }` objects, as the `ingress` blocks of \
            `coiled_backend_options` and `coiled_cluster` hold them, and returns the rows \
            Coiled's firewall will hold: one `{ protocol, port, source }` per port and source, \
            protocol `tcp`, blocks canonical (host bits cleared), duplicates merged, in the order \
            a cluster's `firewall_rules` shows them. State stores the `ingress` blocks alone (of \
            `coiled_backend_options`, and of a cluster that sets its own): this gives their rows. \
            It reads nothing from Coiled, so it works in `check` blocks, outputs and tests before \
            anything is applied."
    }
    fn params(&self) -> Vec<Param> {
        vec![Param {
            name: "ingress",
            ty: ingress_type(),
            description: "A list of `{ ports = [..], cidr = \"..\" }` rules.",
        }]
    }
    fn returns(&self) -> Type {
        row_type()
    }
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let rules = args[0].as_elements().unwrap_or_default();
        let bad = |text: String| FunctionError::argument(0, text);
        let mut parsed = Vec::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            let cidr = rule.get("cidr").and_then(Value::as_str).unwrap_or_default();
            let port = |p: &Value| match p {
                Value::Number(n) => coiled_firewall::parse_port(n.as_str()).map(i64::from).ok(),
                _ => None,
            };
            let elements = rule.get("ports").and_then(Value::as_elements).unwrap_or_default();
            let ports: Vec<i64> =
                elements.iter().map(|p| port(p).ok_or(p)).collect::<Result<_, _>>().map_err(
                    |p| {
                        let p = p.as_number().map_or_else(|| "null".to_string(), |n| n.to_string());
                        bad(format!("ingress[{i}].ports: {p} is not a port from 1 to 65535"))
                    },
                )?;
            if ports.is_empty() {
                return Err(bad(format!("ingress[{i}].ports is empty: name at least one port")));
            }
            let c = coiled_firewall::parse_cidr(cidr)
                .map_err(|e| bad(format!("ingress[{i}].cidr: {e}")))?;
            let made = coiled_firewall::rule_from_wire(&ports, &c.canonical());
            parsed.push(made.ok_or_else(|| bad(format!("ingress[{i}] is not a valid rule")))?);
        }
        Ok(RuleSet::new(&parsed).rows_value())
    }
}

impl Function for CanonicalCidr {
    fn name(&self) -> &'static str {
        "canonical_cidr"
    }
    fn summary(&self) -> &'static str {
        "A CIDR block in the canonical form Coiled's firewall holds."
    }
    fn description(&self) -> &'static str {
        "Returns the block with its host bits cleared (`10.1.0.2/16` gives `10.1.0.0/16`), IPv6 \
            in its compressed form: the spelling `firewall_rules` shows. An invalid block is an \
            error on the argument that says why."
    }
    fn params(&self) -> Vec<Param> {
        vec![Param {
            name: "cidr",
            ty: Type::String,
            description: "An IPv4 or IPv6 block, e.g. `10.1.0.0/16`.",
        }]
    }
    fn returns(&self) -> Type {
        Type::String
    }
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let text = args[0].as_str().unwrap_or_default();
        coiled_firewall::parse_cidr(text)
            .map(|c| Value::string(c.canonical()))
            .map_err(|e| FunctionError::argument(0, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(ports: &[i64], cidr: &str) -> Value {
        Value::object([
            ("ports", Value::List(ports.iter().map(|p| Value::int(*p)).collect())),
            ("cidr", Value::string(cidr)),
        ])
    }

    fn firewall_rules(rules: Vec<Value>) -> Result<Value, FunctionError> {
        FirewallRules.call(&[Value::List(rules)])
    }

    #[test]
    fn rows_are_merged_and_canonical() {
        let rules = vec![rule(&[8787, 8786], "10.1.0.2/16"), rule(&[8786], "10.1.0.0/16")];
        let out = firewall_rules(rules).unwrap();
        let rows = out.as_elements().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].get("source").and_then(Value::as_str), Some("10.1.0.0/16"));
        let rules = vec![rule(&[8786], "10.1.0.0/16"), rule(&[8786], "10.1.0.300/16")];
        let err = firewall_rules(rules).unwrap_err();
        assert_eq!(err.argument, Some(0));
        assert!(err.text.starts_with("ingress[1].cidr:"), "{}", err.text);
        let err = firewall_rules(vec![rule(&[0], "10.0.0.0/8")]).unwrap_err();
        assert!(err.text.contains("ports"));
        assert_eq!(err.text, "ingress[0].ports: 0 is not a port from 1 to 65535");
        let half = Value::object([
            (
                "ports",
                Value::List(vec![Value::Number(tfplugin::value::Number::parse("1.5").unwrap())]),
            ),
            ("cidr", Value::string("10.0.0.0/8")),
        ]);
        let err = firewall_rules(vec![rule(&[80], "10.0.0.0/8"), half]).unwrap_err();
        assert_eq!(err.text, "ingress[1].ports: 1.5 is not a port from 1 to 65535");
    }

    #[test]
    fn cidrs_are_canonical() {
        let canonical = |text: &str| CanonicalCidr.call(&[Value::string(text)]);
        assert_eq!(canonical("10.1.0.2/16").unwrap(), Value::string("10.1.0.0/16"));
        assert_eq!(canonical("nope").unwrap_err().argument, Some(0));
    }
}
