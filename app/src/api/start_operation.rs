use leptos::prelude::*;
use switchyard_domain::operations::Operation;

use crate::error::AppError;

/// Starts a blue-green switch, rolling update or hot reload on a cluster.
/// `steps` (rolling only) is a comma-separated list of percentages, 10,50,100 when blank.
#[server(prefix = "/console/fn", endpoint = "start_operation", client = crate::api::client::ConsoleClient)]
pub async fn start_operation(
    cluster: String,
    kind: String,
    full_id: String,
    steps: Option<String>,
    reason: Option<String>,
) -> Result<Operation, AppError> {
    // Authorize before reading the arguments: signed out is refused first.
    let services = crate::services::services()?;
    // Every refusal is about this cluster's form.
    let started = async {
        use switchyard_domain::operations::OperationKind;
        let kind: OperationKind = kind.parse()?;
        if kind == OperationKind::Rollback {
            return Err(AppError::new(
                "invalid_input",
                "Use the Roll back button to roll back.",
            ));
        }
        let full_id = switchyard_domain::FullId::parse(full_id.trim())?;
        // Blank: none, which a rolling update reads as the default 10,50,100.
        let steps = match super::given(steps) {
            Some(s) => {
                let steps = parse_steps(&s)?;
                if kind == OperationKind::Rolling {
                    switchyard_domain::operations::check_rolling_steps(&steps)?;
                }
                steps
            }
            None => Vec::new(),
        };
        let reason = super::given(reason);
        services
            .start_operation(cluster.trim(), kind, &full_id, steps, reason.as_deref())
            .await
    };
    let op = started.await.map_err(|e| e.about(cluster.trim()))?;
    super::show_after_form_post(&format!("/clusters/{}?started={}", op.cluster, op.id));
    Ok(op)
}

/// `10, 50, 100` → `[10, 50, 100]`; the domain checks the sequence itself.
pub fn parse_steps(s: &str) -> Result<Vec<u8>, AppError> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.trim_end_matches('%').trim().parse::<u8>().map_err(|_| {
                AppError::new(
                    "invalid_input",
                    format!("Rolling steps are percentages like 10, 50, 100; “{p}” is not one."),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_steps_are_read_from_a_comma_separated_list() {
        assert_eq!(parse_steps("10, 50,100%"), Ok(vec![10, 50, 100]));
        assert!(parse_steps("10, half, 100").is_err_and(|e| e.message.contains("“half”")));
        assert!(parse_steps("300").is_err());
    }
}
