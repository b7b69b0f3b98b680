//! The `Host` header rule of every HTTP server a node or the observer runs
//! (SPEC "API access"). DNS rebinding makes a browser send requests to a
//! local server under the attacker's *name*, so a name is refused unless
//! it is `localhost` or the operator listed it (`--allow-host NAME`). An
//! IP literal cannot be rebound and is always admitted: Prometheus
//! scraping a container's address, `powchain observe http://10.88.0.5:…`
//! or a browser on a Kubernetes Service IP all send one.

/// Which `Host` header values a server answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostRule {
    /// Extra names, lower case (`--allow-host`, repeatable).
    names: Vec<String>,
}

/// A name `--allow-host` refuses: not a DNS name of at most 253 bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("allow-host {0:?}: not a host name (letters, digits, '-' and '.', at most 253 bytes)")]
pub struct BadHostName(pub String);

impl HostRule {
    /// The rule admitting IP literals, `localhost` and `names`.
    ///
    /// # Errors
    /// [`BadHostName`] for a name that is not a DNS name.
    pub fn with_names<S: AsRef<str>>(names: &[S]) -> Result<HostRule, BadHostName> {
        let names = names
            .iter()
            .map(|n| {
                let n = n.as_ref();
                let ok = !n.is_empty()
                    && n.len() <= 253
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
                if ok {
                    Ok(n.to_ascii_lowercase())
                } else {
                    Err(BadHostName(n.to_string()))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(HostRule { names })
    }

    /// Whether a `Host` header value (`name[:port]`, `[v6]:port`) may be
    /// answered. The port is not checked: a rebinding attacker's page
    /// sends the right one.
    #[must_use]
    pub fn allows(&self, host: &str) -> bool {
        let name = match host.rsplit_once(':') {
            Some((n, port)) if !n.ends_with(':') && port.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => host,
        };
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<std::net::IpAddr>().is_ok()
            || bare.eq_ignore_ascii_case("localhost")
            || self.names.iter().any(|n| n.eq_ignore_ascii_case(bare))
    }

    /// Whether a request is refused for its `Host` header's raw value
    /// (`None`: no header, as HTTP/1.0 allows, which is answered). The
    /// one check every server of the node and the observer runs.
    #[must_use]
    pub fn refuses(&self, host: Option<&[u8]>) -> bool {
        host.is_some_and(|h| !std::str::from_utf8(h).is_ok_and(|h| self.allows(h)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_need_listing_and_ip_literals_do_not() {
        let rule = HostRule::with_names(&["node0", "Observer.Testnet.svc"]).unwrap();
        for ok in [
            "127.0.0.1:8332",
            "10.88.0.5:18632",
            "10.88.0.5",
            "[::1]:1",
            "[fe80::1]",
            "::1",
            "localhost:8332",
            "LOCALHOST",
            "node0:18632",
            "observer.testnet.svc",
        ] {
            assert!(rule.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:8332",
            "node1",
            "127.0.0.1.evil.example",
            "",
            "localhost.evil",
        ] {
            assert!(!rule.allows(bad), "{bad}");
        }
        assert!(!HostRule::default().allows("node0"));
        assert!(HostRule::with_names(&["bad name"]).is_err());
        assert!(HostRule::with_names(&[""]).is_err());
    }
}
