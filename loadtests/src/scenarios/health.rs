//! `GET /healthz` on each layer: the floor every other scenario builds on (routing, the
//! HTTP stack, connection handling) with no upstream or store in the way.

use std::sync::Arc;

use goose::prelude::*;

use super::{Endpoints, ScenarioDef};

pub const DEF: ScenarioDef = ScenarioDef {
    name: "health",
    about: "GET /healthz on L1 edge, L2 ai and L3 agent, one goose scenario per layer",
    build,
};

fn build(endpoints: &Endpoints) -> anyhow::Result<Vec<Scenario>> {
    let scenarios = endpoints
        .layers()
        .into_iter()
        .map(|(layer, addr)| {
            let name: Arc<str> = format!("{layer} /healthz").into();
            let transaction_name = name.to_string();
            let call: TransactionFunction = Arc::new(move |user| {
                let name = name.clone();
                Box::pin(async move { healthz(user, &name).await })
            });
            Scenario::new(&format!("health-{layer}"))
                .set_host(&format!("http://{addr}"))
                .register_transaction(Transaction::new(call).set_name(&transaction_name))
        })
        .collect();
    Ok(scenarios)
}

/// A 200 is not enough: a catch-all route, or something else squatting on the port, would
/// pass that, so the body must be the health document.
async fn healthz(user: &mut GooseUser, name: &str) -> TransactionResult {
    let mut goose = user.get_named("/healthz", name).await?;
    if !goose.request.success {
        // Already counted as an error by goose (status or transport failure).
        return Ok(());
    }
    match goose.response {
        Ok(response) => match response.text().await {
            Ok(body) if body.contains(r#""status":"ok""#) => Ok(()),
            Ok(body) => user.set_failure("unexpected body", &mut goose.request, None, Some(&body)),
            Err(_) => user.set_failure("body not read", &mut goose.request, None, None),
        },
        Err(_) => Ok(()),
    }
}
