//! EXPOSE's port specs as BuildKit reads them: `[ip:][hostPort:]port[-end][/proto]`.
//! Only the container side is exposed (the rest is a `docker run -p`
//! spec BuildKit tolerates with a lint warning); a range is each port.

/// The `port/proto` keys a spec exposes, or BuildKit's message.
pub(super) fn container_ports(raw: &str) -> Result<Vec<String>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (ip, host, container) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (port, proto) = container.split_once('/').unwrap_or((container, ""));
    if port.is_empty() {
        return Err(format!("invalid port: {raw:?}: no port specified"));
    }
    let proto = match proto.to_ascii_lowercase().as_str() {
        "" => "tcp".to_string(),
        p @ ("tcp" | "udp" | "sctp") => p.to_string(),
        _ => return Err(format!("invalid port: {raw:?}: invalid proto: {proto}")),
    };
    let bare_ip = ip
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .unwrap_or(&ip);
    if !ip.is_empty() && bare_ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    let (first, last) = range(port).ok_or_else(|| format!("invalid containerPort: {port}"))?;
    if !host.is_empty() {
        let (hf, hl) = range(host).ok_or_else(|| format!("invalid hostPort: {host}"))?;
        if last - first != hl - hf && last != first {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {port} and {host}"
            ));
        }
    }
    Ok((first..=last).map(|p| format!("{p}/{proto}")).collect())
}

/// `N` or `N-M` (M ≥ N), each 0..=65535.
fn range(s: &str) -> Option<(u32, u32)> {
    let number = |n: &str| n.parse::<u32>().ok().filter(|p| *p <= 65535);
    match s.split_once('-') {
        None => number(s).map(|p| (p, p)),
        Some((a, b)) if a == b => number(a).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (number(a)?, number(b)?);
            (b >= a).then_some((a, b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::container_ports;

    #[test]
    fn specs_expose_their_container_side() {
        let p = |s| container_ports(s).unwrap().join(" ");
        assert_eq!(p("80"), "80/tcp");
        assert_eq!(p("53/UDP"), "53/udp");
        assert_eq!(p("9000-9002/tcp"), "9000/tcp 9001/tcp 9002/tcp");
        assert_eq!(p("1234:1234/tcp"), "1234/tcp");
        assert_eq!(p("0.0.0.0:1234-1235:3333-3334/tcp"), "3333/tcp 3334/tcp");
        assert_eq!(p("[::1]:80:80"), "80/tcp");
        let e = |s| container_ports(s).unwrap_err();
        assert_eq!(
            e("0.0.0.0:1234-1235:/tcp"),
            r#"invalid port: "0.0.0.0:1234-1235:/tcp": no port specified"#
        );
        assert_eq!(e("localhost:80:80"), "invalid IP address: localhost");
        assert_eq!(e("80/xyz"), r#"invalid port: "80/xyz": invalid proto: xyz"#);
        assert_eq!(e("9002-9000"), "invalid containerPort: 9002-9000");
    }
}
