//! A realm's registered clients and users, and where its tokens carry the tenant.

use std::collections::HashMap;

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
pub struct Client {
    pub id: String,
    /// `None` for a public client (password grant without a secret).
    #[serde(default)]
    pub secret: Option<String>,
    pub tenant: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct User {
    pub username: String,
    pub password: String,
    pub tenant: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Realm {
    pub name: String,
    /// Claim carrying the tenant; dots nest it (`org.tenant_id` → `{"org":{"tenant_id":…}}`).
    #[serde(default = "default_tenant_claim")]
    pub tenant_claim: String,
    #[serde(default = "default_audience")]
    pub audience: String,
    #[serde(default = "default_ttl")]
    pub token_ttl_secs: i64,
    #[serde(default)]
    pub clients: Vec<Client>,
    #[serde(default)]
    pub users: Vec<User>,
}

fn default_tenant_claim() -> String {
    "tenant_id".into()
}

fn default_audience() -> String {
    "account".into()
}

fn default_ttl() -> i64 {
    300
}

impl Realm {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            tenant_claim: default_tenant_claim(),
            audience: default_audience(),
            token_ttl_secs: default_ttl(),
            clients: Vec::new(),
            users: Vec::new(),
        }
    }

    pub fn client(&self, id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.id == id)
    }

    pub fn user(&self, username: &str) -> Option<&User> {
        self.users.iter().find(|u| u.username == username)
    }
}

pub type Realms = HashMap<String, Realm>;
