//! The API cookie: a random token the node writes into its data dir at
//! start (mode 0600) and removes at a clean stop; commands and tests on the
//! same machine read it to POST (SPEC "API access"). Both the server
//! (`node`) and the client ([`super::ApiClient`]) use it from here.

/// The API cookie's file name in the data dir.
pub const COOKIE_FILE: &str = "api.cookie";

/// Reads the API token a node wrote into `data_dir`, for commands and
/// tests that POST.
///
/// # Errors
/// The read error (no node has started there, or it stopped).
pub fn read_cookie(data_dir: &std::path::Path) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(data_dir.join(COOKIE_FILE))?
        .trim()
        .to_string())
}
