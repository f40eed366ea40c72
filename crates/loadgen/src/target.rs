//! Where the load goes, and the rule that it only ever goes to this machine.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use anyhow::{bail, Context, Result};
use hyper::Uri;

/// A parsed `--target`: the socket to connect to and what to put in each request line.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The loopback socket the workers connect to.
    pub(crate) addr: SocketAddr,
    /// The `Host` header, as the user wrote it (`127.0.0.1:8080`, `localhost:8080`).
    pub(crate) authority: String,
    /// The origin-form request target (`/webhooks/mock`), parsed once and cloned per request.
    pub(crate) path: Uri,
}

/// Parses `url` and refuses it unless it names a loopback address.
///
/// The check is deliberately narrow: an IP literal must be loopback, the one name accepted
/// is `localhost` (which resolves through the hosts file, not DNS) and every address it
/// resolves to must be loopback too. Any other name is refused without being looked up,
/// so a typo or a hostile name can never turn this tool into a load source against
/// someone else's server.
pub(crate) fn loopback_target(url: &str) -> Result<Target> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("--target {url:?} is not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => bail!(
            "--target {url:?}: only http:// is supported (loadgen speaks plain HTTP/1.1 \
             to a local gateway), not {other}://"
        ),
        None => bail!(
            "--target {url:?} needs a scheme and a host, e.g. http://127.0.0.1:8080/webhooks/mock"
        ),
    }
    let authority = uri
        .authority()
        .with_context(|| format!("--target {url:?} has no host"))?;
    let host = authority.host();
    let port = authority.port_u16().unwrap_or(80);
    // `Uri::host` keeps the brackets of an IPv6 literal.
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');

    let addrs: Vec<SocketAddr> = if let Ok(ip) = bare_host.parse::<IpAddr>() {
        vec![SocketAddr::new(ip, port)]
    } else if bare_host.eq_ignore_ascii_case("localhost") {
        (bare_host, port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {bare_host}"))?
            .collect()
    } else {
        bail!(
            "refusing --target {url:?}: {host} is not a loopback address. loadgen only sends \
             load to this machine: use 127.0.0.1, [::1] or localhost"
        );
    };
    if let Some(elsewhere) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        let what = if bare_host.parse::<IpAddr>().is_ok() {
            format!("{host} is not a loopback address")
        } else {
            format!(
                "{host} resolves to {}, which is not a loopback address",
                elsewhere.ip()
            )
        };
        bail!(
            "refusing --target {url:?}: {what}. loadgen only sends load to this machine: \
             use 127.0.0.1, [::1] or localhost"
        );
    }
    let addr = *addrs
        .first()
        .with_context(|| format!("{bare_host} resolves to no address"))?;

    let path = uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse::<Uri>()
        .with_context(|| format!("--target {url:?} has an unusable path"))?;
    Ok(Target {
        addr,
        authority: authority.as_str().to_owned(),
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_ip_literals_and_localhost_are_accepted() {
        let t = loopback_target("http://127.0.0.1:8080/webhooks/mock").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.path, "/webhooks/mock");

        let t = loopback_target("http://127.9.9.9/x?y=1").unwrap();
        assert_eq!(t.addr.port(), 80, "the port defaults to http's");
        assert_eq!(t.path, "/x?y=1");

        let t = loopback_target("http://[::1]:9000/webhooks/mock").unwrap();
        assert_eq!(t.addr, "[::1]:9000".parse().unwrap());

        let t = loopback_target("http://localhost:8080/webhooks/mock").unwrap();
        assert!(t.addr.ip().is_loopback());
        assert_eq!(t.addr.port(), 8080);
    }

    #[test]
    fn targets_off_this_machine_are_refused_with_the_reason() {
        for url in [
            "http://10.0.0.1:8080/webhooks/mock",
            "http://192.168.1.20/webhooks/mock",
            "http://0.0.0.0:8080/webhooks/mock",
            "http://[2001:db8::1]:8080/webhooks/mock",
            "http://[::ffff:127.0.0.1]:8080/webhooks/mock",
            "http://example.com/webhooks/mock",
            "http://localhost.example.com/webhooks/mock",
        ] {
            let err = loopback_target(url).unwrap_err().to_string();
            assert!(err.contains("not a loopback address"), "{url}: {err}");
        }
    }

    #[test]
    fn urls_loadgen_cannot_speak_to_are_refused() {
        assert!(loopback_target("https://127.0.0.1/webhooks/mock")
            .unwrap_err()
            .to_string()
            .contains("only http://"));
        assert!(loopback_target("/webhooks/mock")
            .unwrap_err()
            .to_string()
            .contains("needs a scheme"));
        assert!(loopback_target("not a url").is_err());
    }
}
