//! File formats and stream compression, and how paths name them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The file formats the host reads and writes natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// Delimited text.
    Csv,
    /// One JSON object per line.
    #[serde(alias = "jsonl", alias = "ndjson")]
    Json,
    /// Apache Parquet.
    Parquet,
}

impl FileFormat {
    /// The format a path's extension names, ignoring a `.gz`/`.zst` suffix:
    /// `a.csv.gz` is CSV, `b.jsonl` JSON, `c.pq` Parquet.
    pub fn from_path(path: &str) -> Option<FileFormat> {
        let lower = path.to_ascii_lowercase();
        let name = Compression::strip_suffix(&lower);
        let ext = name.rsplit_once('.').map(|(_, e)| e)?;
        match ext {
            "csv" | "tsv" | "txt" => Some(FileFormat::Csv),
            "json" | "jsonl" | "ndjson" => Some(FileFormat::Json),
            "parquet" | "pq" => Some(FileFormat::Parquet),
            _ => None,
        }
    }

    /// The lowercase name used in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Json => "json",
            FileFormat::Parquet => "parquet",
        }
    }
}

/// Whole-stream compression of text files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Decide from the file extension (`.gz`, `.zst`).
    Auto,
    /// Plain bytes.
    None,
    /// gzip (multi-member files too).
    #[serde(alias = "gz")]
    Gzip,
    /// Zstandard.
    #[serde(alias = "zst")]
    Zstd,
}

impl Compression {
    /// The compression a path's extension names (`None` for plain files).
    pub fn from_path(path: &str) -> Compression {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".gz") {
            Compression::Gzip
        } else if lower.ends_with(".zst") || lower.ends_with(".zstd") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// `Auto` resolved against `path`; others unchanged.
    pub fn resolve(self, path: &str) -> Compression {
        match self {
            Compression::Auto => Compression::from_path(path),
            other => other,
        }
    }

    fn strip_suffix(lower: &str) -> &str {
        [".gz", ".zst", ".zstd"]
            .iter()
            .find_map(|s| lower.strip_suffix(s))
            .unwrap_or(lower)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_paths() {
        assert_eq!(FileFormat::from_path("a.csv"), Some(FileFormat::Csv));
        assert_eq!(
            FileFormat::from_path("dir.x/a.CSV.gz"),
            Some(FileFormat::Csv)
        );
        assert_eq!(FileFormat::from_path("a.jsonl.zst"), Some(FileFormat::Json));
        assert_eq!(
            FileFormat::from_path("a.parquet"),
            Some(FileFormat::Parquet)
        );
        assert_eq!(FileFormat::from_path("a.bin"), None);
        assert_eq!(FileFormat::from_path("noext"), None);
        assert_eq!(Compression::from_path("a.csv.gz"), Compression::Gzip);
        assert_eq!(Compression::Auto.resolve("a.jsonl.zst"), Compression::Zstd);
        assert_eq!(Compression::Auto.resolve("a.csv"), Compression::None);
    }
}
