//! Runs the gateway from the environment until Ctrl-C (what `switchboard gateway` does).
//!
//! ```sh
//! RUST_LOG=info cargo run -p switchboard-gateway --example gateway
//! ```

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let config = match switchboard_gateway::GatewayConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchboard gateway: {e}");
            return ExitCode::from(2);
        }
    };
    match switchboard_gateway::serve(config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
