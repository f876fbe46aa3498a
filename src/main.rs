//! The `portcullis` binary: parse the command line, call into the library.

/// mimalloc: the proxy allocates per request (headers, the session, the
/// upstream peer); glibc's malloc showed up at ~10 % of CPU under load with
/// its arena locks contended across worker threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(portcullis::cli::main());
}
