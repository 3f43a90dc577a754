//! Prints the CustomResourceDefinitions (`monero-operator crd` does the same).
fn main() -> Result<(), monero_crd::CrdError> {
    print!("{}", monero_crd::crds_yaml()?);
    Ok(())
}
