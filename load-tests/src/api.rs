//! The few Tapis Pods API calls the scenarios make.

use anyhow::Context as _;
use serde_json::Value;

use crate::stack::Target;

/// Header carrying the caller's token.
const TOKEN_HEADER: &str = "X-Tapis-Token";

impl Target {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /v3/pods`; fails unless the gateway answers 200.
    pub async fn create_pod(&self, body: &Value) -> anyhow::Result<()> {
        let resp = self
            .http
            .post(self.url("/v3/pods"))
            .header(TOKEN_HEADER, &self.token)
            .json(body)
            .send()
            .await
            .context("POST /v3/pods")?;
        let status = resp.status();
        // Read the whole answer: the request is only complete for the client then.
        let text = resp.bytes().await.context("reading the POST answer")?;
        anyhow::ensure!(status.is_success(), "POST /v3/pods answered {status}: {}", String::from_utf8_lossy(&text));
        Ok(())
    }

    /// The pod's displayed status, or None once it is gone (404).
    pub async fn pod_status(&self, pod_id: &str) -> anyhow::Result<Option<String>> {
        let resp = self
            .http
            .get(self.url(&format!("/v3/pods/{pod_id}")))
            .header(TOKEN_HEADER, &self.token)
            .send()
            .await
            .with_context(|| format!("GET /v3/pods/{pod_id}"))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let v: Value = resp.json().await.with_context(|| format!("reading GET /v3/pods/{pod_id}"))?;
        anyhow::ensure!(status.is_success(), "GET /v3/pods/{pod_id} answered {status}: {v}");
        Ok(v["result"]["status"].as_str().map(str::to_string))
    }

    /// `DELETE /v3/pods/{id}`.
    pub async fn delete_pod(&self, pod_id: &str) -> anyhow::Result<()> {
        let resp = self
            .http
            .delete(self.url(&format!("/v3/pods/{pod_id}")))
            .header(TOKEN_HEADER, &self.token)
            .send()
            .await
            .with_context(|| format!("DELETE /v3/pods/{pod_id}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        anyhow::ensure!(status.is_success(), "DELETE /v3/pods/{pod_id} answered {status}: {text}");
        Ok(())
    }
}

impl Target {
    /// Any call as the target's user: the answer's status and JSON body (Null when the body
    /// is not JSON). Only transport failures are errors.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let mut req = self.http.request(method.clone(), self.url(path)).header(TOKEN_HEADER, &self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let bytes = resp.bytes().await.with_context(|| format!("reading the answer to {method} {path}"))?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// Like [`Target::call`], but fails unless the answer is a success.
    pub async fn call_ok(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let (status, v) = self.call(method.clone(), path, body).await?;
        anyhow::ensure!(status.is_success(), "{method} {path} answered {status}: {v}");
        Ok(v)
    }

    /// Displayed status of every pod of the caller (`GET /v3/pods`), by pod id.
    pub async fn pod_statuses(&self) -> anyhow::Result<std::collections::HashMap<String, String>> {
        let v = self.call_ok(reqwest::Method::GET, "/v3/pods", None).await?;
        let pods = v["result"].as_array().cloned().unwrap_or_default();
        Ok(pods
            .iter()
            .filter_map(|p| Some((p["pod_id"].as_str()?.to_string(), p["status"].as_str()?.to_string())))
            .collect())
    }
}
