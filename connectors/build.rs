//! Compiles `proto/switchboard_model.proto` into Rust (prost messages, tonic client and
//! server) with the pure-Rust `protox` compiler: no `protoc` binary needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/switchboard_model.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
