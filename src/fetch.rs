//! A foundation below the stages: the token stage (discovery, JWKS) and the Graph stage both
//! fetch through it, and it imports neither.
//!
//! Bounded HTTP exchanges with the identity provider: GETs of documents (discovery, JWKS)
//! and, for Microsoft Graph, POSTs whose answers of any status are read.
//!
//! Every request has a deadline and a body cap, follows no redirect (a 3xx is an error, and
//! an injected client that follows one anyway is caught by the final-URL check), and must
//! stay on the host it was sent to.

use std::time::Duration;

use reqwest::Url;
use serde::de::DeserializeOwned;

/// Default deadline for one identity-provider request: 10 s.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a document could not be fetched. Never holds a body or a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("request to {host} failed: {reason}")]
    Transport { host: String, reason: String },
    #[error("{host} answered HTTP {status}")]
    Status { host: String, status: u16 },
    #[error("{host} answered with a redirect, which is not followed")]
    Redirect { host: String },
    #[error("{host} answered more than {max} bytes")]
    TooLarge { host: String, max: usize },
    #[error("{host} answered a document that is not the expected JSON")]
    InvalidJson { host: String },
}

/// An HTTP answer of any status, its body read within the cap. Its `Debug` shows the
/// body's length only: token endpoint answers hold access tokens.
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// `Retry-After` in whole seconds (the HTTP-date form is ignored).
    pub(crate) retry_after: Option<u64>,
    pub(crate) body: Vec<u8>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("retry_after", &self.retry_after)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A shared client plus the limits every identity-provider request obeys.
#[derive(Clone, Debug)]
pub(crate) struct Fetcher {
    pub(crate) client: reqwest::Client,
    pub(crate) timeout: Duration,
    pub(crate) max_body: usize,
}

pub(crate) fn host_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => "?".to_owned(),
    }
}

/// A short reason for a transport failure; never a URL, body or header.
fn transport_reason(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        e.without_url().to_string()
    }
}

impl Fetcher {
    /// The default client: rustls, no redirects, no proxy surprises beyond the system's.
    pub(crate) fn default_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .build()
    }

    /// GETs `url` and parses the JSON body as `T`.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, url: &Url) -> Result<T, FetchError> {
        let body = self.get_bytes(url).await?;
        serde_json::from_slice(&body).map_err(|_| FetchError::InvalidJson { host: host_of(url) })
    }

    /// GETs `url` and returns at most `max_body` bytes of body, all within the timeout
    /// (which [`exchange`](Self::exchange) applies).
    pub(crate) async fn get_bytes(&self, url: &Url) -> Result<Vec<u8>, FetchError> {
        let answer = self
            .exchange(self.client.get(url.clone()), url, self.timeout)
            .await?;
        if !(200..300).contains(&answer.status) {
            return Err(FetchError::Status {
                host: host_of(url),
                status: answer.status,
            });
        }
        Ok(answer.body)
    }

    /// Sends `request` (built for `url`) and reads the answer whatever its status: the
    /// body within `max_body`, all within `timeout`. Redirects and answers from another
    /// host are errors.
    pub(crate) async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        url: &Url,
        timeout: Duration,
    ) -> Result<Answer, FetchError> {
        tokio::time::timeout(timeout, self.exchange_unbounded(request, url, timeout))
            .await
            .unwrap_or_else(|_| {
                Err(FetchError::Transport {
                    host: host_of(url),
                    reason: "timed out".into(),
                })
            })
    }

    async fn exchange_unbounded(
        &self,
        request: reqwest::RequestBuilder,
        url: &Url,
        timeout: Duration,
    ) -> Result<Answer, FetchError> {
        let host = host_of(url);
        let transport = |e: reqwest::Error| FetchError::Transport {
            host: host.clone(),
            reason: transport_reason(e),
        };
        let mut response = request.timeout(timeout).send().await.map_err(transport)?;
        let status = response.status();
        if status.is_redirection() || host_of(response.url()) != host {
            return Err(FetchError::Redirect { host });
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let too_large = || FetchError::TooLarge {
            host: host.clone(),
            max: self.max_body,
        };
        if response
            .content_length()
            .is_some_and(|len| len > self.max_body as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > self.max_body {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status: status.as_u16(),
            retry_after,
            body,
        })
    }
}
