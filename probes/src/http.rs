//! `http://` and `https://`: ready when a request gets a status in the accepted range (default
//! 200–399; redirects are not followed, a 3xx counts as an answer), and the body contains the
//! expected text if one is set. reqwest over rustls (ring).

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};

use crate::redact::{redact_url, Secret};
use crate::spec::SpecError;
use crate::target::HttpTarget;
use crate::{Probe, ProbeError, ProbeFuture};

pub struct HttpProbe {
    target: HttpTarget,
    client: reqwest::Client,
    method: reqwest::Method,
    headers: reqwest::header::HeaderMap,
    timeout: Duration,
}

impl HttpProbe {
    pub fn new(target: HttpTarget, timeout: Duration) -> Result<HttpProbe, SpecError> {
        crate::install_crypto_provider();
        let bad = |reason: String| SpecError::Url {
            url: redact_url(&target.url),
            reason,
        };
        let method = reqwest::Method::from_bytes(target.method.as_bytes())
            .map_err(|_| bad(format!("{:?} is not an HTTP method", target.method)))?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &target.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| bad(format!("{name:?} is not a header name")))?;
            let mut value = HeaderValue::from_str(value.expose())
                .map_err(|_| bad(format!("the value of header {name} is not valid")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(HttpProbe {
            target,
            client,
            method,
            headers,
            timeout,
        })
    }

    fn secrets(&self) -> Vec<Secret> {
        let mut s: Vec<Secret> = self.target.headers.iter().map(|(_, v)| v.clone()).collect();
        if let Ok(u) = url::Url::parse(&self.target.url) {
            if let Some(p) = u.password() {
                s.push(Secret::new(p));
            }
        }
        s
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let secrets = self.secrets();
        let secrets: Vec<&Secret> = secrets.iter().collect();
        let fail = |e: reqwest::Error| ProbeError::from_chain(&e.without_url(), &secrets);
        let resp = self
            .client
            .request(self.method.clone(), &self.target.url)
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(fail)?;
        let status = resp.status();
        let (lo, hi) = self.target.status;
        if !(lo..=hi).contains(&status.as_u16()) {
            return Err(ProbeError::NotReady(format!(
                "HTTP {status} (accepted {})",
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            )));
        }
        if let Some(needle) = &self.target.body_contains {
            let body = resp.text().await.map_err(fail)?;
            if !body.contains(needle.as_str()) {
                return Err(ProbeError::NotReady(format!(
                    "HTTP {status}, but the body does not contain {needle:?}"
                )));
            }
        }
        Ok(())
    }
}

impl Probe for HttpProbe {
    fn describe(&self) -> String {
        format!("http {} {}", self.method, redact_url(&self.target.url))
    }

    fn attempt_timeout(&self) -> Duration {
        self.timeout
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }
}
