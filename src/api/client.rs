//! [`ApiClient`]: a typed client of a node's HTTP API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

use super::types::{BlockTree, ErrorBody, Status};

/// A failed API call.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No answer (refused, timed out, closed).
    #[error("no answer from {api}: {source}")]
    Transport {
        /// the address
        api: String,
        /// the transport error
        source: Box<ureq::Error>,
    },
    /// The node answered with an error status and `{"error"}`.
    #[error("{api}{path}: {status}: {message}")]
    Refused {
        /// the address
        api: String,
        /// the route
        path: String,
        /// HTTP status
        status: u16,
        /// the node's words
        message: String,
    },
    /// The body is not the JSON expected.
    #[error("{api}{path}: unexpected body: {message}")]
    Body {
        /// the address
        api: String,
        /// the route
        path: String,
        /// why
        message: String,
    },
    /// The node's cookie could not be read (POSTs need it).
    #[error("cannot read the API cookie in {dir}: {source}")]
    Cookie {
        /// the data dir
        dir: PathBuf,
        /// the read error
        source: std::io::Error,
    },
}

/// A client of one node's API: one reused agent (keep-alive), 10 s
/// timeouts for reads and 120 s for POSTs (a `/generate` of many blocks),
/// and the token from the node's `api.cookie` for POSTs.
#[derive(Clone)]
pub struct ApiClient {
    api: String,
    agent: ureq::Agent,
    token: Option<String>,
    data_dir: Option<PathBuf>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient").field("api", &self.api).finish()
    }
}

impl ApiClient {
    /// A client of the node at `api` (`host:port`), without a token.
    #[must_use]
    pub fn new(api: &str) -> ApiClient {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(120)))
            .timeout_connect(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .into();
        ApiClient {
            api: api.to_string(),
            agent,
            token: None,
            data_dir: None,
        }
    }

    /// The same client, reading the POST token from `data_dir/api.cookie`
    /// at each POST (a restarted node writes a new one).
    #[must_use]
    pub fn with_data_dir(mut self, data_dir: &Path) -> ApiClient {
        self.data_dir = Some(data_dir.to_path_buf());
        self
    }

    /// The same client with a fixed token.
    #[must_use]
    pub fn with_token(mut self, token: &str) -> ApiClient {
        self.token = Some(token.to_string());
        self
    }

    /// The node's address.
    #[must_use]
    pub fn api(&self) -> &str {
        &self.api
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    fn transport(&self, e: ureq::Error) -> ApiError {
        ApiError::Transport {
            api: self.api.clone(),
            source: Box::new(e),
        }
    }

    fn stream_broken(&self, why: &str) -> ApiError {
        ApiError::Body {
            api: self.api.clone(),
            path: "/events".into(),
            message: why.to_string(),
        }
    }

    fn read<T: DeserializeOwned>(
        &self,
        path: &str,
        mut resp: ureq::http::Response<ureq::Body>,
    ) -> Result<T, ApiError> {
        let status = resp.status();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| self.transport(e))?;
        if !status.is_success() {
            let message = serde_json::from_str::<ErrorBody>(&text)
                .map(|b| b.error)
                .unwrap_or(text);
            return Err(ApiError::Refused {
                api: self.api.clone(),
                path: path.to_string(),
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_str(&text).map_err(|e| ApiError::Body {
            api: self.api.clone(),
            path: path.to_string(),
            message: e.to_string(),
        })
    }

    /// GET `path` as `T`.
    ///
    /// # Errors
    /// [`ApiError`].
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let resp = self
            .agent
            .get(&self.url(path))
            .config()
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .call()
            .map_err(|e| self.transport(e))?;
        self.read(path, resp)
    }

    /// GET `path` as text (e.g. `/metrics`).
    ///
    /// # Errors
    /// [`ApiError`].
    pub fn get_text(&self, path: &str) -> Result<String, ApiError> {
        let mut resp = self
            .agent
            .get(&self.url(path))
            .call()
            .map_err(|e| self.transport(e))?;
        let status = resp.status();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| self.transport(e))?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(ApiError::Refused {
                api: self.api.clone(),
                path: path.to_string(),
                status: status.as_u16(),
                message: text,
            })
        }
    }

    /// `GET /tree` over heights `from..=to` (each optional).
    ///
    /// # Errors
    /// [`ApiError`].
    pub fn tree(&self, from: Option<u32>, to: Option<u32>) -> Result<BlockTree, ApiError> {
        self.tree_with(from, to, true)
    }

    /// `GET /tree`, with `collapse=false` when `collapse` is false (every
    /// best-chain block of the window listed).
    ///
    /// # Errors
    /// [`ApiError`].
    pub fn tree_with(
        &self,
        from: Option<u32>,
        to: Option<u32>,
        collapse: bool,
    ) -> Result<BlockTree, ApiError> {
        let mut q = Vec::new();
        if !collapse {
            q.push("collapse=false".to_string());
        }
        if let Some(f) = from {
            q.push(format!("from_height={f}"));
        }
        if let Some(t) = to {
            q.push(format!("to_height={t}"));
        }
        let path = if q.is_empty() {
            "/tree".to_string()
        } else {
            format!("/tree?{}", q.join("&"))
        };
        self.get(&path)
    }

    /// `GET /events`: calls `on_event(kind, data)` for every server-sent
    /// event until the node closes the stream or `on_event` returns
    /// `false`. No timeout while the stream is open (the node sends a
    /// keep-alive comment every 15 s). Lines longer than 1 MiB end the
    /// stream with an error.
    ///
    /// # Errors
    /// [`ApiError`] when the node cannot be reached, refuses, or the
    /// stream breaks.
    pub fn events(&self, mut on_event: impl FnMut(&str, &str) -> bool) -> Result<(), ApiError> {
        use std::io::{BufRead, Read};
        let resp = self
            .agent
            .get(&self.url("/events"))
            .config()
            .timeout_global(None)
            .build()
            .call()
            .map_err(|e| self.transport(e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(ApiError::Refused {
                api: self.api.clone(),
                path: "/events".into(),
                status: status.as_u16(),
                message: String::new(),
            });
        }
        let mut reader = std::io::BufReader::new(resp.into_body().into_reader());
        let (mut kind, mut data) = (String::new(), String::new());
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut reader)
                .take(1 << 20)
                .read_until(b'\n', &mut line)
                .map_err(|e| self.stream_broken(&e.to_string()))?;
            if n == 0 {
                return Ok(());
            }
            if line.last() != Some(&b'\n') && n == 1 << 20 {
                return Err(self.stream_broken("an event line over 1 MiB"));
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            if text.is_empty() {
                if !data.is_empty()
                    && !on_event(if kind.is_empty() { "message" } else { &kind }, &data)
                {
                    return Ok(());
                }
                kind.clear();
                data.clear();
            } else if let Some(v) = text.strip_prefix("event:") {
                kind = v.trim_start().to_string();
            } else if let Some(v) = text.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
    }

    /// `GET /status`.
    ///
    /// # Errors
    /// [`ApiError`].
    pub fn status(&self) -> Result<Status, ApiError> {
        self.get("/status")
    }

    /// POST `body` to `path` with the token, as `T`.
    ///
    /// # Errors
    /// [`ApiError`] (401 without a token).
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        let token = match (&self.token, &self.data_dir) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(dir)) => {
                Some(super::read_cookie(dir).map_err(|source| ApiError::Cookie {
                    dir: dir.clone(),
                    source,
                })?)
            }
            (None, None) => None,
        };
        let mut req = self.agent.post(&self.url(path));
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let resp = req.send_json(body).map_err(|e| self.transport(e))?;
        self.read(path, resp)
    }

    /// One un-labelled value from `/metrics` (e.g. `powchain_stale_blocks`).
    ///
    /// # Errors
    /// [`ApiError`]; `Ok(None)` when the metric is absent.
    pub fn metric(&self, name: &str) -> Result<Option<f64>, ApiError> {
        let text = self.get_text("/metrics")?;
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|v| v.trim().parse::<f64>().ok()))
    }
}
