//! One probe of a link's target: `HEAD` (then `GET` when the server refuses `HEAD` with 405 or
//! 501), at most 5 redirects, within `LINK_HEALTH_TIMEOUT_SECONDS`. 2xx, 3xx and 429 (the
//! server is there, only busy) are healthy; any other 4xx, a 5xx, a timeout or a connection
//! error is a failure.
//!
//! SSRF guard: the targets are user-supplied, and the probe runs inside the worker's network.
//! Unless `LINK_HEALTH_ALLOW_PRIVATE=true`, every address a host name resolves to that is not
//! public (loopback, private, link-local, shared, documentation, multicast, ...) is dropped by
//! the resolver, and an IP-literal target or redirect to one is refused before it is
//! requested, so no hop of a check can reach them. No proxy is used (a proxy would resolve
//! the names itself).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;
use reqwest::{Client, Method, StatusCode};

/// Redirects a probe follows.
const MAX_REDIRECTS: usize = 5;
/// Longest error text kept (the column holds 512 characters).
const MAX_ERROR: usize = 500;

/// True for an address anyone on the internet could reach (what `Ipv4Addr::is_global` will
/// say once it is stable, give or take reserved ranges).
#[must_use]
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local, fc00::/7.
        || (first & 0xfe00) == 0xfc00
        // Link-local, fe80::/10.
        || (first & 0xffc0) == 0xfe80
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8))
}

/// A resolver that keeps only public addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("refused: {host} resolves to no public address").into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// Why a URL may not be requested: an IP literal that is not public.
fn refused(url: &reqwest::Url) -> Option<String> {
    let ip = match url.host()? {
        url::Host::Ipv4(ip) => IpAddr::V4(ip),
        url::Host::Ipv6(ip) => IpAddr::V6(ip),
        url::Host::Domain(_) => return None,
    };
    (!is_public(ip)).then(|| format!("refused: {ip} is not a public address"))
}

/// The probing client.
#[derive(Clone)]
pub struct Prober {
    client: Client,
    allow_private: bool,
}

impl Prober {
    /// # Errors
    /// When the TLS backend cannot be set up.
    pub fn new(timeout: Duration, allow_private: bool) -> Result<Self, reqwest::Error> {
        let policy = Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            if !allow_private && let Some(reason) = refused(attempt.url()) {
                return attempt.error(reason);
            }
            attempt.follow()
        });
        let mut builder = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(policy)
            .no_proxy()
            .user_agent(concat!("curtain-link-health/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(Self {
            client: builder.build()?,
            allow_private,
        })
    }

    /// Probes `target`: `Ok` when healthy, else what failed.
    pub async fn probe(&self, target: &str) -> Result<(), String> {
        let url = reqwest::Url::parse(target).map_err(|e| format!("invalid URL: {e}"))?;
        if !self.allow_private
            && let Some(reason) = refused(&url)
        {
            return Err(reason);
        }
        let mut status = self.send(Method::HEAD, url.clone()).await?;
        if status == StatusCode::METHOD_NOT_ALLOWED || status == StatusCode::NOT_IMPLEMENTED {
            status = self.send(Method::GET, url).await?;
        }
        if status.is_success() || status.is_redirection() || status == StatusCode::TOO_MANY_REQUESTS
        {
            Ok(())
        } else {
            Err(format!("HTTP {}", status.as_u16()))
        }
    }

    async fn send(&self, method: Method, url: reqwest::Url) -> Result<StatusCode, String> {
        // The body is never read: dropping the response closes the stream.
        self.client
            .request(method, url)
            .send()
            .await
            .map(|resp| resp.status())
            .map_err(|e| describe(&e))
    }
}

/// The error with its causes, cut to [`MAX_ERROR`] characters.
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else if e.is_redirect() {
        "redirect refused".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text.chars().take(MAX_ERROR).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn ip_literals_that_are_not_public_are_refused() {
        let refused_url = |u: &str| refused(&reqwest::Url::parse(u).unwrap());
        assert_eq!(
            refused_url("http://169.254.169.254/latest/meta-data").as_deref(),
            Some("refused: 169.254.169.254 is not a public address")
        );
        assert!(refused_url("http://[::1]:8080/").is_some());
        assert!(refused_url("https://example.com/").is_none());
        assert!(refused_url("http://93.184.216.34/").is_none());
    }
}
