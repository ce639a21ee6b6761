//! Entra clouds: where discovery, keys and Microsoft Graph live, and the issuer forms.

use std::net::IpAddr;

use reqwest::Url;

/// An Entra cloud (national cloud, or a custom authority for sovereign deployments and
/// tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cloud {
    pub(crate) authority: String,
    pub(crate) v2_issuer_base: String,
    pub(crate) v1_issuer_base: String,
    pub(crate) graph: String,
    pub(crate) extra_key_hosts: Vec<String>,
}

impl Cloud {
    /// The global Azure cloud: `login.microsoftonline.com`, v1 issuer `sts.windows.net`.
    pub fn global() -> Self {
        Self {
            authority: "https://login.microsoftonline.com".into(),
            v2_issuer_base: "https://login.microsoftonline.com".into(),
            v1_issuer_base: "https://sts.windows.net".into(),
            graph: "https://graph.microsoft.com".into(),
            extra_key_hosts: Vec::new(),
        }
    }

    /// Azure US Government: `login.microsoftonline.us`.
    pub fn us_government() -> Self {
        Self {
            authority: "https://login.microsoftonline.us".into(),
            v2_issuer_base: "https://login.microsoftonline.us".into(),
            v1_issuer_base: "https://login.microsoftonline.us".into(),
            graph: "https://graph.microsoft.us".into(),
            extra_key_hosts: Vec::new(),
        }
    }

    /// Azure operated by 21Vianet (China): `login.partner.microsoftonline.cn`, keys also
    /// served from `login.chinacloudapi.cn`.
    pub fn china() -> Self {
        Self {
            authority: "https://login.partner.microsoftonline.cn".into(),
            v2_issuer_base: "https://login.partner.microsoftonline.cn".into(),
            v1_issuer_base: "https://sts.chinacloudapi.cn".into(),
            graph: "https://microsoftgraph.chinacloudapi.cn".into(),
            extra_key_hosts: vec!["login.chinacloudapi.cn".into()],
        }
    }

    /// A custom authority base URL, e.g. a sovereign cloud or a local Entra look-alike.
    /// Both issuer forms default to the authority (`{authority}/{tid}/v2.0`,
    /// `{authority}/{tid}/`), as does the Microsoft Graph base.
    ///
    /// A trailing slash is ignored. `http://` authorities are refused by
    /// [`GovernorBuilder::build`](crate::GovernorBuilder::build) unless
    /// [`dangerous_allow_http_loopback`](crate::GovernorBuilder::dangerous_allow_http_loopback)
    /// is set and the host is a loopback address.
    pub fn custom(authority: impl Into<String>) -> Self {
        let authority = authority.into().trim_end_matches('/').to_owned();
        Self {
            v2_issuer_base: authority.clone(),
            v1_issuer_base: authority.clone(),
            graph: authority.clone(),
            authority,
            extra_key_hosts: Vec::new(),
        }
    }

    /// Overrides the base of v2 issuers (`{base}/{tid}/v2.0`).
    pub fn with_v2_issuer_base(mut self, base: impl Into<String>) -> Self {
        self.v2_issuer_base = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// Overrides the base of v1 issuers (`{base}/{tid}/`).
    pub fn with_v1_issuer_base(mut self, base: impl Into<String>) -> Self {
        self.v1_issuer_base = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// Overrides the Microsoft Graph base URL.
    pub fn with_graph_base(mut self, base: impl Into<String>) -> Self {
        self.graph = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// The authority base URL (no trailing slash).
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The Microsoft Graph base URL (no trailing slash).
    pub fn graph_base(&self) -> &str {
        &self.graph
    }

    /// The v2 issuer of a tenant: `{base}/{tid}/v2.0`.
    pub fn v2_issuer(&self, tenant: &str) -> String {
        self.v2_issuer_parts(tenant).concat()
    }

    /// The v1 issuer of a tenant: `{base}/{tid}/` (with the trailing slash).
    pub fn v1_issuer(&self, tenant: &str) -> String {
        self.v1_issuer_parts(tenant).concat()
    }

    /// [`v2_issuer`](Self::v2_issuer) in pieces, for comparing without building it.
    pub(crate) fn v2_issuer_parts<'a>(&'a self, tenant: &'a str) -> [&'a str; 4] {
        [&self.v2_issuer_base, "/", tenant, "/v2.0"]
    }

    /// [`v1_issuer`](Self::v1_issuer) in pieces, for comparing without building it.
    pub(crate) fn v1_issuer_parts<'a>(&'a self, tenant: &'a str) -> [&'a str; 4] {
        [&self.v1_issuer_base, "/", tenant, "/"]
    }
}

/// Whether the concatenation of `a` equals that of `b`, byte for byte, without building
/// either (the token path compares issuers this way, allocation-free).
pub(crate) fn concat_eq(a: &[&str], b: &[&str]) -> bool {
    let (mut a, mut b) = (
        a.iter().map(|s| s.as_bytes()),
        b.iter().map(|s| s.as_bytes()),
    );
    let (mut x, mut y): (&[u8], &[u8]) = (&[], &[]);
    loop {
        // The next non-empty piece of each side; both exhausted together means equal.
        while x.is_empty() {
            let Some(next) = a.next() else { break };
            x = next;
        }
        while y.is_empty() {
            let Some(next) = b.next() else { break };
            y = next;
        }
        if x.is_empty() || y.is_empty() {
            return x.is_empty() && y.is_empty();
        }
        let n = x.len().min(y.len());
        if x[..n] != y[..n] {
            return false;
        }
        (x, y) = (&x[n..], &y[n..]);
    }
}

/// Checks a base URL the crate will send requests to (an authority, a Microsoft Graph
/// base): `https`, or plain `http` to a loopback host only when `allow_http_loopback`
/// (the `dangerous_allow_http_loopback()` switch of the builders); no query, fragment or
/// credentials. The error is the reason, for the caller's own configuration error.
pub(crate) fn check_base_url(raw: &str, allow_http_loopback: bool) -> Result<Url, &'static str> {
    let url = Url::parse(raw).map_err(|_| "not a URL")?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("must not carry a query, fragment or credentials");
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if !allow_http_loopback => Err(
            "plain http: use https, or dangerous_allow_http_loopback() for a loopback test server",
        ),
        "http" if !is_loopback(&url) => Err("plain http is allowed only for loopback hosts"),
        "http" => Ok(url),
        _ => Err("scheme must be https"),
    }
}

/// True for `localhost` and loopback IP literals.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

impl Default for Cloud {
    fn default() -> Self {
        Self::global()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenations_compare_whatever_their_split() {
        let words = [
            "",
            "https://login",
            ".microsoftonline.com/",
            "t",
            "/v2.0",
            "/v2.1",
        ];
        // Every split of every pair of short concatenations, against `concat()`.
        for i in 0..words.len() {
            for j in 0..words.len() {
                for k in 0..words.len() {
                    let a = [words[i], words[j], words[k]];
                    let joined = a.concat();
                    for cut in 0..=joined.len() {
                        let b = [&joined[..cut], &joined[cut..]];
                        assert!(concat_eq(&a, &b), "{a:?} vs {b:?}");
                        let longer = [b[0], b[1], "x"];
                        assert!(!concat_eq(&a, &longer), "{a:?} vs {longer:?}");
                        assert!(!concat_eq(&longer, &a));
                    }
                    for other in 0..words.len() {
                        let c = [words[i], words[other], words[k]];
                        assert_eq!(concat_eq(&a, &c), joined == c.concat(), "{a:?} {c:?}");
                    }
                }
            }
        }
        assert!(concat_eq(&[], &[""]));
        assert!(!concat_eq(&["a"], &[]));
    }

    #[test]
    fn issuer_forms_per_cloud() {
        let t = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        assert_eq!(
            Cloud::global().v1_issuer(t),
            format!("https://sts.windows.net/{t}/")
        );
        assert_eq!(
            Cloud::global().v2_issuer(t),
            format!("https://login.microsoftonline.com/{t}/v2.0")
        );
        assert_eq!(
            Cloud::us_government().v1_issuer(t),
            format!("https://login.microsoftonline.us/{t}/")
        );
        assert_eq!(
            Cloud::china().v1_issuer(t),
            format!("https://sts.chinacloudapi.cn/{t}/")
        );
        assert_eq!(
            Cloud::custom("http://127.0.0.1:9/").v2_issuer(t),
            format!("http://127.0.0.1:9/{t}/v2.0")
        );
    }
}
