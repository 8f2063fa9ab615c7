//! The network real clusters live in, built from network namespaces, veth pairs and nftables, all in
//! namespaces named `{prefix}-…` that this module creates and removes:
//! - `{prefix}-router`: joins the VPC (172.31.0.0/16) and the public segment (198.18.0.0/15) on one
//!   bridge, and the lab's networks on veth pairs. It forwards between them, drops traffic from the
//!   internet to private addresses, and source-NATs traffic from the peered networks (VPN, office) to
//!   public addresses, as the internet would.
//! - `{prefix}-c{id}`: one per cluster, its scheduler's "instance", with a private and a public address
//!   and the cluster's security group as an nftables ruleset.
//! - `{prefix}-vpn` (10.1.0.10), `{prefix}-office` (10.32.0.10) and `{prefix}-internet` (192.0.2.10):
//!   the seed's networks, as hosts to run clients in (`ip netns exec {prefix}-vpn …`).
//!
//! No address of the lab is configured outside its namespaces, and nothing routes out of them.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// A lab host network: (name, host address, gateway address, prefix length).
pub const HOSTS: [(&str, Ipv4Addr, Ipv4Addr, u8); 3] = [
    ("vpn", Ipv4Addr::new(10, 1, 0, 10), Ipv4Addr::new(10, 1, 0, 1), 16),
    ("office", Ipv4Addr::new(10, 32, 0, 10), Ipv4Addr::new(10, 32, 0, 1), 16),
    ("internet", Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 1), 24),
];

/// The router's addresses on the VPC and the public segment.
const VPC_GATEWAY: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 1);
const PUBLIC_GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// Runs a command; its stderr is the error.
pub fn run(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut cmd = Command::new(args[0]);
    cmd.args(&args[1..]).stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", args[0]))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("`{}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// The lab.
#[derive(Debug)]
pub struct Lab {
    /// Namespace prefix.
    pub prefix: String,
    /// Whether the VPN, office and internet hosts exist.
    pub hosts: bool,
}

/// A cluster's instance on the network.
#[derive(Clone, Debug)]
pub struct Instance {
    /// Its namespace.
    pub ns: String,
    /// Private address (VPC).
    pub private_ip: Ipv4Addr,
    /// Public address.
    pub public_ip: Ipv4Addr,
}

impl Lab {
    /// The router namespace.
    pub fn router(&self) -> String {
        format!("{}-router", self.prefix)
    }

    /// A cluster's namespace.
    pub fn cluster_ns(&self, id: i64) -> String {
        format!("{}-c{id}", self.prefix)
    }

    /// Namespaces named with this prefix, left over or current.
    pub fn existing(prefix: &str) -> Vec<String> {
        let list = run(&["ip", "netns", "list"], None).unwrap_or_default();
        list.lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('-')))
            .map(str::to_string)
            .collect()
    }

    /// Builds the router (and the lab hosts when asked), removing any namespace a previous run with the
    /// same prefix left behind.
    pub fn start(prefix: &str, hosts: bool) -> Result<Lab, String> {
        for ns in Lab::existing(prefix) {
            tracing::warn!(namespace = %ns, "removing a namespace a previous run left behind");
            let _ = run(&["ip", "netns", "del", &ns], None);
        }
        let lab = Lab { prefix: prefix.to_string(), hosts };
        let r = lab.router();
        let vpc = format!("{VPC_GATEWAY}/16");
        let public = format!("{PUBLIC_GATEWAY}/15");
        let steps: Vec<Vec<&str>> = vec![
            vec!["ip", "netns", "add", &r],
            vec!["ip", "-n", &r, "link", "set", "lo", "up"],
            vec!["ip", "-n", &r, "link", "add", "lan", "type", "bridge"],
            vec!["ip", "-n", &r, "link", "set", "lan", "up"],
            vec!["ip", "-n", &r, "addr", "add", &vpc, "dev", "lan"],
            vec!["ip", "-n", &r, "addr", "add", &public, "dev", "lan"],
            vec!["ip", "netns", "exec", &r, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
        ];
        for step in steps {
            run(&step, None)?;
        }
        if hosts {
            for (name, addr, gateway, len) in HOSTS {
                lab.add_host(name, addr, gateway, len)?;
            }
        }
        run(&["ip", "netns", "exec", &r, "nft", "-f", "-"], Some(&router_ruleset()))?;
        Ok(lab)
    }

    fn add_host(
        &self,
        name: &str,
        addr: Ipv4Addr,
        gateway: Ipv4Addr,
        len: u8,
    ) -> Result<(), String> {
        let (r, ns) = (self.router(), format!("{}-{name}", self.prefix));
        let (host, gw) = (format!("{addr}/{len}"), format!("{gateway}/{len}"));
        let gateway = gateway.to_string();
        let steps: Vec<Vec<&str>> = vec![
            vec!["ip", "netns", "add", &ns],
            vec![
                "ip", "-n", &r, "link", "add", name, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ],
            vec!["ip", "-n", &r, "addr", "add", &gw, "dev", name],
            vec!["ip", "-n", &r, "link", "set", name, "up"],
            vec!["ip", "-n", &ns, "link", "set", "lo", "up"],
            vec!["ip", "-n", &ns, "link", "set", "eth0", "up"],
            vec!["ip", "-n", &ns, "addr", "add", &host, "dev", "eth0"],
            vec!["ip", "-n", &ns, "route", "add", "default", "via", &gateway],
            // The scheduler runs unprivileged and listens on Coiled's port, 443 by default.
            vec![
                "ip",
                "netns",
                "exec",
                &ns,
                "sysctl",
                "-qw",
                "net.ipv4.ip_unprivileged_port_start=0",
            ],
        ];
        for step in steps {
            run(&step, None)?;
        }
        Ok(())
    }

    /// The addresses cluster `id` gets: private in the VPC, public in the public segment.
    pub fn addresses(id: i64) -> (Ipv4Addr, Ipv4Addr) {
        let (hi, lo) = (((id / 250) % 250) as u8, (id % 250 + 2) as u8);
        (Ipv4Addr::new(172, 31, hi, lo), Ipv4Addr::new(198, 18, hi, lo))
    }

    /// Makes cluster `id`'s instance: its namespace on the bridge, with both addresses.
    pub fn add_cluster(&self, id: i64) -> Result<Instance, String> {
        let (r, ns) = (self.router(), self.cluster_ns(id));
        let (private_ip, public_ip) = Lab::addresses(id);
        let (link, private, public) =
            (format!("c{id}"), format!("{private_ip}/16"), format!("{public_ip}/15"));
        let gateway = VPC_GATEWAY.to_string();
        let steps: Vec<Vec<&str>> = vec![
            vec!["ip", "netns", "add", &ns],
            vec![
                "ip", "-n", &r, "link", "add", &link, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ],
            vec!["ip", "-n", &r, "link", "set", &link, "master", "lan", "up"],
            vec!["ip", "-n", &ns, "link", "set", "lo", "up"],
            vec!["ip", "-n", &ns, "link", "set", "eth0", "up"],
            vec!["ip", "-n", &ns, "addr", "add", &private, "dev", "eth0"],
            vec!["ip", "-n", &ns, "addr", "add", &public, "dev", "eth0"],
            vec!["ip", "-n", &ns, "route", "add", "default", "via", &gateway],
            // The scheduler runs unprivileged and listens on Coiled's port, 443 by default.
            vec![
                "ip",
                "netns",
                "exec",
                &ns,
                "sysctl",
                "-qw",
                "net.ipv4.ip_unprivileged_port_start=0",
            ],
        ];
        for step in steps {
            run(&step, None)?;
        }
        Ok(Instance { ns, private_ip, public_ip })
    }

    /// Puts `ruleset` in force in a cluster's namespace, replacing the one there.
    pub fn set_firewall(&self, ns: &str, ruleset: &str) -> Result<(), String> {
        let _ = run(&["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "coiled"], None);
        run(&["ip", "netns", "exec", ns, "nft", "-f", "-"], Some(ruleset)).map(|_| ())
    }

    /// The ruleset in force in a cluster's namespace, as `nft` lists it.
    pub fn firewall(&self, ns: &str) -> Result<String, String> {
        run(&["ip", "netns", "exec", ns, "nft", "list", "table", "inet", "coiled"], None)
    }

    /// Removes cluster `id`'s namespace (its veth pair goes with it).
    pub fn remove_cluster(&self, id: i64) {
        let _ = run(&["ip", "netns", "del", &self.cluster_ns(id)], None);
    }

    /// Removes every namespace of the lab.
    pub fn shutdown(&self) {
        for ns in Lab::existing(&self.prefix) {
            let _ = run(&["ip", "netns", "del", &ns], None);
        }
    }
}

/// The router's rules: no way from the internet to private addresses; the peered networks reach
/// public addresses through source NAT, as from the internet.
fn router_ruleset() -> String {
    "table inet lab {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname \"lan\" ct state new drop
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname \"internet\" ip daddr 172.31.0.0/16 drop
  }
}
table ip labnat {
  chain postrouting {
    type nat hook postrouting priority 100;
    ip saddr { 10.1.0.0/16, 10.32.0.0/16 } ip daddr 198.18.0.0/15 snat to 198.18.0.1
  }
}
"
    .to_string()
}

/// A cluster's security group as an nftables ruleset: one accept per (protocol, port, source) row,
/// established traffic and loopback (the cluster's own processes) allowed, every other new connection
/// dropped. Outbound, the cluster's code may open connections to its own processes alone: not to
/// other clusters, the lab's hosts or the API's relay.
pub fn security_group(rules: &[coiled_firewall::Rule]) -> String {
    let mut out = String::from(
        "table inet coiled {\n  chain input {\n    type filter hook input priority 0; policy \
            drop;\n    ct state established,related accept\n    iif \"lo\" accept\n",
    );
    for row in coiled_firewall::firewall_rows(rules) {
        let family = if row.source.contains(':') { "ip6" } else { "ip" };
        out.push_str(&format!(
            "    {} dport {} {family} saddr {} accept\n",
            row.protocol, row.port, row.source
        ));
    }
    out.push_str(
        "  }\n  chain output {\n    type filter hook output priority 0; policy drop;\n    \
        ct state established,related accept\n    oif \"lo\" accept\n  }\n}\n",
    );
    out
}

/// A TCP listener whose socket lives in namespace `ns` (made on a thread that enters it, so the rest
/// of the process stays where it is).
pub fn listen_in(ns: &str, addr: std::net::SocketAddr) -> Result<std::net::TcpListener, String> {
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("entering {ns}: {e}"))?;
            let listener = std::net::TcpListener::bind(addr)
                .map_err(|e| format!("binding {addr} in {ns}: {e}"))?;
            listener.set_nonblocking(true).map_err(|e| e.to_string())?;
            Ok(listener)
        })
        .join()
        .map_err(|_| "the namespace thread panicked".to_string())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_security_group_accepts_exactly_its_rows() {
        let rules = vec![
            coiled_firewall::rule_from_wire(&[8786], "10.1.0.0/16").unwrap(),
            coiled_firewall::rule_from_wire(&[8787], "10.32.0.0/16").unwrap(),
        ];
        let text = security_group(&rules);
        assert!(text.contains("policy drop;"));
        assert!(text.contains("tcp dport 8786 ip saddr 10.1.0.0/16 accept"));
        assert!(text.contains("tcp dport 8787 ip saddr 10.32.0.0/16 accept"));
        assert_eq!(
            text.matches(" accept\n").count(),
            6,
            "two rows, established and loopback both ways:\n{text}"
        );
        assert!(
            text.contains("chain output {\n    type filter hook output priority 0; policy drop;"),
            "{text}"
        );
        assert_eq!(
            Lab::addresses(100),
            (Ipv4Addr::new(172, 31, 0, 102), Ipv4Addr::new(198, 18, 0, 102))
        );
    }
}
