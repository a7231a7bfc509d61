//! Generates the gRPC code for `proto/medmesh/v1` and the descriptor set served by reflection.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "common.proto",
        "payment.proto",
        "hospital.proto",
        "agency.proto",
        "federation.proto",
        "raft.proto",
        "disclosure.proto",
        "reports.proto",
    ]
    .map(|f| root.join("medmesh/v1").join(f));
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("medmesh_descriptor.bin"))
        .compile_protos(&files, &[root])?;
    Ok(())
}
