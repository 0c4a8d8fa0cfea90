//! `ProviderHttp` over ureq: the calls to identity providers (discovery, JWKS, token, GitHub's
//! API). A time limit per request (`OAUTH_HTTP_TIMEOUT`), no redirect followed (a provider's
//! 3xx is an answer like any other, so a request never lands on another host), TLS verified
//! against the system's roots, and only URLs that `outbound_url_ok` allows.

use std::sync::Arc;
use std::time::Duration;

use auth_domain::oauth::outbound_url_ok;
use auth_domain::ports::{HttpAnswer, ProviderHttp};

/// The largest answer read from a provider.
const MAX_BODY: u64 = 1024 * 1024;

#[derive(Debug)]
pub struct UreqProviderHttp {
    agent: ureq::Agent,
}

impl UreqProviderHttp {
    pub fn new(timeout: Duration) -> Result<UreqProviderHttp, String> {
        let tls = native_tls::TlsConnector::new().map_err(|e| format!("TLS setup: {e}"))?;
        let agent = ureq::AgentBuilder::new()
            .timeout(timeout)
            .redirects(0)
            // No pooled connections: a provider may close an idle one at any time (Node closes
            // them after 5 s), and ureq does not retry a POST on a connection found closed.
            .max_idle_connections(0)
            .tls_connector(Arc::new(tls))
            .user_agent("xclade-auth")
            .build();
        Ok(UreqProviderHttp { agent })
    }

    fn send(&self, request: ureq::Request, body: Option<&str>) -> Result<HttpAnswer, String> {
        let sent = match body {
            Some(body) => request.set("content-type", "application/x-www-form-urlencoded").send_string(body),
            None => request.call(),
        };
        let response = match sent {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            // The kind only: a transport error's text may repeat the URL, never a header or form.
            Err(ureq::Error::Transport(t)) => return Err(format!("transport error: {}", t.kind())),
        };
        let status = response.status();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(response.into_reader(), MAX_BODY), &mut text)
            .map_err(|e| format!("reading the answer: {e}"))?;
        Ok(HttpAnswer { status, body: text })
    }

    fn request(&self, method: &str, url: &str, headers: &[(&str, &str)]) -> Result<ureq::Request, String> {
        if !outbound_url_ok(url) {
            return Err("refused: not an https URL".into());
        }
        Ok(headers.iter().fold(self.agent.request(method, url), |r, (name, value)| r.set(name, value)))
    }
}

impl ProviderHttp for UreqProviderHttp {
    fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<HttpAnswer, String> {
        self.send(self.request("GET", url, headers)?, None)
    }

    fn post_form(&self, url: &str, headers: &[(&str, &str)], body: &str) -> Result<HttpAnswer, String> {
        self.send(self.request("POST", url, headers)?, Some(body))
    }
}
