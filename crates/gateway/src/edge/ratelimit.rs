//! Rate limits of the storefront's payment routes. Checkout may create a PSP object and
//! confirm reads the PSP, and both are public, so each call takes a token from the
//! caller's bucket (by client address) and from the cart's bucket. An empty bucket is a
//! 429 `RATE_LIMITED` with `Retry-After`.
//!
//! The client is the connection's peer address, or, behind a reverse proxy, the last
//! address of `server.rate_limit.client_ip_header`. IPv6 clients are counted by their
//! /64, which is what one subscriber holds.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, RawPathParams, Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use psp_core::limit::{KeyedLimiter, Rate, Refused};
use serde_json::json;
use uuid::Uuid;

use super::app::AppState;
use super::error::AppError;
use crate::config::RateLimitConfig;

/// The storefront's buckets.
#[derive(Debug)]
pub struct StorefrontLimits {
    enabled: bool,
    clients: KeyedLimiter<IpAddr>,
    carts: KeyedLimiter<Uuid>,
    client_ip_header: Option<HeaderName>,
}

impl StorefrontLimits {
    /// The buckets `server.rate_limit` configures.
    pub fn new(cfg: &RateLimitConfig) -> Self {
        let client = Rate {
            burst: cfg.client_burst,
            per_minute: cfg.client_per_minute,
        };
        let cart = Rate {
            burst: cfg.cart_burst,
            per_minute: cfg.cart_per_minute,
        };
        Self {
            enabled: cfg.enabled,
            clients: KeyedLimiter::new(client, cfg.max_tracked),
            carts: KeyedLimiter::new(cart, cfg.max_tracked),
            // Validated with the configuration.
            client_ip_header: cfg
                .client_ip_header
                .as_deref()
                .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok()),
        }
    }

    /// The client a request counts against.
    fn client(&self, req: &Request) -> IpAddr {
        let forwarded = self.client_ip_header.as_ref().and_then(|name| {
            req.headers()
                .get_all(name)
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
        });
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        client_key(
            forwarded
                .or(peer)
                .unwrap_or(IpAddr::from(Ipv6Addr::UNSPECIFIED)),
        )
    }
}

/// IPv4 addresses as they are; IPv6 by their /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Middleware of the checkout and confirm routes.
pub(crate) async fn storefront(
    State(state): State<AppState>,
    params: RawPathParams,
    req: Request,
    next: Next,
) -> Response {
    let limits = &state.limits;
    if !limits.enabled {
        return next.run(req).await;
    }
    let route = if req.uri().path().ends_with("/confirm") {
        "confirm"
    } else {
        "checkout"
    };
    let client = limits.client(&req);
    let refused = match limits.clients.try_acquire(&client) {
        Err(refused) => Some(("client", refused)),
        // A path that names no cart gets its 404 from the handler; only real cart ids
        // get buckets.
        Ok(()) => params
            .iter()
            .find(|(name, _)| *name == "cart_id")
            .and_then(|(_, value)| Uuid::parse_str(value).ok())
            .and_then(|cart| limits.carts.try_acquire(&cart).err())
            .map(|refused| ("cart", refused)),
    };
    match refused {
        None => next.run(req).await,
        Some((scope, refused)) => {
            state.services.metrics.rate_limited(route, scope);
            tracing::debug!(%client, scope, route, "storefront call rate-limited");
            too_many(scope, refused)
        }
    }
}

fn too_many(scope: &'static str, refused: Refused) -> Response {
    let secs = refused.retry_after.as_secs();
    let message = match scope {
        "client" => "too many payment calls from this client; try again later",
        _ => "too many payment calls for this cart; try again later",
    };
    let mut resp = AppError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        message,
    )
    .with_details(json!({ "limit": scope, "retryAfterSeconds": secs }))
    .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(header: Option<&str>) -> StorefrontLimits {
        StorefrontLimits::new(&RateLimitConfig {
            client_ip_header: header.map(str::to_string),
            ..RateLimitConfig::default()
        })
    }

    fn request(peer: &str, forwarded: &[&str]) -> Request {
        let mut req = Request::new(axum::body::Body::empty());
        req.extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        for f in forwarded {
            req.headers_mut()
                .append("x-forwarded-for", HeaderValue::from_str(f).unwrap());
        }
        req
    }

    #[test]
    fn the_client_is_the_peer_unless_a_proxy_header_is_configured() {
        let req = request("10.0.0.9:5000", &["1.2.3.4, 5.6.7.8"]);
        assert_eq!(
            limits(None).client(&req),
            "10.0.0.9".parse::<IpAddr>().unwrap()
        );
        // The proxy appends the address it saw: the last one is the only one it vouches for.
        assert_eq!(
            limits(Some("x-forwarded-for")).client(&req),
            "5.6.7.8".parse::<IpAddr>().unwrap()
        );
        let req = request("10.0.0.9:5000", &["1.2.3.4", "9.9.9.9"]);
        assert_eq!(
            limits(Some("x-forwarded-for")).client(&req),
            "9.9.9.9".parse::<IpAddr>().unwrap()
        );
        // A header that is no address falls back to the peer.
        let req = request("10.0.0.9:5000", &["garbage"]);
        assert_eq!(
            limits(Some("x-forwarded-for")).client(&req),
            "10.0.0.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a = client_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = client_key("2001:db8:1:2:bbbb::2".parse().unwrap());
        let c = client_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            client_key("::ffff:1.2.3.4".parse().unwrap()),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
    }
}
