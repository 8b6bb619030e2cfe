//! The one HTTP client for URLs that apps point the gateway at. It refuses
//! loopback, private, link-local and other non-public addresses after DNS
//! resolution (unless the operator allows them), caps response size and
//! time, and follows no redirect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::{OutboundSettings, client_builder, read_capped};
use crate::domain::uri::is_localhost_name;
use crate::error_text::with_causes;

/// An SSRF-guarded HTTP client.
#[derive(Debug, Clone)]
pub struct GuardedClient {
    client: reqwest::Client,
    settings: Arc<OutboundSettings>,
}

/// Why a document could not be fetched: the detail, for the log (the app
/// is told a fixed reason).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// Why the guarded client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the outbound HTTP client: {0}")]
pub struct OutboundError(String);

impl GuardedClient {
    /// Builds the client.
    pub fn new(settings: OutboundSettings) -> Result<Self, OutboundError> {
        let mut builder =
            client_builder(settings.timeout).dns_resolver(Arc::new(GuardedResolver {
                allow_private: settings.allow_private_networks,
            }));
        for pem in &settings.extra_root_certificates {
            let certificate = reqwest::Certificate::from_pem(pem)
                .map_err(|e| OutboundError(format!("bad root certificate: {e}")))?;
            builder = builder.add_root_certificate(certificate);
        }
        let client = builder.build().map_err(|e| OutboundError(e.to_string()))?;
        Ok(Self {
            client,
            settings: Arc::new(settings),
        })
    }

    /// GETs `url` with every guard applied and returns the body.
    pub async fn get(&self, url: &Url) -> Result<Vec<u8>, FetchError> {
        Ok(self.get_with_headers(url).await?.0)
    }

    /// GETs `url` with every guard applied and returns the body and the
    /// response headers.
    pub async fn get_with_headers(
        &self,
        url: &Url,
    ) -> Result<(Vec<u8>, reqwest::header::HeaderMap), FetchError> {
        if let Some(ip) = literal_ip(url) {
            if !self.settings.allow_private_networks && !is_public(ip) {
                return Err(FetchError(format!("{ip} is not a public address")));
            }
        }
        let response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| FetchError(with_causes(&e)))?;
        if !response.status().is_success() {
            return Err(FetchError(format!("answered HTTP {}", response.status())));
        }
        let headers = response.headers().clone();
        read_capped(response, self.settings.max_response_bytes)
            .await
            .map(|body| (body, headers))
            .map_err(|e| FetchError(e.to_string()))
    }
}

/// Whether `url`'s host is not public by itself, before any DNS: an address
/// literal that is not public, or `localhost` or a name under it. The guarded
/// client refuses such a URL unless private networks are allowed.
#[must_use]
pub fn names_private_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => is_localhost_name(domain),
        Some(_) => literal_ip(url).is_some_and(|ip| !is_public(ip)),
        None => false,
    }
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(_) => None,
    }
}

/// Resolves names, then drops every address that is not public.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| allow_private || is_public(addr.ip()))
                .collect();
            if resolved.is_empty() {
                let message = format!("{host} resolves to no public address");
                return Err(Box::new(std::io::Error::other(message)) as _);
            }
            Ok(Box::new(resolved.into_iter()) as Addrs)
        })
    }
}

/// Whether an address is routable on the public internet.
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
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking (RFC 2544)
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    // Forms that carry an IPv4 address reach that address: they are as
    // public as it is.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded(s[6], s[7])); // NAT64 (RFC 6052)
    }
    if s[0] == 0x2002 {
        return is_public_v4(embedded(s[1], s[2])); // 6to4 (RFC 3056)
    }
    if s[..6] == [0; 6] {
        return is_public_v4(embedded(s[6], s[7])); // IPv4-compatible (RFC 4291)
    }
    // Only global unicast (2000::/3) reaches the Internet; everything
    // else (loopback, unspecified, site-local fec0::/10, unique local,
    // link-local, multicast, IPv4-translated ::ffff:0:0:0/96, discard-only,
    // local-use NAT64) is private here, whatever later RFCs assign in it.
    let global_unicast = (s[0] & 0xe000) == 0x2000;
    global_unicast
        && !((s[0] == 0x2001 && s[1] == 0) // Teredo: hides the IPv4 it reaches
            || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // benchmarking (RFC 5180)
            || (s[0] == 0x2001 && (s[1] & 0xffe0) == 0x0020) // ORCHIDv2 (RFC 7343)
            || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation (RFC 3849)
            || (s[0] & 0xfff0) == 0x3ff0) // documentation (RFC 9637)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            // IPv4 addresses carried in IPv6.
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "::7f00:1",
            "::a00:1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "100::1",
            // Site-local (deprecated, still routed inside some networks)
            // and IPv4-translated (SIIT) forms.
            "fec0::1",
            "feff::1",
            "::ffff:0:7f00:1",
            "::ffff:0:5db8:d822",
            "2001:2::1",
            "2001:20::1",
            "3fff::1",
            "5f00::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
