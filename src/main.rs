fn main() {
    std::process::exit(portcullis::cli::main());
}
