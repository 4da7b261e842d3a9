//! Which names and addresses a request may be addressed to (its `Host`): loopback names and
//! addresses, the address the server was bound to, and the names given with `--allow-host`.
//! The guard middleware refuses the rest (see `guard.rs` for why); the banner shows the list.

use std::net::{IpAddr, Ipv6Addr};

/// Where a request may be addressed: loopback, the bound address, and the `--allow-host` names.
#[derive(Debug, Clone)]
pub struct Hosts {
    /// The address the server listens on, when it is a specific one (not 0.0.0.0 or ::).
    bound: Option<IpAddr>,
    /// `--allow-host` names and addresses, lower-cased, without port.
    extra: Vec<String>,
}

/// A `Host` (or URI authority) split into its host part, lower-cased, without brackets, port
/// or trailing dot; `None` when it is not a well-formed authority.
pub fn host_part(authority: &str) -> Option<String> {
    let authority = authority.trim();
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            // `[v6]` then nothing or `:port`.
            let (inside, after) = rest.split_once(']')?;
            inside.parse::<Ipv6Addr>().ok()?;
            match after {
                "" => (inside, None),
                _ => (inside, Some(after.strip_prefix(':')?)),
            }
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"-._".contains(&b);
    let ok = !host.is_empty() && (host.parse::<Ipv6Addr>().is_ok() || host.bytes().all(plain));
    ok.then_some(host)
}

/// Whether a host part names the loopback interface: `localhost` and its subdomains (RFC 6761
/// reserves them for loopback, and browsers resolve them so without asking DNS), 127.0.0.0/8,
/// `::1` (and 127.x.x.x mapped into IPv6).
pub fn is_loopback(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().is_loopback(),
        Err(_) => false,
    }
}

impl Hosts {
    /// From the bound address and `--allow-host` values (names or addresses, a port allowed and
    /// ignored); an error names a value that is neither.
    pub fn new(bound: IpAddr, allow: &[String]) -> Result<Self, String> {
        let mut extra = Vec::new();
        for value in allow.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
            match host_part(value) {
                Some(host) => extra.push(host),
                None => {
                    return Err(format!(
                        "--allow-host {value:?} is not a host name or address (example: \
                         --allow-host host.docker.internal)"
                    ));
                }
            }
        }
        Ok(Hosts {
            bound: (!bound.is_unspecified()).then_some(bound),
            extra,
        })
    }

    /// Whether a request addressed to `authority` is served.
    pub fn allows(&self, authority: &str) -> bool {
        let Some(host) = host_part(authority) else {
            return false;
        };
        is_loopback(&host)
            || self.extra.contains(&host)
            || self
                .bound
                .is_some_and(|ip| host.parse::<IpAddr>().is_ok_and(|h| h == ip))
    }

    /// What is served, for the banner and the refusal.
    pub fn describe(&self) -> String {
        let mut names = vec!["localhost, *.localhost, 127.0.0.0/8, [::1]".to_owned()];
        if let Some(ip) = self.bound.filter(|ip| !ip.is_loopback()) {
            names.push(match ip {
                IpAddr::V6(v6) => format!("[{v6}]"),
                IpAddr::V4(v4) => v4.to_string(),
            });
        }
        names.extend(self.extra.iter().cloned());
        names.join(", ")
    }
}
