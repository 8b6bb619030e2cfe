//! The HTTP client the trace exporter sends spans with
//! ([`crate::logging::traces`]): the gateway's reqwest and policy
//! ([`super::client_builder`]), so that the export needs no HTTP or TLS
//! stack of its own, and the collector's answer read under a cap.

use std::time::Duration;

use async_trait::async_trait;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

use super::read_capped;

/// Largest collector answer read (an export answer is a few bytes).
const MAX_ANSWER_BYTES: usize = 65_536;

/// Sends OTLP export requests. Cloning is cheap (shared).
#[derive(Debug, Clone)]
pub struct CollectorClient {
    http: reqwest::Client,
}

impl CollectorClient {
    /// A client whose requests each take at most `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: super::client_builder(timeout).build()?,
        })
    }
}

#[async_trait]
impl HttpClient for CollectorClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let response = self.http.execute(request).await?;
        let mut answer = Response::builder().status(response.status());
        if let Some(headers) = answer.headers_mut() {
            headers.clone_from(response.headers());
        }
        let body = read_capped(response, MAX_ANSWER_BYTES).await?;
        Ok(answer.body(Bytes::from(body))?)
    }
}
