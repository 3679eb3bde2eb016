//! A sparse networking entry: each set field replaces the same field of the deeper entry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Networking, Protocol};

/// Every field of [`Networking`], optional. Unset fields keep the deeper layer's value (or
/// the [`Networking::default`] value for an entry no deeper layer has).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkingLayer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_allow_list: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tapis_auth: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tapis_auth_response_headers: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tapis_auth_allowed_users: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tapis_auth_return_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tapis_ui_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tapis_ui_uri_redirect: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tapis_ui_uri_description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors_allow_origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors_allow_methods: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors_allow_headers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors_allow_credentials: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors_max_age: Option<u32>,
}

/// The field names of a networking entry, as provenance paths use them.
pub const NETWORKING_FIELDS: [&str; 16] = [
    "protocol",
    "port",
    "url",
    "ip_allow_list",
    "tapis_auth",
    "tapis_auth_response_headers",
    "tapis_auth_allowed_users",
    "tapis_auth_return_path",
    "tapis_ui_uri",
    "tapis_ui_uri_redirect",
    "tapis_ui_uri_description",
    "cors_allow_origins",
    "cors_allow_methods",
    "cors_allow_headers",
    "cors_allow_credentials",
    "cors_max_age",
];

fn set<T: Clone>(dst: &mut T, src: &Option<T>, name: &'static str, applied: &mut Vec<&'static str>) {
    if let Some(v) = src {
        *dst = v.clone();
        applied.push(name);
    }
}

impl NetworkingLayer {
    /// Writes every set field into `net`; returns the names of the fields it wrote.
    pub fn apply_to(&self, net: &mut Networking) -> Vec<&'static str> {
        let mut a = Vec::new();
        set(&mut net.protocol, &self.protocol, "protocol", &mut a);
        set(&mut net.port, &self.port, "port", &mut a);
        set(&mut net.url, &self.url, "url", &mut a);
        set(&mut net.ip_allow_list, &self.ip_allow_list, "ip_allow_list", &mut a);
        set(&mut net.tapis_auth, &self.tapis_auth, "tapis_auth", &mut a);
        set(
            &mut net.tapis_auth_response_headers,
            &self.tapis_auth_response_headers,
            "tapis_auth_response_headers",
            &mut a,
        );
        set(&mut net.tapis_auth_allowed_users, &self.tapis_auth_allowed_users, "tapis_auth_allowed_users", &mut a);
        set(&mut net.tapis_auth_return_path, &self.tapis_auth_return_path, "tapis_auth_return_path", &mut a);
        set(&mut net.tapis_ui_uri, &self.tapis_ui_uri, "tapis_ui_uri", &mut a);
        set(&mut net.tapis_ui_uri_redirect, &self.tapis_ui_uri_redirect, "tapis_ui_uri_redirect", &mut a);
        set(&mut net.tapis_ui_uri_description, &self.tapis_ui_uri_description, "tapis_ui_uri_description", &mut a);
        set(&mut net.cors_allow_origins, &self.cors_allow_origins, "cors_allow_origins", &mut a);
        set(&mut net.cors_allow_methods, &self.cors_allow_methods, "cors_allow_methods", &mut a);
        set(&mut net.cors_allow_headers, &self.cors_allow_headers, "cors_allow_headers", &mut a);
        set(&mut net.cors_allow_credentials, &self.cors_allow_credentials, "cors_allow_credentials", &mut a);
        set(&mut net.cors_max_age, &self.cors_max_age, "cors_max_age", &mut a);
        a
    }
}

impl From<&Networking> for NetworkingLayer {
    /// Every field set: applied over anything, the result equals `net`.
    fn from(net: &Networking) -> Self {
        Self {
            protocol: Some(net.protocol),
            port: Some(net.port),
            url: Some(net.url.clone()),
            ip_allow_list: Some(net.ip_allow_list.clone()),
            tapis_auth: Some(net.tapis_auth),
            tapis_auth_response_headers: Some(net.tapis_auth_response_headers.clone()),
            tapis_auth_allowed_users: Some(net.tapis_auth_allowed_users.clone()),
            tapis_auth_return_path: Some(net.tapis_auth_return_path.clone()),
            tapis_ui_uri: Some(net.tapis_ui_uri.clone()),
            tapis_ui_uri_redirect: Some(net.tapis_ui_uri_redirect),
            tapis_ui_uri_description: Some(net.tapis_ui_uri_description.clone()),
            cors_allow_origins: Some(net.cors_allow_origins.clone()),
            cors_allow_methods: Some(net.cors_allow_methods.clone()),
            cors_allow_headers: Some(net.cors_allow_headers.clone()),
            cors_allow_credentials: Some(net.cors_allow_credentials),
            cors_max_age: Some(net.cors_max_age),
        }
    }
}
