//! A version as a `.tar.gz`: every file under a top directory named `{app}-v{version}/`.
//!
//! Built in memory: a version's files are bounded by what D1 and the worker's memory (128 MB)
//! can index and hold, and a whole archive lets the response carry a `Content-Length`.

use std::io::Write;

/// Packs `files` (validated relative paths and their bytes) into a gzip-compressed tar.
/// `mtime_secs` stamps every entry with the version's creation time, so the same version
/// always produces the same archive.
pub fn tar_gz(top_dir: &str, files: &[(String, Vec<u8>)], mtime_secs: u64) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime_secs);
        header.set_entry_type(tar::EntryType::Regular);
        // `append_data` writes a GNU long-name entry first for paths over 100 bytes.
        tar.append_data(&mut header, format!("{top_dir}/{path}"), bytes.as_slice())?;
    }
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn archive_holds_every_file_byte_for_byte() {
        let long = format!("{}/deep.txt", "d".repeat(150));
        let files = vec![("a.txt".to_string(), b"hello".to_vec()), (long.clone(), vec![0u8, 1, 2, 255]), ("empty".to_string(), vec![])];
        let bytes = tar_gz("demo-v1", &files, 1_700_000_000).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().to_string();
            let mut body = Vec::new();
            entry.read_to_end(&mut body).unwrap();
            seen.push((path, body));
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0], ("demo-v1/a.txt".to_string(), b"hello".to_vec()));
        assert_eq!(seen[1], (format!("demo-v1/{long}"), vec![0u8, 1, 2, 255]));
        assert_eq!(seen[2].1, Vec::<u8>::new());
        assert_eq!(tar_gz("demo-v1", &files, 1_700_000_000).unwrap(), bytes, "deterministic");
    }
}
