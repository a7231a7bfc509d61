//! Generates the gRPC code for `proto/medmesh/v1`, the descriptor set served by reflection,
//! and the proto3 JSON mapping (serde) of the messages the HTTP gateway speaks.
//!
//! Why `pbjson-build` (InfluxData's): it generates serde implementations that follow the
//! canonical proto3 JSON mapping (enums by name or number, 64-bit integers as strings, unknown
//! fields refused) from the same descriptor set, so JSON and protobuf cannot drift apart.

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
    let descriptors = std::fs::read(out.join("medmesh_descriptor.bin"))?;
    // Only the messages of the HTTP gateway (`src/gateway`) and the CLI, and what they contain.
    pbjson_build::Builder::new().register_descriptors(&descriptors)?.preserve_proto_field_names().emit_fields().build(
        &[
            ".medmesh.v1.LookupIdentityRequest",
            ".medmesh.v1.LookupIdentityResponse",
            ".medmesh.v1.RegisterVisitRequest",
            ".medmesh.v1.RegisterVisitResponse",
            ".medmesh.v1.FeeLine",
            ".medmesh.v1.UploadFeesRequest",
            ".medmesh.v1.UploadFeesResponse",
            ".medmesh.v1.PreSettleRequest",
            ".medmesh.v1.PreSettleResponse",
            ".medmesh.v1.SettleRequest",
            ".medmesh.v1.SettleResponse",
            ".medmesh.v1.ReverseRequest",
            ".medmesh.v1.ReverseResponse",
            ".medmesh.v1.Split",
            ".medmesh.v1.LineSplit",
            ".medmesh.v1.Accumulators",
            ".medmesh.v1.Sex",
            ".medmesh.v1.InsuranceType",
            ".medmesh.v1.CertificateKind",
            ".medmesh.v1.VisitKind",
            ".medmesh.v1.FilingKind",
            // `medmesh rules load|shipped` (src/cli) reads and writes rules as JSON.
            ".medmesh.v1.MonitoringRule",
            ".medmesh.v1.RuleCategory",
            ".medmesh.v1.RuleTarget",
            ".medmesh.v1.RuleAction",
        ],
    )?;
    Ok(())
}
